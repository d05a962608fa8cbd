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

mod directory;
mod extra;
mod fast;
mod index;
mod keys;
mod names;
mod report;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use crate::datasource::{DataSource, Identifier, MatchKey};
use crate::format::aep::{self, AepColumns, AepFileName, MembershipStatus};
use crate::format::input::{self, Lines};
use crate::format::links::{
    CompactLink, CompactLinks, CompactRecipients, LinksFile, LinksStats, VisitorLink,
    sort_and_merge,
};
use crate::format::onboarding::{self, Entry, OnboardingFileName, OnboardingMode};
use crate::format::outbound::{self, OutboundFileName, SyncMode};
use crate::format::{BadRecord, FileError, ReadOptions};
use crate::id::{IdError, IdReason, UserId};
use crate::recipients::{ColumnData, RecipientKey, RecipientsTable};
use crate::sort::{self, counting_sort, partition, sort_nearly_sorted};
use crate::sorted::{difference, union};

use directory::LinkDirectory;
use index::{Index, Link, MatchIndex, Target};
pub use keys::{Iter as RecipientKeysIter, RecipientKeys};
pub use report::{
    ImportReport, LocatedProblem, Refused, SegmentReport, Totals, UnmatchedId, UnmatchedReason,
};

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
            run.run()
        }
        PreparedIndex::Declared(index) => Run::new(request, space, index).run(),
    }
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

/// What is known of where a key lives in the index.
#[derive(Debug, Clone, Copy)]
enum Handle {
    /// Nothing yet.
    Unknown,
    /// It is not among the indexed keys.
    Unindexed,
    /// Here.
    At(u64),
}

/// Probes `key` for `segment`, locating it in the index only for the first unit of an
/// occurrence (`handle` keeps where it is).
fn probe_located<'i, I: MatchIndex>(
    index: &'i mut I,
    handle: &mut Handle,
    key: I::Key,
    segment: u32,
) -> (Target<'i>, bool) {
    let at = match *handle {
        Handle::At(at) => at,
        Handle::Unknown => index.locate(key),
        Handle::Unindexed => index.locate_unindexed(key),
    };
    *handle = Handle::At(at);
    index.probe_at(at, segment)
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

/// Keys of the recipient space, in id order.
#[derive(Debug)]
enum SpaceKeys {
    /// Every integer from `min` on, `len` of them.
    Range { min: i64, len: usize },
    /// Every recipient id is an integer.
    Ints(Vec<i64>),
    /// Any keys.
    Keys(Vec<RecipientKey>),
}

/// Recipients known to the import, numbered densely in id order.
#[derive(Debug)]
struct RecipientSpace {
    keys: SpaceKeys,
    /// Number of each integer id under [`SpaceKeys::Keys`] (most recipient ids are integers:
    /// one hash probe, not a binary search over the whole space).
    ints: HashMap<i64, u32, FxBuildHasher>,
    opted_out: Vec<bool>,
}

impl RecipientSpace {
    /// The space of the request's recipients, current members and `links`; with compact links
    /// and integer ids only, also the number of each link's recipient.
    fn new(
        request: &ImportRequest<'_>,
        links: Links<'_>,
    ) -> Result<(RecipientSpace, Option<LinkRids>), ImportError> {
        let table_ints = match request.recipients {
            None => Some(&[][..]),
            Some(table) => match &table.ids {
                crate::recipients::RecipientIds::Int(ids) => Some(&ids[..]),
                crate::recipients::RecipientIds::String(_) => None,
            },
        };
        let current_ints = request
            .current
            .values()
            .flatten()
            .all(|k| k.as_int().is_some());
        let (keys, link_rids) = match (links, table_ints) {
            (Links::Compact(compact), Some(table_ints)) if current_ints => {
                match &compact.recipients {
                    CompactRecipients::Int => {
                        let current = request
                            .current
                            .values()
                            .flatten()
                            .filter_map(RecipientKey::as_int);
                        let (keys, rids) = number_ints(&compact.links, table_ints, current);
                        (keys, Some(rids))
                    }
                    CompactRecipients::Keys(_) => (Self::all_keys(request, links), None),
                }
            }
            _ => (Self::all_keys(request, links), None),
        };
        let len = match &keys {
            SpaceKeys::Range { len, .. } => *len,
            SpaceKeys::Ints(ints) => ints.len(),
            SpaceKeys::Keys(keys) => keys.len(),
        };
        if len > index::MAX_RID as usize {
            return Err(ImportError::Request(
                "too many recipients for one import".into(),
            ));
        }
        let mut ints = HashMap::default();
        if let SpaceKeys::Keys(keys) = &keys {
            ints = HashMap::with_capacity_and_hasher(keys.len(), FxBuildHasher);
            for (rid, key) in keys.iter().enumerate() {
                if let RecipientKey::Int(id) = key {
                    ints.insert(*id, rid as u32);
                }
            }
        }
        let mut space = RecipientSpace {
            opted_out: vec![false; len],
            keys,
            ints,
        };
        if let Some(table) = request.recipients
            && let Some(column) = table.column("opted_out")
        {
            let ColumnData::Bool(values) = &column.data else {
                return Err(ImportError::Request(format!(
                    "recipients column \"opted_out\" must be bool, it is {:?}",
                    column.data.column_type()
                )));
            };
            for (row, value) in values.iter().enumerate() {
                if *value == Some(true) {
                    let rid = space.rid(&table.ids.key(row).expect("row of the table"));
                    space.opted_out[rid as usize] = true;
                }
            }
        }
        Ok((space, link_rids))
    }

    fn all_keys(request: &ImportRequest<'_>, links: Links<'_>) -> SpaceKeys {
        let mut keys: Vec<RecipientKey> = Vec::with_capacity(links.len());
        match links {
            Links::Parsed(links) => {
                keys.extend(links.iter().map(|l| l.recipient.clone().canonical()));
            }
            Links::Compact(links) => keys.extend((0..links.len()).map(|i| links.recipient(i))),
        }
        if let Some(table) = request.recipients {
            keys.extend((0..table.len()).filter_map(|row| table.ids.key(row)));
        }
        keys.extend(
            request
                .current
                .values()
                .flatten()
                .cloned()
                .map(RecipientKey::canonical),
        );
        keys.sort_unstable();
        keys.dedup();
        SpaceKeys::Keys(keys)
    }

    /// The number of a recipient; keys are compared in canonical form (`"5"` is `5`).
    fn rid(&self, key: &RecipientKey) -> u32 {
        let found = match (&self.keys, key.as_int()) {
            (SpaceKeys::Ints(ints), Some(id)) => ints.binary_search(&id).ok().map(|i| i as u32),
            (SpaceKeys::Range { min, len }, Some(id)) => id
                .checked_sub(*min)
                .filter(|&i| (0..*len as i64).contains(&i))
                .map(|i| i as u32),
            (SpaceKeys::Ints(_) | SpaceKeys::Range { .. }, None) => None,
            (SpaceKeys::Keys(_), Some(id)) => self.ints.get(&id).copied(),
            (SpaceKeys::Keys(keys), None) => keys.binary_search(key).ok().map(|i| i as u32),
        };
        found.expect("every recipient of the request is in the space")
    }

    /// The keys of recipient numbers `rids` (in order), moved in when they are offsets.
    fn keys(&self, rids: Vec<u32>) -> RecipientKeys {
        match &self.keys {
            SpaceKeys::Range { min, .. } => RecipientKeys::offsets(*min, rids),
            SpaceKeys::Ints(ints) => rids
                .iter()
                .map(|&r| RecipientKey::Int(ints[r as usize]))
                .collect(),
            SpaceKeys::Keys(_) => rids.iter().map(|&r| self.key(r)).collect(),
        }
    }

    /// The key of recipient number `rid`.
    fn key(&self, rid: u32) -> RecipientKey {
        match &self.keys {
            SpaceKeys::Range { min, .. } => RecipientKey::Int(min + i64::from(rid)),
            SpaceKeys::Ints(ints) => RecipientKey::Int(ints[rid as usize]),
            SpaceKeys::Keys(keys) => keys[rid as usize].clone(),
        }
    }
}

/// The recipient number of each link (of [`number_ints`], or given).
#[derive(Debug)]
enum LinkRids {
    /// The id minus this (the ids are a range).
    Offset(i64),
    /// The rank of the id among the bits set in a bitset of the range from `min`: the ranks
    /// before each word, then the bits before the id's in its word.
    Ranked {
        min: i64,
        words: Vec<u64>,
        before: Vec<u32>,
    },
    /// One per link.
    Given(Vec<u32>),
}

impl LinkRids {
    /// The number of link `i`, whose recipient id is `id`.
    #[inline]
    fn get(&self, i: usize, id: i64) -> u32 {
        match self {
            LinkRids::Offset(min) => (id - min) as u32,
            LinkRids::Ranked { min, words, before } => {
                let offset = (id - min) as usize;
                let (w, bit) = (offset / 64, offset % 64);
                before[w] + (words[w] & ((1u64 << bit) - 1)).count_ones()
            }
            LinkRids::Given(rids) => rids[i],
        }
    }

    /// Bytes held.
    fn heap_bytes(&self) -> usize {
        match self {
            LinkRids::Offset(_) => 0,
            LinkRids::Ranked { words, before, .. } => words.capacity() * 8 + before.capacity() * 4,
            LinkRids::Given(rids) => rids.capacity() * 4,
        }
    }
}

/// Numbers integer recipient ids densely in order: the keys of the space (the sorted distinct
/// ids of all three sources), and how to number each of `links`.
fn number_ints(
    links: &[CompactLink],
    table: &[i64],
    current: impl Iterator<Item = i64> + Clone,
) -> (SpaceKeys, LinkRids) {
    let all = || {
        links
            .iter()
            .map(|l| l.recipient)
            .chain(table.iter().copied())
            .chain(current.clone())
    };
    let count = links.len() + table.len() + current.clone().count();
    // Smallest and largest in one pass (the links are the bulk: one read of them, not two).
    let Some((min, max)) = all().fold(None, |bounds, v| match bounds {
        None => Some((v, v)),
        Some((lo, hi)) => Some((v.min(lo), v.max(hi))),
    }) else {
        return (SpaceKeys::Ints(Vec::new()), LinkRids::Given(Vec::new()));
    };
    let range = (i128::from(max) - i128::from(min) + 1) as u128;
    if range <= (count as u128).saturating_mul(4) + 1024 {
        // Dense ids: a bitset of the range, and the rank of each word's first bit.
        let range = range as usize;
        let mut words = vec![0u64; range.div_ceil(64)];
        for v in all() {
            let offset = (v - min) as usize;
            words[offset / 64] |= 1 << (offset % 64);
        }
        let mut before = Vec::with_capacity(words.len());
        let mut len = 0u32;
        for w in &words {
            before.push(len);
            len += w.count_ones();
        }
        if len as usize == range {
            // Every id of the range: numbers are offsets.
            return (
                SpaceKeys::Range {
                    min,
                    len: len as usize,
                },
                LinkRids::Offset(min),
            );
        }
        let mut ints = Vec::with_capacity(len as usize);
        for (w, &word) in words.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                ints.push(min + (w * 64) as i64 + i64::from(bits.trailing_zeros()));
                bits &= bits - 1;
            }
        }
        return (
            SpaceKeys::Ints(ints),
            LinkRids::Ranked { min, words, before },
        );
    }
    let mut ints: Vec<i64> = all().collect();
    ints.sort_unstable();
    ints.dedup();
    let mut pairs: Vec<(i64, u32)> = links
        .iter()
        .enumerate()
        .map(|(i, l)| (l.recipient, i as u32))
        .collect();
    pairs.sort_unstable();
    let mut rids = vec![0u32; links.len()];
    let mut rid = 0usize;
    for (v, i) in pairs {
        while ints[rid] < v {
            rid += 1;
        }
        rids[i as usize] = rid as u32;
    }
    (SpaceKeys::Ints(ints), LinkRids::Given(rids))
}

