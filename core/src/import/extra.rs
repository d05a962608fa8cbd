//! Visitor-id keys probed but not indexed: small growable open-addressing tables of (key, mask
//! of the segments the key was seen for), one per range of the key's high bits, so duplicates
//! of unmatched identifiers are caught as those of matched ones. Also the fixed key hash.
//!
//! Only the units of listed lines (those whose order matters) come here: mask lines of keys not
//! indexed are counted by the import at the end, by sorting them, with [`ExtraKeys::seen`]
//! telling which segments a listed line already marked.
//!
//! The hash is fixed (no random seed): the same input gives the same layout on every platform;
//! nothing is output in table order.

use crate::prefetch::prefetch;

/// An empty slot's key: no visitor id has a high half of all ones (ids are below 10^38 < 2^127).
pub(crate) const EMPTY: [u64; 2] = [u64::MAX; 2];

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: [u64; 2],
    seen: u64,
}

const EMPTY_SLOT: Slot = Slot {
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

/// The slot a hash starts at in a table of `len` slots (multiply-shift: any `len`, and hash
/// order is slot order).
#[inline]
pub(crate) fn home(hash: u64, len: usize) -> usize {
    ((u128::from(hash) * len as u128) >> 64) as usize
}

/// Partitions of [`ExtraKeys`], by the high bits of the key.
const PARTITION_BITS: u32 = 10;

/// Keys probed but not indexed, with their segment masks: one small hash table (load ≤ 3/4,
/// linear probing) per range of the high half of the key, so probes in key order (those of a
/// sweep of the directory) work in one cache-sized table at a time, and each grows on its own
/// (a skewed range only makes its own table larger). A key's handle is its partition (high 32
/// bits) and slot (low 32 bits).
#[derive(Debug)]
pub(crate) struct ExtraKeys {
    parts: Vec<Partition>,
}

#[derive(Debug, Default)]
struct Partition {
    slots: Vec<Slot>,
    len: usize,
}

impl Partition {
    fn find(&self, key: [u64; 2], hash: u64) -> Result<usize, usize> {
        let len = self.slots.len();
        let mut i = home(hash, len);
        loop {
            let slot = &self.slots[i];
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

    fn locate(&mut self, key: [u64; 2]) -> usize {
        let hash = hash(key);
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        match self.find(key, hash) {
            Ok(i) => i,
            Err(i) => {
                self.slots[i] = Slot { key, seen: 0 };
                self.len += 1;
                i
            }
        }
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY_SLOT; len]);
        for slot in old.into_iter().filter(|s| s.key != EMPTY) {
            let i = self.find(slot.key, hash(slot.key)).expect_err("distinct");
            self.slots[i] = slot;
        }
    }
}

impl ExtraKeys {
    /// An empty table.
    pub(crate) fn new() -> ExtraKeys {
        ExtraKeys {
            parts: (0..1 << PARTITION_BITS)
                .map(|_| Partition::default())
                .collect(),
        }
    }

    /// The partition of a key: the top bits of its high half (below 2^63 for a visitor id).
    #[inline]
    fn partition(key: [u64; 2]) -> usize {
        ((key[0] << 1) >> (64 - PARTITION_BITS)) as usize
    }

    /// The handle of `key`, adding it (with an empty mask) when it is new.
    pub(crate) fn locate(&mut self, key: [u64; 2]) -> u64 {
        let p = Self::partition(key);
        let i = self.parts[p].locate(key);
        (p as u64) << 32 | i as u64
    }

    fn slot(&mut self, handle: u64) -> &mut Slot {
        &mut self.parts[(handle >> 32) as usize].slots[handle as u32 as usize]
    }

    /// The segment mask of the key of `handle` (from [`ExtraKeys::locate`], no insertion
    /// since).
    pub(crate) fn seen_mut(&mut self, handle: u64) -> &mut u64 {
        &mut self.slot(handle).seen
    }

    /// The segment mask of `key`, without adding it (0 when it is not there).
    pub(crate) fn seen(&self, key: [u64; 2]) -> u64 {
        let part = &self.parts[Self::partition(key)];
        if part.len == 0 {
            return 0;
        }
        part.find(key, hash(key)).map_or(0, |i| part.slots[i].seen)
    }

    /// The key of `handle`.
    pub(crate) fn key(&self, handle: u64) -> [u64; 2] {
        self.parts[(handle >> 32) as usize].slots[handle as u32 as usize].key
    }

    /// Hints that `key` is about to be located.
    #[inline]
    pub(crate) fn hint(&self, key: [u64; 2]) {
        let part = &self.parts[Self::partition(key)];
        prefetch(&part.slots, home(hash(key), part.slots.len()));
    }

    /// Number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len).sum()
    }

    /// Bytes of the slots held (the partitions' own headers left out: their size depends on
    /// the pointer width, and the figure must be the same natively and in WebAssembly).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|p| p.slots.capacity() * size_of::<Slot>())
            .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn key(n: u64, skewed: bool) -> [u64; 2] {
        if skewed {
            [7, n.wrapping_mul(0x9e37_79b9_7f4a_7c15)]
        } else {
            [n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 2, n]
        }
    }

    proptest! {
        #[test]
        fn keys_keep_their_handles_and_masks(
            probes in proptest::collection::vec((0u64..3000, 0u32..64), 0..2000),
            skewed in any::<bool>(),
        ) {
            let mut extra = ExtraKeys::new();
            let mut model: HashMap<u64, u64> = HashMap::new();
            for (n, segment) in probes {
                // Looked up without being added: the mask so far, 0 when never located.
                prop_assert_eq!(extra.seen(key(n, skewed)), model.get(&n).copied().unwrap_or(0));
                let handle = extra.locate(key(n, skewed));
                prop_assert_eq!(extra.key(handle), key(n, skewed));
                let seen = extra.seen_mut(handle);
                let expected = model.entry(n).or_default();
                prop_assert_eq!(*seen, *expected);
                *seen |= 1 << segment;
                *expected |= 1 << segment;
            }
            prop_assert_eq!(extra.len(), model.len());
            prop_assert_eq!(extra.seen(key(5000, skewed)), 0);
        }
    }

    #[test]
    fn a_skewed_partition_grows_alone() {
        let mut extra = ExtraKeys::new();
        for n in 0..50_000 {
            extra.locate(key(n, true));
        }
        // Handles hold until the next insertion: none here.
        let handles: Vec<u64> = (0..50_000).map(|n| extra.locate(key(n, true))).collect();
        for (n, &handle) in (0..50_000).zip(&handles) {
            assert_eq!(extra.key(handle), key(n, true));
        }
        assert!(handles.iter().all(|h| h >> 32 == handles[0] >> 32));
        assert_eq!(extra.len(), 50_000);
    }
}
