//! The RFC 4180 record splitter and writer the CSV formats share.
//!
//! Reading works on decoded bytes (after [`super::input::decode`]):
//!
//! - fields are separated by `,`; records end at LF or CRLF (a CR before the end of input also
//!   ends the last record); a last record without a line ending is a record;
//! - a UTF-8 byte-order mark at the very start is skipped;
//! - a line that is entirely empty is not a record (it is counted, see
//!   [`CsvReader::empty_lines`]); a record with one empty field is written `""`;
//! - a quoted field (`"…"`) may hold `,`, CR, LF and `""` for one `"`;
//! - a `"` inside an unquoted field, text after a closing quote, or a quote that is never closed
//!   makes a bad record ([`RecordReason::BadFields`]) located at the offending byte (an unclosed
//!   quote at its opening quote; it consumes the rest of the input). After a bad record the
//!   reader resumes at the next line.
//!
//! The reader does not allocate per record: it unescapes each record into a reusable buffer and
//! lends it out ([`CsvReader::next_record`]). Fields are bytes; readers decide about UTF-8.

use std::ops::Range;

use super::problem::{BadRecord, FileError, FileReason, RecordReason, char_column};
use crate::id::IdError;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits decoded bytes into CSV records.
#[derive(Debug)]
pub struct CsvReader<'a> {
    input: &'a [u8],
    pos: usize,
    /// 1-based number of the line `pos` is on.
    line: u64,
    empty_lines: u64,
    buf: Vec<u8>,
    fields: Vec<Range<usize>>,
    /// Offset of each field's first raw byte (its opening quote, if quoted) in the record.
    starts: Vec<usize>,
    /// Bytes of byte-order mark skipped at the start.
    bom: usize,
    /// The input is a part of a longer one ([`CsvReader::part`]).
    more: bool,
    /// A part's last record is cut off: reading stopped before it.
    incomplete: bool,
}

/// One record, borrowed from the reader until the next call to [`CsvReader::next_record`].
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'r> {
    line: u64,
    raw: &'r [u8],
    buf: &'r [u8],
    fields: &'r [Range<usize>],
    starts: &'r [usize],
}

