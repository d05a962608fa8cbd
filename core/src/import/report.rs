//! The import report: totals, per segment outcomes by reason, per data source, and on request
//! every unmatched identifier. Serializable and stable (maps are ordered; lists are sorted).

use std::sync::Arc;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::datasource::{DataSource, DataSourceKind, Identifier};
use crate::format::BadRecord;
use crate::id::IdReason;

/// Why a unit did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedReason {
    /// The identifier is not valid for the data source (see the rule it broke).
    InvalidFormat,
    /// The identifier was already seen for this segment earlier in the command.
    Duplicate,
    /// No recipient has this identifier.
    NoRecipient,
    /// Several recipients have it and the policy does not pick.
    Ambiguous,
}

impl UnmatchedReason {
    /// Every reason, in the order reports list them.
    pub const ALL: [UnmatchedReason; 4] = [
        UnmatchedReason::InvalidFormat,
        UnmatchedReason::Duplicate,
        UnmatchedReason::NoRecipient,
        UnmatchedReason::Ambiguous,
    ];

    /// The snake_case code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            UnmatchedReason::InvalidFormat => "invalid_format",
            UnmatchedReason::Duplicate => "duplicate",
            UnmatchedReason::NoRecipient => "no_recipient",
            UnmatchedReason::Ambiguous => "ambiguous",
        }
    }
}

/// Counts of the whole import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Files read.
    pub files: u64,
    /// Deliveries (groups of split files) applied or refused.
    pub deliveries: u64,
    /// Lines read (records + bad records + blank lines; CSV header rows excluded).
    pub lines: u64,
    /// Lines that split into fields.
    pub records: u64,
    /// Lines that could not be read (listed in `problems`).
    pub bad_records: u64,
    /// Empty lines.
    pub blank_lines: u64,
    /// Records with neither segments nor removals.
    pub lines_without_segments: u64,
    /// Onboarding entries that are not traits (`ic=`, `key=value`).
    pub entries_ignored: u64,
    /// (line, segment) pairs of add columns: `matched + unmatched + refused_units`.
    pub units: u64,
    /// Units matched.
    pub matched: u64,
    /// Units not matched (any reason).
    pub unmatched: u64,
    /// Units of deliveries refused as older than the last applied one.
    pub refused_units: u64,
    /// (line, segment) pairs of removed columns in incremental deliveries.
    pub removals: u64,
    /// Removed-column pairs of full deliveries, which are ignored.
    pub removals_ignored: u64,
}

/// Outcomes of one segment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentReport {
    /// The segment id, verbatim.
    pub segment: String,
    /// The list it feeds.
    pub list: String,
    /// Units applied: `matched` + the sum of `unmatched`.
    pub ids: u64,
    /// Units matched.
    pub matched: u64,
    /// Units not matched, by reason.
    pub unmatched: BTreeMap<UnmatchedReason, u64>,
    /// `invalid_format` units by the identifier rule they broke (when one is known).
    pub invalid_rules: BTreeMap<IdReason, u64>,
    /// `matched / ids`, 0 without ids.
    pub match_rate: f64,
    /// Distinct recipients matched.
    pub distinct_recipients: u64,
    /// Of those, opted out (still members: membership is data).
    pub opted_out: u64,
    /// Removals applied (the identifier reconciled).
    pub removed: u64,
    /// Removals whose identifier did not reconcile to one recipient set.
    pub removals_unmatched: u64,
    /// Units refused (stale deliveries).
    pub refused: u64,
    /// Removals refused (stale deliveries).
    pub refused_removals: u64,
}

impl SegmentReport {
    /// Units not matched by reason code, every [`UnmatchedReason::ALL`] code present (zeros
    /// included), as reports print them.
    pub fn unmatched_by_reason(&self) -> BTreeMap<&'static str, u64> {
        UnmatchedReason::ALL
            .iter()
            .map(|r| (r.code(), self.unmatched.get(r).copied().unwrap_or(0)))
            .collect()
    }

    pub(crate) fn finish(&mut self) {
        self.match_rate = if self.ids == 0 {
            0.0
        } else {
            self.matched as f64 / self.ids as f64
        };
    }
}

