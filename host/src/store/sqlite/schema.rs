//! Versioned schema migrations: `PRAGMA user_version` is the number of steps applied; the
//! pending steps run in order in one transaction. The recipients-dependent tables
//! (`recipients`, `list_members`, `visitor_links`) are created by the first recipients load
//! (their id column's type is decided then, see `recipients.rs`); a later migration that
//! changes them must handle both their presence and their absence.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The migration steps, in order; step `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: registry, lists, data sources, import and export bookkeeping.
    "CREATE TABLE recipient_columns (
        name TEXT NOT NULL PRIMARY KEY,
        type TEXT NOT NULL,
        position INTEGER NOT NULL UNIQUE
    );
    CREATE TABLE lists (
        name TEXT NOT NULL PRIMARY KEY
    ) WITHOUT ROWID;
    CREATE TABLE data_sources (
        name TEXT NOT NULL PRIMARY KEY,
        first_used INTEGER NOT NULL,
        last_used INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE segment_state (
        data_source TEXT NOT NULL REFERENCES data_sources (name),
        segment TEXT NOT NULL,
        last_applied INTEGER NOT NULL,
        PRIMARY KEY (data_source, segment)
    ) WITHOUT ROWID;
    CREATE TABLE import_runs (
        id INTEGER PRIMARY KEY,
        data_source TEXT NOT NULL REFERENCES data_sources (name),
        input_key BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        report TEXT NOT NULL
    );
    CREATE TABLE import_unmatched (
        import_id INTEGER NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        file TEXT NOT NULL,
        line INTEGER NOT NULL,
        segment TEXT NOT NULL,
        identifier TEXT NOT NULL,
        reason TEXT NOT NULL,
        rule TEXT,
        PRIMARY KEY (import_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE audiences (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        data_source TEXT NOT NULL REFERENCES data_sources (name),
        snapshot_at INTEGER,
        UNIQUE (name, data_source)
    );
    CREATE TABLE audience_identifiers (
        audience_id INTEGER NOT NULL REFERENCES audiences (id) ON DELETE CASCADE,
        identifier TEXT NOT NULL,
        PRIMARY KEY (audience_id, identifier)
    ) WITHOUT ROWID;
    CREATE TABLE export_runs (
        id INTEGER PRIMARY KEY,
        audience_id INTEGER NOT NULL REFERENCES audiences (id),
        run_key BLOB NOT NULL UNIQUE,
        mode TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
        files TEXT,
        report TEXT
    );",
    // 2: unmatched identifiers stored packed, many to a row (the wire's packed form; imports
    // recorded before keep their rows in `import_unmatched`).
    "CREATE TABLE import_unmatched_parts (
        id INTEGER PRIMARY KEY,
        import_id INTEGER NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
        first_seq INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        packed BLOB NOT NULL,
        UNIQUE (import_id, first_seq)
    );",
    // 3: the file exchange's ledger of processed objects, per location (folder or bucket).
    "CREATE TABLE processed_objects (
        location TEXT NOT NULL,
        key TEXT NOT NULL,
        etag TEXT,
        size INTEGER NOT NULL,
        sha256 BLOB NOT NULL,
        processed_at INTEGER NOT NULL,
        PRIMARY KEY (location, key)
    ) WITHOUT ROWID;",
    // 4: the runs of `audlink sync`'s jobs and the objects each imported or uploaded.
    "CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY,
        job TEXT NOT NULL,
        kind TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        status TEXT NOT NULL,
        report TEXT,
        error TEXT
    );
    CREATE INDEX sync_runs_by_job ON sync_runs (job, id);
    CREATE TABLE sync_run_objects (
        run_id INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        action TEXT NOT NULL,
        location TEXT NOT NULL,
        key TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;",
    // 5: `audlink serve`'s jobs — imports and exports run in
    // the background, their status, last step, result or error and files.
    "CREATE TABLE IF NOT EXISTS serve_jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        step TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
        result TEXT,
        error TEXT,
        files TEXT NOT NULL DEFAULT '[]'
    );",
];

/// The schema version this build writes: the number of migration steps.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the pending migrations in one transaction; a database from a newer version is
/// [`StoreError::NewerSchema`] (and is left untouched).
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let start = usize::try_from(found).map_err(|_| StoreError::Corrupt {
        detail: format!("a negative schema version ({found})"),
    })?;
    if start == MIGRATIONS.len() {
        return Ok(());
    }
    for step in &MIGRATIONS[start..] {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{SCHEMA_VERSION, SqliteStore, StoreError};
    use crate::store::Store;
    use crate::store::testing::{TempDir, store};

    #[test]
    fn migrates_from_empty_and_reopens() {
        let (dir, store) = store("migrate");
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        drop(store);
        let again = SqliteStore::open(&dir.db()).unwrap();
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
        // `create` of an existing database is an open.
        drop(again);
        let created = SqliteStore::create(&dir.db()).unwrap();
        assert_eq!(created.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn open_of_a_missing_file_is_an_error() {
        let dir = TempDir::new("missing");
        let err = SqliteStore::open(&dir.db()).unwrap_err();
        assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("audlink init"), "{err}");
        assert!(!dir.db().exists());
    }

    #[test]
    fn newer_schema_is_refused() {
        let (dir, store) = store("newer");
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(store);
        let err = SqliteStore::open(&dir.db()).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, supported }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("the database has schema version")
        );
    }
}
