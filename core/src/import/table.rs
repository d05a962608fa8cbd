//! The visitor-id match index: a purpose-built open-addressing table over `[u64; 2]` keys (the
//! halves of a visitor id's `u128` value).
//!
//! Each slot holds the key, the 64-bit mask of segments (dense segment index < 64) the key was
//! seen for and the packed target, 32 bytes aligned to 32: a probe that hits touches one cache
//! line. The table of indexed keys is sized once from the exact key count (load ≤ 2/3), with a
//! multiply-shift range reduction (any capacity, not only powers of two) and linear probing.
//! Keys probed but not indexed go to a second, growable table of (key, mask) slots, so
//! duplicates of unmatched identifiers are caught as in [`super::index::Index`]. Segment
//! indices from 64 on fall back to a set. The hash is fixed (no random seed): the same input
//! gives the same layout on every platform; nothing is output in table order.

use hashbrown::HashSet;
use rustc_hash::FxBuildHasher;

use super::index::{GROUP, Link, MatchIndex, NO_RECIPIENT, Packed, Target, resolve, unpack};
use crate::datasource::AmbiguityPolicy;

/// An empty slot's key: no visitor id has a high half of all ones (ids are below 10^38 < 2^127).
const EMPTY: [u64; 2] = [u64::MAX; 2];
/// Handle bit of keys of the table of unindexed keys.
const EXTRA: usize = 1 << (usize::BITS - 1);

#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    key: [u64; 2],
    seen: u64,
    target: Packed,
}

const EMPTY_SLOT: Slot = Slot {
    key: EMPTY,
    seen: 0,
    target: NO_RECIPIENT,
};

#[derive(Debug, Clone, Copy)]
struct ExtraSlot {
    key: [u64; 2],
    seen: u64,
}

const EMPTY_EXTRA: ExtraSlot = ExtraSlot {
    key: EMPTY,
    seen: 0,
};

/// A fixed 64-bit hash of a key (two multiply-folds).
#[inline]
pub(crate) fn hash(key: [u64; 2]) -> u64 {
    #[inline]
    fn fold(x: u64, c: u64) -> u64 {
        let m = u128::from(x) * u128::from(c);
        (m as u64) ^ ((m >> 64) as u64)
    }
    fold(
        fold(key[1] ^ 0x243f_6a88_85a3_08d3, 0x9e37_79b9_7f4a_7c15) ^ key[0],
        0xd6e8_feb8_6659_fd93,
    )
}

/// The slot a hash starts at in a table of `len` slots.
#[inline]
fn home(hash: u64, len: usize) -> usize {
    ((u128::from(hash) * len as u128) >> 64) as usize
}

/// Hints the CPU to fetch the cache line of `slice[i]` (nothing off x86_64).
#[inline]
fn prefetch<T>(slice: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = slice.get(i) {
        prefetch_x86(std::ptr::from_ref(item).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, i);
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn prefetch_x86(p: *const i8) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is only a hint: it never faults or changes memory, whatever the
    // address (this one is in bounds); SSE is part of the x86_64 baseline.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
}

/// A key waiting for [`VisitorIndex::insert_pending`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingKey {
    pub(crate) hash: u64,
    pub(crate) key: [u64; 2],
    pub(crate) target: Packed,
}

/// Index of visitor-id keys.
#[derive(Debug)]
pub(crate) struct VisitorIndex {
    slots: Vec<Slot>,
    extra: Vec<ExtraSlot>,
    extra_len: usize,
    seen_high: HashSet<([u64; 2], u32), FxBuildHasher>,
    group_members: Vec<u32>,
    groups: Vec<(u32, u32)>,
    indexed: usize,
    policy: AmbiguityPolicy,
    timed: bool,
}

impl VisitorIndex {
    /// An empty index for `keys` distinct indexed keys, resolving keys linked to several
    /// recipients by `policy` (`timed`: link times are meaningful).
    pub(crate) fn with_keys(keys: usize, policy: AmbiguityPolicy, timed: bool) -> VisitorIndex {
        let len = (keys + keys / 2).max(8);
        VisitorIndex {
            slots: vec![EMPTY_SLOT; len],
            extra: vec![EMPTY_EXTRA; (keys / 8).max(64)],
            extra_len: 0,
            seen_high: HashSet::default(),
            group_members: Vec::new(),
            groups: Vec::new(),
            indexed: 0,
            policy,
            timed,
        }
    }

