//! The one dispatch both front doors call: a [`Workspace`] of loaded tables and the operations
//! over it.
//!
//! The `js` door keeps a workspace alive across calls (the browser loads files once and asks
//! many questions); the `abi` door builds a fresh one per request from the [`Op`](crate::wire::Op)s it carries.
//! Either way every answer comes from the methods here, so the doors cannot drift apart.

use std::borrow::Cow;
use std::collections::BTreeMap;

use audlink_core::datasource::DataSource;
use audlink_core::export::{self, ExportMode, ExportRequest, ExportResult, FileLimits, Snapshot};
use audlink_core::format::links::{self, CompactLinks, LinksFile, LinksStats, VisitorLink};
use audlink_core::format::recipients::{self, Extent, PartSpec};
use audlink_core::format::{BadRecord, FileError, ReadOptions};
use audlink_core::import::{
    self, AudienceFile, AudienceFormat, ImportError, ImportOptions, ImportRequest, ImportResult,
    Links,
};
use audlink_core::recipients::{RecipientIds, RecipientKey, RecipientsTable};
use audlink_core::rule::eval::{self, EvalContext, Selection};
use audlink_core::rule::preview::{self, Breakdown, Count, Sample};
use audlink_core::rule::sql::{self, Dialect, SqlTables, SqlWhere};
use audlink_core::rule::{Rule, RuleError, Schema, Span, print};
use audlink_core::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Bad records a load summary lists at most by default (the count covers all of them).
pub const DEFAULT_MAX_BAD: usize = 100;

/// Loaded tables: recipients, visitor links and list memberships.
#[derive(Debug, Default)]
pub struct Workspace {
    recipients: Option<RecipientsTable>,
    recipient_lines: Vec<u64>,
    links: Option<CompactLinks>,
    lists: BTreeMap<String, Vec<RecipientKey>>,
}

/// What loading a file found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// The file's name, as given.
    pub file: String,
    /// Rows accepted.
    pub rows: u64,
    /// Rows rejected as bad records.
    pub rejected: u64,
    /// Empty lines skipped.
    pub empty_lines: u64,
    /// Links only: accepted rows merged into an earlier one with the same pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<u64>,
    /// Recipients only: the columns and their types, `id` first (the schema rules check
    /// against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// The first rejected rows (at most the `max_bad` asked for), in file order.
    pub bad: Vec<BadRecord>,
    /// Recipients read as a part: where reading stopped and the types the values call for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extent: Option<Extent>,
}

/// How to read a recipients or links file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadOptions {
    /// Stop at the first bad record.
    pub strict: bool,
    /// Bad records listed in the summary at most.
    pub max_bad: usize,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            strict: false,
            max_bad: DEFAULT_MAX_BAD,
        }
    }
}

/// An audience file of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportFileSpec {
    /// The file's name (its base name carries metadata for most formats).
    pub name: String,
    /// How to read it.
    pub format: AudienceFormat,
}

/// The options of an import; the files come with them as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSpec {
    /// The data source the files' identifiers belong to.
    pub data_source: DataSource,
    /// Mapping, unmatched listing, strictness.
    #[serde(default)]
    pub options: ImportOptions,
    /// Timestamp (unix ms) of the last delivery applied, per segment.
    #[serde(default)]
    pub last_applied: BTreeMap<String, i64>,
}

/// Whom an export sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Members {
    /// The members of a list of the workspace.
    List(String),
    /// The recipients a rule selects.
    Rule {
        /// The rule's text.
        text: String,
        /// The value of `now()`.
        now: Timestamp,
    },
}

/// The options of an export; the previous snapshot comes with them as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// The data source whose identifiers are sent.
    pub data_source: DataSource,
    /// Whom to send.
    pub members: Members,
    /// The trait the members are added to or removed from.
    pub trait_id: u64,
    /// How the audience changes.
    pub mode: ExportMode,
    /// Unix seconds for the file names.
    pub timestamp: u64,
    /// File size limits and compression.
    #[serde(default)]
    pub limits: FileLimits,
}

/// A rule preview over the loaded recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewSpec {
    /// The rule's text.
    pub rule: String,
    /// The value of `now()`.
    pub now: Timestamp,
    /// Recipients to show at most.
    #[serde(default = "default_sample")]
    pub sample: usize,
    /// A column to break the selection down by.
    #[serde(default)]
    pub breakdown: Option<String>,
    /// Values the breakdown lists at most.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
}

fn default_sample() -> usize {
    10
}

