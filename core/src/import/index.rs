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
const NO_RECIPIENT: Packed = u32::MAX;
const AMBIGUOUS: Packed = u32::MAX - 1;
const GROUP: Packed = 0x8000_0000;
/// Largest recipient number a packed target holds.
pub(crate) const MAX_RID: u32 = GROUP - 1;

/// What a key reconciles to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// No recipient has this identifier.
    None,
    /// Several recipients and the policy is `skip` (or `latest` without times).
    Ambiguous,
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
        for group in links.chunk_by(|a, b| a.key == b.key) {
            let target = match (group, policy) {
                ([one], _) => one.rid,
                (_, AmbiguityPolicy::Latest) if timed => {
                    // Most recent wins; among equals the smallest recipient (rids follow id order).
                    group
                        .iter()
                        .max_by(|a, b| a.seen.cmp(&b.seen).then(b.rid.cmp(&a.rid)))
                        .map_or(NO_RECIPIENT, |l| l.rid)
                }
                (_, AmbiguityPolicy::All) => {
                    let start = index.group_members.len() as u32;
                    index.group_members.extend(group.iter().map(|l| l.rid));
                    index.groups.push((start, group.len() as u32));
                    GROUP | (index.groups.len() as u32 - 1)
                }
                _ => AMBIGUOUS,
            };
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

    /// Looks `key` up for `segment` (a dense segment index): what it reconciles to, and whether
    /// the key was already seen for that segment (a duplicate). Marks it seen.
    pub(crate) fn probe(&mut self, key: K, segment: u32) -> (Target<'_>, bool) {
        let number = match self.numbers.get(&key) {
            Some(&n) => n,
            None => self.push(key, NO_RECIPIENT),
        };
        let duplicate = self.mark(number, segment);
        (self.target(number), duplicate)
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
        let slot = &self.targets[number as usize];
        match *slot {
            NO_RECIPIENT => Target::None,
            AMBIGUOUS => Target::Ambiguous,
            p if p & GROUP != 0 => {
                let (start, len) = self.groups[(p & !GROUP) as usize];
                Target::Recipients(&self.group_members[start as usize..(start + len) as usize])
            }
            // A single recipient number is the packed value itself.
            _ => Target::Recipients(std::slice::from_ref(slot)),
        }
    }
}
