//! The match index: identifier key → the recipient(s) it reconciles to, plus which segments each
//! key has already been seen for (duplicate detection across a whole command).
//!
//! Keys are fixed-size (`[u64; 2]` for visitor ids, `[u8; 32]` for digests) so entries stay small
//! and no key allocates. Each key gets a dense number; per-number arrays hold the packed target
//! and a 64-bit mask of the segments (by dense segment index < 64) the key was seen for; segment
//! indices from 64 on fall back to a set. Keys probed but not indexed are added with the target
//! "no recipient", so duplicates of unmatched identifiers are caught the same way.

use std::hash::Hash;

use hashbrown::{HashMap, HashSet};
use rustc_hash::FxBuildHasher;

use crate::datasource::AmbiguityPolicy;

/// Packed target of a key: a recipient number, a group of them, no recipient, or ambiguous.
pub(crate) type Packed = u32;
pub(crate) const NO_RECIPIENT: Packed = u32::MAX;
pub(crate) const AMBIGUOUS: Packed = u32::MAX - 1;
pub(crate) const GROUP: Packed = 0x8000_0000;
/// Largest recipient number a packed target holds.
pub(crate) const MAX_RID: u32 = GROUP - 1;

/// What a key reconciles to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// No recipient has this identifier.
    None,
    /// Several recipients and the policy is `skip` (or `latest` without times).
    Ambiguous,
    /// One recipient number.
    One(u32),
    /// Recipient numbers (one, or several under `all`).
    Recipients(&'a [u32]),
}

/// One link from a key to a recipient, with when it was last seen (`i64::MIN` = never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Link<K> {
    pub(crate) key: K,
    pub(crate) rid: u32,
    pub(crate) seen: i64,
}

/// What the import needs of a match index.
pub(crate) trait MatchIndex {
    /// The key type.
    type Key: Copy;
    /// Where `key` lives, adding it (as "no recipient") when it is not indexed.
    fn locate(&mut self, key: Self::Key) -> u64;
    /// Where `key` lives if it is an indexed key (keys added by [`MatchIndex::locate`] may be
    /// found too), without adding it.
    fn locate_indexed(&self, key: Self::Key) -> Option<u64>;
    /// [`MatchIndex::locate`] of a key [`MatchIndex::locate_indexed`] did not find (nothing
    /// indexed since).
    fn locate_unindexed(&mut self, key: Self::Key) -> u64 {
        self.locate(key)
    }
    /// Hints that `key` is about to be given to [`MatchIndex::locate_indexed`].
    fn hint_indexed(&self, key: Self::Key) {
        self.hint(key);
    }
    /// Hints that `key`, where [`MatchIndex::locate_indexed`] found it (or not), is about to be
    /// probed.
    fn hint_located(&self, key: Self::Key, indexed: Option<u64>) {
        let _ = indexed;
        self.hint(key);
    }
    /// What the key at `handle` (from [`MatchIndex::locate`], no insertion since) reconciles
    /// to, and whether it was already seen for `segment`; marks it seen.
    fn probe_at(&mut self, handle: u64, segment: u32) -> (Target<'_>, bool);
    /// [`MatchIndex::probe_at`] for each segment of `mask` (dense indices below 64, at least
    /// one): what the key reconciles to, and which of them it was already seen for.
    fn probe_mask(&mut self, handle: u64, mask: u64) -> (Target<'_>, u64) {
        debug_assert!(mask != 0);
        let mut before = 0;
        let mut rest = mask;
        loop {
            let segment = rest.trailing_zeros();
            rest &= rest - 1;
            if rest == 0 {
                let (target, duplicate) = self.probe_at(handle, segment);
                return (target, before | u64::from(duplicate) << segment);
            }
            let (_, duplicate) = self.probe_at(handle, segment);
            before |= u64::from(duplicate) << segment;
        }
    }
    /// What `key` reconciles to, without marking anything.
    fn lookup(&self, key: Self::Key) -> Target<'_>;
    /// The segments (dense indices below 64) a key [`MatchIndex::locate_indexed`] does not find
    /// among those built from links was marked seen for; 0 when it was never located.
    fn seen_unindexed(&self, key: Self::Key) -> u64;
    /// Hints that `key` is about to be located (lets its memory be fetched early).
    fn hint(&self, key: Self::Key) {
        let _ = key;
    }
    /// Where `key` lives, as a number whose order follows the index's memory layout (probes in
    /// that order sweep the index); 0 when there is no such order.
    fn order(&self, key: Self::Key) -> u64 {
        let _ = key;
        0
    }
    /// Whether [`MatchIndex::order`] follows the memory layout (and is not always 0).
    fn ordered(&self) -> bool {
        false
    }
    /// Number of keys built from links.
    fn indexed_keys(&self) -> usize;
    /// Bytes held by the index.
    fn heap_bytes(&self) -> usize;
}

impl<K: Copy + Eq + Hash + Ord> MatchIndex for Index<K> {
    type Key = K;
    fn locate(&mut self, key: K) -> u64 {
        match self.numbers.get(&key) {
            Some(&n) => u64::from(n),
            None => u64::from(self.push(key, NO_RECIPIENT)),
        }
    }
    fn locate_indexed(&self, key: K) -> Option<u64> {
        self.numbers.get(&key).map(|&n| u64::from(n))
    }
    fn probe_at(&mut self, handle: u64, segment: u32) -> (Target<'_>, bool) {
        let duplicate = self.mark(handle as u32, segment);
        (self.target(handle as u32), duplicate)
    }
    fn lookup(&self, key: K) -> Target<'_> {
        Index::lookup(self, key)
    }
    fn seen_unindexed(&self, key: K) -> u64 {
        self.numbers.get(&key).map_or(0, |&n| self.seen[n as usize])
    }
    fn indexed_keys(&self) -> usize {
        Index::indexed_keys(self)
    }
    fn heap_bytes(&self) -> usize {
        Index::heap_bytes(self)
    }
}

