//! Batching and probing: the adds of an outbound record wait in the batch (`batch.rs`) and are
//! probed together ([`Run::flush`]): lines ordered by where their keys live in the index
//! ([`crate::sort::partition`] on [`MatchIndex::order`]), the index hinted a few lines ahead,
//! indexed keys run as the sweep finds them and the others after (in order for each key).
//! Mask lines are probed a region at a time (ordered on the next bits in cache), their
//! outcomes tallied per segment and folded into the segments after; mask lines of keys not
//! indexed are kept (one run sorted by key per batch) and counted all at once at the end
//! ([`Run::count_unindexed`]: a stable sort merges the runs; the first unit of a key and
//! segment has no recipient, the others are duplicates). Buffers are reused from batch to
//! batch: fresh pages cost.

use super::IndexKey;
use super::batch::{BATCH, Batch, BatchLine, INLINE, MaskLine, PREFETCH, Tally, mask_bits};
use super::index::{MatchIndex, Target};
use super::report::UnmatchedReason;
use super::run::{Handle, Occurrence, Run};
use crate::sort::{counting_sort, partition, sort_nearly_sorted};

impl<'a, I: MatchIndex> Run<'a, I>
where
    I::Key: IndexKey,
{
    /// One record of an outbound file: its adds (batched when the key is valid), its removals.
    pub(super) fn outbound_record<'s>(
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
    /// `packed` ([`super::names::pack`]; none when they could not all be): a mask line when every
    /// name is known, distinct and of a dense index below 64, and unmatched ids are not listed.
    #[inline]
    pub(super) fn outbound_usual(
        &mut self,
        line: u64,
        raw: &[u8],
        key: I::Key,
        list: &[u8],
        packed: &[u64],
    ) {
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
    pub(super) fn outbound_listed(&mut self, line: u64, raw: &[u8], key: I::Key, list: &str) {
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
    pub(super) fn batch_line(&mut self, line: u64, raw: &[u8], key: I::Key, from: u32) {
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
    pub(super) fn push_line(&mut self, line: BatchLine<I::Key>) {
        self.batch.lines.push(line);
        self.flush_when_full();
    }

    /// Sizes the batch's mask regions for about `lines` more lines: one allocation each instead
    /// of a doubling series (the guest's allocator copies a growing block each time), and the
    /// fill at which a region has the batch flushed.
    pub(super) fn expect_mask_lines(&mut self, lines: usize) {
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
    pub(super) fn push_mask(&mut self, line: MaskLine<I::Key>) {
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
    pub(super) fn flush_when_full(&mut self) {
        if self.batch.masks.len + self.batch.lines.len() >= BATCH {
            self.flush();
        }
    }

    /// Applies the batched adds: orders the lines by where their keys live in the index (a
    /// sweep of it instead of jumps around it; mask lines come in regions already), hints the
    /// index a few lines ahead (the memory accesses overlap), then runs the units; mask lines
    /// first (only counts depend on their order), then the others (in order for each key).
    /// Buffers are reused: fresh pages cost.
    pub(super) fn flush(&mut self) {
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
    pub(super) fn add_masks(&mut self, batch: &mut Batch<I::Key>) {
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
    pub(super) fn probe_masks(&mut self, tally: &mut Tally, lines: &[MaskLine<I::Key>]) {
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
    pub(super) fn tally_refused(&self, tally: &mut Tally, mask: u64) -> u64 {
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
    pub(super) fn tally_mask(&mut self, tally: &mut Tally, at: u64, probed: u64) {
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
    pub(super) fn count_unindexed(&mut self) {
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
    pub(super) fn add_line(
        &mut self,
        line: &BatchLine<I::Key>,
        batch: &Batch<I::Key>,
        mut handle: Handle,
    ) {
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
}