/// A group of files applied together.
#[derive(Debug)]
struct Delivery<'a> {
    files: Vec<AudienceFile<'a>>,
    /// Unix milliseconds, when the names say.
    timestamp: Option<i64>,
    full: bool,
    /// Segments a full delivery replaces even without lines (AEP file segment, id list segment).
    declared_segments: Vec<String>,
}

fn deliveries<'a>(request: &ImportRequest<'a>) -> Result<Vec<Delivery<'a>>, ImportError> {
    let mut groups: BTreeMap<(u8, String), Delivery<'a>> = BTreeMap::new();
    for (position, file) in request.files.iter().enumerate() {
        let base = file.name.rsplit(['/', '\\']).next().unwrap_or(file.name);
        let (group, timestamp, full, segment) = match file.format {
            AudienceFormat::Outbound { mode } => {
                let name = OutboundFileName::parse(base)?;
                let full = name.sync_mode.or(*mode).unwrap_or(SyncMode::Iter) == SyncMode::Full;
                (
                    name.delivery().render(),
                    name.timestamp_ms.map(|t| t as i64),
                    full,
                    None,
                )
            }
            AudienceFormat::Aep { full, .. } => {
                let name = AepFileName::parse(base)?;
                let group = AepFileName {
                    part: 1,
                    ..name.clone()
                }
                .render();
                (
                    group,
                    Some(name.timestamp.unix_micros() / 1000),
                    *full,
                    Some(name.segment_id),
                )
            }
            AudienceFormat::Onboarding => {
                let name = OnboardingFileName::parse(base)?;
                let group = OnboardingFileName {
                    split: None,
                    gzip: false,
                    ..name.clone()
                }
                .render();
                let ts = i64::try_from(name.timestamp).unwrap_or(i64::MAX / 1000) * 1000;
                (
                    group,
                    Some(ts),
                    name.mode == OnboardingMode::Overwrite,
                    None,
                )
            }
            AudienceFormat::IdList { segment } => {
                (format!("#{position}"), None, true, Some(segment.clone()))
            }
        };
        let kind = match file.format {
            AudienceFormat::Outbound { .. } => 0,
            AudienceFormat::Aep { .. } => 1,
            AudienceFormat::Onboarding => 2,
            AudienceFormat::IdList { .. } => 3,
        };
        let delivery = groups.entry((kind, group)).or_insert_with(|| Delivery {
            files: Vec::new(),
            timestamp,
            full,
            declared_segments: Vec::new(),
        });
        delivery.files.push(*file);
        delivery.full |= full;
        delivery.declared_segments.extend(segment);
    }
    let mut out: Vec<Delivery<'a>> = groups.into_values().collect();
    for delivery in &mut out {
        delivery.files.sort_by(|a, b| a.name.cmp(b.name));
        delivery.declared_segments.sort();
        delivery.declared_segments.dedup();
    }
    out.sort_by_key(|d| d.timestamp.unwrap_or(i64::MIN));
    Ok(out)
}

