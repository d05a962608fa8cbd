//! Import runs: the input key that makes re-running an input a no-op, the one transaction that
//! applies an import (list changes, per-segment last-applied timestamps, the run and its
//! unmatched parts), and the stored reports. Unmatched parts are stored as given (their bytes
//! in `packed`), never decoded here; the rows of schema version 1 (`import_unmatched`, one
//! identifier to a row) are read back as they are.

use std::collections::BTreeMap;

use audlink_core::id::IdReason;
use audlink_core::import::{UnmatchedId, UnmatchedReason};
use audlink_core::time::Timestamp;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior};

use super::lists::apply_list_changes;
use super::objects::record_source;
use super::{
    ImportRun, InputKey, ObjectSource, SqliteStore, StoreError, StoredImport, UnmatchedPart,
    corrupt,
};
use crate::store::json_error;

/// Records `name` as used at `at` (micros).
pub(super) fn touch_data_source(
    tx: &Transaction<'_>,
    name: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO data_sources (name, first_used, last_used) VALUES (?1, ?2, ?2)
         ON CONFLICT (name) DO UPDATE SET last_used = max(last_used, excluded.last_used)",
    )?
    .execute((name, at.unix_micros()))?;
    Ok(())
}

fn from_code<T: serde::de::DeserializeOwned>(
    code: String,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(code)).map_err(json_error(what))
}

fn timestamp(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_micros(micros).ok_or_else(|| corrupt("a time out of range"))
}

