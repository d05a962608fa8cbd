//! `audlink serve`'s API: JSON over HTTP (axum) next to the preview page's static files.
//!
//! - [`auth`]: bearer tokens with roles (`read`, `write`), compared in constant time, a bounded
//!   number of requests in flight per token.
//! - [`error`]: every failure as a status and `{"error": {"kind", "message"}}`.
//! - [`metrics`]: counters and their Prometheus text.
//! - [`routes`] and [`job_routes`]: the handlers and the OpenAPI document generated from them;
//!   [`jobs`]: imports and exports as background jobs;
//! - [`start`]: `audlink serve` itself — settings, the static page, binding, shutdown.
//!
//! The server is a front door: each handler turns its request into a plan for the application
//! layer ([`crate::app`]) and its typed answer or [`AppError`] into a response.
//!
//! Sandboxed work runs on the blocking pool ([`SandboxPool::run`]), never on the runtime's
//! threads, at most as many calls at once as the pooling allocator has slots; every call gets a
//! fresh instance, dropped when it ends, so no request sees another's data and a call stopped
//! by its deadline or memory cap leaves nothing behind. The database is opened per request: a
//! server started before `audlink init` serves the page and answers 503 on database routes.

pub mod auth;
pub mod error;
pub mod extract;
pub mod job_routes;
pub mod jobs;
pub mod metrics;
pub mod routes;
pub mod start;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::app::AppError;
use crate::config::{Config, ServeConfig};
use crate::guest::Guest;
use crate::sandbox::Sandbox;
use crate::store::{DbUrl, Store};
use auth::Tokens;
use error::ApiError;
use metrics::Metrics;

/// Everything a request may use.
#[derive(Debug)]
pub struct ServeState {
    /// The tokens.
    pub tokens: Tokens,
    /// The counters.
    pub metrics: Metrics,
    /// The sandbox and its bounded slots.
    pub pool: SandboxPool,
    /// The database (opened per request).
    pub db: DbUrl,
    /// The configuration (data sources for imports and exports, `[serve]` limits).
    pub config: Config,
    /// Jobs in flight and their folder.
    pub jobs: jobs::JobRunner,
}

impl ServeState {
    /// The `[serve]` table.
    pub fn serve(&self) -> &ServeConfig {
        &self.config.serve
    }

    /// How long one database query may run.
    pub fn query_deadline(&self) -> Duration {
        Duration::from_millis(self.serve().query_deadline_ms)
    }
}

/// The server's sandbox: one compiled, pre-instantiated module on a pooled engine, and as many
/// slots as the pool has instances.
#[derive(Debug)]
pub struct SandboxPool {
    sandbox: Arc<Sandbox>,
    slots: Arc<Semaphore>,
}

impl SandboxPool {
    /// A pool over `sandbox` with `slots` calls at once.
    pub fn new(sandbox: Sandbox, slots: u32) -> SandboxPool {
        SandboxPool {
            sandbox: Arc::new(sandbox),
            slots: Arc::new(Semaphore::new(slots as usize)),
        }
    }

    /// The sandbox (for its counters).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Runs `work` (sandboxed calls and the database queries around them) on the blocking
    /// pool once a slot is free; a database is opened for it at `db`.
    pub async fn run<T, F>(&self, db: DbUrl, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Guest, &mut dyn Store) -> Result<T, AppError> + Send + 'static,
    {
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("the sandbox pool is closed"))?;
        let sandbox = Arc::clone(&self.sandbox);
        let joined = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let mut store = crate::store::open(&db).map_err(AppError::from)?;
            work(sandbox.as_ref(), store.as_mut())
        })
        .await;
        match joined {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::internal(format!(
                "the request's worker failed: {e}"
            ))),
        }
    }

    /// Runs database-only `work` on the blocking pool (no sandbox slot).
    pub async fn run_store<T, F>(&self, db: DbUrl, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store) -> Result<T, AppError> + Send + 'static,
    {
        let joined = tokio::task::spawn_blocking(move || {
            let mut store = crate::store::open(&db).map_err(AppError::from)?;
            work(store.as_mut())
        })
        .await;
        match joined {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::internal(format!(
                "the request's worker failed: {e}"
            ))),
        }
    }
}