impl<'a> CsvReader<'a> {
    /// A reader over `input` (decoded bytes).
    pub fn new(input: &'a [u8]) -> CsvReader<'a> {
        let stripped = input.strip_prefix(BOM).unwrap_or(input);
        CsvReader {
            input: stripped,
            pos: 0,
            line: 1,
            empty_lines: 0,
            buf: Vec::new(),
            fields: Vec::new(),
            starts: Vec::new(),
            bom: input.len() - stripped.len(),
            more: false,
            incomplete: false,
        }
    }

    /// A reader over the first part of a longer input (cut anywhere): a record counts only
    /// when its line ending is in the part, so a record the cut splits — even inside a quoted
    /// field — is left for the next part ([`CsvReader::consumed`] says where that starts).
    /// Every record it returns is exactly what [`CsvReader::new`] returns for the whole input.
    pub fn part(input: &'a [u8]) -> CsvReader<'a> {
        CsvReader {
            more: true,
            ..CsvReader::new(input)
        }
    }

    /// Bytes of the input read so far (byte-order mark included): after the last record
    /// returned and the empty lines that follow it.
    pub fn consumed(&self) -> usize {
        self.bom + self.pos
    }

    /// Whether reading a part stopped at a record the cut splits.
    pub fn is_incomplete(&self) -> bool {
        self.incomplete
    }

    /// 1-based number of the line reading is on.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Numbers the lines from here on as if this one were line `line` (a part of a file
    /// sent after a copy of its header).
    pub fn set_line(&mut self, line: u64) {
        self.line = line;
    }

    /// Empty lines skipped so far.
    pub fn empty_lines(&self) -> u64 {
        self.empty_lines
    }

    /// The next record, a bad record, or `None` at the end of the input.
    pub fn next_record(&mut self) -> Option<Result<RecordRef<'_>, BadRecord>> {
        if self.incomplete {
            return None;
        }
        self.skip_empty_lines();
        if self.pos >= self.input.len() {
            return None;
        }
        let start = self.pos;
        let start_line = self.line;
        let split = self.split_record();
        // In a part, a record (or bad record) is complete when its line ending was read; one
        // that ran into the end of the part may go on in the next.
        if self.more
            && (self.incomplete || self.input.get(self.pos.wrapping_sub(1)) != Some(&b'\n'))
        {
            self.pos = start;
            self.line = start_line;
            self.incomplete = true;
            return None;
        }
        match split {
            Ok(end) => Some(Ok(RecordRef {
                line: start_line,
                raw: self.input.get(start..end).unwrap_or_default(),
                buf: &self.buf,
                fields: &self.fields,
                starts: &self.starts,
            })),
            Err(bad) => Some(Err(bad)),
        }
    }

    fn skip_empty_lines(&mut self) {
        loop {
            let rest = self.input.get(self.pos..).unwrap_or_default();
            let skip = match rest {
                // A CR that ends a part may start a record (`\ra`) in the next one.
                [b'\n', ..] => 1,
                [b'\r'] if !self.more => 1,
                [b'\r', b'\n', ..] => 2,
                _ => return,
            };
            self.pos += skip;
            self.line += 1;
            self.empty_lines += 1;
        }
    }

    /// Splits the record at `self.pos` into the scratch buffers; returns the end of its raw
    /// bytes (before the line ending) and leaves `pos` after the line ending.
    fn split_record(&mut self) -> Result<usize, BadRecord> {
        self.buf.clear();
        self.fields.clear();
        self.starts.clear();
        let record_start = self.pos;
        let input = self.input;
        loop {
            let field_start = self.pos;
            self.starts.push(field_start - record_start);
            let from = self.buf.len();
            if input.get(field_start) == Some(&b'"') {
                self.pos += 1;
                loop {
                    let rest = input.get(self.pos..).unwrap_or_default();
                    let Some(q) = memchr::memchr(b'"', rest) else {
                        self.line += count_newlines(rest);
                        self.pos = input.len();
                        // In a part, the closing quote may be in the next one.
                        self.incomplete = self.more;
                        return Err(self.bad_at(
                            record_start,
                            field_start,
                            "quoted field is never closed",
                        ));
                    };
                    let chunk = &rest[..q];
                    self.line += count_newlines(chunk);
                    self.buf.extend_from_slice(chunk);
                    self.pos += q + 1;
                    if input.get(self.pos) == Some(&b'"') {
                        self.buf.push(b'"');
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.fields.push(from..self.buf.len());
                let rest = input.get(self.pos..).unwrap_or_default();
                match rest {
                    [b',', ..] => self.pos += 1,
                    [] => return Ok(self.pos),
                    [b'\n', ..] | [b'\r'] => return Ok(self.end_line(1)),
                    [b'\r', b'\n', ..] => return Ok(self.end_line(2)),
                    _ => {
                        let at = self.pos;
                        let bad = self.bad_at(record_start, at, "text after a closing quote");
                        self.skip_line();
                        return Err(bad);
                    }
                }
            } else {
                let rest = input.get(field_start..).unwrap_or_default();
                let stop = memchr::memchr3(b',', b'\n', b'"', rest).unwrap_or(rest.len());
                match rest.get(stop) {
                    Some(b'"') => {
                        let bad = self.bad_at(
                            record_start,
                            field_start + stop,
                            "quote inside an unquoted field",
                        );
                        self.skip_line();
                        return Err(bad);
                    }
                    Some(b',') => {
                        self.buf.extend_from_slice(&rest[..stop]);
                        self.fields.push(from..self.buf.len());
                        self.pos = field_start + stop + 1;
                    }
                    // A line ending or the end of input: a CR right before it is not content.
                    _ => {
                        let content = &rest[..stop];
                        let content = content.strip_suffix(b"\r").unwrap_or(content);
                        self.buf.extend_from_slice(content);
                        self.fields.push(from..self.buf.len());
                        let end = field_start + content.len();
                        self.pos = field_start + stop;
                        if self.pos < input.len() {
                            self.pos += 1;
                            self.line += 1;
                        }
                        return Ok(end);
                    }
                }
            }
        }
    }

    /// Consumes a line ending of `len` bytes at `pos`; returns where the record's bytes ended.
    fn end_line(&mut self, len: usize) -> usize {
        let end = self.pos;
        self.pos += len;
        self.line += 1;
        end
    }

    /// Skips to the start of the next line (after a bad record).
    fn skip_line(&mut self) {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                self.pos += i + 1;
                self.line += 1;
            }
            None => self.pos = self.input.len(),
        }
    }

    /// A bad record at input offset `at` of the record starting at `record_start` (located at
    /// the physical line and column of `at`).
    fn bad_at(&self, record_start: usize, at: usize, detail: &str) -> BadRecord {
        let raw = self.input.get(record_start..).unwrap_or_default();
        let (line, column) = locate(self.line_of(record_start), raw, at - record_start);
        let mut bad = BadRecord::new(line, RecordReason::BadFields, detail);
        bad.column = Some(column);
        bad
    }

    /// The line number of input offset `record_start`, which starts a record being split: the
    /// current line minus the newlines between there and `pos`.
    fn line_of(&self, record_start: usize) -> u64 {
        let passed = self
            .input
            .get(record_start..self.pos.min(self.input.len()))
            .map_or(0, count_newlines);
        self.line.saturating_sub(passed)
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// The (line, 1-based character column) of byte `offset` of `raw`, whose first byte is on line
/// `first_line`.
fn locate(first_line: u64, raw: &[u8], offset: usize) -> (u64, u32) {
    let before = raw.get(..offset).unwrap_or(raw);
    let line = first_line.saturating_add(count_newlines(before));
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let line_bytes = raw.get(line_start..).unwrap_or_default();
    let line_end = memchr::memchr(b'\n', line_bytes).unwrap_or(line_bytes.len());
    let line_bytes = line_bytes.get(..line_end).unwrap_or_default();
    (line, char_column(line_bytes, offset - line_start))
}

impl<'r> RecordRef<'r> {
    /// 1-based line the record starts on.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Number of fields (at least 1).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record has no fields (never, for a record the reader returned).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `index`, unescaped.
    pub fn get(&self, index: usize) -> Option<&'r [u8]> {
        let range = self.fields.get(index)?.clone();
        self.buf.get(range)
    }

    /// The fields, unescaped.
    pub fn iter(&self) -> impl Iterator<Item = &'r [u8]> + use<'r> {
        let buf = self.buf;
        self.fields
            .iter()
            .map(move |range| buf.get(range.clone()).unwrap_or_default())
    }

    /// The record's raw bytes as they are in the input, without the final line ending.
    pub fn raw(&self) -> &'r [u8] {
        self.raw
    }

    /// The 1-based line and character column where field `index` starts (its opening quote, if
    /// quoted); the record's start for a missing field.
    pub fn position(&self, index: usize) -> (u64, u32) {
        let offset = self.starts.get(index).copied().unwrap_or(0);
        locate(self.line, self.raw, offset)
    }

    /// A bad record located at field `index`.
    pub(crate) fn bad_cell(
        &self,
        index: usize,
        reason: RecordReason,
        detail: impl Into<String>,
    ) -> BadRecord {
        let (line, column) = self.position(index);
        let mut bad = BadRecord::new(line, reason, detail);
        bad.column = Some(column);
        bad
    }

    /// A [`RecordReason::BadId`] bad record for field `index`, pointing at the offending
    /// character (exact for unquoted fields and up to the first `""` of quoted ones).
    pub(crate) fn bad_id(&self, index: usize, err: IdError) -> BadRecord {
        let start = self.starts.get(index).copied().unwrap_or(0);
        let quoted = self.raw.get(start) == Some(&b'"');
        let content = start + usize::from(quoted);
        let before = self.raw.get(..start).unwrap_or(self.raw);
        let line = self.line.saturating_add(count_newlines(before));
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        let line_bytes = self.raw.get(line_start..).unwrap_or_default();
        let line_bytes = match (quoted, memchr::memchr(b'\n', line_bytes)) {
            // A quoted field may span lines: keep the rest of the record for the column count.
            (false, Some(end)) => line_bytes.get(..end).unwrap_or_default(),
            _ => line_bytes,
        };
        BadRecord::bad_id(line, line_bytes, content - line_start, err)
    }

    /// A [`RecordReason::WrongFieldCount`] bad record unless the record has `expected` fields.
    pub(crate) fn check_width(&self, expected: usize) -> Result<(), BadRecord> {
        if self.len() == expected {
            return Ok(());
        }
        Err(BadRecord::new(
            self.line,
            RecordReason::WrongFieldCount,
            format!(
                "expected {expected} fields as in the header, found {}",
                self.len()
            ),
        ))
    }

    /// Field `index` as UTF-8, or a [`RecordReason::BadUtf8`] bad record pointing at the first
    /// invalid byte.
    pub(crate) fn text(&self, index: usize, column: &str) -> Result<&'r str, BadRecord> {
        let bytes = self.get(index).unwrap_or_default();
        std::str::from_utf8(bytes).map_err(|e| {
            let (line, col) = self.position(index);
            let mut bad = BadRecord::new(
                line,
                RecordReason::BadUtf8,
                format!("column \"{column}\" is not utf-8"),
            );
            // Column of the cell start, shifted by the characters before the bad byte.
            let prefix = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let shift = std::str::from_utf8(prefix).map_or(0, |s| s.chars().count());
            let quoted = self.raw.get(self.starts.get(index).copied().unwrap_or(0)) == Some(&b'"');
            let shift = u32::try_from(shift + usize::from(quoted)).unwrap_or(u32::MAX);
            bad.column = Some(col.saturating_add(shift));
            bad
        })
    }
}

