//! Processing each object of a listing once, against the store's ledger
//! (`processed_objects`, see `store/objects.rs`).
//!
//! Per key of the listing (a key listed twice is taken once):
//!
//! 1. the ledger has the key with the listed ETag and size → skipped without a download;
//! 2. otherwise the object is downloaded and hashed (SHA-256); the ledger has the key with the
//!    same size and hash → skipped (when only the ETag differs — the same bytes uploaded
//!    again — the row takes the new ETag);
//! 3. otherwise the caller processes the bytes, and only when that succeeds is the object
//!    recorded. A failure stops the walk: objects recorded before it stay recorded, the failed
//!    one and those after it are processed by the next run.
//!
//! [`list_once`] and [`examine`] are the two halves of that walk for callers that record the
//! object themselves, in the same transaction as what processing it wrote (`audlink sync`'s
//! import jobs).

use sha2::{Digest, Sha256};

use super::{ExchangeError, ObjectInfo, Storage};
use crate::store::{ProcessedObject, Store};

/// What [`process_new`] did, keys in listing order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSummary {
    /// Keys processed (and now recorded).
    pub processed: Vec<String>,
    /// Keys skipped: processed before, unchanged.
    pub skipped: Vec<String>,
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(bytes));
    out
}

/// What the ledger says about one listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Examined {
    /// Processed before as it is now: skip it.
    Unchanged,
    /// Not processed yet, or changed since: its bytes and the ledger row to record once it
    /// was processed.
    New {
        /// The object's bytes.
        bytes: Vec<u8>,
        /// What the ledger records for it.
        object: ProcessedObject,
    },
}

/// The objects under `prefix`, sorted by key, each key once (a listing that returns a key
/// twice gives it once).
pub async fn list_once<S: Storage>(
    storage: &S,
    prefix: &str,
) -> Result<Vec<ObjectInfo>, ExchangeError> {
    let mut listing = storage.list(prefix).await?;
    listing.sort_by(|a, b| a.key.cmp(&b.key));
    listing.dedup_by(|later, first| later.key == first.key);
    Ok(listing)
}

/// Decides whether `object` (listed in `storage`, whose location is `location`) needs
/// processing: skipped without a download on the same ETag and size, else downloaded and
/// skipped on the same size and hash (the row then takes the new ETag, at `now_ms`).
pub async fn examine<S: Storage>(
    store: &dyn Store,
    storage: &S,
    location: &str,
    object: &ObjectInfo,
    now_ms: i64,
) -> Result<Examined, ExchangeError> {
    if store.listed_unchanged(location, &object.key, object.etag.as_deref(), object.size)? {
        return Ok(Examined::Unchanged);
    }
    let bytes = storage.get(&object.key).await?;
    let seen = ProcessedObject {
        location: location.to_owned(),
        key: object.key.clone(),
        // The bytes read decide; the listed ETag describes them only when the size agrees
        // (an object replaced between listing and download is recorded without one).
        etag: object
            .etag
            .clone()
            .filter(|_| bytes.len() as u64 == object.size),
        size: bytes.len() as u64,
        sha256: sha256(&bytes),
    };
    if store.was_processed(&seen)? {
        return Ok(Examined::Unchanged);
    }
    if let Some(row) = store.processed_object(location, &object.key)?
        && row.size == seen.size
        && row.sha256 == seen.sha256
    {
        store.record_processed(&seen, now_ms)?;
        return Ok(Examined::Unchanged);
    }
    Ok(Examined::New {
        bytes,
        object: seen,
    })
}

/// Lists `prefix` in `storage` and hands every object not processed yet (or changed since) to
/// `process` with its bytes, recording each in `store` after `process` succeeded, at `now_ms`
/// (unix milliseconds).
pub async fn process_new<S, F>(
    store: &dyn Store,
    storage: &S,
    prefix: &str,
    now_ms: i64,
    mut process: F,
) -> Result<ProcessSummary, ExchangeError>
where
    S: Storage,
    F: FnMut(&ObjectInfo, &[u8]) -> anyhow::Result<()>,
{
    let location = storage.location();
    let mut summary = ProcessSummary::default();
    for object in list_once(storage, prefix).await? {
        let Examined::New {
            bytes,
            object: seen,
        } = examine(store, storage, &location, &object, now_ms).await?
        else {
            summary.skipped.push(object.key);
            continue;
        };
        let listed = ObjectInfo {
            key: object.key.clone(),
            size: seen.size,
            etag: seen.etag.clone(),
        };
        process(&listed, &bytes).map_err(|error| ExchangeError::Process {
            key: object.key.clone(),
            reason: format!("{error:#}"),
        })?;
        store.record_processed(&seen, now_ms)?;
        summary.processed.push(object.key);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;
    use crate::exchange::LocalFolder;
    use crate::store::testing::{TempDir, store};

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn processes_each_object_once_and_changed_ones_again() {
        let (_db, store) = store("ledger-walk");
        let dir = TempDir::new("ledger-folder");
        let folder = LocalFolder::new(dir.0.join("bucket"));
        run(async {
            folder.put("in/a", b"one".to_vec()).await.unwrap();
            folder.put("in/b", b"two".to_vec()).await.unwrap();
            let mut seen = Vec::new();
            let summary = process_new(&store, &folder, "in/", 1, |o, bytes| {
                seen.push((o.key.clone(), bytes.to_vec()));
                Ok(())
            })
            .await
            .unwrap();
            assert_eq!(summary.processed, ["in/a", "in/b"]);
            assert_eq!(
                seen,
                [
                    ("in/a".into(), b"one".to_vec()),
                    ("in/b".into(), b"two".to_vec())
                ]
            );

            // Same bytes written again: skipped. Changed bytes (same size): processed again.
            folder.put("in/a", b"one".to_vec()).await.unwrap();
            folder.put("in/b", b"TWO".to_vec()).await.unwrap();
            let mut seen = Vec::new();
            let summary = process_new(&store, &folder, "in/", 2, |o, _| {
                seen.push(o.key.clone());
                Ok(())
            })
            .await
            .unwrap();
            assert_eq!(summary.skipped, ["in/a"]);
            assert_eq!(summary.processed, ["in/b"]);
            assert_eq!(seen, ["in/b"]);

            // A failing step records nothing for that object: the next run does it again.
            folder.put("in/c", b"three".to_vec()).await.unwrap();
            let err = process_new(&store, &folder, "in/", 3, |_, _| anyhow::bail!("disk full"))
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), "processing \"in/c\" failed: disk full");
            let summary = process_new(&store, &folder, "in/", 4, |_, _| Ok(()))
                .await
                .unwrap();
            assert_eq!(summary.processed, ["in/c"]);
            assert_eq!(summary.skipped, ["in/a", "in/b"]);
        });
    }
}
