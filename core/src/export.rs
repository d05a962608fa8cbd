//! Export: list members become a shared audience, as Audience Manager onboarding files.
//!
//! [`export`] takes the members of a list (recipient ids), the recipients table, the visitor
//! links, a [`DataSource`], the trait id, an [`ExportMode`] and the [`Snapshot`] of what audlink
//! sent to this audience before, and returns the rendered files, the members that were not
//! exported (each with one reason), the new snapshot and a report. Nothing is read from a clock:
//! the unix timestamp in the file names is an input.
//!
//! # Members and identifiers
//!
//! Members are deduplicated (a member listed twice counts once); a [`RecipientKey::String`] that
//! is a canonical integer is the same member as the [`RecipientKey::Int`] of that value, and
//! matches an integer or string id column alike (a hand-built table with the same id on two rows
//! is an [`ExportError`]; the reader never produces one). Each member maps to identifiers:
//!
//! - `visitor-id`: every visitor id linked to it (the [`VisitorLink`]s, in any order; repeated
//!   links count once). The recipients table is only consulted for the opt-out flag: a member
//!   that has no row there has no flag, so it is exported when it has links. The ambiguity
//!   policy applies to imports only: a visitor id linked to several members is sent once.
//! - `declared-id`: its key column value, encoded by [`DeclaredKey::encode`] (as is, or the
//!   SHA-256 of the normalized email or phone in the profile's hex or base64 form). An integer
//!   key column's values are used as their decimal text. Members sharing a key are sent once.
//!
//! A member that is not exported gets exactly one [`NotExportedReason`], the first that applies:
//!
//! 1. `unknown_recipient` — declared-id only: the member has no row in the recipients table, so
//!    it has no key (and no opt-out flag to honour);
//! 2. `opted_out` — the bool column `opted_out` is true on its row (null or false is not opted
//!    out; a table without that column, or whose `opted_out` column has no non-null cell, has no
//!    one opted out; any other column type is an [`ExportError`]);
//! 3. `no_identifier` — no visitor link, a null key cell, or a key that is blank (the encoder
//!    reports it `empty`);
//! 4. `invalid_key` — the key fails normalization or is not a valid declared id
//!    ([`NotExported::key_error`] says why).
//!
//! # Files
//!
//! Identifiers are deduplicated and sorted bytewise (for visitor ids, the zero-padded 38 digits,
//! which is also numeric order). One line per identifier, `<id>\td_sid=<trait>` for an add and
//! `<id>\td_unsid=<trait>` for a removal, written by [`onboarding::write_line`]:
//!
//! | mode | lines | file | new snapshot |
//! |---|---|---|---|
//! | `sync` | an add per current identifier | `.sync` | previous ∪ current |
//! | `overwrite` | an add per current identifier | `.overwrite` | current (previous if current is empty) |
//! | `delta` | adds: current − previous; removes: previous − current, sorted together | `.sync` | current |
//!
//! `delta` removes only identifiers of the snapshot, so only what audlink itself sent. Lines are
//! cut greedily into files: a new file starts when one more line would exceed
//! [`FileLimits::max_lines`] or [`FileLimits::max_bytes`] (uncompressed bytes, line endings
//! included). Files are named `ftp_dpm_<DPID>_<timestamp>.sync|.overwrite`, with `.1`, `.2`, …
//! only when there is more than one, and `.gz` when [`FileLimits::gzip`] (compressed by
//! [`input::gzip`]: fixed level, mtime 0, so the same input gives byte-identical files).
//!
//! No file is produced when there is nothing to send: `sync` with no current identifier,
//! `delta` with no change. An empty `.overwrite` file is invalid in the format, so `overwrite`
//! with no current identifier produces no file either and sets
//! [`ExportReport::empty_overwrite`]: the platform keeps what it had, and so the new snapshot
//! keeps the previous identifiers (a later `delta` export removes them).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::datasource::{DataSource, DeclaredKey, Identifier, KeyEncoding};
use crate::format::input;
use crate::format::links::VisitorLink;
use crate::format::onboarding::{self, Entry, OnboardingFileName, OnboardingMode};
use crate::id::{DeclaredId, HashedId, IdError, IdKind, IdReason, UserId, VisitorId};
use crate::normalize::DigestEncoding;
use crate::recipients::{
    ColumnData, ColumnType, RecipientIds, RecipientKey, RecipientsTable, Strings,
};

