//! Import: shared audiences become recipient list memberships, and every identifier is
//! accounted for.
//!
//! Input files (Audience Manager outbound, Experience Platform exports, audlink's own onboarding
//! files, plain id lists) are grouped into deliveries (files whose names differ only in the split
//! part), applied in timestamp order. Every (line, segment) pair of an add column is one *unit*
//! and gets exactly one outcome: `matched`, or unmatched with a reason — `invalid_format`,
//! `duplicate` (the identifier was already seen for that segment earlier in the command),
//! `no_recipient`, `ambiguous`. A delivery older than the last one applied for a segment is
//! refused for that segment; its units are counted as refused, not applied.
//!
//! `full` deliveries replace the lists of their segments (and of explicitly mapped segments);
//! `iter` / incremental ones add and remove — within one delivery an add wins over a remove of
//! the same recipient (another of its devices still qualifies). The result is, per list, the
//! recipients to add and to remove relative to its current members: re-running an import is a
//! no-op.
//!
//! This module holds the public API and the entry points: [`import`], or [`prepare`] (numbering
//! recipients and building the match index) then [`run_prepared`] (reading, probing,
//! aggregating). The work is done in submodules, each using only those listed after it:
//!
//! - `read` — the format switch: each file kind read into the run (`fast`: the fast path for
//!   outbound files of visitor ids);
//! - `probe` — batching and probing: batched lines ordered by where their keys live in the
//!   index and probed with prefetching, mask lines tallied per segment;
//! - `run` — `Run`: the import's working state and the one outcome of every unit;
//!   deliveries begun and ended, the result built;
//! - `batch` — the batch's lines and the mask lines' regions (data only);
//! - `delivery` — files grouped into deliveries in time order, per-segment and per-list state;
//! - `space` — the recipient space: recipients numbered densely in id order;
//! - `directory`, `index`, `extra`, `names` — the match indexes, the table of keys probed but
//!   not indexed, the packed short segment names;
//! - `report` ([`ImportReport`]), `keys` ([`RecipientKeys`]) — what an import returns.

mod batch;
mod delivery;
mod directory;
mod extra;
mod fast;
mod index;
mod keys;
mod names;
mod probe;
mod read;
mod report;
mod run;
mod space;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::datasource::{DataSource, Identifier, MatchKey};
use crate::format::FileError;
use crate::format::aep::AepColumns;
use crate::format::links::{CompactLinks, LinksFile, LinksStats, VisitorLink, sort_and_merge};
use crate::format::outbound::SyncMode;
use crate::recipients::{ColumnData, RecipientKey, RecipientsTable};

use directory::LinkDirectory;
use index::{Index, Link, MatchIndex};
pub use keys::{Iter as RecipientKeysIter, RecipientKeys};
pub use report::{
    ImportReport, LocatedProblem, Refused, SegmentReport, Totals, UnmatchedId, UnmatchedReason,
};
use run::Run;
use space::{LinkRids, RecipientSpace};

/// How one input file is to be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AudienceFormat {
    /// Audience Manager outbound file; `full`/`iter` comes from the name, else from `mode`,
    /// else `iter`.
    Outbound {
        /// Sync mode when the name does not say.
        #[serde(default)]
        mode: Option<SyncMode>,
    },
    /// Experience Platform destination export (`realized`/`existing` add, `exited` removes).
    Aep {
        /// Identity and status columns.
        columns: AepColumns,
        /// A full export (replaces the list); default incremental.
        #[serde(default)]
        full: bool,
    },
    /// audlink's own onboarding file: trait id = segment; `.overwrite` is full, `.sync` iter.
    Onboarding,
    /// One identifier per line, all members of `segment` (full).
    IdList {
        /// The segment the ids belong to.
        segment: String,
    },
}

/// One input file.
#[derive(Debug, Clone, Copy)]
pub struct AudienceFile<'a> {
    /// The file's name (its base name carries metadata for most formats).
    pub name: &'a str,
    /// Its bytes, gzip or plain.
    pub bytes: &'a [u8],
    /// How to read it.
    pub format: &'a AudienceFormat,
}

/// The name of a segment's list when no mapping names one: this prefix, then the segment id
/// verbatim.
pub const DEFAULT_LIST_PREFIX: &str = "segment-";

/// Options of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportOptions {
    /// Segment → list name; other segments go to `segment-<ID>`. A full delivery also replaces
    /// the lists mapped here.
    pub mappings: BTreeMap<String, String>,
    /// List every unmatched identifier (file, line, segment, reason) in the report.
    pub list_unmatched: bool,
    /// Stop at the first bad record of any file.
    pub strict: bool,
}

