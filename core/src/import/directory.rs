//! The visitor-id match index: the compact links themselves (sorted by visitor id) searched
//! through a directory of the high half of the visitor id. No hash table is built: building
//! is one sequential pass over the links, and the memory beyond them is a few bytes per key.
//!
//! Bucket `b` of the directory holds the links whose high half scales to `b` (monotone in the
//! id, one or two links per bucket for ids spread over their range); a key is found by a short
//! scan of its bucket, or a binary search when the bucket is crowded (skewed ids cost a
//! logarithm, never a linear scan). A key is known by the position of its first link: a 64-bit
//! mask per position holds the segments (dense segment index < 64) the key was seen for;
//! indices from 64 on fall back to a set. When the directory owns the links, the mask is the
//! first link's `last_seen` field, no longer needed once keys are resolved: no memory beyond
//! the links, and the mask is in the cache line the search just read. Keys linked to several
//! recipients are resolved by the policy once, when the directory is built. Keys probed but not
//! indexed go to [`ExtraKeys`] (those of mask lines are counted at the end by the import).

use std::borrow::Cow;

use hashbrown::HashSet;
use rustc_hash::FxBuildHasher;

use super::extra::ExtraKeys;
use super::index::{MatchIndex, Packed, Target, resolve, unpack};
use super::space::LinkRids;
use crate::datasource::AmbiguityPolicy;
use crate::format::links::{CompactLink, CompactLinks};
use crate::id::VisitorId;
use crate::prefetch::prefetch;

/// Exclusive bound of the high half of a visitor id.
const HI_BOUND: u64 = (VisitorId::MAX.as_u128() >> 64) as u64 + 1;
/// Handle bit of keys of the table of unindexed keys.
const EXTRA: u64 = 1 << 63;
/// Buckets up to this many links are scanned; larger ones are searched by bisection.
const SCAN: usize = 12;

/// Index of visitor-id keys over compact links.
#[derive(Debug)]
pub(crate) struct LinkDirectory<'a> {
    links: Cow<'a, CompactLinks>,
    rids: LinkRids,
    /// First link of each bucket, then the number of links.
    starts: Vec<u32>,
    /// `bucket(hi) = hi * scale >> 64`.
    scale: u64,
    /// Resolved targets of keys with several links, by the position of their first link.
    multi: Vec<(u32, Packed)>,
    /// One bit per link position: set at the first link of a key with several (a small bitset
    /// in cache, instead of reading the next link).
    is_multi: Vec<u64>,
    group_members: Vec<u32>,
    groups: Vec<(u32, u32)>,
    /// Segments each key was seen for, by the position of its first link, when the links are
    /// borrowed (owned links hold them in `last_seen`; this is then empty).
    seen: Vec<u64>,
    seen_high: HashSet<([u64; 2], u32), FxBuildHasher>,
    extra: ExtraKeys,
    keys: usize,
}

impl<'a> LinkDirectory<'a> {
    /// Builds the directory of `links` (sorted by visitor then recipient, one per pair, fewer
    /// than `u32::MAX`); `rids` numbers each link's recipient (in recipient order); keys with
    /// several recipients are resolved by `policy`.
    pub(crate) fn build(
        mut links: Cow<'a, CompactLinks>,
        rids: LinkRids,
        policy: AmbiguityPolicy,
    ) -> LinkDirectory<'a> {
        let rows = &links.links;
        let n = rows.len();
        debug_assert!(n < u32::MAX as usize);
        let buckets = (n / 2).next_power_of_two().max(1);
        let scale = (((buckets as u128) << 64) / u128::from(HI_BOUND)) as u64;
        let bucket = |hi: u64| ((u128::from(hi) * u128::from(scale)) >> 64) as usize;
        // Keys with several links: adjacent (the links are sorted), resolved now.
        let (mut multi, mut group_members, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        let mut is_multi = vec![0u64; n.div_ceil(64)];
        let mut pairs: Vec<(u32, i64)> = Vec::new();
        let mut keys = n;
        let mut i = 0;
        while i + 1 < n {
            if rows[i + 1].visitor != rows[i].visitor {
                i += 1;
                continue;
            }
            let mut end = i + 2;
            while end < n && rows[end].visitor == rows[i].visitor {
                end += 1;
            }
            pairs.clear();
            pairs.extend((i..end).map(|j| (rids.get(j, rows[j].recipient), rows[j].last_seen)));
            let target = resolve(&pairs, policy, true, &mut group_members, &mut groups);
            multi.push((i as u32, target));
            is_multi[i / 64] |= 1 << (i % 64);
            keys -= end - i - 1;
            i = end;
        }
        // Links per bucket, counted (no branch on how many buckets a link skips), then summed
        // into the first link of each. Owned links' times are done with: they become the
        // (empty) segment masks in the same pass.
        let mut starts = vec![0u32; buckets + 1];
        let seen = match &mut links {
            Cow::Owned(owned) => {
                for link in owned.links.iter_mut() {
                    starts[bucket(link.visitor[0]).min(buckets - 1) + 1] += 1;
                    link.last_seen = 0;
                }
                Vec::new()
            }
            Cow::Borrowed(borrowed) => {
                for link in borrowed.links.iter() {
                    starts[bucket(link.visitor[0]).min(buckets - 1) + 1] += 1;
                }
                vec![0; n]
            }
        };
        let mut sum = 0;
        for start in starts.iter_mut() {
            sum += *start;
            *start = sum;
        }
        LinkDirectory {
            seen,
            extra: ExtraKeys::new(),
            links,
            rids,
            starts,
            scale,
            multi,
            is_multi,
            group_members,
            groups,
            seen_high: HashSet::default(),
            keys,
        }
    }

