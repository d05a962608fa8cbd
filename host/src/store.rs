//! The database of the `audlink` command, behind one backend-neutral interface: the [`Store`]
//! trait. Commands, sync and the server hold a `Box<dyn Store>` (or `&mut dyn Store`) from
//! [`open`] / [`create`] of the [`DbUrl`] that `--db` names, and never see the backend.
//!
//! # Backends
//!
//! - [`sqlite`]: [`SqliteStore`], one SQLite file (WAL, versioned migrations) — `--db PATH`,
//!   `sqlite:PATH` or `sqlite://PATH`; the only backend today.
//! - PostgreSQL (`postgres://…`, issue 22): parsed by [`DbUrl`], refused by [`open`] with
//!   [`StoreError::Unsupported`] until it exists.
//!
//! A backend owns its SQL text (the store's SQL lives in its module and nowhere else), its
//! migrations and its error type (wrapped as [`StoreError::Backend`], shown as `database
//! error: …`). It says which SQL [`Dialect`] segment rules are compiled for
//! ([`Store::dialect`]); the rule SQL itself comes from [`audlink_core::rule::sql::to_sql`] and
//! runs in the backend under a deadline ([`Store::rule_ids`] and friends).
//!
//! The store keeps what it is given: an import's unmatched identifiers come as opaque
//! [`UnmatchedPart`]s (encoded by [`crate::unmatched`]), input keys as [`InputKey`]s (hashed by
//! [`crate::input_key`]). The values it takes and gives are in `model.rs`, re-exported here.
//!
//! # Tables
//!
//! Whatever the backend, the database holds (names as in [`SqlTables::default`], so a
//! compiled rule runs as is):
//!
//! - the recipients table (`recipients`: an `id` and typed attribute columns, types fixed at
//!   first load, registered in `recipient_columns`), visitor links (`visitor_links`);
//! - lists (`lists`, `list_members`);
//! - import runs (`import_runs`, keyed by their [`InputKey`]; their unmatched parts), the data
//!   sources used and the last delivery applied per segment (`data_sources`,
//!   `segment_state`);
//! - export runs and the audiences' snapshots (`export_runs`, `audiences`,
//!   `audience_identifiers`);
//! - the file exchange's ledger (`processed_objects`), `audlink sync`'s runs (`sync_runs`,
//!   `sync_run_objects`) and `audlink serve`'s jobs (`serve_jobs`).
//!
//! Every write method is one transaction: an error leaves the database as it was.
//!
//! [`SqlTables::default`]: audlink_core::rule::sql::SqlTables::default

mod model;
pub mod sqlite;
mod url;

use std::collections::BTreeMap;
use std::time::Duration;

use audlink_core::export::Snapshot;
use audlink_core::format::links::VisitorLink;
use audlink_core::recipients::{ColumnType, RecipientKey, RecipientsTable};
use audlink_core::rule::Schema;
use audlink_core::rule::preview::{Breakdown, Count, Sample};
use audlink_core::rule::sql::{Dialect, SqlWhere};
use audlink_core::time::Timestamp;

pub use model::{
    ExportStart, ExportStarted, ImportRun, InputKey, Job, JobStatus, LinkRejection, LinksUpsert,
    ListSummary, ObjectSource, ProcessedObject, RecipientsUpsert, RejectedLink, RunObject,
    RunStatus, StoredImport, SyncRun, UnmatchedPart,
};
pub(crate) use model::{parse_type_code, type_code};
pub use sqlite::{SCHEMA_VERSION, SqliteStore};
pub use url::{DbUrl, DbUrlError, PostgresUrl};

/// Opens the existing database `url` names ([`StoreError::Missing`] when there is none) and
/// applies any pending migration.
pub fn open(url: &DbUrl) -> Result<Box<dyn Store>, StoreError> {
    match url {
        DbUrl::Sqlite(path) => Ok(Box::new(SqliteStore::open(path)?)),
        DbUrl::Postgres(url) => Err(StoreError::Unsupported {
            location: url.to_string(),
        }),
    }
}

/// Opens the database `url` names, creating it if missing (`audlink init`), and brings its
/// schema up to date.
pub fn create(url: &DbUrl) -> Result<Box<dyn Store>, StoreError> {
    match url {
        DbUrl::Sqlite(path) => Ok(Box::new(SqliteStore::create(path)?)),
        DbUrl::Postgres(url) => Err(StoreError::Unsupported {
            location: url.to_string(),
        }),
    }
}