/// Per-segment working state.
#[derive(Debug, Default)]
struct SegmentState {
    report: SegmentReport,
    /// The segment's name, shared by its unmatched rows.
    name: Arc<str>,
    /// Recipients added (this delivery) and removed (this delivery).
    adds: Vec<u32>,
    removes: Vec<u32>,
    /// Every recipient matched in the command (until the last delivery counts them).
    matched: Vec<u32>,
    /// Whether the report's recipient counts are final (set in the last delivery).
    counted: bool,
    /// Units unmatched, by reason (`UnmatchedReason as usize`; folded into the report at the
    /// end).
    unmatched: [u64; 4],
    /// Refused in the current delivery (stale).
    refused_now: bool,
    /// Units refused in the current delivery.
    refused_units: u64,
    /// Has units, or is replaced, in the current delivery.
    touched: bool,
}

/// Sets the recipient counts of a segment's report from its matched recipient numbers (sorted,
/// distinct).
fn count_matched(report: &mut SegmentReport, matched: &[u32], opted_out: &[bool]) {
    report.distinct_recipients = matched.len() as u64;
    report.opted_out = matched.iter().filter(|&&r| opted_out[r as usize]).count() as u64;
}

/// Every unmatched reason, in `as usize` order.
const REASONS: [UnmatchedReason; 4] = [
    UnmatchedReason::InvalidFormat,
    UnmatchedReason::Duplicate,
    UnmatchedReason::NoRecipient,
    UnmatchedReason::Ambiguous,
];
const _: () = assert!(
    UnmatchedReason::InvalidFormat as usize == 0
        && UnmatchedReason::Duplicate as usize == 1
        && UnmatchedReason::NoRecipient as usize == 2
        && UnmatchedReason::Ambiguous as usize == 3
);

/// Working state of a list.
#[derive(Debug)]
struct ListState {
    original: Vec<u32>,
    members: Vec<u32>,
    replaced: bool,
}

/// Lines of adds waiting to be probed together.
const BATCH: usize = 1 << 21;
/// How many lines ahead of the one being probed the index is hinted.
const PREFETCH: usize = 16;

/// Segments a batch line holds inline.
const INLINE: usize = 3;
const _: () = assert!(size_of::<BatchLine<[u64; 2]>>() == 48);

/// One line of a batch (48 bytes for visitor ids): its key, raw id (a range of `Batch::raw`,
/// only when unmatched ids are listed) and `count` segments: the first `count` of `inline`
/// when they fit, else `Batch::segments[inline[0]..][..count]` (lines are probed out of order:
/// their segments travel with them).
#[derive(Debug, Clone, Copy)]
struct BatchLine<K> {
    key: K,
    line: u64,
    raw: (u32, u32),
    inline: [u32; INLINE],
    count: u32,
}

/// A line of a batch whose segments are the distinct dense indices of `mask` (below 64), when
/// unmatched ids are not listed (24 bytes for visitor ids). Only counts then depend on the
/// order of a key's lines, so these need not keep theirs.
#[derive(Debug, Clone, Copy)]
struct MaskLine<K> {
    key: K,
    mask: u64,
}

/// Outcomes of a batch's mask lines, per dense segment index, folded into the segments after.
#[derive(Debug)]
struct Tally {
    /// Units matched, then unmatched by reason: duplicate, no recipient, ambiguous.
    outcomes: [[u64; 64]; 4],
    refused: [u64; 64],
    touched: u64,
}

impl Tally {
    const MATCHED: usize = 0;
    const DUPLICATE: usize = 1;
    const NO_RECIPIENT: usize = 2;
    const AMBIGUOUS: usize = 3;

    fn new() -> Tally {
        Tally {
            outcomes: [[0; 64]; 4],
            refused: [0; 64],
            touched: 0,
        }
    }
}

/// The dense segment indices of a mask, in increasing order.
#[inline]
fn mask_bits(mut mask: u64) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let id = mask.trailing_zeros();
            mask &= mask - 1;
            id
        })
    })
}

#[derive(Debug)]
struct Batch<K> {
    lines: Vec<BatchLine<K>>,
    masks: MaskRegions<K>,
    raw: Vec<u8>,
    segments: Vec<u32>,
    /// Scratch of `flush`, kept between batches.
    starts: Vec<usize>,
    sorted: Vec<BatchLine<K>>,
    /// One region's mask lines in order (a region at a time: it stays in cache).
    sorted_masks: Vec<MaskLine<K>>,
    /// Lines whose keys are not indexed (positions in `lines`).
    missing: Vec<u32>,
}

impl<K> Batch<K> {
    /// An empty batch whose mask lines are kept in `2^bits` regions.
    fn new(bits: u32) -> Batch<K> {
        Batch {
            lines: Vec::new(),
            masks: MaskRegions::new(bits),
            raw: Vec::new(),
            segments: Vec::new(),
            starts: Vec::new(),
            sorted: Vec::new(),
            sorted_masks: Vec::new(),
            missing: Vec::new(),
        }
    }
}

/// Bits of [`MatchIndex::order`] that pick a mask line's region, when the index has an order.
const REGION_BITS: u32 = 10;

/// Mask lines waiting to be probed, in regions by the top bits of their order: the first
/// counting pass of a partition (few enough regions for their write heads to stay in cache and
/// in the TLB), done as the lines are read; [`Run::flush`] orders each region on the next bits
/// in cache, then probes it.
#[derive(Debug)]
struct MaskRegions<K> {
    regions: Vec<Vec<MaskLine<K>>>,
    /// `regions.len() == 1 << bits`.
    bits: u32,
    /// Lines in all regions.
    len: usize,
    /// A region this full has the batch flushed.
    cap: usize,
}

impl<K> MaskRegions<K> {
    fn new(bits: u32) -> MaskRegions<K> {
        MaskRegions {
            regions: (0..1 << bits).map(|_| Vec::new()).collect(),
            bits,
            len: 0,
            cap: BATCH,
        }
    }

