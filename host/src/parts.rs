//! Reading a large file in parts: a window of decoded bytes (gzip is decompressed as a stream)
//! that the caller hands to the guest, then advances by what the guest read.
//!
//! The guest never sees more than one window, so its memory is bounded by the part size, not
//! the file's. Where a record ends is the core's business ([`audlink_core::format::csv`]): a
//! window may end anywhere, the guest reports how much of it made whole records, and the rest
//! comes again at the start of the next window.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use audlink_core::format::input::{self, gzip_error};
use flate2::read::MultiGzDecoder;

/// A file's decoded bytes, read window by window.
pub struct PartReader {
    name: String,
    source: Box<dyn Read>,
    /// Bytes read from the source and not yet consumed.
    buffer: Vec<u8>,
    eof: bool,
    /// Decoded bytes consumed so far.
    consumed: u64,
}

impl std::fmt::Debug for PartReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartReader")
            .field("name", &self.name)
            .field("buffered", &self.buffer.len())
            .field("eof", &self.eof)
            .field("consumed", &self.consumed)
            .finish()
    }
}

impl PartReader {
    /// Opens `path` (called `name` in errors); a file starting with the gzip magic number is
    /// decompressed as it is read.
    pub fn open(path: &Path, name: &str) -> io::Result<PartReader> {
        let mut file = BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < magic.len() {
            match file.read(&mut magic[got..])? {
                0 => break,
                n => got += n,
            }
        }
        let head = io::Cursor::new(magic[..got].to_vec());
        let source: Box<dyn Read> = if input::is_gzip(&magic[..got]) {
            Box::new(MultiGzDecoder::new(head.chain(file)))
        } else {
            Box::new(head.chain(file))
        };
        Ok(PartReader {
            name: name.to_owned(),
            source,
            buffer: Vec::new(),
            eof: false,
            consumed: 0,
        })
    }

    /// Reads until `len` bytes are buffered or the file ends; returns the window (at most
    /// `len` bytes) and whether it reaches the end of the file. Errors name the file: an
    /// unreadable file, a truncated or bad gzip stream (the core's words).
    pub fn window(&mut self, len: usize) -> Result<(&[u8], bool), String> {
        while self.buffer.len() < len && !self.eof {
            let start = self.buffer.len();
            self.buffer.resize(len, 0);
            let read = self.source.read(&mut self.buffer[start..]);
            match read {
                Ok(0) => {
                    self.buffer.truncate(start);
                    self.eof = true;
                }
                Ok(n) => self.buffer.truncate(start + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buffer.truncate(start),
                Err(e) => {
                    self.buffer.truncate(start);
                    return Err(match e.kind() {
                        io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::InvalidData => gzip_error(&self.name, &e).to_string(),
                        _ => format!("{}: {e}", self.name),
                    });
                }
            }
        }
        let end = self.buffer.len().min(len);
        let last = self.eof && end == self.buffer.len();
        Ok((&self.buffer[..end], last))
    }

    /// Drops the first `n` bytes of the window (the guest read them).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buffer.len());
        self.buffer.drain(..n);
        self.consumed += n as u64;
    }

    /// Decoded bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> (tempdir::Dir, std::path::PathBuf) {
        let dir = tempdir::Dir::new(name);
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// A throwaway directory removed on drop.
    mod tempdir {
        pub(super) struct Dir(std::path::PathBuf);
        impl Dir {
            pub(super) fn new(name: &str) -> Dir {
                let path = std::env::temp_dir()
                    .join(format!("audlink-parts-{}-{name}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
            pub(super) fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn read_all(reader: &mut PartReader, step: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            let (window, last) = reader.window(step)?;
            // Consume a little less than the window, as a guest leaving a cut record does.
            let take = if last {
                window.len()
            } else {
                window.len() / 2 + 1
            };
            out.extend_from_slice(&window[..take]);
            reader.consume(take);
            if last {
                return Ok(out);
            }
        }
    }

    #[test]
    fn plain_and_gzip_files_read_back_whole() {
        let text: Vec<u8> = (0..5000u32)
            .flat_map(|i| format!("{i},x\n").into_bytes())
            .collect();
        for (name, bytes) in [
            ("plain.csv", text.clone()),
            ("packed.csv.gz", input::gzip(&text)),
        ] {
            let (_dir, path) = write(name, &bytes);
            let mut reader = PartReader::open(&path, name).unwrap();
            assert_eq!(read_all(&mut reader, 777).unwrap(), text, "{name}");
            assert_eq!(reader.consumed(), text.len() as u64);
        }
    }

    #[test]
    fn a_truncated_gzip_file_is_named_with_the_cores_words() {
        let text: Vec<u8> = (0..5000u32)
            .flat_map(|i| format!("{i},x\n").into_bytes())
            .collect();
        let gz = input::gzip(&text);
        let (_dir, path) = write("cut.csv.gz", &gz[..gz.len() / 2]);
        let mut reader = PartReader::open(&path, "cut.csv.gz").unwrap();
        let err = read_all(&mut reader, 1000).unwrap_err();
        let expected = input::decode("cut.csv.gz", &gz[..gz.len() / 2])
            .unwrap_err()
            .to_string();
        assert_eq!(err, expected);
    }

    #[test]
    fn tiny_and_empty_files() {
        for bytes in [&b""[..], b"i", b"\x1f"] {
            let (_dir, path) = write("tiny.csv", bytes);
            let mut reader = PartReader::open(&path, "tiny.csv").unwrap();
            assert_eq!(read_all(&mut reader, 4).unwrap(), bytes);
        }
    }
}
