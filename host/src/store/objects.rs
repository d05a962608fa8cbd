//! The file exchange's ledger: `processed_objects`, one row per (location, key) holding the
//! object as it was when it was processed — ETag (when the backend has one), size and SHA-256
//! of its bytes.
//!
//! [`Store::was_processed`] is the decision the exchange makes per listed object; a row is
//! written by [`Store::record_processed`] only after the object's processing succeeded, so an
//! interrupted run processes the object again rather than never.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::sync_runs::{RunObject, add_object};
use super::{Store, StoreError, corrupt};

/// An exchange object an import read: recorded in the ledger (and in its sync run) inside the
/// import's own transaction ([`Store::record_import_from`](super::Store::record_import_from)),
/// so no kill can leave it imported but not recorded.
#[derive(Debug, Clone, Copy)]
pub struct ObjectSource<'a> {
    /// The object as read.
    pub object: &'a ProcessedObject,
    /// When it was processed (unix milliseconds).
    pub at_ms: i64,
    /// The sync run that imported it, if any.
    pub run: Option<i64>,
}

/// Records `source` in the ledger and its run, on `conn` (a caller's transaction).
pub(super) fn record_source(
    conn: &Connection,
    source: &ObjectSource<'_>,
) -> Result<(), StoreError> {
    insert_processed(conn, source.object, source.at_ms)?;
    if let Some(run) = source.run {
        add_object(
            conn,
            run,
            &RunObject {
                action: "imported".to_owned(),
                location: source.object.location.clone(),
                key: source.object.key.clone(),
                size: source.object.size,
            },
        )?;
    }
    Ok(())
}

fn insert_processed(
    conn: &Connection,
    object: &ProcessedObject,
    at_ms: i64,
) -> Result<(), StoreError> {
    let size = i64::try_from(object.size).map_err(|_| corrupt("an object larger than i64"))?;
    conn.prepare_cached(
        "INSERT INTO processed_objects (location, key, etag, size, sha256, processed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (location, key) DO UPDATE SET
             etag = excluded.etag, size = excluded.size, sha256 = excluded.sha256,
             processed_at = excluded.processed_at",
    )?
    .execute(params![
        object.location,
        object.key,
        object.etag,
        size,
        &object.sha256[..],
        at_ms
    ])?;
    Ok(())
}

/// An object as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedObject {
    /// The folder or bucket (`Storage::location`).
    pub location: String,
    /// The object's key.
    pub key: String,
    /// Its ETag, when the backend has one.
    pub etag: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
}

