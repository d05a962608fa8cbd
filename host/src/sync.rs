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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::app::remote::{self, Remote};
use crate::app::{AppError, now};
use crate::config::Config;
use crate::config::job::{Job, JobWork};
use crate::exchange::Exchange;
use crate::guest::Guest;
use crate::sandbox::{Limits, Sandbox, cache};
use crate::store::{DbUrl, RunStatus, Store, SyncRun};

/// Why `audlink sync` stopped with an error (a job failing is a run's outcome, not this).
pub type SyncError = AppError;

/// What `audlink sync` is started with.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// The database.
    pub db: DbUrl,
    /// The configuration file (its `[[job]]`s, `[exchange]`, `[remote]`).
    pub config: PathBuf,
    /// The jobs to run (all when empty).
    pub jobs: Vec<String>,
    /// The sandbox's memory cap, in bytes.
    pub sandbox_memory: u64,
}

/// One run of a job as `audlink sync` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run's id.
    pub run: i64,
    /// The job's name.
    pub job: String,
    /// `import` or `export`.
    pub kind: String,
    /// `ok`, `failed` or `interrupted`.
    pub status: String,
    /// Why it failed or stopped.
    pub error: Option<String>,
    /// The run's report.
    pub report: Option<Value>,
}

/// `audlink sync --once --json` and `audlink sync status --json`: the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runs<T> {
    /// The runs (`--once`: in job order; `status`: newest first).
    pub runs: Vec<T>,
}

/// What the loop does with each run's summary (the command line prints it).
pub type Output<'a> = dyn FnMut(&RunSummary) -> Result<(), SyncError> + 'a;

/// A stored run as `audlink sync status --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRun {
    /// The run's id.
    pub id: i64,
    /// The job's name.
    pub job: String,
    /// `import` or `export`.
    pub kind: String,
    /// `running`, `ok`, `failed` or `interrupted`.
    pub status: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// The objects it imported or uploaded.
    pub objects: Vec<StoredObject>,
    /// Its report.
    pub report: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// An object a run imported or uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredObject {
    /// `imported` or `uploaded`.
    pub action: String,
    /// The exchange.
    pub location: String,
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

impl StoredRun {
    /// The document of a stored run.
    pub fn of(run: &SyncRun) -> StoredRun {
        StoredRun {
            id: run.id,
            job: run.job.clone(),
            kind: run.kind.clone(),
            status: run.status.code().to_owned(),
            started_at: run.started_at.to_string(),
            finished_at: run.finished_at.map(|t| t.to_string()),
            objects: run
                .objects
                .iter()
                .map(|o| StoredObject {
                    action: o.action.clone(),
                    location: o.location.clone(),
                    key: o.key.clone(),
                    size: o.size,
                })
                .collect(),
            report: run
                .report
                .as_deref()
                .and_then(|r| serde_json::from_str::<Value>(r).ok()),
            error: run.error.clone(),
        }
    }
}

/// A job's typed report as the JSON its run stores and `sync` prints.
fn report(typed: &impl Serialize) -> Value {
    serde_json::to_value(typed).expect("reports serialize")
}

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

/// A runner's guest, database, configuration and step reporter, borrowed apart.
type Parts<'r> = (
    &'r dyn Guest,
    &'r mut dyn Store,
    &'r Config,
    &'r dyn Fn(&str),
);

/// What a running `audlink sync` holds: the configuration, the database, the exchange, the
/// platform client when an export job needs it, a runtime for the exchange, the stop flag.
struct Runner<'s> {
    settings: &'s SyncSettings,
    sandbox: Option<Sandbox>,
    step: &'s dyn Fn(&str),
    config: Config,
    store: Box<dyn Store>,
    exchange: Exchange,
    remote: Option<Remote>,
    runtime: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
}

impl Runner<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The sandbox, built on first use; with the store, the configuration and the step
    /// reporter, borrowed apart.
    fn parts(&mut self) -> Result<Parts<'_>, AppError> {
        if self.sandbox.is_none() {
            let limits = Limits {
                memory: self.settings.sandbox_memory,
                ..Limits::default()
            };
            self.sandbox = Some(Sandbox::new(limits, cache::default_dir())?);
        }
        let guest: &dyn Guest = self.sandbox.as_ref().expect("set above");
        Ok((guest, &mut *self.store, &self.config, self.step))
    }

    /// Runs `job` once and records the run; its summary.
    fn run(&mut self, job: &Job) -> Result<RunSummary, AppError> {
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
            Err(error) => (RunStatus::Failed, None, Some(error.to_string())),
        };
        let text = report.as_ref().map(Value::to_string);
        self.store
            .finish_run(run, status, text.as_deref(), error.as_deref(), now())?;
        debug!(job = %job.name, run, status = status.code(), error = error.as_deref().unwrap_or_default(), "job finished");
        Ok(RunSummary {
            run,
            job: job.name.clone(),
            kind: job.kind().code().to_owned(),
            status: status.code().to_owned(),
            error,
            report,
        })
    }
}

