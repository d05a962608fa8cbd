//! Audience Manager inbound (onboarding) files: what audlink sends, and can read back.
//!
//! Name: `ftp_dpm_<DPID>[_<TARGET_DPID>]_<10-digit unix seconds>(.sync|.overwrite)[.<split>][.gz]`.
//! Lines: `<user id><TAB><entry>,<entry>,…` with exactly one tab. Entries, with optional spaces
//! around commas and `=`:
//!
//! | entry | meaning |
//! |---|---|
//! | `d_sid=<n>`, bare `<n>` | add the user to trait `n` |
//! | `d_unsid=<n>`, `<n>:0`, `<n>:-1` | remove the user from trait `n` |
//! | `ic=<code>` | trait realized through its integration code |
//! | `key=value`, `key="value"` | a signal for rule-based traits; quotes allow `,` and `=` |
//!
//! Limits: a line is at most 102,400 bytes and UTF-8; one user id appears on at most 200 lines of a
//! file (later lines are bad records, as the platform drops them); a file without any line is
//! invalid.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::input::{self, Lines};
use super::problem::{BadRecord, FileError, FileReason, Problems, ReadOptions, RecordReason};
use crate::id::{UserId, UserIdKind};

/// Longest line, in bytes, without its line ending.
pub const MAX_LINE_BYTES: usize = 102_400;
/// Most lines one user id may have in one file.
pub const MAX_LINES_PER_USER: u32 = 200;

/// Whether a file adds to the platform's data (`.sync`) or replaces it (`.overwrite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnboardingMode {
    /// `.sync`: adds and removes apply to what the platform has.
    Sync,
    /// `.overwrite`: the file replaces the users' trait data.
    Overwrite,
}

impl OnboardingMode {
    fn extension(self) -> &'static str {
        match self {
            OnboardingMode::Sync => "sync",
            OnboardingMode::Overwrite => "overwrite",
        }
    }
}

/// The parts of an onboarding file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OnboardingFileName {
    /// Data source id (DPID) of the user ids in the file.
    pub dpid: u64,
    /// Data source the traits are written to, when not the same.
    pub target_dpid: Option<u64>,
    /// Unix seconds, written as exactly 10 digits.
    pub timestamp: u64,
    /// `.sync` or `.overwrite`.
    pub mode: OnboardingMode,
    /// Split number, for one file of several.
    pub split: Option<u32>,
    /// Whether the name ends in `.gz`.
    pub gzip: bool,
}

const NAME_SHAPE: &str = "expected ftp_dpm_<DPID>[_<TARGET_DPID>]_<10-digit unix seconds>(.sync|.overwrite)[.<split>][.gz]";

impl OnboardingFileName {
    /// Largest timestamp that fits 10 digits.
    pub const MAX_TIMESTAMP: u64 = 9_999_999_999;

    /// Parses a file name (without directories).
    pub fn parse(name: &str) -> Result<OnboardingFileName, FileError> {
        parse_name(name).ok_or_else(|| FileError::new(name, FileReason::BadFileName, NAME_SHAPE))
    }

    /// The file name; `parse(render())` gives back the same value.
    pub fn render(&self) -> String {
        let mut out = format!("ftp_dpm_{}", self.dpid);
        if let Some(target) = self.target_dpid {
            out.push_str(&format!("_{target}"));
        }
        out.push_str(&format!(
            "_{:010}.{}",
            self.timestamp,
            self.mode.extension()
        ));
        if let Some(split) = self.split {
            out.push_str(&format!(".{split}"));
        }
        if self.gzip {
            out.push_str(".gz");
        }
        out
    }
}

impl fmt::Display for OnboardingFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

