//! The values the [`Store`](super::Store) trait takes and gives, whatever the backend: input
//! keys, import and export runs, lists, the exchange's ledger rows, sync runs, server jobs and
//! what an upsert did. Plain data, no SQL; the backends map them to their tables.

use std::collections::BTreeMap;

use audlink_core::export::ExportMode;
use audlink_core::import::{ListChange, UnmatchedId};
use audlink_core::rule::Type;
use audlink_core::time::Timestamp;
use serde::Serialize;

use super::StoreError;

/// SHA-256 of everything that decides an import's outcome (or an export run's): two runs
/// with the same key do the same thing. Built by
/// [`InputKeyHasher`](crate::input_key::InputKeyHasher); the store keys runs by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InputKey([u8; 32]);

impl InputKey {
    /// A key of the given digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> InputKey {
        InputKey(bytes)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A run of an import's unmatched identifiers as the store keeps it: bytes the caller encoded
/// (the store never looks inside; see [`crate::unmatched`]), the position of its first row among
/// all of the import's unmatched rows, and how many rows it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedPart {
    /// The index of its first row, counted over the import's unmatched rows in recorded order.
    pub first_seq: u64,
    /// Rows in it.
    pub rows: u64,
    /// The encoded rows.
    pub bytes: Vec<u8>,
}

/// Everything one import writes, applied by
/// [`Store::record_import`](super::Store::record_import) in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct ImportRun<'a> {
    /// The data source's name.
    pub data_source: &'a str,
    /// The input key ([`InputKeyHasher`](crate::input_key::InputKeyHasher)).
    pub input_key: &'a InputKey,
    /// When the import ran.
    pub created_at: Timestamp,
    /// The list changes to apply.
    pub lists: &'a [ListChange],
    /// The new last-applied delivery timestamp (unix ms) per segment of the data source.
    pub last_applied: &'a BTreeMap<String, i64>,
    /// The report as JSON text (stored verbatim; must be JSON).
    pub report: &'a str,
    /// The per-identifier unmatched rows, if listed, encoded in parts (in order).
    pub unmatched: &'a [UnmatchedPart],
}

/// A recorded import run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImport {
    /// Its id.
    pub id: i64,
    /// The data source's name.
    pub data_source: String,
    /// When it ran.
    pub created_at: Timestamp,
    /// The report as recorded (JSON text).
    pub report: String,
    /// Unmatched rows recorded one to a row (imports of schema version 1), in recorded order,
    /// at most the limit asked for. They come before the rows of `unmatched_parts`.
    pub legacy_unmatched: Vec<UnmatchedId>,
    /// The parts of the unmatched rows, in order: as many as hold the rows up to the limit
    /// asked for (with `legacy_unmatched`); the last may hold more.
    pub unmatched_parts: Vec<UnmatchedPart>,
    /// Unmatched rows recorded in all.
    pub unmatched_total: u64,
}

/// The start of an export run.
#[derive(Debug, Clone, Copy)]
pub struct ExportStart<'a> {
    /// The audience's name.
    pub audience: &'a str,
    /// The data source's name.
    pub data_source: &'a str,
    /// A key over everything that decides the run's output (an [`InputKey`]); a retry gives
    /// the same key.
    pub run_key: &'a InputKey,
    /// The mode.
    pub mode: ExportMode,
    /// The timestamp (unix seconds) for the file names, used unless the run was begun before.
    pub timestamp: i64,
    /// When the run starts.
    pub created_at: Timestamp,
}

/// A begun export run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportStarted {
    /// The run's id.
    pub id: i64,
    /// The timestamp to use: the one stored when a run with the same key was begun before.
    pub timestamp: i64,
    /// Whether a run with the same key was begun before.
    pub resumed: bool,
    /// Whether that run was finished.
    pub finished: bool,
}

/// A list and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListSummary {
    /// Its name.
    pub name: String,
    /// Its members.
    pub members: u64,
}

