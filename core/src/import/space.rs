//! The recipient space of an import: every recipient the request knows (the recipients
//! table, the links, the current list members), numbered densely in id order, so the engine
//! works on `u32` recipient numbers and turns them back into keys only for the result.
//!
//! Integer ids (the usual case) are numbered without a sort when they are dense enough
//! ([`number_ints`]): a bitset of their range and the rank of each word's first bit, or plain
//! offsets when every id of the range is there; the number of each compact link's recipient
//! comes out of the same pass ([`LinkRids`]), which the visitor-id index keeps. Other keys are
//! sorted and searched, with a hash of the integer ones.

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use super::index;
use super::keys::RecipientKeys;
use super::{ImportError, ImportRequest, Links};
use crate::format::links::{CompactLink, CompactRecipients};
use crate::recipients::{ColumnData, RecipientIds, RecipientKey};

/// Keys of the recipient space, in id order.
#[derive(Debug)]
pub(super) enum SpaceKeys {
    /// Every integer from `min` on, `len` of them.
    Range { min: i64, len: usize },
    /// Every recipient id is an integer.
    Ints(Vec<i64>),
    /// Any keys.
    Keys(Vec<RecipientKey>),
}

/// Recipients known to the import, numbered densely in id order.
#[derive(Debug)]
pub(super) struct RecipientSpace {
    keys: SpaceKeys,
    /// Number of each integer id under [`SpaceKeys::Keys`] (most recipient ids are integers:
    /// one hash probe, not a binary search over the whole space).
    ints: HashMap<i64, u32, FxBuildHasher>,
    pub(super) opted_out: Vec<bool>,
}

impl RecipientSpace {
    /// The space of the request's recipients, current members and `links`; with compact links
    /// and integer ids only, also the number of each link's recipient.
    pub(super) fn new(
        request: &ImportRequest<'_>,
        links: Links<'_>,
    ) -> Result<(RecipientSpace, Option<LinkRids>), ImportError> {
        let table_ints = match request.recipients {
            None => Some(&[][..]),
            Some(table) => match &table.ids {
                RecipientIds::Int(ids) => Some(&ids[..]),
                RecipientIds::String(_) => None,
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
    pub(super) fn rid(&self, key: &RecipientKey) -> u32 {
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
    pub(super) fn keys(&self, rids: Vec<u32>) -> RecipientKeys {
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
    pub(super) fn key(&self, rid: u32) -> RecipientKey {
        match &self.keys {
            SpaceKeys::Range { min, .. } => RecipientKey::Int(min + i64::from(rid)),
            SpaceKeys::Ints(ints) => RecipientKey::Int(ints[rid as usize]),
            SpaceKeys::Keys(keys) => keys[rid as usize].clone(),
        }
    }
}

/// The recipient number of each link (of [`number_ints`], or given).
#[derive(Debug)]
pub(super) enum LinkRids {
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
    pub(super) fn get(&self, i: usize, id: i64) -> u32 {
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
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            LinkRids::Offset(_) => 0,
            LinkRids::Ranked { words, before, .. } => words.capacity() * 8 + before.capacity() * 4,
            LinkRids::Given(rids) => rids.capacity() * 4,
        }
    }
}

/// Numbers integer recipient ids densely in order: the keys of the space (the sorted distinct
/// ids of all three sources), and how to number each of `links`.
pub(super) fn number_ints(
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

#[cfg(test)]
mod tests {
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
