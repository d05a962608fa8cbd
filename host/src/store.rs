//! The database of the `audlink` command: one SQLite file (WAL mode, foreign keys on) holding
//! recipients, visitor links, lists, import runs and export snapshots. This module and its
//! submodules are the only place SQL text of the store lives; the segment-rule SQL comes from
//! [`audlink_core::rule::sql::to_sql`] and runs here ([`Store::rule_ids`] and friends).
//!
//! # Tables
//!
//! Names follow [`SqlTables::default`] so a compiled rule runs as is. Created by the versioned
//! migrations (`PRAGMA user_version`, see `schema.rs`):
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
//!   identifiers in recorded order, up to 65,536 to a row in the wire's packed form
//!   (`audlink_wasm::wire::packed::encode_unmatched`); imports recorded by schema version 1
//!   keep theirs one to a row in `import_unmatched(import_id, seq, file, line, segment,
//!   identifier, reason, rule)`;
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use audlink_core::recipients::RecipientKey;
use audlink_core::rule::Type;
use audlink_core::rule::sql::{SqlTables, quote_ident};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

pub use exports::{ExportStart, ExportStarted};
pub use imports::{ImportRun, InputKey, InputKeyHasher, StoredImport};
pub use jobs::{Job, JobStatus};
pub use lists::ListSummary;
pub use objects::{ObjectSource, ProcessedObject};
pub use recipients::{LinkRejection, LinksUpsert, RecipientsUpsert, RecipientsWrite, RejectedLink};
pub use schema::SCHEMA_VERSION;
pub use sync_runs::{RunObject, RunStatus, SyncRun};

/// Why the store could not do what was asked; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `open` of a path where there is no database.
    #[error("no database at {path}; run `audlink init` first")]
    Missing {
        /// The path given.
        path: PathBuf,
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
    /// Two column names SQLite cannot tell apart (they differ only in ASCII case).
    #[error(
        "column \"{column}\" differs from column \"{existing}\" only in case; the database cannot hold both"
    )]
    ColumnNameClash {
        /// The new column.
        column: String,
        /// The column it clashes with.
        existing: String,
    },
    /// A column name SQLite cannot hold.
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
    /// The hashing of an input failed to read it.
    #[error("cannot read an input to hash it: {0}")]
    Io(#[from] std::io::Error),
    /// Any other SQLite error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// An open audlink database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the database at `path`, creating the file if missing, and brings its schema up to
    /// date ([`SCHEMA_VERSION`]).
    pub fn create(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Store::connect(path, flags)
    }

    /// Opens the existing database at `path` ([`StoreError::Missing`] when there is none) and
    /// applies any pending migration.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Store::connect(path, flags)
    }

    fn connect(path: &Path, flags: OpenFlags) -> Result<Store, StoreError> {
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
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        schema::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// The SQL dialect of segment rules run here.
    pub fn dialect(&self) -> audlink_core::rule::sql::Dialect {
        audlink_core::rule::sql::Dialect::Sqlite
    }

    /// The file the store is in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the database (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
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

/// The rule-type code stored in `recipient_columns.type`.
fn type_code(ty: Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::Int => "int",
        Type::Float => "float",
        Type::String => "string",
        Type::Date => "date",
        Type::DateTime => "date_time",
        Type::Duration => "duration",
        Type::Null => "null",
    }
}

fn parse_type_code(code: &str) -> Option<Type> {
    Some(match code {
        "bool" => Type::Bool,
        "int" => Type::Int,
        "float" => Type::Float,
        "string" => Type::String,
        "date" => Type::Date,
        "date_time" => Type::DateTime,
        _ => return None,
    })
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        detail: detail.into(),
    }
}

fn json_error(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |source| StoreError::Json { what, source }
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

/// Whether `error` is SQLite's "interrupted" (the progress handler stopped a statement).
fn is_interrupt(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

/// Whether `error` is a foreign-key violation.
fn is_foreign_key(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers of the store's unit tests.

    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::Store;

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

    /// A fresh store in a fresh directory.
    pub(crate) fn store(name: &str) -> (TempDir, Store) {
        let dir = TempDir::new(name);
        let store = Store::create(&dir.db()).expect("create store");
        (dir, store)
    }
}
