//! [`RecipientKeys`]: the recipients a list gains or loses, sorted by id and held compactly.
//!
//! An import of millions of ids gives lists of millions of recipients; one [`RecipientKey`]
//! each (24 bytes) would be the largest allocation of the whole import. Integer ids are held as
//! offsets from the smallest (the import's own recipient numbers, moved in: no copy) or as
//! integers; only text ids need keys. Every form compares, prints and serializes as the same
//! sequence of keys (serde: a sequence of [`RecipientKey`]s, as a `Vec` would).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::recipients::RecipientKey;

/// Recipient keys in order (an import gives them sorted by id), compactly.
#[derive(Clone, Default)]
pub struct RecipientKeys(Repr);

#[derive(Clone)]
enum Repr {
    /// `base + offset` for each offset.
    Offsets { base: i64, offsets: Vec<u32> },
    /// Integer ids.
    Ints(Vec<i64>),
    /// Any keys.
    Keys(Vec<RecipientKey>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Ints(Vec::new())
    }
}

impl RecipientKeys {
    /// The integer ids `base + offset` (each of which fits an `i64`).
    pub(crate) fn offsets(base: i64, offsets: Vec<u32>) -> RecipientKeys {
        debug_assert!(
            offsets
                .iter()
                .all(|&o| base.checked_add(i64::from(o)).is_some())
        );
        RecipientKeys(Repr::Offsets { base, offsets })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Offsets { offsets, .. } => offsets.len(),
            Repr::Ints(ints) => ints.len(),
            Repr::Keys(keys) => keys.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Key `i`: an integer key is made on the fly, a text key is borrowed.
    pub fn get(&self, i: usize) -> Option<Cow<'_, RecipientKey>> {
        match &self.0 {
            Repr::Offsets { base, offsets } => offsets
                .get(i)
                .map(|&o| Cow::Owned(RecipientKey::Int(base + i64::from(o)))),
            Repr::Ints(ints) => ints.get(i).map(|&v| Cow::Owned(RecipientKey::Int(v))),
            Repr::Keys(keys) => keys.get(i).map(Cow::Borrowed),
        }
    }

    /// The keys in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { keys: self, at: 0 }
    }

    /// The integer ids in order, when every key is an integer.
    pub fn ints(&self) -> Option<impl ExactSizeIterator<Item = i64> + '_> {
        Some(match &self.0 {
            Repr::Offsets { base, offsets } => IntsOf::Offsets(*base, offsets.iter()),
            Repr::Ints(ints) => IntsOf::Ints(ints.iter()),
            Repr::Keys(keys) if keys.iter().all(|k| int(k).is_some()) => IntsOf::Keys(keys.iter()),
            Repr::Keys(_) => return None,
        })
    }

    /// The keys as a vector.
    pub fn to_vec(&self) -> Vec<RecipientKey> {
        self.iter().map(Cow::into_owned).collect()
    }

    /// Whether `key` is one of the keys (a binary search of integer ids; text keys, which
    /// need not be in order, are scanned).
    pub fn contains(&self, key: &RecipientKey) -> bool {
        match (&self.0, int(key)) {
            (Repr::Offsets { base, offsets }, Some(v)) => v
                .checked_sub(*base)
                .and_then(|o| u32::try_from(o).ok())
                .is_some_and(|o| offsets.binary_search(&o).is_ok()),
            (Repr::Ints(ints), Some(v)) => ints.binary_search(&v).is_ok(),
            (Repr::Offsets { .. } | Repr::Ints(_), None) => false,
            (Repr::Keys(keys), _) => keys.iter().any(|k| k == key),
        }
    }
}

/// The integer of an integer key (a text key is not one, even when it reads as one).
fn int(key: &RecipientKey) -> Option<i64> {
    match key {
        RecipientKey::Int(v) => Some(*v),
        RecipientKey::String(_) => None,
    }
}

