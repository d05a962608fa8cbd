//! Experience Platform destination exports: CSV files of segment members.
//!
//! File names are `<destination>_segment<SEGMENT_ID>_<yyyymmddhhmmss>[_<part>].csv`
//! ([`AepFileName`]). They are parsed from the right, because destination names may contain `_`:
//! an optional part number (`2` or more, no leading zero; part 1 has no suffix), then a
//! 14-digit UTC timestamp that must be a real date and time, then `segment<ID>` with a non-empty
//! ID without `_`, then a non-empty destination. Only the base name is parsed (no directory);
//! the suffix is exactly `.csv` (gzip is recognized from the content, not the name).
//!
//! The body is RFC 4180 CSV ([`super::csv`]), optionally gzipped, whose header holds XDM paths
//! with `.` turned into `_` (`personalEmail_address`, `segmentMembership_ups_seg1_status`). The
//! caller names the identity column and optionally the membership status column
//! ([`AepColumns`]); other columns are ignored (but every row must have the header's field
//! count). Reading:
//!
//! - no record at all is [`FileReason::Empty`]; a named column missing from the header is
//!   [`FileReason::MissingColumn`]; a repeated header name [`FileReason::DuplicateColumn`];
//! - rows are rejected one by one ([`BadRecord`]; the first one stops a strict read): malformed
//!   CSV, a wrong field count, an identity that is not UTF-8 or is empty
//!   ([`RecordReason::EmptyValue`]), a status other than `realized`, `existing` or `exited`
//!   ([`RecordReason::BadValue`], also when empty). Status values are matched ignoring ASCII
//!   case (the platform writes lower case);
//! - identities are kept verbatim (never trimmed) — the engine validates them as visitor ids,
//!   declared ids or hashes — in one text arena, not a `String` per row.
//!
//! [`write()`] writes the identity and (optionally) status columns; reading it back gives the
//! same rows.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::csv::{CsvReader, Header, RecordRef, write_field, write_record};
use super::input;
use super::problem::{BadRecord, FileError, FileReason, Problems, ReadOptions, RecordReason};
use crate::time::{Date, Timestamp};

const NAME_SHAPE: &str = "expected <destination>_segment<id>_<yyyymmddhhmmss>[_<part>].csv";

/// The parts of an export file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AepFileName {
    /// The destination's name (may contain `_`; not empty).
    pub destination: String,
    /// The segment id (not empty, no `_`).
    pub segment_id: String,
    /// When the export was written, UTC, whole seconds.
    pub timestamp: Timestamp,
    /// Part number: 1 when the name has no `_<n>` suffix, else `n >= 2`.
    pub part: u32,
}

impl AepFileName {
    /// Parses a base file name; [`FileReason::BadFileName`] says what was expected.
    pub fn parse(name: &str) -> Result<AepFileName, FileError> {
        let bad = |what: &str| {
            FileError::new(
                name,
                FileReason::BadFileName,
                format!("{what}; {NAME_SHAPE}"),
            )
        };
        let stem = name
            .strip_suffix(".csv")
            .ok_or_else(|| bad("the name does not end in .csv"))?;
        let (rest, last) = stem
            .rsplit_once('_')
            .ok_or_else(|| bad("the name has no _<yyyymmddhhmmss> part"))?;
        let (rest, stamp, part) = if last.len() == 14 && last.bytes().all(|b| b.is_ascii_digit()) {
            (rest, last, 1)
        } else {
            let part = part_number(last)
                .ok_or_else(|| bad("a part number is 2 or more, without leading zeros"))?;
            let (rest, stamp) = rest
                .rsplit_once('_')
                .ok_or_else(|| bad("the name has no _<yyyymmddhhmmss> part"))?;
            (rest, stamp, part)
        };
        let timestamp = name_timestamp(stamp).ok_or_else(|| {
            bad("the timestamp must be 14 digits yyyymmddhhmmss of a real utc date and time")
        })?;
        let (destination, segment) = rest
            .rsplit_once('_')
            .ok_or_else(|| bad("the name has no _segment<id> part"))?;
        let segment_id = segment
            .strip_prefix("segment")
            .ok_or_else(|| bad("the name has no _segment<id> part before the timestamp"))?;
        if segment_id.is_empty() {
            return Err(bad("the segment id is empty"));
        }
        if destination.is_empty() {
            return Err(bad("the destination name is empty"));
        }
        Ok(AepFileName {
            destination: destination.to_owned(),
            segment_id: segment_id.to_owned(),
            timestamp,
            part,
        })
    }

