//! What the rule editor shows while a rule is typed, from a [`Selection`] (a rule's or a
//! list's, see [`Selection::of_keys`]): the [`count`], a deterministic [`sample`] of the
//! selected recipients (the first by id), a [`breakdown`] by a column and an [`overlap`]
//! matrix between selections. Every output is serializable and deterministic (sorted, never in
//! hash order), so the browser and the host show the same thing.

use std::cmp::Ordering;

use rustc_hash::FxBuildHasher;
use serde::Serialize;

use super::ast::Type;
use super::eval::Selection;
use crate::recipients::{ColumnData, ID_COLUMN, RecipientIds, RecipientKey, RecipientsTable};
use crate::time::{Date, Timestamp};

/// Most selections an [`overlap`] compares.
pub const MAX_OVERLAP: usize = 8;

/// Why a preview cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum PreviewError {
    /// More selections than [`MAX_OVERLAP`].
    #[error("at most {max} segments or lists can be compared at once, not {given}")]
    TooManySelections {
        /// Selections given.
        given: usize,
        /// The maximum.
        max: usize,
    },
    /// The breakdown column is not in the table.
    #[error("column \"{name}\" is not in the recipients table")]
    UnknownColumn {
        /// The column asked for.
        name: String,
    },
    /// A selection is over a table of another size.
    #[error("a selection covers {found} rows, the recipients table has {expected}")]
    WrongLength {
        /// Rows of the table (or of the first selection).
        expected: usize,
        /// Rows of the selection.
        found: usize,
    },
}

/// How many recipients a selection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Count {
    /// Selected.
    pub selected: u64,
    /// In the table.
    pub total: u64,
}

/// The size of `selection`.
pub fn count(selection: &Selection) -> Count {
    Count {
        selected: selection.count() as u64,
        total: selection.len() as u64,
    }
}

/// One value of a recipients column, as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    /// No value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number.
    Float(f64),
    /// Text.
    String(String),
    /// A date (`YYYY-MM-DD`).
    Date(Date),
    /// A date and time (RFC 3339, UTC).
    DateTime(Timestamp),
}

/// A column of a [`Sample`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleColumn {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Type,
}

/// One recipient of a [`Sample`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleRow {
    /// Its row in the table.
    pub row: usize,
    /// Its id.
    pub id: RecipientKey,
    /// Its attribute values, in the order of [`Sample::columns`].
    pub values: Vec<Cell>,
}

/// The first selected recipients by id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// The attribute columns (the id excluded), in table order.
    pub columns: Vec<SampleColumn>,
    /// At most the requested number of recipients, ascending by id.
    pub rows: Vec<SampleRow>,
}

/// The first `n` selected recipients in id order (as [`RecipientsTable::sorted_rows`]: numeric
/// or bytewise ids, equal ids by row), with their values.
pub fn sample(
    table: &RecipientsTable,
    selection: &Selection,
    n: usize,
) -> Result<Sample, PreviewError> {
    same_length(table, selection)?;
    let mut rows: Vec<usize> = selection.rows().collect();
    let order = |&a: &usize, &b: &usize| -> Ordering {
        let by_id = match &table.ids {
            RecipientIds::Int(ids) => ids[a].cmp(&ids[b]),
            RecipientIds::String(ids) => ids.get(a).cmp(&ids.get(b)),
        };
        by_id.then(a.cmp(&b))
    };
    if rows.len() > n {
        if n == 0 {
            rows.clear();
        } else {
            rows.select_nth_unstable_by(n - 1, order);
            rows.truncate(n);
        }
    }
    rows.sort_unstable_by(order);
    let columns = table
        .columns
        .iter()
        .map(|c| SampleColumn {
            name: c.name.clone(),
            ty: Type::from(c.data.column_type()),
        })
        .collect();
    let rows = rows
        .into_iter()
        .map(|row| SampleRow {
            row,
            id: table.ids.key(row).unwrap_or(RecipientKey::Int(0)),
            values: table.columns.iter().map(|c| cell(&c.data, row)).collect(),
        })
        .collect();
    Ok(Sample { columns, rows })
}

/// The value of row `row` of `data`.
fn cell(data: &ColumnData, row: usize) -> Cell {
    let value = match data {
        ColumnData::Bool(v) => v.get(row).copied().flatten().map(Cell::Bool),
        ColumnData::Int(v) => v.get(row).copied().flatten().map(Cell::Int),
        ColumnData::Float(v) => v
            .get(row)
            .copied()
            .flatten()
            .filter(|f| !f.is_nan())
            .map(Cell::Float),
        ColumnData::Date(v) => v.get(row).copied().flatten().map(Cell::Date),
        ColumnData::DateTime(v) => v.get(row).copied().flatten().map(Cell::DateTime),
        ColumnData::String(v) => v.get(row).map(|s| Cell::String(s.to_owned())),
    };
    value.unwrap_or(Cell::Null)
}

/// One value and how many selected recipients have it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// The value.
    pub value: Cell,
    /// Selected recipients with it.
    pub count: u64,
}

/// The selected recipients by the values of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    /// The column.
    pub column: String,
    /// Selected recipients.
    pub total: u64,
    /// The most frequent values (at most the requested number), by count descending, equal
    /// counts by value ascending (numbers numerically, text bytewise, `false` first).
    pub top: Vec<Bucket>,
    /// Selected recipients whose value is null (not in `top`, not in `other`).
    pub null: u64,
    /// Selected recipients with a non-null value not in `top`.
    pub other: u64,
    /// Distinct values summed in `other`.
    pub other_values: u64,
}

