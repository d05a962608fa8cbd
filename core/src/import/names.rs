//! Dense indices of short segment names (under 8 bytes: most segment ids), each packed into
//! one integer ([`pack`]): a small open-addressing table (load ≤ 1/4, linear probing), so the
//! lookup of every unit is a multiply, a load and a compare, with no string hashing.

/// A name under 8 bytes as one integer: bytes 0..7 the name, byte 7 its length; `None` for
/// longer names.
#[inline]
pub(crate) fn pack(name: &[u8]) -> Option<u64> {
    (name.len() < 8).then(|| {
        // A loop, not a copy: no `memcpy` call per unit.
        let mut packed = (name.len() as u64) << 56;
        for (i, &b) in name.iter().enumerate() {
            packed |= u64::from(b) << (8 * i);
        }
        packed
    })
}

/// No packed name has a length byte of 0xFF.
const EMPTY: u64 = u64::MAX;

/// Packed name → dense index.
#[derive(Debug)]
pub(crate) struct ShortNames {
    slots: Vec<(u64, u32)>,
    len: usize,
    /// `slots.len() == 1 << bits`.
    bits: u32,
}

impl ShortNames {
    pub(crate) fn new() -> ShortNames {
        ShortNames {
            slots: vec![(EMPTY, 0); 64],
            len: 0,
            bits: 6,
        }
    }

    #[inline]
    fn home(&self, packed: u64) -> usize {
        (packed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize
    }

    /// The index of a packed name, if it has one.
    #[inline]
    pub(crate) fn get(&self, packed: u64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(packed);
        loop {
            let (key, id) = self.slots[i];
            if key == packed {
                return Some(id);
            }
            if key == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Gives a packed name (without one yet) its index.
    pub(crate) fn insert(&mut self, packed: u64, id: u32) {
        debug_assert!(self.get(packed).is_none());
        if (self.len + 1) * 4 > self.slots.len() {
            let doubled = vec![(EMPTY, 0); self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, doubled);
            self.bits += 1;
            for (key, id) in old.into_iter().filter(|s| s.0 != EMPTY) {
                self.put(key, id);
            }
        }
        self.put(packed, id);
        self.len += 1;
    }

    fn put(&mut self, packed: u64, id: u32) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(packed);
        while self.slots[i].0 != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = (packed, id);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn agrees_with_a_hash_map(names in proptest::collection::vec("[0-9a-z]{0,9}", 0..300)) {
            let mut table = ShortNames::new();
            let mut model: HashMap<u64, u32> = HashMap::new();
            for name in &names {
                let Some(packed) = pack(name.as_bytes()) else {
                    prop_assert!(name.len() >= 8);
                    continue;
                };
                let next = model.len() as u32;
                let expected = *model.entry(packed).or_insert(next);
                match table.get(packed) {
                    Some(id) => prop_assert_eq!(id, expected),
                    None => {
                        prop_assert_eq!(expected, next);
                        table.insert(packed, next);
                    }
                }
            }
            for (&packed, &id) in &model {
                prop_assert_eq!(table.get(packed), Some(id));
            }
        }
    }

    #[test]
    fn packing_keeps_names_apart() {
        let names: [&[u8]; 5] = [b"", b"0", b"00", b"1004", b"1004\0"];
        let packed: Vec<u64> = names.iter().map(|n| pack(n).unwrap()).collect();
        for (i, a) in packed.iter().enumerate() {
            assert!(packed[i + 1..].iter().all(|b| a != b));
        }
        assert_eq!(pack(b"12345678"), None);
    }
}