/// The integers of [`RecipientKeys::ints`].
enum IntsOf<'a> {
    Offsets(i64, std::slice::Iter<'a, u32>),
    Ints(std::slice::Iter<'a, i64>),
    Keys(std::slice::Iter<'a, RecipientKey>),
}

impl Iterator for IntsOf<'_> {
    type Item = i64;

    #[inline]
    fn next(&mut self) -> Option<i64> {
        match self {
            IntsOf::Offsets(base, offsets) => offsets.next().map(|&o| *base + i64::from(o)),
            IntsOf::Ints(ints) => ints.next().copied(),
            IntsOf::Keys(keys) => keys.next().and_then(int),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = match self {
            IntsOf::Offsets(_, offsets) => offsets.len(),
            IntsOf::Ints(ints) => ints.len(),
            IntsOf::Keys(keys) => keys.len(),
        };
        (len, Some(len))
    }
}

impl ExactSizeIterator for IntsOf<'_> {}

/// The keys of a [`RecipientKeys`], in order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    keys: &'a RecipientKeys,
    at: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, RecipientKey>;

    fn next(&mut self) -> Option<Cow<'a, RecipientKey>> {
        let key = self.keys.get(self.at)?;
        self.at += 1;
        Some(key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.keys.len() - self.at;
        (len, Some(len))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a RecipientKeys {
    type Item = Cow<'a, RecipientKey>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<Vec<RecipientKey>> for RecipientKeys {
    /// Integers when every key is one.
    fn from(keys: Vec<RecipientKey>) -> RecipientKeys {
        if keys.iter().all(|k| int(k).is_some()) {
            RecipientKeys(Repr::Ints(keys.iter().filter_map(int).collect()))
        } else {
            RecipientKeys(Repr::Keys(keys))
        }
    }
}

impl FromIterator<RecipientKey> for RecipientKeys {
    fn from_iter<T: IntoIterator<Item = RecipientKey>>(keys: T) -> RecipientKeys {
        RecipientKeys::from(keys.into_iter().collect::<Vec<_>>())
    }
}

impl PartialEq for RecipientKeys {
    fn eq(&self, other: &RecipientKeys) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for RecipientKeys {}

impl PartialEq<[RecipientKey]> for RecipientKeys {
    fn eq(&self, other: &[RecipientKey]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| *a == *b)
    }
}

impl<const N: usize> PartialEq<[RecipientKey; N]> for RecipientKeys {
    fn eq(&self, other: &[RecipientKey; N]) -> bool {
        *self == other[..]
    }
}

impl PartialEq<Vec<RecipientKey>> for RecipientKeys {
    fn eq(&self, other: &Vec<RecipientKey>) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for RecipientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for RecipientKeys {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for RecipientKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RecipientKeys, D::Error> {
        Vec::<RecipientKey>::deserialize(deserializer).map(RecipientKeys::from)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key() -> impl Strategy<Value = RecipientKey> {
        prop_oneof![
            // Mostly near each other (the offset form), some anywhere.
            4 => (-1000i64..1000).prop_map(RecipientKey::Int),
            1 => any::<i64>().prop_map(RecipientKey::Int),
            1 => "[a-z]{1,4}".prop_map(RecipientKey::String),
        ]
    }

    /// The same keys in every form.
    fn forms(keys: &[RecipientKey]) -> Vec<RecipientKeys> {
        let mut forms = vec![
            RecipientKeys(Repr::Keys(keys.to_vec())),
            RecipientKeys::from(keys.to_vec()),
        ];
        let ints: Option<Vec<i64>> = keys.iter().map(int).collect();
        if let Some(ints) = ints {
            let base = ints.iter().copied().min().unwrap_or(0);
            let offsets: Option<Vec<u32>> = ints
                .iter()
                .map(|&v| v.checked_sub(base).and_then(|o| u32::try_from(o).ok()))
                .collect();
            if let Some(offsets) = offsets.filter(|_| !ints.is_empty()) {
                forms.push(RecipientKeys::offsets(base, offsets));
            }
        }
        forms
    }

    #[test]
    fn offsets_read_as_their_integers() {
        let keys = RecipientKeys::offsets(-2, vec![0, 2, 9]);
        assert_eq!(keys, [-2, 0, 7].map(RecipientKey::Int));
        assert_eq!(keys.get(1).as_deref(), Some(&RecipientKey::Int(0)));
        assert_eq!(keys.get(3), None);
        assert_eq!(keys.ints().unwrap().collect::<Vec<_>>(), [-2, 0, 7]);
        assert!(keys.contains(&RecipientKey::Int(7)));
        assert!(!keys.contains(&RecipientKey::Int(6)));
        assert!(!keys.contains(&RecipientKey::Int(i64::MIN)));
        assert!(!keys.contains(&RecipientKey::String("x".into())));
        assert_eq!(serde_json::to_string(&keys).unwrap(), "[-2,0,7]");
        assert_eq!(format!("{keys:?}"), "[Int(-2), Int(0), Int(7)]");
    }

    #[test]
    fn text_keys_have_no_integers() {
        let keys =
            RecipientKeys::from(vec![RecipientKey::Int(1), RecipientKey::String("a".into())]);
        assert!(keys.ints().is_none());
        assert!(keys.contains(&RecipientKey::String("a".into())));
        assert_eq!(keys.len(), 2);
    }

    proptest! {
        /// Every form holds the same sequence, compares equal, and serializes as a `Vec` of
        /// keys does (and reads back).
        #[test]
        fn every_form_is_the_same_sequence(mut keys in proptest::collection::vec(key(), 0..20)) {
            keys.sort_unstable();
            keys.dedup();
            let json = serde_json::to_string(&keys).unwrap();
            for form in forms(&keys) {
                prop_assert_eq!(form.len(), keys.len());
                prop_assert_eq!(form.to_vec(), keys.clone());
                prop_assert_eq!(&form, &keys);
                prop_assert_eq!(form.iter().len(), keys.len());
                prop_assert_eq!(serde_json::to_string(&form).unwrap(), json.clone());
                let back: RecipientKeys = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(&back, &form);
                for key in &keys {
                    prop_assert!(form.contains(key));
                }
                let ints: Option<Vec<i64>> = keys.iter().map(int).collect();
                prop_assert_eq!(form.ints().map(Iterator::collect::<Vec<_>>), ints);
            }
        }
    }
}
