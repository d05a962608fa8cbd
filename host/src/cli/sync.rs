//! `audlink sync` and `audlink sync status`: the scheduler is a front door of its own
//! ([`crate::sync`]); the command line starts it and prints what it reports.

use std::fmt::Write as _;

use super::args::{SyncArgs, SyncCommand};
use super::{Context, Failure, Progress, print};
use crate::store::SyncRun;
use crate::sync::{self, Output, RunSummary, Runs, SyncSettings};

/// `audlink sync …`.
pub(super) fn run(ctx: &mut Context<'_>, args: &SyncArgs) -> Result<(), Failure> {
    if let Some(SyncCommand::Status { limit, job }) = &args.command {
        return status(ctx, *limit, job.as_deref());
    }
    let settings = SyncSettings {
        db: ctx.cli.db.clone(),
        config: ctx.cli.config.clone(),
        jobs: args.jobs.clone(),
        sandbox_memory: ctx.cli.sandbox_memory_mib << 20,
    };
    let json = ctx.json();
    let progress = Progress::start(ctx, "starting");
    let step = |text: &str| progress.step(text);
    if args.once {
        let runs = sync::run_once(&settings, &step)?;
        drop(progress);
        let human: String = runs.iter().map(summary_line).collect();
        let failed_runs = runs.iter().filter(|r| r.status == "failed").count();
        let total = runs.len();
        let failed: Vec<String> = runs
            .iter()
            .filter(|r| r.status == "failed")
            .map(|r| format!("{}: {}", r.job, r.error.as_deref().unwrap_or_default()))
            .collect();
        print(ctx, &Runs { runs }, &human)?;
        if failed_runs == 0 {
            Ok(())
        } else {
            Err(Failure::job(format!(
                "{failed_runs} of {total} jobs failed — {}",
                failed.join("; ")
            )))
        }
    } else {
        let mut output = |summary: &RunSummary| -> Result<(), sync::SyncError> {
            let line = if json {
                format!(
                    "{}\n",
                    serde_json::to_value(summary).expect("summaries serialize")
                )
            } else {
                summary_line(summary)
            };
            print_line(&line)
        };
        Ok(sync::run_loop(
            &settings,
            &step,
            &mut output as &mut Output<'_>,
        )?)
    }
}

fn print_line(line: &str) -> Result<(), sync::SyncError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| crate::app::AppError::Job(format!("stdout: {e}"))),
    }
}

/// One human line of a run's summary.
fn summary_line(run: &RunSummary) -> String {
    let mut line = format!(
        "run {} of job {} ({}): {}",
        run.run, run.job, run.kind, run.status
    );
    let count = |value: &serde_json::Value| value.as_array().map_or(0, Vec::len);
    if let Some(report) = run.report.as_ref().filter(|r| r.is_object()) {
        if run.kind == "import" {
            let _ = write!(
                line,
                " — {} imported, {} skipped, {} ignored",
                count(&report["imported"]),
                count(&report["skipped"]),
                count(&report["ignored"])
            );
        } else {
            let _ = write!(line, " — {} uploaded", count(&report["uploaded"]));
            if report["unchanged"] == true {
                line.push_str(" (unchanged since the last export)");
            }
        }
    }
    if let Some(error) = &run.error {
        let _ = write!(line, ": {error}");
    }
    line.push('\n');
    line
}

/// `audlink sync status [--limit N] [--job NAME]`.
fn status(ctx: &mut Context<'_>, limit: usize, job: Option<&str>) -> Result<(), Failure> {
    let store = ctx.store()?;
    let runs = store.runs(job, limit)?;
    let mut human = String::new();
    if runs.is_empty() {
        human.push_str("no runs yet (audlink sync --once runs every job)\n");
    }
    let rows: Vec<_> = runs.iter().map(sync::StoredRun::of).collect();
    for run in &runs {
        human.push_str(&status_line(run));
    }
    print(ctx, &Runs { runs: rows }, &human)
}

fn status_line(run: &SyncRun) -> String {
    let took = run.finished_at.map_or_else(String::new, |end| {
        let micros = end.unix_micros() - run.started_at.unix_micros();
        format!(" in {:.1} s", micros as f64 / 1e6)
    });
    let mut line = format!(
        "{}\t{}\t{}\t{}\tstarted {}{took}",
        run.id,
        run.job,
        run.kind,
        run.status.code(),
        run.started_at
    );
    let imported = run
        .objects
        .iter()
        .filter(|o| o.action == "imported")
        .count();
    let uploaded = run
        .objects
        .iter()
        .filter(|o| o.action == "uploaded")
        .count();
    let _ = write!(line, "\t{imported} imported, {uploaded} uploaded");
    if let Some(error) = &run.error {
        let _ = write!(line, "\t{error}");
    }
    line.push('\n');
    line
}