fn parse_name(name: &str) -> Option<OnboardingFileName> {
    let (name, gzip) = match name.strip_suffix(".gz") {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let mut parts = name.split('.');
    let stem = parts.next()?;
    let mode = match parts.next()? {
        "sync" => OnboardingMode::Sync,
        "overwrite" => OnboardingMode::Overwrite,
        _ => return None,
    };
    let split = match parts.next() {
        Some(text) => Some(canonical_u64(text).and_then(|n| u32::try_from(n).ok())?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    let fields: Vec<&str> = stem.strip_prefix("ftp_dpm_")?.split('_').collect();
    let (ids, ts) = match fields.as_slice() {
        [dpid, ts] => ((canonical_u64(dpid)?, None), ts),
        [dpid, target, ts] => ((canonical_u64(dpid)?, Some(canonical_u64(target)?)), ts),
        _ => return None,
    };
    if ts.len() != 10 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(OnboardingFileName {
        dpid: ids.0,
        target_dpid: ids.1,
        timestamp: ts.parse().ok()?,
        mode,
        split,
        gzip,
    })
}

/// A decimal without sign or leading zeros (except `0`) that fits a u64.
pub(crate) fn canonical_u64(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let canonical = match bytes {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && bytes.iter().all(u8::is_ascii_digit),
    };
    if canonical { text.parse().ok() } else { None }
}

/// One entry of an onboarding line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entry<'a> {
    /// `d_sid=<n>` or bare `<n>`: add to trait `n`.
    Add(u64),
    /// `d_unsid=<n>`, `<n>:0` or `<n>:-1`: remove from trait `n`.
    Remove(u64),
    /// `ic=<code>`: an integration code.
    IntegrationCode(&'a str),
    /// `key=value`: a signal.
    KeyValue {
        /// The key, never empty.
        key: &'a str,
        /// The value, without quotes.
        value: &'a str,
    },
}

/// One line of an onboarding file that splits into its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardingRecord<'r, 'a> {
    /// 1-based line number.
    pub line: u64,
    /// The user id, validated as the kind the caller asked for; an invalid id is a
    /// [`RecordReason::BadId`] problem, and the entries are still read so a consumer can count
    /// the invalid id for each of them.
    pub user: Result<UserId<'a>, BadRecord>,
    /// The user id field as written.
    pub raw_user: &'a [u8],
    /// The entries, in file order (possibly none).
    pub entries: &'r [Entry<'a>],
}

/// What a line-based read saw besides the records it handed over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadSummary {
    /// Records handed to the callback (those with an invalid user id included).
    pub records: u64,
    /// Records whose user id is invalid.
    pub invalid_ids: u64,
    /// Empty lines, skipped.
    pub blank_lines: u64,
    /// Lines that could not be split into fields, in file order.
    pub bad: Vec<BadRecord>,
}

/// Reads an onboarding file (gzip or plain), handing each line that splits into fields to
/// `on_record`.
///
/// User ids are validated as `kind`; a line with an invalid id is still handed over (see
/// [`OnboardingRecord::user`]) and counted in `invalid_ids`. Other bad lines are collected in
/// the summary. Under `options.strict` the first problem of either kind ends the read with a
/// [`FileReason::Strict`] error.
pub fn read(
    file: &str,
    bytes: &[u8],
    kind: UserIdKind,
    options: ReadOptions,
    mut on_record: impl FnMut(&OnboardingRecord<'_, '_>),
) -> Result<ReadSummary, FileError> {
    let data = input::decode(file, bytes)?;
    let mut problems = Problems::new(file, options);
    let mut summary = ReadSummary::default();
    let mut lines_per_user: HashMap<&[u8], u32> = HashMap::new();
    let mut entries = Vec::new();

    for line in Lines::new(&data) {
        if line.bytes.is_empty() {
            summary.blank_lines += 1;
            continue;
        }
        let record =
            parse_line(line.number, line.bytes, kind, &mut entries).and_then(|(user, raw_user)| {
                let count = lines_per_user.entry(raw_user).or_insert(0);
                *count += 1;
                if *count > MAX_LINES_PER_USER {
                    return Err(BadRecord::new(
                        line.number,
                        RecordReason::TooManyLines,
                        format!("user id already has {MAX_LINES_PER_USER} lines in this file"),
                    ));
                }
                Ok((user, raw_user))
            });
        match record {
            Ok((user, raw_user)) => {
                if let Err(bad) = &user {
                    summary.invalid_ids += 1;
                    problems.check_strict(bad)?;
                }
                summary.records += 1;
                on_record(&OnboardingRecord {
                    line: line.number,
                    user,
                    raw_user,
                    entries: &entries,
                });
            }
            Err(bad) => problems.push(bad)?,
        }
    }
    if summary.records == 0 && problems.bad.is_empty() {
        return Err(FileError::new(
            file,
            FileReason::Empty,
            "an onboarding file needs at least one line",
        ));
    }
    summary.bad = problems.bad;
    Ok(summary)
}