/// The selected recipients by the values of `column` (`id` included): the `top_k` most
/// frequent values, the nulls, and the rest summed.
pub fn breakdown(
    table: &RecipientsTable,
    selection: &Selection,
    column: &str,
    top_k: usize,
) -> Result<Breakdown, PreviewError> {
    same_length(table, selection)?;
    let mut null = 0u64;
    // Counts per value, then the values in order.
    let buckets: Vec<(Cell, u64)> = if column == ID_COLUMN {
        match &table.ids {
            RecipientIds::Int(ids) => group(
                selection.rows().map(|r| Some(ids[r])),
                &mut null,
                |&a, b| a.cmp(b),
                Cell::Int,
            ),
            RecipientIds::String(ids) => group(
                selection.rows().map(|r| ids.get(r)),
                &mut null,
                |a, b| a.as_bytes().cmp(b.as_bytes()),
                |s| Cell::String(s.to_owned()),
            ),
        }
    } else {
        let Some(col) = table.column(column) else {
            return Err(PreviewError::UnknownColumn {
                name: column.to_owned(),
            });
        };
        let rows = selection.rows();
        match &col.data {
            ColumnData::Bool(v) => group(
                rows.map(|r| v.get(r).copied().flatten()),
                &mut null,
                Ord::cmp,
                Cell::Bool,
            ),
            ColumnData::Int(v) => group(
                rows.map(|r| v.get(r).copied().flatten()),
                &mut null,
                Ord::cmp,
                Cell::Int,
            ),
            ColumnData::Float(v) => group(
                // Grouped by bits, `-0.0` as `0.0`; NaN is null.
                rows.map(|r| {
                    v.get(r)
                        .copied()
                        .flatten()
                        .filter(|f| !f.is_nan())
                        .map(|f| if f == 0.0 { 0 } else { f.to_bits() })
                }),
                &mut null,
                |&a, &b| f64::from_bits(a).total_cmp(&f64::from_bits(b)),
                |bits| Cell::Float(f64::from_bits(bits)),
            ),
            ColumnData::Date(v) => group(
                rows.map(|r| v.get(r).copied().flatten()),
                &mut null,
                Ord::cmp,
                Cell::Date,
            ),
            ColumnData::DateTime(v) => group(
                rows.map(|r| v.get(r).copied().flatten()),
                &mut null,
                Ord::cmp,
                Cell::DateTime,
            ),
            ColumnData::String(v) => group(
                rows.map(|r| v.get(r)),
                &mut null,
                |a, b| a.as_bytes().cmp(b.as_bytes()),
                |s| Cell::String(s.to_owned()),
            ),
        }
    };
    let total = selection.count() as u64;
    let top: Vec<Bucket> = buckets
        .iter()
        .take(top_k)
        .map(|(value, count)| Bucket {
            value: value.clone(),
            count: *count,
        })
        .collect();
    let rest = &buckets[top.len()..];
    Ok(Breakdown {
        column: column.to_owned(),
        total,
        other: rest.iter().map(|(_, c)| c).sum(),
        other_values: rest.len() as u64,
        top,
        null,
    })
}

/// Counts the values of `values` (nulls into `null`), ordered by count descending then by
/// `order`.
fn group<K: Copy + Eq + std::hash::Hash>(
    values: impl Iterator<Item = Option<K>>,
    null: &mut u64,
    order: impl Fn(&K, &K) -> Ordering,
    cell: impl Fn(K) -> Cell,
) -> Vec<(Cell, u64)> {
    let mut counts: hashbrown::HashMap<K, u64, FxBuildHasher> = hashbrown::HashMap::default();
    for value in values {
        match value {
            Some(k) => *counts.entry(k).or_insert(0) += 1,
            None => *null += 1,
        }
    }
    let mut counted: Vec<(K, u64)> = counts.into_iter().collect();
    counted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| order(&a.0, &b.0)));
    counted.into_iter().map(|(k, c)| (cell(k), c)).collect()
}

/// Pairwise intersections of selections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// `counts[i][j]`: recipients in both selection `i` and selection `j` (`counts[i][i]`:
    /// in selection `i`); symmetric.
    pub counts: Vec<Vec<u64>>,
}

/// The overlap matrix of up to [`MAX_OVERLAP`] selections over the same table.
pub fn overlap(selections: &[&Selection]) -> Result<Overlap, PreviewError> {
    if selections.len() > MAX_OVERLAP {
        return Err(PreviewError::TooManySelections {
            given: selections.len(),
            max: MAX_OVERLAP,
        });
    }
    if let Some(first) = selections.first()
        && let Some(other) = selections.iter().find(|s| s.len() != first.len())
    {
        return Err(PreviewError::WrongLength {
            expected: first.len(),
            found: other.len(),
        });
    }
    let k = selections.len();
    let mut counts = vec![vec![0u64; k]; k];
    for i in 0..k {
        for j in i..k {
            let c = selections[i].intersection_count(selections[j]) as u64;
            counts[i][j] = c;
            counts[j][i] = c;
        }
    }
    Ok(Overlap { counts })
}

fn same_length(table: &RecipientsTable, selection: &Selection) -> Result<(), PreviewError> {
    if selection.len() != table.len() {
        return Err(PreviewError::WrongLength {
            expected: table.len(),
            found: selection.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