    /// The file name (sub-second time is not written; part 1 has no suffix). Parses back to
    /// `self` when the fields follow the rules [`AepFileName::parse`] checks.
    pub fn render(&self) -> String {
        let (y, mo, d) = self.timestamp.date().ymd();
        let (h, mi, s, _) = self.timestamp.time_of_day();
        let mut out = format!(
            "{}_segment{}_{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}",
            self.destination, self.segment_id
        );
        if self.part != 1 {
            out.push_str(&format!("_{}", self.part));
        }
        out.push_str(".csv");
        out
    }
}

/// A part number: canonical decimal, 2 or more, fits u32.
fn part_number(text: &str) -> Option<u32> {
    if text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&n| n >= 2)
}

/// `yyyymmddhhmmss` as a UTC instant.
fn name_timestamp(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    if bytes.len() != 14 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |range: Range<usize>| text.get(range)?.parse::<u32>().ok();
    let date = Date::from_ymd(i32::try_from(num(0..4)?).ok()?, num(4..6)?, num(6..8)?)?;
    Timestamp::from_date_time(date, num(8..10)?, num(10..12)?, num(12..14)?, 0)
}

/// Which columns of an export to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AepColumns {
    /// Header name of the identity column (e.g. `personalEmail_address`).
    pub identity: String,
    /// Header name of the membership status column (e.g.
    /// `segmentMembership_ups_seg1_status`), if the export has one.
    #[serde(default)]
    pub status: Option<String>,
}

/// A segment membership status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    /// Entered the segment.
    Realized,
    /// Still in the segment.
    Existing,
    /// Left the segment.
    Exited,
}

impl MembershipStatus {
    /// The lower-case name, as the platform writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipStatus::Realized => "realized",
            MembershipStatus::Existing => "existing",
            MembershipStatus::Exited => "exited",
        }
    }

    /// Parses `realized`, `existing` or `exited`, ignoring ASCII case.
    pub fn parse(bytes: &[u8]) -> Option<MembershipStatus> {
        [
            MembershipStatus::Realized,
            MembershipStatus::Existing,
            MembershipStatus::Exited,
        ]
        .into_iter()
        .find(|s| bytes.eq_ignore_ascii_case(s.as_str().as_bytes()))
    }
}

/// One accepted row, borrowed from an [`AepExport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AepRow<'a> {
    /// 1-based line the row starts on.
    pub line: u64,
    /// The identity, verbatim.
    pub identity: &'a str,
    /// The membership status, when a status column was named.
    pub status: Option<MembershipStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowSpan {
    line: u64,
    end: usize,
    status: Option<MembershipStatus>,
}

/// Counts from reading an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AepStats {
    /// Rows accepted.
    pub rows: u64,
    /// Rows rejected as bad records.
    pub rejected: u64,
    /// Empty lines skipped.
    pub empty_lines: u64,
}

/// A read export: accepted rows (identities in one arena) and rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AepExport {
    identities: String,
    spans: Vec<RowSpan>,
    /// Rejected rows.
    pub bad: Vec<BadRecord>,
    /// Counts.
    pub stats: AepStats,
}

impl AepExport {
    /// Number of accepted rows.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no row was accepted.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Row `index`, in file order.
    pub fn get(&self, index: usize) -> Option<AepRow<'_>> {
        let span = self.spans.get(index)?;
        let start = match index.checked_sub(1) {
            Some(prev) => self.spans.get(prev)?.end,
            None => 0,
        };
        Some(AepRow {
            line: span.line,
            identity: self.identities.get(start..span.end)?,
            status: span.status,
        })
    }

    /// The rows, in file order.
    pub fn rows(&self) -> impl Iterator<Item = AepRow<'_>> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

struct Positions {
    width: usize,
    identity: usize,
    status: Option<(usize, String)>,
}

fn row<'r>(
    record: &RecordRef<'r>,
    at: &Positions,
    identity_name: &str,
) -> Result<(&'r str, Option<MembershipStatus>), BadRecord> {
    record.check_width(at.width)?;
    let identity = record.text(at.identity, identity_name)?;
    if identity.is_empty() {
        return Err(record.bad_cell(
            at.identity,
            RecordReason::EmptyValue,
            format!("identity column \"{identity_name}\" is empty"),
        ));
    }
    let status = match &at.status {
        None => None,
        Some((i, name)) => {
            let cell = record.get(*i).unwrap_or_default();
            Some(MembershipStatus::parse(cell).ok_or_else(|| {
                record.bad_cell(
                    *i,
                    RecordReason::BadValue,
                    format!("status column \"{name}\" must be realized, existing or exited"),
                )
            })?)
        }
    };
    Ok((identity, status))
}