/// The header row of a CSV file: column names, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) names: Vec<String>,
    pub(crate) line: u64,
}

impl Header {
    /// Reads the first record as the header: every cell non-empty UTF-8, no name twice.
    ///
    /// Errors: [`FileReason::Empty`] when there is no record at all, [`FileReason::BadHeader`]
    /// for a malformed row, a non-UTF-8 or empty name, [`FileReason::DuplicateColumn`].
    pub(crate) fn read(file: &str, reader: &mut CsvReader<'_>) -> Result<Header, FileError> {
        let record = match reader.next_record() {
            None => return Err(FileError::new(file, FileReason::Empty, "file is empty")),
            Some(Err(bad)) => {
                let mut err = FileError::new(
                    file,
                    FileReason::BadHeader,
                    format!("header row: {}", bad.detail),
                )
                .at_line(bad.line);
                err.column = bad.column;
                return Err(err);
            }
            Some(Ok(record)) => record,
        };
        let mut names: Vec<String> = Vec::with_capacity(record.len());
        for (i, cell) in record.iter().enumerate() {
            let at = |reason, detail: String| {
                let (line, column) = record.position(i);
                let mut err = FileError::new(file, reason, detail).at_line(line);
                err.column = Some(column);
                err
            };
            let Ok(name) = std::str::from_utf8(cell) else {
                return Err(at(
                    FileReason::BadHeader,
                    format!("header column {} is not utf-8", i + 1),
                ));
            };
            if name.is_empty() {
                return Err(at(
                    FileReason::BadHeader,
                    format!("header column {} is empty", i + 1),
                ));
            }
            if let Some(first) = names.iter().position(|n| n == name) {
                return Err(at(
                    FileReason::DuplicateColumn,
                    format!(
                        "column \"{name}\" appears twice in the header (columns {} and {})",
                        first + 1,
                        i + 1
                    ),
                ));
            }
            names.push(name.to_owned());
        }
        Ok(Header {
            names,
            line: record.line(),
        })
    }

