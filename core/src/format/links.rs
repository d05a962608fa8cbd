//! Visitor links CSV: `recipient_id,visitor_id[,last_seen]`, the table click tracking fills.
//!
//! The file is RFC 4180 CSV ([`super::csv`]), optionally gzipped. Reading:
//!
//! - Header: exactly the columns `recipient_id`, `visitor_id` and optionally `last_seen`, in
//!   any order, names exact (no trimming or case folding). A missing one is
//!   [`FileReason::MissingColumn`], a repeated one [`FileReason::DuplicateColumn`], any other
//!   column (or an empty name) [`FileReason::BadHeader`]; no record at all is
//!   [`FileReason::Empty`].
//! - Rows are rejected one by one ([`BadRecord`]; the first one stops a strict read), first
//!   problem wins: malformed CSV ([`RecordReason::BadFields`]), a field count other than the
//!   header's ([`RecordReason::WrongFieldCount`]), a `recipient_id` that is not UTF-8
//!   ([`RecordReason::BadUtf8`]) or empty ([`RecordReason::EmptyValue`]), a `visitor_id` that is
//!   not 38 digits ([`RecordReason::BadId`], pointing at the offending character), a
//!   `last_seen` that is neither RFC 3339 nor canonical unix seconds within years 0000..=9999
//!   ([`RecordReason::BadValue`]).
//! - `recipient_id` is typed like the recipients `id` column, per value ([`RecipientKey`]);
//!   never trimmed.
//! - An empty or absent `last_seen` is `None`, which orders before every instant ("oldest").
//! - A repeated (visitor, recipient) pair is one link with the larger `last_seen`
//!   ([`LinksStats::merged`] counts the dropped repeats).
//! - Output order: by visitor id, then recipient key (sort-based, no hash map: the same on every
//!   platform).
//!
//! [`write()`] writes the header with all three columns and one line per link in the given order
//! (`last_seen` canonical RFC 3339 UTC, empty for `None`); reading it back gives the links
//! sorted and merged. A hand-built [`RecipientKey::String`] that is empty or a canonical integer
//! does not survive the trip unchanged.

use serde::Serialize;

use super::csv::{CsvReader, Header, RecordRef, write_field};
use super::input;
use super::problem::{BadRecord, FileError, FileReason, Problems, ReadOptions, RecordReason};
use crate::id::VisitorId;
use crate::recipients::{RecipientKey, canonical_i64};
use crate::time::Timestamp;

mod compact;

pub use compact::{CompactLink, CompactLinks, CompactRecipients, read_compact};

/// Name of the recipient id column.
pub const RECIPIENT_ID: &str = "recipient_id";
/// Name of the visitor id column.
pub const VISITOR_ID: &str = "visitor_id";
/// Name of the optional last-seen column.
pub const LAST_SEEN: &str = "last_seen";

/// One link between a recipient and a visitor id (a device).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct VisitorLink {
    /// The recipient.
    pub recipient: RecipientKey,
    /// The visitor id.
    pub visitor: VisitorId,
    /// When the link was last seen; `None`: unknown, older than any instant.
    pub last_seen: Option<Timestamp>,
}

/// Counts from reading a links file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinksStats {
    /// Rows accepted (before merging).
    pub rows: u64,
    /// Accepted rows merged into an earlier row with the same (visitor, recipient).
    pub merged: u64,
    /// Rows rejected as bad records.
    pub rejected: u64,
    /// Empty lines skipped.
    pub empty_lines: u64,
}

/// A read links file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinksFile {
    /// Links sorted by (visitor, recipient), one per pair.
    pub links: Vec<VisitorLink>,
    /// Rejected rows.
    pub bad: Vec<BadRecord>,
    /// Counts.
    pub stats: LinksStats,
}

/// Column positions of a links header.
struct Columns {
    width: usize,
    recipient: usize,
    visitor: usize,
    last_seen: Option<usize>,
}

