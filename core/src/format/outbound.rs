//! Audience Manager outbound files: the shared audiences the platform sends back.
//!
//! Name: `[SYNC_TYPE][_DID][_MASTER_DPID][_PID_ALIAS][_SYNC_MODE][_TIMESTAMP]SPLITNUM.sync[.gz]`,
//! every element optional: `SYNC_TYPE` is `ftp` or `S3`, `SYNC_MODE` `iter` or `full`,
//! `TIMESTAMP` 13-digit unix milliseconds with `SPLITNUM` (at least 3 digits) glued to it. The
//! master DPID says which identifier kind the file holds: without one, 38-digit visitor ids;
//! with one, declared ids of that data source.
//!
//! Body: `<UUID> <seg,seg,…> <removed,removed,…>`, fields separated by one or more spaces (or
//! tabs). Two fields are the id and its segments; an empty segment list followed by removals
//! cannot be told apart from segments with spaces as the only separator, so the writer refuses it.
//! Segment ids are kept verbatim (case too): non-empty, no comma, no whitespace.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::input::{self, Lines};
use super::problem::{BadRecord, FileError, FileReason, Problems, ReadOptions, RecordReason};
use crate::id::{UserId, UserIdKind, VisitorId};

/// How the platform delivered the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncType {
    /// `ftp`: delivered over SFTP.
    Ftp,
    /// `S3`: delivered to an S3 bucket.
    S3,
}

/// Whether a file holds everything (`full`) or changes since the last one (`iter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Incremental: adds and removals since the last delivery.
    Iter,
    /// Full: the complete current membership.
    Full,
}

/// The parts of an outbound file name; each is optional.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct OutboundFileName {
    /// `ftp` or `S3`.
    pub sync_type: Option<SyncType>,
    /// Destination id.
    pub destination_id: Option<u64>,
    /// Data source of the user ids; `None` means visitor ids.
    pub master_dpid: Option<u64>,
    /// The customer's alias at the third party.
    pub pid_alias: Option<String>,
    /// `iter` or `full`.
    pub sync_mode: Option<SyncMode>,
    /// Unix milliseconds (13 digits).
    pub timestamp_ms: Option<u64>,
    /// Part number of a split delivery (written with at least 3 digits).
    pub split: Option<u32>,
    /// Whether the name ends in `.gz`.
    pub gzip: bool,
}

const NAME_SHAPE: &str = "expected [ftp|S3][_<DID>][_<MASTER_DPID>][_<PID_ALIAS>][_iter|_full][_<13-digit ms timestamp>[<split, 3+ digits>]].sync[.gz]";

impl OutboundFileName {
    /// Parses a file name (without directories).
    pub fn parse(name: &str) -> Result<OutboundFileName, FileError> {
        parse_name(name).ok_or_else(|| FileError::new(name, FileReason::BadFileName, NAME_SHAPE))
    }

    /// The identifier kind of the file's user ids.
    pub fn user_id_kind(&self) -> UserIdKind {
        match self.master_dpid {
            None => UserIdKind::VisitorId,
            Some(_) => UserIdKind::DeclaredId,
        }
    }

    /// The name with the split number removed: parts of one delivery share it.
    pub fn delivery(&self) -> OutboundFileName {
        OutboundFileName {
            split: None,
            gzip: false,
            ..self.clone()
        }
    }

    /// The file name. `parse(render())` gives back the same value when the name is expressible:
    /// a master DPID needs a destination id before it, ids have at most 12 digits (a longer
    /// number reads as a timestamp), a split needs a timestamp, the timestamp has at most 13 digits, and an alias is not all digits, not `iter`/`full`/`ftp`/`S3` and
    /// holds no `_`, `.` or slash (an alias that is not is left out).
    pub fn render(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        match self.sync_type {
            Some(SyncType::Ftp) => parts.push("ftp".into()),
            Some(SyncType::S3) => parts.push("S3".into()),
            None => {}
        }
        parts.extend(self.destination_id.map(|d| d.to_string()));
        parts.extend(self.master_dpid.map(|d| d.to_string()));
        parts.extend(self.pid_alias.clone().filter(|a| valid_alias(a)));
        match self.sync_mode {
            Some(SyncMode::Iter) => parts.push("iter".into()),
            Some(SyncMode::Full) => parts.push("full".into()),
            None => {}
        }
        if let Some(ts) = self.timestamp_ms {
            let mut token = format!("{ts:013}");
            if let Some(split) = self.split {
                token.push_str(&format!("{split:03}"));
            }
            parts.push(token);
        }
        let mut out = parts.join("_");
        out.push_str(".sync");
        if self.gzip {
            out.push_str(".gz");
        }
        out
    }
}

impl fmt::Display for OutboundFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && !alias.contains(['_', '.', '/', '\\'])
        && !alias.bytes().all(|b| b.is_ascii_digit())
        && !matches!(alias, "iter" | "full" | "ftp" | "S3")
        && !alias.chars().any(char::is_control)
}

