//! The run of an import: [`Run`] holds everything an import works with (the request, the
//! recipient space, the match index, the batch, the state of segments and lists, the report)
//! and gives every (line, segment) unit its one outcome ([`Run::add_unit`]): `matched`, or
//! unmatched with a reason; removals are looked up ([`Run::remove`]). Deliveries are begun and
//! ended here (stale ones refused per segment, the others applied to their lists), and
//! [`Run::finish`] turns recipient numbers back into keys for the result.
//!
//! Reading files is `read.rs` (and `fast.rs`), batching and probing `probe.rs`: both add
//! methods to [`Run`]; this module uses neither.

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use super::batch::{Batch, MaskLine, REGION_BITS};
use super::delivery::{Delivery, ListState, REASONS, SegmentState, count_matched};
use super::index::{MatchIndex, Target};
use super::names;
use super::report::{ImportReport, Refused, UnmatchedId, UnmatchedReason};
use super::space::RecipientSpace;
use super::{DEFAULT_LIST_PREFIX, ImportRequest, ImportResult, IndexKey, ListChange};
use crate::datasource::MatchKey;
use crate::format::BadRecord;
use crate::id::{IdError, IdReason, UserId};
use crate::sort;
use crate::sorted::{difference, union};

/// One identifier occurrence as the readers give it.
pub(super) struct Occurrence<'r> {
    pub(super) line: u64,
    pub(super) raw: &'r [u8],
    pub(super) key: Result<MatchKey, IdError>,
}

/// What is known of where a key lives in the index.
#[derive(Debug, Clone, Copy)]
pub(super) enum Handle {
    /// Nothing yet.
    Unknown,
    /// It is not among the indexed keys.
    Unindexed,
    /// Here.
    At(u64),
}

/// Probes `key` for `segment`, locating it in the index only for the first unit of an
/// occurrence (`handle` keeps where it is).
pub(super) fn probe_located<'i, I: MatchIndex>(
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

/// One import at work: what it reads into and what it returns, built from a request and its
/// prepared recipient space and index; the index is `I` (links' directory or general index).
pub(super) struct Run<'a, I: MatchIndex> {
    pub(super) request: &'a ImportRequest<'a>,
    pub(super) space: RecipientSpace,
    pub(super) index: I,
    pub(super) batch: Batch<I::Key>,
    pub(super) segment_ids: HashMap<String, u32, FxBuildHasher>,
    /// Dense index of segments with names under 8 bytes, by the packed name and its length.
    pub(super) short_segment_ids: names::ShortNames,
    pub(super) segments: Vec<SegmentState>,
    pub(super) lists: BTreeMap<String, ListState>,
    pub(super) report: ImportReport,
    pub(super) last_applied: BTreeMap<String, i64>,
    /// The delivery being applied.
    pub(super) timestamp: Option<i64>,
    pub(super) full: bool,
    pub(super) file: Arc<str>,
    /// Lists a full delivery already reset.
    pub(super) reset_lists: std::collections::BTreeSet<String>,
    /// Whether outbound visitor-id files may take `fast::read_visitor_outbound`.
    pub(super) fast_path: bool,
    /// Segments (dense index < 64) refused in the current delivery.
    pub(super) refused: u64,
    /// Scratch of [`sort::sort_u32`], kept from sort to sort.
    pub(super) sort_scratch: Vec<u32>,
    /// Whether the delivery being applied is the last.
    pub(super) last_delivery: bool,
    /// Mask lines of keys not indexed from links, with the segments to probe: counted at the
    /// end by [`Run::count_unindexed`]. One run sorted by key per batch.
    pub(super) unindexed: Vec<MaskLine<I::Key>>,
}

impl<'a, I: MatchIndex> Run<'a, I>
where
    I::Key: IndexKey,
{
    pub(super) fn new(
        request: &'a ImportRequest<'a>,
        space: RecipientSpace,
        index: I,
    ) -> Run<'a, I> {
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

    pub(super) fn list_name(&self, segment: &str) -> String {
        match self.request.options.mappings.get(segment) {
            Some(list) => list.clone(),
            None => format!("{DEFAULT_LIST_PREFIX}{segment}"),
        }
    }

    /// Dense index of a segment, creating its state on first sight.
    pub(super) fn segment(&mut self, name: &str) -> u32 {
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
    pub(super) fn start_segment(&mut self, id: u32) {
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

    /// Starts applying `delivery`: segments are checked for staleness, a full delivery's
    /// declared (and mapped) segments are touched. Its files are read next ([`Run::read_file`]),
    /// then [`Run::end_delivery`].
    pub(super) fn begin_delivery(&mut self, delivery: &Delivery<'a>) {
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
    }

    /// Ends applying `delivery`: each segment it touched is refused (stale) or applied to its
    /// list.
    pub(super) fn end_delivery(&mut self, delivery: &Delivery<'a>) {
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
    }

    /// Applies the current delivery's adds and removes of one segment to its list.
    pub(super) fn apply_segment(&mut self, id: usize) {
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

    pub(super) fn current_members(&self, list: &str) -> Vec<u32> {
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

    pub(super) fn occurrence<'r>(
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

    /// One unit: `occurrence` listed in the add column of `segment`.
    pub(super) fn add(&mut self, segment: &str, occurrence: &Occurrence<'_>) {
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
    pub(super) fn index_key(occurrence: &Occurrence<'_>) -> Result<I::Key, Option<IdReason>> {
        match &occurrence.key {
            Err(e) => Err(Some(e.reason)),
            Ok(key) => I::Key::from_match(*key).ok_or(None),
        }
    }

    /// [`Run::add`] by dense segment index; for one of several units of the same occurrence,
    /// `handle` keeps where its key is in the index once a unit looked it up.
    pub(super) fn add_unit(
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
    pub(super) fn remove(&mut self, segment: &str, occurrence: &Occurrence<'_>) {
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

    /// The result, once every delivery is applied and the units of unindexed keys are counted
    /// ([`Run::count_unindexed`]).
    pub(super) fn finish(mut self) -> ImportResult {
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
