//! `audlink sync`: runs the `[[job]]`s of `audlink.toml` — once (`--once`), or each on its
//! interval until SIGINT/SIGTERM — and `audlink sync status`, the runs stored.
//!
//! Every run of a job is a row of `sync_runs` (begun `running`, finished `ok`, `failed` or
//! `interrupted`) with the objects it imported or uploaded and its report. One job failing is
//! recorded and reported and the others still run. A signal is noted and the current step
//! (one import transaction, one export with its uploads, one platform call) finishes before the
//! process stops; a second signal exits at once (every list write is one SQLite transaction, so
//! even that leaves no half-written list).
//!
//! One `audlink sync` at a time per database: the process holds an exclusive lock on
//! `<db>.sync-lock`, so a run still `running` when it starts was left by a killed process and is
//! marked `interrupted`.

mod export_job;
mod import_job;

use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::remote::Remote;
use super::{Context, Failure, now, print};
use crate::cli::{SyncArgs, SyncCommand};
use crate::config::Config;
use crate::config::job::{Job, JobWork};
use crate::exchange::Exchange;
use crate::store::{DbUrl, RunStatus, Store, SyncRun};

/// How often a waiting `audlink sync` looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// How a job's run ended, short of failing.
#[derive(Debug)]
enum Step {
    /// Every step done; the report.
    Done(Value),
    /// A signal stopped it between two steps; the report so far.
    Interrupted(Value),
}

/// What a running `audlink sync` holds: the configuration, the database, the exchange, the
/// platform client when an export job needs it, a runtime for the exchange, the stop flag.
struct Runner<'c, 'a> {
    ctx: &'c mut Context<'a>,
    config: Config,
    store: Box<dyn Store>,
    exchange: Exchange,
    remote: Option<Remote>,
    runtime: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
}

impl Runner<'_, '_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Runs `job` once and records the run; its summary (`run`, `job`, `status`, …).
    fn run(&mut self, job: &Job) -> Result<Value, Failure> {
        let run = self.store.begin_run(&job.name, job.kind().code(), now())?;
        debug!(job = %job.name, run, "job started");
        let outcome = match &job.work {
            JobWork::Import(work) => import_job::run(self, run, work),
            JobWork::Export(work) => export_job::run(self, run, work),
        };
        let (status, report, error) = match outcome {
            Ok(Step::Done(report)) => (RunStatus::Ok, Some(report), None),
            Ok(Step::Interrupted(report)) => (
                RunStatus::Interrupted,
                Some(report),
                Some("stopped by a signal between two steps; the next run goes on".to_owned()),
            ),
            Err(failure) => (RunStatus::Failed, None, Some(failure.message)),
        };
        let text = report.as_ref().map(Value::to_string);
        self.store
            .finish_run(run, status, text.as_deref(), error.as_deref(), now())?;
        debug!(job = %job.name, run, status = status.code(), error = error.as_deref().unwrap_or_default(), "job finished");
        Ok(json!({
            "run": run,
            "job": job.name,
            "kind": job.kind().code(),
            "status": status.code(),
            "error": error,
            "report": report,
        }))
    }
}

/// `audlink sync …`.
pub(super) fn run(ctx: &mut Context<'_>, args: &SyncArgs) -> Result<(), Failure> {
    if let Some(SyncCommand::Status { limit, job }) = &args.command {
        return status(ctx, *limit, job.as_deref());
    }
    let config = ctx.config()?;
    let jobs = selected(&config, &args.jobs)?;
    let exchange = config.exchange.open(&ctx.cli.config)?;
    // Credentials are checked before any job runs: a configuration error runs nothing.
    let remote = if jobs
        .iter()
        .any(|j| matches!(&j.work, JobWork::Export(e) if e.remote))
    {
        let remote = super::remote::connect(ctx, &config)?;
        super::remote::folders(&remote)?;
        Some(remote)
    } else {
        None
    };
    let store = ctx.store()?;
    let _lock = lock(&ctx.cli.db)?;
    let left = store.interrupt_unfinished_runs(now())?;
    if left > 0 {
        warn!(
            runs = left,
            "runs left running by an earlier process are marked interrupted"
        );
    }
    let stop = on_signal()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::job(format!("async runtime: {e}")))?;
    let once = args.once;
    let mut runner = Runner {
        ctx,
        config,
        store,
        exchange,
        remote,
        runtime,
        stop,
    };
    if once {
        run_once(&mut runner, &jobs)
    } else {
        run_loop(&mut runner, &jobs)
    }
}

/// The jobs `names` selects (all when empty), in file order.
fn selected(config: &Config, names: &[String]) -> Result<Vec<Job>, Failure> {
    if config.jobs.is_empty() {
        return Err(Failure::usage(
            "audlink.toml defines no [[job]] (see README: audlink sync)",
        ));
    }
    for name in names {
        if !config.jobs.iter().any(|j| &j.name == name) {
            let known: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
            return Err(Failure::usage(format!(
                "--job {name:?}: no such job (audlink.toml defines {})",
                known.join(", ")
            )));
        }
    }
    Ok(config
        .jobs
        .iter()
        .filter(|j| names.is_empty() || names.contains(&j.name))
        .cloned()
        .collect())
}

