//! Imports and exports as background jobs: a job is recorded (`queued`) when its request is
//! accepted, runs on the sandbox pool like any sandboxed work (its steps recorded as it goes),
//! and ends `done` with the command's `--json` document or `failed` with an error. Its files
//! live under the jobs folder, `<jobs dir>/<id>/`: the uploads in `in/` (removed when the job
//! ends), an export's files in `out/` (kept, to be downloaded).
//!
//! Shutdown ([`JobRunner::drain`]) waits a bounded time for running jobs, then marks the rest
//! `interrupted`. An import writes its lists in one transaction, so a job cut short leaves every
//! list as it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Notify;

use super::ServeState;
use super::error::ApiError;
use crate::app::{AppError, now};
use crate::guest::Guest;
use crate::store::{DbUrl, JobStatus, Store};

/// The work of a job: given its folder, the guest, the database and a way to report its
/// step, the result document and the names of the files it made (in `out/` of its folder).
pub type JobWork = Box<
    dyn FnOnce(
            &Path,
            &dyn Guest,
            &mut dyn Store,
            &dyn Fn(&str),
        ) -> Result<(Value, Vec<String>), AppError>
        + Send,
>;

/// Jobs in flight and where their files go.
#[derive(Debug)]
pub struct JobRunner {
    dir: PathBuf,
    running: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

/// Counts a job as running until dropped.
struct Running {
    running: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

impl JobRunner {
    /// Jobs with their files under `dir`.
    pub fn new(dir: PathBuf) -> JobRunner {
        JobRunner {
            dir,
            running: Arc::new(AtomicUsize::new(0)),
            idle: Arc::new(Notify::new()),
        }
    }

    /// The folder of job `id`.
    pub fn job_dir(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// A fresh folder for an upload (renamed to the job's once it is recorded).
    pub fn upload_dir(&self) -> Result<PathBuf, ApiError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "upload-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = self.dir.join(name).join("in");
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("cannot make the upload folder: {e}")))?;
        Ok(dir)
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Waits at most `wait` for the running jobs to finish; then marks every job not finished
    /// `interrupted`. How many were.
    pub async fn drain(&self, db: &DbUrl, wait: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + wait;
        while self.running() > 0 {
            let notified = self.idle.notified();
            if self.running() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        interrupt_left(db)
    }
}

/// Marks the jobs a stopped (or killed) server did not finish `interrupted`; how many.
pub fn interrupt_left(db: &DbUrl) -> usize {
    if db.local_path().is_some_and(|path| !path.exists()) {
        return 0;
    }
    match crate::store::open(db).and_then(|mut store| store.interrupt_jobs(now())) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("cannot mark unfinished jobs interrupted: {e}");
            0
        }
    }
}

/// Records a job of `kind` and starts it; its id. `upload` (a folder from
/// [`JobRunner::upload_dir`]) becomes the job's `in/`.
pub async fn start(
    state: &Arc<ServeState>,
    kind: &'static str,
    upload: Option<PathBuf>,
    work: JobWork,
) -> Result<i64, ApiError> {
    let db = state.db.clone();
    let id = state
        .pool
        .run_store(db, move |store| Ok(store.create_job(kind, now())?))
        .await?;
    if let Some(upload) = upload {
        let from = upload.parent().map(Path::to_path_buf).unwrap_or(upload);
        let to = state.jobs.job_dir(id);
        if let Err(e) = std::fs::rename(&from, &to) {
            let error = ApiError::internal(format!("cannot move the upload to the job: {e}"));
            let _ = std::fs::remove_dir_all(&from);
            fail(state, id, &error).await;
            return Err(error);
        }
    }
    state.jobs.running.fetch_add(1, Ordering::SeqCst);
    let guard = Running {
        running: Arc::clone(&state.jobs.running),
        idle: Arc::clone(&state.jobs.idle),
    };
    let task_state = Arc::clone(state);
    tokio::spawn(async move {
        let _guard = guard;
        let started = Instant::now();
        let db = task_state.db.clone();
        let step_db = db.clone();
        let job_dir = task_state.jobs.job_dir(id);
        let outcome = task_state
            .pool
            .run(db, move |sandbox, store| {
                let step = |text: &str| {
                    if let Err(e) =
                        crate::store::open(&step_db).and_then(|mut s| s.job_step(id, text))
                    {
                        tracing::warn!(job = id, "cannot record the job's step: {e}");
                    }
                };
                step("running");
                work(&job_dir, sandbox, store, &step)
            })
            .await;
        let db = task_state.db.clone();
        let status = match outcome {
            Ok((result, files)) => {
                let finish =
                    move |store: &mut dyn Store| {
                        Ok(store.finish_job(
                            id,
                            JobStatus::Done,
                            Some(&result),
                            None,
                            &files,
                            now(),
                        )?)
                    };
                if let Err(e) = task_state.pool.run_store(db, finish).await {
                    tracing::warn!(job = id, "cannot record the job's end: {}", e.message);
                }
                "done"
            }
            Err(error) => {
                if let Some(limit) = error.limit() {
                    task_state.metrics.limit_hit(limit);
                }
                fail(&task_state, id, &error).await;
                "failed"
            }
        };
        task_state.metrics.job(kind, status, started.elapsed());
        // The uploads served their purpose (an export's `out/` stays, to be downloaded).
        let _ = tokio::fs::remove_dir_all(task_state.jobs.job_dir(id).join("in")).await;
    });
    Ok(id)
}

async fn fail(state: &Arc<ServeState>, id: i64, error: &ApiError) {
    let body =
        json!({"kind": error.kind, "message": error.message, "status": error.status.as_u16()});
    let db = state.db.clone();
    let finish = move |store: &mut dyn Store| {
        Ok(store.finish_job(id, JobStatus::Failed, None, Some(&body), &[], now())?)
    };
    if let Err(e) = state.pool.run_store(db, finish).await {
        tracing::warn!(job = id, "cannot record the job's failure: {}", e.message);
    }
}
