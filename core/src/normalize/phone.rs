//! Phone normalization to E.164.
//!
//! Accepted input: ASCII digits, one `+` before the first digit, and the separators space (any
//! whitespace), `-`, `.`, `(`, `)` and `/`. A leading `+` or `00` marks an international number;
//! anything else is national: one leading `0` (trunk prefix) is dropped and the configured
//! default country code is put in front. The result has 8 to 15 digits and does not start with
//! `0`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Rules;
use crate::id::{IdError, IdKind, IdReason};

/// An ITU country calling code, 1 to 999 (`1` for NANP, `33` for France, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct CountryCode(u16);

/// A country code outside 1..=999.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid country code {given:?}: expected 1 to 3 digits, 1 to 999, optionally after '+'")]
pub struct InvalidCountryCode {
    /// What was given.
    pub given: String,
}

impl CountryCode {
    /// The code as a number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for CountryCode {
    type Error = InvalidCountryCode;

    fn try_from(code: u16) -> Result<CountryCode, InvalidCountryCode> {
        if (1..=999).contains(&code) {
            Ok(CountryCode(code))
        } else {
            Err(InvalidCountryCode {
                given: code.to_string(),
            })
        }
    }
}

impl From<CountryCode> for u16 {
    fn from(code: CountryCode) -> u16 {
        code.0
    }
}

impl FromStr for CountryCode {
    type Err = InvalidCountryCode;

    /// Accepts `1`, `+1`, `33`, `+33`; no leading zeros.
    fn from_str(text: &str) -> Result<CountryCode, InvalidCountryCode> {
        let invalid = || InvalidCountryCode {
            given: text.to_owned(),
        };
        let digits = text.strip_prefix('+').unwrap_or(text);
        if digits.is_empty() || digits.len() > 3 || digits.starts_with('0') {
            return Err(invalid());
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        digits
            .parse::<u16>()
            .map_err(|_| invalid())?
            .try_into()
            .map_err(|_| invalid())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

/// Options for phone normalization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhoneOptions {
    /// Country code put in front of national numbers; without one they are rejected with
    /// `no_country_code`.
    pub default_country_code: Option<CountryCode>,
}

/// Fewest digits of a normalized number, country code included.
const MIN_DIGITS: usize = 8;
/// Most digits of a normalized number (E.164), country code included.
const MAX_DIGITS: usize = 15;

fn invalid(detail: &'static str) -> IdError {
    IdError::new(IdKind::Phone, IdReason::InvalidPhone, detail)
}

pub(super) fn normalize(
    rules: Rules,
    raw: &str,
    options: &PhoneOptions,
    out: &mut String,
) -> Result<(), IdError> {
    out.clear();
    let lead = raw.len() - raw.trim_start().len();
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdError::new(
            IdKind::Phone,
            IdReason::Empty,
            "a phone number cannot be empty",
        ));
    }

    // Collect the digits; at most MAX_DIGITS + 3 are ever needed, more is already invalid.
    let mut digits = [0u8; MAX_DIGITS + 3];
    let mut count = 0usize;
    let mut plus = false;
    for (i, c) in trimmed.char_indices() {
        match c {
            '0'..='9' => {
                if count == digits.len() {
                    return Err(invalid("a phone number has at most 15 digits"));
                }
                digits[count] = c as u8;
                count += 1;
            }
            '+' if !plus && count == 0 => plus = true,
            '-' | '.' | '(' | ')' | '/' => {}
            c if c.is_whitespace() => {}
            _ => {
                return Err(IdError::at(
                    IdKind::Phone,
                    IdReason::InvalidPhone,
                    lead + i,
                    "only digits, one leading '+', spaces and - . ( ) / are allowed",
                ));
            }
        }
    }
    let digits = &digits[..count];

    if rules.phone_plus {
        out.push('+');
    }
    let start = out.len();
    if plus {
        push_digits(out, digits);
    } else if let Some(international) = digits.strip_prefix(b"00") {
        push_digits(out, international);
    } else {
        let Some(code) = options.default_country_code else {
            return Err(IdError::new(
                IdKind::Phone,
                IdReason::NoCountryCode,
                "a national number needs a default country code",
            ));
        };
        let national = digits.strip_prefix(b"0").unwrap_or(digits);
        out.push_str(&code.0.to_string());
        push_digits(out, national);
    }

    let international = &out[start..];
    if international.starts_with('0') {
        return Err(invalid("a country code cannot start with 0"));
    }
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&international.len()) {
        return Err(invalid("an international number has 8 to 15 digits"));
    }
    Ok(())
}

fn push_digits(out: &mut String, digits: &[u8]) {
    out.extend(digits.iter().map(|&d| char::from(d)));
}