/// What the data source did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSourceSummary {
    /// Its name.
    pub name: String,
    /// `visitor-id` or `declared-id`.
    pub kind: DataSourceKind,
    /// Identifier keys built from links or recipients.
    pub indexed_keys: u64,
    /// Bytes the match index holds (a lower bound).
    pub index_bytes: u64,
}

/// One unmatched unit, listed on request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmatchedId {
    /// File it came from (shared by every row of the file: no copy per row).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u64,
    /// Segment of the unit (shared by every row of the segment).
    pub segment: Arc<str>,
    /// The identifier as written (lossy UTF-8; empty when the line held none).
    pub id: String,
    /// Why it did not match.
    pub reason: UnmatchedReason,
    /// For `invalid_format`: the identifier rule it broke.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule: Option<IdReason>,
}

impl UnmatchedId {
    /// How many of `rows` there are of each reason code (only the reasons present).
    pub fn count_by_reason(rows: &[UnmatchedId]) -> BTreeMap<&'static str, u64> {
        let mut by = BTreeMap::new();
        for row in rows {
            *by.entry(row.reason.code()).or_default() += 1;
        }
        by
    }
}

/// A delivery refused for one segment because a newer one was applied before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The delivery's files.
    pub files: Vec<String>,
    /// The segment refused.
    pub segment: String,
    /// The delivery's timestamp (unix ms).
    pub timestamp: i64,
    /// The last applied timestamp it is older than.
    pub last_applied: i64,
    /// Units not applied.
    pub units: u64,
}

/// A bad record and the file it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocatedProblem {
    /// The file.
    pub file: String,
    /// The record.
    #[serde(flatten)]
    pub record: BadRecord,
}

/// What an import did with every identifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Whole-import counts.
    pub totals: Totals,
    /// Per segment, by segment id.
    pub segments: BTreeMap<String, SegmentReport>,
    /// The data source.
    pub data_source: DataSourceSummary,
    /// Bad records, by file and line.
    pub problems: Vec<LocatedProblem>,
    /// Stale deliveries refused.
    pub refused: Vec<Refused>,
    /// Every unmatched unit (only with `list_unmatched`), by file, line and segment.
    pub unmatched: Vec<UnmatchedId>,
}

impl ImportReport {
    pub(crate) fn new(source: &DataSource) -> ImportReport {
        ImportReport {
            totals: Totals::default(),
            segments: BTreeMap::new(),
            data_source: DataSourceSummary {
                name: source.name.clone(),
                kind: match source.identifier {
                    Identifier::VisitorId => DataSourceKind::VisitorId,
                    Identifier::DeclaredId(_) => DataSourceKind::DeclaredId,
                },
                indexed_keys: 0,
                index_bytes: 0,
            },
            problems: Vec::new(),
            refused: Vec::new(),
            unmatched: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_the_serialized_names() {
        for reason in UnmatchedReason::ALL {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::String(reason.code().to_owned())
            );
        }
    }

    #[test]
    fn unmatched_by_reason_lists_every_code() {
        let mut report = SegmentReport::default();
        assert_eq!(
            report.unmatched_by_reason(),
            BTreeMap::from([
                ("ambiguous", 0),
                ("duplicate", 0),
                ("invalid_format", 0),
                ("no_recipient", 0)
            ])
        );
        report.unmatched.insert(UnmatchedReason::NoRecipient, 3);
        report.unmatched.insert(UnmatchedReason::Duplicate, 1);
        assert_eq!(
            report.unmatched_by_reason(),
            BTreeMap::from([
                ("ambiguous", 0),
                ("duplicate", 1),
                ("invalid_format", 0),
                ("no_recipient", 3)
            ])
        );
    }

    #[test]
    fn rows_are_counted_by_reason_present() {
        let row = |reason| UnmatchedId {
            file: Arc::from("f"),
            line: 1,
            segment: Arc::from("s"),
            id: String::new(),
            reason,
            rule: None,
        };
        assert!(UnmatchedId::count_by_reason(&[]).is_empty());
        let rows = [
            row(UnmatchedReason::NoRecipient),
            row(UnmatchedReason::Ambiguous),
            row(UnmatchedReason::NoRecipient),
        ];
        assert_eq!(
            UnmatchedId::count_by_reason(&rows),
            BTreeMap::from([("ambiguous", 1), ("no_recipient", 2)])
        );
    }
}