/// An open audlink database, whatever the backend.
///
/// Object-safe and [`Send`] (a server request moves its store to a blocking thread), not
/// `Sync`. Methods take `&self` or `&mut self` as the SQLite store did; a backend whose client
/// needs `&mut` for every statement keeps it in a `RefCell`. Every write is one transaction.
pub trait Store: Send {
    /// What to call the database in messages (a SQLite file's path; a server's URL without
    /// its password).
    fn location(&self) -> String;

    /// The SQL dialect segment rules are compiled for to run here.
    fn dialect(&self) -> Dialect;

    /// The schema version of the database.
    fn schema_version(&self) -> Result<i64, StoreError>;

    // Recipients and visitor links.

    /// The schema rules are checked against: `id` and every attribute column with its type
    /// (empty before the first load).
    fn schema(&self) -> Result<Schema, StoreError>;

    /// Whether recipients were ever loaded (the id column's type is fixed).
    fn has_recipients_table(&self) -> Result<bool, StoreError>;

    /// Number of recipients.
    fn recipients_count(&self) -> Result<u64, StoreError>;

    /// Inserts or updates (by id) every row of `table` in one transaction. The first load
    /// fixes the id's and the columns' types; a later table may use a column with a compatible
    /// type and add columns ([`StoreError::ColumnType`] otherwise). On error nothing is
    /// written.
    fn upsert_recipients(
        &mut self,
        table: &RecipientsTable,
    ) -> Result<RecipientsUpsert, StoreError> {
        let mut write = self.begin_recipients()?;
        write.write(table)?;
        write.commit()
    }

    /// Starts writing recipients in parts, all in one transaction ([`RecipientsWriter`]):
    /// nothing is visible until [`RecipientsWriter::commit`], and dropping it writes nothing.
    fn begin_recipients(&mut self) -> Result<Box<dyn RecipientsWriter + '_>, StoreError>;

    /// The whole recipients table, ordered by id (numerically or bytewise), columns in
    /// registry order; an empty integer-id table before the first load.
    fn recipients_table(&self) -> Result<RecipientsTable, StoreError>;

    /// The recipients table with only the attribute columns named in `wanted` (those that
    /// exist, in registry order): what an import or export needs, without the rest.
    fn recipients_columns(&self, wanted: &[&str]) -> Result<RecipientsTable, StoreError>;

    /// Inserts or updates visitor links in one transaction. A link whose recipient is not in
    /// the recipients table is rejected (not written) with a reason; a link whose (visitor,
    /// recipient) pair exists keeps the later `last_seen` of both (an unknown one is the
    /// oldest). [`StoreError::NoRecipients`] before the first recipients load.
    fn upsert_links(&mut self, links: &[VisitorLink]) -> Result<LinksUpsert, StoreError>;

    /// Every visitor link, ordered by visitor id then recipient id (empty before the first
    /// recipients load).
    fn links(&self) -> Result<Vec<VisitorLink>, StoreError>;

    // Lists.

    /// Every list with its number of members, by name (bytewise).
    fn lists(&self) -> Result<Vec<ListSummary>, StoreError>;

    /// The members of list `name`, ordered by id (numerically or bytewise);
    /// [`StoreError::UnknownList`] when there is no such list.
    fn list_members(&self, name: &str) -> Result<Vec<RecipientKey>, StoreError>;

    /// The members of each of `names` that exists (a missing list is left out), as an import
    /// request's current members or a rule evaluation's lists.
    fn lists_members(
        &self,
        names: &[&str],
    ) -> Result<BTreeMap<String, Vec<RecipientKey>>, StoreError>;

    // Import runs.

    /// Applies and records an import in one transaction: the list changes (see
    /// [`StoreError::ListChanged`], [`StoreError::UnknownMember`]), the last-applied
    /// timestamps, the run with its report and unmatched parts. Returns the import id. An
    /// input key recorded before is [`StoreError::AlreadyImported`]; on any error nothing is
    /// written.
    fn record_import(&mut self, run: &ImportRun<'_>) -> Result<i64, StoreError> {
        self.record_import_from(run, &[])
    }