    /// Index of the column called `name`.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Index of the column called `name`, or a [`FileReason::MissingColumn`] error naming it.
    pub(crate) fn require(&self, file: &str, name: &str) -> Result<usize, FileError> {
        self.position(name).ok_or_else(|| {
            FileError::new(
                file,
                FileReason::MissingColumn,
                format!("the header has no column \"{name}\""),
            )
            .at_line(self.line)
        })
    }
}

/// Appends `field` to `out`, quoted only when it must be: when it holds `,`, `"`, CR or LF, or
/// when it starts with a byte-order mark (which a reader would drop at the start of a file).
/// Leading and trailing spaces stay unquoted. (An empty field alone on its record is quoted by
/// [`write_record`].)
pub fn write_field(out: &mut Vec<u8>, field: &[u8]) {
    let needs_quotes = memchr::memchr3(b',', b'"', b'\n', field).is_some()
        || memchr::memchr(b'\r', field).is_some()
        || field.starts_with(BOM);
    if !needs_quotes {
        out.extend_from_slice(field);
        return;
    }
    write_quoted(out, field);
}

fn write_quoted(out: &mut Vec<u8>, field: &[u8]) {
    out.push(b'"');
    let mut rest = field;
    while let Some(i) = memchr::memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(b'"');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends one record and `\n`. A record of one empty field is written `""` (an empty line is
/// not a record); a record of no fields writes an empty line, which reads back as nothing.
pub fn write_record<F: AsRef<[u8]>>(out: &mut Vec<u8>, fields: &[F]) {
    if let [only] = fields
        && only.as_ref().is_empty()
    {
        out.extend_from_slice(b"\"\"\n");
        return;
    }
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_field(out, field.as_ref());
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Read = Result<(u64, Vec<Vec<u8>>), (u64, Option<u32>, String)>;

    fn read_all(input: &[u8]) -> Vec<Read> {
        let mut reader = CsvReader::new(input);
        let mut out = Vec::new();
        while let Some(next) = reader.next_record() {
            out.push(match next {
                Ok(r) => Ok((r.line(), r.iter().map(<[u8]>::to_vec).collect())),
                Err(bad) => {
                    assert_eq!(bad.reason, RecordReason::BadFields);
                    Err((bad.line, bad.column, bad.detail))
                }
            });
        }
        out
    }

    fn ok(line: u64, fields: &[&str]) -> Read {
        Ok((line, fields.iter().map(|f| f.as_bytes().to_vec()).collect()))
    }

    fn bad(line: u64, column: u32, detail: &str) -> Read {
        Err((line, Some(column), detail.to_owned()))
    }

    #[test]
    fn splits_fields_and_records() {
        assert_eq!(read_all(b""), []);
        assert_eq!(read_all(b"a,b,c"), [ok(1, &["a", "b", "c"])]);
        assert_eq!(
            read_all(b"a,b\r\n,\nx, y \n"),
            [ok(1, &["a", "b"]), ok(2, &["", ""]), ok(3, &["x", " y "])]
        );
        assert_eq!(read_all(b"a,\n"), [ok(1, &["a", ""])]);
        assert_eq!(read_all(b"a\r"), [ok(1, &["a"])]);
        // A lone CR inside a line is content.
        assert_eq!(read_all(b"a\rb,c\n"), [ok(1, &["a\rb", "c"])]);
    }

    #[test]
    fn bom_and_empty_lines() {
        let mut reader = CsvReader::new(b"\xEF\xBB\xBFid\n\n\r\nx\n\n");
        assert_eq!(
            reader.next_record().unwrap().unwrap().get(0),
            Some(&b"id"[..])
        );
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!((record.line(), record.get(0)), (4, Some(&b"x"[..])));
        assert!(reader.next_record().is_none());
        assert_eq!(reader.empty_lines(), 3);
        // A BOM elsewhere is content.
        assert_eq!(
            read_all(b"a\n\xEF\xBB\xBFb"),
            [ok(1, &["a"]), ok(2, &["\u{feff}b"])]
        );
        assert_eq!(read_all(b"\n\n"), []);
    }

    #[test]
    fn quoted_fields() {
        assert_eq!(
            read_all(b"\"a,b\",\"say \"\"hi\"\"\",\"\"\n\"multi\r\nline\",x\ny"),
            [
                ok(1, &["a,b", "say \"hi\"", ""]),
                ok(2, &["multi\r\nline", "x"]),
                ok(4, &["y"]),
            ]
        );
        assert_eq!(read_all(b"\"\"\n"), [ok(1, &[""])]);
        assert_eq!(read_all(b"\"a\"\r\n\"b\""), [ok(1, &["a"]), ok(2, &["b"])]);
    }

    #[test]
    fn bad_quotes_are_bad_records_and_reading_goes_on() {
        assert_eq!(
            read_all(b"a,b\"c,d\ne,f\n"),
            [
                bad(1, 4, "quote inside an unquoted field"),
                ok(2, &["e", "f"])
            ]
        );
        assert_eq!(
            read_all(b"x\n\"ab\"c,d\ne\n"),
            [
                ok(1, &["x"]),
                bad(2, 5, "text after a closing quote"),
                ok(3, &["e"])
            ]
        );
        // Unclosed: reported at its opening quote; the rest of the input is consumed.
        assert_eq!(
            read_all(b"x\na,\"open\nmore\nlines\n"),
            [ok(1, &["x"]), bad(2, 3, "quoted field is never closed")]
        );
        // After a multi-line field, the error is on the physical line it occurs on.
        assert_eq!(
            read_all(b"\"a\nb\"x\nc\n"),
            [bad(2, 3, "text after a closing quote"), ok(3, &["c"])]
        );
        // Columns count characters, not bytes.
        assert_eq!(
            read_all("é,b\"\n".as_bytes()),
            [bad(1, 4, "quote inside an unquoted field")]
        );
    }

    #[test]
    fn positions_point_at_cells() {
        let input = b"a,\"b\nc\",d\n";
        let mut reader = CsvReader::new(input);
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!(record.position(0), (1, 1));
        assert_eq!(record.position(1), (1, 3));
        assert_eq!(record.position(2), (2, 4));
        assert_eq!(record.raw(), b"a,\"b\nc\",d");
        let bad = record.text(2, "x");
        assert!(bad.is_ok());
        let mut reader = CsvReader::new(b"ab,c\xffd\n");
        let record = reader.next_record().unwrap().unwrap();
        let bad = record.text(1, "name").unwrap_err();
        assert_eq!((bad.line, bad.column), (1, Some(5)));
        assert_eq!(bad.detail, "column \"name\" is not utf-8");
        let width = record.check_width(3).unwrap_err();
        assert_eq!(width.detail, "expected 3 fields as in the header, found 2");
        assert_eq!(width.reason, RecordReason::WrongFieldCount);
    }

    #[test]
    fn header_rules() {
        let header = |input: &[u8]| Header::read("h.csv", &mut CsvReader::new(input));
        let h = header(b"\n\nid,name\n").unwrap();
        assert_eq!(
            (h.names.as_slice(), h.line),
            (&["id".to_owned(), "name".to_owned()][..], 3)
        );
        assert_eq!(h.position("name"), Some(1));
        let err = h.require("h.csv", "email").unwrap_err();
        assert_eq!(
            (err.reason, err.line, err.detail.as_str()),
            (
                FileReason::MissingColumn,
                Some(3),
                "the header has no column \"email\""
            )
        );
        assert_eq!(header(b"").unwrap_err().reason, FileReason::Empty);
        assert_eq!(
            header(b"\xEF\xBB\xBF\r\n").unwrap_err().reason,
            FileReason::Empty
        );
        let err = header(b"id,name,id\n").unwrap_err();
        assert_eq!(
            (err.reason, err.column, err.detail.as_str()),
            (
                FileReason::DuplicateColumn,
                Some(9),
                "column \"id\" appears twice in the header (columns 1 and 3)"
            )
        );
        let err = header(b"id,,x\n").unwrap_err();
        assert_eq!((err.reason, err.column), (FileReason::BadHeader, Some(4)));
        assert_eq!(
            header(b"id,\xff\n").unwrap_err().reason,
            FileReason::BadHeader
        );
        let err = header(b"id,\"x\n").unwrap_err();
        assert_eq!(
            (err.reason, err.line, err.column),
            (FileReason::BadHeader, Some(1), Some(4))
        );
    }

    #[test]
    fn writer_quotes_only_when_needed() {
        let mut out = Vec::new();
        write_record(
            &mut out,
            &["plain", " spaced ", "a,b", "q\"", "l\nf", "c\rr", ""],
        );
        write_record(&mut out, &[""]);
        write_record(&mut out, &["\u{feff}bom"]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain, spaced ,\"a,b\",\"q\"\"\",\"l\nf\",\"c\rr\",\n\"\"\n\"\u{feff}bom\"\n"
        );
    }

    fn records() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
        let byte = prop_oneof![
            4 => Just(b'a'),
            2 => Just(b','),
            2 => Just(b'"'),
            2 => Just(b'\r'),
            2 => Just(b'\n'),
            1 => Just(b' '),
            1 => any::<u8>(),
        ];
        let field = proptest::collection::vec(byte, 0..6);
        let record = proptest::collection::vec(field, 1..5);
        proptest::collection::vec(record, 0..6)
    }

    proptest! {
        #[test]
        fn write_then_read_returns_the_fields(records in records(), bom in any::<bool>()) {
            let mut out = if bom { BOM.to_vec() } else { Vec::new() };
            for record in &records {
                write_record(&mut out, record);
            }
            let mut reader = CsvReader::new(&out);
            let mut back = Vec::new();
            while let Some(next) = reader.next_record() {
                let record = next.map_err(|b| TestCaseError::fail(b.detail))?;
                back.push(record.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
            }
            prop_assert_eq!(back, records);
            prop_assert_eq!(reader.empty_lines(), 0);
        }

        #[test]
        fn reading_never_panics_and_lines_increase(input in proptest::collection::vec(
            prop_oneof![Just(b'"'), Just(b','), Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()],
            0..60,
        )) {
            let mut reader = CsvReader::new(&input);
            let mut last = 0;
            let newlines = count_newlines(&input);
            while let Some(next) = reader.next_record() {
                let line = match next {
                    Ok(record) => {
                        for i in 0..=record.len() {
                            let (l, c) = record.position(i);
                            prop_assert!(l >= record.line() && c >= 1);
                        }
                        record.line()
                    }
                    Err(bad) => {
                        prop_assert!(bad.column.is_some());
                        bad.line
                    }
                };
                prop_assert!(line > last && line <= newlines + 1);
                last = line;
            }
        }

        /// Reading a file in parts cut anywhere, each after a copy of the header line (as the
        /// host sends a large file), gives exactly the records and lines of reading it whole.
        #[test]
        fn parts_read_what_the_whole_reads(
            body in proptest::collection::vec(
                prop_oneof![
                    4 => Just(b'a'), 2 => Just(b','), 2 => Just(b'"'), 1 => Just(b'\r'),
                    3 => Just(b'\n'),
                ],
                0..80,
            ),
            step in 1usize..24,
        ) {
            let header = b"h,i\n";
            let whole: Vec<u8> = [&header[..], &body].concat();
            let expected: Vec<Read> = read_all(&whole).into_iter().skip(1).collect();
            let (mut pos, mut line, mut end) = (0, 2, step.min(body.len()));
            let mut parts = Vec::new();
            loop {
                let last = end == body.len();
                let payload: Vec<u8> = [&header[..], &body[pos..end]].concat();
                let mut reader = if last {
                    CsvReader::new(&payload)
                } else {
                    CsvReader::part(&payload)
                };
                let head = reader.next_record();
                prop_assert!(matches!(head, Some(Ok(_))), "the header reads");
                reader.set_line(line);
                while let Some(next) = reader.next_record() {
                    parts.push(match next {
                        Ok(r) => Ok((r.line(), r.iter().map(<[u8]>::to_vec).collect())),
                        Err(bad) => Err((bad.line, bad.column, bad.detail)),
                    });
                }
                if last {
                    prop_assert!(!reader.is_incomplete());
                    break;
                }
                let consumed = reader.consumed() - header.len();
                if consumed == 0 {
                    // Not one whole record in this part: a longer one.
                    end = (end + step).min(body.len());
                    continue;
                }
                pos += consumed;
                line = reader.line();
                end = (pos + step).min(body.len());
            }
            prop_assert_eq!(parts, expected);
        }
    }
}
