//! The file exchange's ledger: `processed_objects`, one row per (location, key) holding the
//! object as it was when it was processed — ETag (when the backend has one), size and SHA-256
//! of its bytes.
//!
//! [`Store::was_processed`] is the decision the exchange makes per listed object; a row is
//! written by [`Store::record_processed`] only after the object's processing succeeded, so an
//! interrupted run processes the object again rather than never.
//!
//! [`Store::was_processed`]: crate::store::Store::was_processed
//! [`Store::record_processed`]: crate::store::Store::record_processed

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::sync_runs::add_object;
use super::{ObjectSource, ProcessedObject, RunObject, SqliteStore, StoreError, corrupt};

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

impl SqliteStore {
    /// The ledger's row of `key` in `location`, if it was ever processed.
    pub(super) fn processed_object(
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

    /// Records `object` as processed at `at_ms` (unix milliseconds), replacing an earlier row
    /// of the same location and key.
    pub(super) fn record_processed(
        &self,
        object: &ProcessedObject,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        insert_processed(&self.conn, object, at_ms)
    }

    /// Records objects whose content was applied before (the same input imported already), in
    /// one transaction.
    pub(super) fn record_sources(
        &mut self,
        sources: &[ObjectSource<'_>],
    ) -> Result<(), StoreError> {
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
    use super::*;
    use crate::store::testing::store;
    use crate::store::{SCHEMA_VERSION, Store};

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
        let store = SqliteStore::open(&dir.db()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
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
