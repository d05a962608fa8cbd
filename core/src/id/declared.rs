//! Declared ids (DPUUIDs): the identifiers a data source declares for its own users.

use std::fmt;

use super::{IdError, IdKind, IdReason};

/// A declared id: 1..=255 bytes of UTF-8 without `:`, `%3A` (any case), tab, CR or LF.
///
/// Case-sensitive and never trimmed: `" abc"` and `"abc"` are different ids. Borrowed from the
/// input it was validated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeclaredId<'a>(&'a str);

const DETAIL_LEN: &str = "a declared id is 1 to 255 bytes";
const DETAIL_CHAR: &str =
    "a declared id cannot contain ':', '%3A', tab, carriage return or line feed";
const DETAIL_UTF8: &str = "a declared id must be utf-8";

impl<'a> DeclaredId<'a> {
    /// Longest declared id, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates a declared id.
    ///
    /// Reasons: `empty`; `too_long` (over 255 bytes); `bad_utf8` (with the offset of the first
    /// invalid byte); `bad_char` (with the offset of the first `:`, `%3A`, tab, CR or LF).
    pub fn parse(bytes: &'a [u8]) -> Result<DeclaredId<'a>, IdError> {
        if bytes.is_empty() {
            return Err(IdError::new(
                IdKind::DeclaredId,
                IdReason::Empty,
                DETAIL_LEN,
            ));
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(IdError::new(
                IdKind::DeclaredId,
                IdReason::TooLong,
                DETAIL_LEN,
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            IdError::at(
                IdKind::DeclaredId,
                IdReason::BadUtf8,
                e.valid_up_to(),
                DETAIL_UTF8,
            )
        })?;
        if let Some(at) = forbidden_at(bytes) {
            return Err(IdError::at(
                IdKind::DeclaredId,
                IdReason::BadChar,
                at,
                DETAIL_CHAR,
            ));
        }
        Ok(DeclaredId(text))
    }

    /// The id as text.
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

/// Offset of the first forbidden byte or `%3A` sequence.
fn forbidden_at(bytes: &[u8]) -> Option<usize> {
    bytes.iter().enumerate().find_map(|(i, &b)| match b {
        b':' | b'\t' | b'\r' | b'\n' => Some(i),
        b'%' if bytes.get(i + 1) == Some(&b'3')
            && matches!(bytes.get(i + 2), Some(b'a' | b'A')) =>
        {
            Some(i)
        }
        _ => None,
    })
}

impl fmt::Display for DeclaredId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_and_keeps_case_and_spaces() {
        for text in [
            "abc",
            "ABC",
            " padded ",
            "ünïcødé",
            "a%3",
            "%3",
            "%",
            "a=b,c",
            "x".repeat(255).as_str(),
        ] {
            assert_eq!(DeclaredId::parse(text.as_bytes()).unwrap().as_str(), text);
        }
        assert_ne!(
            DeclaredId::parse(b"abc").unwrap(),
            DeclaredId::parse(b"ABC").unwrap()
        );
    }

    #[test]
    fn rejections_carry_reason_and_offset() {
        let long = "x".repeat(256);
        let cases: &[(&[u8], IdReason, Option<usize>)] = &[
            (b"", IdReason::Empty, None),
            (long.as_bytes(), IdReason::TooLong, None),
            (b"user:42", IdReason::BadChar, Some(4)),
            (b"user%3A42", IdReason::BadChar, Some(4)),
            (b"user%3a42", IdReason::BadChar, Some(4)),
            (b"a\tb", IdReason::BadChar, Some(1)),
            (b"a\rb", IdReason::BadChar, Some(1)),
            (b"ab\n", IdReason::BadChar, Some(2)),
            (b"ab\xc3", IdReason::BadUtf8, Some(2)),
            (b"\xff", IdReason::BadUtf8, Some(0)),
        ];
        for (input, reason, offset) in cases {
            let err = DeclaredId::parse(input).unwrap_err();
            assert_eq!(
                (err.kind, err.reason, err.offset),
                (IdKind::DeclaredId, *reason, *offset),
                "{input:?}"
            );
        }
    }

    #[test]
    fn length_counts_bytes_not_chars() {
        // 128 two-byte characters: 256 bytes.
        let text = "é".repeat(128);
        assert_eq!(
            DeclaredId::parse(text.as_bytes()).unwrap_err().reason,
            IdReason::TooLong
        );
        let text = "é".repeat(127);
        assert!(DeclaredId::parse(text.as_bytes()).is_ok());
    }

    proptest! {
        #[test]
        fn accepts_exactly_the_documented_set(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = std::str::from_utf8(&bytes).ok();
            let valid = matches!(text, Some(t) if !t.is_empty()
                && t.len() <= 255
                && !t.contains([':', '\t', '\r', '\n'])
                && !t.to_ascii_lowercase().contains("%3a"));
            prop_assert_eq!(DeclaredId::parse(&bytes).is_ok(), valid);
        }

        #[test]
        fn valid_text_comes_back_unchanged(text in "[^:\t\r\n%]{1,80}") {
            prop_assume!(text.len() <= 255);
            prop_assert_eq!(DeclaredId::parse(text.as_bytes()).unwrap().as_str(), text.as_str());
        }
    }
}
