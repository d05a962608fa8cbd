//! The recipients table: the data model every part of audlink shares — a typed columnar table
//! of recipients ([`RecipientsTable`]: an `id` column and typed attribute columns), the typed
//! recipient id ([`RecipientKey`]) and the column types ([`ColumnType`], [`ColumnData`]).
//!
//! The `id` column is integer ([`RecipientIds::Int`]) when every id is a canonical decimal i64
//! (also when there are no rows), otherwise string; that type fixes the order of ids everywhere
//! ([`RecipientIds::sorted_rows`]: numeric or bytewise). [`RecipientKey`] is the same typing for
//! one id; an integer key's text is exactly its canonical decimal, so keys and string ids compare
//! losslessly by text. Reading and writing the table as CSV (and inferring its column types from
//! text) is [`crate::format::recipients`].

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::time::{Date, Timestamp};

/// The name of the required id column.
pub const ID_COLUMN: &str = "id";

/// A column of optional strings in one arena (one `String`, end offsets and a null flag per
/// row).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Strings {
    text: String,
    ends: Vec<usize>,
    nulls: Vec<bool>,
}

impl Strings {
    /// An empty column.
    pub fn new() -> Strings {
        Strings::default()
    }

    /// Appends a value (`None`: null).
    pub fn push(&mut self, value: Option<&str>) {
        if let Some(value) = value {
            self.text.push_str(value);
        }
        self.ends.push(self.text.len());
        self.nulls.push(value.is_none());
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value of row `index`; `None` when it is null or out of range.
    pub fn get(&self, index: usize) -> Option<&str> {
        if *self.nulls.get(index)? {
            return None;
        }
        let end = *self.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        self.text.get(start..end)
    }

    /// Whether row `index` is null (false out of range).
    pub fn is_null(&self, index: usize) -> bool {
        self.nulls.get(index).copied().unwrap_or(false)
    }

    /// The values in row order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl fmt::Debug for Strings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> FromIterator<Option<&'a str>> for Strings {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(iter: I) -> Strings {
        let mut out = Strings::new();
        for value in iter {
            out.push(value);
        }
        out
    }
}

/// One recipient id, typed like the `id` column: an integer when canonical decimal, else text.
///
/// Orders integers numerically, texts bytewise (and every integer before every text).
///
/// A key is canonical when a text is never a canonical integer (`String("5")` is `Int(5)`):
/// [`RecipientKey::parse`] and deserialization only make canonical keys; compare keys built by
/// hand through [`RecipientKey::canonical`] or [`RecipientKey::as_int`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum RecipientKey {
    /// A canonical decimal i64.
    Int(i64),
    /// Anything else.
    String(String),
}

impl RecipientKey {
    /// Types `text`: [`RecipientKey::Int`] when it is a canonical decimal i64.
    pub fn parse(text: &str) -> RecipientKey {
        match canonical_i64(text.as_bytes()) {
            Some(value) => RecipientKey::Int(value),
            None => RecipientKey::String(text.to_owned()),
        }
    }

    /// The integer this key stands for: an `Int`, or a text that is a canonical integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            RecipientKey::Int(value) => Some(*value),
            RecipientKey::String(text) => canonical_i64(text.as_bytes()),
        }
    }

    /// The canonical form of the key: a text that is a canonical integer becomes that integer.
    pub fn canonical(self) -> RecipientKey {
        match self.as_int() {
            Some(value) => RecipientKey::Int(value),
            None => self,
        }
    }
}

/// Deserialized keys are canonical: `"5"` and `5` are the same recipient.
impl<'de> Deserialize<'de> for RecipientKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RecipientKey, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            String(String),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Int(value) => RecipientKey::Int(value),
            Raw::String(text) => RecipientKey::String(text).canonical(),
        })
    }
}

impl fmt::Display for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipientKey::Int(value) => write!(f, "{value}"),
            RecipientKey::String(text) => f.write_str(text),
        }
    }
}

/// The `id` column.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipientIds {
    /// Every id is a canonical decimal i64.
    Int(Vec<i64>),
    /// At least one id is not; no nulls.
    String(Strings),
}

impl RecipientIds {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            RecipientIds::Int(ids) => ids.len(),
            RecipientIds::String(ids) => ids.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of row `index`.
    pub fn key(&self, index: usize) -> Option<RecipientKey> {
        match self {
            RecipientIds::Int(ids) => ids.get(index).copied().map(RecipientKey::Int),
            RecipientIds::String(ids) => ids.get(index).map(|s| RecipientKey::String(s.to_owned())),
        }
    }

    /// Row indices ordered by id (numerically for [`RecipientIds::Int`], bytewise for
    /// [`RecipientIds::String`]); equal ids keep row order.
    pub fn sorted_rows(&self) -> Vec<usize> {
        let mut rows: Vec<usize> = (0..self.len()).collect();
        match self {
            RecipientIds::Int(ids) => rows.sort_by_key(|&i| ids.get(i).copied()),
            RecipientIds::String(ids) => rows.sort_by(|&a, &b| ids.get(a).cmp(&ids.get(b))),
        }
        rows
    }

    /// Whether rows `a` and `b` have the same id.
    pub(crate) fn same(&self, a: usize, b: usize) -> bool {
        match self {
            RecipientIds::Int(ids) => ids.get(a) == ids.get(b),
            RecipientIds::String(ids) => ids.get(a) == ids.get(b),
        }
    }
}