    /// Builds the index from links (any order, repeats merged by the larger time).
    pub(crate) fn build(
        mut links: Vec<Link<[u64; 2]>>,
        policy: AmbiguityPolicy,
        timed: bool,
    ) -> VisitorIndex {
        links.sort_unstable();
        links.dedup_by(|b, a| {
            a.key == b.key && a.rid == b.rid && {
                a.seen = a.seen.max(b.seen);
                true
            }
        });
        let keys = links.chunk_by(|a, b| a.key == b.key).count();
        let mut index = VisitorIndex::with_keys(keys, policy, timed);
        let mut group = Vec::new();
        for chunk in links.chunk_by(|a, b| a.key == b.key) {
            group.clear();
            group.extend(chunk.iter().map(|l| (l.rid, l.seen)));
            index.insert(chunk[0].key, &group);
        }
        index
    }

    /// Adds a key with its links (sorted by recipient number, one per recipient). Each key is
    /// added once, before any probe; at most the `keys` given to [`VisitorIndex::with_keys`].
    pub(crate) fn insert(&mut self, key: [u64; 2], links: &[(u32, i64)]) {
        let target = self.resolve(links);
        self.insert_resolved(key, hash(key), target);
    }

    /// The packed target of a key's links (see [`VisitorIndex::insert`]).
    pub(crate) fn resolve(&mut self, links: &[(u32, i64)]) -> Packed {
        resolve(
            links,
            self.policy,
            self.timed,
            &mut self.group_members,
            &mut self.groups,
        )
    }