fn default_top_k() -> usize {
    10
}

/// What a rule preview shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulePreview {
    /// The rule in canonical form.
    pub canonical: String,
    /// How many recipients it selects.
    pub count: Count,
    /// The first selected recipients by id.
    pub sample: Sample,
    /// The breakdown, when a column was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
}

/// A rule compiled for a database (the host evaluates rules over its database this way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSpec {
    /// The rule's text.
    pub rule: String,
    /// The recipients table's columns and types.
    pub schema: Schema,
    /// The lists `in_list` may name (unchecked when absent).
    #[serde(default)]
    pub lists: Option<Vec<String>>,
    /// The SQL engine.
    pub dialect: Dialect,
    /// Table and column names.
    #[serde(default)]
    pub tables: SqlTables,
    /// The value of `now()`.
    pub now: Timestamp,
}

/// A compiled rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlOutput {
    /// The rule in canonical form.
    pub canonical: String,
    /// The `WHERE` clause and its parameters.
    pub clause: SqlWhere,
    /// `SELECT id FROM recipients WHERE …`.
    pub select: String,
}

/// What kind of thing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A file cannot be read.
    File,
    /// A rule does not parse, type-check or fit the table.
    Rule,
    /// The request does not hold together (a missing table, list or option).
    Request,
    /// The request bytes do not follow the ABI.
    Abi,
}

/// A failed operation, with everything a caller needs to point at the cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct DispatchError {
    /// What kind of thing went wrong.
    pub kind: ErrorKind,
    /// For people: lower-case, no trailing period, no identifier values.
    pub message: String,
    /// The file to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its 1-based line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Its 1-based column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The part of a rule to point at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// A stable reason code (`truncated_gzip`, `missing_column`, …) where one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl DispatchError {
    /// An error of `kind` with only a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> DispatchError {
        DispatchError {
            kind,
            message: message.into(),
            file: None,
            line: None,
            column: None,
            span: None,
            reason: None,
        }
    }

    fn request(message: impl Into<String>) -> DispatchError {
        DispatchError::new(ErrorKind::Request, message)
    }

    fn rule(error: RuleError, text: &str) -> DispatchError {
        DispatchError {
            span: Some(error.span),
            message: error.render(text),
            ..DispatchError::new(ErrorKind::Rule, "")
        }
    }
}

impl From<FileError> for DispatchError {
    fn from(error: FileError) -> DispatchError {
        DispatchError {
            kind: ErrorKind::File,
            message: error.to_string(),
            file: Some(error.file),
            line: error.line,
            column: error.column,
            span: None,
            reason: Some(error.reason.code().to_owned()),
        }
    }
}

impl From<ImportError> for DispatchError {
    fn from(error: ImportError) -> DispatchError {
        match error {
            ImportError::File(file) => file.into(),
            ImportError::Request(message) => DispatchError::request(message),
        }
    }
}

fn limited(bad: &[BadRecord], max: usize) -> Vec<BadRecord> {
    bad.iter().take(max).cloned().collect()
}

fn empty_table() -> RecipientsTable {
    RecipientsTable {
        ids: RecipientIds::Int(Vec::new()),
        columns: Vec::new(),
    }
}

impl Workspace {
    /// An empty workspace.
    pub fn new() -> Workspace {
        Workspace::default()
    }

    /// Reads a recipients CSV (plain or gzip) and keeps it, replacing any loaded before.
    pub fn load_recipients(
        &mut self,
        name: &str,
        bytes: &[u8],
        options: LoadOptions,
    ) -> Result<LoadSummary, DispatchError> {
        self.read_recipients(name, bytes, options, None)
    }

    /// Reads one part of a large recipients CSV ([`PartSpec`]: decoded bytes, the header
    /// first) and keeps it as the recipients, with the line of each row
    /// ([`Workspace::recipient_lines`]); the summary says where reading stopped.
    pub fn load_recipients_part(
        &mut self,
        name: &str,
        bytes: &[u8],
        options: LoadOptions,
        part: &PartSpec,
    ) -> Result<LoadSummary, DispatchError> {
        self.read_recipients(name, bytes, options, Some(part))
    }