    /// [`Store::record_import`] of exchange objects: each of `sources` is recorded in the
    /// ledger (and its sync run) in the same transaction as the lists it changed.
    fn record_import_from(
        &mut self,
        run: &ImportRun<'_>,
        sources: &[ObjectSource<'_>],
    ) -> Result<i64, StoreError>;

    /// The import recorded with `key`, if any.
    fn import_by_input_key(&self, key: &InputKey) -> Result<Option<i64>, StoreError>;

    /// The last-applied delivery timestamp (unix ms) per segment of `data_source`.
    fn last_applied(&self, data_source: &str) -> Result<BTreeMap<String, i64>, StoreError>;

    /// Import `id` as recorded, with the unmatched rows up to `unmatched_limit` (in recorded
    /// order: the legacy rows, then the parts that hold the rest, see [`StoredImport`]);
    /// [`StoreError::UnknownImport`] when there is none.
    fn import_report(&self, id: i64, unmatched_limit: usize) -> Result<StoredImport, StoreError>;

    // Export runs and snapshots.

    /// Begins an export run, or finds the run begun before with the same run key (whose
    /// timestamp then wins).
    fn begin_export(&mut self, start: &ExportStart<'_>) -> Result<ExportStarted, StoreError>;

    /// Finishes export run `id` in one transaction: the files written, the report (JSON text)
    /// and the audience's new snapshot (replacing the previous one).
    fn finish_export(
        &mut self,
        id: i64,
        files: &[String],
        report: &str,
        snapshot: &Snapshot,
        finished_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The timestamp stored for the export run begun with `run_key`, if any.
    fn export_timestamp(&self, run_key: &InputKey) -> Result<Option<i64>, StoreError>;

    /// The identifiers last exported to the audience `audience` of `data_source`; `None` when
    /// no export to it was finished.
    fn snapshot(&self, audience: &str, data_source: &str) -> Result<Option<Snapshot>, StoreError>;

    // The file exchange's ledger.

    /// The ledger's row of `key` in `location`, if it was ever processed.
    fn processed_object(
        &self,
        location: &str,
        key: &str,
    ) -> Result<Option<ProcessedObject>, StoreError>;

    /// Whether `object` was processed as it is now: a row for its location and key with the
    /// same size and content hash, and the same ETag when both the row and the object have one.
    /// A changed object (another size, hash or ETag) is not processed yet.
    fn was_processed(&self, object: &ProcessedObject) -> Result<bool, StoreError> {
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
    fn listed_unchanged(
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
    fn record_processed(&self, object: &ProcessedObject, at_ms: i64) -> Result<(), StoreError>;

    /// Records objects whose content was applied before (the same input imported already), in
    /// one transaction.
    fn record_sources(&mut self, sources: &[ObjectSource<'_>]) -> Result<(), StoreError>;

    // `audlink sync`'s runs.

    /// Begins a run of `job` (`running`); its id.
    fn begin_run(&self, job: &str, kind: &str, at: Timestamp) -> Result<i64, StoreError>;

    /// Adds an object to run `run`.
    fn add_run_object(&self, run: i64, object: &RunObject) -> Result<(), StoreError>;

    /// Finishes run `run` (still `running`) with `status`, its report (JSON text) and error.
    fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        report: Option<&str>,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Marks every run still `running` as `interrupted` (their process ended without finishing
    /// them); how many. Only call this while no other `audlink sync` runs on the database.
    fn interrupt_unfinished_runs(&self, at: Timestamp) -> Result<usize, StoreError>;

    /// The last `limit` runs (of `job` when given), newest first, with their objects.
    fn runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<SyncRun>, StoreError>;

    /// The run `run`, if there is one.
    fn run(&self, run: i64) -> Result<Option<SyncRun>, StoreError>;

    // `audlink serve`'s jobs.

    /// Records a new `queued` job of `kind`; its id.
    fn create_job(&mut self, kind: &str, at: Timestamp) -> Result<i64, StoreError>;

    /// Moves job `id` to `running` at `step` (only from `queued` or `running`).
    fn job_step(&mut self, id: i64, step: &str) -> Result<(), StoreError>;

    /// Ends job `id` (still `queued` or `running`) as `status` with its result or error and
    /// files; false when it had ended already (e.g. marked interrupted).
    fn finish_job(
        &mut self,
        id: i64,
        status: JobStatus,
        result: Option<&serde_json::Value>,
        error: Option<&serde_json::Value>,
        files: &[String],
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Marks every `queued` or `running` job `interrupted`; how many there were.
    fn interrupt_jobs(&mut self, at: Timestamp) -> Result<usize, StoreError>;

    /// Job `id`, if there is one.
    fn job(&self, id: i64) -> Result<Option<Job>, StoreError>;

    // Segment rules, compiled for [`Store::dialect`], run under a deadline
    // ([`StoreError::Deadline`]).

    /// The ids of the recipients `clause` selects, ordered by id.
    fn rule_ids(
        &mut self,
        clause: &SqlWhere,
        deadline: Duration,
    ) -> Result<Vec<RecipientKey>, StoreError>;

    /// How many recipients `clause` selects, of how many.
    fn rule_count(&mut self, clause: &SqlWhere, deadline: Duration) -> Result<Count, StoreError>;

    /// The first `n` recipients `clause` selects, by id, with every column; a row's `row` is
    /// its index in [`Store::recipients_table`] (its rank by id).
    fn rule_sample(
        &mut self,
        clause: &SqlWhere,
        n: usize,
        deadline: Duration,
    ) -> Result<Sample, StoreError>;

    /// The recipients `clause` selects by the values of `column` (`id` included): the `top_k`
    /// most frequent values (count descending, then value ascending), the nulls, and the rest.
    fn rule_breakdown(
        &mut self,
        clause: &SqlWhere,
        column: &str,
        top_k: usize,
        deadline: Duration,
    ) -> Result<Breakdown, StoreError>;
}

/// Recipients being written in parts, in one transaction ([`Store::begin_recipients`]):
/// nothing is visible until [`RecipientsWriter::commit`]; dropping it writes nothing.
pub trait RecipientsWriter {
    /// The stored type of every registered column, `id` first (int or string); empty before
    /// the first load.
    fn types(&self) -> Result<Vec<(String, ColumnType)>, StoreError>;

    /// Upserts `table`'s rows, as [`Store::upsert_recipients`] does, into this transaction;
    /// on error the caller drops the write.
    fn write(&mut self, table: &RecipientsTable) -> Result<(), StoreError>;

    /// Commits everything written; returns what the parts did together.
    fn commit(self: Box<Self>) -> Result<RecipientsUpsert, StoreError>;
}

/// Why the store could not do what was asked; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `open` of a database that does not exist.
    #[error("no database at {location}; run `audlink init` first")]
    Missing {
        /// The database, as [`Store::location`] names it.
        location: String,
    },
    /// A database of a kind this build has no store for (PostgreSQL, for now).
    #[error(
        "{location}: PostgreSQL databases are not supported by this build yet; use a SQLite database (a path or sqlite:PATH)"
    )]
    Unsupported {
        /// The database's URL, without its password.
        location: String,
    },
    /// The database was written by a newer audlink.
    #[error(
        "the database has schema version {found}, newer than this audlink knows ({supported}); upgrade audlink"
    )]
    NewerSchema {
        /// The database's `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A column's type in a table differs from the type fixed at its first load.
    #[error("column \"{column}\" holds {stored} in the database, not {found}")]
    ColumnType {
        /// The column.
        column: String,
        /// Its stored type, described.
        stored: &'static str,
        /// The type in the new table, described.
        found: &'static str,
    },
    /// Two column names the database cannot tell apart (they differ only in ASCII case).
    #[error(
        "column \"{column}\" differs from column \"{existing}\" only in case; the database cannot hold both"
    )]
    ColumnNameClash {
        /// The new column.
        column: String,
        /// The column it clashes with.
        existing: String,
    },
    /// A column name the database cannot hold.
    #[error("a column name holds a NUL character")]
    BadColumnName,
    /// A column of a table has another number of rows than its ids.
    #[error("column \"{column}\" has {found} rows, the id column {expected}")]
    RaggedColumn {
        /// The column.
        column: String,
        /// Rows of the id column.
        expected: usize,
        /// Rows of the column.
        found: usize,
    },
    /// Recipients are needed and none were ever loaded.
    #[error("no recipients loaded yet; run `audlink recipients load` first")]
    NoRecipients,
    /// A list change adds a recipient that is not in the recipients table.
    #[error("list \"{list}\" would get a member that is not in the recipients table")]
    UnknownMember {
        /// The list.
        list: String,
    },
    /// A list does not have the member count its change promised (the list changed since the
    /// change was computed).
    #[error("list \"{list}\" changed meanwhile: it would have {found} members, not {expected}")]
    ListChanged {
        /// The list.
        list: String,
        /// Members the change promised.
        expected: u64,
        /// Members it would have.
        found: u64,
    },
    /// No list of that name.
    #[error("no list named \"{name}\"")]
    UnknownList {
        /// The name asked for.
        name: String,
    },
    /// No import run with that id.
    #[error("no import with id {id}")]
    UnknownImport {
        /// The id asked for.
        id: i64,
    },
    /// An import run with the same input key is recorded already.
    #[error("this input was imported already (import {id})")]
    AlreadyImported {
        /// The recorded run.
        id: i64,
    },
    /// No export run with that id.
    #[error("no export run with id {id}")]
    UnknownExport {
        /// The id asked for.
        id: i64,
    },
    /// The export run was finished before.
    #[error("export run {id} is finished already")]
    ExportFinished {
        /// The run.
        id: i64,
    },
    /// A column name that is not in the recipients table.
    #[error("column \"{name}\" is not in the recipients table")]
    UnknownColumn {
        /// The name asked for.
        name: String,
    },
    /// A query ran past its deadline and was interrupted.
    #[error("the query took longer than {limit:?} and was stopped")]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// The database holds something the store never writes.
    #[error("the database holds unexpected data: {detail}")]
    Corrupt {
        /// What was found where.
        detail: String,
    },
    /// A value could not be converted to or from JSON.
    #[error("cannot convert {what}: {source}")]
    Json {
        /// What was converted.
        what: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
    /// Any other error of the database or its driver (the backend's own error inside).
    #[error("database error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// [`StoreError::Corrupt`] with `detail`.
pub(crate) fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        detail: detail.into(),
    }
}

/// Maps a JSON error about `what` to [`StoreError::Json`].
pub(crate) fn json_error(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Json { what, source }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers of the store's unit tests.

    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::SqliteStore;

    /// A directory for one test, removed on drop.
    #[derive(Debug)]
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(name: &str) -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("audlink-store-{}-{name}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        pub(crate) fn db(&self) -> PathBuf {
            self.0.join("audlink.db")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A fresh SQLite store in a fresh directory.
    pub(crate) fn store(name: &str) -> (TempDir, SqliteStore) {
        let dir = TempDir::new(name);
        let store = SqliteStore::create(&dir.db()).expect("create store");
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use audlink_core::recipients::{Column, ColumnData, RecipientIds};

    use super::testing::TempDir;
    use super::*;

    /// Loads, lists and reads back through the trait object only.
    fn exercise(store: &mut dyn Store) {
        assert_eq!(store.dialect(), Dialect::Sqlite);
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(!store.has_recipients_table().unwrap());
        let table = RecipientsTable {
            ids: RecipientIds::Int(vec![1, 2]),
            columns: vec![Column {
                name: "age".to_owned(),
                data: ColumnData::Int(vec![Some(30), None]),
            }],
        };
        // In parts through the writer, then once more through the provided method.
        let mut write = store.begin_recipients().unwrap();
        assert!(write.types().unwrap().is_empty());
        write.write(&table).unwrap();
        let done = write.commit().unwrap();
        assert_eq!((done.inserted, done.added_columns.len()), (2, 1));
        let again = store.upsert_recipients(&table).unwrap();
        assert_eq!((again.inserted, again.updated), (0, 2));
        assert_eq!(store.recipients_count().unwrap(), 2);
        assert_eq!(store.recipients_table().unwrap(), table);
        assert!(store.lists().unwrap().is_empty());
        assert_eq!(store.lists_members(&["none"]).unwrap(), BTreeMap::new());
        let object = ProcessedObject {
            location: "folder /x".to_owned(),
            key: "a".to_owned(),
            etag: Some("e".to_owned()),
            size: 1,
            sha256: [1; 32],
        };
        assert!(!store.was_processed(&object).unwrap());
        store.record_processed(&object, 5).unwrap();
        assert!(store.was_processed(&object).unwrap());
        assert!(
            store
                .listed_unchanged("folder /x", "a", Some("e"), 1)
                .unwrap()
        );
    }

    #[test]
    fn a_sqlite_store_works_through_the_trait_object() {
        let dir = TempDir::new("dyn");
        let url = DbUrl::parse(&format!("sqlite:{}", dir.db().display())).unwrap();
        let err = open(&url).err().expect("no database yet");
        assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "no database at {}; run `audlink init` first",
                dir.db().display()
            )
        );
        let mut store: Box<dyn Store> = create(&url).unwrap();
        assert_eq!(store.location(), dir.db().display().to_string());
        exercise(store.as_mut());
        drop(store);
        let mut reopened = open(&DbUrl::from(dir.db())).unwrap();
        assert_eq!(reopened.recipients_count().unwrap(), 2);
        assert!(reopened.has_recipients_table().unwrap());
        let _: &mut dyn Store = reopened.as_mut();
    }

    #[test]
    fn a_postgres_url_is_not_supported_yet_and_its_password_stays_hidden() {
        let url = DbUrl::parse("postgres://audlink:s3cret@127.0.0.1:5432/campaign").unwrap();
        for result in [open(&url), create(&url)] {
            let err = result.err().expect("not supported");
            assert!(matches!(err, StoreError::Unsupported { .. }), "{err:?}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(
                err.to_string().starts_with(
                    "postgres://audlink:[redacted]@127.0.0.1:5432/campaign: PostgreSQL databases are not supported"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn backend_errors_read_as_database_errors() {
        let err = StoreError::Backend("disk I/O error".into());
        assert_eq!(err.to_string(), "database error: disk I/O error");
    }
}
