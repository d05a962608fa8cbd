//! Sixteen bytes at a time: with SSE2 on x86_64, else portable code (wasm32 included) that gives
//! the same answers (tested against each other). The SSE2 functions are the crate's `unsafe`
//! calls besides the prefetch hint: each is a call of a function that needs SSE2, behind a
//! `cfg` on SSE2 (which every x86_64 build enables), and none reads memory through a pointer.

use crate::digits::{all_digits8, value8};

/// The value of 16 ASCII digits, and whether they all are (the value is meaningless when they
/// are not).
#[inline(always)]
pub(crate) fn digits16(bytes: &[u8; 16]) -> (u64, bool) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `sse2::digits16` needs SSE2, which this build enables (the `cfg` above).
        #[allow(unsafe_code)]
        unsafe {
            sse2::digits16(u128::from_le_bytes(*bytes))
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    digits16_words(bytes)
}

/// [`digits16`] as two words of eight digits.
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn digits16_words(bytes: &[u8; 16]) -> (u64, bool) {
    let (a, b) = bytes.split_at(8);
    let a = u64::from_le_bytes(a.try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    (
        value8(a).wrapping_mul(100_000_000).wrapping_add(value8(b)),
        all_digits8(a) & all_digits8(b),
    )
}

/// Which of 16 bytes are line feeds, commas and printable ASCII (0x21..=0x7E): one bit per
/// byte, the first byte's lowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Classes {
    pub(crate) feeds: u32,
    pub(crate) commas: u32,
    pub(crate) printable: u32,
}

/// The [`Classes`] of 16 bytes.
#[inline(always)]
pub(crate) fn classes16(bytes: &[u8; 16]) -> Classes {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `sse2::classes16` needs SSE2, which this build enables (the `cfg` above).
        #[allow(unsafe_code)]
        unsafe {
            sse2::classes16(u128::from_le_bytes(*bytes))
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    classes16_bytes(bytes)
}

/// [`classes16`] a byte at a time.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn classes16_bytes(bytes: &[u8; 16]) -> Classes {
    let mut classes = Classes {
        feeds: 0,
        commas: 0,
        printable: 0,
    };
    for (i, &b) in bytes.iter().enumerate() {
        classes.feeds |= u32::from(b == b'\n') << i;
        classes.commas |= u32::from(b == b',') << i;
        classes.printable |= u32::from((0x21..=0x7E).contains(&b)) << i;
    }
    classes
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi16, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8,
        _mm_cvtsi128_si32, _mm_madd_epi16, _mm_max_epu8, _mm_movemask_epi8, _mm_mullo_epi16,
        _mm_packs_epi32, _mm_set_epi64x, _mm_set1_epi8, _mm_set1_epi16, _mm_set1_epi32,
        _mm_srli_epi16, _mm_srli_si128, _mm_sub_epi8,
    };

    /// The 16 bytes of `word` in a vector (the first in the low lane).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn vector(word: u128) -> __m128i {
        _mm_set_epi64x((word >> 64) as i64, word as i64)
    }

    /// [`super::digits16`]: the digits less `'0'` (a byte above 9 is not a digit), then pairs,
    /// fours and eights of digits combined by multiply-adds.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn digits16(word: u128) -> (u64, bool) {
        let x = _mm_sub_epi8(vector(word), _mm_set1_epi8(b'0' as i8));
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

    /// [`super::classes16`]: byte compares, each gathered into a bit mask.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn classes16(word: u128) -> super::Classes {
        let v = vector(word);
        let mask = |m: __m128i| _mm_movemask_epi8(m) as u32;
        // Signed compares: bytes from 0x80 are negative, below 0x21.
        let printable = _mm_and_si128(
            _mm_cmpgt_epi8(v, _mm_set1_epi8(0x20)),
            _mm_cmplt_epi8(v, _mm_set1_epi8(0x7F)),
        );
        super::Classes {
            feeds: mask(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8))),
            commas: mask(_mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8))),
            printable: mask(printable),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn sixteen_digits_read_as_two_words(bytes in proptest::array::uniform16(prop_oneof![
            8 => b'0'..=b'9',
            1 => any::<u8>(),
        ])) {
            let (value, digits) = digits16(&bytes);
            let (expected, all) = digits16_words(&bytes);
            prop_assert_eq!(digits, all);
            prop_assert_eq!(digits, bytes.iter().all(u8::is_ascii_digit));
            if digits {
                prop_assert_eq!(value, expected);
                let text = std::str::from_utf8(&bytes).unwrap();
                prop_assert_eq!(value, text.parse::<u64>().unwrap());
            }
        }

        #[test]
        fn classes_agree_with_a_byte_loop(bytes in proptest::array::uniform16(prop_oneof![
            2 => Just(b'\n'),
            2 => Just(b','),
            2 => prop_oneof![Just(0x20), Just(0x21), Just(0x7E), Just(0x7F), Just(0x80), Just(0xFF)],
            4 => any::<u8>(),
        ])) {
            prop_assert_eq!(classes16(&bytes), classes16_bytes(&bytes));
        }
    }

    #[test]
    fn edges() {
        assert_eq!(digits16(b"9999999999999999"), (9_999_999_999_999_999, true));
        assert_eq!(digits16(b"0000000000000001"), (1, true));
        assert!(!digits16(b"999999999999999:").1);
        assert!(!digits16(b"/000000000000000").1);
        let classes = classes16(b"12,\n a~\x7f\x80,,\x00\x21\x20\nz");
        assert_eq!(classes.feeds, 1 << 3 | 1 << 14);
        assert_eq!(classes.commas, 1 << 2 | 1 << 9 | 1 << 10);
        let printable = [0, 1, 2, 5, 6, 9, 10, 12, 15].map(|i| 1 << i);
        assert_eq!(classes.printable, printable.iter().sum::<u32>());
    }
}
