//! Hashed ids: SHA-256 digests of normalized emails or phone numbers.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{IdError, IdKind, IdReason};

/// A SHA-256 digest, the fixed-size key behind every hashed identifier.
///
/// Its text form depends on the profile that produced it: 64 lowercase hex characters
/// ([`HashedId::to_hex`]) or 44 characters of padded standard base64 ([`HashedId::to_base64`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HashedId([u8; 32]);

const HEX_DETAIL: &str = "a hashed id is 64 hex characters";
const B64_DETAIL: &str = "a base64 hashed id is 44 characters of padded standard base64";
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl HashedId {
    /// Length of the hex form.
    pub const HEX_LEN: usize = 64;
    /// Length of the padded base64 form.
    pub const BASE64_LEN: usize = 44;

    /// Wraps a raw digest.
    pub fn from_digest(digest: [u8; 32]) -> HashedId {
        HashedId(digest)
    }

    /// The raw digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex characters in any case.
    ///
    /// Reasons: `empty`; `bad_char` (with the offset of the first non-hex byte); `bad_length`.
    pub fn parse_hex(bytes: &[u8]) -> Result<HashedId, IdError> {
        if bytes.is_empty() {
            return Err(IdError::new(IdKind::HashedId, IdReason::Empty, HEX_DETAIL));
        }
        if let Some(at) = bytes.iter().position(|b| !b.is_ascii_hexdigit()) {
            return Err(IdError::at(
                IdKind::HashedId,
                IdReason::BadChar,
                at,
                HEX_DETAIL,
            ));
        }
        if bytes.len() != Self::HEX_LEN {
            return Err(IdError::new(
                IdKind::HashedId,
                IdReason::BadLength,
                HEX_DETAIL,
            ));
        }
        let mut digest = [0u8; 32];
        for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
            *out = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        Ok(HashedId(digest))
    }

    /// Parses 44 characters of padded standard base64 (alphabet `A-Z a-z 0-9 + /`).
    ///
    /// Reasons: `empty`; `bad_length`; `bad_char` (not canonical base64 of 32 bytes).
    pub fn parse_base64(bytes: &[u8]) -> Result<HashedId, IdError> {
        if bytes.is_empty() {
            return Err(IdError::new(IdKind::HashedId, IdReason::Empty, B64_DETAIL));
        }
        if bytes.len() != Self::BASE64_LEN {
            return Err(IdError::new(
                IdKind::HashedId,
                IdReason::BadLength,
                B64_DETAIL,
            ));
        }
        let mut digest = [0u8; 32];
        // 44 padded characters decode to at most 33 bytes; the buffer must hold the estimate.
        let mut buf = [0u8; 33];
        match STANDARD.decode_slice(bytes, &mut buf) {
            Ok(32) => {
                digest.copy_from_slice(&buf[..32]);
                Ok(HashedId(digest))
            }
            Ok(_) => Err(IdError::new(
                IdKind::HashedId,
                IdReason::BadLength,
                B64_DETAIL,
            )),
            Err(base64::DecodeSliceError::DecodeError(base64::DecodeError::InvalidByte(at, _))) => {
                Err(IdError::at(
                    IdKind::HashedId,
                    IdReason::BadChar,
                    at,
                    B64_DETAIL,
                ))
            }
            Err(_) => Err(IdError::new(
                IdKind::HashedId,
                IdReason::BadChar,
                B64_DETAIL,
            )),
        }
    }

    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(Self::HEX_LEN);
        self.write_hex(&mut out);
        out
    }

    /// Appends the 64 lowercase hex characters to `out`.
    pub fn write_hex(&self, out: &mut String) {
        for b in self.0 {
            out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(b & 0xf)]));
        }
    }

    /// 44 characters of padded standard base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

impl fmt::Debug for HashedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashedId({})", self.to_hex())
    }
}

