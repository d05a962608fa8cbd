//! The local-folder backend: keys are paths below one directory.
//!
//! A put writes `<name>.audlink-tmp-<pid>-<n>` beside the target and renames it over the
//! target, so a listing or a reader sees the old object or the new one, never half of one; a
//! listing leaves such temporary files out. There are no ETags: the ledger tells changes apart
//! by size and content hash.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ExchangeError, ObjectInfo, Storage, check_key, check_prefix};

const TMP_MARK: &str = ".audlink-tmp-";

/// A directory used as object storage.
#[derive(Debug, Clone)]
pub struct LocalFolder {
    root: PathBuf,
}

impl LocalFolder {
    /// The folder at `root` (created by the first put when missing).
    pub fn new(root: impl Into<PathBuf>) -> LocalFolder {
        LocalFolder { root: root.into() }
    }

    /// The folder's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn failed(&self, op: &'static str, key: &str, error: std::io::Error) -> ExchangeError {
        ExchangeError::Backend {
            op,
            key: key.to_owned(),
            location: self.location(),
            reason: error.to_string(),
        }
    }
}

impl Storage for LocalFolder {
    fn location(&self) -> String {
        format!("folder {}", self.root.display())
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ExchangeError> {
        check_key(key)?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let target = self.root.join(key);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let parent = target.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent)?;
            let name = target.file_name().unwrap_or_default().to_string_lossy();
            let tmp = parent.join(format!("{name}{TMP_MARK}{}-{n}", std::process::id()));
            let written = std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &target));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.failed("put", key, error)),
            Err(join) => Err(self.failed("put", key, std::io::Error::other(join.to_string()))),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ExchangeError> {
        check_prefix(prefix)?;
        let root = self.root.clone();
        let wanted = prefix.to_owned();
        let result = tokio::task::spawn_blocking(move || list_below(&root, &wanted)).await;
        match result {
            Ok(Ok(objects)) => Ok(objects),
            Ok(Err(error)) => Err(self.failed("list", prefix, error)),
            Err(join) => Err(self.failed("list", prefix, std::io::Error::other(join.to_string()))),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ExchangeError> {
        check_key(key)?;
        let path = self.root.join(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes),
            Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => {
                Err(ExchangeError::NotFound {
                    key: key.to_owned(),
                    location: self.location(),
                })
            }
            Err(error) => Err(self.failed("get", key, error)),
        }
    }
}

/// Every regular file below `root` whose key starts with `prefix`, sorted by key. A missing
/// root lists nothing.
fn list_below(root: &Path, prefix: &str) -> std::io::Result<Vec<ObjectInfo>> {
    let mut out = Vec::new();
    // Start at the deepest directory the prefix names whole, so a listing does not walk the
    // whole folder.
    let start = match prefix.rfind('/') {
        Some(end) => prefix[..end].to_owned(),
        None => String::new(),
    };
    let mut pending = vec![start];
    while let Some(dir_key) = pending.pop() {
        let dir = if dir_key.is_empty() {
            root.to_owned()
        } else {
            root.join(&dir_key)
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: no key can name it
            };
            let key = if dir_key.is_empty() {
                name.clone()
            } else {
                format!("{dir_key}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if prefix.starts_with(&format!("{key}/")) || key.starts_with(prefix) {
                    pending.push(key);
                }
            } else if kind.is_file()
                && !name.contains(TMP_MARK)
                && key.starts_with(prefix)
                && check_key(&key).is_ok()
            {
                out.push(ObjectInfo {
                    size: entry.metadata()?.len(),
                    key,
                    etag: None,
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::TempDir;

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    use std::future::Future;

    #[test]
    fn put_list_get_and_replace() {
        let dir = TempDir::new("exchange-local");
        let folder = LocalFolder::new(dir.0.join("x"));
        run(async {
            assert!(folder.list("").await.unwrap().is_empty());
            folder
                .put("in/date=2026-01-01/a.gz", b"abc".to_vec())
                .await
                .unwrap();
            folder.put("in/b", b"hello".to_vec()).await.unwrap();
            folder.put("inbox/c", b"c".to_vec()).await.unwrap();
            folder.put("out/d", b"d".to_vec()).await.unwrap();
            let keys = |list: Vec<ObjectInfo>| list.into_iter().map(|o| o.key).collect::<Vec<_>>();
            assert_eq!(
                keys(folder.list("in/").await.unwrap()),
                ["in/b", "in/date=2026-01-01/a.gz"]
            );
            assert_eq!(
                keys(folder.list("in").await.unwrap()),
                ["in/b", "in/date=2026-01-01/a.gz", "inbox/c"]
            );
            assert_eq!(
                keys(folder.list("in/date=2026").await.unwrap()),
                ["in/date=2026-01-01/a.gz"]
            );
            let listed = folder.list("in/b").await.unwrap();
            assert_eq!(
                listed,
                [ObjectInfo {
                    key: "in/b".into(),
                    size: 5,
                    etag: None
                }]
            );
            assert_eq!(folder.get("in/b").await.unwrap(), b"hello");
            folder.put("in/b", b"hi".to_vec()).await.unwrap();
            assert_eq!(folder.get("in/b").await.unwrap(), b"hi");
            assert_eq!(folder.list("in/b").await.unwrap()[0].size, 2);
            // No temporary file is left behind or listed.
            assert_eq!(folder.list("").await.unwrap().len(), 4);
            let err = folder.get("in/missing").await.unwrap_err();
            assert!(matches!(err, ExchangeError::NotFound { .. }), "{err}");
            assert!(err.to_string().contains("in/missing"), "{err}");
            let err = folder.get("in/../../etc/passwd").await.unwrap_err();
            assert!(matches!(err, ExchangeError::BadKey { .. }), "{err}");
            let err = folder.put("/abs", vec![]).await.unwrap_err();
            assert!(matches!(err, ExchangeError::BadKey { .. }), "{err}");
        });
    }

    #[test]
    fn a_put_that_cannot_write_names_key_and_folder() {
        let dir = TempDir::new("exchange-local-file");
        std::fs::write(dir.0.join("blocker"), b"not a dir").unwrap();
        let folder = LocalFolder::new(dir.0.join("blocker"));
        let err = run(folder.put("a/b", b"x".to_vec())).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("cannot put \"a/b\" in folder "), "{text}");
        assert!(text.contains("blocker"), "{text}");
    }
}