/// Name of the recipients column that marks opted-out recipients.
pub const OPTED_OUT_COLUMN: &str = "opted_out";

/// How an export changes the audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportMode {
    /// Add every current identifier (`.sync` file).
    Sync,
    /// Replace the audience with the current identifiers (`.overwrite` file).
    Overwrite,
    /// Add what is new since the snapshot and remove what left it (`.sync` file).
    Delta,
}

impl ExportMode {
    /// The snake_case code, as serialized: `sync`, `overwrite`, `delta`.
    pub fn code(self) -> &'static str {
        match self {
            ExportMode::Sync => "sync",
            ExportMode::Overwrite => "overwrite",
            ExportMode::Delta => "delta",
        }
    }

    fn file_mode(self) -> OnboardingMode {
        match self {
            ExportMode::Sync | ExportMode::Delta => OnboardingMode::Sync,
            ExportMode::Overwrite => OnboardingMode::Overwrite,
        }
    }
}

/// How big one file may be, and whether it is gzipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileLimits {
    /// Most lines in one file (at least 1).
    pub max_lines: u64,
    /// Most bytes in one file before compression, line endings included (at least one line).
    pub max_bytes: u64,
    /// Whether files are gzipped (names end in `.gz`).
    pub gzip: bool,
}

impl Default for FileLimits {
    /// 1,000,000 lines, 100 MiB, gzipped.
    fn default() -> FileLimits {
        FileLimits {
            max_lines: 1_000_000,
            max_bytes: 100 * 1024 * 1024,
            gzip: true,
        }
    }
}

/// The identifiers audlink has sent to one audience: sorted bytewise, each once.
///
/// Serialized as `{"identifiers": [...]}`; deserializing sorts and deduplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "SnapshotRepr")]
pub struct Snapshot {
    identifiers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRepr {
    identifiers: Vec<String>,
}

impl From<SnapshotRepr> for Snapshot {
    fn from(repr: SnapshotRepr) -> Snapshot {
        Snapshot::new(repr.identifiers)
    }
}

impl Snapshot {
    /// A snapshot of `identifiers`, sorted and deduplicated.
    pub fn new(identifiers: impl IntoIterator<Item = String>) -> Snapshot {
        let mut identifiers: Vec<String> = identifiers.into_iter().collect();
        identifiers.sort_unstable();
        identifiers.dedup();
        Snapshot { identifiers }
    }

    /// The identifiers, sorted bytewise, each once.
    pub fn identifiers(&self) -> &[String] {
        &self.identifiers
    }

    /// The identifiers, sorted bytewise, each once.
    pub fn into_identifiers(self) -> Vec<String> {
        self.identifiers
    }

    /// Number of identifiers.
    pub fn len(&self) -> usize {
        self.identifiers.len()
    }

    /// Whether there is no identifier.
    pub fn is_empty(&self) -> bool {
        self.identifiers.is_empty()
    }

    /// Whether `identifier` is in the snapshot.
    pub fn contains(&self, identifier: &str) -> bool {
        self.identifiers
            .binary_search_by(|id| id.as_str().cmp(identifier))
            .is_ok()
    }