/// Reads an export body (plain or gzip); see the module documentation for the rules.
pub fn read(
    file: &str,
    bytes: &[u8],
    columns: &AepColumns,
    options: ReadOptions,
) -> Result<AepExport, FileError> {
    let bytes = input::decode(file, bytes)?;
    let mut reader = CsvReader::new(&bytes);
    let header = Header::read(file, &mut reader)?;
    let positions = Positions {
        width: header.names.len(),
        identity: header.require(file, &columns.identity)?,
        status: match &columns.status {
            Some(name) => Some((header.require(file, name)?, name.clone())),
            None => None,
        },
    };
    let mut problems = Problems::new(file, options);
    let mut identities = String::new();
    let mut spans = Vec::new();
    while let Some(next) = reader.next_record() {
        let accepted = next.and_then(|record| {
            let (identity, status) = row(&record, &positions, &columns.identity)?;
            identities.push_str(identity);
            spans.push(RowSpan {
                line: record.line(),
                end: identities.len(),
                status,
            });
            Ok(())
        });
        if let Err(bad) = accepted {
            problems.push(bad)?;
        }
    }
    let stats = AepStats {
        rows: spans.len() as u64,
        rejected: problems.bad.len() as u64,
        empty_lines: reader.empty_lines(),
    };
    Ok(AepExport {
        identities,
        spans,
        bad: problems.bad,
        stats,
    })
}

