//! The SQLite store ([`SqliteStore`]): one file in WAL mode with foreign keys on, brought up
//! to date by versioned migrations (`schema.rs`). The submodules hold its SQL, each for one
//! concern, as methods of [`SqliteStore`]; the [`Store`] implementation at the end of this
//! file forwards to them:
//!
//! - `recipients.rs` — recipients with typed columns fixed at first load, visitor links;
//! - `lists.rs` — lists and the application of an import's list changes;
//! - `imports.rs` — import runs applied in one transaction, reports and unmatched parts;
//! - `exports.rs` — export runs and audience snapshots;
//! - `objects.rs` — the file exchange's ledger; `sync_runs.rs` — `audlink sync`'s runs;
//!   `jobs.rs` — `audlink serve`'s jobs;
//! - `query.rs` — rule SQL from the core run under a progress-handler deadline.
//!
//! `rusqlite` appears nowhere outside this module: its errors become
//! [`StoreError::Backend`].
//!
//! # Tables
//!
//! Names follow [`SqlTables::default`] so a compiled rule runs as is. Created by the versioned
//! migrations (`PRAGMA user_version`, see `sqlite/schema.rs`):
//!
//! - `recipient_columns(name, type, position)` — the registry of the recipients table's
//!   columns: `id` at position 0 (`int` or `string`) and every attribute with its rule type
//!   (`bool`, `int`, `float`, `string`, `date`, `date_time`); types are fixed at first load;
//! - `lists(name)`;
//! - `data_sources(name, first_used, last_used)` — the data sources imports and exports used;
//! - `segment_state(data_source, segment, last_applied)` — the last delivery (unix ms) applied
//!   per segment;
//! - `import_runs(id, data_source, input_key, created_at, report)` and
//!   `import_unmatched_parts(id, import_id, first_seq, rows, packed)` — the unmatched
//!   identifiers in recorded order, as the [`UnmatchedPart`]s the caller encoded (their bytes
//!   in `packed`; see [`crate::unmatched`]); imports recorded by schema version 1 keep theirs
//!   one to a row in `import_unmatched(import_id, seq, file, line, segment, identifier,
//!   reason, rule)`;
//! - `audiences(id, name, data_source, snapshot_at)`, `audience_identifiers(audience_id,
//!   identifier)` (the export snapshot) and `export_runs(id, audience_id, run_key, mode,
//!   timestamp, created_at, finished_at, files, report)`;
//! - `processed_objects(location, key, etag, size, sha256, processed_at)` — the file
//!   exchange's ledger: which object of which folder or bucket was processed, as it was then
//!   (schema version 3);
//! - `sync_runs(id, job, kind, started_at, finished_at, status, report, error)` and
//!   `sync_run_objects(run_id, seq, action, location, key, size)` — the runs of `audlink
//!   sync`'s jobs and the objects each imported or uploaded (schema version 4).
//! - `serve_jobs(id, kind, status, step, created_at, finished_at, result, error, files)` —
//!   `audlink serve`'s import and export jobs (`jobs.rs`, schema version 5).
//!
//! Created by the first recipients load, once the `id` column's type is known:
//!
//! - `recipients("id", <attributes>…)` — values by the storage convention of
//!   [`audlink_core::rule::sql`] ([`storage_type`]: bools 0/1, dates as days, date-times as
//!   unix microseconds, text as TEXT), `id` INTEGER or TEXT primary key;
//! - `list_members(list_name, recipient_id)` — the id's type, both foreign keys cascading;
//! - `visitor_links(visitor_id, recipient_id, last_seen)` — the visitor id as its 16-byte
//!   big-endian `u128` (a BLOB, which sorts as the 38-digit number), `last_seen` unix
//!   microseconds or NULL.
//!
//! Every write runs in one `IMMEDIATE` transaction with prepared statements: an error leaves
//! the database as it was.
//!
//! [`storage_type`]: audlink_core::rule::sql::storage_type

mod exports;
mod imports;
mod jobs;
mod lists;
mod objects;
mod query;
mod recipients;
mod schema;
mod sync_runs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use audlink_core::export::Snapshot;
use audlink_core::format::links::VisitorLink;
use audlink_core::recipients::{RecipientKey, RecipientsTable};
use audlink_core::rule::preview::{Breakdown, Count, Sample};
use audlink_core::rule::sql::{Dialect, SqlTables, SqlWhere, quote_ident};
use audlink_core::rule::{Schema, Type};
use audlink_core::time::Timestamp;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use super::{
    ExportStart, ExportStarted, ImportRun, InputKey, Job, JobStatus, LinkRejection, LinksUpsert,
    ListSummary, ObjectSource, ProcessedObject, RecipientsUpsert, RecipientsWriter, RejectedLink,
    RunObject, RunStatus, Store, StoreError, StoredImport, SyncRun, UnmatchedPart, corrupt,
};

pub use schema::SCHEMA_VERSION;