    /// Wraps identifiers already sorted and unique.
    fn from_sorted(identifiers: Vec<String>) -> Snapshot {
        Snapshot { identifiers }
    }
}

impl FromIterator<String> for Snapshot {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Snapshot {
        Snapshot::new(iter)
    }
}

/// Everything one export needs.
#[derive(Debug, Clone, Copy)]
pub struct ExportRequest<'a> {
    /// The list members, in any order, possibly repeated.
    pub members: &'a [RecipientKey],
    /// The recipients table (for the opt-out flag and declared keys).
    pub recipients: &'a RecipientsTable,
    /// Visitor links, in any order (used by visitor-id data sources).
    pub links: &'a [VisitorLink],
    /// The data source whose identifiers are sent.
    pub data_source: &'a DataSource,
    /// The trait the members are added to or removed from.
    pub trait_id: u64,
    /// How the audience changes.
    pub mode: ExportMode,
    /// What audlink sent to this audience before (empty the first time).
    pub snapshot: &'a Snapshot,
    /// Unix seconds for the file names (at most [`OnboardingFileName::MAX_TIMESTAMP`]).
    pub timestamp: u64,
    /// File size limits and compression.
    pub limits: FileLimits,
}

/// Why a member is not exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotExportedReason {
    /// The `opted_out` column is true.
    OptedOut,
    /// No visitor link, or no key value.
    NoIdentifier,
    /// The key value cannot be made into an identifier.
    InvalidKey,
    /// Declared-id only: the member has no row in the recipients table.
    UnknownRecipient,
}

impl NotExportedReason {
    /// All reasons, in a fixed order (the order reports list them in).
    pub const ALL: [NotExportedReason; 4] = [
        NotExportedReason::OptedOut,
        NotExportedReason::NoIdentifier,
        NotExportedReason::InvalidKey,
        NotExportedReason::UnknownRecipient,
    ];

    /// The snake_case code, as serialized: `opted_out`, `no_identifier`, …
    pub fn code(self) -> &'static str {
        match self {
            NotExportedReason::OptedOut => "opted_out",
            NotExportedReason::NoIdentifier => "no_identifier",
            NotExportedReason::InvalidKey => "invalid_key",
            NotExportedReason::UnknownRecipient => "unknown_recipient",
        }
    }
}

/// A member that is not exported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NotExported {
    /// The member (an integer when its id is a canonical integer).
    pub recipient: RecipientKey,
    /// Why.
    pub reason: NotExportedReason,
    /// For `invalid_key`: why the key is not an identifier (`invalid_email`, `bad_char`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_error: Option<IdReason>,
}

/// One rendered onboarding file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// The file name, e.g. `ftp_dpm_21_1486140844.sync.1.gz`.
    pub name: String,
    /// The contents (gzip when the name ends in `.gz`).
    pub bytes: Vec<u8>,
    /// Number of lines.
    pub lines: u64,
}

/// Counts of one export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportReport {
    /// The mode.
    pub mode: ExportMode,
    /// Distinct members.
    pub members: u64,
    /// Members with at least one identifier.
    pub exported_recipients: u64,
    /// Members not exported, per reason (every reason listed, zeros included).
    pub not_exported: BTreeMap<NotExportedReason, u64>,
    /// Distinct identifiers of the exported members.
    pub identifiers: u64,
    /// Identifiers in the previous snapshot.
    pub previous_snapshot: u64,
    /// `d_sid` lines written.
    pub added: u64,
    /// `d_unsid` lines written.
    pub removed: u64,
    /// Files written.
    pub files: u64,
    /// `overwrite` with no identifier: no file (an empty file is invalid), the audience is left
    /// as it was and the snapshot keeps the previous identifiers.
    pub empty_overwrite: bool,
    /// Identifiers in the new snapshot.
    pub snapshot: u64,
}

/// The outcome of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportResult {
    /// The files to upload, in order (none when there is nothing to send).
    pub files: Vec<RenderedFile>,
    /// Members not exported, sorted by recipient.
    pub not_exported: Vec<NotExported>,
    /// The snapshot to store for the next export of this audience.
    pub snapshot: Snapshot,
    /// Counts.
    pub report: ExportReport,
}

