//! Deliveries and the working state of segments and lists.
//!
//! Files are grouped into deliveries ([`deliveries`]: files whose names differ only in the
//! split part, per format), applied in timestamp order (files without a time first). Each
//! segment keeps a [`SegmentState`] across deliveries: its report, the recipients added and
//! removed by the delivery being applied, its unmatched counts by reason, and whether the
//! current delivery is refused for it (older than the last one applied for the segment: its
//! units are counted as refused, not applied). Each list touched keeps a [`ListState`] (its
//! original and current members, as recipient numbers).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::report::{SegmentReport, UnmatchedReason};
use super::{AudienceFile, AudienceFormat, ImportError, ImportRequest};
use crate::format::aep::AepFileName;
use crate::format::onboarding::{OnboardingFileName, OnboardingMode};
use crate::format::outbound::{OutboundFileName, SyncMode};

/// A group of files applied together.
#[derive(Debug)]
pub(super) struct Delivery<'a> {
    pub(super) files: Vec<AudienceFile<'a>>,
    /// Unix milliseconds, when the names say.
    pub(super) timestamp: Option<i64>,
    pub(super) full: bool,
    /// Segments a full delivery replaces even without lines (AEP file segment, id list segment).
    pub(super) declared_segments: Vec<String>,
}

/// The request's files grouped into deliveries (by format and name less its split part, or
/// one per id list), each delivery's files by name, in timestamp order.
pub(super) fn deliveries<'a>(
    request: &ImportRequest<'a>,
) -> Result<Vec<Delivery<'a>>, ImportError> {
    let mut groups: BTreeMap<(u8, String), Delivery<'a>> = BTreeMap::new();
    for (position, file) in request.files.iter().enumerate() {
        let base = file.name.rsplit(['/', '\\']).next().unwrap_or(file.name);
        let (group, timestamp, full, segment) = match file.format {
            AudienceFormat::Outbound { mode } => {
                let name = OutboundFileName::parse(base)?;
                let full = name.sync_mode.or(*mode).unwrap_or(SyncMode::Iter) == SyncMode::Full;
                (
                    name.delivery().render(),
                    name.timestamp_ms.map(|t| t as i64),
                    full,
                    None,
                )
            }
            AudienceFormat::Aep { full, .. } => {
                let name = AepFileName::parse(base)?;
                let group = AepFileName {
                    part: 1,
                    ..name.clone()
                }
                .render();
                (
                    group,
                    Some(name.timestamp.unix_micros() / 1000),
                    *full,
                    Some(name.segment_id),
                )
            }
            AudienceFormat::Onboarding => {
                let name = OnboardingFileName::parse(base)?;
                let group = OnboardingFileName {
                    split: None,
                    gzip: false,
                    ..name.clone()
                }
                .render();
                let ts = i64::try_from(name.timestamp).unwrap_or(i64::MAX / 1000) * 1000;
                (
                    group,
                    Some(ts),
                    name.mode == OnboardingMode::Overwrite,
                    None,
                )
            }
            AudienceFormat::IdList { segment } => {
                (format!("#{position}"), None, true, Some(segment.clone()))
            }
        };
        let kind = match file.format {
            AudienceFormat::Outbound { .. } => 0,
            AudienceFormat::Aep { .. } => 1,
            AudienceFormat::Onboarding => 2,
            AudienceFormat::IdList { .. } => 3,
        };
        let delivery = groups.entry((kind, group)).or_insert_with(|| Delivery {
            files: Vec::new(),
            timestamp,
            full,
            declared_segments: Vec::new(),
        });
        delivery.files.push(*file);
        delivery.full |= full;
        delivery.declared_segments.extend(segment);
    }
    let mut out: Vec<Delivery<'a>> = groups.into_values().collect();
    for delivery in &mut out {
        delivery.files.sort_by(|a, b| a.name.cmp(b.name));
        delivery.declared_segments.sort();
        delivery.declared_segments.dedup();
    }
    out.sort_by_key(|d| d.timestamp.unwrap_or(i64::MIN));
    Ok(out)
}

/// Per-segment working state.
#[derive(Debug, Default)]
pub(super) struct SegmentState {
    pub(super) report: SegmentReport,
    /// The segment's name, shared by its unmatched rows.
    pub(super) name: Arc<str>,
    /// Recipients added (this delivery) and removed (this delivery).
    pub(super) adds: Vec<u32>,
    pub(super) removes: Vec<u32>,
    /// Every recipient matched in the command (until the last delivery counts them).
    pub(super) matched: Vec<u32>,
    /// Whether the report's recipient counts are final (set in the last delivery).
    pub(super) counted: bool,
    /// Units unmatched, by reason (`UnmatchedReason as usize`; folded into the report at the
    /// end).
    pub(super) unmatched: [u64; 4],
    /// Refused in the current delivery (stale).
    pub(super) refused_now: bool,
    /// Units refused in the current delivery.
    pub(super) refused_units: u64,
    /// Has units, or is replaced, in the current delivery.
    pub(super) touched: bool,
}

/// Sets the recipient counts of a segment's report from its matched recipient numbers (sorted,
/// distinct).
pub(super) fn count_matched(report: &mut SegmentReport, matched: &[u32], opted_out: &[bool]) {
    report.distinct_recipients = matched.len() as u64;
    report.opted_out = matched.iter().filter(|&&r| opted_out[r as usize]).count() as u64;
}

/// Every unmatched reason, in `as usize` order.
pub(super) const REASONS: [UnmatchedReason; 4] = [
    UnmatchedReason::InvalidFormat,
    UnmatchedReason::Duplicate,
    UnmatchedReason::NoRecipient,
    UnmatchedReason::Ambiguous,
];
const _: () = assert!(
    UnmatchedReason::InvalidFormat as usize == 0
        && UnmatchedReason::Duplicate as usize == 1
        && UnmatchedReason::NoRecipient as usize == 2
        && UnmatchedReason::Ambiguous as usize == 3
);

/// Working state of a list.
#[derive(Debug)]
pub(super) struct ListState {
    pub(super) original: Vec<u32>,
    pub(super) members: Vec<u32>,
    pub(super) replaced: bool,
}