/// Everything an import needs.
#[derive(Debug, Clone, Copy)]
pub struct ImportRequest<'a> {
    /// The data source the files' identifiers belong to.
    pub data_source: &'a DataSource,
    /// Recipients (needed for declared-id sources; its bool `opted_out` column is counted).
    pub recipients: Option<&'a RecipientsTable>,
    /// Visitor links (for visitor-id sources).
    pub links: &'a [VisitorLink],
    /// The input files, in any order.
    pub files: &'a [AudienceFile<'a>],
    /// Options.
    pub options: &'a ImportOptions,
    /// Current members of lists the import may change.
    pub current: &'a BTreeMap<String, Vec<RecipientKey>>,
    /// Timestamp (unix ms) of the last delivery applied, per segment.
    pub last_applied: &'a BTreeMap<String, i64>,
}

/// How one list changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListChange {
    /// The list's name.
    pub list: String,
    /// Whether a full delivery replaced it.
    pub replaced: bool,
    /// Recipients to add, sorted by id.
    pub added: RecipientKeys,
    /// Recipients to remove, sorted by id.
    pub removed: RecipientKeys,
    /// Members after the change.
    pub members: u64,
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportResult {
    /// Every list the import touched, by name.
    pub lists: Vec<ListChange>,
    /// New last-applied delivery timestamp per segment.
    pub last_applied: BTreeMap<String, i64>,
    /// What happened to every identifier.
    pub report: ImportReport,
}

/// Why an import could not run; nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// A file cannot be read (or a strict read met a bad record).
    #[error(transparent)]
    File(#[from] FileError),
    /// The request does not fit the data source or the recipients table.
    #[error("{0}")]
    Request(String),
}

/// A match index key: fixed size, built from a [`MatchKey`].
trait IndexKey: Copy + Eq + Ord + std::hash::Hash + std::fmt::Debug {
    fn from_match(key: MatchKey) -> Option<Self>;
}

impl IndexKey for [u64; 2] {
    fn from_match(key: MatchKey) -> Option<[u64; 2]> {
        match key {
            MatchKey::Visitor(v) => Some([(v >> 64) as u64, v as u64]),
            MatchKey::Digest(_) => None,
        }
    }
}

impl IndexKey for [u8; 32] {
    fn from_match(key: MatchKey) -> Option<[u8; 32]> {
        match key {
            MatchKey::Digest(d) => Some(d),
            MatchKey::Visitor(_) => None,
        }
    }
}

/// Visitor links for [`import_with_links`].
#[derive(Debug, Clone, Copy)]
pub enum Links<'a> {
    /// Parsed links ([`crate::format::links::read`]).
    Parsed(&'a [VisitorLink]),
    /// Compact links ([`crate::format::links::read_compact`]), sorted and merged as read.
    Compact(&'a CompactLinks),
}

impl Links<'_> {
    fn len(&self) -> usize {
        match self {
            Links::Parsed(links) => links.len(),
            Links::Compact(links) => links.len(),
        }
    }
}

/// Runs an import. Pure: the same request gives the same result.
pub fn import(request: &ImportRequest<'_>) -> Result<ImportResult, ImportError> {
    import_with_links(request, Links::Parsed(request.links))
}

/// Runs an import with `links` in place of `request.links` (which is ignored). Pure.
pub fn import_with_links(
    request: &ImportRequest<'_>,
    links: Links<'_>,
) -> Result<ImportResult, ImportError> {
    let prepared = prepare(request, links)?;
    run_prepared(request, prepared)
}

/// The recipients and match index of a request, built by [`prepare`] (numbering recipients and
/// indexing links or key column) and used once by [`run_prepared`]; it may borrow the links.
#[derive(Debug)]
pub struct Prepared<'a> {
    space: RecipientSpace,
    index: PreparedIndex<'a>,
}

#[derive(Debug)]
enum PreparedIndex<'a> {
    Visitor(Box<LinkDirectory<'a>>),
    Declared(Index<[u8; 32]>),
}

/// Runs the import of `request` (the same request [`prepare`] was given) with its prepared
/// index: reads the files, probes and aggregates.
pub fn run_prepared(
    request: &ImportRequest<'_>,
    prepared: Prepared<'_>,
) -> Result<ImportResult, ImportError> {
    run_with(request, prepared, true)
}

fn run_with(
    request: &ImportRequest<'_>,
    prepared: Prepared<'_>,
    fast_path: bool,
) -> Result<ImportResult, ImportError> {
    let Prepared { space, index } = prepared;
    match index {
        PreparedIndex::Visitor(index) => {
            let mut run = Run::new(request, space, *index);
            run.fast_path = fast_path;
            execute(run)
        }
        PreparedIndex::Declared(index) => execute(Run::new(request, space, index)),
    }
}