/// Splits `<user id>\t<entries>`; `None` unless there is exactly one tab.
fn split_tab(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let tab = memchr::memchr(b'\t', line)?;
    let (user, rest) = (&line[..tab], &line[tab + 1..]);
    (memchr::memchr(b'\t', rest).is_none()).then_some((user, rest))
}

fn parse_line<'a>(
    number: u64,
    bytes: &'a [u8],
    kind: UserIdKind,
    entries: &mut Vec<Entry<'a>>,
) -> Result<(Result<UserId<'a>, BadRecord>, &'a [u8]), BadRecord> {
    if bytes.len() > MAX_LINE_BYTES {
        return Err(BadRecord::new(
            number,
            RecordReason::LineTooLong,
            format!(
                "line has {} bytes, the limit is {MAX_LINE_BYTES}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        BadRecord::new(number, RecordReason::BadUtf8, "line is not utf-8")
            .at_byte(bytes, e.valid_up_to())
    })?;
    let Some((user, _)) = split_tab(bytes) else {
        let detail = match memchr::memchr_iter(b'\t', bytes).count() {
            0 => "expected <user id><TAB><entries>: no tab",
            _ => "expected <user id><TAB><entries>: more than one tab",
        };
        return Err(BadRecord::new(number, RecordReason::BadFields, detail));
    };
    let start = user.len() + 1;
    parse_entries(&text[start..], entries).map_err(|(offset, detail)| {
        BadRecord::new(number, RecordReason::BadEntry, detail).at_byte(bytes, start + offset)
    })?;
    let parsed = kind
        .parse(user)
        .map_err(|e| BadRecord::bad_id(number, bytes, 0, e));
    Ok((parsed, user))
}

/// Parses the comma-separated entries into `out` (cleared first). Errors carry the byte offset in
/// `text` and a detail.
fn parse_entries<'a>(text: &'a str, out: &mut Vec<Entry<'a>>) -> Result<(), (usize, &'static str)> {
    out.clear();
    if text.trim_matches(' ').is_empty() {
        return Ok(());
    }
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut in_quotes = false;
    for i in 0..=bytes.len() {
        match bytes.get(i) {
            Some(b'"') => in_quotes = !in_quotes,
            Some(b',') if !in_quotes => {
                out.push(parse_entry(text, start, i)?);
                start = i + 1;
            }
            None if in_quotes => return Err((i, "unterminated quote")),
            None => out.push(parse_entry(text, start, i)?),
            _ => {}
        }
    }
    Ok(())
}

/// Parses `text[start..end]`, one entry with optional spaces around it.
fn parse_entry(text: &str, start: usize, end: usize) -> Result<Entry<'_>, (usize, &'static str)> {
    let raw = &text[start..end];
    let lead = raw.len() - raw.trim_start_matches(' ').len();
    let entry = raw.trim_matches(' ');
    let at = start + lead;
    if entry.is_empty() {
        return Err((at, "empty entry"));
    }
    if let Some(eq) = find_unquoted(entry, b'=') {
        let key = entry[..eq].trim_end_matches(' ');
        let value_raw = &entry[eq + 1..];
        let value_at = at + eq + 1 + (value_raw.len() - value_raw.trim_start_matches(' ').len());
        let value = value_raw.trim_start_matches(' ');
        return match key {
            "d_sid" => trait_id(value)
                .map(Entry::Add)
                .ok_or((value_at, "trait id must be digits")),
            "d_unsid" => trait_id(value)
                .map(Entry::Remove)
                .ok_or((value_at, "trait id must be digits")),
            "ic" if valid_bare(value) => Ok(Entry::IntegrationCode(value)),
            "ic" => Err((
                value_at,
                "integration code must be a non-empty unquoted value",
            )),
            _ if key.is_empty() || key.contains(['"', ' ']) => {
                Err((at, "key must be non-empty, without quotes or spaces"))
            }
            _ => kv_value(value)
                .map(|value| Entry::KeyValue { key, value })
                .ok_or((value_at, "bad value")),
        };
    }
    if let Some((id, flag)) = entry.split_once(':') {
        return match (trait_id(id), flag) {
            (Some(id), "0" | "-1") => Ok(Entry::Remove(id)),
            (None, _) => Err((at, "trait id must be digits")),
            _ => Err((
                at + id.len() + 1,
                "only <trait id>:0 and <trait id>:-1 (remove) are allowed",
            )),
        };
    }
    trait_id(entry).map(Entry::Add).ok_or((
        at,
        "expected d_sid=, d_unsid=, ic=, key=value or a trait id",
    ))
}