    /// The region of a line whose key's order is `order`.
    #[inline]
    fn region(&self, order: u64) -> usize {
        if self.bits == 0 {
            0
        } else {
            (order >> (64 - self.bits)) as usize
        }
    }
}

/// One identifier occurrence as the readers give it.
struct Occurrence<'r> {
    line: u64,
    raw: &'r [u8],
    key: Result<MatchKey, IdError>,
}

struct Run<'a, I: MatchIndex> {
    request: &'a ImportRequest<'a>,
    space: RecipientSpace,
    index: I,
    batch: Batch<I::Key>,
    segment_ids: HashMap<String, u32, FxBuildHasher>,
    /// Dense index of segments with names under 8 bytes, by the packed name and its length.
    short_segment_ids: names::ShortNames,
    segments: Vec<SegmentState>,
    lists: BTreeMap<String, ListState>,
    report: ImportReport,
    last_applied: BTreeMap<String, i64>,
    /// The delivery being applied.
    timestamp: Option<i64>,
    full: bool,
    file: Arc<str>,
    /// Lists a full delivery already reset.
    reset_lists: std::collections::BTreeSet<String>,
    /// Whether outbound visitor-id files may take `fast::read_visitor_outbound`.
    fast_path: bool,
    /// Segments (dense index < 64) refused in the current delivery.
    refused: u64,
    /// Scratch of [`sort::sort_u32`], kept from sort to sort.
    sort_scratch: Vec<u32>,
    /// Whether the delivery being applied is the last.
    last_delivery: bool,
    /// Mask lines of keys not indexed from links, with the segments to probe: counted at the
    /// end by [`Run::count_unindexed`]. One run sorted by key per batch.
    unindexed: Vec<MaskLine<I::Key>>,
}