/// Opens what the jobs need, checks credentials before any job runs (a configuration error
/// runs nothing), takes the lock and marks runs a killed process left `interrupted`.
fn runner<'s>(
    settings: &'s SyncSettings,
    step: &'s dyn Fn(&str),
) -> Result<(Runner<'s>, Vec<Job>, File), AppError> {
    let config = Config::load(&settings.config)?;
    let jobs = selected(&config, &settings.jobs)?;
    let exchange = config.exchange.open(&settings.config)?;
    let remote = if jobs
        .iter()
        .any(|j| matches!(&j.work, JobWork::Export(e) if e.remote))
    {
        let remote = remote::connect(&settings.config, &config)?;
        remote::folders(&remote)?;
        Some(remote)
    } else {
        None
    };
    let store = crate::store::open(&settings.db)?;
    let lock = lock(settings, &config)?;
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
        .map_err(|e| AppError::Job(format!("async runtime: {e}")))?;
    let runner = Runner {
        settings,
        sandbox: None,
        step,
        config,
        store,
        exchange,
        remote,
        runtime,
        stop,
    };
    Ok((runner, jobs, lock))
}

/// The jobs `names` selects (all when empty), in file order.
fn selected(config: &Config, names: &[String]) -> Result<Vec<Job>, AppError> {
    if config.jobs.is_empty() {
        return Err(AppError::Usage(
            "audlink.toml defines no [[job]] (see README: audlink sync)".to_owned(),
        ));
    }
    for name in names {
        if !config.jobs.iter().any(|j| &j.name == name) {
            let known: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
            return Err(AppError::Usage(format!(
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

/// `--once`: every job once, in file order; the summary of each (a failed job is a run
/// `failed`, not an error). `step` hears what is being done.
pub fn run_once(
    settings: &SyncSettings,
    step: &dyn Fn(&str),
) -> Result<Vec<RunSummary>, SyncError> {
    let (mut runner, jobs, _lock) = runner(settings, step)?;
    let mut runs = Vec::with_capacity(jobs.len());
    for job in &jobs {
        if runner.stopped() {
            break;
        }
        runs.push(runner.run(job)?);
    }
    Ok(runs)
}

/// Without `--once`: each job when it is due (its interval after its last start), in file
/// order, until a signal. Each run's summary goes to `output`.
pub fn run_loop(
    settings: &SyncSettings,
    step: &dyn Fn(&str),
    output: &mut Output<'_>,
) -> Result<(), SyncError> {
    let (mut runner, jobs, _lock) = runner(settings, step)?;
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
            output(&summary)?;
        }
        let next = due.iter().min().copied().unwrap_or(start);
        while !runner.stopped() && Instant::now() < next {
            std::thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        }
    }
    info!("stopped by a signal");
    Ok(())
}

/// `path` of the configuration file `config`: relative paths are beside it.
fn beside(config: &Path, path: &Path) -> PathBuf {
    config.parent().unwrap_or(Path::new(".")).join(path)
}

/// The folder import job run `run` downloads into: under `[sync] scratch_dir`, else beside a
/// SQLite database.
fn scratch_dir(settings: &SyncSettings, config: &Config, run: i64) -> Result<PathBuf, AppError> {
    match &config.sync.scratch_dir {
        Some(dir) => Ok(beside(&settings.config, dir).join(format!("run-{run}"))),
        None => {
            let url = &settings.db;
            let Some(db) = url.local_path() else {
                return Err(AppError::Usage(format!(
                    "{url}: set [sync] scratch_dir (no folder beside a database server)"
                )));
            };
            let mut path = db.as_os_str().to_owned();
            path.push(format!(".sync-{run}"));
            Ok(PathBuf::from(path))
        }
    }
}

/// Holds the lock file (`[sync] lock_file`, else `<db>.sync-lock`) exclusively for the life of
/// the process (exit 1 when another `audlink sync` holds it).
fn lock(settings: &SyncSettings, config: &Config) -> Result<File, AppError> {
    let url = &settings.db;
    let path = match &config.sync.lock_file {
        Some(file) => beside(&settings.config, file),
        None => {
            let Some(db) = url.local_path() else {
                return Err(AppError::Usage(format!(
                    "{url}: set [sync] lock_file (no folder beside a database server)"
                )));
            };
            let mut path = PathBuf::from(db);
            path.as_mut_os_string().push(".sync-lock");
            path
        }
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| AppError::Job(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AppError::Job(format!(
            "another audlink sync is running on {url} (it holds {})",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(AppError::Job(format!("{}: {e}", path.display())))
        }
    }
}

/// A flag set by the first SIGINT or SIGTERM; a second one exits at once (status 130). The
/// handlers are installed before this returns.
fn on_signal() -> Result<Arc<AtomicBool>, AppError> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Job(format!("async runtime: {e}")))?;
    let (mut term, mut int) = {
        let _entered = runtime.enter();
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(e), _) | (_, Err(e)) => {
                return Err(AppError::Job(format!("cannot handle signals: {e}")));
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
        .map_err(|e| AppError::Job(format!("cannot start the signal thread: {e}")))?;
    Ok(stop)
}