fn columns(file: &str, header: &Header) -> Result<Columns, FileError> {
    if let Some((i, name)) = header
        .names
        .iter()
        .enumerate()
        .find(|(_, n)| ![RECIPIENT_ID, VISITOR_ID, LAST_SEEN].contains(&n.as_str()))
    {
        return Err(FileError::new(
            file,
            FileReason::BadHeader,
            format!(
                "unexpected column \"{name}\" (column {}); expected {RECIPIENT_ID}, {VISITOR_ID} and optionally {LAST_SEEN}",
                i + 1
            ),
        )
        .at_line(header.line));
    }
    Ok(Columns {
        width: header.names.len(),
        recipient: header.require(file, RECIPIENT_ID)?,
        visitor: header.require(file, VISITOR_ID)?,
        last_seen: header.position(LAST_SEEN),
    })
}

/// `last_seen`: canonical unix seconds or RFC 3339.
fn last_seen(cell: &[u8]) -> Option<Timestamp> {
    match canonical_i64(cell) {
        Some(seconds) => Timestamp::from_unix_seconds(seconds),
        None => Timestamp::parse(cell).ok(),
    }
}

/// The validated cells of one row: recipient id text, visitor id, last seen.
fn cells<'r>(
    record: &RecordRef<'r>,
    columns: &Columns,
) -> Result<(&'r str, VisitorId, Option<Timestamp>), BadRecord> {
    record.check_width(columns.width)?;
    let recipient = record.text(columns.recipient, RECIPIENT_ID)?;
    if recipient.is_empty() {
        return Err(record.bad_cell(
            columns.recipient,
            RecordReason::EmptyValue,
            "recipient_id is empty",
        ));
    }
    let visitor = VisitorId::parse(record.get(columns.visitor).unwrap_or_default())
        .map_err(|err| record.bad_id(columns.visitor, err))?;
    let last_seen = match columns.last_seen {
        Some(i) => match record.get(i).unwrap_or_default() {
            b"" => None,
            cell => Some(last_seen(cell).ok_or_else(|| {
                record.bad_cell(
                    i,
                    RecordReason::BadValue,
                    "last_seen must be an rfc 3339 date-time or unix seconds, in years 0000 to 9999",
                )
            })?),
        },
        None => None,
    };
    Ok((recipient, visitor, last_seen))
}

fn link(record: &RecordRef<'_>, columns: &Columns) -> Result<VisitorLink, BadRecord> {
    let (recipient, visitor, last_seen) = cells(record, columns)?;
    Ok(VisitorLink {
        recipient: RecipientKey::parse(recipient),
        visitor,
        last_seen,
    })
}

/// Sorts links by (visitor, recipient) and merges repeated pairs into one with the larger
/// `last_seen`: the order and merge [`read`] gives, for links from elsewhere (a database).
pub fn sort_and_merge(links: &mut Vec<VisitorLink>) {
    links.sort_unstable_by(|a, b| (a.visitor, &a.recipient).cmp(&(b.visitor, &b.recipient)));
    links.dedup_by(|later, kept| {
        let same = later.visitor == kept.visitor && later.recipient == kept.recipient;
        if same {
            kept.last_seen = kept.last_seen.max(later.last_seen);
        }
        same
    });
}

/// Reads a visitor links CSV (plain or gzip); see the module documentation for the rules.
pub fn read(file: &str, bytes: &[u8], options: ReadOptions) -> Result<LinksFile, FileError> {
    let bytes = input::decode(file, bytes)?;
    let mut reader = CsvReader::new(&bytes);
    let header = Header::read(file, &mut reader)?;
    let columns = columns(file, &header)?;
    let mut problems = Problems::new(file, options);
    let mut links = Vec::new();
    while let Some(next) = reader.next_record() {
        match next.and_then(|record| link(&record, &columns)) {
            Ok(link) => links.push(link),
            Err(bad) => problems.push(bad)?,
        }
    }
    let rows = links.len() as u64;
    sort_and_merge(&mut links);
    let stats = LinksStats {
        rows,
        merged: rows - links.len() as u64,
        rejected: problems.bad.len() as u64,
        empty_lines: reader.empty_lines(),
    };
    Ok(LinksFile {
        links,
        bad: problems.bad,
        stats,
    })
}

