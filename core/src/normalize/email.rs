//! Email normalization and the validity rules every profile shares.
//!
//! Validity, after trimming (or, for profiles that strip all whitespace, after removing it): no
//! whitespace or control character inside, exactly one `@`, a non-empty local part, and a domain
//! containing a `.` that is neither its first nor its last character. Profile rules (lowercasing,
//! the gmail rule) run after the checks, and the local part must still be non-empty after them.

use super::{GmailRule, Rules};
use crate::id::{IdError, IdKind, IdReason};

fn invalid(detail: &'static str) -> IdError {
    IdError::new(IdKind::Email, IdReason::InvalidEmail, detail)
}

fn invalid_at(offset: usize, detail: &'static str) -> IdError {
    IdError::at(IdKind::Email, IdReason::InvalidEmail, offset, detail)
}

pub(super) fn normalize(rules: Rules, raw: &str, out: &mut String) -> Result<(), IdError> {
    out.clear();
    let lead = raw.len() - raw.trim_start().len();
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdError::new(
            IdKind::Email,
            IdReason::Empty,
            "an email cannot be empty",
        ));
    }

    let mut seen_at = false;
    for (i, c) in trimmed.char_indices() {
        if c.is_whitespace() {
            if rules.strip_all_whitespace {
                continue;
            }
            return Err(invalid_at(lead + i, "whitespace inside an email"));
        }
        if c.is_control() {
            return Err(invalid_at(lead + i, "control character inside an email"));
        }
        if c == '@' {
            if seen_at {
                return Err(invalid_at(lead + i, "more than one '@'"));
            }
            seen_at = true;
        }
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }

    let Some(at) = out.find('@') else {
        return Err(invalid("no '@'"));
    };
    let domain = &out[at + 1..];
    let dot_inside = domain
        .char_indices()
        .any(|(i, c)| c == '.' && i > 0 && i + 1 < domain.len());
    if !dot_inside {
        return Err(invalid(
            "the domain needs a '.' that is neither its first nor its last character",
        ));
    }
    if at == 0 {
        return Err(invalid("empty local part"));
    }

    let gmail = match rules.gmail {
        GmailRule::None => false,
        GmailRule::GmailOnly => domain == "gmail.com",
        GmailRule::GmailAndGooglemail => domain == "gmail.com" || domain == "googlemail.com",
    };
    if gmail {
        let local = &out[..at];
        let kept = local.split('+').next().unwrap_or_default();
        let cleaned: String = kept.chars().filter(|&c| c != '.').collect();
        if cleaned.is_empty() {
            return Err(invalid("empty local part once dots and '+tag' are removed"));
        }
        out.replace_range(..at, &cleaned);
    }
    Ok(())
}