/// An open SQLite database.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file if missing, and brings its schema up to
    /// date ([`SCHEMA_VERSION`]).
    pub fn create(path: &Path) -> Result<SqliteStore, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        SqliteStore::connect(path, flags)
    }

    /// Opens the existing database at `path` ([`StoreError::Missing`] when there is none) and
    /// applies any pending migration.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Missing {
                location: path.display().to_string(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        SqliteStore::connect(path, flags)
    }

    fn connect(path: &Path, flags: OpenFlags) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL: readers never block the writer; NORMAL sync is safe against a killed process
        // (an OS crash may lose the last commit, never corrupt).
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt {
                detail: format!("cannot switch the journal to WAL (it is {mode})"),
            });
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // 256 MiB of page cache and reads through a memory map: bulk upserts into large
        // B-trees (and the foreign-key look-ups they make) without a read system call a page.
        conn.pragma_update(None, "cache_size", -262_144)?;
        conn.pragma_update(None, "mmap_size", 1_i64 << 32)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_owned(),
        };
        schema::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// The file the store is in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the database (`PRAGMA user_version`).
    fn user_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }
}

/// The table and column names (those the rule compiler assumes).
fn tables() -> SqlTables {
    SqlTables::default()
}

/// `name` quoted as an SQL identifier.
fn q(name: &str) -> String {
    quote_ident(name)
}

/// How the `id` column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdType {
    /// INTEGER: every id is a canonical decimal i64.
    Int,
    /// TEXT.
    Text,
}

impl IdType {
    fn rule_type(self) -> Type {
        match self {
            IdType::Int => Type::Int,
            IdType::Text => Type::String,
        }
    }

    /// The stored value of `key`; `None` when no id of this type equals it (a text key in an
    /// integer column).
    fn param(self, key: &RecipientKey) -> Option<Param<'_>> {
        match (self, key) {
            (IdType::Int, key) => key.as_int().map(Param::Int),
            (IdType::Text, RecipientKey::String(text)) => Some(Param::Text(text)),
            (IdType::Text, RecipientKey::Int(value)) => Some(Param::Owned(value.to_string())),
        }
    }

    /// The key of a stored id.
    fn key(self, value: ValueRef<'_>) -> Result<RecipientKey, StoreError> {
        match (self, value) {
            (IdType::Int, ValueRef::Integer(i)) => Ok(RecipientKey::Int(i)),
            (IdType::Text, ValueRef::Text(bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => Ok(RecipientKey::String(text.to_owned())),
                Err(_) => Err(corrupt("a recipient id that is not UTF-8")),
            },
            _ => Err(corrupt("a recipient id of another type than the id column")),
        }
    }
}

/// A bound value that borrows text where it can (no allocation per cell in bulk writes).
#[derive(Debug, Clone)]
enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Owned(String),
    Blob(Vec<u8>),
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Null => ToSqlOutput::Owned(Value::Null),
            Param::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            // SQLite stores NaN as NULL; say so explicitly.
            Param::Real(f) if f.is_nan() => ToSqlOutput::Owned(Value::Null),
            Param::Real(f) => ToSqlOutput::Owned(Value::Real(*f)),
            Param::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::Owned(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::Blob(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Backend(Box::new(error))
    }
}