fn parse_name(name: &str) -> Option<OutboundFileName> {
    let mut out = OutboundFileName::default();
    let name = match name.strip_suffix(".gz") {
        Some(rest) => {
            out.gzip = true;
            rest
        }
        None => name,
    };
    let stem = name.strip_suffix(".sync")?;
    if stem.contains('.') || stem.contains(['/', '\\']) {
        return None;
    }
    let mut tokens: &[&str] = &stem.split('_').collect::<Vec<_>>();
    if tokens == [""] {
        tokens = &[];
    }
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());

    if let Some((first, rest)) = tokens.split_first() {
        let sync_type = match *first {
            "ftp" => Some(SyncType::Ftp),
            "S3" => Some(SyncType::S3),
            _ => None,
        };
        if sync_type.is_some() {
            out.sync_type = sync_type;
            tokens = rest;
        }
    }
    if let Some((last, rest)) = tokens.split_last()
        && all_digits(last)
        && last.len() >= 13
    {
        let (ts, split) = last.split_at(13);
        match split.len() {
            0 => {}
            1 | 2 => return None,
            _ => out.split = Some(split.parse().ok()?),
        }
        out.timestamp_ms = Some(ts.parse().ok()?);
        tokens = rest;
    }
    if let Some((last, rest)) = tokens.split_last() {
        let mode = match *last {
            "iter" => Some(SyncMode::Iter),
            "full" => Some(SyncMode::Full),
            _ => None,
        };
        if mode.is_some() {
            out.sync_mode = mode;
            tokens = rest;
        }
    }
    // What is left: [DID][_MASTER_DPID][_PID_ALIAS]; ids are digits, the alias is not.
    let numeric = tokens.iter().take_while(|t| all_digits(t)).count();
    let (ids, alias) = tokens.split_at(numeric);
    match ids {
        [] => {}
        [did] => out.destination_id = Some(did.parse().ok()?),
        [did, master] => {
            out.destination_id = Some(did.parse().ok()?);
            out.master_dpid = Some(master.parse().ok()?);
        }
        _ => return None,
    }
    match alias {
        [] => {}
        [alias] if valid_alias(alias) => out.pid_alias = Some((*alias).to_owned()),
        _ => return None,
    }
    Some(out)
}

/// One line of an outbound file that splits into its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord<'a> {
    /// 1-based line number.
    pub line: u64,
    /// The user id, validated as the file's kind; an invalid id is a [`RecordReason::BadId`]
    /// problem, and the line's segment lists are still read so a consumer can count the invalid
    /// id for every segment on the line.
    pub user: Result<UserId<'a>, BadRecord>,
    /// The user id field as written.
    pub raw_user: &'a [u8],
    /// Comma-separated segment ids the user is in (possibly empty).
    segments: &'a str,
    /// Comma-separated segment ids the user left (possibly empty).
    removed: &'a str,
}

impl<'a> OutboundRecord<'a> {
    /// Segment ids the user is in, verbatim.
    pub fn segments(&self) -> impl Iterator<Item = &'a str> + 'a {
        split_list(self.segments)
    }

    /// Segment ids the user left, verbatim.
    pub fn removed(&self) -> impl Iterator<Item = &'a str> + 'a {
        split_list(self.removed)
    }
}

pub(crate) fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter(|s| !s.is_empty())
}

pub use super::onboarding::ReadSummary;

