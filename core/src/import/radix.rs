//! LSD radix sort of `u32` recipient numbers (per-segment adds are hundreds of thousands).

/// Sorts `values` ascending: as few passes of at most 12 bits as the largest value needs (two
/// up to 2^24: ten million recipients); small inputs use the standard sort. `scratch` is any
/// vector, reused from call to call (the two may trade buffers).
pub(crate) fn sort_u32(values: &mut Vec<u32>, scratch: &mut Vec<u32>) {
    if values.len() < 4096 {
        values.sort_unstable();
        return;
    }
    let max = values.iter().copied().max().unwrap_or(0);
    let bits = (u32::BITS - max.leading_zeros()).max(1);
    let passes = bits.div_ceil(12);
    let width = bits.div_ceil(passes);
    let digit = (1usize << width) - 1;
    // Every slot is written by each pass: only new slots are filled.
    scratch.truncate(values.len());
    scratch.resize(values.len(), 0);
    let mut counts = vec![0usize; digit + 1];
    for pass in 0..passes {
        let shift = pass * width;
        counts.fill(0);
        for &v in values.iter() {
            counts[(v >> shift) as usize & digit] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for &v in values.iter() {
            let d = (v >> shift) as usize & digit;
            scratch[counts[d]] = v;
            counts[d] += 1;
        }
        std::mem::swap(values, scratch);
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
            // A scratch of any length and content.
            let mut scratch = vec![7; values.len() / 3];
            super::sort_u32(&mut values, &mut scratch);
            prop_assert_eq!(&values, &expected);
            // Again with the scratch (and maybe the buffer) the first sort left.
            values.reverse();
            super::sort_u32(&mut values, &mut scratch);
            prop_assert_eq!(values, expected);
        }
    }
}
