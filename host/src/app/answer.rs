//! The typed answers of the workflows: one serde type per document, used as is by the command
//! line (`--json`), the server (response bodies, and the OpenAPI document generated from these
//! types with `utoipa`) and `audlink sync` (run reports). A document's shape is changed here or
//! nowhere.
//!
//! The command line prints a document through `serde_json::Value`, whose keys are sorted: the
//! field order below is for reading, the printed order is alphabetical.

use std::collections::BTreeMap;

use audlink_core::export::{ExportReport, NotExported};
use audlink_core::format::problem::BadRecord;
use audlink_core::import::{ImportReport, Refused, Totals, UnmatchedId};
use audlink_core::recipients::RecipientKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{Job, JobStatus};

/// A recipient id as documents hold it: a JSON number for integer ids, a string otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RecipientId {
    /// An integer id.
    Int(i64),
    /// A text id.
    Text(String),
}

impl From<&RecipientKey> for RecipientId {
    fn from(key: &RecipientKey) -> RecipientId {
        match key {
            RecipientKey::Int(v) => RecipientId::Int(*v),
            RecipientKey::String(s) => RecipientId::Text(s.clone()),
        }
    }
}

/// What an import did (`audience import --json`, an import job's result, `audlink report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportAnswer {
    /// The import run's id (`audlink report ID`, `GET /api/imports/{id}/unmatched`).
    pub import_id: i64,
    /// Whether this input had been imported before, so nothing changed now.
    pub skipped: bool,
    /// The report.
    #[serde(flatten)]
    pub summary: ImportSummary,
}

/// An import's report as stored with its run (the unmatched identifiers are stored apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportSummary {
    /// Counts over all files.
    #[schema(value_type = Object)]
    pub totals: Totals,
    /// One entry per segment, in segment order.
    pub segments: Vec<SegmentSummary>,
    /// Bad records found (their count; the records are in the stored report's problems).
    pub problems: usize,
    /// Deliveries refused for a segment because a newer one was applied before.
    #[schema(value_type = Vec<Object>)]
    pub refused: Vec<Refused>,
}

/// One segment's outcome in an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentSummary {
    /// The segment id.
    pub segment: String,
    /// The list it went to.
    pub list: String,
    /// Identifiers (units) of the segment.
    pub ids: u64,
    /// Units matched to a recipient.
    pub matched: u64,
    /// Units not matched (every reason).
    pub unmatched: u64,
    /// Recipients removed from the list.
    pub removed: u64,
    /// Distinct recipients matched.
    pub recipients: u64,
    /// Matched recipients who opted out.
    pub opted_out: u64,
    /// matched / ids.
    pub match_rate: f64,
    /// Unmatched units by reason code, every reason present (zeros included).
    pub unmatched_by_reason: BTreeMap<String, u64>,
}

impl ImportSummary {
    /// The summary of a core report.
    pub fn of(report: &ImportReport) -> ImportSummary {
        let segments = report
            .segments
            .values()
            .map(|s| SegmentSummary {
                segment: s.segment.clone(),
                list: s.list.clone(),
                ids: s.ids,
                matched: s.matched,
                unmatched: s.unmatched.values().sum(),
                removed: s.removed,
                recipients: s.distinct_recipients,
                opted_out: s.opted_out,
                match_rate: s.match_rate,
                unmatched_by_reason: s
                    .unmatched_by_reason()
                    .into_iter()
                    .map(|(code, n)| (code.to_owned(), n))
                    .collect(),
            })
            .collect();
        ImportSummary {
            totals: report.totals.clone(),
            segments,
            problems: report.problems.len(),
            refused: report.refused.clone(),
        }
    }
}

/// `recipients load --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecipientsLoaded {
    /// The file's name.
    pub file: String,
    /// Rows read.
    pub rows: u64,
    /// Recipients inserted.
    pub inserted: u64,
    /// Recipients updated.
    pub updated: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// The first rejected rows, with line and reason.
    #[schema(value_type = Vec<Object>)]
    pub rejected_rows: Vec<BadRecord>,
    /// Columns the load added to the recipients table.
    pub added_columns: Vec<String>,
}

/// A link naming a recipient the database does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnknownRecipientRow {
    /// The recipient id as the file has it.
    pub recipient_id: String,
    /// Why the link was refused.
    pub reason: String,
}

