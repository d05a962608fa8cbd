//! ASCII digits read eight at a time from a little-endian `u64` (the first byte in the low
//! bits): whether they are digits, how many lead, and their value, without a branch per byte;
//! and sixteen at a time with SSE2 on x86_64 (the crate's other `unsafe` block, a call of a
//! function that needs SSE2 where the build enables it).

/// Eight ASCII zeros.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Whether the 8 bytes of `chunk` are all ASCII digits.
#[inline(always)]
pub(crate) fn all_digits8(chunk: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    (chunk & HIGH) | (chunk.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4
        == 0x3333_3333_3333_3333
}

/// The value of 8 ASCII digits (meaningless when they are not all digits).
#[inline(always)]
pub(crate) fn value8(chunk: u64) -> u64 {
    // Lemire's eight-digit parse: pairs, then quadruples, then the whole.
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = chunk.wrapping_sub(ZEROS);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    ((v & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2)))
        >> 32
}

/// How many ASCII digits `chunk` starts with (0 to 8).
#[inline(always)]
pub(crate) fn leading_digits8(chunk: u64) -> usize {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Digits become 0..=9. A byte is not a digit when that is 10 or more: adding 0x76 to its
    // low seven bits (never a carry into the next byte) sets its top bit, or it had it.
    let x = chunk ^ ZEROS;
    let not_digit = (((x & LOW7) + 0x7676_7676_7676_7676) | x) & HIGH;
    (not_digit.trailing_zeros() / 8) as usize
}

/// The value of the first `len` (1 to 8) bytes of `chunk`, ASCII digits.
#[inline(always)]
pub(crate) fn value_of_first(chunk: u64, len: usize) -> u64 {
    debug_assert!((1..=8).contains(&len));
    if len == 8 {
        return value8(chunk);
    }
    // The digits moved to the top bytes, zeros below them: the same number, zero-padded.
    value8(chunk << (8 * (8 - len)) | ZEROS >> (8 * len))
}

/// The value of 16 ASCII digits, and whether they all are (the value is meaningless when they
/// are not). With SSE2 (every x86_64) in a few vector instructions; else as two words.
#[inline(always)]
pub(crate) fn value16(bytes: &[u8; 16]) -> (u64, bool) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `sse2::value16` needs SSE2, which this build enables (the `cfg` above).
        #[allow(unsafe_code)]
        unsafe {
            sse2::value16(u128::from_le_bytes(*bytes))
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    value16_words(bytes)
}

/// [`value16`] as two words of eight digits.
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn value16_words(bytes: &[u8; 16]) -> (u64, bool) {
    let (a, b) = bytes.split_at(8);
    let a = u64::from_le_bytes(a.try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    (
        value8(a).wrapping_mul(100_000_000).wrapping_add(value8(b)),
        all_digits8(a) & all_digits8(b),
    )
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        _mm_add_epi16, _mm_and_si128, _mm_cmpeq_epi8, _mm_cvtsi128_si32, _mm_madd_epi16,
        _mm_max_epu8, _mm_movemask_epi8, _mm_mullo_epi16, _mm_packs_epi32, _mm_set_epi64x,
        _mm_set1_epi8, _mm_set1_epi16, _mm_set1_epi32, _mm_srli_epi16, _mm_srli_si128,
        _mm_sub_epi8,
    };

    /// [`super::value16`] of the 16 bytes of `word` (the first in the low byte): the digits
    /// less `'0'` (a byte above 9 is not a digit), then pairs, fours and eights of digits
    /// combined by multiply-adds.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn value16(word: u128) -> (u64, bool) {
        let v = _mm_set_epi64x((word >> 64) as i64, word as i64);
        let x = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let nine = _mm_set1_epi8(9);
        let digits = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(x, nine), nine)) == 0xFFFF;
        // 16-bit lanes: the first digit of each pair times 10 plus the second (0..=99).
        let pairs = _mm_add_epi16(
            _mm_mullo_epi16(_mm_and_si128(x, _mm_set1_epi16(0xFF)), _mm_set1_epi16(10)),
            _mm_srli_epi16(x, 8),
        );
        // 32-bit lanes: pairs of pairs (0..=9999), packed back to 16 bits, then pairs of those
        // (0..=99_999_999).
        let fours = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0001_0064));
        let fours = _mm_packs_epi32(fours, fours);
        let eights = _mm_madd_epi16(fours, _mm_set1_epi32(0x0001_2710));
        let high = _mm_cvtsi128_si32(eights) as u32;
        let low = _mm_cvtsi128_si32(_mm_srli_si128(eights, 4)) as u32;
        (u64::from(high) * 100_000_000 + u64::from(low), digits)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn word(bytes: [u8; 8]) -> u64 {
        u64::from_le_bytes(bytes)
    }

    proptest! {
        #[test]
        fn agrees_with_a_byte_loop(bytes in proptest::array::uniform8(prop_oneof![
            4 => b'0'..=b'9',
            1 => any::<u8>(),
        ])) {
            let run = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            prop_assert_eq!(leading_digits8(word(bytes)), run);
            prop_assert_eq!(all_digits8(word(bytes)), run == 8);
            for len in 1..=run {
                let expected = bytes[..len].iter().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
                prop_assert_eq!(value_of_first(word(bytes), len), expected);
            }
        }
    }

    proptest! {
        #[test]
        fn sixteen_digits_read_as_two_words(bytes in proptest::array::uniform16(prop_oneof![
            8 => b'0'..=b'9',
            1 => any::<u8>(),
        ])) {
            let (value, digits) = value16(&bytes);
            let (expected, all) = value16_words(&bytes);
            prop_assert_eq!(digits, all);
            prop_assert_eq!(digits, bytes.iter().all(u8::is_ascii_digit));
            if digits {
                prop_assert_eq!(value, expected);
                let text = std::str::from_utf8(&bytes).unwrap();
                prop_assert_eq!(value, text.parse::<u64>().unwrap());
            }
        }
    }

    #[test]
    fn edges() {
        assert_eq!(value16(b"9999999999999999"), (9_999_999_999_999_999, true));
        assert_eq!(value16(b"0000000000000001"), (1, true));
        assert!(!value16(b"999999999999999:").1);
        assert!(!value16(b"/000000000000000").1);
        assert_eq!(leading_digits8(word(*b"12345678")), 8);
        assert_eq!(leading_digits8(word(*b"/0123456")), 0);
        assert_eq!(leading_digits8(word(*b"9:000000")), 1);
        assert_eq!(leading_digits8(word([b'7', 0xB9, 0, 0, 0, 0, 0, 0])), 1);
        assert_eq!(value_of_first(word(*b"99999999"), 8), 99_999_999);
        assert_eq!(value_of_first(word(*b"0012,xyz"), 4), 12);
    }
}