    fn read_recipients(
        &mut self,
        name: &str,
        bytes: &[u8],
        options: LoadOptions,
        part: Option<&PartSpec>,
    ) -> Result<LoadSummary, DispatchError> {
        let read = recipients::read_part(
            name,
            bytes,
            ReadOptions {
                strict: options.strict,
            },
            part.unwrap_or(&PartSpec::default()),
        )?;
        let summary = LoadSummary {
            file: name.to_owned(),
            rows: read.stats.rows,
            rejected: read.stats.rejected,
            empty_lines: read.stats.empty_lines,
            merged: None,
            schema: Some(Schema::of(&read.table)),
            bad: limited(&read.bad, options.max_bad),
            extent: part.map(|_| read.extent),
        };
        self.recipients = Some(read.table);
        self.recipient_lines = if part.is_some() {
            read.lines
        } else {
            Vec::new()
        };
        Ok(summary)
    }

    /// The line of each row of recipients loaded as a part (empty otherwise).
    pub fn recipient_lines(&self) -> &[u64] {
        &self.recipient_lines
    }

    /// Reads a visitor links CSV (plain or gzip) and keeps it, replacing any loaded before.
    pub fn load_links(
        &mut self,
        name: &str,
        bytes: &[u8],
        options: LoadOptions,
    ) -> Result<LoadSummary, DispatchError> {
        let read = links::read_compact(
            name,
            bytes,
            ReadOptions {
                strict: options.strict,
            },
        )?;
        let summary = LoadSummary {
            file: name.to_owned(),
            rows: read.stats.rows,
            rejected: read.stats.rejected,
            empty_lines: read.stats.empty_lines,
            merged: Some(read.stats.merged),
            schema: None,
            bad: limited(&read.bad, options.max_bad),
            extent: None,
        };
        self.links = Some(read);
        Ok(summary)
    }

    /// Sets the recipients table (e.g. read from the host's database), replacing any loaded.
    pub fn set_recipients(&mut self, table: RecipientsTable) {
        self.recipient_lines = Vec::new();
        self.recipients = Some(table);
    }

    /// Sets the visitor links (in any order; a repeated pair keeps the latest `last_seen`, as
    /// the reader merges them), replacing any loaded.
    pub fn set_links(&mut self, mut links: Vec<VisitorLink>) {
        links::sort_and_merge(&mut links);
        let rows = links.len() as u64;
        self.links = Some(CompactLinks::from_file(LinksFile {
            links,
            bad: Vec::new(),
            stats: LinksStats {
                rows,
                ..LinksStats::default()
            },
        }));
    }

    /// The loaded visitor links, sorted by (visitor, recipient).
    pub fn links(&self) -> Vec<VisitorLink> {
        self.links
            .as_ref()
            .map(CompactLinks::to_links)
            .unwrap_or_default()
    }

    /// Sets the current members of a list (in any order, repeats allowed).
    pub fn set_list(&mut self, name: &str, members: Vec<RecipientKey>) {
        self.lists.insert(name.to_owned(), members);
    }

    /// The current members of a list, if it was set.
    pub fn list(&self, name: &str) -> Option<&[RecipientKey]> {
        self.lists.get(name).map(Vec::as_slice)
    }

    /// The loaded recipients, if any.
    pub fn recipients(&self) -> Option<&RecipientsTable> {
        self.recipients.as_ref()
    }

    /// Imports audience files (name, format and bytes of each) against the loaded tables; the
    /// lists set on the workspace are the current members. The workspace is not changed.
    pub fn import(
        &self,
        spec: &ImportSpec,
        files: &[(ImportFileSpec, &[u8])],
    ) -> Result<ImportResult, DispatchError> {
        let files: Vec<AudienceFile<'_>> = files
            .iter()
            .map(|(file, bytes)| AudienceFile {
                name: &file.name,
                bytes,
                format: &file.format,
            })
            .collect();
        let request = ImportRequest {
            data_source: &spec.data_source,
            recipients: self.recipients.as_ref(),
            links: &[],
            files: &files,
            options: &spec.options,
            current: &self.lists,
            last_applied: &spec.last_applied,
        };
        let links = match &self.links {
            Some(compact) => Links::Compact(compact),
            None => Links::Parsed(&[]),
        };
        Ok(import::import_with_links(&request, links)?)
    }

