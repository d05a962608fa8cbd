//! The home-made sorts of the crate, each for a shape of data the standard sorts do not
//! exploit (crate-private; each tested against the standard sort):
//!
//! - [`partition`]: orders items by the top bits of a 64-bit order (stable), through a scratch
//!   buffer: two counting sorts, the first on at most [`FIRST_BITS`] bits (few enough write
//!   heads for the cache and the TLB), the second on the next bits of each run (in cache). The
//!   import orders a batch's lines by where their keys live in the index with it (a sweep of
//!   the index instead of jumps around it).
//! - [`counting_sort`] / [`counting_sort_into`]: one stable counting pass (count, prefix sum,
//!   scatter), the step [`partition`] and the import's mask regions share.
//! - [`sort_nearly_sorted`]: an insertion sort for items each a short way from their place
//!   (after a partition), which gives up for a comparison sort past a budget of moves.
//! - [`sort_u32`]: an LSD radix sort of `u32`s (per-segment recipient numbers, hundreds of
//!   thousands), as few passes of at most 12 bits as the largest value needs.
//! - [`distribute`]: an in-place MSD radix pass into buckets, in rounds (ska_sort's scheme):
//!   the visitor links' sort ([`crate::format::links::read_compact`]) is this on the high bits
//!   of the visitor id, then a sort of each bucket of its own.

use crate::prefetch::prefetch;

/// Orders `items` by the top bits of `order` (stable: items of one order keep theirs), through
/// `scratch`; `counts` is reused. Buckets follow the batch size (about 16 items each, at most
/// 2^16 of them). Two counting sorts: the first on the top bits (few enough write heads for
/// the cache and the TLB) into `scratch`, the second on the next bits of each of those runs
/// (in cache) back into `items`.
pub(crate) fn partition<T: Copy>(
    items: &mut [T],
    scratch: &mut Vec<T>,
    counts: &mut Vec<usize>,
    order: impl Fn(&T) -> u64,
) {
    let n = items.len();
    let bits = (n / 16).max(1).next_power_of_two().trailing_zeros().min(16);
    if bits == 0 {
        return;
    }
    let high = bits.min(FIRST_BITS);
    let low = bits - high;
    scratch.clear();
    scratch.resize(n, items[0]);
    counting_sort_into(items, scratch, counts, 1 << high, |item| {
        (order(item) >> (64 - high)) as usize
    });
    if low == 0 {
        items.copy_from_slice(scratch);
        return;
    }
    let next = |item: &T| ((order(item) << high) >> (64 - low)) as usize;
    let mut run_counts = Vec::new();
    let mut start = 0;
    // `counts` now holds where each run of the first pass ends.
    for &end in counts.iter() {
        let (run, out) = (&scratch[start..end], &mut items[start..end]);
        counting_sort_into(run, out, &mut run_counts, 1 << low, next);
        start = end;
    }
}

/// `items` sorted by `order` (below `values`; stable), in `out` (grown to fit, never
/// refilled: each item is written over); `counts` is reused.
pub(crate) fn counting_sort<'o, T: Copy>(
    items: &[T],
    out: &'o mut Vec<T>,
    counts: &mut Vec<usize>,
    values: usize,
    order: impl Fn(&T) -> usize,
) -> &'o [T] {
    if out.len() < items.len() {
        out.resize(items.len(), items[0]);
    }
    let out = &mut out[..items.len()];
    counting_sort_into(items, out, counts, values, order);
    out
}

/// Sorts `items` into `out` (as long) by `order` (below `values`; stable). `counts` is reused;
/// it is left holding where the items of each value end in `out`.
pub(crate) fn counting_sort_into<T: Copy>(
    items: &[T],
    out: &mut [T],
    counts: &mut Vec<usize>,
    values: usize,
    order: impl Fn(&T) -> usize,
) {
    counts.clear();
    counts.resize(values, 0);
    for item in items {
        counts[order(item)] += 1;
    }
    let mut sum = 0;
    for count in counts.iter_mut() {
        (*count, sum) = (sum, sum + *count);
    }
    for item in items {
        let at = &mut counts[order(item)];
        out[*at] = *item;
        *at += 1;
    }
}

/// Bits of the first pass of [`partition`].
pub(crate) const FIRST_BITS: u32 = 10;

/// Sorts `items` by `key` when they are nearly sorted already (each a short way from its
/// place, as after [`partition`]): an insertion sort, which gives up for a comparison sort
/// when it has moved items sixteen times as far as there are items.
pub(crate) fn sort_nearly_sorted<T: Copy, K: Ord>(items: &mut [T], key: impl Fn(&T) -> K) {
    let mut budget = 16 * items.len();
    for i in 1..items.len() {
        let item = items[i];
        let k = key(&item);
        let mut j = i;
        while j > 0 && key(&items[j - 1]) > k {
            if budget == 0 {
                items[j] = item;
                items.sort_unstable_by_key(key);
                return;
            }
            budget -= 1;
            items[j] = items[j - 1];
            j -= 1;
        }
        items[j] = item;
    }
}