pub(crate) fn is_separator(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Reads an outbound file (gzip or plain), handing each line that splits into fields to
/// `on_record`.
///
/// User ids are validated as `kind` (see [`OutboundFileName::user_id_kind`]); a line with an
/// invalid id is still handed over (see [`OutboundRecord::user`]) and counted in
/// `invalid_ids`. Lines that cannot be split are collected in the summary. Under
/// `options.strict` the first problem of either kind ends the read. A file without lines is
/// valid (an empty delivery).
pub fn read(
    file: &str,
    bytes: &[u8],
    kind: UserIdKind,
    options: ReadOptions,
    mut on_record: impl FnMut(&OutboundRecord<'_>),
) -> Result<ReadSummary, FileError> {
    let data = input::decode(file, bytes)?;
    let mut problems = Problems::new(file, options);
    let mut summary = ReadSummary::default();
    for line in Lines::new(&data) {
        if line.bytes.iter().all(|&b| is_separator(b)) {
            summary.blank_lines += 1;
            continue;
        }
        match parse_line(line.number, line.bytes, kind) {
            Ok(record) => {
                if let Err(bad) = &record.user {
                    summary.invalid_ids += 1;
                    problems.check_strict(bad)?;
                }
                summary.records += 1;
                on_record(&record);
            }
            Err(bad) => problems.push(bad)?,
        }
    }
    summary.bad = problems.bad;
    Ok(summary)
}

/// The common case in one pass: a line of a visitor-id file that is a valid 38-digit id and up
/// to two segment lists of printable ASCII without empty entries. `None` for any other line,
/// which [`read`] then handles (this is the same reading for the lines it accepts; the import's
/// fast path is tested against `read` on arbitrary input).
pub(crate) fn split_plain_visitor_line(bytes: &[u8]) -> Option<(VisitorId, &str, &str)> {
    let id = VisitorId::parse(bytes.get(..VisitorId::LEN)?).ok()?;
    let rest = &bytes[VisitorId::LEN..];
    match rest.first() {
        None => return Some((id, "", "")),
        Some(&b) if is_separator(b) => {}
        Some(_) => return None,
    }
    let mut fields = rest.split(|&b| is_separator(b)).filter(|f| !f.is_empty());
    let segments = plain_list(fields.next().unwrap_or_default())?;
    let removed = plain_list(fields.next().unwrap_or_default())?;
    fields.next().is_none().then_some((id, segments, removed))
}

/// A segment list [`read`] accepts as is: printable ASCII (no space, no control character), no
/// empty entry.
fn plain_list(bytes: &[u8]) -> Option<&str> {
    if bytes.first() == Some(&b',') || bytes.last() == Some(&b',') {
        return None;
    }
    let printable = bytes.iter().all(|b| (0x21..=0x7E).contains(b));
    let empty_entry = bytes.windows(2).any(|w| w == b",,");
    if !printable || empty_entry {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

fn parse_line(
    number: u64,
    bytes: &[u8],
    kind: UserIdKind,
) -> Result<OutboundRecord<'_>, BadRecord> {
    // Up to three fields separated by runs of spaces or tabs, with their byte offsets.
    let mut fields: [(usize, &[u8]); 3] = [(0, &[]); 3];
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        if is_separator(bytes[i]) {
            i += 1;
            continue;
        }
        let end = bytes[i..]
            .iter()
            .position(|&b| is_separator(b))
            .map_or(bytes.len(), |n| i + n);
        if count == fields.len() {
            return Err(BadRecord::new(
                number,
                RecordReason::BadFields,
                "expected <id> <segments> <removed>: too many fields",
            )
            .at_byte(bytes, i));
        }
        fields[count] = (i, &bytes[i..end]);
        count += 1;
        i = end;
    }
    let [(id_at, id), (segs_at, segs), (removed_at, removed)] = fields;
    let segments = segment_list(number, bytes, segs_at, segs)?;
    let removed = segment_list(number, bytes, removed_at, removed)?;
    let user = kind
        .parse(id)
        .map_err(|e| BadRecord::bad_id(number, bytes, id_at, e));
    Ok(OutboundRecord {
        line: number,
        user,
        raw_user: id,
        segments,
        removed,
    })
}

fn segment_list<'a>(
    number: u64,
    line: &[u8],
    at: usize,
    list: &'a [u8],
) -> Result<&'a str, BadRecord> {
    let text = std::str::from_utf8(list).map_err(|e| {
        BadRecord::new(number, RecordReason::BadUtf8, "segment list is not utf-8")
            .at_byte(line, at + e.valid_up_to())
    })?;
    if text.is_empty() {
        return Ok(text);
    }
    let mut offset = 0;
    for segment in text.split(',') {
        if segment.is_empty() {
            return Err(
                BadRecord::new(number, RecordReason::BadEntry, "empty segment id in list")
                    .at_byte(line, at + offset),
            );
        }
        if let Some(bad) = segment.find(|c: char| c.is_control()) {
            return Err(BadRecord::new(
                number,
                RecordReason::BadEntry,
                "control character in segment id",
            )
            .at_byte(line, at + offset + bad));
        }
        offset += segment.len() + 1;
    }
    Ok(text)
}

/// A record that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A segment id is empty or holds a comma, whitespace or a control character.
    #[error(
        "segment id cannot be written: it must be non-empty without comma, whitespace or control characters"
    )]
    BadSegment,
    /// Removals with no segments cannot be told apart from segments.
    #[error("a line with removed segments needs at least one segment")]
    RemovalsWithoutSegments,
    /// A declared id with a space cannot be written in a space-separated file.
    #[error("user id contains a space")]
    SpaceInUserId,
}

/// Appends one line `<id> <segments> [<removed>]\n` (single spaces, segments as given).
///
/// On error `out` is left as it was.
pub fn write_line(
    out: &mut Vec<u8>,
    user: UserId<'_>,
    segments: &[&str],
    removed: &[&str],
) -> Result<(), WriteError> {
    let valid = |s: &&str| {
        !s.is_empty() && !s.contains(',') && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if !segments.iter().chain(removed).all(valid) {
        return Err(WriteError::BadSegment);
    }
    if segments.is_empty() && !removed.is_empty() {
        return Err(WriteError::RemovalsWithoutSegments);
    }
    match user {
        UserId::Visitor(id) => out.extend_from_slice(&id.to_digits()),
        UserId::Declared(id) if id.as_str().contains(' ') => return Err(WriteError::SpaceInUserId),
        UserId::Declared(id) => out.extend_from_slice(id.as_str().as_bytes()),
    }
    for list in [segments, removed] {
        if !list.is_empty() {
            out.push(b' ');
            out.extend_from_slice(list.join(",").as_bytes());
        }
    }
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests;