/// Resolves the links of one key (sorted by recipient number, one per recipient) by `policy`
/// into a packed target; `groups` receives the members of an `all` group.
pub(crate) fn resolve(
    links: &[(u32, i64)],
    policy: AmbiguityPolicy,
    timed: bool,
    group_members: &mut Vec<u32>,
    groups: &mut Vec<(u32, u32)>,
) -> Packed {
    match (links, policy) {
        ([one], _) => one.0,
        (_, AmbiguityPolicy::Latest) if timed => {
            // Most recent wins; among equals the smallest recipient (rids follow id order).
            links
                .iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map_or(NO_RECIPIENT, |l| l.0)
        }
        (_, AmbiguityPolicy::All) => {
            let start = group_members.len() as u32;
            group_members.extend(links.iter().map(|l| l.0));
            groups.push((start, links.len() as u32));
            GROUP | (groups.len() as u32 - 1)
        }
        _ => AMBIGUOUS,
    }
}

#[derive(Debug)]
pub(crate) struct Index<K> {
    numbers: HashMap<K, u32, FxBuildHasher>,
    targets: Vec<Packed>,
    seen: Vec<u64>,
    seen_high: HashSet<(u32, u32), FxBuildHasher>,
    /// Recipient numbers of group targets, and (start, len) of each group.
    group_members: Vec<u32>,
    groups: Vec<(u32, u32)>,
    /// Keys that came from links (the rest were added by probes).
    indexed: usize,
}

impl<K: Copy + Eq + Hash + Ord> Index<K> {
    /// Builds the index from links, resolving keys linked to several recipients by `policy`;
    /// `timed` says whether link times are meaningful (visitor links) or not (declared keys,
    /// where `latest` behaves as `skip`).
    pub(crate) fn build(mut links: Vec<Link<K>>, policy: AmbiguityPolicy, timed: bool) -> Index<K> {
        links.sort_unstable();
        links.dedup_by(|b, a| {
            a.key == b.key && a.rid == b.rid && {
                a.seen = a.seen.max(b.seen);
                true
            }
        });
        let mut index = Index {
            numbers: HashMap::with_capacity_and_hasher(links.len(), FxBuildHasher),
            targets: Vec::with_capacity(links.len()),
            seen: Vec::with_capacity(links.len()),
            seen_high: HashSet::default(),
            group_members: Vec::new(),
            groups: Vec::new(),
            indexed: 0,
        };
        let mut pairs = Vec::new();
        for group in links.chunk_by(|a, b| a.key == b.key) {
            pairs.clear();
            pairs.extend(group.iter().map(|l| (l.rid, l.seen)));
            let target = resolve(
                &pairs,
                policy,
                timed,
                &mut index.group_members,
                &mut index.groups,
            );
            index.push(group[0].key, target);
        }
        index.indexed = index.targets.len();
        index
    }

    fn push(&mut self, key: K, target: Packed) -> u32 {
        let number = self.targets.len() as u32;
        self.numbers.insert(key, number);
        self.targets.push(target);
        self.seen.push(0);
        number
    }

    /// Number of keys built from links.
    pub(crate) fn indexed_keys(&self) -> usize {
        self.indexed
    }

    /// Bytes held by the index (a lower bound on what the allocator holds).
    pub(crate) fn heap_bytes(&self) -> usize {
        let entry = size_of::<(K, u32)>() + 1;
        self.numbers.capacity() * entry
            + self.targets.capacity() * size_of::<Packed>()
            + self.seen.capacity() * size_of::<u64>()
            + self.group_members.capacity() * 4
            + self.groups.capacity() * 8
    }

    /// What `key` reconciles to, without marking anything.
    pub(crate) fn lookup(&self, key: K) -> Target<'_> {
        match self.numbers.get(&key) {
            Some(&n) => self.target(n),
            None => Target::None,
        }
    }

    fn mark(&mut self, number: u32, segment: u32) -> bool {
        if segment < 64 {
            let bit = 1u64 << segment;
            let mask = &mut self.seen[number as usize];
            let duplicate = *mask & bit != 0;
            *mask |= bit;
            duplicate
        } else {
            !self.seen_high.insert((number, segment))
        }
    }

    fn target(&self, number: u32) -> Target<'_> {
        unpack(
            &self.targets[number as usize],
            &self.group_members,
            &self.groups,
        )
    }
}

/// The target a packed value (borrowed where it is stored) stands for.
pub(crate) fn unpack<'a>(
    packed: &'a Packed,
    group_members: &'a [u32],
    groups: &[(u32, u32)],
) -> Target<'a> {
    match *packed {
        NO_RECIPIENT => Target::None,
        AMBIGUOUS => Target::Ambiguous,
        p if p & GROUP != 0 => {
            let (start, len) = groups[(p & !GROUP) as usize];
            Target::Recipients(&group_members[start as usize..(start + len) as usize])
        }
        // A single recipient number is the packed value itself.
        _ => Target::Recipients(std::slice::from_ref(packed)),
    }
}