/// `visitors load --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LinksLoaded {
    /// The file's name.
    pub file: String,
    /// Rows read.
    pub rows: u64,
    /// Rows merged into another of the same pair.
    pub merged: Option<u64>,
    /// Links inserted.
    pub inserted: u64,
    /// Links updated.
    pub updated: u64,
    /// Rows rejected (unreadable, or naming an unknown recipient).
    pub rejected: u64,
    /// The first unreadable rows, with line and reason.
    #[schema(value_type = Vec<Object>)]
    pub rejected_rows: Vec<BadRecord>,
    /// Links naming an unknown recipient.
    pub unknown_recipients: usize,
    /// The first of them.
    pub unknown_recipient_rows: Vec<UnknownRecipientRow>,
}

/// One list and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListSize {
    /// The list's name.
    pub name: String,
    /// Its members.
    pub members: u64,
}

/// `list ls --json`, `GET /api/lists`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Lists {
    /// Every list, by name.
    pub lists: Vec<ListSize>,
}

/// `list show NAME --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListMembers {
    /// The list's name.
    pub name: String,
    /// Its members, sorted by id.
    pub members: Vec<RecipientId>,
}

/// One onboarding file an export made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExportedFile {
    /// Its name (`ftp_dpm_<DPID>_<ts>.sync|.overwrite[.N][.gz]`).
    pub name: String,
    /// Lines it holds.
    pub lines: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What an export did (`audience export --json`, an export job's result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportAnswer {
    /// The export run's id.
    pub export_id: i64,
    /// The audience's name.
    pub audience: String,
    /// The data source whose identifiers were sent.
    pub data_source: String,
    /// The unix timestamp in the file names.
    pub timestamp: i64,
    /// Whether this run resumed one begun before (same members and snapshot).
    pub resumed: bool,
    /// The files sent (none when nothing changed or there was nothing to send).
    pub files: Vec<ExportedFile>,
    /// The core's counts.
    #[schema(value_type = Object)]
    pub report: ExportReport,
    /// Members not exported, by reason code (every reason, zeros included).
    pub not_exported_by_reason: BTreeMap<String, u64>,
    /// The first 100 members not exported, with their reason.
    #[schema(value_type = Vec<Object>)]
    pub not_exported: Vec<NotExported>,
    /// The platform's trait and segment (`--remote`, export jobs with `remote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteAudience>,
}

/// An onboarded trait or a segment on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemoteObject {
    /// Its id.
    pub sid: u64,
    /// Whether this run created it (else it was found by name).
    pub created: bool,
    /// The folder it is in.
    pub folder_id: u64,
    /// The segment's rule (segments only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// The platform half of an export: the audience's trait and segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemoteAudience {
    /// The onboarded trait.
    #[serde(rename = "trait")]
    pub trait_: RemoteObject,
    /// The segment of that trait.
    pub segment: RemoteObject,
    /// Whether the files' `d_sid` is the trait's id.
    pub trait_matches_files: bool,
}

/// Where a server job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
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

impl From<JobStatus> for JobState {
    fn from(status: JobStatus) -> JobState {
        match status {
            JobStatus::Queued => JobState::Queued,
            JobStatus::Running => JobState::Running,
            JobStatus::Done => JobState::Done,
            JobStatus::Failed => JobState::Failed,
            JobStatus::Interrupted => JobState::Interrupted,
        }
    }
}

/// Why a job failed or was interrupted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// A stable kind, as an API error's (`interrupted` for a job the server did not finish).
    pub kind: String,
    /// One line for a person.
    pub message: String,
    /// The HTTP status the error would have had as an answer (absent for `interrupted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// A job's result: the command's `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum JobResult {
    /// An import job's (`audience import --json`).
    Import(ImportAnswer),
    /// An export job's (`audience export --json`).
    Export(ExportAnswer),
}

/// `GET /api/jobs/{id}`: a server job.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobAnswer {
    /// Its id.
    pub id: i64,
    /// `import` or `export`.
    pub kind: String,
    /// Where it is.
    pub status: JobState,
    /// The step it is at (or ended at).
    pub step: String,
    /// When it was created (unix microseconds).
    pub created_at: i64,
    /// When it ended (unix microseconds).
    pub finished_at: Option<i64>,
    /// Its result (the command's `--json` document) when done: an [`ImportAnswer`] or an
    /// [`ExportAnswer`], as stored.
    #[schema(value_type = Option<JobResult>)]
    pub result: Option<serde_json::Value>,
    /// Its error when failed or interrupted.
    #[schema(value_type = Option<JobError>)]
    pub error: Option<serde_json::Value>,
    /// The files it made, downloadable by name (`GET /api/jobs/{id}/files/{name}`).
    pub files: Vec<String>,
}

