//! Recipients CSV into a typed columnar table ([`crate::recipients`], the model) and back.
//!
//! The file is RFC 4180 CSV ([`super::csv`]), optionally gzipped, with a header row that must
//! name an `id` column; every other column becomes an attribute. Reading:
//!
//! - Header: no name twice ([`FileReason::DuplicateColumn`]), no empty name
//!   ([`FileReason::BadHeader`]), an `id` column ([`FileReason::MissingColumn`]). A file with no
//!   record at all is [`FileReason::Empty`]; a header alone is an empty table.
//! - Rows are rejected one by one ([`BadRecord`], reading goes on; the first one stops a strict
//!   read): malformed CSV ([`RecordReason::BadFields`]), a field count other than the header's
//!   ([`RecordReason::WrongFieldCount`]), a cell that is not UTF-8 ([`RecordReason::BadUtf8`]),
//!   an empty id ([`RecordReason::EmptyValue`]). A rejected row takes no part in typing.
//! - The same id on two accepted rows rejects the whole file ([`FileReason::DuplicateKey`],
//!   naming both lines, never the id).
//! - Cells are never trimmed. An empty cell is null. Each attribute column gets the first type
//!   that fits all its non-null cells, in this order: bool (`true`/`false`, any case), integer
//!   (canonical decimal: optional `-`, no `+`, no leading zero except `0` itself, not `-0`,
//!   fits i64 — so `01234` is not one), float (decimal with a `.` between digits and/or an
//!   exponent, finite — not `nan`, `inf`, `.5` or `5.`), date (`YYYY-MM-DD`), date-time
//!   (RFC 3339, see [`crate::time`]), string. A column mixing integers and floats is float
//!   (integers beyond 2^53 lose precision). A column with no non-null cell is string.
//! - The `id` column is integer ([`RecipientIds::Int`]) when every id is a canonical decimal
//!   i64 (also when there are no rows), otherwise string (see [`crate::recipients`]).
//!
//! [`write()`] writes `id` first, then the attributes in table order; values in canonical form
//! (floats always with a `.` or an exponent, date-times in UTC). `read(write(t)) == t` holds for
//! every table [`read`] produces; a hand-built table may re-type (a string column whose values
//! all look like integers, an all-null non-string column, a non-finite float, ids given as
//! strings that are all canonical integers, an empty string that is not null).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::csv::{CsvReader, Header, RecordRef, write_field};
use super::input;
use super::problem::{BadRecord, FileError, FileReason, Problems, ReadOptions, RecordReason};
use crate::recipients::{
    Column, ColumnData, ColumnType, ID_COLUMN, RecipientIds, RecipientsTable, Strings,
    canonical_i64,
};
use crate::time::{Date, Timestamp};

/// Counts from reading a recipients file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecipientsStats {
    /// Rows in the table.
    pub rows: u64,
    /// Rows rejected as bad records.
    pub rejected: u64,
    /// Empty lines skipped.
    pub empty_lines: u64,
}

/// A read recipients file.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientsFile {
    /// The accepted rows.
    pub table: RecipientsTable,
    /// 1-based line each table row starts on.
    pub lines: Vec<u64>,
    /// Rejected rows.
    pub bad: Vec<BadRecord>,
    /// Counts.
    pub stats: RecipientsStats,
    /// Where reading a part stopped, and the types its values call for.
    pub extent: Extent,
}

/// How to read one part of a recipients file too large to read at once: the host sends it in
/// parts, each but the first after a copy of the header line, as decoded (not gzip) bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartSpec {
    /// More of the file follows this part: a last record the cut splits is left for the next
    /// part ([`Extent::consumed`] says where that starts).
    pub more: bool,
    /// The line in the whole file of the first line after the part's header (none: the part
    /// starts the file).
    pub first_line: Option<u64>,
    /// Types to give columns by name (`id` too) whose values fit them
    /// ([`ColumnType::holds`]): a string column keeps its cells verbatim, a float column takes
    /// integers. A column whose values do not fit gets the type they call for (the caller
    /// compares with [`Extent::inferred`]).
    pub types: BTreeMap<String, ColumnType>,
}

/// Where reading stopped and what the values called for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// Bytes of the input read (its header included): all of it, or up to the record a part's
    /// cut splits. A part with no whole record after its header has read only the header; one
    /// whose header the cut splits has read nothing (0: send a longer part).
    pub consumed: u64,
    /// Bytes of the header record with its line ending (0 when the cut splits it).
    pub header_len: u64,
    /// The line the first unread record starts on (the next part's `first_line`).
    pub next_line: u64,
    /// Each column, `id` first, in header order, with the type its accepted values call for on
    /// their own (`None`: no value) — what [`ColumnType::join`] combines across parts.
    pub inferred: Vec<(String, Option<ColumnType>)>,
}