    #[inline]
    fn bucket(&self, hi: u64) -> usize {
        (((u128::from(hi) * u128::from(self.scale)) >> 64) as usize).min(self.starts.len() - 2)
    }

    /// The links of the bucket `key` falls in, and the position of the first.
    #[inline]
    fn bucket_links(&self, key: [u64; 2]) -> (&[CompactLink], usize) {
        let b = self.bucket(key[0]);
        let (start, end) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        (&self.links.links[start..end], start)
    }

    /// The position of the first link of `key`, if it is linked.
    #[inline(always)]
    fn find(&self, key: [u64; 2]) -> Option<usize> {
        let (part, start) = self.bucket_links(key);
        // Compared as one integer: two instructions, no lexicographic loop.
        let value = |l: &CompactLink| u128::from(l.visitor[0]) << 64 | u128::from(l.visitor[1]);
        let wanted = u128::from(key[0]) << 64 | u128::from(key[1]);
        let at = if part.len() <= SCAN {
            part.iter()
                .position(|l| value(l) >= wanted)
                .unwrap_or(part.len())
        } else {
            part.partition_point(|l| value(l) < wanted)
        };
        (part.get(at)?.visitor == key).then_some(start + at)
    }

    /// Adds `mask` to the segments the key whose first link is at `at` was seen for; the
    /// segments before.
    #[inline]
    fn mark(&mut self, at: usize, mask: u64) -> u64 {
        let seen = match &mut self.links {
            // The mask's bits in the field's (`i64` to `u64` and back is the identity).
            Cow::Owned(links) => {
                let field = &mut links.links[at].last_seen;
                let before = *field as u64;
                *field = (before | mask) as i64;
                return before;
            }
            Cow::Borrowed(_) => &mut self.seen[at],
        };
        let before = *seen;
        *seen |= mask;
        before
    }

    /// What the key whose first link is at `at` reconciles to.
    #[inline]
    fn target(&self, at: usize) -> Target<'_> {
        if self.is_multi[at / 64] & (1 << (at % 64)) != 0 {
            let k = self
                .multi
                .binary_search_by_key(&(at as u32), |m| m.0)
                .expect("every key with several links is resolved");
            unpack(&self.multi[k].1, &self.group_members, &self.groups)
        } else {
            Target::One(self.rids.get(at, self.links.links[at].recipient))
        }
    }
}