/// Sorts `values` ascending: as few passes of at most 12 bits as the largest value needs (two
/// up to 2^24: ten million recipients); small inputs use the standard sort. `scratch` is any
/// vector, reused from call to call (the two may trade buffers).
pub(crate) fn sort_u32(values: &mut Vec<u32>, scratch: &mut Vec<u32>) {
    if values.len() < 4096 {
        values.sort_unstable();
        return;
    }
    let max = values.iter().copied().max().unwrap_or(0);
    let bits = (u32::BITS - max.leading_zeros()).max(1);
    let passes = bits.div_ceil(12);
    let width = bits.div_ceil(passes);
    let digit = (1usize << width) - 1;
    // Every slot is written by each pass: only new slots are filled.
    scratch.truncate(values.len());
    scratch.resize(values.len(), 0);
    let mut counts = vec![0usize; digit + 1];
    for pass in 0..passes {
        let shift = pass * width;
        counts.fill(0);
        for &v in values.iter() {
            counts[(v >> shift) as usize & digit] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for &v in values.iter() {
            let d = (v >> shift) as usize & digit;
            scratch[counts[d]] = v;
            counts[d] += 1;
        }
        std::mem::swap(values, scratch);
    }
}

/// How many items ahead [`distribute`] asks for the slot an item will be swapped to.
const AHEAD: usize = 16;

/// Groups `items` in place by `bucket` (below `buckets`; not stable): an in-place MSD radix
/// pass, no second vector (fresh pages cost more than the swaps). Returns where each bucket
/// starts, and the end (`buckets + 1` offsets).
///
/// It works in rounds, as ska_sort does: each item not yet placed is swapped to the head of
/// its bucket, and the one it displaces waits for the next round (no chain of swaps where each
/// load waits on the one before); the slot an item will go to is prefetched a few items ahead.
/// Each swap places an item for good: n swaps in all, whatever the distribution.
pub(crate) fn distribute<T>(
    items: &mut [T],
    buckets: usize,
    bucket: impl Fn(&T) -> usize,
) -> Vec<usize> {
    let mut starts = vec![0usize; buckets + 1];
    for item in items.iter() {
        starts[bucket(item) + 1] += 1;
    }
    for i in 0..buckets {
        starts[i + 1] += starts[i];
    }
    // Links before a bucket's head are placed; those from it on are not yet.
    let mut heads = starts[..buckets].to_vec();
    let mut open: Vec<usize> = (0..buckets).filter(|&b| heads[b] < starts[b + 1]).collect();
    while !open.is_empty() {
        for &b in &open {
            // The head of `b` stays at or before `i`: only items of `b` move it.
            let end = starts[b + 1];
            for i in heads[b]..end {
                if i + AHEAD < end {
                    prefetch(items, heads[bucket(&items[i + AHEAD])]);
                }
                let to = bucket(&items[i]);
                items.swap(i, heads[to]);
                heads[to] += 1;
            }
        }
        open.retain(|&b| heads[b] < starts[b + 1]);
    }
    starts
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{distribute, partition, sort_nearly_sorted, sort_u32};

    proptest! {
        #[test]
        fn a_partition_orders_by_the_top_bits_and_keeps_ties_in_order(
            orders in proptest::collection::vec(any::<u64>(), 0..3000),
            narrow in any::<bool>(),
        ) {
            // Items are (order, original position); a narrow order puts many in one bucket.
            let mut items: Vec<(u64, usize)> = orders
                .iter()
                .enumerate()
                .map(|(i, &order)| (if narrow { order >> 60 << 60 } else { order }, i))
                .collect();
            let n = items.len();
            let bits = (n / 16).max(1).next_power_of_two().trailing_zeros().min(16);
            let top = |o: u64| if bits == 0 { 0 } else { o >> (64 - bits) };
            let mut expected = items.clone();
            expected.sort_by_key(|&(o, _)| top(o));
            partition(&mut items, &mut Vec::new(), &mut Vec::new(), |&(o, _)| o);
            prop_assert_eq!(items, expected);
        }

        #[test]
        fn a_nearly_sorted_sort_sorts_anything(
            items in proptest::collection::vec(any::<u16>(), 0..500),
            shuffled in any::<bool>(),
        ) {
            // Sorted by the high byte only (each item a short way from its place), or not at all
            // (the insertion sort gives up).
            let mut items: Vec<u16> = items;
            if !shuffled {
                items.sort_by_key(|v| v >> 8);
            }
            let mut expected = items.clone();
            expected.sort_unstable();
            sort_nearly_sorted(&mut items, |&v| v);
            prop_assert_eq!(items, expected);
        }
    }

    proptest! {
        #[test]
        fn the_radix_sort_sorts_like_the_standard_sort(
            mut values in proptest::collection::vec(any::<u32>(), 0..9000),
            small in any::<bool>(),
        ) {
            if small {
                values.iter_mut().for_each(|v| *v %= 5000);
            }
            let mut expected = values.clone();
            expected.sort_unstable();
            // A scratch of any length and content.
            let mut scratch = vec![7; values.len() / 3];
            sort_u32(&mut values, &mut scratch);
            prop_assert_eq!(&values, &expected);
            // Again with the scratch (and maybe the buffer) the first sort left.
            values.reverse();
            sort_u32(&mut values, &mut scratch);
            prop_assert_eq!(values, expected);
        }
    }

    proptest! {
        #[test]
        fn a_distribution_groups_by_bucket(
            items in proptest::collection::vec(any::<u16>(), 0..5000),
            buckets in 1usize..64,
        ) {
            let bucket = |v: &u16| usize::from(*v) % buckets;
            let mut grouped = items.clone();
            let starts = distribute(&mut grouped, buckets, bucket);
            prop_assert_eq!(starts.len(), buckets + 1);
            prop_assert_eq!(starts[buckets], items.len());
            for b in 0..buckets {
                prop_assert!(grouped[starts[b]..starts[b + 1]].iter().all(|v| bucket(v) == b));
            }
            let (mut a, mut b) = (grouped, items);
            a.sort_unstable();
            b.sort_unstable();
            prop_assert_eq!(a, b);
        }
    }
}