/// The type of an attribute column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// `true` / `false`.
    Bool,
    /// Canonical decimal i64.
    Int,
    /// Finite f64.
    Float,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339, held in UTC.
    DateTime,
    /// Anything.
    String,
}

impl ColumnType {
    /// Whether a column of this type can hold, without changing their meaning, values whose
    /// own type is `found`: its own type, integers in a float column, anything in a string
    /// column (kept verbatim).
    pub fn holds(self, found: ColumnType) -> bool {
        self == found
            || self == ColumnType::String
            || (self == ColumnType::Float && found == ColumnType::Int)
    }

    /// The type reading two parts of a column together gives, from the types each part's
    /// values give on their own (`None`: no value): the typing rule of
    /// [`crate::format::recipients::read`] is the same
    /// on the whole as on the parts joined.
    pub fn join(a: Option<ColumnType>, b: Option<ColumnType>) -> Option<ColumnType> {
        match (a, b) {
            (None, t) | (t, None) => t,
            (Some(a), Some(b)) if a == b => Some(a),
            (
                Some(ColumnType::Int | ColumnType::Float),
                Some(ColumnType::Int | ColumnType::Float),
            ) => Some(ColumnType::Float),
            _ => Some(ColumnType::String),
        }
    }
}

/// The values of one attribute column (`None`: null).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Booleans.
    Bool(Vec<Option<bool>>),
    /// Integers.
    Int(Vec<Option<i64>>),
    /// Finite floats.
    Float(Vec<Option<f64>>),
    /// Dates.
    Date(Vec<Option<Date>>),
    /// Instants.
    DateTime(Vec<Option<Timestamp>>),
    /// Strings, verbatim.
    String(Strings),
}

impl ColumnData {
    /// The column's type.
    pub fn column_type(&self) -> ColumnType {
        match self {
            ColumnData::Bool(_) => ColumnType::Bool,
            ColumnData::Int(_) => ColumnType::Int,
            ColumnData::Float(_) => ColumnType::Float,
            ColumnData::Date(_) => ColumnType::Date,
            ColumnData::DateTime(_) => ColumnType::DateTime,
            ColumnData::String(_) => ColumnType::String,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Bool(v) => v.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Date(v) => v.len(),
            ColumnData::DateTime(v) => v.len(),
            ColumnData::String(v) => v.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the value of row `index` in its canonical text form into `out` (nothing when it
    /// is null).
    pub(crate) fn write_value(&self, index: usize, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = match self {
            ColumnData::Bool(v) => match v.get(index).copied().flatten() {
                Some(b) => write!(out, "{b}"),
                None => Ok(()),
            },
            ColumnData::Int(v) => match v.get(index).copied().flatten() {
                Some(n) => write!(out, "{n}"),
                None => Ok(()),
            },
            // Debug always prints a `.` or an exponent, and the shortest exact digits.
            ColumnData::Float(v) => match v.get(index).copied().flatten() {
                Some(x) => write!(out, "{x:?}"),
                None => Ok(()),
            },
            ColumnData::Date(v) => match v.get(index).copied().flatten() {
                Some(d) => write!(out, "{d}"),
                None => Ok(()),
            },
            ColumnData::DateTime(v) => match v.get(index).copied().flatten() {
                Some(t) => write!(out, "{t}"),
                None => Ok(()),
            },
            ColumnData::String(v) => {
                out.push_str(v.get(index).unwrap_or_default());
                Ok(())
            }
        };
    }
}

/// One attribute column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Header name, verbatim.
    pub name: String,
    /// Values, one per row.
    pub data: ColumnData,
}

/// Recipients as columns: row `i` is `ids` row `i` and row `i` of every column.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientsTable {
    /// The `id` column.
    pub ids: RecipientIds,
    /// The other columns, in header order.
    pub columns: Vec<Column>,
}

impl RecipientsTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The attribute column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Row indices ordered by id; see [`RecipientIds::sorted_rows`].
    pub fn sorted_rows(&self) -> Vec<usize> {
        self.ids.sorted_rows()
    }
}

/// The value of a canonical decimal i64: optional `-`, digits, no leading zero except `0`
/// itself, not `-0`, no `+`, in range.
pub(crate) fn canonical_i64(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == bytes.len(),
        [b'0', ..] => false,
        _ => digits.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_canonical_when_parsed_or_deserialized() {
        let keys: Vec<RecipientKey> = serde_json::from_str(r#"[5, "5", "05", "x", "-0"]"#).unwrap();
        assert_eq!(
            keys,
            [
                RecipientKey::Int(5),
                RecipientKey::Int(5),
                RecipientKey::String("05".into()),
                RecipientKey::String("x".into()),
                RecipientKey::String("-0".into()),
            ]
        );
        assert_eq!(
            RecipientKey::String("42".into()).canonical(),
            RecipientKey::Int(42)
        );
        assert_eq!(RecipientKey::String("42".into()).as_int(), Some(42));
        assert_eq!(RecipientKey::String("4x".into()).as_int(), None);
    }

    #[test]
    fn canonical_integers() {
        for (text, value) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("-12", Some(-12)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("01234", None),
            ("00", None),
            ("-0", None),
            ("+1", None),
            ("-", None),
            ("", None),
            ("1 ", None),
            ("1.0", None),
        ] {
            assert_eq!(canonical_i64(text.as_bytes()), value, "{text:?}");
        }
    }
}