impl SqliteStore {
    /// Applies and records an import with its exchange objects, in one transaction
    /// ([`Store::record_import_from`](crate::store::Store::record_import_from)).
    pub(super) fn record_import_from(
        &mut self,
        run: &ImportRun<'_>,
        sources: &[ObjectSource<'_>],
    ) -> Result<i64, StoreError> {
        serde_json::from_str::<serde::de::IgnoredAny>(run.report)
            .map_err(json_error("the import report"))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(id) = import_by_key(&tx, run.input_key)? {
            return Err(StoreError::AlreadyImported { id });
        }
        touch_data_source(&tx, run.data_source, run.created_at)?;
        apply_list_changes(&tx, run.lists)?;
        {
            let mut applied = tx.prepare_cached(
                "INSERT INTO segment_state (data_source, segment, last_applied) VALUES (?1, ?2, ?3)
                 ON CONFLICT (data_source, segment)
                 DO UPDATE SET last_applied = excluded.last_applied",
            )?;
            for (segment, ms) in run.last_applied {
                applied.execute((run.data_source, segment, ms))?;
            }
        }
        tx.execute(
            "INSERT INTO import_runs (data_source, input_key, created_at, report)
             VALUES (?1, ?2, ?3, ?4)",
            (
                run.data_source,
                &run.input_key.as_bytes()[..],
                run.created_at.unix_micros(),
                run.report,
            ),
        )?;
        let id = tx.last_insert_rowid();
        {
            // Packed, many to a row: one row per identifier costs more than the import.
            let mut part = tx.prepare_cached(
                "INSERT INTO import_unmatched_parts (import_id, first_seq, rows, packed)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for unmatched in run.unmatched {
                let first = i64::try_from(unmatched.first_seq)
                    .map_err(|_| corrupt("an unmatched part beyond i64 rows"))?;
                let rows = i64::try_from(unmatched.rows)
                    .map_err(|_| corrupt("an unmatched part of more than i64 rows"))?;
                part.execute((id, first, rows, &unmatched.bytes))?;
            }
        }
        for source in sources {
            record_source(&tx, source)?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// The import recorded with `key`, if any.
    pub(super) fn import_by_input_key(&self, key: &InputKey) -> Result<Option<i64>, StoreError> {
        import_by_key(&self.conn, key)
    }

    /// The last-applied delivery timestamp (unix ms) per segment of `data_source`.
    pub(super) fn last_applied(
        &self,
        data_source: &str,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT segment, last_applied FROM segment_state WHERE data_source = ?1
             ORDER BY segment",
        )?;
        let rows = statement.query_map([data_source], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The unmatched rows of an import recorded by schema version 1 (one to a row).
    fn legacy_unmatched(
        &self,
        id: i64,
        unmatched_limit: usize,
    ) -> Result<Vec<UnmatchedId>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT file, line, segment, identifier, reason, rule FROM import_unmatched
             WHERE import_id = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let limit = i64::try_from(unmatched_limit).unwrap_or(i64::MAX);
        let rows = statement.query_map((id, limit), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut unmatched = Vec::new();
        for row in rows {
            let (file, line, segment, identifier, reason, rule) = row?;
            unmatched.push(UnmatchedId {
                file: file.into(),
                line: u64::try_from(line).unwrap_or(0),
                segment: segment.into(),
                id: identifier,
                reason: from_code::<UnmatchedReason>(reason, "an unmatched reason")?,
                rule: match rule {
                    Some(rule) => Some(from_code::<IdReason>(rule, "an identifier rule")?),
                    None => None,
                },
            });
        }
        Ok(unmatched)
    }

    /// Import `id` as recorded: at most `unmatched_limit` of its legacy unmatched rows, then the
    /// parts that hold the rest up to the limit; [`StoreError::UnknownImport`] when there is
    /// none.
    pub(super) fn import_report(
        &self,
        id: i64,
        unmatched_limit: usize,
    ) -> Result<StoredImport, StoreError> {
        let head = self
            .conn
            .query_row(
                "SELECT data_source, created_at, report,
                     (SELECT count(*) FROM import_unmatched WHERE import_id = ?1)
                     + (SELECT coalesce(sum(rows), 0) FROM import_unmatched_parts
                        WHERE import_id = ?1)
                 FROM import_runs WHERE id = ?1",
                [id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()?;
        let Some((data_source, created_at, report, total)) = head else {
            return Err(StoreError::UnknownImport { id });
        };
        let legacy_unmatched = self.legacy_unmatched(id, unmatched_limit)?;
        let mut parts = self.conn.prepare_cached(
            "SELECT first_seq, rows, packed FROM import_unmatched_parts WHERE import_id = ?1
             ORDER BY first_seq",
        )?;
        let mut rows = parts.query([id])?;
        let mut unmatched_parts = Vec::new();
        let mut covered = legacy_unmatched.len() as u64;
        while covered < unmatched_limit as u64 {
            let Some(row) = rows.next()? else { break };
            let count = |i: usize| -> Result<u64, StoreError> {
                u64::try_from(row.get::<_, i64>(i)?)
                    .map_err(|_| corrupt(format!("import {id}: a negative unmatched part count")))
            };
            let (first_seq, part_rows) = (count(0)?, count(1)?);
            let bytes = row
                .get_ref(2)?
                .as_blob()
                .map_err(|e| corrupt(e.to_string()))?
                .to_vec();
            covered += part_rows;
            unmatched_parts.push(UnmatchedPart {
                first_seq,
                rows: part_rows,
                bytes,
            });
        }
        Ok(StoredImport {
            id,
            data_source,
            created_at: timestamp(created_at)?,
            report,
            legacy_unmatched,
            unmatched_parts,
            unmatched_total: u64::try_from(total).unwrap_or(0),
        })
    }
}

fn import_by_key(conn: &rusqlite::Connection, key: &InputKey) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM import_runs WHERE input_key = ?1")?
        .query_row([&key.as_bytes()[..]], |row| row.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use audlink_core::import::ListChange;
    use audlink_core::recipients::{RecipientIds, RecipientKey, RecipientsTable};

    use super::*;
    use crate::store::Store;
    use crate::store::testing::{TempDir, store};

    fn keys(ids: &[i64]) -> Vec<RecipientKey> {
        ids.iter().copied().map(RecipientKey::Int).collect()
    }

    fn change(list: &str, added: &[i64], removed: &[i64], members: u64) -> ListChange {
        ListChange {
            list: list.to_owned(),
            replaced: false,
            added: keys(added).into(),
            removed: keys(removed).into(),
            members,
        }
    }

    fn loaded(name: &str) -> (TempDir, SqliteStore) {
        let (dir, mut store) = store(name);
        let table = RecipientsTable {
            ids: RecipientIds::Int((1..=10).collect()),
            columns: Vec::new(),
        };
        store.upsert_recipients(&table).unwrap();
        (dir, store)
    }

    fn run<'a>(
        key: &'a InputKey,
        lists: &'a [ListChange],
        applied: &'a BTreeMap<String, i64>,
        unmatched: &'a [UnmatchedPart],
    ) -> ImportRun<'a> {
        ImportRun {
            data_source: "ecid",
            input_key: key,
            created_at: Timestamp::from_unix_seconds(1_700_000_000).unwrap(),
            lists,
            last_applied: applied,
            report: "{\"totals\": {}}",
            unmatched,
        }
    }

    fn unmatched_row(line: u64) -> UnmatchedId {
        UnmatchedId {
            file: "a.sync".into(),
            line,
            segment: "7".into(),
            id: "x".to_owned(),
            reason: UnmatchedReason::InvalidFormat,
            rule: Some(IdReason::BadLength),
        }
    }

    /// Opaque parts of `rows` rows each, `n` of them.
    fn parts(sizes: &[u64]) -> Vec<UnmatchedPart> {
        let mut first_seq = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(i, &rows)| {
                let part = UnmatchedPart {
                    first_seq,
                    rows,
                    bytes: vec![i as u8; 3 + i],
                };
                first_seq += rows;
                part
            })
            .collect()
    }

    /// The parts come back as stored, in order, as many as hold the rows up to the limit.
    /// (That their rows read back is `unmatched.rs`'s test.)
    #[test]
    fn unmatched_parts_are_stored_as_given_and_read_back_up_to_the_limit() {
        let (_dir, mut store) = loaded("unmatched-parts");
        let given = parts(&[65_536, 65_536, 17]);
        let key = InputKey::from_bytes([9; 32]);
        let applied = BTreeMap::new();
        let id = store
            .record_import(&run(&key, &[], &applied, &given))
            .unwrap();
        let stored: i64 = store
            .conn
            .query_row("SELECT count(*) FROM import_unmatched_parts", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(stored, 3);
        for (limit, expected) in [
            (0, 0),
            (5, 1),
            (65_536, 1),
            (65_539, 2),
            (131_089, 3),
            (usize::MAX, 3),
        ] {
            let report = store.import_report(id, limit).unwrap();
            assert_eq!(report.unmatched_total, 131_089);
            assert!(report.legacy_unmatched.is_empty());
            assert_eq!(report.unmatched_parts, given[..expected], "limit {limit}");
        }
    }

    #[test]
    fn unmatched_rows_of_a_version_1_import_still_read_back() {
        let (_dir, mut store) = loaded("unmatched-legacy");
        let key = InputKey::from_bytes([8; 32]);
        let applied = BTreeMap::new();
        let id = store.record_import(&run(&key, &[], &applied, &[])).unwrap();
        for seq in 0..3_i64 {
            store
                .conn
                .execute(
                    "INSERT INTO import_unmatched
                     (import_id, seq, file, line, segment, identifier, reason, rule)
                     VALUES (?1, ?2, 'a.sync', ?3, '7', 'x', 'invalid_format', 'bad_length')",
                    (id, seq, seq + 1),
                )
                .unwrap();
        }
        let report = store.import_report(id, 2).unwrap();
        assert_eq!(report.unmatched_total, 3);
        assert_eq!(
            report.legacy_unmatched,
            [unmatched_row(1), unmatched_row(2)]
        );
        assert!(report.unmatched_parts.is_empty());
    }

    #[test]
    fn an_import_applies_lists_and_is_found_by_its_input_key() {
        let (_dir, mut store) = loaded("import");
        // (How keys are made is `input_key.rs`'s test.)
        let key = InputKey::from_bytes([7; 32]);

        assert_eq!(store.import_by_input_key(&key).unwrap(), None);
        let lists = [
            change("vip", &[3, 1, 2], &[], 3),
            change("empty", &[], &[], 0),
        ];
        let applied = BTreeMap::from([("7".to_owned(), 1_000_i64)]);
        let rows = parts(&[3]);
        let id = store
            .record_import(&run(&key, &lists, &applied, &rows))
            .unwrap();
        assert_eq!(store.import_by_input_key(&key).unwrap(), Some(id));
        assert_eq!(store.last_applied("ecid").unwrap(), applied);
        assert!(store.last_applied("other").unwrap().is_empty());
        assert_eq!(store.list_members("vip").unwrap(), keys(&[1, 2, 3]));
        assert_eq!(store.list_members("empty").unwrap(), keys(&[]));
        let names: Vec<(String, u64)> = store
            .lists()
            .unwrap()
            .into_iter()
            .map(|l| (l.name, l.members))
            .collect();
        assert_eq!(names, [("empty".to_owned(), 0), ("vip".to_owned(), 3)]);
        let err = store.list_members("nope").unwrap_err();
        assert!(matches!(err, StoreError::UnknownList { .. }), "{err}");
        let current = store.lists_members(&["vip", "nope"]).unwrap();
        assert_eq!(current.keys().collect::<Vec<_>>(), ["vip"]);

        // The same input again is refused and writes nothing.
        let more = [change("vip", &[4], &[], 4)];
        let err = store
            .record_import(&run(&key, &more, &applied, &[]))
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyImported { id: found } if found == id));
        assert_eq!(store.list_members("vip").unwrap(), keys(&[1, 2, 3]));

        // The stored report, with a limit on its unmatched rows.
        let report = store.import_report(id, 2).unwrap();
        assert_eq!(report.report, "{\"totals\": {}}");
        assert_eq!(report.data_source, "ecid");
        assert_eq!(report.unmatched_parts, rows);
        assert_eq!(report.unmatched_total, 3);
        let err = store.import_report(id + 1, 10).unwrap_err();
        assert!(matches!(err, StoreError::UnknownImport { .. }), "{err}");

        // A second import removes and adds; the timestamps move.
        let key2 = InputKey::from_bytes([2; 32]);
        let next = [change("vip", &[5], &[1, 2], 2)];
        let applied2 = BTreeMap::from([("7".to_owned(), 2_000_i64), ("8".to_owned(), 5)]);
        let id2 = store
            .record_import(&run(&key2, &next, &applied2, &[]))
            .unwrap();
        assert!(id2 > id);
        assert_eq!(store.list_members("vip").unwrap(), keys(&[3, 5]));
        assert_eq!(store.last_applied("ecid").unwrap(), applied2);
    }

    /// An exchange object is recorded (ledger and sync run) with the import that read it, and
    /// not at all when that import fails.
    #[test]
    fn objects_are_recorded_in_the_import_transaction_or_not_at_all() {
        use crate::store::{ObjectSource, ProcessedObject};
        let (_dir, mut store) = loaded("import-objects");
        let sync_run = store
            .begin_run("in", "import", Timestamp::from_unix_seconds(1).unwrap())
            .unwrap();
        let object = |key: &str| ProcessedObject {
            location: "folder /x".to_owned(),
            key: key.to_owned(),
            etag: None,
            size: 3,
            sha256: [7; 32],
        };
        let (good, bad) = (object("out/a.sync"), object("out/b.sync"));
        let source = |object| ObjectSource {
            object,
            at_ms: 5,
            run: Some(sync_run),
        };
        let applied = BTreeMap::new();
        let failing = [change("a", &[11], &[], 1)];
        let err = store
            .record_import_from(
                &run(&InputKey::from_bytes([3; 32]), &failing, &applied, &[]),
                &[source(&bad)],
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownMember { .. }), "{err}");
        assert!(!store.was_processed(&bad).unwrap());
        let lists = [change("a", &[1], &[], 1)];
        store
            .record_import_from(
                &run(&InputKey::from_bytes([4; 32]), &lists, &applied, &[]),
                &[source(&good)],
            )
            .unwrap();
        assert!(store.was_processed(&good).unwrap());
        let recorded = store.run(sync_run).unwrap().unwrap();
        let keys: Vec<&str> = recorded.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["out/a.sync"]);
        assert_eq!(recorded.objects[0].action, "imported");
    }

