//! Export runs and snapshots: a run is begun before any file is written (so a retried run
//! finds its timestamp by its run key and writes the same file names) and finished with its
//! files, report and the audience's new snapshot in one transaction.

use audlink_core::export::Snapshot;
use audlink_core::time::Timestamp;
use rusqlite::{OptionalExtension, TransactionBehavior};

use super::imports::touch_data_source;
use super::{ExportStart, ExportStarted, InputKey, SqliteStore, StoreError};
use crate::store::json_error;

impl SqliteStore {
    /// Begins an export run, or finds the run begun before with the same run key (whose
    /// timestamp then wins).
    pub(super) fn begin_export(
        &mut self,
        start: &ExportStart<'_>,
    ) -> Result<ExportStarted, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = &start.run_key.as_bytes()[..];
        let before = tx
            .query_row(
                "SELECT id, timestamp, finished_at IS NOT NULL FROM export_runs WHERE run_key = ?1",
                [key],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        if let Some((id, timestamp, finished)) = before {
            return Ok(ExportStarted {
                id,
                timestamp,
                resumed: true,
                finished,
            });
        }
        touch_data_source(&tx, start.data_source, start.created_at)?;
        tx.execute(
            "INSERT INTO audiences (name, data_source) VALUES (?1, ?2)
             ON CONFLICT (name, data_source) DO NOTHING",
            (start.audience, start.data_source),
        )?;
        tx.execute(
            "INSERT INTO export_runs (audience_id, run_key, mode, timestamp, created_at)
             VALUES ((SELECT id FROM audiences WHERE name = ?1 AND data_source = ?2),
                     ?3, ?4, ?5, ?6)",
            (
                start.audience,
                start.data_source,
                key,
                start.mode.code(),
                start.timestamp,
                start.created_at.unix_micros(),
            ),
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(ExportStarted {
            id,
            timestamp: start.timestamp,
            resumed: false,
            finished: false,
        })
    }

    /// Finishes export run `id` in one transaction: the files written, the report (JSON text)
    /// and the audience's new snapshot (replacing the previous one).
    pub(super) fn finish_export(
        &mut self,
        id: i64,
        files: &[String],
        report: &str,
        snapshot: &Snapshot,
        finished_at: Timestamp,
    ) -> Result<(), StoreError> {
        serde_json::from_str::<serde::de::IgnoredAny>(report)
            .map_err(json_error("the export report"))?;
        let files = serde_json::to_string(files).map_err(json_error("the file names"))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let run: Option<(i64, bool)> = tx
            .query_row(
                "SELECT audience_id, finished_at IS NOT NULL FROM export_runs WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let audience = match run {
            None => return Err(StoreError::UnknownExport { id }),
            Some((_, true)) => return Err(StoreError::ExportFinished { id }),
            Some((audience, false)) => audience,
        };
        let at = finished_at.unix_micros();
        tx.execute(
            "DELETE FROM audience_identifiers WHERE audience_id = ?1",
            [audience],
        )?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audience_identifiers (audience_id, identifier) VALUES (?1, ?2)",
            )?;
            for identifier in snapshot.identifiers() {
                insert.execute((audience, identifier))?;
            }
        }
        tx.execute(
            "UPDATE audiences SET snapshot_at = ?2 WHERE id = ?1",
            (audience, at),
        )?;
        tx.execute(
            "UPDATE export_runs SET finished_at = ?2, files = ?3, report = ?4 WHERE id = ?1",
            (id, at, files, report),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The timestamp stored for the export run begun with `run_key`, if any.
    pub(super) fn export_timestamp(&self, run_key: &InputKey) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT timestamp FROM export_runs WHERE run_key = ?1",
                [&run_key.as_bytes()[..]],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// The identifiers last exported to the audience `audience` of `data_source`; `None` when
    /// no export to it was finished.
    pub(super) fn snapshot(
        &self,
        audience: &str,
        data_source: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM audiences
                 WHERE name = ?1 AND data_source = ?2 AND snapshot_at IS NOT NULL",
                (audience, data_source),
                |row| row.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Ok(None);
        };
        let mut statement = self.conn.prepare_cached(
            "SELECT identifier FROM audience_identifiers WHERE audience_id = ?1
             ORDER BY identifier",
        )?;
        let rows = statement.query_map([id], |row| row.get::<_, String>(0))?;
        let identifiers = rows.collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Snapshot::new(identifiers)))
    }
}

#[cfg(test)]
mod tests {
    use audlink_core::export::ExportMode;

    use super::*;
    use crate::store::testing::store;

    fn key(n: u8) -> InputKey {
        InputKey::from_bytes([n; 32])
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).unwrap()
    }

    #[test]
    fn snapshot_round_trips_and_a_retry_reuses_its_timestamp() {
        let (dir, mut store) = store("export");
        assert_eq!(store.snapshot("vip", "ecid").unwrap(), None);
        let run_key = key(1);
        let start = ExportStart {
            audience: "vip",
            data_source: "ecid",
            run_key: &run_key,
            mode: ExportMode::Delta,
            timestamp: 1_700_000_000,
            created_at: at(1_700_000_000),
        };
        let begun = store.begin_export(&start).unwrap();
        assert!(!begun.resumed);
        // Begun, not finished: still no snapshot; a retry with a later clock keeps the time.
        assert_eq!(store.snapshot("vip", "ecid").unwrap(), None);
        let retry = store
            .begin_export(&ExportStart {
                timestamp: 1_700_000_999,
                ..start
            })
            .unwrap();
        assert_eq!(retry.id, begun.id);
        assert_eq!(retry.timestamp, 1_700_000_000);
        assert!(retry.resumed && !retry.finished);
        assert_eq!(
            store.export_timestamp(&run_key).unwrap(),
            Some(1_700_000_000)
        );
        assert_eq!(store.export_timestamp(&key(9)).unwrap(), None);
        let snapshot = Snapshot::new(["b".to_owned(), "a".to_owned(), "c".to_owned()]);
        let files = ["ftp_dpm_1_1700000000.sync".to_owned()];
        store
            .finish_export(
                begun.id,
                &files,
                "{\"exported\": 3}",
                &snapshot,
                at(1_700_000_001),
            )
            .unwrap();
        let err = store
            .finish_export(begun.id, &files, "{}", &snapshot, at(1_700_000_002))
            .unwrap_err();
        assert!(matches!(err, StoreError::ExportFinished { .. }), "{err}");
        drop(store);
        let mut store = SqliteStore::open(&dir.db()).unwrap();
        assert_eq!(store.snapshot("vip", "ecid").unwrap(), Some(snapshot));
        assert_eq!(store.snapshot("vip", "other").unwrap(), None);
        // The next run replaces the snapshot, also with an empty one.
        let next_key = key(2);
        let next = store
            .begin_export(&ExportStart {
                run_key: &next_key,
                timestamp: 1_700_001_000,
                ..start
            })
            .unwrap();
        assert!(!next.resumed);
        store
            .finish_export(next.id, &[], "{}", &Snapshot::default(), at(1_700_001_000))
            .unwrap();
        assert_eq!(
            store.snapshot("vip", "ecid").unwrap(),
            Some(Snapshot::default())
        );
        let again = store.begin_export(&start).unwrap();
        assert!(again.resumed && again.finished);
        let err = store
            .finish_export(99, &[], "{}", &Snapshot::default(), at(1))
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownExport { id: 99 }));
    }
}