impl MatchIndex for LinkDirectory<'_> {
    type Key = [u64; 2];

    #[inline]
    fn locate(&mut self, key: [u64; 2]) -> u64 {
        match self.find(key) {
            Some(at) => at as u64,
            None => EXTRA | self.extra.locate(key),
        }
    }

    #[inline]
    fn locate_indexed(&self, key: [u64; 2]) -> Option<u64> {
        self.find(key).map(|at| at as u64)
    }

    #[inline]
    fn locate_unindexed(&mut self, key: [u64; 2]) -> u64 {
        EXTRA | self.extra.locate(key)
    }

    #[inline]
    fn hint_indexed(&self, key: [u64; 2]) {
        // The directory is read in sweep order (cached); its bucket's links and masks are not.
        let b = self.bucket(key[0]);
        let start = self.starts[b] as usize;
        // Two links per cache line, about two per bucket.
        prefetch(&self.links.links, start);
        prefetch(&self.links.links, start + 2);
        prefetch(&self.seen, start);
    }

    #[inline]
    fn hint_located(&self, key: [u64; 2], indexed: Option<u64>) {
        match indexed {
            Some(at) => prefetch(&self.seen, at as usize),
            None => self.extra.hint(key),
        }
    }

    #[inline]
    fn probe_at(&mut self, handle: u64, segment: u32) -> (Target<'_>, bool) {
        let duplicate = if segment < 64 {
            let bit = 1u64 << segment;
            let before = if handle & EXTRA != 0 {
                let seen = self.extra.seen_mut(handle & !EXTRA);
                let before = *seen;
                *seen |= bit;
                before
            } else {
                self.mark(handle as usize, bit)
            };
            before & bit != 0
        } else {
            let key = if handle & EXTRA != 0 {
                self.extra.key(handle & !EXTRA)
            } else {
                self.links.links[handle as usize].visitor
            };
            !self.seen_high.insert((key, segment))
        };
        let target = if handle & EXTRA != 0 {
            Target::None
        } else {
            self.target(handle as usize)
        };
        (target, duplicate)
    }

    #[inline]
    fn probe_mask(&mut self, handle: u64, mask: u64) -> (Target<'_>, u64) {
        if handle & EXTRA != 0 {
            let seen = self.extra.seen_mut(handle & !EXTRA);
            let before = *seen & mask;
            *seen |= mask;
            return (Target::None, before);
        }
        let before = self.mark(handle as usize, mask) & mask;
        (self.target(handle as usize), before)
    }

    fn seen_unindexed(&self, key: [u64; 2]) -> u64 {
        self.extra.seen(key)
    }

    fn lookup(&self, key: [u64; 2]) -> Target<'_> {
        match self.find(key) {
            Some(at) => self.target(at),
            None => Target::None,
        }
    }

    #[inline]
    fn order(&self, key: [u64; 2]) -> u64 {
        // The directory follows the id: probes in id order sweep it (and the links, and the
        // masks). `hi < HI_BOUND < 2^63`: doubling keeps the order and uses more top bits.
        key[0] << 1
    }

    fn ordered(&self) -> bool {
        true
    }

    fn indexed_keys(&self) -> usize {
        self.keys
    }

    fn heap_bytes(&self) -> usize {
        // The links are the index's keys: counted with it. The segment masks count 8 bytes per
        // link wherever they are (apart, or in owned links' `last_seen`): the report describes
        // the import, whoever owned the links (an owning index holds 8 bytes per link less).
        self.links.links.len() * (size_of::<CompactLink>() + size_of::<u64>())
            + self.starts.capacity() * size_of::<u32>()
            + self.multi.capacity() * size_of::<(u32, Packed)>()
            + self.is_multi.capacity() * size_of::<u64>()
            + self.group_members.capacity() * 4
            + self.groups.capacity() * 8
            + self.extra.heap_bytes()
            + self.rids.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;
    use crate::format::links::{CompactRecipients, LinksStats};

    /// Compact links of `(key, recipient id, last seen)`, sorted and merged here.
    fn links(mut rows: Vec<([u64; 2], i64, i64)>) -> CompactLinks {
        rows.sort_unstable();
        // A repeated pair keeps its latest time, as the reader merges them.
        rows.dedup_by(|b, a| {
            let same = a.0 == b.0 && a.1 == b.1;
            a.2 = if same { a.2.max(b.2) } else { a.2 };
            same
        });
        CompactLinks {
            links: rows
                .into_iter()
                .map(|(visitor, recipient, last_seen)| CompactLink {
                    visitor,
                    recipient,
                    last_seen,
                })
                .collect(),
            recipients: CompactRecipients::Int,
            bad: Vec::new(),
            stats: LinksStats::default(),
        }
    }

    /// The links borrowed, or (`own`) a copy given to the directory (its masks then live in
    /// the links).
    fn cow(links: &CompactLinks, own: bool) -> Cow<'_, CompactLinks> {
        if own {
            Cow::Owned(links.clone())
        } else {
            Cow::Borrowed(links)
        }
    }

    fn owned(target: Target<'_>) -> Option<Vec<u32>> {
        match target {
            Target::One(rid) => Some(vec![rid]),
            Target::Recipients(rids) => Some(rids.to_vec()),
            Target::None => None,
            Target::Ambiguous => Some(Vec::new()),
        }
    }

    /// A key from a small number: spread over the id range, or (`skewed`) all in one bucket.
    fn key(n: u64, skewed: bool) -> [u64; 2] {
        if skewed {
            [HI_BOUND / 3, n.wrapping_mul(0x9e37_79b9_7f4a_7c15)]
        } else {
            [n.wrapping_mul(0x9e37_79b9_7f4a_7c15) % HI_BOUND, n]
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_hash_map(
            indexed in proptest::collection::btree_map(0u64..300, 0i64..5, 0..80),
            probes in proptest::collection::vec((0u64..400, 0u32..70), 0..300),
            skewed in any::<bool>(),
            own in any::<bool>(),
        ) {
            let compact = links(indexed.iter().map(|(&k, &rid)| (key(k, skewed), rid, 0)).collect());
            let mut index = LinkDirectory::build(
                cow(&compact, own),
                LinkRids::Offset(0),
                AmbiguityPolicy::Latest,
            );
            let mut seen: HashMap<(u64, u32), ()> = HashMap::new();
            for (k, segment) in probes {
                let expected = indexed.get(&k).map(|&rid| vec![rid as u32]);
                prop_assert_eq!(owned(index.lookup(key(k, skewed))), expected.clone());
                prop_assert_eq!(index.locate_indexed(key(k, skewed)).is_some(), expected.is_some());
                let handle = index.locate(key(k, skewed));
                let (target, duplicate) = index.probe_at(handle, segment);
                prop_assert_eq!(owned(target), expected);
                prop_assert_eq!(duplicate, seen.insert((k, segment), ()).is_some());
            }
            prop_assert_eq!(index.indexed_keys(), indexed.len());
        }

        #[test]
        fn keys_with_several_links_follow_the_policy(
            rows in proptest::collection::vec((0u64..20, 0i64..6, 0i64..4), 0..60),
            policy in prop_oneof![
                Just(AmbiguityPolicy::Latest),
                Just(AmbiguityPolicy::All),
                Just(AmbiguityPolicy::Skip),
            ],
            own in any::<bool>(),
        ) {
            // The model: per key, the recipients (with their latest time).
            let mut model: BTreeMap<u64, BTreeMap<i64, i64>> = BTreeMap::new();
            for &(k, rid, seen) in &rows {
                let time = model.entry(k).or_default().entry(rid).or_insert(seen);
                *time = (*time).max(seen);
            }
            let compact = links(rows.iter().map(|&(k, rid, seen)| (key(k, false), rid, seen)).collect());
            let index = LinkDirectory::build(cow(&compact, own), LinkRids::Offset(0), policy);
            for k in 0..21u64 {
                let expected = model.get(&k).map(|recipients| {
                    if recipients.len() == 1 {
                        return vec![*recipients.keys().next().unwrap() as u32];
                    }
                    match policy {
                        AmbiguityPolicy::Latest => {
                            let latest = recipients.values().max().unwrap();
                            let first = recipients.iter().find(|(_, t)| *t == latest).unwrap();
                            vec![*first.0 as u32]
                        }
                        AmbiguityPolicy::All => recipients.keys().map(|&r| r as u32).collect(),
                        AmbiguityPolicy::Skip => Vec::new(),
                    }
                });
                prop_assert_eq!(owned(index.lookup(key(k, false))), expected);
            }
        }
    }

    #[test]
    fn groups_and_policies() {
        let rows = vec![
            ([0, 1], 1, 5),
            ([0, 1], 2, 9),
            ([0, 1], 3, 9),
            ([0, 2], 4, 0),
        ];
        let compact = links(rows);
        let build =
            |policy| LinkDirectory::build(Cow::Borrowed(&compact), LinkRids::Offset(0), policy);
        let latest = build(AmbiguityPolicy::Latest);
        assert_eq!(owned(latest.lookup([0, 1])), Some(vec![2]));
        assert_eq!(latest.lookup([0, 2]), Target::One(4));
        assert_eq!(latest.indexed_keys(), 2);
        let all = build(AmbiguityPolicy::All);
        assert_eq!(all.lookup([0, 1]), Target::Recipients(&[1, 2, 3]));
        let skip = build(AmbiguityPolicy::Skip);
        assert_eq!(skip.lookup([0, 1]), Target::Ambiguous);
        assert_eq!(skip.lookup([0, 3]), Target::None);
    }

    #[test]
    fn an_empty_directory_finds_nothing_and_catches_duplicates() {
        let compact = links(Vec::new());
        let mut index = LinkDirectory::build(
            Cow::Borrowed(&compact),
            LinkRids::Offset(0),
            AmbiguityPolicy::Latest,
        );
        let handle = index.locate([3, 4]);
        assert_eq!(index.probe_at(handle, 70), (Target::None, false));
        let handle = index.locate([3, 4]);
        assert_eq!(index.probe_at(handle, 70), (Target::None, true));
        assert_eq!(index.probe_at(handle, 2), (Target::None, false));
    }
}