/// Writes an export body: the identity column and, with `status_header`, the status column
/// (a row without a status gets an empty cell there, which reads back as a bad record). Row
/// lines are not written. `identity_header` and `status_header` must differ to read back.
pub fn write<'a>(
    identity_header: &str,
    status_header: Option<&str>,
    rows: impl IntoIterator<Item = AepRow<'a>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    match status_header {
        Some(status) => write_record(&mut out, &[identity_header, status]),
        None => write_record(&mut out, &[identity_header]),
    }
    for row in rows {
        match status_header {
            Some(_) => {
                write_field(&mut out, row.identity.as_bytes());
                out.push(b',');
                out.extend_from_slice(row.status.map_or("", |s| s.as_str()).as_bytes());
                out.push(b'\n');
            }
            None => write_record(&mut out, &[row.identity]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ID: &str = "personalEmail_address";
    const STATUS: &str = "segmentMembership_ups_seg1_status";

    fn columns(status: bool) -> AepColumns {
        AepColumns {
            identity: ID.to_owned(),
            status: status.then(|| STATUS.to_owned()),
        }
    }

    fn read_with(input: &[u8], status: bool) -> Result<AepExport, FileError> {
        read("e.csv", input, &columns(status), ReadOptions::default())
    }

    fn rows(export: &AepExport) -> Vec<(u64, &str, Option<MembershipStatus>)> {
        export
            .rows()
            .map(|r| (r.line, r.identity, r.status))
            .collect()
    }

    #[test]
    fn file_names_parse_from_the_right() {
        let name = AepFileName::parse("Email_Marketing_segment7a5f1c2e-0b1d_20260131120000_2.csv")
            .unwrap();
        assert_eq!(
            name,
            AepFileName {
                destination: "Email_Marketing".into(),
                segment_id: "7a5f1c2e-0b1d".into(),
                timestamp: "2026-01-31T12:00:00Z".parse().unwrap(),
                part: 2,
            }
        );
        assert_eq!(
            name.render(),
            "Email_Marketing_segment7a5f1c2e-0b1d_20260131120000_2.csv"
        );
        let one = AepFileName::parse("Dest_segment1_20240229235959.csv").unwrap();
        assert_eq!((one.part, one.destination.as_str()), (1, "Dest"));
        assert_eq!(one.render(), "Dest_segment1_20240229235959.csv");
        // A destination that itself looks like a segment part.
        let odd = AepFileName::parse("a_segmentb_segmentc_20240101000000_10.csv").unwrap();
        assert_eq!(
            (odd.destination.as_str(), odd.segment_id.as_str(), odd.part),
            ("a_segmentb", "c", 10)
        );
    }

    #[test]
    fn bad_file_names_say_what_was_expected() {
        for (name, why) in [
            ("Dest_segment1_20260131120000.txt", "does not end in .csv"),
            (
                "Dest_segment1_20260131120000.csv.gz",
                "does not end in .csv",
            ),
            ("export.csv", "no _<yyyymmddhhmmss>"),
            ("Dest_segment1_2026013112000.csv", "part number"),
            ("Dest_segment1_20260131120000_1.csv", "part number"),
            ("Dest_segment1_20260131120000_02.csv", "part number"),
            ("Dest_segment1_20260131120000_x.csv", "part number"),
            (
                "Dest_segment1_20260131120000_99999999999.csv",
                "part number",
            ),
            ("Dest_segment1_20260230120000.csv", "real utc date"),
            ("Dest_segment1_20260131240000.csv", "real utc date"),
            ("Dest_segment1_20260131125960.csv", "real utc date"),
            (
                "Dest_segment1_x_20260131120000_2.csv",
                "before the timestamp",
            ),
            ("Dest_segment1_2026013112000x_2.csv", "real utc date"),
            ("segment1_20260131120000.csv", "no _segment<id> part"),
            ("Dest_seg1_20260131120000.csv", "before the timestamp"),
            ("Dest_segment_20260131120000.csv", "segment id is empty"),
            ("_segment1_20260131120000.csv", "destination name is empty"),
        ] {
            let err = AepFileName::parse(name).unwrap_err();
            assert_eq!(err.reason, FileReason::BadFileName, "{name}");
            assert_eq!(err.file, name);
            assert!(err.detail.contains(why), "{name}: {}", err.detail);
            assert!(err.detail.ends_with(NAME_SHAPE), "{name}");
        }
    }

    #[test]
    fn reads_identity_and_status() {
        let export = read_with(
            "\u{feff}personalEmail_address,other,segmentMembership_ups_seg1_status\r\n\
             a@example.com,x,realized\r\n\
             \r\n\
             \x20b@example.com ,,EXISTING\r\n\
             \"c,d\",y,exited"
                .as_bytes(),
            true,
        )
        .unwrap();
        assert_eq!(
            rows(&export),
            [
                (2, "a@example.com", Some(MembershipStatus::Realized)),
                (4, " b@example.com ", Some(MembershipStatus::Existing)),
                (5, "c,d", Some(MembershipStatus::Exited)),
            ]
        );
        assert_eq!(
            export.stats,
            AepStats {
                rows: 3,
                rejected: 0,
                empty_lines: 1
            }
        );
        assert_eq!(export.get(3), None);
        // Without a status column named, statuses are not read.
        let export = read_with(b"personalEmail_address,s\nx,whatever\n", false).unwrap();
        assert_eq!(rows(&export), [(2, "x", None)]);
    }

    #[test]
    fn bad_rows() {
        let export = read_with(
            b"segmentMembership_ups_seg1_status,personalEmail_address\n\
              realized,\n\
              unknown,a\n\
              ,b\n\
              exited\n\
              realized,\xffx\n\
              realized,\"open\n\
              ",
            true,
        )
        .unwrap();
        let bad: Vec<_> = export.bad.iter().map(|b| b.located("e.csv")).collect();
        assert_eq!(
            bad,
            [
                "e.csv:2:10: identity column \"personalEmail_address\" is empty (empty_value)",
                "e.csv:3:1: status column \"segmentMembership_ups_seg1_status\" must be realized, existing or exited (bad_value)",
                "e.csv:4:1: status column \"segmentMembership_ups_seg1_status\" must be realized, existing or exited (bad_value)",
                "e.csv:5: expected 2 fields as in the header, found 1 (wrong_field_count)",
                "e.csv:6:10: column \"personalEmail_address\" is not utf-8 (bad_utf8)",
                "e.csv:7:10: quoted field is never closed (bad_fields)",
            ]
        );
        assert!(export.is_empty());
        let err = read(
            "e.csv",
            b"personalEmail_address\n\n\"a\"b\n",
            &columns(false),
            ReadOptions { strict: true },
        )
        .unwrap_err();
        assert_eq!((err.reason, err.line), (FileReason::Strict, Some(3)));
    }

    #[test]
    fn file_errors() {
        assert_eq!(read_with(b"", false).unwrap_err().reason, FileReason::Empty);
        let err = read_with(b"email\n", false).unwrap_err();
        assert_eq!(
            (err.reason, err.detail.as_str()),
            (
                FileReason::MissingColumn,
                "the header has no column \"personalEmail_address\""
            )
        );
        let err = read_with(b"personalEmail_address\n", true).unwrap_err();
        assert_eq!(err.reason, FileReason::MissingColumn);
        assert!(err.detail.contains(STATUS));
        let err = read_with(b"personalEmail_address,a,a\n", false).unwrap_err();
        assert_eq!(err.reason, FileReason::DuplicateColumn);
        let mut body = b"personalEmail_address\n".to_vec();
        body.extend_from_slice(&b"x@example.com\n".repeat(500));
        let full = input::gzip(&body);
        assert_eq!(
            read_with(&full[..full.len() - 3], false)
                .unwrap_err()
                .reason,
            FileReason::TruncatedGzip
        );
        assert_eq!(read_with(&full, false).unwrap().len(), 500);
        assert!(
            read_with(b"personalEmail_address\n", false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn columns_deserialize_strictly() {
        let c: AepColumns = serde_json::from_str(r#"{"identity":"a"}"#).unwrap();
        assert_eq!(c.status, None);
        assert!(serde_json::from_str::<AepColumns>(r#"{"identity":"a","x":1}"#).is_err());
        assert_eq!(
            serde_json::to_string(&MembershipStatus::Exited).unwrap(),
            "\"exited\""
        );
    }

    #[test]
    fn writes_rows() {
        let rows = [
            AepRow {
                line: 9,
                identity: "a,b",
                status: Some(MembershipStatus::Realized),
            },
            AepRow {
                line: 10,
                identity: "c",
                status: Some(MembershipStatus::Exited),
            },
        ];
        assert_eq!(
            String::from_utf8(write(ID, Some(STATUS), rows)).unwrap(),
            format!("{ID},{STATUS}\n\"a,b\",realized\nc,exited\n")
        );
        assert_eq!(
            String::from_utf8(write(ID, None, rows)).unwrap(),
            format!("{ID}\n\"a,b\"\nc\n")
        );
    }

    fn file_name() -> impl Strategy<Value = AepFileName> {
        (
            "[A-Za-z0-9_ .-]{1,16}",
            "[A-Za-z0-9.-]{1,36}",
            Timestamp::MIN.unix_seconds()..=Timestamp::MAX.unix_seconds(),
            prop_oneof![Just(1u32), 2u32..=u32::MAX],
        )
            .prop_map(|(destination, segment_id, seconds, part)| AepFileName {
                destination,
                segment_id,
                timestamp: Timestamp::from_unix_seconds(seconds).unwrap(),
                part,
            })
    }

    proptest! {
        #[test]
        fn file_names_round_trip(name in file_name()) {
            prop_assert_eq!(AepFileName::parse(&name.render()), Ok(name));
        }

        #[test]
        fn file_name_parsing_never_panics(name in "[a-z_0-9.]{0,40}(\\.csv)?") {
            if let Ok(parsed) = AepFileName::parse(&name) {
                prop_assert_eq!(parsed.render(), name);
            }
        }

        #[test]
        fn write_then_read_gives_the_rows(
            rows in proptest::collection::vec(
                ("[a-z@.,\" \r\n\u{e9}]{1,10}", proptest::option::of(prop_oneof![
                    Just(MembershipStatus::Realized),
                    Just(MembershipStatus::Existing),
                    Just(MembershipStatus::Exited),
                ])),
                0..10,
            ),
            with_status in any::<bool>(),
        ) {
            let rows: Vec<(String, Option<MembershipStatus>)> = rows
                .into_iter()
                .map(|(id, s)| (id, if with_status { s.or(Some(MembershipStatus::Existing)) } else { None }))
                .collect();
            let refs = rows.iter().map(|(identity, status)| AepRow { line: 0, identity, status: *status });
            let written = write(ID, with_status.then_some(STATUS), refs);
            let export = read("e.csv", &written, &columns(with_status), ReadOptions { strict: true }).unwrap();
            let back: Vec<(String, Option<MembershipStatus>)> =
                export.rows().map(|r| (r.identity.to_owned(), r.status)).collect();
            prop_assert_eq!(back, rows);
        }

        #[test]
        fn reading_never_panics(bytes in proptest::collection::vec(
            prop_oneof![Just(b'"'), Just(b','), Just(b'\n'), Just(b'e'), any::<u8>()],
            0..100,
        )) {
            let mut input = format!("{ID},{STATUS}\n").into_bytes();
            input.extend_from_slice(&bytes);
            let _ = read_with(&bytes, true);
            let export = read_with(&input, true).unwrap();
            prop_assert_eq!(export.rows().count(), export.len());
        }
    }
}