/// Writes `links` as CSV with the header `recipient_id,visitor_id,last_seen`, in the given
/// order.
pub fn write(links: &[VisitorLink]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + links.len() * 72);
    out.extend_from_slice(format!("{RECIPIENT_ID},{VISITOR_ID},{LAST_SEEN}\n").as_bytes());
    for link in links {
        match &link.recipient {
            RecipientKey::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
            RecipientKey::String(text) => write_field(&mut out, text.as_bytes()),
        }
        out.push(b',');
        out.extend_from_slice(&link.visitor.to_digits());
        out.push(b',');
        if let Some(t) = link.last_seen {
            out.extend_from_slice(t.to_string().as_bytes());
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::id::IdReason;

    const V1: &str = "12345678901234567890123456789012345678";
    const V2: &str = "00000000000000000000000000000000000001";

    fn read_ok(input: &str) -> LinksFile {
        read("l.csv", input.as_bytes(), ReadOptions::default()).unwrap()
    }

    fn read_err(input: &[u8]) -> FileError {
        read("l.csv", input, ReadOptions::default()).unwrap_err()
    }

    fn v(text: &str) -> VisitorId {
        text.parse().unwrap()
    }

    fn t(text: &str) -> Option<Timestamp> {
        Some(text.parse().unwrap())
    }

    fn located(file: &LinksFile) -> Vec<String> {
        file.bad.iter().map(|b| b.located("l.csv")).collect()
    }

    #[test]
    fn reads_sorts_and_merges() {
        let file = read_ok(&format!(
            "recipient_id,visitor_id,last_seen\n\
             7,{V1},2026-01-31T12:00:00Z\n\
             b,{V2},\n\
             7,{V1},1769900000\n\
             7,{V1},2026-01-01T00:00:00+01:00\n\
             a,{V1},\n\
             -3,{V2},0\n\
             b,{V2},\n"
        ));
        assert_eq!(
            file.links,
            [
                VisitorLink {
                    recipient: RecipientKey::Int(-3),
                    visitor: v(V2),
                    last_seen: t("1970-01-01T00:00:00Z"),
                },
                VisitorLink {
                    recipient: RecipientKey::String("b".into()),
                    visitor: v(V2),
                    last_seen: None,
                },
                VisitorLink {
                    recipient: RecipientKey::Int(7),
                    visitor: v(V1),
                    last_seen: t("2026-01-31T22:53:20Z"),
                },
                VisitorLink {
                    recipient: RecipientKey::String("a".into()),
                    visitor: v(V1),
                    last_seen: None,
                },
            ]
        );
        assert_eq!(
            file.stats,
            LinksStats {
                rows: 7,
                merged: 3,
                rejected: 0,
                empty_lines: 0
            }
        );
    }

    #[test]
    fn a_known_last_seen_beats_none_when_merging() {
        let file = read_ok(&format!(
            "visitor_id,last_seen,recipient_id\n{V1},2026-01-31T12:00:00Z,1\n{V1},,1\n"
        ));
        assert_eq!(file.links.len(), 1);
        assert_eq!(file.links[0].last_seen, t("2026-01-31T12:00:00Z"));
        let file = read_ok(&format!("visitor_id,recipient_id\n{V1},1\n{V1},01\n"));
        assert_eq!(
            file.links.iter().map(|l| &l.recipient).collect::<Vec<_>>(),
            [&RecipientKey::Int(1), &RecipientKey::String("01".into())]
        );
    }

    #[test]
    fn bad_visitor_ids_point_at_the_problem() {
        let letter = format!("{}x{}", &V1[..20], &V1[21..]);
        let file = read_ok(&format!(
            "recipient_id,visitor_id\n\
             1,{letter}\n\
             2,{}\n\
             3,{V1}9\n\
             4,\n\
             5,\"{V1}\"\n\
             é,\"1\"\"2\"\n",
            &V1[..37]
        ));
        let reasons: Vec<_> = file
            .bad
            .iter()
            .map(|b| b.id_error.as_ref().map(|e| e.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                Some(IdReason::NotDigits),
                Some(IdReason::BadLength),
                Some(IdReason::BadLength),
                Some(IdReason::Empty),
                Some(IdReason::NotDigits),
            ]
        );
        assert!(file.bad.iter().all(|b| b.reason == RecordReason::BadId));
        let columns: Vec<_> = file.bad.iter().map(|b| (b.line, b.column)).collect();
        assert_eq!(
            columns,
            [
                (2, Some(23)),
                (3, Some(3)),
                (4, Some(3)),
                (5, Some(3)),
                (7, Some(5))
            ]
        );
        // A quoted valid id is fine.
        assert_eq!(file.links.len(), 1);
        assert_eq!(file.links[0].visitor, v(V1));
        // Details never echo the value.
        assert!(file.bad.iter().all(|b| !b.detail.contains(&V1[..10])));
    }

    #[test]
    fn other_bad_rows() {
        let file = read(
            "l.csv",
            &format!(
                "recipient_id,visitor_id,last_seen\n\
                 ,{V1},\n\
                 1,{V1}\n\
                 \u{1},{V1},\n\
                 2,{V1},yesterday\n\
                 3,{V1},2026-13-01T00:00:00Z\n\
                 4,{V1},99999999999999\n\
                 5,{V1},0123\n\
                 6,{V1},1769900000\n"
            )
            .bytes()
            // An invalid UTF-8 byte where the placeholder is.
            .map(|b| if b == 1 { 0xff } else { b })
            .collect::<Vec<u8>>(),
            ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(
            located(&file),
            [
                "l.csv:2:1: recipient_id is empty (empty_value)",
                "l.csv:3: expected 3 fields as in the header, found 2 (wrong_field_count)",
                "l.csv:4:1: column \"recipient_id\" is not utf-8 (bad_utf8)",
                "l.csv:5:42: last_seen must be an rfc 3339 date-time or unix seconds, in years 0000 to 9999 (bad_value)",
                "l.csv:6:42: last_seen must be an rfc 3339 date-time or unix seconds, in years 0000 to 9999 (bad_value)",
                "l.csv:7:42: last_seen must be an rfc 3339 date-time or unix seconds, in years 0000 to 9999 (bad_value)",
                "l.csv:8:42: last_seen must be an rfc 3339 date-time or unix seconds, in years 0000 to 9999 (bad_value)",
            ]
        );
        assert_eq!(file.links.len(), 1);
        assert_eq!(file.stats.rejected, 7);
        let err = read(
            "l.csv",
            format!("recipient_id,visitor_id\n1,{V1}\n2,1\n").as_bytes(),
            ReadOptions { strict: true },
        )
        .unwrap_err();
        assert_eq!((err.reason, err.line), (FileReason::Strict, Some(3)));
        assert_eq!(err.record.unwrap().reason, RecordReason::BadId);
    }

    #[test]
    fn header_errors() {
        assert_eq!(read_err(b"").reason, FileReason::Empty);
        assert_eq!(read_err(b"\r\n\n").reason, FileReason::Empty);
        let err = read_err(b"recipient_id\n1\n");
        assert_eq!(
            (err.reason, err.detail.as_str()),
            (
                FileReason::MissingColumn,
                "the header has no column \"visitor_id\""
            )
        );
        assert_eq!(
            read_err(b"visitor_id,last_seen\n").reason,
            FileReason::MissingColumn
        );
        let err = read_err(b"recipient_id,visitor_id,visitor_id\n");
        assert_eq!(err.reason, FileReason::DuplicateColumn);
        let err = read_err(b"recipient_id,visitor_id,email\n");
        assert_eq!(
            (err.reason, err.line, err.detail.as_str()),
            (
                FileReason::BadHeader,
                Some(1),
                "unexpected column \"email\" (column 3); expected recipient_id, visitor_id and optionally last_seen"
            )
        );
        assert_eq!(
            read_err(b"Recipient_ID,visitor_id\n").reason,
            FileReason::BadHeader
        );
        assert_eq!(
            read_err(b"recipient_id,,visitor_id\n").reason,
            FileReason::BadHeader
        );
        let full = input::gzip(
            format!("recipient_id,visitor_id\n1,{V1}\n")
                .repeat(300)
                .as_bytes(),
        );
        assert_eq!(
            read_err(&full[..full.len() - 10]).reason,
            FileReason::TruncatedGzip
        );
        let whole = read("l.csv.gz", &full, ReadOptions::default()).unwrap();
        assert_eq!((whole.links.len(), whole.stats.merged), (1, 299));
    }

    #[test]
    fn bom_crlf_last_line_and_header_only() {
        let a = read_ok(&format!("recipient_id,visitor_id\n1,{V1}\n2,{V2}\n"));
        let b = read_ok(&format!(
            "\u{feff}recipient_id,visitor_id\r\n1,{V1}\r\n\r\n2,{V2}"
        ));
        assert_eq!(a.links, b.links);
        assert_eq!(b.stats.empty_lines, 1);
        assert!(read_ok("recipient_id,visitor_id\n").links.is_empty());
    }

    #[test]
    fn writes_canonical_rows() {
        let links = [
            VisitorLink {
                recipient: RecipientKey::String("a,b".into()),
                visitor: v(V2),
                last_seen: t("2026-01-31T12:00:00.5+01:00"),
            },
            VisitorLink {
                recipient: RecipientKey::Int(-4),
                visitor: v(V1),
                last_seen: None,
            },
        ];
        assert_eq!(
            String::from_utf8(write(&links)).unwrap(),
            format!(
                "recipient_id,visitor_id,last_seen\n\
                 \"a,b\",{V2},2026-01-31T11:00:00.500000Z\n\
                 -4,{V1},\n"
            )
        );
    }

    fn links() -> impl Strategy<Value = Vec<VisitorLink>> {
        let recipient = prop_oneof![
            (0i64..4).prop_map(RecipientKey::Int),
            any::<i64>().prop_map(RecipientKey::Int),
            "[a-c0-9,\" é]{1,3}".prop_map(|s| RecipientKey::parse(&s)),
        ];
        let visitor = prop_oneof![
            (0u128..3).prop_map(|n| VisitorId::from_u128(n).unwrap()),
            (0..=VisitorId::MAX.as_u128()).prop_map(|n| VisitorId::from_u128(n).unwrap()),
        ];
        let last_seen = proptest::option::of(
            (Timestamp::MIN.unix_micros()..=Timestamp::MAX.unix_micros())
                .prop_map(|t| Timestamp::from_unix_micros(t).unwrap()),
        );
        proptest::collection::vec(
            (recipient, visitor, last_seen).prop_map(|(recipient, visitor, last_seen)| {
                VisitorLink {
                    recipient,
                    visitor,
                    last_seen,
                }
            }),
            0..12,
        )
    }

    proptest! {
        #[test]
        fn write_then_read_gives_the_links_sorted_and_merged(links in links()) {
            let back = read("l.csv", &write(&links), ReadOptions { strict: true }).unwrap();
            let mut expected: Vec<VisitorLink> = Vec::new();
            let mut sorted = links.clone();
            sorted.sort_by(|a, b| (a.visitor, &a.recipient).cmp(&(b.visitor, &b.recipient)));
            for link in sorted {
                match expected.last_mut() {
                    Some(last) if last.visitor == link.visitor && last.recipient == link.recipient => {
                        last.last_seen = last.last_seen.max(link.last_seen);
                    }
                    _ => expected.push(link),
                }
            }
            prop_assert_eq!(back.stats.merged as usize, links.len() - expected.len());
            prop_assert_eq!(back.links, expected);
        }

        #[test]
        fn reading_never_panics(bytes in proptest::collection::vec(
            prop_oneof![Just(b'"'), Just(b','), Just(b'\n'), Just(b'1'), Just(b'Z'), any::<u8>()],
            0..120,
        )) {
            let mut input = b"recipient_id,visitor_id,last_seen\n".to_vec();
            input.extend_from_slice(&bytes);
            let _ = read("l.csv", &bytes, ReadOptions::default());
            let file = read("l.csv", &input, ReadOptions::default()).unwrap();
            prop_assert!(file.links.windows(2).all(|w| (w[0].visitor, &w[0].recipient) < (w[1].visitor, &w[1].recipient)));
        }
    }
}
