//! The loads: `recipients load` and `visitors load`. The core reads the CSV in the guest (a
//! recipients file in parts, so the guest's memory is bounded by the part, not the file), the
//! store upserts what it accepted in one transaction.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::answer::{LinksLoaded, RecipientsLoaded, UnknownRecipientRow};
use super::{AppError, base_name, readable};
use crate::guest::{Guest, Request};
use crate::parts::PartReader;
use crate::store::{RecipientsWriter, Store};
use audlink_core::format::problem::BadRecord;
use audlink_core::format::recipients::{Extent, PartSpec, duplicate_id};
use audlink_core::recipients::{ColumnType, RecipientIds, RecipientsTable};
use audlink_wasm::dispatch::{LoadOptions, LoadSummary};
use audlink_wasm::wire::Op;

/// Rejected rows listed in full at most (the count covers all).
pub const MAX_LISTED: usize = 20;

fn options() -> LoadOptions {
    LoadOptions {
        strict: false,
        max_bad: MAX_LISTED,
    }
}

/// Parts of a recipients file are about this many decoded bytes (the guest holds one part at
/// a time, with its table and the packed copy it returns: about 1 GiB at this size);
/// `AUDLINK_PART_BYTES` sets another size (tests use small parts).
const PART_BYTES: usize = 128 << 20;