impl From<Job> for JobAnswer {
    fn from(job: Job) -> JobAnswer {
        JobAnswer {
            id: job.id,
            kind: job.kind,
            status: job.status.into(),
            step: job.step,
            created_at: job.created_at,
            finished_at: job.finished_at,
            result: job.result,
            error: job.error,
            files: job.files,
        }
    }
}

/// One unmatched identifier of an import (`audlink report --unmatched`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnmatchedRow {
    /// The file it came from.
    pub file: String,
    /// Its 1-based line.
    pub line: u64,
    /// Its segment.
    pub segment: String,
    /// The identifier as written (lossy UTF-8; empty when the line held none).
    pub id: String,
    /// Why it did not match (`unknown_id`, `invalid_format`, …).
    pub reason: String,
    /// For `invalid_format`: the identifier rule it broke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl From<&UnmatchedId> for UnmatchedRow {
    fn from(row: &UnmatchedId) -> UnmatchedRow {
        UnmatchedRow {
            file: row.file.to_string(),
            line: row.line,
            segment: row.segment.to_string(),
            id: row.id.clone(),
            reason: row.reason.code().to_owned(),
            rule: row.rule.map(|r| r.code().to_owned()),
        }
    }
}

/// `GET /api/imports/{id}/unmatched`: a page of an import's unmatched identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnmatchedPage {
    /// The import.
    pub import_id: i64,
    /// Unmatched identifiers in all.
    pub unmatched_total: u64,
    /// This page's, in recorded order.
    pub unmatched: Vec<UnmatchedRow>,
    /// The cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /api/lists/{name}/members`: a page of a list's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MembersPage {
    /// The list.
    pub name: String,
    /// Members (recipient ids) in id order.
    pub members: Vec<RecipientId>,
    /// The cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `audlink init --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Initialized {
    /// The database, as messages name it.
    pub db: String,
    /// Its schema version.
    pub schema_version: i64,
    /// The configuration file.
    pub config: String,
    /// Whether `init` wrote it (else it was kept as it was).
    pub config_written: bool,
}

/// One file `audlink generate` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedFile {
    /// Its path.
    pub file: String,
    /// Its lines.
    pub lines: usize,
}

/// `audlink generate --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    /// The files written.
    pub files: Vec<GeneratedFile>,
    /// The generator's seed.
    pub seed: u64,
}

/// An object of the file exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeObject {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, where the backend has one.
    pub etag: Option<String>,
}

/// `audlink exchange ls --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeListing {
    /// The exchange (a folder or a bucket).
    pub location: String,
    /// The objects under the prefix.
    pub objects: Vec<ExchangeObject>,
}

/// A file `audlink exchange put` uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutFile {
    /// The local file.
    pub file: String,
    /// The key it went to.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// `audlink exchange put --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangePut {
    /// The exchange.
    pub location: String,
    /// The files uploaded.
    pub uploaded: Vec<PutFile>,
}

/// What an import job of `audlink sync` did in one run (its stored report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportJobReport {
    /// The exchange listed.
    pub location: String,
    /// The key prefix listed.
    pub prefix: String,
    /// Keys of the objects imported.
    pub imported: Vec<String>,
    /// Keys already processed unchanged.
    pub skipped: Vec<String>,
    /// Keys whose names are not audience files (`format = "auto"`).
    pub ignored: Vec<String>,
    /// The import's answer, when anything was imported.
    pub import: Option<ImportAnswer>,
}

/// An object an export job uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedObject {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What an export job of `audlink sync` did in one run (its stored report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportJobReport {
    /// The export's answer (with the platform's trait and segment when the job has `remote`).
    #[serde(flatten)]
    pub export: ExportAnswer,
    /// Whether nothing was sent because the audience would not change.
    pub unchanged: bool,
    /// The objects uploaded.
    pub uploaded: Vec<UploadedObject>,
}
