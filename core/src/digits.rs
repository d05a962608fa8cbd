//! ASCII digits read eight at a time from a little-endian `u64` (the first byte in the low
//! bits): whether they are digits, how many lead, and their value, without a branch per byte.
//! (Sixteen at a time: [`crate::simd::digits16`].)

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

    #[test]
    fn edges() {
        assert_eq!(leading_digits8(word(*b"12345678")), 8);
        assert_eq!(leading_digits8(word(*b"/0123456")), 0);
        assert_eq!(leading_digits8(word(*b"9:000000")), 1);
        assert_eq!(leading_digits8(word([b'7', 0xB9, 0, 0, 0, 0, 0, 0])), 1);
        assert_eq!(value_of_first(word(*b"99999999"), 8), 99_999_999);
        assert_eq!(value_of_first(word(*b"0012,xyz"), 4), 12);
    }
}
