//! Normalization profiles: raw email or phone → normalized string → SHA-256 digest.
//!
//! A [`Profile`] is a named, versioned set of rules; a name never changes meaning once released
//! (a changed rule is a new version). Every profile shares the email validity rules of
//! `normalize/email.rs`: a value that fails them is rejected with `invalid_email`, never hashed as-is.
//!
//! | profile | email | phone | digest text |
//! |---|---|---|---|
//! | `adobe-v1` (default) | trim, lowercase | E.164 `+` and digits | lowercase hex |
//! | `google-v1` | remove all whitespace, lowercase; gmail.com and googlemail.com: drop dots and `+tag` in the local part | E.164 | lowercase hex |
//! | `uid2-v1` | trim, lowercase; gmail.com only: drop dots and `+tag` | E.164 | base64 of the raw digest |
//! | `meta-v1` | trim, lowercase | digits only, no `+` | lowercase hex |

mod email;
mod phone;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::id::{HashedId, IdError};

pub use phone::{CountryCode, InvalidCountryCode, PhoneOptions};

/// A named, versioned normalization profile.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "&str", into = "&'static str")]
pub enum Profile {
    /// Adobe (Experience Platform / Audience Manager) hashed emails: trim, lowercase, hex.
    #[default]
    AdobeV1,
    /// Google Customer Match: gmail/googlemail dot and `+tag` removal, hex.
    GoogleV1,
    /// Unified ID 2.0: gmail-only dot and `+tag` removal, base64 digest.
    Uid2V1,
    /// Meta custom audiences: phone digits without `+`, hex.
    MetaV1,
}

/// How a digest is written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestEncoding {
    /// 64 lowercase hex characters.
    Hex,
    /// 44 characters of padded standard base64.
    Base64,
}

/// Which mailbox providers get dots and `+tag` removed from the local part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GmailRule {
    None,
    GmailOnly,
    GmailAndGooglemail,
}

/// The rules a profile applies; one row of the table in the module docs.
#[derive(Debug, Clone, Copy)]
struct Rules {
    /// Remove whitespace anywhere instead of only trimming the ends.
    strip_all_whitespace: bool,
    gmail: GmailRule,
    /// Write phones as `+<digits>` (E.164) rather than bare digits.
    phone_plus: bool,
    encoding: DigestEncoding,
}

/// A normalized identifier: the exact string that was hashed, and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Normalized {
    /// The normalized text (e.g. `test@example.com`, `+18005550100`).
    pub value: String,
    /// SHA-256 of `value`'s UTF-8 bytes.
    pub digest: HashedId,
    /// How the profile writes the digest as text.
    pub encoding: DigestEncoding,
}

impl Normalized {
    /// The digest in the profile's text encoding.
    pub fn digest_text(&self) -> String {
        match self.encoding {
            DigestEncoding::Hex => self.digest.to_hex(),
            DigestEncoding::Base64 => self.digest.to_base64(),
        }
    }
}

/// A profile name that is not one of [`Profile::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown normalization profile {name:?} (known: adobe-v1, google-v1, uid2-v1, meta-v1)")]
pub struct UnknownProfile {
    /// The name that was given.
    pub name: String,
}

impl Profile {
    /// Every profile, in a fixed order.
    pub const ALL: [Profile; 4] = [
        Profile::AdobeV1,
        Profile::GoogleV1,
        Profile::Uid2V1,
        Profile::MetaV1,
    ];

    /// The profile's name: `adobe-v1`, `google-v1`, `uid2-v1`, `meta-v1`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::AdobeV1 => "adobe-v1",
            Profile::GoogleV1 => "google-v1",
            Profile::Uid2V1 => "uid2-v1",
            Profile::MetaV1 => "meta-v1",
        }
    }

    fn rules(self) -> Rules {
        use DigestEncoding::{Base64, Hex};
        use GmailRule::{GmailAndGooglemail, GmailOnly, None};
        let (strip_all_whitespace, gmail, phone_plus, encoding) = match self {
            Profile::AdobeV1 => (false, None, true, Hex),
            Profile::GoogleV1 => (true, GmailAndGooglemail, true, Hex),
            Profile::Uid2V1 => (false, GmailOnly, true, Base64),
            Profile::MetaV1 => (false, None, false, Hex),
        };
        Rules {
            strip_all_whitespace,
            gmail,
            phone_plus,
            encoding,
        }
    }

    /// How this profile writes digests.
    pub fn encoding(self) -> DigestEncoding {
        self.rules().encoding
    }

    /// Normalizes and hashes an email address.
    ///
    /// Reasons: `empty` (nothing but whitespace), `invalid_email`.
    pub fn normalize_email(self, raw: &str) -> Result<Normalized, IdError> {
        let mut value = String::with_capacity(raw.len());
        self.normalize_email_into(raw, &mut value)?;
        Ok(self.finish(value))
    }

    /// Writes the normalized email into `out` (cleared first) without hashing it; for callers
    /// that reuse one buffer across many values.
    pub fn normalize_email_into(self, raw: &str, out: &mut String) -> Result<(), IdError> {
        email::normalize(self.rules(), raw, out)
    }

    /// Normalizes and hashes a phone number.
    ///
    /// Reasons: `empty`, `invalid_phone`, `no_country_code`.
    pub fn normalize_phone(self, raw: &str, options: &PhoneOptions) -> Result<Normalized, IdError> {
        let mut value = String::with_capacity(16);
        self.normalize_phone_into(raw, options, &mut value)?;
        Ok(self.finish(value))
    }

    /// Writes the normalized phone number into `out` (cleared first) without hashing it.
    pub fn normalize_phone_into(
        self,
        raw: &str,
        options: &PhoneOptions,
        out: &mut String,
    ) -> Result<(), IdError> {
        phone::normalize(self.rules(), raw, options, out)
    }

    /// SHA-256 of an already normalized value.
    pub fn hash(normalized: &str) -> HashedId {
        HashedId::from_digest(Sha256::digest(normalized.as_bytes()).into())
    }

    fn finish(self, value: String) -> Normalized {
        Normalized {
            digest: Profile::hash(&value),
            value,
            encoding: self.encoding(),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(name: &str) -> Result<Profile, UnknownProfile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| UnknownProfile {
                name: name.to_owned(),
            })
    }
}

impl TryFrom<&str> for Profile {
    type Error = UnknownProfile;

    fn try_from(name: &str) -> Result<Profile, UnknownProfile> {
        name.parse()
    }
}

impl From<Profile> for &'static str {
    fn from(profile: Profile) -> &'static str {
        profile.name()
    }
}

#[cfg(test)]
mod tests;
