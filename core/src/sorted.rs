//! Set operations on sorted, deduplicated slices (list memberships, snapshots).

use std::cmp::Ordering;

/// Sorted union of two sorted, deduplicated slices.
pub(crate) fn union<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => {
                out.push(a[i].clone());
                i += 1;
            }
            Ordering::Greater => {
                out.push(b[j].clone());
                j += 1;
            }
            Ordering::Equal => {
                out.push(a[i].clone());
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Elements of sorted `a` that are not in sorted `b`.
pub(crate) fn difference<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if j == b.len() || b[j] != *x {
            out.push(x.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn agree_with_btreeset(a in proptest::collection::btree_set(0u8..50, 0..30), b in proptest::collection::btree_set(0u8..50, 0..30)) {
            let (va, vb): (Vec<u8>, Vec<u8>) = (a.iter().copied().collect(), b.iter().copied().collect());
            prop_assert_eq!(union(&va, &vb), a.union(&b).copied().collect::<Vec<_>>());
            prop_assert_eq!(difference(&va, &vb), a.difference(&b).copied().collect::<Vec<_>>());
        }
    }
}
