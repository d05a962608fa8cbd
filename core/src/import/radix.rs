//! LSD radix sort of `u32` recipient numbers (per-segment adds are hundreds of thousands).

/// Sorts `values` ascending (three 11-bit passes; small inputs use the standard sort).
pub(crate) fn sort_u32(values: &mut Vec<u32>) {
    if values.len() < 4096 {
        values.sort_unstable();
        return;
    }
    let max = values.iter().copied().max().unwrap_or(0);
    let mut scratch = vec![0u32; values.len()];
    let mut shift = 0;
    while shift < 32 && (shift == 0 || max >> shift != 0) {
        let mut counts = [0usize; 2048];
        for &v in values.iter() {
            counts[((v >> shift) & 2047) as usize] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for &v in values.iter() {
            let d = ((v >> shift) & 2047) as usize;
            scratch[counts[d]] = v;
            counts[d] += 1;
        }
        std::mem::swap(values, &mut scratch);
        shift += 11;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sorts_like_the_standard_sort(
            mut values in proptest::collection::vec(any::<u32>(), 0..9000),
            small in any::<bool>(),
        ) {
            if small {
                values.iter_mut().for_each(|v| *v %= 5000);
            }
            let mut expected = values.clone();
            expected.sort_unstable();
            super::sort_u32(&mut values);
            prop_assert_eq!(values, expected);
        }
    }
}
