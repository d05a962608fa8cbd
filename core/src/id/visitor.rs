//! Visitor ids: Experience Cloud ID (ECID / MID) and Audience Manager UUID.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{IdError, IdKind, IdReason};
use crate::digits::all_digits8;
use crate::simd::digits16;

/// A visitor id: exactly 38 ASCII digits, held as the integer they spell.
///
/// `10^38 - 1 < 2^128`, so every valid id fits a `u128`; formatting pads back to 38 digits, so
/// leading zeros survive a round trip. Ordering is numeric, which is also the bytewise order of
/// the 38-digit form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VisitorId(u128);

const LEN: usize = 38;
const HALF: usize = 19;
const TEN_POW_19: u64 = 10_000_000_000_000_000_000;
const DETAIL: &str = "a visitor id is 38 ascii digits";

impl VisitorId {
    /// Number of digits of every visitor id.
    pub const LEN: usize = LEN;

    /// Largest valid value: 38 nines.
    pub const MAX: VisitorId = VisitorId(10u128.pow(38) - 1);

    /// Parses exactly 38 ASCII digits.
    ///
    /// Reasons: `empty`; `not_digits` (with the offset of the first non-digit); `bad_length`.
    pub fn parse(bytes: &[u8]) -> Result<VisitorId, IdError> {
        if bytes.is_empty() {
            return Err(IdError::new(IdKind::VisitorId, IdReason::Empty, DETAIL));
        }
        if let Ok(digits) = <&[u8; LEN]>::try_from(bytes)
            && let Some(id) = VisitorId::from_digits(digits)
        {
            return Ok(id);
        }
        if let Some(at) = bytes.iter().position(|b| !b.is_ascii_digit()) {
            return Err(IdError::at(
                IdKind::VisitorId,
                IdReason::NotDigits,
                at,
                DETAIL,
            ));
        }
        Err(IdError::new(IdKind::VisitorId, IdReason::BadLength, DETAIL))
    }

    /// The id 38 ASCII digits spell; `None` if any byte is not a digit ([`VisitorId::parse`]
    /// then says why). Branch-free but for the final check: both 19-digit halves fit a u64, each
    /// read as three overlapping eight-byte words.
    #[inline(always)]
    pub fn from_digits(digits: &[u8; LEN]) -> Option<VisitorId> {
        let (hi, hi_ok) = value19(digits[..HALF].try_into().expect("19 bytes"));
        let (lo, lo_ok) = value19(digits[HALF..].try_into().expect("19 bytes"));
        (hi_ok & lo_ok).then(|| VisitorId(u128::from(hi) * u128::from(TEN_POW_19) + u128::from(lo)))
    }

    /// Builds a visitor id from its integer value; `None` above [`VisitorId::MAX`].
    pub fn from_u128(value: u128) -> Option<VisitorId> {
        (value <= Self::MAX.0).then_some(VisitorId(value))
    }

    /// The integer value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The value as (high, low) 64-bit halves: the 8-byte-aligned form match tables key on.
    pub fn halves(self) -> [u64; 2] {
        [(self.0 >> 64) as u64, self.0 as u64]
    }

    /// The 38-digit ASCII form, zero-padded.
    pub fn to_digits(self) -> [u8; LEN] {
        let mut out = [b'0'; LEN];
        let hi = (self.0 / u128::from(TEN_POW_19)) as u64;
        let lo = (self.0 % u128::from(TEN_POW_19)) as u64;
        write19(hi, &mut out[..HALF]);
        write19(lo, &mut out[HALF..]);
        out
    }
}

/// The value of 19 bytes read as ASCII digits, and whether they all are. 19 digits never
/// overflow a u64 (10^19 - 1 < 2^64). The word at 0 and the 16 bytes from 3 cover every byte:
/// the value is the first three digits, then the sixteen from 3.
#[inline(always)]
fn value19(digits: &[u8; HALF]) -> (u64, bool) {
    let first: [u8; 8] = digits[..8].try_into().expect("8 bytes");
    let (tail, tail_ok) = digits16(digits[3..].try_into().expect("16 bytes"));
    let ok = all_digits8(u64::from_le_bytes(first)) & tail_ok;
    let digit = |i: usize| u64::from(digits[i].wrapping_sub(b'0'));
    let head = digit(0) * 100 + digit(1) * 10 + digit(2);
    // Wrapping: the value of bytes that are not all digits is meaningless (and dropped).
    let value = head.wrapping_mul(10_000_000_000_000_000).wrapping_add(tail);
    (value, ok)
}

fn write19(mut value: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for VisitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.to_digits();
        // Only ASCII digits were written.
        f.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for VisitorId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<VisitorId, IdError> {
        VisitorId::parse(s.as_bytes())
    }
}

