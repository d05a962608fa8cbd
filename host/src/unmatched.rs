//! An import's unmatched identifiers as the database keeps them: in the wire's packed form
//! ([`packed::encode_unmatched`]), up to [`PER_PART`] rows to a part — one row per identifier
//! would cost more than the import. The store keeps the parts as opaque bytes
//! ([`UnmatchedPart`]); the import encodes them ([`encode`]) and the report and the server's
//! unmatched pages read them back ([`rows`]).

use audlink_core::import::UnmatchedId;
use audlink_wasm::wire::packed;

use crate::store::{StoreError, StoredImport, UnmatchedPart};

/// Unmatched identifiers packed into one part at most.
pub const PER_PART: usize = 65_536;

/// `rows` (in recorded order) as parts of at most [`PER_PART`] rows.
pub fn encode(rows: &[UnmatchedId]) -> Vec<UnmatchedPart> {
    rows.chunks(PER_PART)
        .enumerate()
        .map(|(i, chunk)| UnmatchedPart {
            first_seq: (i * PER_PART) as u64,
            rows: chunk.len() as u64,
            bytes: packed::encode_unmatched(chunk),
        })
        .collect()
}

/// The first `limit` unmatched rows of `stored` (read with at least that limit), in recorded
/// order: the rows of schema version 1, then those of the parts. A part that does not decode
/// is [`StoreError::Corrupt`].
pub fn rows(stored: &StoredImport, limit: usize) -> Result<Vec<UnmatchedId>, StoreError> {
    let mut unmatched: Vec<UnmatchedId> = stored
        .legacy_unmatched
        .iter()
        .take(limit)
        .cloned()
        .collect();
    for part in &stored.unmatched_parts {
        if unmatched.len() >= limit {
            break;
        }
        let decoded = packed::decode_unmatched(&part.bytes).map_err(|e| StoreError::Corrupt {
            detail: format!("import {}: unmatched identifiers: {e}", stored.id),
        })?;
        let room = limit - unmatched.len();
        unmatched.extend(decoded.into_iter().take(room));
    }
    Ok(unmatched)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use audlink_core::id::IdReason;
    use audlink_core::import::UnmatchedReason;
    use audlink_core::recipients::{RecipientIds, RecipientsTable};
    use audlink_core::time::Timestamp;

    use super::*;
    use crate::store::testing::store;
    use crate::store::{ImportRun, InputKey, Store};

    fn unmatched_row(line: u64) -> UnmatchedId {
        UnmatchedId {
            file: "a.sync".into(),
            line,
            segment: "7".into(),
            id: "x".to_owned(),
            reason: UnmatchedReason::InvalidFormat,
            rule: Some(IdReason::BadLength),
        }
    }

    /// Records an import with `rows` unmatched (encoded here) through the trait; its id.
    fn record(store: &mut dyn Store, rows: &[UnmatchedId]) -> i64 {
        let table = RecipientsTable {
            ids: RecipientIds::Int((1..=10).collect()),
            columns: Vec::new(),
        };
        store.upsert_recipients(&table).unwrap();
        let parts = encode(rows);
        store
            .record_import(&ImportRun {
                data_source: "ecid",
                input_key: &InputKey::from_bytes([9; 32]),
                created_at: Timestamp::from_unix_seconds(1_700_000_000).unwrap(),
                lists: &[],
                last_applied: &BTreeMap::new(),
                report: "{\"totals\": {}}",
                unmatched: &parts,
            })
            .unwrap()
    }

    #[test]
    fn many_unmatched_rows_read_back_in_order_across_packed_parts() {
        let (_dir, mut store) = store("unmatched-parts");
        let rows: Vec<UnmatchedId> = (0..PER_PART as u64 * 2 + 17)
            .map(|line| UnmatchedId {
                segment: (line % 5).to_string().into(),
                id: format!("id-{line}"),
                rule: None,
                reason: UnmatchedReason::ALL[(line % 4) as usize],
                ..unmatched_row(line)
            })
            .collect();
        assert_eq!(encode(&rows).len(), 3);
        let id = record(&mut store, &rows);
        for limit in [0, 5, PER_PART + 3, rows.len(), usize::MAX] {
            let report = store.import_report(id, limit).unwrap();
            assert_eq!(report.unmatched_total, rows.len() as u64);
            assert_eq!(
                super::rows(&report, limit).unwrap(),
                rows[..limit.min(rows.len())],
                "limit {limit}"
            );
        }
    }

    #[test]
    fn a_few_rows_read_back_up_to_the_limit() {
        let (_dir, mut store) = store("unmatched-few");
        let rows = [unmatched_row(1), unmatched_row(2), unmatched_row(3)];
        let id = record(&mut store, &rows);
        let report = store.import_report(id, 2).unwrap();
        assert_eq!(report.unmatched_total, 3);
        assert_eq!(super::rows(&report, 2).unwrap(), rows[..2]);
    }

    #[test]
    fn a_part_that_does_not_decode_is_corrupt() {
        let stored = StoredImport {
            id: 4,
            data_source: "ecid".to_owned(),
            created_at: Timestamp::from_unix_seconds(0).unwrap(),
            report: "{}".to_owned(),
            legacy_unmatched: vec![unmatched_row(1)],
            unmatched_parts: vec![UnmatchedPart {
                first_seq: 1,
                rows: 1,
                bytes: vec![1, 2, 3],
            }],
            unmatched_total: 2,
        };
        assert_eq!(rows(&stored, 1).unwrap(), [unmatched_row(1)]);
        let err = rows(&stored, 2).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the database holds unexpected data: import 4: unmatched identifiers"),
            "{err}"
        );
    }
}
