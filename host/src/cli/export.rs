//! `audlink audience export`: flags → [`ExportPlan`], files written to `--out`, then with
//! `--remote` the platform's trait and segment; the answer → text.

use std::fmt::Write as _;

use super::args::ExportArgs;
use super::{Context, Failure, Progress, now_or, print};
use crate::app::answer::ExportAnswer;
use crate::app::export::{self, write_files};
use crate::app::remote;
use crate::plan::{ExportMembers, ExportPlan};

/// The plan of `args` (`--out` and `--remote` are the command's own).
fn plan(args: &ExportArgs) -> Result<ExportPlan, Failure> {
    let members = match (&args.list, &args.rule) {
        (Some(list), _) => ExportMembers::List(list.clone()),
        (None, Some(rule)) => ExportMembers::Rule {
            rule: rule.clone(),
            now: Some(now_or(args.now.as_deref())?),
        },
        (None, None) => return Err(Failure::usage("give --list NAME or --where RULE")),
    };
    let audience = match (&args.audience, ExportPlan::default_audience(&members)) {
        (Some(name), _) => name.clone(),
        (None, Some(name)) => name.to_owned(),
        (None, None) => return Err(Failure::usage("--where needs --audience NAME")),
    };
    Ok(ExportPlan {
        members,
        audience,
        datasource: args.datasource.clone(),
        trait_id: args.trait_id,
        mode: args.mode,
        gzip: args.gzip,
        max_lines: args.max_lines,
        timestamp: args.timestamp,
        skip_unchanged: false,
    })
}

/// `audlink audience export`.
pub(super) fn run(ctx: &mut Context<'_>, args: &ExportArgs) -> Result<(), Failure> {
    let config = ctx.config()?;
    config.datasource(&args.datasource, None)?;
    if args.audience.is_none() && args.list.is_none() {
        return Err(Failure::usage("--where needs --audience NAME"));
    }
    // Credentials and folders are checked before any work, so a configuration error writes
    // nothing.
    let platform = if args.remote {
        let platform = remote::connect(&ctx.cli.config, &config)?;
        remote::folders(&platform)?;
        Some(platform)
    } else {
        None
    };
    let plan = plan(args)?;
    let mut store = ctx.store()?;
    let progress = Progress::start(ctx, "exporting in the sandbox");
    let guest = ctx.guest()?;
    let exported = export::export(
        guest,
        &mut *store,
        &config,
        &plan,
        &|step| progress.step(step),
        &mut |files| write_files(&args.out, files),
    )?;
    drop(progress);
    let mut answer = exported.answer;
    let mut text = human(&answer, exported.unchanged, &exported.delivered);
    // The files are written and the run recorded: a platform failure now leaves a run that a
    // retry resumes (same timestamp) and completes.
    if let Some(platform) = &platform {
        let _progress = Progress::start(ctx, "finding or creating the trait and segment");
        let data_source = config.datasource(&args.datasource, None)?;
        let made =
            remote::ensure_audience(platform, &answer.audience, &data_source, args.trait_id)?;
        let state = |created: bool| if created { "created" } else { "found" };
        let _ = writeln!(
            text,
            "  trait {} ({}), segment {} ({}) on the platform",
            made.trait_.sid,
            state(made.trait_.created),
            made.segment.sid,
            state(made.segment.created)
        );
        if !made.trait_matches_files {
            let _ = writeln!(
                text,
                "  note: the files carry d_sid={}; export with --trait-id {} so that they feed the platform's trait",
                args.trait_id, made.trait_.sid
            );
        }
        answer.remote = Some(made);
    }
    print(ctx, &answer, &text)
}

/// The human text of an export's answer; `delivered`: a line per file put.
pub(super) fn human(answer: &ExportAnswer, unchanged: bool, delivered: &[String]) -> String {
    let report = &answer.report;
    let mut human = format!(
        "export {} of audience {} ({} mode, data source {}): {} members, {} exported, {} identifiers — {} added, {} removed\n",
        answer.export_id,
        answer.audience,
        report.mode.code(),
        answer.data_source,
        report.members,
        report.exported_recipients,
        report.identifiers,
        report.added,
        report.removed
    );
    for (reason, count) in &report.not_exported {
        if *count > 0 {
            let _ = writeln!(human, "  not exported, {}: {count}", reason.code());
        }
    }
    if unchanged {
        let _ = writeln!(human, "  unchanged since the last export: nothing sent");
    } else if report.files == 0 {
        let _ = writeln!(human, "  nothing to send: no file written");
    }
    for line in delivered {
        let _ = writeln!(human, "{line}");
    }
    human
}