/// `--once`: every job once, in file order; a summary of each; exit 1 when any failed.
fn run_once(runner: &mut Runner<'_, '_>, jobs: &[Job]) -> Result<(), Failure> {
    let mut runs = Vec::with_capacity(jobs.len());
    for job in jobs {
        if runner.stopped() {
            break;
        }
        runs.push(runner.run(job)?);
    }
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| {
            format!(
                "{}: {}",
                r["job"].as_str().unwrap_or_default(),
                r["error"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let human: String = runs.iter().map(summary_line).collect();
    print(runner.ctx, &json!({ "runs": runs }), &human)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::job(format!(
            "{} of {} jobs failed — {}",
            failed.len(),
            runs.len(),
            failed.join("; ")
        )))
    }
}

/// Without `--once`: each job when it is due (its interval after its last start), in file
/// order, until a signal; exit 0. Each run prints its summary (`--json`: one object a line).
fn run_loop(runner: &mut Runner<'_, '_>, jobs: &[Job]) -> Result<(), Failure> {
    let start = Instant::now();
    let mut due: Vec<Instant> = vec![start; jobs.len()];
    while !runner.stopped() {
        for (job, due) in jobs.iter().zip(due.iter_mut()) {
            if runner.stopped() {
                break;
            }
            if Instant::now() < *due {
                continue;
            }
            *due = Instant::now() + job.every;
            let summary = runner.run(job)?;
            let line = if runner.ctx.json() {
                format!("{summary}\n")
            } else {
                summary_line(&summary)
            };
            print_line(&line)?;
        }
        let next = due.iter().min().copied().unwrap_or(start);
        while !runner.stopped() && Instant::now() < next {
            std::thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        }
    }
    info!("stopped by a signal");
    Ok(())
}

fn print_line(line: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| Failure::job(format!("stdout: {e}"))),
    }
}

/// One human line of a run's summary.
fn summary_line(run: &Value) -> String {
    let mut line = format!(
        "run {} of job {} ({}): {}",
        run["run"],
        run["job"].as_str().unwrap_or_default(),
        run["kind"].as_str().unwrap_or_default(),
        run["status"].as_str().unwrap_or_default()
    );
    let report = &run["report"];
    if run["kind"] == "import" && report.is_object() {
        let _ = write!(
            line,
            " — {} imported, {} skipped, {} ignored",
            count(&report["imported"]),
            count(&report["skipped"]),
            count(&report["ignored"])
        );
    } else if report.is_object() {
        let _ = write!(line, " — {} uploaded", count(&report["uploaded"]));
        if report["unchanged"] == true {
            line.push_str(" (unchanged since the last export)");
        }
    }
    if let Some(error) = run["error"].as_str() {
        let _ = write!(line, ": {error}");
    }
    line.push('\n');
    line
}

fn count(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

/// Holds `<db>.sync-lock` exclusively for the life of the process (exit 1 when another
/// `audlink sync` holds it).
fn lock(url: &DbUrl) -> Result<File, Failure> {
    let Some(db) = url.local_path() else {
        return Err(Failure::usage(format!(
            "{url}: audlink sync needs a database file to lock beside"
        )));
    };
    let mut path = PathBuf::from(db);
    path.as_mut_os_string().push(".sync-lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Failure::job(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::job(format!(
            "another audlink sync is running on {} (it holds {})",
            db.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Failure::job(format!("{}: {e}", path.display())))
        }
    }
}

/// A flag set by the first SIGINT or SIGTERM; a second one exits at once (status 130). The
/// handlers are installed before this returns.
fn on_signal() -> Result<Arc<AtomicBool>, Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::job(format!("async runtime: {e}")))?;
    let (mut term, mut int) = {
        let _entered = runtime.enter();
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(e), _) | (_, Err(e)) => {
                return Err(Failure::job(format!("cannot handle signals: {e}")));
            }
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("audlink-signals".to_owned())
        .spawn(move || {
            runtime.block_on(async {
                for _ in 0..2 {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    if flag.swap(true, Ordering::SeqCst) {
                        std::process::exit(130);
                    }
                    info!("signal received: finishing the current step");
                }
            });
        })
        .map_err(|e| Failure::job(format!("cannot start the signal thread: {e}")))?;
    Ok(stop)
}

/// `audlink sync status [--limit N] [--job NAME]`.
fn status(ctx: &mut Context<'_>, limit: usize, job: Option<&str>) -> Result<(), Failure> {
    let store = ctx.store()?;
    let runs = store.runs(job, limit)?;
    let mut human = String::new();
    if runs.is_empty() {
        human.push_str("no runs yet (audlink sync --once runs every job)\n");
    }
    let rows: Vec<Value> = runs.iter().map(run_json).collect();
    for run in &runs {
        human.push_str(&status_line(run));
    }
    print(ctx, &json!({ "runs": rows }), &human)
}

fn run_json(run: &SyncRun) -> Value {
    json!({
        "id": run.id,
        "job": run.job,
        "kind": run.kind,
        "status": run.status.code(),
        "started_at": run.started_at.to_string(),
        "finished_at": run.finished_at.map(|t| t.to_string()),
        "objects": run.objects.iter().map(|o| json!({
            "action": o.action, "location": o.location, "key": o.key, "size": o.size,
        })).collect::<Vec<_>>(),
        "report": run.report.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
        "error": run.error,
    })
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