impl Store {
    /// The ledger's row of `key` in `location`, if it was ever processed.
    pub fn processed_object(
        &self,
        location: &str,
        key: &str,
    ) -> Result<Option<ProcessedObject>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT etag, size, sha256 FROM processed_objects WHERE location = ?1 AND key = ?2",
                params![location, key],
                |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                    ))
                },
            )
            .optional()?;
        let Some((etag, size, hash)) = row else {
            return Ok(None);
        };
        let size = u64::try_from(size).map_err(|_| corrupt("a negative processed object size"))?;
        let sha256: [u8; 32] = hash
            .try_into()
            .map_err(|_| corrupt("a processed object hash that is not 32 bytes"))?;
        Ok(Some(ProcessedObject {
            location: location.to_owned(),
            key: key.to_owned(),
            etag,
            size,
            sha256,
        }))
    }

    /// Whether `object` was processed as it is now: a row for its location and key with the
    /// same size and content hash, and the same ETag when both the row and the object have one.
    /// A changed object (another size, hash or ETag) is not processed yet.
    pub fn was_processed(&self, object: &ProcessedObject) -> Result<bool, StoreError> {
        let Some(row) = self.processed_object(&object.location, &object.key)? else {
            return Ok(false);
        };
        let etag_same = match (&row.etag, &object.etag) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        Ok(etag_same && row.size == object.size && row.sha256 == object.sha256)
    }

    /// Whether the listing alone shows `key` unchanged since it was processed: a row with the
    /// same size and the same ETag (both known). `false` means "download and compare hashes".
    pub fn listed_unchanged(
        &self,
        location: &str,
        key: &str,
        etag: Option<&str>,
        size: u64,
    ) -> Result<bool, StoreError> {
        let Some(etag) = etag else {
            return Ok(false);
        };
        Ok(self
            .processed_object(location, key)?
            .is_some_and(|row| row.size == size && row.etag.as_deref() == Some(etag)))
    }

    /// Records `object` as processed at `at_ms` (unix milliseconds), replacing an earlier row
    /// of the same location and key.
    pub fn record_processed(&self, object: &ProcessedObject, at_ms: i64) -> Result<(), StoreError> {
        insert_processed(&self.conn, object, at_ms)
    }

    /// Records objects whose content was applied before (the same input imported already), in
    /// one transaction.
    pub fn record_sources(&mut self, sources: &[ObjectSource<'_>]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for source in sources {
            record_source(&tx, source)?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::testing::store;
    use super::*;

    fn object(etag: Option<&str>, size: u64, fill: u8) -> ProcessedObject {
        ProcessedObject {
            location: "bucket \"b\" at http://127.0.0.1:1".into(),
            key: "in/a.sync".into(),
            etag: etag.map(str::to_owned),
            size,
            sha256: [fill; 32],
        }
    }

    #[test]
    fn a_version_2_database_gains_the_ledger() {
        let (dir, store) = store("ledger-migrate");
        store
            .conn
            .execute_batch(
                "DROP TABLE serve_jobs; DROP TABLE sync_run_objects; DROP TABLE sync_runs;
                 DROP TABLE processed_objects;
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        store
            .conn
            .execute("INSERT INTO lists (name) VALUES ('kept')", [])
            .unwrap();
        drop(store);
        let store = Store::open(&dir.db()).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            super::super::SCHEMA_VERSION
        );
        assert_eq!(store.lists().unwrap().len(), 1);
        let first = object(None, 1, 1);
        store.record_processed(&first, 1).unwrap();
        assert!(store.was_processed(&first).unwrap());
    }

    #[test]
    fn skips_the_same_object_and_processes_a_changed_one() {
        let (_dir, store) = store("ledger");
        let first = object(Some("\"e1\""), 10, 1);
        assert!(!store.was_processed(&first).unwrap());
        assert!(
            !store
                .listed_unchanged(&first.location, &first.key, Some("\"e1\""), 10)
                .unwrap()
        );
        store.record_processed(&first, 1).unwrap();
        assert!(store.was_processed(&first).unwrap());
        assert!(
            store
                .listed_unchanged(&first.location, &first.key, Some("\"e1\""), 10)
                .unwrap()
        );
        // Changed content, size or ETag: process again.
        assert!(!store.was_processed(&object(Some("\"e1\""), 10, 2)).unwrap());
        assert!(!store.was_processed(&object(Some("\"e1\""), 11, 1)).unwrap());
        assert!(!store.was_processed(&object(Some("\"e2\""), 10, 1)).unwrap());
        assert!(
            !store
                .listed_unchanged(&first.location, &first.key, Some("\"e2\""), 10)
                .unwrap()
        );
        assert!(
            !store
                .listed_unchanged(&first.location, &first.key, Some("\"e1\""), 9)
                .unwrap()
        );
        // Without an ETag the listing cannot tell; the hash decides.
        assert!(
            !store
                .listed_unchanged(&first.location, &first.key, None, 10)
                .unwrap()
        );
        assert!(store.was_processed(&object(None, 10, 1)).unwrap());
        // Another location or key is another object.
        let mut elsewhere = first.clone();
        elsewhere.location = "folder /x".into();
        assert!(!store.was_processed(&elsewhere).unwrap());
        // Recording the changed object replaces the row.
        let changed = object(Some("\"e2\""), 12, 3);
        store.record_processed(&changed, 2).unwrap();
        assert!(store.was_processed(&changed).unwrap());
        assert!(!store.was_processed(&first).unwrap());
        assert_eq!(
            store.processed_object(&first.location, &first.key).unwrap(),
            Some(changed)
        );
    }
}
