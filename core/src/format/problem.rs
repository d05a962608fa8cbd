//! What can be wrong with an input file: a bad record (the reader goes on) or a file-level error
//! (the file cannot be read as a whole).
//!
//! Both say where — file name, 1-based line, 1-based character column where one applies — and
//! carry a stable snake_case reason code. Details never echo an identifier (they may be personal
//! data); they may name columns, segment ids and expected shapes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::IdError;

/// Why one record (line) was rejected; the reader goes on with the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordReason {
    /// The line is not UTF-8 where the format requires it.
    BadUtf8,
    /// The line is longer than the format allows.
    LineTooLong,
    /// The line does not split into the fields the format has.
    BadFields,
    /// An entry (trait, segment, key/value) is malformed.
    BadEntry,
    /// The identifier field is not a valid identifier of the expected kind.
    BadId,
    /// The same user id appears on more lines than the format allows in one file.
    TooManyLines,
    /// A CSV row has a different number of fields than the header.
    WrongFieldCount,
    /// A required cell is empty.
    EmptyValue,
    /// A cell holds a value outside the allowed set or shape.
    BadValue,
}

impl RecordReason {
    /// The snake_case code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            RecordReason::BadUtf8 => "bad_utf8",
            RecordReason::LineTooLong => "line_too_long",
            RecordReason::BadFields => "bad_fields",
            RecordReason::BadEntry => "bad_entry",
            RecordReason::BadId => "bad_id",
            RecordReason::TooManyLines => "too_many_lines",
            RecordReason::WrongFieldCount => "wrong_field_count",
            RecordReason::EmptyValue => "empty_value",
            RecordReason::BadValue => "bad_value",
        }
    }
}

impl fmt::Display for RecordReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One rejected record, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BadRecord {
    /// 1-based line number.
    pub line: u64,
    /// 1-based character column of the problem, where one applies.
    pub column: Option<u32>,
    /// Stable reason code.
    pub reason: RecordReason,
    /// The identifier rule that was broken, for [`RecordReason::BadId`].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id_error: Option<IdError>,
    /// Explanation for people: lower-case, no trailing period, no identifier values.
    pub detail: String,
}

impl BadRecord {
    pub(crate) fn new(line: u64, reason: RecordReason, detail: impl Into<String>) -> BadRecord {
        BadRecord {
            line,
            column: None,
            reason,
            id_error: None,
            detail: detail.into(),
        }
    }

    /// Sets the column from a byte offset into the line's bytes.
    pub(crate) fn at_byte(mut self, line_bytes: &[u8], offset: usize) -> BadRecord {
        self.column = Some(char_column(line_bytes, offset));
        self
    }

    pub(crate) fn bad_id(
        line: u64,
        line_bytes: &[u8],
        field_start: usize,
        err: IdError,
    ) -> BadRecord {
        let offset = field_start + err.offset.unwrap_or(0);
        BadRecord {
            line,
            column: Some(char_column(line_bytes, offset)),
            reason: RecordReason::BadId,
            detail: err.to_string(),
            id_error: Some(err),
        }
    }

    /// The message with its location: `file:line[:column]: detail (reason)`.
    pub fn located(&self, file: &str) -> String {
        match self.column {
            Some(col) => format!(
                "{file}:{}:{col}: {} ({})",
                self.line, self.detail, self.reason
            ),
            None => format!("{file}:{}: {} ({})", self.line, self.detail, self.reason),
        }
    }
}

/// 1-based character column of byte `offset` in `line` (invalid UTF-8 counts byte by byte).
pub(crate) fn char_column(line: &[u8], offset: usize) -> u32 {
    let prefix = &line[..offset.min(line.len())];
    let chars = match std::str::from_utf8(prefix) {
        Ok(text) => text.chars().count(),
        Err(_) => prefix.len(),
    };
    u32::try_from(chars + 1).unwrap_or(u32::MAX)
}

/// Why a whole file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileReason {
    /// No records at all.
    Empty,
    /// Starts like gzip but is not a valid gzip stream.
    BadGzip,
    /// A gzip stream that ends early.
    TruncatedGzip,
    /// The file name matches none of the format's patterns.
    BadFileName,
    /// A header row is required and missing or unusable.
    BadHeader,
    /// A required column is missing from the header.
    MissingColumn,
    /// A column name appears twice in the header.
    DuplicateColumn,
    /// The same record key appears twice (e.g. a recipient id).
    DuplicateKey,
    /// A column's values conflict with its type.
    ColumnType,
    /// A bad record, with reading in strict mode.
    Strict,
}