/// Serialized as the 38-digit string: the value does not fit a JSON (or JS) number.
impl Serialize for VisitorId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VisitorId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<VisitorId, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_and_formats_with_leading_zeros() {
        let text = "00000000000000000000000000000000000042";
        let id = VisitorId::parse(text.as_bytes()).unwrap();
        assert_eq!(id.as_u128(), 42);
        assert_eq!(id.to_string(), text);
    }

    #[test]
    fn documented_example_round_trips() {
        let text = "59767559181262060060278870901087098252";
        let id: VisitorId = text.parse().unwrap();
        assert_eq!(id.as_u128(), 59767559181262060060278870901087098252);
        assert_eq!(id.to_string(), text);
    }

    #[test]
    fn extremes() {
        let nines = "9".repeat(38);
        assert_eq!(VisitorId::parse(nines.as_bytes()).unwrap(), VisitorId::MAX);
        assert_eq!(VisitorId::parse(&[b'0'; 38]).unwrap().as_u128(), 0);
        assert_eq!(VisitorId::from_u128(VisitorId::MAX.as_u128() + 1), None);
    }

    #[test]
    fn rejections_carry_reason_and_offset() {
        let cases: &[(&[u8], IdReason, Option<usize>)] = &[
            (b"", IdReason::Empty, None),
            (
                b"1234567890123456789012345678901234567",
                IdReason::BadLength,
                None,
            ),
            (
                b"123456789012345678901234567890123456789",
                IdReason::BadLength,
                None,
            ),
            (
                b"12345678901234567890123456789012345678a",
                IdReason::NotDigits,
                Some(38),
            ),
            (
                b"1234567890123456789a123456789012345678",
                IdReason::NotDigits,
                Some(19),
            ),
            (
                b"a234567890123456789012345678901234567",
                IdReason::NotDigits,
                Some(0),
            ),
            (
                b"-1234567890123456789012345678901234567",
                IdReason::NotDigits,
                Some(0),
            ),
            (
                b" 1234567890123456789012345678901234567",
                IdReason::NotDigits,
                Some(0),
            ),
            (
                b"\xff234567890123456789012345678901234567",
                IdReason::NotDigits,
                Some(0),
            ),
            // Fullwidth digits are not ASCII digits.
            (
                "１2345678901234567890123456789012345".as_bytes(),
                IdReason::NotDigits,
                Some(0),
            ),
        ];
        for (input, reason, offset) in cases {
            let err = VisitorId::parse(input).unwrap_err();
            assert_eq!(
                (err.kind, err.reason, err.offset),
                (IdKind::VisitorId, *reason, *offset),
                "{input:?}"
            );
        }
    }

    #[test]
    fn serde_uses_the_digit_string() {
        let id = VisitorId::from_u128(7).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"00000000000000000000000000000000000007\"");
        assert_eq!(serde_json::from_str::<VisitorId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<VisitorId>("\"7\"").is_err());
    }

    proptest! {
        #[test]
        fn round_trips_every_value(value in 0u128..=VisitorId::MAX.as_u128()) {
            let id = VisitorId::from_u128(value).unwrap();
            let digits = id.to_digits();
            prop_assert_eq!(digits.len(), 38);
            prop_assert_eq!(VisitorId::parse(&digits).unwrap(), id);
            prop_assert_eq!(format!("{value:038}"), id.to_string());
        }

        #[test]
        fn one_byte_that_is_not_a_digit_anywhere_is_refused(
            text in "[0-9]{38}",
            at in 0usize..38,
            byte in prop_oneof![Just(b'/'), Just(b':'), Just(b' '), Just(0u8), 0x80u8..=0xFF, any::<u8>()],
        ) {
            let mut bytes: [u8; 38] = text.as_bytes().try_into().unwrap();
            bytes[at] = byte;
            let expected = std::str::from_utf8(&bytes).ok().and_then(|t| {
                t.bytes().all(|b| b.is_ascii_digit()).then(|| t.parse::<u128>().unwrap())
            });
            prop_assert_eq!(VisitorId::from_digits(&bytes).map(VisitorId::as_u128), expected);
            prop_assert_eq!(VisitorId::parse(&bytes).ok().map(VisitorId::as_u128), expected);
        }

        #[test]
        fn agrees_with_std_on_digit_strings(text in "[0-9]{38}") {
            let expected: u128 = text.parse().unwrap();
            prop_assert_eq!(VisitorId::parse(text.as_bytes()).unwrap().as_u128(), expected);
        }

        #[test]
        fn never_panics_and_accepts_only_38_digits(bytes in proptest::collection::vec(any::<u8>(), 0..50)) {
            let valid = bytes.len() == 38 && bytes.iter().all(u8::is_ascii_digit);
            prop_assert_eq!(VisitorId::parse(&bytes).is_ok(), valid);
        }

        #[test]
        fn order_is_numeric_and_bytewise(a in 0u128..=VisitorId::MAX.as_u128(), b in 0u128..=VisitorId::MAX.as_u128()) {
            let (x, y) = (VisitorId::from_u128(a).unwrap(), VisitorId::from_u128(b).unwrap());
            prop_assert_eq!(x.cmp(&y), x.to_digits().cmp(&y.to_digits()));
        }
    }
}