fn part_bytes() -> usize {
    std::env::var("AUDLINK_PART_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(PART_BYTES)
}

/// One part read by the guest.
struct Part {
    summary: LoadSummary,
    extent: Extent,
    /// The rows and their lines (none in a pass that only infers types).
    rows: Option<(RecipientsTable, Vec<u64>)>,
}

/// Reads `file` part by part in the sandbox, each part after a copy of the header, with
/// `types` forced; hands every part to `each` in file order. Stops early (returning `false`)
/// when `each` does.
fn for_each_part(
    guest: &dyn Guest,
    file: &Path,
    name: &str,
    types: &BTreeMap<String, ColumnType>,
    with_rows: &Cell<bool>,
    step: &dyn Fn(&str),
    mut each: impl FnMut(Part, bool) -> Result<bool, AppError>,
) -> Result<(), AppError> {
    let total = std::fs::metadata(file).map_or(0, |m| m.len());
    let mut reader = PartReader::open(file, name)
        .map_err(|e| AppError::Job(format!("{}: {e}", file.display())))?;
    let mut header: Vec<u8> = Vec::new();
    let mut first_line = None;
    let mut len = part_bytes();
    loop {
        let (window, last) = reader.window(len).map_err(AppError::Job)?;
        let mut request = Request::new();
        let payload = request.bytes([&header[..], window].concat());
        request.op(Op::LoadRecipients {
            name: name.to_owned(),
            payload,
            options: options(),
            part: Some(PartSpec {
                more: !last,
                first_line,
                types: types.clone(),
            }),
        });
        let with_rows = with_rows.get();
        if with_rows {
            request.op(Op::GetRecipients);
            request.op(Op::GetRecipientLines);
        }
        let decoded = guest.call(&request)?;
        let job = |e: audlink_wasm::wire::ResponseError| AppError::Job(e.to_string());
        let summary: LoadSummary = decoded.typed(0).map_err(job)?;
        let extent = summary.extent.clone().ok_or_else(|| {
            AppError::Job(format!("{name}: the guest did not say where it stopped"))
        })?;
        let whole_records = extent.consumed > extent.header_len;
        if !last && !whole_records {
            // Not one whole record after the header: a longer part.
            len = len.saturating_mul(2);
            continue;
        }
        if header.is_empty() {
            header = window[..extent.header_len as usize].to_vec();
        }
        let from_window = (extent.consumed as usize).saturating_sub(if first_line.is_none() {
            0
        } else {
            header.len()
        });
        first_line = Some(extent.next_line);
        let rows = if with_rows {
            Some((
                decoded.recipients(1).map_err(job)?,
                decoded.recipient_lines(2).map_err(job)?,
            ))
        } else {
            None
        };
        reader.consume(from_window);
        len = part_bytes();
        if total > 0 {
            step(&format!(
                "reading {name} in the sandbox: {:.0}%",
                (reader.consumed() as f64 / total as f64 * 100.0).min(100.0)
            ));
        }
        if !each(
            Part {
                summary,
                extent,
                rows,
            },
            last,
        )? || last
        {
            return Ok(());
        }
    }
}

/// Ids seen in earlier parts, with their lines: a repeat in a later part rejects the file as
/// the core rejects one within a part.
#[derive(Default)]
struct SeenIds {
    ints: HashMap<i64, u64>,
    texts: HashMap<String, u64>,
}

impl SeenIds {
    fn check(
        &mut self,
        name: &str,
        table: &RecipientsTable,
        lines: &[u64],
    ) -> Result<(), AppError> {
        let repeat =
            |line: u64, first: u64| AppError::Job(duplicate_id(name, line, first).to_string());
        for (row, &line) in lines.iter().enumerate() {
            let first = match &table.ids {
                RecipientIds::Int(ids) => *self.ints.entry(ids[row]).or_insert(line),
                RecipientIds::String(ids) => {
                    let id = ids.get(row).unwrap_or_default();
                    match self.texts.get(id) {
                        Some(&first) => first,
                        None => {
                            self.texts.insert(id.to_owned(), line);
                            line
                        }
                    }
                }
            };
            if first != line {
                return Err(repeat(line, first));
            }
        }
        Ok(())
    }
}

/// What writing the parts found.
#[derive(Default)]
struct Totals {
    rows: u64,
    rejected: u64,
    empty_lines: u64,
    bad: Vec<BadRecord>,
}

/// How writing the parts ended.
enum Written {
    /// Every part written.
    All(Totals),
    /// Nothing written: the file takes more than one part and has columns without a type
    /// yet; these are the types all its parts call for together.
    NeedsTypes(BTreeMap<String, ColumnType>),
}

/// Reads `file` in parts with `types` forced and writes each part. With `probe`, writes
/// nothing when the first part is not the last and has columns `types` lacks: the rest of the
/// file is then only read for the types its columns call for ([`Written::NeedsTypes`]).
#[allow(clippy::too_many_arguments)]
fn write_parts(
    guest: &dyn Guest,
    file: &Path,
    name: &str,
    types: &BTreeMap<String, ColumnType>,
    probe: bool,
    write: &mut dyn RecipientsWriter,
    step: &dyn Fn(&str),
) -> Result<Written, AppError> {
    let mut seen = SeenIds::default();
    let mut totals = Totals::default();
    let mut first = true;
    let with_rows = Cell::new(true);
    let mut joined: Option<BTreeMap<String, Option<ColumnType>>> = None;
    for_each_part(guest, file, name, types, &with_rows, step, |part, last| {
        if first
            && !last
            && probe
            && part
                .extent
                .inferred
                .iter()
                .any(|(c, _)| !types.contains_key(c))
        {
            joined = Some(BTreeMap::new());
            with_rows.set(false);
        }
        if let Some(joined) = joined.as_mut() {
            for (column, inferred) in part.extent.inferred {
                let slot = joined.entry(column).or_default();
                *slot = ColumnType::join(*slot, inferred);
            }
            first = false;
            return Ok(true);
        }
        let (table, lines) = part.rows.expect("rows were asked for");
        if !(first && last) {
            seen.check(name, &table, &lines)?;
        }
        first = false;
        write.write(&table)?;
        totals.rows += part.summary.rows;
        totals.rejected += part.summary.rejected;
        totals.empty_lines += part.summary.empty_lines;
        totals.bad.extend(part.summary.bad);
        Ok(true)
    })?;
    Ok(match joined {
        None => Written::All(totals),
        Some(joined) => {
            let mut all = types.clone();
            for (column, ty) in joined {
                if let Some(ty) = ty {
                    all.entry(column).or_insert(ty);
                }
            }
            Written::NeedsTypes(all)
        }
    })
}

/// Loads the recipients of `file` (upsert by id): read in parts, all written in one
/// transaction. Column types are those already stored; a file with new columns that takes
/// more than one part is read twice — first for the types its columns call for as a whole, so
/// that reading in parts types them exactly as reading the file at once would.
pub fn recipients(
    guest: &dyn Guest,
    store: &mut dyn Store,
    file: &Path,
    step: &dyn Fn(&str),
) -> Result<RecipientsLoaded, AppError> {
    readable(file)?;
    let name = base_name(file);
    step(&format!("reading {name} in the sandbox"));
    let mut write = store.begin_recipients()?;
    let stored: BTreeMap<String, ColumnType> = write.types()?.into_iter().collect();
    let totals = match write_parts(guest, file, &name, &stored, true, &mut *write, step)? {
        Written::All(totals) => totals,
        Written::NeedsTypes(types) => {
            match write_parts(guest, file, &name, &types, false, &mut *write, step)? {
                Written::All(totals) => totals,
                // Only a probe stops for types; never reached, but no panic either.
                Written::NeedsTypes(_) => {
                    return Err(AppError::Job(format!(
                        "{name}: column types did not settle"
                    )));
                }
            }
        }
    };
    step(&format!("committing {name}"));
    let upsert = write.commit()?;
    let mut bad = totals.bad;
    bad.truncate(MAX_LISTED);
    Ok(RecipientsLoaded {
        file: name,
        rows: totals.rows,
        inserted: upsert.inserted,
        updated: upsert.updated,
        rejected: totals.rejected,
        rejected_rows: bad,
        added_columns: upsert.added_columns,
    })
}

/// Loads the visitor links of `file` (`recipient_id,visitor_id[,last_seen]`); links naming a
/// recipient the database does not hold are refused and counted.
pub fn visitors(
    guest: &dyn Guest,
    store: &mut dyn Store,
    file: &Path,
    step: &dyn Fn(&str),
) -> Result<LinksLoaded, AppError> {
    readable(file)?;
    let name = base_name(file);
    let mut request = Request::new();
    let payload = request.file(file);
    request.op(Op::LoadLinks {
        name: name.clone(),
        payload,
        options: options(),
    });
    request.op(Op::GetLinks);
    step(&format!("reading {name} in the sandbox"));
    let decoded = guest.call(&request)?;
    let summary: LoadSummary = decoded.typed(0).map_err(|e| AppError::Job(e.to_string()))?;
    let links = decoded.links(1).map_err(|e| AppError::Job(e.to_string()))?;
    step("writing visitor links to the database");
    let upsert = store.upsert_links(&links)?;
    let unknown = upsert
        .rejected
        .iter()
        .take(MAX_LISTED)
        .map(|r| UnknownRecipientRow {
            recipient_id: links[r.index].recipient.to_string(),
            reason: r.reason.code().to_owned(),
        })
        .collect();
    Ok(LinksLoaded {
        file: name,
        rows: summary.rows,
        merged: summary.merged,
        inserted: upsert.inserted,
        updated: upsert.updated,
        rejected: summary.rejected + upsert.rejected.len() as u64,
        rejected_rows: summary.bad,
        unknown_recipients: upsert.rejected.len(),
        unknown_recipient_rows: unknown,
    })
}