/// An export that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The timestamp has more than 10 digits.
    #[error("timestamp {timestamp} does not fit 10 digits (at most {max})", max = OnboardingFileName::MAX_TIMESTAMP)]
    Timestamp {
        /// The timestamp given.
        timestamp: u64,
    },
    /// `max_lines` is 0.
    #[error("max_lines must be at least 1")]
    NoLines,
    /// `max_bytes` cannot hold the longest line this export may write.
    #[error(
        "max_bytes {max_bytes} is too small to hold one line: lines of this export take up to {line_bytes} bytes"
    )]
    MaxBytesTooSmall {
        /// The limit given.
        max_bytes: u64,
        /// The longest line this export may write, line ending included.
        line_bytes: u64,
    },
    /// The `opted_out` column is not a bool column.
    #[error("column \"{column}\" must be bool to mark opted-out recipients, it is {}", type_name(*.column_type))]
    OptedOutNotBool {
        /// The column's name.
        column: String,
        /// Its type.
        column_type: ColumnType,
    },
    /// The declared key column is not in the recipients table.
    #[error("the recipients table has no key column \"{column}\"")]
    MissingKeyColumn {
        /// The column's name.
        column: String,
    },
    /// The declared key column holds neither strings nor integers.
    #[error("key column \"{column}\" must hold strings or integers, it is {}", type_name(*.column_type))]
    BadKeyColumn {
        /// The column's name.
        column: String,
        /// Its type.
        column_type: ColumnType,
    },
    /// Two rows of the recipients table have the same id.
    #[error("the recipients table has the same id on rows {first} and {second} (0-based)")]
    DuplicateRecipient {
        /// One row.
        first: usize,
        /// Another row with the same id.
        second: usize,
    },
    /// An identifier of the previous snapshot is not one of this data source.
    #[error("snapshot identifier {index} (0-based, sorted) is not a valid {}: {reason}", .kind.describe())]
    BadSnapshot {
        /// Position in the sorted snapshot.
        index: usize,
        /// What the data source's identifiers are.
        kind: IdKind,
        /// Why it is not one.
        reason: IdReason,
    },
    /// More files than split numbers.
    #[error("more than {} files", u32::MAX)]
    TooManyFiles,
    /// A line could not be written (not expected: identifiers are validated first).
    #[error("a line cannot be written: {detail}")]
    Unrenderable {
        /// Why.
        detail: String,
    },
}

impl ExportError {
    /// A stable snake_case code for the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::Timestamp { .. } => "bad_timestamp",
            ExportError::NoLines | ExportError::MaxBytesTooSmall { .. } => "bad_limits",
            ExportError::OptedOutNotBool { .. } => "opted_out_not_bool",
            ExportError::MissingKeyColumn { .. } => "missing_key_column",
            ExportError::BadKeyColumn { .. } => "bad_key_column",
            ExportError::DuplicateRecipient { .. } => "duplicate_recipient",
            ExportError::BadSnapshot { .. } => "bad_snapshot",
            ExportError::TooManyFiles => "too_many_files",
            ExportError::Unrenderable { .. } => "unrenderable",
        }
    }
}

fn type_name(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Bool => "bool",
        ColumnType::Int => "int",
        ColumnType::Float => "float",
        ColumnType::Date => "date",
        ColumnType::DateTime => "date_time",
        ColumnType::String => "string",
    }
}