    /// Adds a key (with its `hash`) and its resolved target; see [`VisitorIndex::insert`].
    pub(crate) fn insert_resolved(&mut self, key: [u64; 2], hash: u64, target: Packed) {
        debug_assert!(key != EMPTY && self.indexed < self.slots.len());
        let mut i = home(hash, self.slots.len());
        while self.slots[i].key != EMPTY {
            debug_assert!(self.slots[i].key != key, "key inserted twice");
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
        self.slots[i] = Slot {
            key,
            seen: 0,
            target,
        };
        self.indexed += 1;
    }

    /// Adds keys with their hashes and resolved targets (see [`VisitorIndex::insert`]) in the
    /// order of the slots they start at, so the inserts sweep the table instead of jumping
    /// around it (a TLB miss per key otherwise); empties `pending`. `scratch` is reused.
    pub(crate) fn insert_pending(
        &mut self,
        pending: &mut Vec<PendingKey>,
        scratch: &mut Vec<PendingKey>,
        counts: &mut Vec<usize>,
    ) {
        if pending.is_empty() {
            return;
        }
        // Runs by the top bits of the hash: homes follow `hash * len >> 64`.
        let bits = (pending.len() / 256)
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
            .min(10);
        let run = |p: &PendingKey| (p.hash >> (63 - bits) >> 1) as usize;
        counts.clear();
        counts.resize((1 << bits) + 1, 0);
        for p in pending.iter() {
            counts[run(p) + 1] += 1;
        }
        for i in 0..1 << bits {
            counts[i + 1] += counts[i];
        }
        scratch.clear();
        scratch.resize(pending.len(), pending[0]);
        for p in pending.iter() {
            let r = run(p);
            scratch[counts[r]] = *p;
            counts[r] += 1;
        }
        const AHEAD: usize = 16;
        for (i, p) in scratch.iter().enumerate() {
            if let Some(ahead) = scratch.get(i + AHEAD) {
                prefetch(&self.slots, home(ahead.hash, self.slots.len()));
            }
            self.insert_resolved(p.key, p.hash, p.target);
        }
        pending.clear();
    }

    /// [`MatchIndex::locate`] with the key's hash already computed.
    #[inline]
    pub(crate) fn locate_hashed(&mut self, key: [u64; 2], hash: u64) -> usize {
        let len = self.slots.len();
        let mut i = home(hash, len);
        loop {
            let slot = &self.slots[i];
            if slot.key == key {
                return i;
            }
            if slot.key == EMPTY {
                break;
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
        EXTRA | self.locate_extra(key, hash)
    }

    fn find_extra(extra: &[ExtraSlot], key: [u64; 2], hash: u64) -> Result<usize, usize> {
        let len = extra.len();
        let mut i = home(hash, len);
        loop {
            let slot = &extra[i];
            if slot.key == key {
                return Ok(i);
            }
            if slot.key == EMPTY {
                return Err(i);
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
    }

    fn locate_extra(&mut self, key: [u64; 2], hash: u64) -> usize {
        match Self::find_extra(&self.extra, key, hash) {
            Ok(i) => i,
            Err(mut i) => {
                if (self.extra_len + 1) * 3 > self.extra.len() * 2 {
                    self.grow_extra();
                    i = Self::find_extra(&self.extra, key, hash).expect_err("a new key");
                }
                self.extra[i] = ExtraSlot { key, seen: 0 };
                self.extra_len += 1;
                i
            }
        }
    }

    fn grow_extra(&mut self) {
        self.resize_extra(self.extra.len() * 2);
    }

    fn resize_extra(&mut self, len: usize) {
        let doubled = vec![EMPTY_EXTRA; len];
        let old = std::mem::replace(&mut self.extra, doubled);
        for slot in old.into_iter().filter(|s| s.key != EMPTY) {
            let i = Self::find_extra(&self.extra, slot.key, hash(slot.key)).expect_err("distinct");
            self.extra[i] = slot;
        }
    }

    fn key_at(&self, handle: usize) -> [u64; 2] {
        if handle & EXTRA != 0 {
            self.extra[handle & !EXTRA].key
        } else {
            self.slots[handle].key
        }
    }

    fn target_at(&self, handle: usize) -> Target<'_> {
        if handle & EXTRA != 0 {
            Target::None
        } else {
            unpack(
                &self.slots[handle].target,
                &self.group_members,
                &self.groups,
            )
        }
    }
}

impl MatchIndex for VisitorIndex {
    type Key = [u64; 2];

    #[inline]
    fn locate(&mut self, key: [u64; 2]) -> usize {
        self.locate_hashed(key, hash(key))
    }

    #[inline]
    fn locate_indexed(&self, key: [u64; 2]) -> Option<usize> {
        let len = self.slots.len();
        let mut i = home(hash(key), len);
        loop {
            let slot = &self.slots[i];
            if slot.key == key {
                return Some(i);
            }
            if slot.key == EMPTY {
                return None;
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
    }

    #[inline]
    fn locate_unindexed(&mut self, key: [u64; 2]) -> usize {
        EXTRA | self.locate_extra(key, hash(key))
    }

    #[inline]
    fn hint_located(&self, key: [u64; 2], indexed: Option<usize>) {
        match indexed {
            Some(i) => prefetch(&self.slots, i),
            None => prefetch(&self.extra, home(hash(key), self.extra.len())),
        }
    }

    #[inline]
    fn hint_indexed(&self, key: [u64; 2]) {
        prefetch(&self.slots, home(hash(key), self.slots.len()));
    }

    #[inline]
    fn probe_at(&mut self, handle: usize, segment: u32) -> (Target<'_>, bool) {
        let mask = if handle & EXTRA != 0 {
            &mut self.extra[handle & !EXTRA].seen
        } else {
            &mut self.slots[handle].seen
        };
        let duplicate = if segment < 64 {
            let bit = 1u64 << segment;
            let duplicate = *mask & bit != 0;
            *mask |= bit;
            duplicate
        } else {
            let key = self.key_at(handle);
            !self.seen_high.insert((key, segment))
        };
        (self.target_at(handle), duplicate)
    }

    fn lookup(&self, key: [u64; 2]) -> Target<'_> {
        let len = self.slots.len();
        let mut i = home(hash(key), len);
        loop {
            let slot = &self.slots[i];
            if slot.key == key {
                return unpack(&slot.target, &self.group_members, &self.groups);
            }
            if slot.key == EMPTY {
                return Target::None;
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
    }

    #[inline]
    fn hint(&self, key: [u64; 2]) {
        let h = hash(key);
        prefetch(&self.slots, home(h, self.slots.len()));
        prefetch(&self.extra, home(h, self.extra.len()));
    }

    fn reserve(&mut self, additional: usize) {
        // Keys probed in hash order fill the table from one end: room for all of them now keeps
        // every region below the load limit (growing on the way would not: the region already
        // passed would be overfull and probe sequences would grow without bound).
        let needed = (self.extra_len + additional) * 3 / 2 + 1;
        if needed > self.extra.len() {
            self.resize_extra(needed.max(self.extra.len() * 2));
        }
    }

    #[inline]
    fn order(&self, key: [u64; 2]) -> u64 {
        // Both tables place a key at `hash * len >> 64`: hash order is layout order.
        hash(key)
    }

    fn indexed_keys(&self) -> usize {
        self.indexed
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + self.extra.capacity() * size_of::<ExtraSlot>()
            + self.group_members.capacity() * 4
            + self.groups.capacity() * 8
    }
}

const _: () = assert!(size_of::<Slot>() == 32 && GROUP != 0);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn key(n: u64) -> [u64; 2] {
        [n % 7, n.wrapping_mul(0x9e37_79b9_7f4a_7c15)]
    }

    fn owned(target: Target<'_>) -> Option<Vec<u32>> {
        match target {
            Target::Recipients(rids) => Some(rids.to_vec()),
            Target::None => None,
            Target::Ambiguous => Some(Vec::new()),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_hash_map(
            indexed in proptest::collection::btree_map(0u64..300, 0u32..5, 0..80),
            probes in proptest::collection::vec((0u64..400, 0u32..70), 0..300),
        ) {
            let mut index = VisitorIndex::with_keys(indexed.len(), AmbiguityPolicy::Latest, true);
            for (&k, &rid) in &indexed {
                index.insert(key(k), &[(rid, 0)]);
            }
            let mut seen: HashMap<(u64, u32), ()> = HashMap::new();
            for (k, segment) in probes {
                let expected = indexed.get(&k).map(|&rid| vec![rid]);
                prop_assert_eq!(owned(index.lookup(key(k))), expected.clone());
                let handle = index.locate(key(k));
                let (target, duplicate) = index.probe_at(handle, segment);
                prop_assert_eq!(owned(target), expected);
                prop_assert_eq!(duplicate, seen.insert((k, segment), ()).is_some());
            }
            prop_assert_eq!(index.indexed_keys(), indexed.len());
        }
    }

    proptest! {
        #[test]
        fn pending_inserts_agree_with_inserts(
            keys in proptest::collection::btree_set(0u64..5000, 0..2000),
        ) {
            let keys: Vec<u64> = keys.into_iter().collect();
            let mut one = VisitorIndex::with_keys(keys.len(), AmbiguityPolicy::Latest, true);
            let mut batched = VisitorIndex::with_keys(keys.len(), AmbiguityPolicy::Latest, true);
            let (mut pending, mut scratch, mut counts) = (Vec::new(), Vec::new(), Vec::new());
            for (i, &k) in keys.iter().enumerate() {
                one.insert(key(k), &[(k as u32, 0)]);
                pending.push(PendingKey { hash: hash(key(k)), key: key(k), target: k as u32 });
                if i % 700 == 0 {
                    batched.insert_pending(&mut pending, &mut scratch, &mut counts);
                }
            }
            batched.insert_pending(&mut pending, &mut scratch, &mut counts);
            prop_assert_eq!(batched.indexed_keys(), keys.len());
            for k in 0..5100u64 {
                prop_assert_eq!(owned(batched.lookup(key(k))), owned(one.lookup(key(k))));
                let found = batched.locate_indexed(key(k));
                prop_assert_eq!(found.is_some(), keys.binary_search(&k).is_ok());
            }
        }
    }

    #[test]
    fn groups_and_policies() {
        let links = [(1, 5), (2, 9), (3, 9)];
        let mut latest = VisitorIndex::with_keys(1, AmbiguityPolicy::Latest, true);
        latest.insert([0, 1], &links);
        assert_eq!(latest.lookup([0, 1]), Target::Recipients(&[2]));
        let mut all = VisitorIndex::with_keys(1, AmbiguityPolicy::All, true);
        all.insert([0, 1], &links);
        assert_eq!(all.lookup([0, 1]), Target::Recipients(&[1, 2, 3]));
        let mut skip = VisitorIndex::with_keys(1, AmbiguityPolicy::Skip, true);
        skip.insert([0, 1], &links);
        assert_eq!(skip.lookup([0, 1]), Target::Ambiguous);
        assert_eq!(skip.lookup([0, 2]), Target::None);
    }

    #[test]
    fn keys_located_in_hash_order_after_a_reserve() {
        let mut index = VisitorIndex::with_keys(0, AmbiguityPolicy::Latest, true);
        let mut keys: Vec<[u64; 2]> = (0..50_000).map(key).collect();
        keys.sort_by_key(|&k| hash(k));
        index.reserve(keys.len());
        let len = index.extra.len();
        for &k in &keys {
            let h = index.locate(k);
            assert_eq!(index.probe_at(h, 1), (Target::None, false));
        }
        // No growth on the way, and every key found again.
        assert_eq!(index.extra.len(), len);
        for &k in &keys {
            let h = index.locate(k);
            assert_eq!(index.probe_at(h, 1), (Target::None, true));
        }
    }

    #[test]
    fn the_extra_table_grows_and_keeps_masks() {
        let mut index = VisitorIndex::with_keys(0, AmbiguityPolicy::Latest, true);
        for n in 0..10_000 {
            let h = index.locate(key(n));
            assert_eq!(index.probe_at(h, 3), (Target::None, false));
        }
        for n in 0..10_000 {
            let h = index.locate(key(n));
            assert_eq!(index.probe_at(h, 3), (Target::None, true));
            assert_eq!(index.probe_at(h, 64), (Target::None, false));
            assert_eq!(index.probe_at(h, 64), (Target::None, true));
        }
    }
}
