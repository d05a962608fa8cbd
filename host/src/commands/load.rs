//! `audlink recipients load` and `audlink visitors load`: the core reads the CSV in the
//! sandbox, the store upserts what it accepted.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use audlink_core::format::problem::BadRecord;
use audlink_core::format::recipients::{
    ColumnType, Extent, PartSpec, RecipientIds, RecipientsTable, duplicate_id,
};
use audlink_wasm::dispatch::{LoadOptions, LoadSummary};
use audlink_wasm::wire::Op;
use serde_json::json;

use super::{Context, Failure, Progress, base_name, print, readable};
use crate::guest::Request;
use crate::parts::PartReader;
use crate::store::RecipientsWriter;

/// Rejected rows listed in full at most (the count covers all).
const MAX_LISTED: usize = 20;

fn options() -> LoadOptions {
    LoadOptions {
        strict: false,
        max_bad: MAX_LISTED,
    }
}

fn rejected_lines(summary: &LoadSummary, out: &mut String) {
    for bad in &summary.bad {
        let _ = writeln!(out, "  {}", bad.located(&summary.file));
    }
    if summary.rejected as usize > summary.bad.len() {
        let _ = writeln!(
            out,
            "  … and {} more",
            summary.rejected as usize - summary.bad.len()
        );
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
    ctx: &mut Context<'_>,
    file: &Path,
    name: &str,
    types: &BTreeMap<String, ColumnType>,
    with_rows: &Cell<bool>,
    progress: &Progress,
    mut each: impl FnMut(Part, bool) -> Result<bool, Failure>,
) -> Result<(), Failure> {
    let total = std::fs::metadata(file).map_or(0, |m| m.len());
    let mut reader = PartReader::open(file, name)
        .map_err(|e| Failure::job(format!("{}: {e}", file.display())))?;
    let mut header: Vec<u8> = Vec::new();
    let mut first_line = None;
    let mut len = part_bytes();
    loop {
        let (window, last) = reader.window(len).map_err(Failure::job)?;
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
        let decoded = ctx.call(&request)?;
        let job = |e: audlink_wasm::wire::ResponseError| Failure::job(e.to_string());
        let summary: LoadSummary = decoded.typed(0).map_err(job)?;
        let extent = summary.extent.clone().ok_or_else(|| {
            Failure::job(format!("{name}: the guest did not say where it stopped"))
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
            progress.step(format!(
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
    fn check(&mut self, name: &str, table: &RecipientsTable, lines: &[u64]) -> Result<(), Failure> {
        let repeat =
            |line: u64, first: u64| Failure::job(duplicate_id(name, line, first).to_string());
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
    ctx: &mut Context<'_>,
    file: &Path,
    name: &str,
    types: &BTreeMap<String, ColumnType>,
    probe: bool,
    write: &mut dyn RecipientsWriter,
    progress: &Progress,
) -> Result<Written, Failure> {
    let mut seen = SeenIds::default();
    let mut totals = Totals::default();
    let mut first = true;
    let with_rows = Cell::new(true);
    let mut joined: Option<BTreeMap<String, Option<ColumnType>>> = None;
    for_each_part(
        ctx,
        file,
        name,
        types,
        &with_rows,
        progress,
        |part, last| {
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
        },
    )?;
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

/// `audlink recipients load FILE`: the file is read in parts, all written in one transaction.
/// Column types are those already stored; a file with new columns that takes more than one
/// part is read twice — first for the types its columns call for as a whole, so that reading
/// in parts types them exactly as reading the file at once would.
pub(super) fn recipients(ctx: &mut Context<'_>, file: &Path) -> Result<(), Failure> {
    readable(file)?;
    let name = base_name(file);
    let progress = Progress::start(ctx, format!("reading {name} in the sandbox"));
    let mut store = ctx.store()?;
    let mut write = store.begin_recipients()?;
    let stored: BTreeMap<String, ColumnType> = write.types()?.into_iter().collect();
    let totals = match write_parts(ctx, file, &name, &stored, true, &mut *write, &progress)? {
        Written::All(totals) => totals,
        Written::NeedsTypes(types) => {
            match write_parts(ctx, file, &name, &types, false, &mut *write, &progress)? {
                Written::All(totals) => totals,
                // Only a probe stops for types; never reached, but no panic either.
                Written::NeedsTypes(_) => {
                    return Err(Failure::job(format!("{name}: column types did not settle")));
                }
            }
        }
    };
    progress.step(format!("committing {name}"));
    let upsert = write.commit()?;
    drop(progress);
    let mut bad = totals.bad;
    bad.truncate(MAX_LISTED);
    let summary = LoadSummary {
        file: name.clone(),
        rows: totals.rows,
        rejected: totals.rejected,
        empty_lines: totals.empty_lines,
        merged: None,
        schema: None,
        bad,
        extent: None,
    };
    let json = json!({
        "file": name,
        "rows": summary.rows,
        "inserted": upsert.inserted,
        "updated": upsert.updated,
        "rejected": summary.rejected,
        "rejected_rows": summary.bad,
        "added_columns": upsert.added_columns,
    });
    let mut human = format!(
        "{name}: {} rows read — {} inserted, {} updated, {} rejected\n",
        summary.rows, upsert.inserted, upsert.updated, summary.rejected
    );
    if !upsert.added_columns.is_empty() {
        let _ = writeln!(human, "  new columns: {}", upsert.added_columns.join(", "));
    }
    rejected_lines(&summary, &mut human);
    print(ctx, &json, &human)
}

/// `audlink visitors load FILE`.
pub(super) fn visitors(ctx: &mut Context<'_>, file: &Path) -> Result<(), Failure> {
    readable(file)?;
    let mut store = ctx.store()?;
    let name = base_name(file);
    let mut request = Request::new();
    let payload = request.file(file);
    request.op(Op::LoadLinks {
        name: name.clone(),
        payload,
        options: options(),
    });
    request.op(Op::GetLinks);
    let progress = Progress::start(ctx, format!("reading {name} in the sandbox"));
    let decoded = ctx.call(&request)?;
    let summary: LoadSummary = decoded.typed(0).map_err(|e| Failure::job(e.to_string()))?;
    let links = decoded.links(1).map_err(|e| Failure::job(e.to_string()))?;
    progress.step("writing visitor links to the database");
    let upsert = store.upsert_links(&links)?;
    drop(progress);
    let unknown: Vec<_> = upsert
        .rejected
        .iter()
        .take(MAX_LISTED)
        .map(|r| json!({"recipient_id": links[r.index].recipient.to_string(), "reason": r.reason.code()}))
        .collect();
    let json = json!({
        "file": name,
        "rows": summary.rows,
        "merged": summary.merged,
        "inserted": upsert.inserted,
        "updated": upsert.updated,
        "rejected": summary.rejected + upsert.rejected.len() as u64,
        "rejected_rows": summary.bad,
        "unknown_recipients": upsert.rejected.len(),
        "unknown_recipient_rows": unknown,
    });
    let mut human = format!(
        "{name}: {} rows read — {} links inserted, {} updated, {} rejected ({} unreadable, {} naming an unknown recipient)\n",
        summary.rows,
        upsert.inserted,
        upsert.updated,
        summary.rejected + upsert.rejected.len() as u64,
        summary.rejected,
        upsert.rejected.len()
    );
    rejected_lines(&summary, &mut human);
    print(ctx, &json, &human)
}