/// Applies the deliveries of the run's request in time order (each file read into it), then
/// counts the units of keys not indexed and builds the result.
fn execute<I: MatchIndex>(mut run: Run<'_, I>) -> Result<ImportResult, ImportError>
where
    I::Key: IndexKey,
{
    let deliveries = delivery::deliveries(run.request)?;
    run.report.totals.deliveries = deliveries.len() as u64;
    for (i, delivery) in deliveries.iter().enumerate() {
        run.last_delivery = i + 1 == deliveries.len();
        run.begin_delivery(delivery);
        for file in &delivery.files {
            run.report.totals.files += 1;
            run.file = file.name.into();
            run.read_file(file)?;
        }
        run.end_delivery(delivery);
    }
    run.count_unindexed();
    Ok(run.finish())
}

/// [`import`] without the fast path for outbound visitor-id files: the reference the fast path
/// is tested against.
#[cfg(test)]
pub(crate) fn import_general(request: &ImportRequest<'_>) -> Result<ImportResult, ImportError> {
    let prepared = prepare(request, Links::Parsed(request.links))?;
    run_with(request, prepared, false)
}

/// Links given as [`VisitorLink`]s, in the compact form the index searches: recipient keys in
/// canonical form, sorted and merged as [`crate::format::links::read`] gives them.
fn compact(links: &[VisitorLink]) -> CompactLinks {
    let mut links: Vec<VisitorLink> = links
        .iter()
        .map(|l| VisitorLink {
            recipient: l.recipient.clone().canonical(),
            ..l.clone()
        })
        .collect();
    sort_and_merge(&mut links);
    let rows = links.len() as u64;
    CompactLinks::from_file(LinksFile {
        links,
        bad: Vec::new(),
        stats: LinksStats {
            rows,
            ..LinksStats::default()
        },
    })
}

/// The first half of [`import_with_links`]: numbers the recipients and builds the match index
/// (`links` in place of `request.links`, which is ignored).
pub fn prepare<'a>(
    request: &ImportRequest<'_>,
    links: Links<'a>,
) -> Result<Prepared<'a>, ImportError> {
    prepare_links(
        request,
        match links {
            Links::Compact(compact) => Cow::Borrowed(compact),
            Links::Parsed(parsed) => Cow::Owned(compact(parsed)),
        },
    )
}

/// [`prepare`] with compact links the index takes over (a one-off import): it keeps its
/// per-key state in them instead of beside them.
pub fn prepare_owned(
    request: &ImportRequest<'_>,
    links: CompactLinks,
) -> Result<Prepared<'static>, ImportError> {
    prepare_links(request, Cow::Owned(links))
}

/// [`prepare`] on links either borrowed or taken over.
fn prepare_links<'a>(
    request: &ImportRequest<'_>,
    links: Cow<'a, CompactLinks>,
) -> Result<Prepared<'a>, ImportError> {
    if links.len() >= u32::MAX as usize {
        return Err(ImportError::Request(
            "too many visitor links for one import".into(),
        ));
    }
    let (space, link_rids) = RecipientSpace::new(request, Links::Compact(&links))?;
    match &request.data_source.identifier {
        Identifier::VisitorId => {
            let rids = match link_rids {
                Some(rids) => rids,
                None => LinkRids::Given(
                    (0..links.len())
                        .map(|i| space.rid(&links.recipient(i)))
                        .collect(),
                ),
            };
            let index = LinkDirectory::build(links, rids, request.data_source.policy);
            Ok(Prepared {
                space,
                index: PreparedIndex::Visitor(Box::new(index)),
            })
        }
        Identifier::DeclaredId(key) => {
            let table = request.recipients.ok_or_else(|| {
                ImportError::Request(format!(
                    "data source {:?} matches a recipients column: the recipients table is needed",
                    request.data_source.name
                ))
            })?;
            let column = table.column(&key.column).ok_or_else(|| {
                ImportError::Request(format!(
                    "recipients have no column {:?} (the data source's key column)",
                    key.column
                ))
            })?;
            let mut links = Vec::with_capacity(table.len());
            let mut scratch = String::new();
            for row in 0..table.len() {
                let Some(value) = cell_text(&column.data, row) else {
                    continue;
                };
                if let Ok((_, MatchKey::Digest(digest))) = key.encode(&value, &mut scratch) {
                    let rid = space.rid(&table.ids.key(row).expect("row of the table"));
                    links.push(Link {
                        key: digest,
                        rid,
                        seen: 0,
                    });
                }
            }
            let index = Index::build(links, request.data_source.policy, false);
            Ok(Prepared {
                space,
                index: PreparedIndex::Declared(index),
            })
        }
    }
}

/// A key column cell as text: strings verbatim (borrowed), integers in decimal; `None` for null
/// or a type that cannot hold a key.
fn cell_text(data: &ColumnData, row: usize) -> Option<Cow<'_, str>> {
    match data {
        ColumnData::String(strings) => strings.get(row).map(Cow::Borrowed),
        ColumnData::Int(values) => values
            .get(row)
            .copied()
            .flatten()
            .map(|v| Cow::Owned(v.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
