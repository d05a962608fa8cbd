//! Visitor-id keys probed but not indexed: a growable open-addressing table of (key, mask of
//! the segments the key was seen for), so duplicates of unmatched identifiers are caught as
//! those of matched ones. Also the fixed hash and the prefetch hint the visitor indexes share.
//!
//! The hash is fixed (no random seed): the same input gives the same layout on every platform;
//! nothing is output in table order.

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

/// Hints the CPU to fetch the cache line of `slice[i]` (nothing off x86_64).
#[inline]
pub(crate) fn prefetch<T>(slice: &[T], i: usize) {
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

/// Keys probed but not indexed, with their segment masks (load ≤ 2/3, linear probing).
#[derive(Debug)]
pub(crate) struct ExtraKeys {
    slots: Vec<Slot>,
    len: usize,
}

impl ExtraKeys {
    /// An empty table with room for about `keys` keys before it grows.
    pub(crate) fn with_keys(keys: usize) -> ExtraKeys {
        ExtraKeys {
            slots: vec![EMPTY_SLOT; (keys * 3 / 2).max(64)],
            len: 0,
        }
    }

    fn find(slots: &[Slot], key: [u64; 2], hash: u64) -> Result<usize, usize> {
        let len = slots.len();
        let mut i = home(hash, len);
        loop {
            let slot = &slots[i];
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

    /// Where `key` lives, adding it (with an empty mask) when it is new.
    pub(crate) fn locate(&mut self, key: [u64; 2]) -> usize {
        let hash = hash(key);
        match Self::find(&self.slots, key, hash) {
            Ok(i) => i,
            Err(mut i) => {
                if (self.len + 1) * 3 > self.slots.len() * 2 {
                    self.resize(self.slots.len() * 2);
                    i = Self::find(&self.slots, key, hash).expect_err("a new key");
                }
                self.slots[i] = Slot { key, seen: 0 };
                self.len += 1;
                i
            }
        }
    }

    fn resize(&mut self, len: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY_SLOT; len]);
        for slot in old.into_iter().filter(|s| s.key != EMPTY) {
            let i = Self::find(&self.slots, slot.key, hash(slot.key)).expect_err("distinct");
            self.slots[i] = slot;
        }
    }

    /// Makes room for `additional` keys to be located without growing.
    pub(crate) fn reserve(&mut self, additional: usize) {
        // Keys probed in hash order fill the table from one end: room for all of them now keeps
        // every region below the load limit (growing on the way would not: the region already
        // passed would be overfull and probe sequences would grow without bound).
        let needed = (self.len + additional) * 3 / 2 + 1;
        if needed > self.slots.len() {
            self.resize(needed.max(self.slots.len() * 2));
        }
    }

    /// The segment mask of the key at `i` (from [`ExtraKeys::locate`], no insertion since).
    pub(crate) fn seen_mut(&mut self, i: usize) -> &mut u64 {
        &mut self.slots[i].seen
    }

    /// The key at `i`.
    pub(crate) fn key(&self, i: usize) -> [u64; 2] {
        self.slots[i].key
    }

    /// Hints that `key` is about to be located.
    #[inline]
    pub(crate) fn hint(&self, key: [u64; 2]) {
        prefetch(&self.slots, home(hash(key), self.slots.len()));
    }

    /// Slots held (for the growth test).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> [u64; 2] {
        [n % 7, n.wrapping_mul(0x9e37_79b9_7f4a_7c15)]
    }

    #[test]
    fn keys_located_in_hash_order_after_a_reserve() {
        let mut extra = ExtraKeys::with_keys(0);
        let mut keys: Vec<[u64; 2]> = (0..50_000).map(key).collect();
        keys.sort_by_key(|&k| hash(k));
        extra.reserve(keys.len());
        let len = extra.capacity();
        let slots: Vec<usize> = keys.iter().map(|&k| extra.locate(k)).collect();
        // No growth on the way, and every key found again where it was put.
        assert_eq!(extra.capacity(), len);
        for (&k, &slot) in keys.iter().zip(&slots) {
            assert_eq!(extra.locate(k), slot);
            assert_eq!(extra.key(slot), k);
        }
    }

    #[test]
    fn the_table_grows_and_keeps_masks() {
        let mut extra = ExtraKeys::with_keys(0);
        for n in 0..10_000 {
            let i = extra.locate(key(n));
            *extra.seen_mut(i) |= 1 << (n % 64);
        }
        assert!(extra.capacity() >= 15_000);
        for n in 0..10_000 {
            let i = extra.locate(key(n));
            assert_eq!(*extra.seen_mut(i), 1 << (n % 64));
        }
    }
}
