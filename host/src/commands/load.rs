//! `audlink recipients load` and `audlink visitors load`: the core reads the CSV in the
//! sandbox, the store upserts what it accepted.

use std::fmt::Write as _;
use std::path::Path;

use audlink_wasm::dispatch::{LoadOptions, LoadSummary};
use audlink_wasm::wire::Op;
use serde_json::json;

use super::{Context, Failure, Progress, base_name, print, readable};
use crate::guest::Request;

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

/// `audlink recipients load FILE`.
pub(super) fn recipients(ctx: &mut Context<'_>, file: &Path) -> Result<(), Failure> {
    readable(file)?;
    let mut store = ctx.store()?;
    let name = base_name(file);
    let mut request = Request::new();
    let payload = request.file(file);
    request.op(Op::LoadRecipients {
        name: name.clone(),
        payload,
        options: options(),
    });
    request.op(Op::GetRecipients);
    let progress = Progress::start(ctx, format!("reading {name} in the sandbox"));
    let decoded = ctx.call(&request)?;
    let summary: LoadSummary = decoded.typed(0).map_err(|e| Failure::job(e.to_string()))?;
    let table = decoded
        .recipients(1)
        .map_err(|e| Failure::job(e.to_string()))?;
    progress.step("writing recipients to the database");
    let upsert = store.upsert_recipients(&table)?;
    drop(progress);
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
