//! Identifier kinds and why a value is not one.
//!
//! Each kind has a parser over bytes that either returns the identifier or an [`IdError`]: the
//! kind that was expected, a stable [`IdReason`] code (what reports count by) and, where it
//! applies, the byte offset of the offending character.

mod declared;
mod hashed;
mod visitor;

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use declared::DeclaredId;
pub use hashed::HashedId;
pub use visitor::VisitorId;

/// Which identifier kind a file's user id field holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserIdKind {
    /// 38-digit visitor ids (Audience Manager UUIDs, ECIDs).
    VisitorId,
    /// Declared ids (DPUUIDs, device ids) of a data source.
    #[default]
    DeclaredId,
}

/// A validated user id of one of the two kinds a file can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserId<'a> {
    /// A visitor id.
    Visitor(VisitorId),
    /// A declared id, borrowed from the input.
    Declared(DeclaredId<'a>),
}

impl UserIdKind {
    /// Validates `bytes` as a user id of this kind.
    pub fn parse(self, bytes: &[u8]) -> Result<UserId<'_>, IdError> {
        match self {
            UserIdKind::VisitorId => VisitorId::parse(bytes).map(UserId::Visitor),
            UserIdKind::DeclaredId => DeclaredId::parse(bytes).map(UserId::Declared),
        }
    }
}

impl fmt::Display for UserId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserId::Visitor(id) => id.fmt(f),
            UserId::Declared(id) => id.fmt(f),
        }
    }
}

/// The kind of value a parser expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// 38-digit Experience Cloud / Audience Manager visitor id.
    VisitorId,
    /// Declared id (DPUUID) of a data source.
    DeclaredId,
    /// SHA-256 digest, as hex or base64.
    HashedId,
    /// Raw email address to be normalized.
    Email,
    /// Raw phone number to be normalized.
    Phone,
}

impl IdKind {
    /// Name used in messages: `visitor id`, `declared id`, …
    pub fn describe(self) -> &'static str {
        match self {
            IdKind::VisitorId => "visitor id",
            IdKind::DeclaredId => "declared id",
            IdKind::HashedId => "hashed id",
            IdKind::Email => "email",
            IdKind::Phone => "phone number",
        }
    }
}

/// Stable reason code for a rejected value; reports count by these codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdReason {
    /// Nothing there (after trimming, where the kind trims).
    Empty,
    /// Longer than the kind allows.
    TooLong,
    /// A character the kind does not allow.
    BadChar,
    /// Not the exact length the kind requires.
    BadLength,
    /// A visitor id with something other than ASCII digits.
    NotDigits,
    /// Bytes that are not UTF-8.
    BadUtf8,
    /// An email that fails the validity rules of every profile.
    InvalidEmail,
    /// A phone number that is not E.164 after normalization.
    InvalidPhone,
    /// A national phone number and no default country code configured.
    NoCountryCode,
}

impl IdReason {
    /// All reasons, in a fixed order (the order reports list them in).
    pub const ALL: [IdReason; 9] = [
        IdReason::Empty,
        IdReason::TooLong,
        IdReason::BadChar,
        IdReason::BadLength,
        IdReason::NotDigits,
        IdReason::BadUtf8,
        IdReason::InvalidEmail,
        IdReason::InvalidPhone,
        IdReason::NoCountryCode,
    ];

    /// The snake_case code, as serialized: `empty`, `too_long`, …
    pub fn code(self) -> &'static str {
        match self {
            IdReason::Empty => "empty",
            IdReason::TooLong => "too_long",
            IdReason::BadChar => "bad_char",
            IdReason::BadLength => "bad_length",
            IdReason::NotDigits => "not_digits",
            IdReason::BadUtf8 => "bad_utf8",
            IdReason::InvalidEmail => "invalid_email",
            IdReason::InvalidPhone => "invalid_phone",
            IdReason::NoCountryCode => "no_country_code",
        }
    }
}

impl fmt::Display for IdReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A value rejected as an identifier of some kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[error("{}", self.message())]
pub struct IdError {
    /// What the value was supposed to be.
    pub kind: IdKind,
    /// Why it is not.
    pub reason: IdReason,
    /// Byte offset of the offending character in the input, where one is to blame.
    pub offset: Option<usize>,
    /// A short explanation for people (lower-case, no trailing period); never contains the value.
    pub detail: Cow<'static, str>,
}

impl IdError {
    pub(crate) fn new(kind: IdKind, reason: IdReason, detail: &'static str) -> IdError {
        IdError {
            kind,
            reason,
            offset: None,
            detail: Cow::Borrowed(detail),
        }
    }

    pub(crate) fn at(
        kind: IdKind,
        reason: IdReason,
        offset: usize,
        detail: &'static str,
    ) -> IdError {
        IdError {
            kind,
            reason,
            offset: Some(offset),
            detail: Cow::Borrowed(detail),
        }
    }

    fn message(&self) -> String {
        let mut msg = format!(
            "invalid {} ({}): {}",
            self.kind.describe(),
            self.reason,
            self.detail
        );
        if let Some(offset) = self.offset {
            msg.push_str(&format!(" at byte {offset}"));
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_match_serde_names() {
        for reason in IdReason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.code()));
            let back: IdReason = serde_json::from_str(&json).unwrap();
            assert_eq!(back, reason);
        }
    }

    #[test]
    fn message_names_kind_reason_and_offset_but_not_the_value() {
        let err = VisitorId::parse(b"1234567890123456789012345678901234567a").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid visitor id (not_digits): a visitor id is 38 ascii digits at byte 37"
        );
    }
}