/// Maps the members to identifiers, computes the lines for the mode against the snapshot and
/// renders them into files; see the [module documentation](self).
pub fn export(req: &ExportRequest<'_>) -> Result<ExportResult, ExportError> {
    if req.timestamp > OnboardingFileName::MAX_TIMESTAMP {
        return Err(ExportError::Timestamp {
            timestamp: req.timestamp,
        });
    }
    check_limits(req)?;
    let opted_out = OptOut::new(req.recipients)?;
    let key = match &req.data_source.identifier {
        Identifier::VisitorId => None,
        Identifier::DeclaredId(key) => Some((key, KeyColumn::new(req.recipients, key)?)),
    };
    let rows = RowIndex::new(&req.recipients.ids)?;
    check_snapshot(req.data_source, req.snapshot)?;

    let members = distinct_members(req.members);
    let mut outcome = Outcome::default();
    match key {
        None => visitor_identifiers(req.links, &members, &rows, &opted_out, &mut outcome),
        Some((key, column)) => {
            declared_identifiers(key, &column, &members, &rows, &opted_out, &mut outcome);
        }
    }
    let Outcome {
        mut current,
        not_exported,
        exported,
    } = outcome;
    current.sort_unstable();
    current.dedup();

    let previous = req.snapshot.identifiers();
    let lines: Vec<(&str, bool)> = match req.mode {
        ExportMode::Sync | ExportMode::Overwrite => {
            current.iter().map(|id| (id.as_str(), true)).collect()
        }
        ExportMode::Delta => delta(previous, &current),
    };
    let files = render(req, &lines)?;
    let added = lines.iter().filter(|(_, add)| *add).count() as u64;
    let removed = lines.len() as u64 - added;

    let empty_overwrite = req.mode == ExportMode::Overwrite && current.is_empty();
    let identifiers = current.len() as u64;
    let snapshot = match req.mode {
        ExportMode::Sync => Snapshot::from_sorted(crate::sorted::union(previous, &current)),
        ExportMode::Overwrite if empty_overwrite => req.snapshot.clone(),
        ExportMode::Overwrite | ExportMode::Delta => Snapshot::from_sorted(current),
    };

    let mut per_reason: BTreeMap<NotExportedReason, u64> =
        NotExportedReason::ALL.iter().map(|&r| (r, 0)).collect();
    for item in &not_exported {
        *per_reason.entry(item.reason).or_insert(0) += 1;
    }
    let report = ExportReport {
        mode: req.mode,
        members: members.len() as u64,
        exported_recipients: exported,
        not_exported: per_reason,
        identifiers,
        previous_snapshot: previous.len() as u64,
        added,
        removed,
        files: files.len() as u64,
        empty_overwrite,
        snapshot: snapshot.len() as u64,
    };
    Ok(ExportResult {
        files,
        not_exported,
        snapshot,
        report,
    })
}

/// What mapping the members gave: identifiers (unsorted, possibly repeated), the members not
/// exported (in member order) and the count of exported members.
#[derive(Default)]
struct Outcome {
    current: Vec<String>,
    not_exported: Vec<NotExported>,
    exported: u64,
}

impl Outcome {
    fn skip(
        &mut self,
        member: &RecipientKey,
        reason: NotExportedReason,
        key_error: Option<IdReason>,
    ) {
        self.not_exported.push(NotExported {
            recipient: member.clone(),
            reason,
            key_error,
        });
    }
}

fn check_limits(req: &ExportRequest<'_>) -> Result<(), ExportError> {
    if req.limits.max_lines == 0 {
        return Err(ExportError::NoLines);
    }
    let id_bytes = match &req.data_source.identifier {
        Identifier::VisitorId => VisitorId::LEN,
        Identifier::DeclaredId(key) => match key.encoding {
            KeyEncoding::Plain => DeclaredId::MAX_LEN,
            KeyEncoding::Sha256Email | KeyEncoding::Sha256Phone => match key.profile.encoding() {
                DigestEncoding::Hex => HashedId::HEX_LEN,
                DigestEncoding::Base64 => HashedId::BASE64_LEN,
            },
        },
    };
    let entry = match req.mode {
        ExportMode::Sync | ExportMode::Overwrite => "d_sid=".len(),
        ExportMode::Delta => "d_unsid=".len(),
    };
    let line_bytes = (id_bytes + 1 + entry + req.trait_id.to_string().len() + 1) as u64;
    if req.limits.max_bytes < line_bytes {
        return Err(ExportError::MaxBytesTooSmall {
            max_bytes: req.limits.max_bytes,
            line_bytes,
        });
    }
    Ok(())
}