/// The hex form: the default text form of a digest.
impl fmt::Display for HashedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HEX: &str = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b";

    #[test]
    fn hex_in_any_case_is_lowercased() {
        let upper = HashedId::parse_hex(HEX.to_uppercase().as_bytes()).unwrap();
        let lower = HashedId::parse_hex(HEX.as_bytes()).unwrap();
        assert_eq!(upper, lower);
        assert_eq!(upper.to_hex(), HEX);
        assert_eq!(upper.digest()[0], 0x97);
    }

    #[test]
    fn base64_matches_hex() {
        let id = HashedId::parse_base64(b"lz3+Rj7IV4X1+Vr1ujkG7tstkxwk5pgkqJ6mXbpOgTs=").unwrap();
        assert_eq!(id.to_hex(), HEX);
        assert_eq!(
            id.to_base64(),
            "lz3+Rj7IV4X1+Vr1ujkG7tstkxwk5pgkqJ6mXbpOgTs="
        );
    }

    #[test]
    fn rejections_carry_reason_and_offset() {
        let (long, bad_last, bad_first) = (
            format!("{HEX}0"),
            format!("{}g", &HEX[..63]),
            format!(" {}", &HEX[1..]),
        );
        let cases: &[(&[u8], IdReason, Option<usize>)] = &[
            (b"", IdReason::Empty, None),
            (&HEX.as_bytes()[..63], IdReason::BadLength, None),
            (long.as_bytes(), IdReason::BadLength, None),
            (bad_last.as_bytes(), IdReason::BadChar, Some(63)),
            (bad_first.as_bytes(), IdReason::BadChar, Some(0)),
        ];
        for (input, reason, offset) in cases {
            let err = HashedId::parse_hex(input).unwrap_err();
            assert_eq!(
                (err.kind, err.reason, err.offset),
                (IdKind::HashedId, *reason, *offset),
                "{input:?}"
            );
        }
        let b64: &[(&[u8], IdReason)] = &[
            (b"", IdReason::Empty),
            (
                b"lz3+Rj7IV4X1+Vr1ujkG7tstkxwk5pgkqJ6mXbpOgTs",
                IdReason::BadLength,
            ),
            (
                b"lz3+Rj7IV4X1+Vr1ujkG7tstkxwk5pgkqJ6mXbpOgT!=",
                IdReason::BadChar,
            ),
            // URL-safe alphabet is not the standard one.
            (
                b"lz3-Rj7IV4X1-Vr1ujkG7tstkxwk5pgkqJ6mXbpOgTs=",
                IdReason::BadChar,
            ),
            // Non-zero trailing bits: not the canonical encoding of any digest.
            (
                b"lz3+Rj7IV4X1+Vr1ujkG7tstkxwk5pgkqJ6mXbpOgTt=",
                IdReason::BadChar,
            ),
        ];
        for (input, reason) in b64 {
            assert_eq!(
                HashedId::parse_base64(input).unwrap_err().reason,
                *reason,
                "{input:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn hex_and_base64_round_trip(digest in any::<[u8; 32]>()) {
            let id = HashedId::from_digest(digest);
            let hex = id.to_hex();
            prop_assert_eq!(hex.len(), 64);
            prop_assert!(hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            prop_assert_eq!(HashedId::parse_hex(hex.as_bytes()).unwrap(), id);
            prop_assert_eq!(HashedId::parse_hex(hex.to_uppercase().as_bytes()).unwrap(), id);
            let b64 = id.to_base64();
            prop_assert_eq!(b64.len(), 44);
            prop_assert_eq!(HashedId::parse_base64(b64.as_bytes()).unwrap(), id);
        }

        #[test]
        fn accepts_exactly_canonical_forms(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let hex_ok = bytes.len() == 64 && bytes.iter().all(u8::is_ascii_hexdigit);
            prop_assert_eq!(HashedId::parse_hex(&bytes).is_ok(), hex_ok);
            if let Ok(id) = HashedId::parse_base64(&bytes) {
                prop_assert_eq!(id.to_base64().into_bytes(), bytes);
            }
        }
    }
}
