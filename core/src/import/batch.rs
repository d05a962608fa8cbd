//! The batch: adds of valid keys wait here to be probed together, ordered by where their keys
//! live in the index (a sweep of it instead of jumps around it), with the index hinted a few
//! lines ahead ([`PREFETCH`]) so the memory accesses overlap. Up to [`BATCH`] lines (2M).
//!
//! Two kinds of line: a [`BatchLine`] (48 bytes for visitor ids) keeps its line number, raw id
//! (when unmatched ids are listed) and segments (up to [`INLINE`] inline); a [`MaskLine`]
//! (24 bytes) is a key and a mask of the distinct dense segment indices below 64 of a line,
//! used when unmatched ids are not listed — only counts then depend on the order of a key's
//! lines, so mask lines are probed apart and their outcomes tallied per segment ([`Tally`]).
//! Mask lines go straight into 1,024 regions by the top bits of the key's order as they are
//! read ([`MaskRegions`]: the first counting pass of a partition, few enough regions for their
//! write heads to stay in cache and in the TLB); a region a quarter fuller than the average
//! flushes the batch early, and each region is ordered on the next bits in cache, then probed
//! (`probe.rs`).

/// Lines of adds waiting to be probed together.
pub(super) const BATCH: usize = 1 << 21;
/// How many lines ahead of the one being probed the index is hinted.
pub(super) const PREFETCH: usize = 16;

/// Segments a batch line holds inline.
pub(super) const INLINE: usize = 3;
const _: () = assert!(size_of::<BatchLine<[u64; 2]>>() == 48);

/// One line of a batch (48 bytes for visitor ids): its key, raw id (a range of `Batch::raw`,
/// only when unmatched ids are listed) and `count` segments: the first `count` of `inline`
/// when they fit, else `Batch::segments[inline[0]..][..count]` (lines are probed out of order:
/// their segments travel with them).
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchLine<K> {
    pub(super) key: K,
    pub(super) line: u64,
    pub(super) raw: (u32, u32),
    pub(super) inline: [u32; INLINE],
    pub(super) count: u32,
}

/// A line of a batch whose segments are the distinct dense indices of `mask` (below 64), when
/// unmatched ids are not listed (24 bytes for visitor ids). Only counts then depend on the
/// order of a key's lines, so these need not keep theirs.
#[derive(Debug, Clone, Copy)]
pub(super) struct MaskLine<K> {
    pub(super) key: K,
    pub(super) mask: u64,
}

/// Outcomes of a batch's mask lines, per dense segment index, folded into the segments after.
#[derive(Debug)]
pub(super) struct Tally {
    /// Units matched, then unmatched by reason: duplicate, no recipient, ambiguous.
    pub(super) outcomes: [[u64; 64]; 4],
    pub(super) refused: [u64; 64],
    pub(super) touched: u64,
}

impl Tally {
    pub(super) const MATCHED: usize = 0;
    pub(super) const DUPLICATE: usize = 1;
    pub(super) const NO_RECIPIENT: usize = 2;
    pub(super) const AMBIGUOUS: usize = 3;

    pub(super) fn new() -> Tally {
        Tally {
            outcomes: [[0; 64]; 4],
            refused: [0; 64],
            touched: 0,
        }
    }
}

/// The dense segment indices of a mask, in increasing order.
#[inline]
pub(super) fn mask_bits(mut mask: u64) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let id = mask.trailing_zeros();
            mask &= mask - 1;
            id
        })
    })
}

#[derive(Debug)]
pub(super) struct Batch<K> {
    pub(super) lines: Vec<BatchLine<K>>,
    pub(super) masks: MaskRegions<K>,
    pub(super) raw: Vec<u8>,
    pub(super) segments: Vec<u32>,
    /// Scratch of `flush`, kept between batches.
    pub(super) starts: Vec<usize>,
    pub(super) sorted: Vec<BatchLine<K>>,
    /// One region's mask lines in order (a region at a time: it stays in cache).
    pub(super) sorted_masks: Vec<MaskLine<K>>,
    /// Lines whose keys are not indexed (positions in `lines`).
    pub(super) missing: Vec<u32>,
}

impl<K> Batch<K> {
    /// An empty batch whose mask lines are kept in `2^bits` regions.
    pub(super) fn new(bits: u32) -> Batch<K> {
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

/// Bits of [`super::index::MatchIndex::order`] that pick a mask line's region, when the index has an order.
pub(super) const REGION_BITS: u32 = 10;

/// Mask lines waiting to be probed, in regions by the top bits of their order: the first
/// counting pass of a partition (few enough regions for their write heads to stay in cache and
/// in the TLB), done as the lines are read; `Run::flush` (`probe.rs`) orders each region on the
/// next bits
/// in cache, then probes it.
#[derive(Debug)]
pub(super) struct MaskRegions<K> {
    pub(super) regions: Vec<Vec<MaskLine<K>>>,
    /// `regions.len() == 1 << bits`.
    pub(super) bits: u32,
    /// Lines in all regions.
    pub(super) len: usize,
    /// A region this full has the batch flushed.
    pub(super) cap: usize,
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
    pub(super) fn region(&self, order: u64) -> usize {
        if self.bits == 0 {
            0
        } else {
            (order >> (64 - self.bits)) as usize
        }
    }
}