/// Checks that every snapshot identifier is one this data source could have sent (so removals
/// can be written and fit the line budget).
fn check_snapshot(source: &DataSource, snapshot: &Snapshot) -> Result<(), ExportError> {
    for (index, id) in snapshot.identifiers().iter().enumerate() {
        let bytes = id.as_bytes();
        let checked: Result<(), IdError> = match &source.identifier {
            Identifier::VisitorId => VisitorId::parse(bytes).map(drop),
            Identifier::DeclaredId(key) => match key.encoding {
                KeyEncoding::Plain => DeclaredId::parse(bytes).map(drop),
                KeyEncoding::Sha256Email | KeyEncoding::Sha256Phone => {
                    match key.profile.encoding() {
                        DigestEncoding::Hex => HashedId::parse_hex(bytes).map(drop),
                        DigestEncoding::Base64 => HashedId::parse_base64(bytes).map(drop),
                    }
                }
            },
        };
        checked.map_err(|e| ExportError::BadSnapshot {
            index,
            kind: e.kind,
            reason: e.reason,
        })?;
    }
    Ok(())
}

/// A member key typed like the id column: a string that is a canonical integer is that integer.
fn normalized(key: &RecipientKey) -> Cow<'_, RecipientKey> {
    match key.as_int() {
        Some(value) if matches!(key, RecipientKey::String(_)) => {
            Cow::Owned(RecipientKey::Int(value))
        }
        _ => Cow::Borrowed(key),
    }
}

fn distinct_members(members: &[RecipientKey]) -> Vec<RecipientKey> {
    let mut out: Vec<RecipientKey> = members
        .iter()
        .map(|key| normalized(key).into_owned())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Finds the row of a recipient id by binary search over the rows sorted by id.
struct RowIndex<'t> {
    ids: &'t RecipientIds,
    sorted: Vec<usize>,
}

impl<'t> RowIndex<'t> {
    fn new(ids: &'t RecipientIds) -> Result<RowIndex<'t>, ExportError> {
        let sorted = ids.sorted_rows();
        for pair in sorted.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let same = match ids {
                RecipientIds::Int(values) => values.get(a) == values.get(b),
                RecipientIds::String(values) => {
                    values.get(a).is_some() && values.get(a) == values.get(b)
                }
            };
            if same {
                return Err(ExportError::DuplicateRecipient {
                    first: a.min(b),
                    second: a.max(b),
                });
            }
        }
        Ok(RowIndex { ids, sorted })
    }

    /// The row of a normalized key.
    fn find(&self, key: &RecipientKey) -> Option<usize> {
        let found = match (self.ids, key) {
            (RecipientIds::Int(values), RecipientKey::Int(value)) => self
                .sorted
                .binary_search_by(|&row| values.get(row).cmp(&Some(value))),
            // A normalized string key is not a canonical integer: no integer id equals it.
            (RecipientIds::Int(_), RecipientKey::String(_)) => return None,
            (RecipientIds::String(values), key) => {
                let text: Cow<'_, str> = match key {
                    RecipientKey::Int(value) => Cow::Owned(value.to_string()),
                    RecipientKey::String(text) => Cow::Borrowed(text),
                };
                self.sorted
                    .binary_search_by(|&row| values.get(row).cmp(&Some(text.as_ref())))
            }
        };
        found.ok().and_then(|at| self.sorted.get(at).copied())
    }
}

/// The `opted_out` flags, when the table has any.
enum OptOut<'t> {
    Nobody,
    Flags(&'t [Option<bool>]),
}

