//! `audlink recipients load` and `audlink visitors load`: the answers → text.

use std::fmt::Write as _;
use std::path::Path;

use audlink_core::format::problem::BadRecord;

use super::{Context, Failure, Progress, print};
use crate::app::load;

/// The rejected rows' lines: each located in `file`, then how many more there are.
fn rejected_lines(file: &str, bad: &[BadRecord], rejected: u64, out: &mut String) {
    for record in bad {
        let _ = writeln!(out, "  {}", record.located(file));
    }
    if rejected as usize > bad.len() {
        let _ = writeln!(out, "  … and {} more", rejected as usize - bad.len());
    }
}

/// `audlink recipients load FILE`.
pub(super) fn recipients(ctx: &mut Context<'_>, file: &Path) -> Result<(), Failure> {
    crate::app::readable(file)?;
    let progress = Progress::start(ctx, "reading recipients in the sandbox");
    let mut store = ctx.store()?;
    let guest = ctx.guest()?;
    let loaded = load::recipients(guest, &mut *store, file, &|step| progress.step(step))?;
    drop(progress);
    let mut human = format!(
        "{}: {} rows read — {} inserted, {} updated, {} rejected\n",
        loaded.file, loaded.rows, loaded.inserted, loaded.updated, loaded.rejected
    );
    if !loaded.added_columns.is_empty() {
        let _ = writeln!(human, "  new columns: {}", loaded.added_columns.join(", "));
    }
    rejected_lines(
        &loaded.file,
        &loaded.rejected_rows,
        loaded.rejected,
        &mut human,
    );
    print(ctx, &loaded, &human)
}

/// `audlink visitors load FILE`.
pub(super) fn visitors(ctx: &mut Context<'_>, file: &Path) -> Result<(), Failure> {
    crate::app::readable(file)?;
    let mut store = ctx.store()?;
    let progress = Progress::start(ctx, "reading visitor links in the sandbox");
    let guest = ctx.guest()?;
    let loaded = load::visitors(guest, &mut *store, file, &|step| progress.step(step))?;
    drop(progress);
    let unknown = loaded.unknown_recipients as u64;
    let unreadable = loaded.rejected - unknown;
    let mut human = format!(
        "{}: {} rows read — {} links inserted, {} updated, {} rejected ({} unreadable, {} naming an unknown recipient)\n",
        loaded.file,
        loaded.rows,
        loaded.inserted,
        loaded.updated,
        loaded.rejected,
        unreadable,
        unknown
    );
    rejected_lines(&loaded.file, &loaded.rejected_rows, unreadable, &mut human);
    print(ctx, &loaded, &human)
}