    /// Exports a list or the recipients a rule selects, against `snapshot` (what was sent to
    /// this audience before).
    pub fn export(
        &self,
        spec: &ExportSpec,
        snapshot: &Snapshot,
    ) -> Result<ExportResult, DispatchError> {
        let empty = empty_table();
        let table = self.recipients.as_ref().unwrap_or(&empty);
        let selected;
        let members: &[RecipientKey] = match &spec.members {
            Members::List(name) => self
                .lists
                .get(name)
                .ok_or_else(|| DispatchError::request(format!("no list {name:?} is loaded")))?,
            Members::Rule { text, now } => {
                let selection = self.select(text, *now)?;
                selected = selection
                    .rows()
                    .filter_map(|row| table.ids.key(row))
                    .collect::<Vec<_>>();
                &selected
            }
        };
        let links = self
            .links
            .as_ref()
            .map(CompactLinks::to_links)
            .unwrap_or_default();
        let request = ExportRequest {
            members,
            recipients: table,
            links: &links,
            data_source: &spec.data_source,
            trait_id: spec.trait_id,
            mode: spec.mode,
            snapshot,
            timestamp: spec.timestamp,
            limits: spec.limits,
        };
        export::export(&request).map_err(|error| {
            let reason = error.code().to_owned();
            DispatchError {
                reason: Some(reason),
                ..DispatchError::request(error.to_string())
            }
        })
    }

    fn table(&self) -> Result<&RecipientsTable, DispatchError> {
        self.recipients
            .as_ref()
            .ok_or_else(|| DispatchError::request("no recipients are loaded"))
    }

    fn checked_rule(&self, text: &str) -> Result<Rule, DispatchError> {
        let table = self.table()?;
        let lists: Vec<String> = self.lists.keys().cloned().collect();
        Rule::new(text, &Schema::of(table), Some(&lists))
            .map_err(|error| DispatchError::rule(error, text))
    }

    fn select(&self, text: &str, now: Timestamp) -> Result<Selection, DispatchError> {
        let rule = self.checked_rule(text)?;
        let ctx = EvalContext {
            now,
            lists: &self.lists,
        };
        eval::evaluate(&rule, self.table()?, &ctx)
            .map_err(|error| DispatchError::new(ErrorKind::Rule, error.to_string()))
    }

    /// Counts, samples and breaks down the recipients a rule selects.
    pub fn preview_rule(&self, spec: &PreviewSpec) -> Result<RulePreview, DispatchError> {
        let rule = self.checked_rule(&spec.rule)?;
        let table = self.table()?;
        let selection = self.select(&spec.rule, spec.now)?;
        let preview_error = |error: preview::PreviewError| {
            DispatchError::new(ErrorKind::Request, error.to_string())
        };
        let breakdown = match &spec.breakdown {
            Some(column) => Some(
                preview::breakdown(table, &selection, column, spec.top_k).map_err(preview_error)?,
            ),
            None => None,
        };
        Ok(RulePreview {
            canonical: print::print(rule.expr()),
            count: preview::count(&selection),
            sample: preview::sample(table, &selection, spec.sample).map_err(preview_error)?,
            breakdown,
        })
    }
}

/// Parses, type-checks and compiles a rule to SQL (needs no loaded table: the schema is given).
pub fn rule_sql(spec: &SqlSpec) -> Result<SqlOutput, DispatchError> {
    let rule = Rule::new(&spec.rule, &spec.schema, spec.lists.as_deref())
        .map_err(|error| DispatchError::rule(error, &spec.rule))?;
    let clause = sql::to_sql(&rule, &spec.schema, spec.dialect, &spec.tables, spec.now)
        .map_err(|error| DispatchError::rule(error, &spec.rule))?;
    Ok(SqlOutput {
        canonical: print::print(rule.expr()),
        select: spec.tables.select_ids(&clause),
        clause,
    })
}

/// What an audience file's name says it is ([`audlink_core::format::detect`], the order
/// `audlink audience import --format auto` tries): `"onboarding"`, `"aep"` (Experience Platform
/// export) or `"outbound"` (Audience Manager); `None` for any other name (a plain id list, say).
pub fn format_of_name(name: &str) -> Option<&'static str> {
    audlink_core::format::detect(name).map(audlink_core::format::FileKind::code)
}

/// Lists an import preview draws an overlap for at most (the largest ones).
pub const PREVIEW_OVERLAP_LISTS: usize = 16;

/// What [`Workspace::import_preview`] answers: the import's report without the per-identifier
/// unmatched rows (returned apart, for paging), each touched list's size, and how the largest
/// lists overlap.
#[derive(Debug, Clone, Serialize)]
pub struct ImportPreview {
    /// Each list the import touched: name, whether replaced, counts of added and removed
    /// recipients, members after.
    pub lists: Vec<ListSize>,
    /// New last-applied delivery timestamp per segment.
    pub last_applied: BTreeMap<String, i64>,
    /// The report; its `unmatched` is empty (the rows come back apart).
    pub report: audlink_core::import::ImportReport,
    /// Recipients in both of two lists, for the [`PREVIEW_OVERLAP_LISTS`] largest lists.
    pub overlap: ListOverlap,
}

