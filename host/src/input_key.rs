//! The input key of an import or export run: SHA-256 over the data source, the options that
//! decide the outcome and every input file (name, length, digest), so the same input applies
//! once. The store keeps runs by the resulting [`InputKey`]; how it is made lives here.

use std::io::Read;

use sha2::{Digest, Sha256};

pub use crate::store::InputKey;

/// Builds an [`InputKey`] from a data source name, options bytes and the input files (name and
/// bytes). Files may be added in any order: each is hashed on its own and the digests are
/// combined sorted, so the same set of files gives the same key.
#[derive(Debug, Clone)]
pub struct InputKeyHasher {
    data_source: String,
    options: Vec<u8>,
    /// Name, length and SHA-256 of each file.
    files: Vec<(String, u64, [u8; 32])>,
}

fn digest_bytes(hasher: Sha256) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    out
}

fn framed(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

impl InputKeyHasher {
    /// A hasher for an input of `data_source` read with `options` (any stable serialization of
    /// everything else that decides the outcome).
    pub fn new(data_source: &str, options: &[u8]) -> InputKeyHasher {
        InputKeyHasher {
            data_source: data_source.to_owned(),
            options: options.to_vec(),
            files: Vec::new(),
        }
    }

    /// Adds a file held in memory.
    pub fn add_file(&mut self, name: &str, bytes: &[u8]) {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        self.files
            .push((name.to_owned(), bytes.len() as u64, digest_bytes(hasher)));
    }

    /// Adds a file read to its end from `reader` (streamed, never held whole); the same key
    /// as [`InputKeyHasher::add_file`] of its bytes.
    pub fn add_reader(&mut self, name: &str, mut reader: impl Read) -> std::io::Result<()> {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut len = 0u64;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buffer[..n]);
            len += n as u64;
        }
        self.files
            .push((name.to_owned(), len, digest_bytes(hasher)));
        Ok(())
    }

    /// The key.
    pub fn finish(mut self) -> InputKey {
        self.files.sort();
        let mut hasher = Sha256::new();
        hasher.update(b"audlink input key v1\0");
        framed(&mut hasher, self.data_source.as_bytes());
        framed(&mut hasher, &self.options);
        hasher.update((self.files.len() as u64).to_be_bytes());
        for (name, len, digest) in &self.files {
            framed(&mut hasher, name.as_bytes());
            hasher.update(len.to_be_bytes());
            hasher.update(digest);
        }
        InputKey::from_bytes(digest_bytes(hasher))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_depends_on_files_and_names_not_their_order_or_streaming() {
        let mut hasher = InputKeyHasher::new("ecid", b"{}");
        hasher.add_file("b", b"two");
        hasher.add_file("a", b"one");
        let key = hasher.finish();
        // Order of files does not matter; streaming gives the same key; names do.
        let mut again = InputKeyHasher::new("ecid", b"{}");
        again.add_file("a", b"one");
        again.add_reader("b", &b"two"[..]).unwrap();
        assert_eq!(again.finish(), key);
        let mut other = InputKeyHasher::new("ecid", b"{}");
        other.add_file("a", b"one");
        other.add_file("c", b"two");
        assert_ne!(other.finish(), key);
        assert_ne!(
            InputKeyHasher::new("other", b"{}").finish(),
            InputKeyHasher::new("ecid", b"{}").finish()
        );
    }
}
