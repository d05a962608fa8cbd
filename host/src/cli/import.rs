//! `audlink audience import` and `audlink report`: flags → [`ImportPlan`], answers → text.

use std::fmt::Write as _;

use serde::Serialize;

use super::args::{ImportArgs, ReportArgs};
use super::{Context, Failure, Progress, print};
use crate::app::answer::ImportAnswer;
use crate::app::import::{self, Unmatched};
use crate::plan::{ImportInput, ImportOptions, ImportPlan};

/// The plan of `args`.
pub(super) fn plan(args: &ImportArgs) -> ImportPlan {
    ImportPlan {
        options: ImportOptions {
            datasource: args.datasource.clone(),
            mappings: args.mappings.clone(),
            policy: args.policy,
            identity_column: args.identity_column.clone(),
            status_column: args.status_column.clone(),
            mode: args.mode,
            format: args.format,
            segment: args.segment.clone(),
        },
        inputs: args.files.iter().map(ImportInput::file).collect(),
    }
}

/// `audlink audience import FILE... --datasource NAME`.
pub(super) fn run(ctx: &mut Context<'_>, args: &ImportArgs) -> Result<(), Failure> {
    // Configuration, then each file, then the database: the first problem is the one told.
    let config = ctx.config()?;
    let plan = plan(args);
    import::check(&config, &plan)?;
    let mut store = ctx.store()?;
    let progress = Progress::start(ctx, "hashing the input");
    let guest = ctx.guest()?;
    let answer = import::import(guest, &mut *store, &config, &plan, &[], &|step| {
        progress.step(step)
    })?;
    drop(progress);
    print(ctx, &answer, &human(&answer))
}

/// The human text of an import's answer.
pub(super) fn human(answer: &ImportAnswer) -> String {
    let mut out = String::new();
    let totals = &answer.summary.totals;
    let _ = writeln!(
        out,
        "import {}{}: {} lines, {} units — {} matched, {} unmatched, {} bad records",
        answer.import_id,
        if answer.skipped {
            " (already applied: nothing changed)"
        } else {
            ""
        },
        totals.lines,
        totals.units,
        totals.matched,
        totals.unmatched,
        totals.bad_records,
    );
    /// Segments listed in the human output at most (JSON and `audlink report` have them all).
    const SHOWN: usize = 10;
    let segments = &answer.summary.segments;
    for s in segments.iter().take(SHOWN) {
        let rate = s.match_rate * 100.0;
        let reasons: Vec<String> = s
            .unmatched_by_reason
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  segment {} → list {}: {} ids, {} matched ({rate:.1}%), {} recipients, {} removed{}",
            s.segment,
            s.list,
            s.ids,
            s.matched,
            s.recipients,
            s.removed,
            if reasons.is_empty() {
                String::new()
            } else {
                format!("; unmatched: {}", reasons.join(", "))
            }
        );
    }
    if segments.len() > SHOWN {
        let _ = writeln!(
            out,
            "  … and {} more segments (all of them: --json, or audlink report {})",
            segments.len() - SHOWN,
            answer.import_id
        );
    }
    out
}

/// `audlink report --json`: the import's answer, with its unmatched identifiers when asked.
#[derive(Debug, Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    answer: &'a ImportAnswer,
    #[serde(skip_serializing_if = "Option::is_none")]
    unmatched_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unmatched: Option<&'a [audlink_core::import::UnmatchedId]>,
}

/// `audlink report IMPORT_ID [--unmatched] [--limit N]`.
pub(super) fn report(ctx: &mut Context<'_>, args: &ReportArgs) -> Result<(), Failure> {
    let store = ctx.store()?;
    let limit = if args.unmatched { args.limit } else { 0 };
    let (answer, Unmatched { total, rows }) = import::report(&*store, args.import_id, limit)?;
    let mut text = human(&answer);
    if args.unmatched {
        let _ = writeln!(text, "unmatched identifiers ({total} in all):");
        for u in &rows {
            let _ = writeln!(
                text,
                "  {}:{} segment {}: {:?} {}{}",
                u.file,
                u.line,
                u.segment,
                u.id,
                u.reason.code(),
                u.rule
                    .map(|r| format!(" ({})", r.code()))
                    .unwrap_or_default()
            );
        }
    }
    let report = Report {
        answer: &answer,
        unmatched_total: args.unmatched.then_some(total),
        unmatched: args.unmatched.then_some(&rows[..]),
    };
    print(ctx, &report, &text)
}