/// An exchange object an import read: recorded in the ledger (and in its sync run) inside the
/// import's own transaction
/// ([`Store::record_import_from`](super::Store::record_import_from)), so no kill can leave it
/// imported but not recorded.
#[derive(Debug, Clone, Copy)]
pub struct ObjectSource<'a> {
    /// The object as read.
    pub object: &'a ProcessedObject,
    /// When it was processed (unix milliseconds).
    pub at_ms: i64,
    /// The sync run that imported it, if any.
    pub run: Option<i64>,
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

/// How a sync run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Still running (or its process was killed).
    Running,
    /// Finished: every step done.
    Ok,
    /// A step failed; the error says which.
    Failed,
    /// Stopped by SIGINT/SIGTERM (after finishing the step it was in) or killed.
    Interrupted,
}

impl RunStatus {
    /// `running`, `ok`, `failed` or `interrupted`.
    pub fn code(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// The status of a code, `None` for an unknown one.
    pub(crate) fn parse(code: &str) -> Option<RunStatus> {
        Some(match code {
            "running" => RunStatus::Running,
            "ok" => RunStatus::Ok,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            _ => return None,
        })
    }
}

/// An object a sync run imported or uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunObject {
    /// `imported` or `uploaded`.
    pub action: String,
    /// The folder or bucket.
    pub location: String,
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A stored sync run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    /// Its id.
    pub id: i64,
    /// The job's name.
    pub job: String,
    /// `import` or `export`.
    pub kind: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// How it ended.
    pub status: RunStatus,
    /// The report (JSON text), when it got that far.
    pub report: Option<String>,
    /// Why it failed or was interrupted.
    pub error: Option<String>,
    /// The objects it imported or uploaded, in order.
    pub objects: Vec<RunObject>,
}

/// A server job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a sandbox slot.
    Queued,
    /// Running.
    Running,
    /// Finished with a result.
    Done,
    /// Finished with an error.
    Failed,
    /// The server stopped before it finished; nothing it would have written was written.
    Interrupted,
}

impl JobStatus {
    /// The status's name.
    pub fn code(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Interrupted => "interrupted",
        }
    }

    /// The status of a stored code ([`StoreError::Corrupt`] for an unknown one).
    pub(crate) fn parse(code: &str) -> Result<JobStatus, StoreError> {
        Ok(match code {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            "interrupted" => JobStatus::Interrupted,
            _ => {
                return Err(StoreError::Corrupt {
                    detail: format!("a job with status {code:?}"),
                });
            }
        })
    }
}

/// A server job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Its id.
    pub id: i64,
    /// `import` or `export`.
    pub kind: String,
    /// Where it is.
    pub status: JobStatus,
    /// The step it is at (or ended at).
    pub step: String,
    /// When it was created (unix microseconds).
    pub created_at: i64,
    /// When it ended (unix microseconds).
    pub finished_at: Option<i64>,
    /// Its result (the command's `--json` document) when done.
    pub result: Option<serde_json::Value>,
    /// Its error (`{kind, message}`) when failed or interrupted.
    pub error: Option<serde_json::Value>,
    /// The files it made, downloadable by name.
    pub files: Vec<String>,
}

/// What a recipients upsert did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RecipientsUpsert {
    /// Rows whose id was new.
    pub inserted: u64,
    /// Rows whose id existed (their values replaced).
    pub updated: u64,
    /// Columns added to the recipients table, in table order.
    pub added_columns: Vec<String>,
}

/// What a visitor links upsert did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LinksUpsert {
    /// Links whose (visitor, recipient) pair was new.
    pub inserted: u64,
    /// Links whose pair existed (last seen kept as the later of both).
    pub updated: u64,
    /// Links not written, in input order.
    pub rejected: Vec<RejectedLink>,
}

/// A link that was not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedLink {
    /// Its index in the links given.
    pub index: usize,
    /// Why.
    pub reason: LinkRejection,
}

/// Why a link was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRejection {
    /// Its recipient is not in the recipients table.
    NoRecipient,
}

impl LinkRejection {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            LinkRejection::NoRecipient => "no_recipient",
        }
    }
}

/// The rule-type code a backend records for a recipients column (`recipient_columns.type`).
pub(crate) fn type_code(ty: Type) -> &'static str {
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

/// The rule type of a recorded code; `None` for a code no column has.
pub(crate) fn parse_type_code(code: &str) -> Option<Type> {
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