impl<'t> OptOut<'t> {
    fn new(table: &'t RecipientsTable) -> Result<OptOut<'t>, ExportError> {
        let Some(column) = table.column(OPTED_OUT_COLUMN) else {
            return Ok(OptOut::Nobody);
        };
        match &column.data {
            ColumnData::Bool(flags) => Ok(OptOut::Flags(flags)),
            // The reader types a column without any value as string: nobody is opted out.
            data if all_null(data) => Ok(OptOut::Nobody),
            data => Err(ExportError::OptedOutNotBool {
                column: column.name.clone(),
                column_type: data.column_type(),
            }),
        }
    }

    fn is_opted_out(&self, row: Option<usize>) -> bool {
        match (self, row) {
            (OptOut::Flags(flags), Some(row)) => flags.get(row) == Some(&Some(true)),
            _ => false,
        }
    }
}

fn all_null(data: &ColumnData) -> bool {
    match data {
        ColumnData::Bool(v) => v.iter().all(Option::is_none),
        ColumnData::Int(v) => v.iter().all(Option::is_none),
        ColumnData::Float(v) => v.iter().all(Option::is_none),
        ColumnData::Date(v) => v.iter().all(Option::is_none),
        ColumnData::DateTime(v) => v.iter().all(Option::is_none),
        ColumnData::String(v) => v.iter().all(|value| value.is_none()),
    }
}

/// The declared key column.
enum KeyColumn<'t> {
    String(&'t Strings),
    Int(&'t [Option<i64>]),
}

impl<'t> KeyColumn<'t> {
    fn new(table: &'t RecipientsTable, key: &DeclaredKey) -> Result<KeyColumn<'t>, ExportError> {
        let Some(column) = table.column(&key.column) else {
            return Err(ExportError::MissingKeyColumn {
                column: key.column.clone(),
            });
        };
        match &column.data {
            ColumnData::String(values) => Ok(KeyColumn::String(values)),
            ColumnData::Int(values) => Ok(KeyColumn::Int(values)),
            data => Err(ExportError::BadKeyColumn {
                column: column.name.clone(),
                column_type: data.column_type(),
            }),
        }
    }

    /// The key of `row` as text; `None` when null.
    fn value(&self, row: usize) -> Option<Cow<'t, str>> {
        match self {
            KeyColumn::String(values) => values.get(row).map(Cow::Borrowed),
            KeyColumn::Int(values) => values
                .get(row)
                .copied()
                .flatten()
                .map(|value| Cow::Owned(value.to_string())),
        }
    }
}

fn visitor_identifiers(
    links: &[VisitorLink],
    members: &[RecipientKey],
    rows: &RowIndex<'_>,
    opted_out: &OptOut<'_>,
    outcome: &mut Outcome,
) {
    let mut pairs: Vec<(usize, VisitorId)> = links
        .iter()
        .filter_map(|link| {
            let member = members.binary_search(normalized(&link.recipient).as_ref());
            member.ok().map(|index| (index, link.visitor))
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut rest = pairs.as_slice();
    for (index, member) in members.iter().enumerate() {
        let count = rest.iter().take_while(|(i, _)| *i == index).count();
        let (own, after) = rest.split_at(count);
        rest = after;
        if opted_out.is_opted_out(rows.find(member)) {
            outcome.skip(member, NotExportedReason::OptedOut, None);
        } else if own.is_empty() {
            outcome.skip(member, NotExportedReason::NoIdentifier, None);
        } else {
            outcome.exported += 1;
            outcome
                .current
                .extend(own.iter().map(|(_, visitor)| visitor.to_string()));
        }
    }
}

fn declared_identifiers(
    key: &DeclaredKey,
    column: &KeyColumn<'_>,
    members: &[RecipientKey],
    rows: &RowIndex<'_>,
    opted_out: &OptOut<'_>,
    outcome: &mut Outcome,
) {
    let mut scratch = String::new();
    for member in members {
        let Some(row) = rows.find(member) else {
            outcome.skip(member, NotExportedReason::UnknownRecipient, None);
            continue;
        };
        if opted_out.is_opted_out(Some(row)) {
            outcome.skip(member, NotExportedReason::OptedOut, None);
            continue;
        }
        let Some(value) = column.value(row) else {
            outcome.skip(member, NotExportedReason::NoIdentifier, None);
            continue;
        };
        // Encoded keys are declared ids by construction; checked so a line can always be written.
        let encoded = key.encode(&value, &mut scratch).and_then(|(text, _)| {
            let valid = DeclaredId::parse(text.as_bytes()).map(drop);
            valid.map(|()| text)
        });
        match encoded {
            Ok(text) => {
                outcome.exported += 1;
                outcome.current.push(text);
            }
            Err(e) if e.reason == IdReason::Empty => {
                outcome.skip(member, NotExportedReason::NoIdentifier, None);
            }
            Err(e) => outcome.skip(member, NotExportedReason::InvalidKey, Some(e.reason)),
        }
    }
}

/// Lines of a delta, sorted by identifier: `true` adds (current only), `false` removes
/// (previous only).
fn delta<'s>(previous: &'s [String], current: &'s [String]) -> Vec<(&'s str, bool)> {
    let mut out = Vec::new();
    let (mut p, mut c) = (previous.iter().peekable(), current.iter().peekable());
    loop {
        match (p.peek(), c.peek()) {
            (Some(a), Some(b)) if a == b => {
                p.next();
                c.next();
            }
            (Some(a), Some(b)) if a < b => {
                out.push((a.as_str(), false));
                p.next();
            }
            (_, Some(b)) => {
                out.push((b.as_str(), true));
                c.next();
            }
            (Some(a), None) => {
                out.push((a.as_str(), false));
                p.next();
            }
            (None, None) => return out,
        }
    }
}

/// Writes the lines into files cut by the limits, and names them.
fn render(
    req: &ExportRequest<'_>,
    lines: &[(&str, bool)],
) -> Result<Vec<RenderedFile>, ExportError> {
    let kind = req.data_source.user_id_kind();
    let limits = req.limits;
    let mut bodies: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut body = Vec::new();
    let mut count = 0u64;
    let mut line = Vec::new();
    for &(id, add) in lines {
        let user: UserId<'_> =
            kind.parse(id.as_bytes())
                .map_err(|e| ExportError::Unrenderable {
                    detail: e.to_string(),
                })?;
        let entry = if add {
            Entry::Add(req.trait_id)
        } else {
            Entry::Remove(req.trait_id)
        };
        line.clear();
        onboarding::write_line(&mut line, user, &[entry]).map_err(|e| {
            ExportError::Unrenderable {
                detail: e.to_string(),
            }
        })?;
        let line_bytes = line.len() as u64;
        if line_bytes > limits.max_bytes {
            return Err(ExportError::MaxBytesTooSmall {
                max_bytes: limits.max_bytes,
                line_bytes,
            });
        }
        if count > 0
            && (count >= limits.max_lines || body.len() as u64 + line_bytes > limits.max_bytes)
        {
            bodies.push((std::mem::take(&mut body), count));
            count = 0;
        }
        body.extend_from_slice(&line);
        count += 1;
    }
    if count > 0 {
        bodies.push((body, count));
    }

    let several = bodies.len() > 1;
    bodies
        .into_iter()
        .enumerate()
        .map(|(index, (body, lines))| {
            let split = if several {
                Some(u32::try_from(index + 1).map_err(|_| ExportError::TooManyFiles)?)
            } else {
                None
            };
            let name = OnboardingFileName {
                dpid: req.data_source.dpid,
                target_dpid: None,
                timestamp: req.timestamp,
                mode: req.mode.file_mode(),
                split,
                gzip: limits.gzip,
            };
            let bytes = if limits.gzip {
                input::gzip(&body)
            } else {
                body
            };
            Ok(RenderedFile {
                name: name.render(),
                bytes,
                lines,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