impl FileReason {
    /// The snake_case code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            FileReason::Empty => "empty",
            FileReason::BadGzip => "bad_gzip",
            FileReason::TruncatedGzip => "truncated_gzip",
            FileReason::BadFileName => "bad_file_name",
            FileReason::BadHeader => "bad_header",
            FileReason::MissingColumn => "missing_column",
            FileReason::DuplicateColumn => "duplicate_column",
            FileReason::DuplicateKey => "duplicate_key",
            FileReason::ColumnType => "column_type",
            FileReason::Strict => "strict",
        }
    }
}

impl fmt::Display for FileReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A file that cannot be read as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[error("{}", self.located())]
pub struct FileError {
    /// The file's name, as given by the caller.
    pub file: String,
    /// 1-based line, where one is to blame.
    pub line: Option<u64>,
    /// 1-based character column, where one applies.
    pub column: Option<u32>,
    /// Stable reason code.
    pub reason: FileReason,
    /// The record that stopped a strict read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub record: Option<Box<BadRecord>>,
    /// Explanation for people: lower-case, no trailing period, no identifier values.
    pub detail: String,
}

impl FileError {
    pub(crate) fn new(file: &str, reason: FileReason, detail: impl Into<String>) -> FileError {
        FileError {
            file: file.to_owned(),
            line: None,
            column: None,
            reason,
            record: None,
            detail: detail.into(),
        }
    }

    pub(crate) fn at_line(mut self, line: u64) -> FileError {
        self.line = Some(line);
        self
    }

    /// The error a strict read stops with at its first bad record.
    pub fn strict(file: &str, record: BadRecord) -> FileError {
        FileError {
            file: file.to_owned(),
            line: Some(record.line),
            column: record.column,
            reason: FileReason::Strict,
            detail: format!("{} ({})", record.detail, record.reason),
            record: Some(Box::new(record)),
        }
    }

    fn located(&self) -> String {
        let mut out = self.file.clone();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(col) = self.column {
                out.push_str(&format!(":{col}"));
            }
        }
        format!("{out}: {}", self.detail)
    }
}

/// How a reader treats bad records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadOptions {
    /// Stop at the first bad record with a [`FileReason::Strict`] error instead of reporting it
    /// and going on.
    pub strict: bool,
}

/// Collects bad records, or stops at the first one in strict mode.
#[derive(Debug)]
pub(crate) struct Problems<'f> {
    file: &'f str,
    strict: bool,
    pub(crate) bad: Vec<BadRecord>,
}

impl<'f> Problems<'f> {
    pub(crate) fn new(file: &'f str, options: ReadOptions) -> Problems<'f> {
        Problems {
            file,
            strict: options.strict,
            bad: Vec::new(),
        }
    }

    /// In strict mode, turns a problem the reader hands over anyway (an invalid id) into the
    /// file's error.
    pub(crate) fn check_strict(&self, record: &BadRecord) -> Result<(), FileError> {
        if self.strict {
            return Err(FileError::strict(self.file, record.clone()));
        }
        Ok(())
    }

    /// Records a bad record; in strict mode, turns it into the file's error.
    pub(crate) fn push(&mut self, record: BadRecord) -> Result<(), FileError> {
        if self.strict {
            return Err(FileError::strict(self.file, record));
        }
        self.bad.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        assert_eq!(char_column(b"abc", 0), 1);
        assert_eq!(char_column("éa:b".as_bytes(), 3), 3);
        assert_eq!(char_column(b"\xffa", 1), 2);
        assert_eq!(char_column(b"ab", 10), 3);
    }

    #[test]
    fn messages_are_located() {
        let record = BadRecord::new(12, RecordReason::BadEntry, "segment id must be digits")
            .at_byte(b"x\t1,a", 4);
        assert_eq!(
            record.located("f.sync"),
            "f.sync:12:5: segment id must be digits (bad_entry)"
        );
        let err = FileError::strict("f.sync", record);
        assert_eq!(
            err.to_string(),
            "f.sync:12:5: segment id must be digits (bad_entry)"
        );
        let err =
            FileError::new("a.csv", FileReason::MissingColumn, "missing column \"id\"").at_line(1);
        assert_eq!(err.to_string(), "a.csv:1: missing column \"id\"");
    }

    #[test]
    fn strict_stops_lenient_collects() {
        let bad = || BadRecord::new(3, RecordReason::BadFields, "x");
        let mut lenient = Problems::new("f", ReadOptions::default());
        lenient.push(bad()).unwrap();
        lenient.push(bad()).unwrap();
        assert_eq!(lenient.bad.len(), 2);
        let mut strict = Problems::new("f", ReadOptions { strict: true });
        let err = strict.push(bad()).unwrap_err();
        assert_eq!((err.reason, err.line), (FileReason::Strict, Some(3)));
    }
}