/// A list after an import, by size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListSize {
    /// The list's name.
    pub list: String,
    /// Whether a full delivery replaced it.
    pub replaced: bool,
    /// Recipients added.
    pub added: u64,
    /// Recipients removed.
    pub removed: u64,
    /// Members after the import.
    pub members: u64,
}

/// Pairwise intersections of lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListOverlap {
    /// The lists, largest first (ties by name).
    pub lists: Vec<String>,
    /// `counts[i][j]`: recipients in both list `i` and list `j`; `counts[i][i]`: list `i`'s
    /// members among the loaded recipients.
    pub counts: Vec<Vec<u64>>,
}

impl Workspace {
    /// Imports like [`Workspace::import`], then makes each touched list what the import leaves
    /// (current members, less the removed, plus the added), so later rules (`in_list`) and
    /// exports see them. Returns the preview and, apart, the unmatched identifiers.
    pub fn import_preview(
        &mut self,
        spec: &ImportSpec,
        files: &[(ImportFileSpec, &[u8])],
    ) -> Result<(ImportPreview, Vec<audlink_core::import::UnmatchedId>), DispatchError> {
        let mut result = self.import(spec, files)?;
        let unmatched = std::mem::take(&mut result.report.unmatched);
        let mut sizes = Vec::with_capacity(result.lists.len());
        for change in result.lists {
            let current = self.lists.remove(&change.list).unwrap_or_default();
            let added = change.added.len() as u64;
            let members = if current.is_empty() {
                change.added.to_vec()
            } else {
                let removed: std::collections::BTreeSet<RecipientKey> =
                    change.removed.iter().map(Cow::into_owned).collect();
                let mut members: std::collections::BTreeSet<RecipientKey> = current
                    .into_iter()
                    .filter(|key| !removed.contains(key))
                    .collect();
                members.extend(change.added.iter().map(Cow::into_owned));
                members.into_iter().collect()
            };
            sizes.push(ListSize {
                list: change.list.clone(),
                replaced: change.replaced,
                added,
                removed: change.removed.len() as u64,
                members: change.members,
            });
            self.lists.insert(change.list, members);
        }
        let overlap = self.list_overlap(&sizes);
        let preview = ImportPreview {
            lists: sizes,
            last_applied: result.last_applied,
            report: result.report,
            overlap,
        };
        Ok((preview, unmatched))
    }

    /// The overlap of the largest lists among `sizes` over the loaded recipients.
    fn list_overlap(&self, sizes: &[ListSize]) -> ListOverlap {
        let mut largest: Vec<&ListSize> = sizes.iter().filter(|s| s.members > 0).collect();
        largest.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.list.cmp(&b.list)));
        largest.truncate(PREVIEW_OVERLAP_LISTS);
        let Some(table) = self.recipients.as_ref() else {
            return ListOverlap {
                lists: Vec::new(),
                counts: Vec::new(),
            };
        };
        let selections: Vec<Selection> = largest
            .iter()
            .map(|s| Selection::of_keys(table, self.lists.get(&s.list).map_or(&[], Vec::as_slice)))
            .collect();
        let k = selections.len();
        let mut counts = vec![vec![0u64; k]; k];
        for i in 0..k {
            for j in i..k {
                let both = selections[i].intersection_count(&selections[j]) as u64;
                counts[i][j] = both;
                counts[j][i] = both;
            }
        }
        ListOverlap {
            lists: largest.iter().map(|s| s.list.clone()).collect(),
            counts,
        }
    }
}

/// One page of unmatched identifiers, optionally of one reason (its code): the number of rows
/// of that reason and the rows `offset..offset + limit` of them.
pub fn unmatched_page<'a>(
    rows: &'a [audlink_core::import::UnmatchedId],
    offset: usize,
    limit: usize,
    reason: Option<&str>,
) -> (usize, Vec<&'a audlink_core::import::UnmatchedId>) {
    let of_reason = |row: &&audlink_core::import::UnmatchedId| {
        reason.is_none_or(|code| row.reason.code() == code)
    };
    let total = rows.iter().filter(of_reason).count();
    let page = rows
        .iter()
        .filter(of_reason)
        .skip(offset)
        .take(limit)
        .collect();
    (total, page)
}