impl<'a, I: MatchIndex> Run<'a, I>
where
    I::Key: IndexKey,
{
    fn new(request: &'a ImportRequest<'a>, space: RecipientSpace, index: I) -> Run<'a, I> {
        let mut report = ImportReport::new(request.data_source);
        report.data_source.indexed_keys = index.indexed_keys() as u64;
        report.data_source.index_bytes = index.heap_bytes() as u64;
        Run {
            request,
            space,
            batch: Batch::new(if index.ordered() { REGION_BITS } else { 0 }),
            index,
            segment_ids: HashMap::default(),
            short_segment_ids: names::ShortNames::new(),
            segments: Vec::new(),
            lists: BTreeMap::new(),
            report,
            last_applied: request.last_applied.clone(),
            timestamp: None,
            full: false,
            file: Arc::from(""),
            reset_lists: std::collections::BTreeSet::new(),
            fast_path: true,
            refused: 0,
            sort_scratch: Vec::new(),
            last_delivery: false,
            unindexed: Vec::new(),
        }
    }

    fn run(mut self) -> Result<ImportResult, ImportError> {
        let deliveries = deliveries(self.request)?;
        self.report.totals.deliveries = deliveries.len() as u64;
        for (i, delivery) in deliveries.iter().enumerate() {
            self.last_delivery = i + 1 == deliveries.len();
            self.apply(delivery)?;
        }
        Ok(self.finish())
    }

    fn list_name(&self, segment: &str) -> String {
        match self.request.options.mappings.get(segment) {
            Some(list) => list.clone(),
            None => format!("{DEFAULT_LIST_PREFIX}{segment}"),
        }
    }

    /// Dense index of a segment, creating its state on first sight.
    fn segment(&mut self, name: &str) -> u32 {
        // Short names (most segment ids) are looked up as one integer: no string hashing or
        // comparison per unit.
        let short = names::pack(name.as_bytes());
        match short {
            Some(packed) => {
                if let Some(id) = self.short_segment_ids.get(packed) {
                    return id;
                }
            }
            None => {
                if let Some(&id) = self.segment_ids.get(name) {
                    return id;
                }
            }
        }
        let id = self.segments.len() as u32;
        match short {
            Some(packed) => self.short_segment_ids.insert(packed, id),
            None => {
                self.segment_ids.insert(name.to_owned(), id);
            }
        }
        let mut state = SegmentState::default();
        state.report.segment = name.to_owned();
        state.name = name.into();
        state.report.list = self.list_name(name);
        self.segments.push(state);
        self.start_segment(id);
        id
    }

    /// Prepares a segment for the current delivery: checks it is not stale.
    fn start_segment(&mut self, id: u32) {
        let state = &mut self.segments[id as usize];
        state.refused_now = match (self.timestamp, self.last_applied.get(&state.report.segment)) {
            (Some(ts), Some(&last)) => ts < last,
            _ => false,
        };
        if id < 64 {
            let bit = 1u64 << id;
            self.refused = if state.refused_now {
                self.refused | bit
            } else {
                self.refused & !bit
            };
        }
    }

    fn apply(&mut self, delivery: &Delivery<'a>) -> Result<(), ImportError> {
        self.timestamp = delivery.timestamp;
        self.full = delivery.full;
        self.reset_lists.clear();
        for id in 0..self.segments.len() as u32 {
            self.start_segment(id);
        }
        if delivery.full {
            let declared: Vec<String> = delivery
                .declared_segments
                .iter()
                .chain(self.request.options.mappings.keys())
                .cloned()
                .collect();
            for segment in declared {
                let id = self.segment(&segment);
                self.segments[id as usize].touched = true;
            }
        }
        for file in &delivery.files {
            self.report.totals.files += 1;
            self.file = file.name.into();
            self.read_file(file)?;
        }
        for id in 0..self.segments.len() {
            let state = &mut self.segments[id];
            if !std::mem::take(&mut state.touched) {
                continue;
            }
            let segment = state.report.segment.clone();
            if state.refused_now {
                let units = std::mem::take(&mut state.refused_units);
                state.report.refused += units;
                self.report.refused.push(Refused {
                    files: delivery.files.iter().map(|f| f.name.to_owned()).collect(),
                    segment: segment.clone(),
                    timestamp: self.timestamp.unwrap_or_default(),
                    last_applied: self.last_applied.get(&segment).copied().unwrap_or_default(),
                    units,
                });
                continue;
            }
            if let Some(ts) = self.timestamp {
                let last = self.last_applied.entry(segment).or_insert(ts);
                *last = (*last).max(ts);
            }
            self.apply_segment(id);
        }
        Ok(())
    }

    /// Applies the current delivery's adds and removes of one segment to its list.
    fn apply_segment(&mut self, id: usize) {
        let list_name = self.segments[id].report.list.clone();
        if !self.lists.contains_key(&list_name) {
            let original = self.current_members(&list_name);
            let state = ListState {
                members: original.clone(),
                original,
                replaced: false,
            };
            self.lists.insert(list_name.clone(), state);
        }
        let list = self.lists.get_mut(&list_name).expect("inserted above");
        let state = &mut self.segments[id];
        let mut adds = std::mem::take(&mut state.adds);
        let mut removes = std::mem::take(&mut state.removes);
        sort::sort_u32(&mut adds, &mut self.sort_scratch);
        adds.dedup();
        sort::sort_u32(&mut removes, &mut self.sort_scratch);
        removes.dedup();
        if self.full {
            // The first segment of this delivery that maps to the list resets it.
            if self.reset_lists.insert(list_name) {
                list.members.clear();
            }
            list.replaced = true;
        }
        // The segment's matched recipients: kept for later deliveries, or, in the last one,
        // counted now (its adds then need not be kept beside the list's members).
        if self.last_delivery {
            if state.matched.is_empty() {
                count_matched(&mut state.report, &adds, &self.space.opted_out);
            } else {
                let matched = union(&state.matched, &adds);
                count_matched(&mut state.report, &matched, &self.space.opted_out);
            }
            state.counted = true;
            state.matched = Vec::new();
        } else if state.matched.is_empty() {
            state.matched.clone_from(&adds);
        } else {
            state.matched.extend_from_slice(&adds);
        }
        // Full: the members (reset above) plus the adds. Incremental: also less the removes
        // (an id both added and removed stays). No copy more than the lists need: these are
        // the largest vectors of an import.
        let removes = if self.full || removes.is_empty() {
            Vec::new()
        } else {
            difference(&removes, &adds)
        };
        let merged = if list.members.is_empty() {
            adds
        } else {
            union(&list.members, &adds)
        };
        list.members = if removes.is_empty() {
            merged
        } else {
            difference(&merged, &removes)
        };
    }

    fn current_members(&self, list: &str) -> Vec<u32> {
        let mut rids: Vec<u32> = self
            .request
            .current
            .get(list)
            .into_iter()
            .flatten()
            .map(|key| self.space.rid(key))
            .collect();
        rids.sort_unstable();
        rids.dedup();
        rids
    }

    fn read_file(&mut self, file: &AudienceFile<'a>) -> Result<(), ImportError> {
        let options = ReadOptions {
            strict: self.request.options.strict,
        };
        let kind = self.request.data_source.user_id_kind();
        let summary = match file.format {
            AudienceFormat::Outbound { .. } => {
                let summary = if kind == crate::id::UserIdKind::VisitorId
                    && self.fast_path
                    && let Some(summary) =
                        fast::read_visitor_outbound(file.name, file.bytes, options, self)?
                {
                    summary
                } else {
                    outbound::read(file.name, file.bytes, kind, options, |record| {
                        let occurrence =
                            self.occurrence(record.line, &record.user, record.raw_user);
                        self.outbound_record(&occurrence, record.segments(), record.removed());
                    })?
                };
                self.flush();
                (summary.records, summary.blank_lines, summary.bad)
            }
            AudienceFormat::Onboarding => {
                let summary = onboarding::read(file.name, file.bytes, kind, options, |record| {
                    let occurrence = self.occurrence(record.line, &record.user, record.raw_user);
                    let mut any = false;
                    for entry in record.entries {
                        match entry {
                            Entry::Add(id) => {
                                any = true;
                                self.add(&id.to_string(), &occurrence);
                            }
                            Entry::Remove(id) => {
                                any = true;
                                self.remove(&id.to_string(), &occurrence);
                            }
                            Entry::IntegrationCode(_) | Entry::KeyValue { .. } => {
                                self.report.totals.entries_ignored += 1;
                            }
                        }
                    }
                    if !any {
                        self.report.totals.lines_without_segments += 1;
                    }
                })?;
                (summary.records, summary.blank_lines, summary.bad)
            }
            AudienceFormat::Aep { columns, full } => {
                let base = file.name.rsplit(['/', '\\']).next().unwrap_or(file.name);
                let segment = AepFileName::parse(base)?.segment_id;
                let export = aep::read(file.name, file.bytes, columns, options)?;
                let mut bad = export.bad.clone();
                for row in export.rows() {
                    let key = self
                        .request
                        .data_source
                        .incoming_key(row.identity.as_bytes());
                    let occurrence = Occurrence {
                        line: row.line,
                        raw: row.identity.as_bytes(),
                        key,
                    };
                    match row.status {
                        Some(MembershipStatus::Exited) if *full => {
                            let record = BadRecord {
                                line: row.line,
                                column: None,
                                reason: crate::format::RecordReason::BadValue,
                                id_error: None,
                                detail: "an exited row in a full export".into(),
                            };
                            if options.strict {
                                return Err(FileError::strict(file.name, record).into());
                            }
                            bad.push(record);
                        }
                        Some(MembershipStatus::Exited) => self.remove(&segment, &occurrence),
                        _ => self.add(&segment, &occurrence),
                    }
                }
                bad.sort_by_key(|b| b.line);
                let records = export.len() as u64 - (bad.len() - export.bad.len()) as u64;
                (records, export.stats.empty_lines, bad)
            }
            AudienceFormat::IdList { segment } => {
                let data = input::decode(file.name, file.bytes)?;
                let mut records = 0;
                let mut blank = 0;
                for line in Lines::new(&data) {
                    if line.bytes.is_empty() {
                        blank += 1;
                        continue;
                    }
                    records += 1;
                    let key = self.request.data_source.incoming_key(line.bytes);
                    if options.strict
                        && let Err(e) = &key
                    {
                        let record = BadRecord::bad_id(line.number, line.bytes, 0, e.clone());
                        return Err(FileError::strict(file.name, record).into());
                    }
                    self.add(
                        segment,
                        &Occurrence {
                            line: line.number,
                            raw: line.bytes,
                            key,
                        },
                    );
                }
                (records, blank, Vec::new())
            }
        };
        let (records, blank, bad) = summary;
        let totals = &mut self.report.totals;
        totals.records += records;
        totals.blank_lines += blank;
        totals.bad_records += bad.len() as u64;
        totals.lines += records + blank + bad.len() as u64;
        self.report
            .problems
            .extend(bad.into_iter().map(|record| LocatedProblem {
                file: file.name.to_owned(),
                record,
            }));
        Ok(())
    }

    fn occurrence<'r>(
        &self,
        line: u64,
        user: &'r Result<UserId<'r>, BadRecord>,
        raw: &'r [u8],
    ) -> Occurrence<'r> {
        let key = match user {
            Ok(UserId::Visitor(id)) => Ok(MatchKey::Visitor(id.as_u128())),
            Ok(UserId::Declared(id)) => self
                .request
                .data_source
                .incoming_key(id.as_str().as_bytes()),
            Err(bad) => Err(bad
                .id_error
                .clone()
                .expect("an id problem carries its id error")),
        };
        Occurrence { line, raw, key }
    }

    /// One record of an outbound file: its adds (batched when the key is valid), its removals.
    fn outbound_record<'s>(
        &mut self,
        occurrence: &Occurrence<'_>,
        segments: impl Iterator<Item = &'s str>,
        removed: impl Iterator<Item = &'s str>,
    ) {
        let mut any = false;
        // Adds of valid keys wait in a batch (probed together, see `flush`);
        // removals only look keys up, so they do not depend on the adds' order.
        let key = Self::index_key(occurrence);
        let from = self.batch.segments.len() as u32;
        for segment in segments {
            any = true;
            let id = self.segment(segment);
            match key {
                Ok(_) => self.batch.segments.push(id),
                Err(rule) => self.add_unit(
                    id,
                    Err(rule),
                    occurrence.line,
                    occurrence.raw,
                    &mut Handle::Unknown,
                ),
            }
        }
        if let Ok(key) = key {
            self.batch_line(occurrence.line, occurrence.raw, key, from);
        }
        for segment in removed {
            any = true;
            self.remove(segment, occurrence);
        }
        if !any {
            self.report.totals.lines_without_segments += 1;
        }
    }

    /// [`Run::outbound_listed`] of a line (`list` printable ASCII) whose segment names are
    /// `packed` ([`names::pack`]; none when they could not all be): a mask line when every
    /// name is known, distinct and of a dense index below 64, and unmatched ids are not listed.
    #[inline]
    fn outbound_usual(&mut self, line: u64, raw: &[u8], key: I::Key, list: &[u8], packed: &[u64]) {
        let mut mask = 0u64;
        let mut masked = !packed.is_empty() && !self.request.options.list_unmatched;
        for &name in packed {
            match self.short_segment_ids.get(name) {
                Some(id) if id < 64 && mask & (1 << id) == 0 => mask |= 1 << id,
                _ => {
                    masked = false;
                    break;
                }
            }
        }
        if masked {
            self.push_mask(MaskLine { key, mask });
        } else if let Ok(list) = std::str::from_utf8(list) {
            // Always: `list` is printable ASCII.
            self.outbound_listed(line, raw, key, list);
        }
    }

    /// [`Run::outbound_record`] of a line with a valid `key`, a segment list of printable ASCII
    /// without empty entries (`list`, not empty) and no removals: the fast path's usual line.
    /// Its segments travel as a mask when they can (distinct, dense indices below 64, unmatched
    /// ids not listed), else as a list.
    #[inline]
    fn outbound_listed(&mut self, line: u64, raw: &[u8], key: I::Key, list: &str) {
        let from = self.batch.segments.len() as u32;
        let mut mask = 0u64;
        let mut listed = self.request.options.list_unmatched;
        let mut start = 0;
        let bytes = list.as_bytes();
        for end in memchr::memchr_iter(b',', bytes).chain(std::iter::once(bytes.len())) {
            let id = self.segment(&list[start..end]);
            start = end + 1;
            if !listed {
                if id < 64 && mask & (1 << id) == 0 {
                    mask |= 1 << id;
                    continue;
                }
                // A repeated segment (each repeat is a unit of its own) or a high index.
                listed = true;
                self.batch.segments.extend(mask_bits(mask));
            }
            self.batch.segments.push(id);
        }
        if listed {
            self.batch_line(line, raw, key, from);
        } else {
            self.push_mask(MaskLine { key, mask });
        }
    }

    /// Batches the adds of one line: its key, and the segments pushed on `batch.segments` from
    /// `from` on (none: nothing to batch).
    #[inline]
    fn batch_line(&mut self, line: u64, raw: &[u8], key: I::Key, from: u32) {
        let to = self.batch.segments.len() as u32;
        if to == from {
            return;
        }
        let raw = if self.request.options.list_unmatched {
            let start = self.batch.raw.len() as u32;
            self.batch.raw.extend_from_slice(raw);
            (start, self.batch.raw.len() as u32)
        } else {
            (0, 0)
        };
        let mut inline = [0u32; INLINE];
        if (to - from) as usize <= INLINE {
            let ids = self.batch.segments.drain(from as usize..);
            for (slot, id) in inline.iter_mut().zip(ids) {
                *slot = id;
            }
        } else {
            inline[0] = from;
        }
        self.push_line(BatchLine {
            line,
            key,
            raw,
            inline,
            count: to - from,
        });
    }

    #[inline]
    fn push_line(&mut self, line: BatchLine<I::Key>) {
        self.batch.lines.push(line);
        self.flush_when_full();
    }

    /// Sizes the batch's mask regions for about `lines` more lines: one allocation each instead
    /// of a doubling series (the guest's allocator copies a growing block each time), and the
    /// fill at which a region has the batch flushed.
    fn expect_mask_lines(&mut self, lines: usize) {
        if !self.request.options.list_unmatched {
            let masks = &mut self.batch.masks;
            // A region a quarter fuller than the average has the batch flushed (a little
            // early, for ids spread over their range; early and often, when they are not).
            let cap = (lines.min(BATCH) >> masks.bits) * 5 / 4 + 64;
            masks.cap = cap.min(BATCH);
            for region in &mut masks.regions {
                region.reserve(masks.cap.saturating_sub(region.len()));
            }
        }
    }

    #[inline]
    fn push_mask(&mut self, line: MaskLine<I::Key>) {
        let masks = &mut self.batch.masks;
        let at = masks.region(self.index.order(line.key));
        let region = &mut masks.regions[at];
        region.push(line);
        masks.len += 1;
        if region.len() >= masks.cap {
            self.flush();
        } else {
            self.flush_when_full();
        }
    }

    #[inline]
    fn flush_when_full(&mut self) {
        if self.batch.masks.len + self.batch.lines.len() >= BATCH {
            self.flush();
        }
    }

    /// Applies the batched adds: orders the lines by where their keys live in the index (a
    /// sweep of it instead of jumps around it; mask lines come in regions already), hints the
    /// index a few lines ahead (the memory accesses overlap), then runs the units; mask lines
    /// first (only counts depend on their order), then the others (in order for each key).
    /// Buffers are reused: fresh pages cost.
    fn flush(&mut self) {
        let mut batch = std::mem::replace(&mut self.batch, Batch::new(0));
        self.add_masks(&mut batch);
        let index = &self.index;
        partition(
            &mut batch.lines,
            &mut batch.sorted,
            &mut batch.starts,
            |l| index.order(l.key),
        );
        let lines = &batch.lines;
        // Lines of indexed keys run as the sweep finds them; the others after (in order for
        // each key: only the order of each key's lines matters).
        for line in lines.iter().take(PREFETCH) {
            self.index.hint_indexed(line.key);
        }
        batch.missing.clear();
        for (i, line) in lines.iter().enumerate() {
            if let Some(ahead) = lines.get(i + PREFETCH) {
                self.index.hint_indexed(ahead.key);
            }
            match self.index.locate_indexed(line.key) {
                Some(at) => self.add_line(line, &batch, Handle::At(at)),
                None => batch.missing.push(i as u32),
            }
        }
        let missing = &batch.missing;
        for &i in missing.iter().take(PREFETCH) {
            self.index.hint_located(lines[i as usize].key, None);
        }
        for (j, &i) in missing.iter().enumerate() {
            if let Some(&ahead) = missing.get(j + PREFETCH) {
                self.index.hint_located(lines[ahead as usize].key, None);
            }
            self.add_line(&lines[i as usize], &batch, Handle::Unindexed);
        }
        batch.lines.clear();
        batch.raw.clear();
        batch.segments.clear();
        self.batch = batch;
    }

    /// The units of the batch's mask lines, a region at a time (ordered on the next bits of
    /// [`MatchIndex::order`], in cache): indexed keys as the sweep finds them, the others kept
    /// for [`Run::count_unindexed`] (a run of them sorted by key); outcomes are tallied, then
    /// folded into the segments. The regions are emptied.
    fn add_masks(&mut self, batch: &mut Batch<I::Key>) {
        let mut tally = Tally::new();
        let from = self.unindexed.len();
        let masks = &mut batch.masks;
        // About 16 lines per order value overall, at most 2^16 values.
        let bits = (masks.len / 16)
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
            .min(16);
        let next = if masks.bits == 0 {
            0
        } else {
            bits.saturating_sub(masks.bits)
        };
        for region in &mut masks.regions {
            if region.is_empty() {
                continue;
            }
            let index = &self.index;
            let lines = if next == 0 {
                &region[..]
            } else {
                let high = masks.bits;
                let order =
                    |l: &MaskLine<I::Key>| ((index.order(l.key) << high) >> (64 - next)) as usize;
                counting_sort(
                    region,
                    &mut batch.sorted_masks,
                    &mut batch.starts,
                    1 << next,
                    order,
                )
            };
            self.probe_masks(&mut tally, lines);
            region.clear();
        }
        masks.len = 0;
        sort_nearly_sorted(&mut self.unindexed[from..], |l| l.key);
        // Fold the tally into the segments and the totals. Every unit was refused or has an
        // outcome (those of unindexed keys are counted, as units too, by `count_unindexed`):
        // no count of a line's units is needed.
        let totals = &mut self.report.totals;
        for id in mask_bits(tally.touched) {
            let id = id as usize;
            let state = &mut self.segments[id];
            state.touched = true;
            state.refused_units += tally.refused[id];
            totals.refused_units += tally.refused[id];
            let [matched, duplicate, no_recipient, ambiguous] = tally.outcomes.map(|o| o[id]);
            totals.units += tally.refused[id] + matched + duplicate + no_recipient + ambiguous;
            state.report.matched += matched;
            state.report.ids += matched + duplicate + no_recipient + ambiguous;
            state.unmatched[UnmatchedReason::Duplicate as usize] += duplicate;
            state.unmatched[UnmatchedReason::NoRecipient as usize] += no_recipient;
            state.unmatched[UnmatchedReason::Ambiguous as usize] += ambiguous;
            totals.matched += matched;
            totals.unmatched += duplicate + no_recipient + ambiguous;
        }
    }

    /// Probes mask lines in order, hinting the index a few lines ahead.
    fn probe_masks(&mut self, tally: &mut Tally, lines: &[MaskLine<I::Key>]) {
        for line in lines.iter().take(PREFETCH) {
            self.index.hint_indexed(line.key);
        }
        for (i, line) in lines.iter().enumerate() {
            if let Some(ahead) = lines.get(i + PREFETCH) {
                self.index.hint_indexed(ahead.key);
            }
            let probed = self.tally_refused(tally, line.mask);
            if probed == 0 {
                continue;
            }
            match self.index.locate_indexed(line.key) {
                Some(at) => self.tally_mask(tally, at, probed),
                None => self.unindexed.push(MaskLine {
                    key: line.key,
                    mask: probed,
                }),
            }
        }
    }

    /// Notes the segments of a mask line and counts the units of those refused in this
    /// delivery; the segments left to probe.
    #[inline]
    fn tally_refused(&self, tally: &mut Tally, mask: u64) -> u64 {
        tally.touched |= mask;
        let refused = mask & self.refused;
        for id in mask_bits(refused) {
            tally.refused[id as usize] += 1;
        }
        mask & !refused
    }

    /// The units of a mask line whose key is indexed at `at`, for the segments of `probed`:
    /// what [`Run::add_unit`] does for each, with the key's mask updated once and the
    /// outcomes tallied.
    #[inline]
    fn tally_mask(&mut self, tally: &mut Tally, at: u64, probed: u64) {
        let (target, before) = self.index.probe_mask(at, probed);
        for id in mask_bits(probed & before) {
            tally.outcomes[Tally::DUPLICATE][id as usize] += 1;
        }
        let fresh = probed & !before;
        let outcome = match target {
            Target::None => Tally::NO_RECIPIENT,
            Target::Ambiguous => Tally::AMBIGUOUS,
            Target::One(rid) => {
                for id in mask_bits(fresh) {
                    self.segments[id as usize].adds.push(rid);
                }
                Tally::MATCHED
            }
            Target::Recipients(rids) => {
                for id in mask_bits(fresh) {
                    self.segments[id as usize].adds.extend_from_slice(rids);
                }
                Tally::MATCHED
            }
        };
        for id in mask_bits(fresh) {
            tally.outcomes[outcome][id as usize] += 1;
        }
    }

    /// The units of the mask lines of keys not indexed from links, all deliveries' at once:
    /// for each key and segment, the first unit has no recipient and the others are
    /// duplicates; the first is a duplicate too when a listed line marked the key for the
    /// segment in the index (only counts depend on which unit is which: mask lines are not
    /// listed). The runs are merged by a stable sort, which finds them.
    fn count_unindexed(&mut self) {
        let mut lines = std::mem::take(&mut self.unindexed);
        lines.sort_by_key(|l| l.key);
        let (mut no_recipient, mut duplicate) = ([0u64; 64], [0u64; 64]);
        let mut touched = 0;
        for group in lines.chunk_by(|a, b| a.key == b.key) {
            let mut seen = self.index.seen_unindexed(group[0].key);
            for line in group {
                for id in mask_bits(line.mask & !seen) {
                    no_recipient[id as usize] += 1;
                }
                for id in mask_bits(line.mask & seen) {
                    duplicate[id as usize] += 1;
                }
                seen |= line.mask;
                touched |= line.mask;
            }
        }
        let totals = &mut self.report.totals;
        for id in mask_bits(touched) {
            let id = id as usize;
            let state = &mut self.segments[id];
            state.report.ids += no_recipient[id] + duplicate[id];
            state.unmatched[UnmatchedReason::Duplicate as usize] += duplicate[id];
            state.unmatched[UnmatchedReason::NoRecipient as usize] += no_recipient[id];
            totals.unmatched += no_recipient[id] + duplicate[id];
            totals.units += no_recipient[id] + duplicate[id];
        }
    }

    /// The units of a batched line, its key where `handle` says.
    #[inline]
    fn add_line(&mut self, line: &BatchLine<I::Key>, batch: &Batch<I::Key>, mut handle: Handle) {
        let raw = &batch.raw[line.raw.0 as usize..line.raw.1 as usize];
        let count = line.count as usize;
        let ids = if count <= INLINE {
            &line.inline[..count]
        } else {
            let from = line.inline[0] as usize;
            &batch.segments[from..from + count]
        };
        for &id in ids {
            self.add_unit(id, Ok(line.key), line.line, raw, &mut handle);
        }
    }

    /// One unit: `occurrence` listed in the add column of `segment`.
    fn add(&mut self, segment: &str, occurrence: &Occurrence<'_>) {
        let id = self.segment(segment);
        let key = Self::index_key(occurrence);
        self.add_unit(
            id,
            key,
            occurrence.line,
            occurrence.raw,
            &mut Handle::Unknown,
        );
    }

    /// The index key of an occurrence, or the rule it broke (if known) when it has none.
    fn index_key(occurrence: &Occurrence<'_>) -> Result<I::Key, Option<IdReason>> {
        match &occurrence.key {
            Err(e) => Err(Some(e.reason)),
            Ok(key) => I::Key::from_match(*key).ok_or(None),
        }
    }

    /// [`Run::add`] by dense segment index; for one of several units of the same occurrence,
    /// `handle` keeps where its key is in the index once a unit looked it up.
    fn add_unit(
        &mut self,
        id: u32,
        key: Result<I::Key, Option<IdReason>>,
        line: u64,
        raw: &[u8],
        handle: &mut Handle,
    ) {
        self.report.totals.units += 1;
        let state = &mut self.segments[id as usize];
        state.touched = true;
        if state.refused_now {
            state.refused_units += 1;
            self.report.totals.refused_units += 1;
            return;
        }
        state.report.ids += 1;
        let (reason, rule) = match key {
            Err(rule) => (Some(UnmatchedReason::InvalidFormat), rule),
            Ok(key) => match probe_located(&mut self.index, handle, key, id) {
                (_, true) => (Some(UnmatchedReason::Duplicate), None),
                (Target::None, _) => (Some(UnmatchedReason::NoRecipient), None),
                (Target::Ambiguous, _) => (Some(UnmatchedReason::Ambiguous), None),
                (Target::One(rid), _) => {
                    state.adds.push(rid);
                    (None, None)
                }
                (Target::Recipients(rids), _) => {
                    state.adds.extend_from_slice(rids);
                    (None, None)
                }
            },
        };
        match reason {
            None => {
                state.report.matched += 1;
                self.report.totals.matched += 1;
            }
            Some(reason) => {
                state.unmatched[reason as usize] += 1;
                if let Some(rule) = rule {
                    *state.report.invalid_rules.entry(rule).or_default() += 1;
                }
                self.report.totals.unmatched += 1;
                if self.request.options.list_unmatched {
                    self.report.unmatched.push(UnmatchedId {
                        file: Arc::clone(&self.file),
                        line,
                        segment: Arc::clone(&self.segments[id as usize].name),
                        id: String::from_utf8_lossy(raw).into_owned(),
                        reason,
                        rule,
                    });
                }
            }
        }
    }

    /// One removal: `occurrence` listed in the removed column of `segment`.
    fn remove(&mut self, segment: &str, occurrence: &Occurrence<'_>) {
        if self.full {
            self.report.totals.removals_ignored += 1;
            return;
        }
        let id = self.segment(segment);
        self.report.totals.removals += 1;
        let state = &mut self.segments[id as usize];
        state.touched = true;
        if state.refused_now {
            state.report.refused_removals += 1;
            return;
        }
        let target = match occurrence
            .key
            .as_ref()
            .ok()
            .and_then(|k| I::Key::from_match(*k))
        {
            Some(key) => self.index.lookup(key),
            None => Target::None,
        };
        match target {
            Target::One(rid) => {
                state.removes.push(rid);
                state.report.removed += 1;
            }
            Target::Recipients(rids) => {
                state.removes.extend_from_slice(rids);
                state.report.removed += 1;
            }
            Target::None | Target::Ambiguous => state.report.removals_unmatched += 1,
        }
    }

    fn finish(mut self) -> ImportResult {
        self.count_unindexed();
        // The index is done with: free it before the output is built.
        drop(self.index);
        let mut lists = Vec::with_capacity(self.lists.len());
        for (name, list) in std::mem::take(&mut self.lists) {
            let members = list.members.len() as u64;
            let removed = self.space.keys(difference(&list.original, &list.members));
            let added = if list.original.is_empty() {
                list.members
            } else {
                difference(&list.members, &list.original)
            };
            lists.push(ListChange {
                added: self.space.keys(added),
                removed,
                members,
                replaced: list.replaced,
                list: name,
            });
        }
        for mut state in std::mem::take(&mut self.segments) {
            if !state.counted {
                if !state.matched.is_sorted() {
                    sort::sort_u32(&mut state.matched, &mut self.sort_scratch);
                }
                state.matched.dedup();
                count_matched(&mut state.report, &state.matched, &self.space.opted_out);
            }
            for (reason, count) in REASONS.into_iter().zip(state.unmatched) {
                if count > 0 {
                    *state.report.unmatched.entry(reason).or_default() += count;
                }
            }
            state.report.finish();
            self.report
                .segments
                .insert(state.report.segment.clone(), state.report);
        }
        // Rows come in file order, line by line: usually sorted already, and checking is
        // cheaper than sorting.
        let order = |a: &UnmatchedId, b: &UnmatchedId| {
            (&a.file, a.line, &a.segment).cmp(&(&b.file, b.line, &b.segment))
        };
        if !self
            .report
            .unmatched
            .is_sorted_by(|a, b| order(a, b).is_le())
        {
            self.report.unmatched.sort_by(order);
        }
        ImportResult {
            lists,
            last_applied: self.last_applied,
            report: self.report,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod numbering_tests {
    use proptest::prelude::*;

    use super::{CompactLink, LinkRids, SpaceKeys, number_ints};

    proptest! {
        #[test]
        fn numbers_follow_the_sorted_distinct_ids(
            links in proptest::collection::vec(0i64..300, 0..200),
            table in proptest::collection::vec(0i64..300, 0..50),
            current in proptest::collection::vec(-5i64..300, 0..20),
            wide in any::<bool>(),
            full in any::<bool>(),
        ) {
            let scale = |v: i64| if wide { v * 1_000_003 } else { v };
            let mut links: Vec<i64> = links.into_iter().map(scale).collect();
            if full {
                // Every id of a range (numbered by offset).
                links.extend(-5..300);
            }
            let rows: Vec<CompactLink> = links
                .iter()
                .map(|&recipient| CompactLink { visitor: [0, 0], recipient, last_seen: 0 })
                .collect();
            let (keys, rids) = number_ints(&rows, &table, current.iter().copied());
            let mut expected: Vec<i64> =
                links.iter().chain(&table).chain(&current).copied().collect();
            expected.sort_unstable();
            expected.dedup();
            let ints: Vec<i64> = match &keys {
                SpaceKeys::Range { min, len } => (0..*len as i64).map(|i| min + i).collect(),
                SpaceKeys::Ints(ints) => ints.clone(),
                SpaceKeys::Keys(_) => unreachable!("integers only"),
            };
            prop_assert_eq!(&ints, &expected);
            if full && !wide {
                prop_assert!(matches!(rids, LinkRids::Offset(_)));
            }
            for (i, &id) in links.iter().enumerate() {
                let rid = rids.get(i, id) as usize;
                prop_assert_eq!(expected[rid], id);
            }
        }
    }
}