/// Whether `error` is SQLite's "interrupted" (the progress handler stopped a statement).
fn is_interrupt(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

/// Whether `error` is a foreign-key violation.
fn is_foreign_key(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// The trait, forwarding to the inherent methods of the submodules (same names).
impl Store for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.user_version()
    }

    fn schema(&self) -> Result<Schema, StoreError> {
        SqliteStore::schema(self)
    }

    fn has_recipients_table(&self) -> Result<bool, StoreError> {
        SqliteStore::has_recipients_table(self)
    }

    fn recipients_count(&self) -> Result<u64, StoreError> {
        SqliteStore::recipients_count(self)
    }

    fn begin_recipients(&mut self) -> Result<Box<dyn RecipientsWriter + '_>, StoreError> {
        Ok(Box::new(SqliteStore::begin_recipients(self)?))
    }

    fn recipients_table(&self) -> Result<RecipientsTable, StoreError> {
        SqliteStore::recipients_table(self)
    }

    fn recipients_columns(&self, wanted: &[&str]) -> Result<RecipientsTable, StoreError> {
        SqliteStore::recipients_columns(self, wanted)
    }

    fn upsert_links(&mut self, links: &[VisitorLink]) -> Result<LinksUpsert, StoreError> {
        SqliteStore::upsert_links(self, links)
    }

    fn links(&self) -> Result<Vec<VisitorLink>, StoreError> {
        SqliteStore::links(self)
    }

    fn lists(&self) -> Result<Vec<ListSummary>, StoreError> {
        SqliteStore::lists(self)
    }

    fn list_members(&self, name: &str) -> Result<Vec<RecipientKey>, StoreError> {
        SqliteStore::list_members(self, name)
    }

    fn lists_members(
        &self,
        names: &[&str],
    ) -> Result<BTreeMap<String, Vec<RecipientKey>>, StoreError> {
        SqliteStore::lists_members(self, names)
    }

    fn record_import_from(
        &mut self,
        run: &ImportRun<'_>,
        sources: &[ObjectSource<'_>],
    ) -> Result<i64, StoreError> {
        SqliteStore::record_import_from(self, run, sources)
    }

    fn import_by_input_key(&self, key: &InputKey) -> Result<Option<i64>, StoreError> {
        SqliteStore::import_by_input_key(self, key)
    }

    fn last_applied(&self, data_source: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        SqliteStore::last_applied(self, data_source)
    }

    fn import_report(&self, id: i64, unmatched_limit: usize) -> Result<StoredImport, StoreError> {
        SqliteStore::import_report(self, id, unmatched_limit)
    }

    fn begin_export(&mut self, start: &ExportStart<'_>) -> Result<ExportStarted, StoreError> {
        SqliteStore::begin_export(self, start)
    }

    fn finish_export(
        &mut self,
        id: i64,
        files: &[String],
        report: &str,
        snapshot: &Snapshot,
        finished_at: Timestamp,
    ) -> Result<(), StoreError> {
        SqliteStore::finish_export(self, id, files, report, snapshot, finished_at)
    }

    fn export_timestamp(&self, run_key: &InputKey) -> Result<Option<i64>, StoreError> {
        SqliteStore::export_timestamp(self, run_key)
    }

    fn snapshot(&self, audience: &str, data_source: &str) -> Result<Option<Snapshot>, StoreError> {
        SqliteStore::snapshot(self, audience, data_source)
    }

    fn processed_object(
        &self,
        location: &str,
        key: &str,
    ) -> Result<Option<ProcessedObject>, StoreError> {
        SqliteStore::processed_object(self, location, key)
    }

    fn record_processed(&self, object: &ProcessedObject, at_ms: i64) -> Result<(), StoreError> {
        SqliteStore::record_processed(self, object, at_ms)
    }

    fn record_sources(&mut self, sources: &[ObjectSource<'_>]) -> Result<(), StoreError> {
        SqliteStore::record_sources(self, sources)
    }

    fn begin_run(&self, job: &str, kind: &str, at: Timestamp) -> Result<i64, StoreError> {
        SqliteStore::begin_run(self, job, kind, at)
    }

    fn add_run_object(&self, run: i64, object: &RunObject) -> Result<(), StoreError> {
        SqliteStore::add_run_object(self, run, object)
    }

    fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        report: Option<&str>,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        SqliteStore::finish_run(self, run, status, report, error, at)
    }

    fn interrupt_unfinished_runs(&self, at: Timestamp) -> Result<usize, StoreError> {
        SqliteStore::interrupt_unfinished_runs(self, at)
    }

    fn runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<SyncRun>, StoreError> {
        SqliteStore::runs(self, job, limit)
    }

    fn run(&self, run: i64) -> Result<Option<SyncRun>, StoreError> {
        SqliteStore::run(self, run)
    }

    fn create_job(&mut self, kind: &str, at: Timestamp) -> Result<i64, StoreError> {
        SqliteStore::create_job(self, kind, at)
    }

    fn job_step(&mut self, id: i64, step: &str) -> Result<(), StoreError> {
        SqliteStore::job_step(self, id, step)
    }

    fn finish_job(
        &mut self,
        id: i64,
        status: JobStatus,
        result: Option<&serde_json::Value>,
        error: Option<&serde_json::Value>,
        files: &[String],
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        SqliteStore::finish_job(self, id, status, result, error, files, at)
    }

    fn interrupt_jobs(&mut self, at: Timestamp) -> Result<usize, StoreError> {
        SqliteStore::interrupt_jobs(self, at)
    }

    fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        SqliteStore::job(self, id)
    }

    fn rule_ids(
        &mut self,
        clause: &SqlWhere,
        deadline: Duration,
    ) -> Result<Vec<RecipientKey>, StoreError> {
        SqliteStore::rule_ids(self, clause, deadline)
    }

    fn rule_count(&mut self, clause: &SqlWhere, deadline: Duration) -> Result<Count, StoreError> {
        SqliteStore::rule_count(self, clause, deadline)
    }

    fn rule_sample(
        &mut self,
        clause: &SqlWhere,
        n: usize,
        deadline: Duration,
    ) -> Result<Sample, StoreError> {
        SqliteStore::rule_sample(self, clause, n, deadline)
    }

    fn rule_breakdown(
        &mut self,
        clause: &SqlWhere,
        column: &str,
        top_k: usize,
        deadline: Duration,
    ) -> Result<Breakdown, StoreError> {
        SqliteStore::rule_breakdown(self, clause, column, top_k, deadline)
    }
}