/// The value of a float cell: `-`? digits (`.` digits)? ([eE] [+-]? digits)?, with a `.` or an
/// exponent, finite.
fn float_value(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let digits_from = |i: usize| {
        bytes.get(i..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let whole = digits_from(i);
    if whole == 0 {
        return None;
    }
    i += whole;
    let mut shaped = false;
    if bytes.get(i) == Some(&b'.') {
        let fraction = digits_from(i + 1);
        if fraction == 0 {
            return None;
        }
        i += 1 + fraction;
        shaped = true;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent = digits_from(i);
        if exponent == 0 {
            return None;
        }
        i += exponent;
        shaped = true;
    }
    if !shaped || i != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn bool_value(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

const BOOL: u8 = 1;
const INT: u8 = 2;
const FLOAT: u8 = 4;
const DATE: u8 = 8;
const DATETIME: u8 = 16;
const ANY: u8 = BOOL | INT | FLOAT | DATE | DATETIME;

/// The types a non-empty cell fits.
fn classify(text: &str) -> u8 {
    if bool_value(text).is_some() {
        BOOL
    } else if canonical_i64(text.as_bytes()).is_some() {
        INT | FLOAT
    } else if float_value(text).is_some() {
        FLOAT
    } else if Date::parse(text.as_bytes()).is_ok() {
        DATE
    } else if Timestamp::parse(text.as_bytes()).is_ok() {
        DATETIME
    } else {
        0
    }
}

/// Raw cells of one column while reading, with the types all its non-null cells fit.
struct Pending {
    cells: Strings,
    fits: u8,
    non_null: usize,
}

impl Pending {
    fn push(&mut self, text: &str) {
        if text.is_empty() {
            self.cells.push(None);
        } else {
            self.cells.push(Some(text));
            self.fits &= classify(text);
            self.non_null += 1;
        }
    }

    /// The type the column's values call for on their own (`None`: no value).
    fn inferred(&self) -> Option<ColumnType> {
        if self.non_null == 0 {
            None
        } else if self.fits & BOOL != 0 {
            Some(ColumnType::Bool)
        } else if self.fits & INT != 0 {
            Some(ColumnType::Int)
        } else if self.fits & FLOAT != 0 {
            Some(ColumnType::Float)
        } else if self.fits & DATE != 0 {
            Some(ColumnType::Date)
        } else if self.fits & DATETIME != 0 {
            Some(ColumnType::DateTime)
        } else {
            Some(ColumnType::String)
        }
    }

    /// The column's data: of type `forced` when that holds the inferred type, else of the
    /// inferred type (string when there is no value).
    fn into_data(self, forced: Option<ColumnType>) -> ColumnData {
        fn typed<T>(cells: &Strings, parse: impl Fn(&str) -> Option<T>) -> Vec<Option<T>> {
            cells.iter().map(|c| c.and_then(&parse)).collect()
        }
        let inferred = self.inferred();
        let ty = match (forced, inferred) {
            (Some(forced), None) => forced,
            (Some(forced), Some(inferred)) if forced.holds(inferred) => forced,
            (_, Some(inferred)) => inferred,
            (None, None) => ColumnType::String,
        };
        let cells = self.cells;
        match ty {
            ColumnType::Bool => ColumnData::Bool(typed(&cells, bool_value)),
            ColumnType::Int => ColumnData::Int(typed(&cells, |c| canonical_i64(c.as_bytes()))),
            ColumnType::Float => ColumnData::Float(typed(&cells, |c| c.parse::<f64>().ok())),
            ColumnType::Date => ColumnData::Date(typed(&cells, |c| Date::parse(c.as_bytes()).ok())),
            ColumnType::DateTime => {
                ColumnData::DateTime(typed(&cells, |c| Timestamp::parse(c.as_bytes()).ok()))
            }
            ColumnType::String => ColumnData::String(cells),
        }
    }
}

/// Checks a row: field count, UTF-8 everywhere, a non-empty id.
fn check_row(record: &RecordRef<'_>, header: &Header, id: usize) -> Result<(), BadRecord> {
    record.check_width(header.names.len())?;
    for (i, name) in header.names.iter().enumerate() {
        record.text(i, name)?;
    }
    if record.get(id).is_none_or(<[u8]>::is_empty) {
        return Err(record.bad_cell(id, RecordReason::EmptyValue, "recipient id is empty"));
    }
    Ok(())
}

/// Reads a recipients CSV (plain or gzip); see the module documentation for the rules.
pub fn read(file: &str, bytes: &[u8], options: ReadOptions) -> Result<RecipientsFile, FileError> {
    read_part(file, bytes, options, &PartSpec::default())
}

/// Reads one part of a recipients CSV ([`PartSpec`]; the default spec reads a whole file, as
/// [`read`]). Line numbers, bad records and the duplicate-id check are those of the part; the
/// caller checks ids across parts.
pub fn read_part(
    file: &str,
    bytes: &[u8],
    options: ReadOptions,
    part: &PartSpec,
) -> Result<RecipientsFile, FileError> {
    if part.more && input::is_gzip(bytes) {
        return Err(FileError::new(
            file,
            FileReason::BadGzip,
            "a part of a file is read decompressed",
        ));
    }
    let bytes = input::decode(file, bytes)?;
    let mut reader = if part.more {
        CsvReader::part(&bytes)
    } else {
        CsvReader::new(&bytes)
    };
    let header = match Header::read(file, &mut reader) {
        Err(e) if e.reason == FileReason::Empty && reader.is_incomplete() => {
            return Ok(RecipientsFile {
                table: RecipientsTable {
                    ids: RecipientIds::Int(Vec::new()),
                    columns: Vec::new(),
                },
                lines: Vec::new(),
                bad: Vec::new(),
                stats: RecipientsStats::default(),
                extent: Extent {
                    next_line: part.first_line.unwrap_or(1),
                    ..Extent::default()
                },
            });
        }
        read => read?,
    };
    let header_len = reader.consumed() as u64;
    if let Some(line) = part.first_line {
        reader.set_line(line);
    }
    let id = header.require(file, ID_COLUMN)?;
    let mut problems = Problems::new(file, options);
    let mut pending: Vec<Pending> = header
        .names
        .iter()
        .map(|_| Pending {
            cells: Strings::new(),
            fits: ANY,
            non_null: 0,
        })
        .collect();
    let mut lines = Vec::new();
    while let Some(next) = reader.next_record() {
        let checked = next.and_then(|record| {
            check_row(&record, &header, id)?;
            for (i, column) in pending.iter_mut().enumerate() {
                let cell = record.get(i).unwrap_or_default();
                column.push(std::str::from_utf8(cell).unwrap_or_default());
            }
            lines.push(record.line());
            Ok(())
        });
        if let Err(bad) = checked {
            problems.push(bad)?;
        }
    }
    let empty_lines = reader.empty_lines();
    let mut inferred: Vec<(String, Option<ColumnType>)> = header
        .names
        .iter()
        .zip(&pending)
        .map(|(name, column)| (name.clone(), column.inferred()))
        .collect();
    // `id` first: the type its values call for is int or string.
    let id_inferred = inferred.remove(id);
    inferred.insert(
        0,
        (
            id_inferred.0,
            id_inferred.1.map(|t| {
                if t == ColumnType::Int {
                    t
                } else {
                    ColumnType::String
                }
            }),
        ),
    );
    let extent = Extent {
        consumed: reader.consumed() as u64,
        header_len,
        next_line: reader.line(),
        inferred,
    };

    let mut columns = Vec::with_capacity(pending.len().saturating_sub(1));
    let mut ids = RecipientIds::Int(Vec::new());
    for (i, (column, name)) in pending.into_iter().zip(header.names).enumerate() {
        let forced = part.types.get(&name).copied();
        if i == id {
            let int = column.fits & INT != 0 && forced != Some(ColumnType::String);
            ids = if int {
                let values = column.cells.iter();
                RecipientIds::Int(
                    values
                        .map(|c| c.and_then(|c| canonical_i64(c.as_bytes())).unwrap_or(0))
                        .collect(),
                )
            } else {
                RecipientIds::String(column.cells)
            };
        } else {
            columns.push(Column {
                name,
                data: column.into_data(forced),
            });
        }
    }
    check_unique(file, &ids, &lines)?;
    let stats = RecipientsStats {
        rows: lines.len() as u64,
        rejected: problems.bad.len() as u64,
        empty_lines,
    };
    Ok(RecipientsFile {
        table: RecipientsTable { ids, columns },
        lines,
        bad: problems.bad,
        stats,
        extent,
    })
}

/// [`FileReason::DuplicateKey`] for the first repeated id in file order.
fn check_unique(file: &str, ids: &RecipientIds, lines: &[u64]) -> Result<(), FileError> {
    let rows = ids.sorted_rows();
    // (line of the repeat, line of the first occurrence), earliest repeat first.
    let mut worst: Option<(u64, u64)> = None;
    let mut group_first = None;
    for pair in rows.windows(2) {
        let [a, b] = *pair else { continue };
        if !ids.same(a, b) {
            group_first = None;
            continue;
        }
        if group_first.is_some() {
            continue;
        }
        // Stable sort: `a` is the first occurrence, `b` the first repeat.
        group_first = Some(a);
        let line = |row: usize| lines.get(row).copied().unwrap_or(0);
        let candidate = (line(b), line(a));
        if worst.is_none_or(|w| candidate < w) {
            worst = Some(candidate);
        }
    }
    match worst {
        None => Ok(()),
        Some((repeat, first)) => Err(duplicate_id(file, repeat, first)),
    }
}

/// [`FileReason::DuplicateKey`]: the recipient id on line `repeat` repeats line `first` (also
/// for a caller that checks ids across the parts of a file).
pub fn duplicate_id(file: &str, repeat: u64, first: u64) -> FileError {
    FileError::new(
        file,
        FileReason::DuplicateKey,
        format!("recipient id on line {repeat} repeats line {first}"),
    )
    .at_line(repeat)
}

/// Writes `table` as CSV: `id`, then the attributes in order, one line per row.
pub fn write(table: &RecipientsTable) -> Vec<u8> {
    let mut out = Vec::new();
    write_field(&mut out, ID_COLUMN.as_bytes());
    for column in &table.columns {
        out.push(b',');
        write_field(&mut out, column.name.as_bytes());
    }
    out.push(b'\n');
    let mut cell = String::new();
    for row in 0..table.len() {
        cell.clear();
        match &table.ids {
            RecipientIds::Int(ids) => {
                let _ = write!(cell, "{}", ids.get(row).copied().unwrap_or(0));
            }
            RecipientIds::String(ids) => cell.push_str(ids.get(row).unwrap_or_default()),
        }
        if table.columns.is_empty() && cell.is_empty() {
            // One empty field alone must be quoted to stay a record.
            out.extend_from_slice(b"\"\"\n");
            continue;
        }
        write_field(&mut out, cell.as_bytes());
        for column in &table.columns {
            cell.clear();
            column.data.write_value(row, &mut cell);
            out.push(b',');
            write_field(&mut out, cell.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::recipients::RecipientKey;

    fn read_ok(input: &str) -> RecipientsFile {
        read("r.csv", input.as_bytes(), ReadOptions::default()).unwrap()
    }

    fn read_err(input: &[u8]) -> FileError {
        read("r.csv", input, ReadOptions::default()).unwrap_err()
    }

    fn types(file: &RecipientsFile) -> Vec<(&str, ColumnType)> {
        file.table
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.data.column_type()))
            .collect()
    }

    #[test]
    fn float_shapes() {
        for (text, value) in [
            ("1.5", Some(1.5)),
            ("-0.25", Some(-0.25)),
            ("1e3", Some(1000.0)),
            ("1.5E-2", Some(0.015)),
            ("2e+2", Some(200.0)),
            ("007.5", Some(7.5)),
            ("1", None),
            (".5", None),
            ("5.", None),
            ("1e", None),
            ("+1.5", None),
            ("nan", None),
            ("inf", None),
            ("NaN", None),
            ("1e999", None),
            ("1.5 ", None),
            ("1,5", None),
        ] {
            assert_eq!(float_value(text), value, "{text:?}");
        }
    }

    #[test]
    fn column_types_are_inferred_in_order() {
        let file = read_ok(
            "id,flag,n,x,day,at,zip,mixed,none,spaced\n\
             1,TRUE,10,1,2024-02-29,2026-01-31T12:00:00Z,01234,true,,1\n\
             2,false,-3,2.5,2024-03-01,2026-01-31 13:00:00+01:00,10001,1,, 2\n\
             3,,,,,,,,,\n",
        );
        assert_eq!(
            types(&file),
            [
                ("flag", ColumnType::Bool),
                ("n", ColumnType::Int),
                ("x", ColumnType::Float),
                ("day", ColumnType::Date),
                ("at", ColumnType::DateTime),
                ("zip", ColumnType::String),
                ("mixed", ColumnType::String),
                ("none", ColumnType::String),
                ("spaced", ColumnType::String),
            ]
        );
        let data = |name| &file.table.column(name).unwrap().data;
        assert_eq!(
            data("flag"),
            &ColumnData::Bool(vec![Some(true), Some(false), None])
        );
        assert_eq!(data("n"), &ColumnData::Int(vec![Some(10), Some(-3), None]));
        assert_eq!(
            data("x"),
            &ColumnData::Float(vec![Some(1.0), Some(2.5), None])
        );
        let at = "2026-01-31T12:00:00Z".parse().ok();
        assert_eq!(data("at"), &ColumnData::DateTime(vec![at, at, None]));
        assert_eq!(
            data("spaced"),
            &ColumnData::String([Some("1"), Some(" 2"), None].into_iter().collect())
        );
        assert_eq!(file.table.ids, RecipientIds::Int(vec![1, 2, 3]));
    }

    #[test]
    fn ids_are_integer_or_string_and_order_by_type() {
        let file = read_ok("id\n10\n9\n-1\n");
        assert_eq!(file.table.ids, RecipientIds::Int(vec![10, 9, -1]));
        assert_eq!(file.table.sorted_rows(), [2, 1, 0]);
        let file = read_ok("id\n10\n9\n09\n");
        assert!(matches!(file.table.ids, RecipientIds::String(_)));
        // Bytewise: "09" < "10" < "9".
        assert_eq!(file.table.sorted_rows(), [2, 0, 1]);
        assert_eq!(
            file.table.ids.key(1),
            Some(RecipientKey::String("9".into()))
        );
        assert_eq!(RecipientKey::parse("42"), RecipientKey::Int(42));
        assert_eq!(RecipientKey::parse("042").to_string(), "042");
        assert!(RecipientKey::Int(i64::MAX) < RecipientKey::String(String::new()));
        let empty = read_ok("name,id\r\n");
        assert!(empty.table.is_empty());
        assert_eq!(empty.table.ids, RecipientIds::Int(vec![]));
        assert_eq!(types(&empty), [("name", ColumnType::String)]);
    }

    #[test]
    fn bad_rows_are_rejected_and_reading_goes_on() {
        let file = read(
            "r.csv",
            b"id,name\n1,a\n2\n,b\n3,\xff\n4,x\"y\n5,\"ok\"\n",
            ReadOptions::default(),
        )
        .unwrap();
        let bad: Vec<_> = file
            .bad
            .iter()
            .map(|b| (b.line, b.column, b.reason))
            .collect();
        assert_eq!(
            bad,
            [
                (3, None, RecordReason::WrongFieldCount),
                (4, Some(1), RecordReason::EmptyValue),
                (5, Some(3), RecordReason::BadUtf8),
                (6, Some(4), RecordReason::BadFields),
            ]
        );
        assert_eq!(file.table.ids, RecipientIds::Int(vec![1, 5]));
        assert_eq!(file.lines, [2, 7]);
        assert_eq!(
            file.stats,
            RecipientsStats {
                rows: 2,
                rejected: 4,
                empty_lines: 0
            }
        );
        // Strict: the first bad record stops the read.
        let err = read(
            "r.csv",
            b"id,name\n1,a\n2\n,b\n",
            ReadOptions { strict: true },
        )
        .unwrap_err();
        assert_eq!((err.reason, err.line), (FileReason::Strict, Some(3)));
        assert_eq!(
            err.record.map(|r| r.reason),
            Some(RecordReason::WrongFieldCount)
        );
    }

    #[test]
    fn duplicate_ids_reject_the_file_without_echoing_them() {
        let err = read_err(b"id,n\n7,a\n8,b\n9,c\n8,d\n7,e\n");
        assert_eq!(err.reason, FileReason::DuplicateKey);
        assert_eq!(err.detail, "recipient id on line 5 repeats line 3");
        assert_eq!(err.line, Some(5));
        let err = read_err(b"id\nab\ncd\nab\n");
        assert_eq!(err.detail, "recipient id on line 4 repeats line 2");
        // A rejected row does not count as a repeat.
        assert!(read("r.csv", b"id,n\n1,a\n1\n", ReadOptions::default()).is_ok());
    }

    #[test]
    fn file_level_errors() {
        assert_eq!(read_err(b"").reason, FileReason::Empty);
        assert_eq!(read_err(b"\xEF\xBB\xBF\n\n").reason, FileReason::Empty);
        let err = read_err(b"name,email\n1,2\n");
        assert_eq!(
            (err.reason, err.detail.as_str()),
            (FileReason::MissingColumn, "the header has no column \"id\"")
        );
        let err = read_err(b"id,name,name\n");
        assert_eq!(err.reason, FileReason::DuplicateColumn);
        assert!(err.detail.contains("\"name\""));
        assert_eq!(read_err(b"id,,x\n").reason, FileReason::BadHeader);
        assert_eq!(read_err(b"id,\xfe\n").reason, FileReason::BadHeader);
        // Names are exact: no trimming, no case folding.
        assert_eq!(read_err(b"ID\n1\n").reason, FileReason::MissingColumn);
        assert_eq!(read_err(b" id\n1\n").reason, FileReason::MissingColumn);
        let full = input::gzip(&b"id,n\n1,2\n".repeat(500));
        assert_eq!(
            read_err(&full[..full.len() / 2]).reason,
            FileReason::TruncatedGzip
        );
        let back = read("r.csv.gz", &full[..], ReadOptions::default());
        assert_eq!(back.unwrap_err().reason, FileReason::DuplicateKey);
    }

    #[test]
    fn bom_crlf_and_last_line_without_newline() {
        let plain = read_ok("id,n\n1,x\n2,y\n");
        let other = read_ok("\u{feff}id,n\r\n1,x\r\n\r\n2,y");
        assert_eq!(plain.table, other.table);
        assert_eq!(other.lines, [2, 4]);
        assert_eq!(other.stats.empty_lines, 1);
        let gz = read(
            "r.csv.gz",
            &input::gzip(b"id,n\n1,x\n2,y\n"),
            ReadOptions::default(),
        );
        assert_eq!(gz.unwrap().table, plain.table);
    }

    #[test]
    fn writes_canonical_values() {
        let file = read_ok(
            "n,id,x,at,flag,s\n\
             1,b,1,2026-01-31T12:00:00+01:00,TRUE,\"a,b\"\n\
             2,a,2.5,,,\n\
             3,c,1e20,2026-01-31T12:00:00.5Z,false,x\n",
        );
        let text = String::from_utf8(write(&file.table)).unwrap();
        assert_eq!(
            text,
            "id,n,x,at,flag,s\n\
             b,1,1.0,2026-01-31T11:00:00Z,true,\"a,b\"\n\
             a,2,2.5,,,\n\
             c,3,1e20,2026-01-31T12:00:00.500000Z,false,x\n"
        );
        assert_eq!(read_ok(&text).table, file.table);
    }

    /// One line per column, `|` between rows, then the rejects.
    fn render(file: &RecipientsFile) -> String {
        let table = &file.table;
        let mut out = format!("{:?}\nlines: {:?}\n", file.stats, file.lines);
        let keys: Vec<String> = (0..table.len())
            .map(|i| format!("{:?}", table.ids.key(i).unwrap()))
            .collect();
        out.push_str(&format!("id: {}\n", keys.join(" | ")));
        for column in &table.columns {
            let cells: Vec<String> = (0..table.len())
                .map(|i| {
                    let mut cell = String::new();
                    column.data.write_value(i, &mut cell);
                    match (&column.data, cell.is_empty()) {
                        (ColumnData::String(s), _) if !s.is_null(i) => format!("{cell:?}"),
                        (_, true) => "null".to_owned(),
                        _ => cell,
                    }
                })
                .collect();
            out.push_str(&format!(
                "{} ({:?}): {}\n",
                column.name,
                column.data.column_type(),
                cells.join(" | ")
            ));
        }
        out.push_str(&format!("sorted rows: {:?}\n", table.sorted_rows()));
        for bad in &file.bad {
            out.push_str(&format!("{}\n", bad.located("r.csv")));
        }
        out
    }

    #[test]
    fn snapshot_of_a_small_file() {
        let file = read_ok(
            "\u{feff}id,email,vip,score,born,last_order,zip\r\n\
             1001,ana@example.com,true,12.5,1990-04-01,2026-01-30T08:15:00+01:00,01234\r\n\
             1002,\"bo, jr@example.com\",FALSE,7,,2026-01-31T12:00:00Z,75001\r\n\
             1003,cy@example.com,,,1985-12-31,,\r\n\
             \r\n\
             ,no-id@example.com,true,1,2000-01-01,,1\r\n\
             1004,too-few@example.com\r\n\
             1005,\"broken\"quote,true,1,2000-01-01,,1\r\n\
             1006,di@example.com,false,3,1970-01-01,2026-02-01T00:00:00.25-05:00,10115",
        );
        insta::assert_snapshot!(render(&file));
    }

    fn value_strategy(kind: ColumnType) -> BoxedStrategy<String> {
        match kind {
            ColumnType::Bool => prop_oneof![Just("true"), Just("FALSE"), Just("True")]
                .prop_map(str::to_owned)
                .boxed(),
            ColumnType::Int => any::<i64>().prop_map(|n| n.to_string()).boxed(),
            ColumnType::Float => prop_oneof![
                any::<i32>().prop_map(|n| format!("{n}.0")),
                any::<f64>()
                    .prop_filter("finite", |x| x.is_finite())
                    .prop_map(|x| format!("{x:e}")),
            ]
            .boxed(),
            ColumnType::Date => (-719_528i32..=2_932_896)
                .prop_map(|d| Date::from_days(d).unwrap().to_string())
                .boxed(),
            ColumnType::DateTime => (Timestamp::MIN.unix_micros()..=Timestamp::MAX.unix_micros())
                .prop_map(|t| Timestamp::from_unix_micros(t).unwrap().to_string())
                .boxed(),
            ColumnType::String => "[ -~\u{e9}\n\r]{1,8}".boxed(),
        }
    }

    /// CSV text of a random table; cells may be null; types may mix (then re-typing applies).
    fn csv_text() -> impl Strategy<Value = String> {
        let kind = prop_oneof![
            Just(ColumnType::Bool),
            Just(ColumnType::Int),
            Just(ColumnType::Float),
            Just(ColumnType::Date),
            Just(ColumnType::DateTime),
            Just(ColumnType::String),
        ];
        (
            proptest::collection::vec(kind, 1..5),
            0usize..8,
            any::<bool>(),
        )
            .prop_flat_map(|(kinds, rows, int_ids)| {
                let columns: Vec<_> = kinds
                    .iter()
                    .map(|&k| {
                        proptest::collection::vec(
                            proptest::option::weighted(0.8, value_strategy(k)),
                            rows,
                        )
                    })
                    .collect();
                let ids = if int_ids {
                    proptest::collection::btree_set(any::<i64>().prop_map(|n| n.to_string()), rows)
                        .boxed()
                } else {
                    proptest::collection::btree_set("[a-z0-9,\"]{1,5}", rows).boxed()
                };
                (ids, columns)
            })
            .prop_map(|(ids, columns)| {
                let mut out = Vec::new();
                let names: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
                let mut header = vec![ID_COLUMN.to_owned()];
                header.extend(names);
                super::super::csv::write_record(&mut out, &header);
                for (row, id) in ids.iter().enumerate() {
                    let mut record = vec![id.clone()];
                    for column in &columns {
                        record.push(column.get(row).cloned().flatten().unwrap_or_default());
                    }
                    super::super::csv::write_record(&mut out, &record);
                }
                String::from_utf8(out).unwrap()
            })
    }

    /// A column of `rows` values with at least one non-null, from typed values.
    fn typed_column(rows: usize) -> impl Strategy<Value = ColumnData> {
        fn values<T: std::fmt::Debug + Clone + 'static>(
            value: impl Strategy<Value = T> + Clone + 'static,
            rows: usize,
        ) -> impl Strategy<Value = Vec<Option<T>>> {
            (
                value.clone(),
                proptest::collection::vec(proptest::option::of(value), rows - 1),
                0..rows,
            )
                .prop_map(|(first, mut rest, at)| {
                    rest.insert(at, Some(first));
                    rest
                })
        }
        let date = (-719_528i32..=2_932_896).prop_map(|d| Date::from_days(d).unwrap());
        let instant = (Timestamp::MIN.unix_micros()..=Timestamp::MAX.unix_micros())
            .prop_map(|t| Timestamp::from_unix_micros(t).unwrap());
        let float = any::<f64>().prop_filter("finite", |x| x.is_finite());
        prop_oneof![
            values(any::<bool>(), rows).prop_map(ColumnData::Bool),
            values(any::<i64>(), rows).prop_map(ColumnData::Int),
            values(float, rows).prop_map(ColumnData::Float),
            values(date, rows).prop_map(ColumnData::Date),
            values(instant, rows).prop_map(ColumnData::DateTime),
            values("x[ -~\u{e9}\n\r]{0,6}", rows)
                .prop_map(|v| ColumnData::String(v.iter().map(Option::as_deref).collect())),
        ]
    }

    /// A table as [`read`] would produce it: typed columns with a non-null value each.
    fn table() -> impl Strategy<Value = RecipientsTable> {
        (1usize..6, any::<bool>())
            .prop_flat_map(|(rows, int_ids)| {
                let ids = if int_ids {
                    proptest::collection::btree_set(any::<i64>(), rows)
                        .prop_map(|ids| RecipientIds::Int(ids.into_iter().collect()))
                        .boxed()
                } else {
                    proptest::collection::btree_set("x[a-z0-9,\" ]{0,4}", rows)
                        .prop_map(|ids| {
                            RecipientIds::String(ids.iter().map(|s| Some(s.as_str())).collect())
                        })
                        .boxed()
                };
                (ids, proptest::collection::vec(typed_column(rows), 0..5))
            })
            .prop_map(|(ids, data)| RecipientsTable {
                ids,
                columns: data
                    .into_iter()
                    .enumerate()
                    .map(|(i, data)| Column {
                        name: format!("col {i}"),
                        data,
                    })
                    .collect(),
            })
    }

    /// Appends `more`'s rows to `table` (same columns, same types).
    fn append(table: &mut RecipientsTable, more: RecipientsTable) {
        match (&mut table.ids, more.ids) {
            (RecipientIds::Int(a), RecipientIds::Int(b)) => a.extend(b),
            (RecipientIds::String(a), RecipientIds::String(b)) => b.iter().for_each(|v| a.push(v)),
            (a, b) => panic!("id types differ: {a:?} and {b:?}"),
        }
        for (a, b) in table.columns.iter_mut().zip(more.columns) {
            assert_eq!(a.name, b.name);
            match (&mut a.data, b.data) {
                (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend(b),
                (ColumnData::Int(a), ColumnData::Int(b)) => a.extend(b),
                (ColumnData::Float(a), ColumnData::Float(b)) => a.extend(b),
                (ColumnData::Date(a), ColumnData::Date(b)) => a.extend(b),
                (ColumnData::DateTime(a), ColumnData::DateTime(b)) => a.extend(b),
                (ColumnData::String(a), ColumnData::String(b)) => b.iter().for_each(|v| a.push(v)),
                (a, b) => panic!("column types differ: {a:?} and {b:?}"),
            }
        }
    }

    /// Reads `bytes` the way the host reads a large file: in parts of about `step` bytes,
    /// each after a copy of the header; a first pass joins the types the parts call for, a
    /// second reads them with those types forced. Returns the parts put together.
    fn read_in_parts(bytes: &[u8], step: usize) -> Result<RecipientsFile, FileError> {
        let pass =
            |types: &BTreeMap<String, ColumnType>| -> Result<Vec<RecipientsFile>, FileError> {
                let mut files = Vec::new();
                let mut header: Vec<u8> = Vec::new();
                let (mut pos, mut line, mut end) = (0, None, step.min(bytes.len()));
                loop {
                    let more = end < bytes.len();
                    let payload = [&header[..], &bytes[pos..end]].concat();
                    let spec = PartSpec {
                        more,
                        first_line: line,
                        types: types.clone(),
                    };
                    let file = read_part("r.csv", &payload, ReadOptions::default(), &spec)?;
                    let consumed = file.extent.consumed as usize - header.len();
                    if header.is_empty() && file.extent.header_len > 0 {
                        header = bytes[..file.extent.header_len as usize].to_vec();
                    }
                    let whole_records = file.extent.consumed > file.extent.header_len;
                    line = Some(file.extent.next_line);
                    if !more {
                        files.push(file);
                        return Ok(files);
                    }
                    if whole_records {
                        files.push(file);
                        pos += consumed;
                        end = (pos + step).min(bytes.len());
                    } else {
                        // Not one whole record after the header: a longer part.
                        if pos == 0 {
                            header.clear();
                            line = None;
                        }
                        end = (end + step).min(bytes.len());
                    }
                }
            };
        let mut types: BTreeMap<String, Option<ColumnType>> = BTreeMap::new();
        for file in pass(&BTreeMap::new())? {
            for (name, inferred) in file.extent.inferred {
                let joined = ColumnType::join(types.get(&name).copied().flatten(), inferred);
                types.insert(name, joined);
            }
        }
        let forced = types
            .into_iter()
            .filter_map(|(n, t)| Some((n, t?)))
            .collect();
        let mut files = pass(&forced)?.into_iter();
        let mut all = files.next().expect("a first part");
        for file in files {
            append(&mut all.table, file.table);
            all.lines.extend(file.lines);
            all.bad.extend(file.bad);
            all.stats.rows += file.stats.rows;
            all.stats.rejected += file.stats.rejected;
            all.stats.empty_lines += file.stats.empty_lines;
        }
        Ok(all)
    }

    /// CSV text whose columns mix types from row to row (so parts call for different types)
    /// and may hold bad rows and empty lines.
    fn mixed_csv_text() -> impl Strategy<Value = String> {
        let cell = prop_oneof![
            3 => Just(String::new()),
            2 => Just("true".to_owned()),
            3 => (-50i64..50).prop_map(|n| n.to_string()),
            2 => (-50i64..50).prop_map(|n| format!("{n}.5")),
            1 => Just("2024-02-29".to_owned()),
            1 => Just("x,\"y\"\nz".to_owned()),
        ];
        let row = (
            prop_oneof![4 => (0u32..1000).prop_map(|n| n.to_string()), 1 => Just("a".to_owned())],
            proptest::collection::vec(cell, 2),
            0u8..12,
        );
        proptest::collection::vec(row, 0..16).prop_map(|rows| {
            let mut out = b"id,a,b\n".to_vec();
            let mut seen = std::collections::HashSet::new();
            for (id, cells, extra) in rows {
                let id = if seen.insert(id.clone()) {
                    id
                } else {
                    format!("{id}-{}", seen.len())
                };
                seen.insert(id.clone());
                match extra {
                    0 => out.extend_from_slice(b"\n"),
                    1 => out.extend_from_slice(b"too,few\n"),
                    _ => {}
                }
                let mut record = vec![id];
                record.extend(cells);
                super::super::csv::write_record(&mut out, &record);
            }
            String::from_utf8(out).unwrap()
        })
    }

    proptest! {
        /// A file read in parts (the host's way for large files) gives exactly what reading
        /// it whole gives: table, types, lines, bad rows and counts.
        #[test]
        fn parts_read_what_the_whole_reads(text in mixed_csv_text(), step in 1usize..40) {
            let whole = read("r.csv", text.as_bytes(), ReadOptions::default()).unwrap();
            let parts = read_in_parts(text.as_bytes(), step).unwrap();
            prop_assert_eq!(&parts.table, &whole.table);
            prop_assert_eq!(&parts.lines, &whole.lines);
            prop_assert_eq!(&parts.bad, &whole.bad);
            prop_assert_eq!(parts.stats, whole.stats);
        }

        #[test]
        fn read_write_read_is_stable(text in csv_text()) {
            let first = read("r.csv", text.as_bytes(), ReadOptions { strict: true }).unwrap();
            let written = write(&first.table);
            let second = read("r.csv", &written, ReadOptions { strict: true }).unwrap();
            prop_assert_eq!(&second.table, &first.table);
            prop_assert_eq!(write(&second.table), written);
        }

        #[test]
        fn generated_tables_round_trip(table in table()) {
            let back = read("r.csv", &write(&table), ReadOptions { strict: true }).unwrap();
            prop_assert_eq!(back.table, table);
        }

        #[test]
        fn reading_never_panics(bytes in proptest::collection::vec(
            prop_oneof![Just(b'"'), Just(b','), Just(b'\n'), Just(b'1'), Just(b'i'), Just(b'd'), any::<u8>()],
            0..80,
        )) {
            let mut input = b"id,a\n".to_vec();
            input.extend_from_slice(&bytes);
            let _ = read("r.csv", &bytes, ReadOptions::default());
            if let Ok(file) = read("r.csv", &input, ReadOptions::default()) {
                prop_assert_eq!(file.table.len(), file.lines.len());
                for column in &file.table.columns {
                    prop_assert_eq!(column.data.len(), file.table.len());
                }
            }
        }
    }
}