    #[test]
    fn a_failing_import_leaves_every_list_and_timestamp_as_it_was() {
        let (dir, mut store) = loaded("atomic");
        let key = InputKey::from_bytes([1; 32]);
        let first = [change("a", &[1, 2], &[], 2), change("b", &[3], &[], 1)];
        let applied = BTreeMap::from([("7".to_owned(), 1_000_i64)]);
        store
            .record_import(&run(&key, &first, &applied, &[]))
            .unwrap();
        let before = store.lists_members(&["a", "b"]).unwrap();

        let later = BTreeMap::from([("7".to_owned(), 9_000_i64)]);
        // The first change applies, the second names a recipient that does not exist: the
        // error comes mid-transaction, after list `a` and list `new` were written.
        let key2 = InputKey::from_bytes([2; 32]);
        let bad = [
            change("a", &[3], &[1], 2),
            change("new", &[4], &[], 1),
            change("b", &[11], &[3], 1),
        ];
        let err = store
            .record_import(&run(&key2, &bad, &later, &[]))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::UnknownMember { list } if list == "b"),
            "{err}"
        );
        // A change whose promised size does not match: the list moved meanwhile.
        let stale = [change("a", &[3], &[], 2)];
        let err = store
            .record_import(&run(&key2, &stale, &later, &[]))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::ListChanged { list, expected: 2, found: 3 } if list == "a"),
            "{err}"
        );
        // A text key in an integer id column is no member either.
        let text = [ListChange {
            added: vec![RecipientKey::String("x".to_owned())].into(),
            ..change("a", &[], &[], 3)
        }];
        let err = store
            .record_import(&run(&key2, &text, &later, &[]))
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownMember { .. }), "{err}");

        drop(store);
        let store = SqliteStore::open(&dir.db()).unwrap();
        assert_eq!(store.lists_members(&["a", "b", "new"]).unwrap(), before);
        assert_eq!(store.last_applied("ecid").unwrap(), applied);
        assert_eq!(store.import_by_input_key(&key2).unwrap(), None);
        let names: Vec<String> = store.lists().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn list_changes_need_recipients() {
        let (_dir, mut store) = store("norecipients");
        let key = InputKey::from_bytes([1; 32]);
        let lists = [change("a", &[1], &[], 1)];
        let err = store
            .record_import(&run(&key, &lists, &BTreeMap::new(), &[]))
            .unwrap_err();
        assert!(matches!(err, StoreError::NoRecipients), "{err}");
        // Bad report JSON is refused before anything is written.
        let none = BTreeMap::new();
        let mut bad = run(&key, &[], &none, &[]);
        bad.report = "not json";
        assert!(matches!(
            store.record_import(&bad).unwrap_err(),
            StoreError::Json { .. }
        ));
        assert!(store.lists().unwrap().is_empty());
    }
}