/// Byte offset of `needle` outside double quotes.
fn find_unquoted(text: &str, needle: u8) -> Option<usize> {
    let mut in_quotes = false;
    text.bytes().position(|b| {
        if b == b'"' {
            in_quotes = !in_quotes;
        }
        b == needle && !in_quotes
    })
}

fn trait_id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A value written without quotes: non-empty, no quote, comma or `=`, no spaces at its ends.
fn valid_bare(value: &str) -> bool {
    !value.is_empty() && !value.contains(['"', ',', '=']) && value.trim_matches(' ') == value
}

/// The value of `key=value`: bare, or inside one pair of quotes (which may hold `,` and `=`).
fn kv_value(value: &str) -> Option<&str> {
    if let Some(inner) = value.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        return (!inner.is_empty() && !inner.contains('"')).then_some(inner);
    }
    valid_bare(value).then_some(value)
}

/// A line that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The rendered line is over [`MAX_LINE_BYTES`].
    #[error("line of {bytes} bytes is over the limit of {MAX_LINE_BYTES}")]
    LineTooLong {
        /// Length of the rendered line.
        bytes: usize,
    },
    /// An entry has no representation in the format.
    #[error("entry cannot be written: {0}")]
    Unrepresentable(&'static str),
}

/// Appends one line `<user>\t<entries>\n` in canonical form (`d_sid=`, `d_unsid=`, no spaces).
///
/// On error `out` is left as it was.
pub fn write_line(
    out: &mut Vec<u8>,
    user: UserId<'_>,
    entries: &[Entry<'_>],
) -> Result<(), WriteError> {
    let start = out.len();
    let result = write_line_unchecked(out, user, entries).and_then(|()| {
        let bytes = out.len() - start - 1;
        if bytes > MAX_LINE_BYTES {
            Err(WriteError::LineTooLong { bytes })
        } else {
            Ok(())
        }
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_line_unchecked(
    out: &mut Vec<u8>,
    user: UserId<'_>,
    entries: &[Entry<'_>],
) -> Result<(), WriteError> {
    match user {
        UserId::Visitor(id) => out.extend_from_slice(&id.to_digits()),
        UserId::Declared(id) => out.extend_from_slice(id.as_str().as_bytes()),
    }
    out.push(b'\t');
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match *entry {
            Entry::Add(id) => out.extend_from_slice(format!("d_sid={id}").as_bytes()),
            Entry::Remove(id) => out.extend_from_slice(format!("d_unsid={id}").as_bytes()),
            Entry::IntegrationCode(code)
                if valid_bare(code) && !code.contains(['\t', '\n', '\r']) =>
            {
                out.extend_from_slice(b"ic=");
                out.extend_from_slice(code.as_bytes());
            }
            Entry::IntegrationCode(_) => {
                return Err(WriteError::Unrepresentable("integration code"));
            }
            Entry::KeyValue { key, value } => {
                let key_ok = !key.is_empty()
                    && !key.contains(['"', ' ', ',', '=', '\t', '\n', '\r'])
                    && !matches!(key, "d_sid" | "d_unsid" | "ic");
                if !key_ok || value.contains(['"', '\t', '\n', '\r']) || value.is_empty() {
                    return Err(WriteError::Unrepresentable("key/value signal"));
                }
                out.extend_from_slice(key.as_bytes());
                out.push(b'=');
                if valid_bare(value) {
                    out.extend_from_slice(value.as_bytes());
                } else {
                    out.push(b'"');
                    out.extend_from_slice(value.as_bytes());
                    out.push(b'"');
                }
            }
        }
    }
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests;
