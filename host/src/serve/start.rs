//! Starting `audlink serve`: the preview page (`www/` and its built wasm package `www/pkg/`) as static
//! files, and the API of [`crate::serve`] (tokens from `AUDLINK_SERVE_TOKENS` or `[serve]
//! tokens_file`, limits from `[serve]`). Binds `127.0.0.1:8080` by default and refuses an
//! address that is not loopback unless tokens are configured. SIGTERM or ctrl-c stops it
//! gracefully: no new connection is accepted, requests in flight finish.
//!
//! The root folder is `--root` (env `AUDLINK_WWW`) when given, else `./www` when the current
//! directory holds the page (a binary run from the repository), else the `www/` of the source
//! tree the binary was built from (a binary run from elsewhere on the build machine). A root
//! without `index.html` or without the wasm package (`make js` builds it) is an error that says
//! so, rather than a page that fails in the browser.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppError;
use crate::config::Config;
use crate::sandbox::{Limits, Sandbox, cache};
use crate::serve::auth::{TOKENS_ENV, Tokens};
use crate::serve::jobs::JobRunner;
use crate::serve::metrics::Metrics;
use crate::serve::{SandboxPool, ServeState};
use crate::store::DbUrl;

/// The page folder of the source tree this binary was built from.
const BUILT_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");

/// The files a root must hold to be the page.
const REQUIRED: [&str; 2] = ["index.html", "pkg/audlink_wasm.js"];

/// Where the page's files are: `--root`, `./www`, or the source tree's `www/`.
pub fn root(given: Option<&Path>) -> Result<PathBuf, AppError> {
    let root = match given {
        Some(root) => root.to_owned(),
        None => {
            let local = PathBuf::from("www");
            if local.join("index.html").is_file() {
                local
            } else {
                PathBuf::from(BUILT_ROOT)
            }
        }
    };
    for file in REQUIRED {
        if !root.join(file).is_file() {
            let hint = if file.starts_with("pkg/") {
                " (build the wasm package with `make js`)"
            } else {
                " (give the page's folder with --root DIR)"
            };
            return Err(AppError::Job(format!(
                "{}: missing {file}{hint}",
                root.display()
            )));
        }
    }
    Ok(root)
}

/// The router: static files under `root`, never cached (a rebuilt wasm package shows at once).
pub fn router(root: &Path) -> Router {
    let files = ServeDir::new(root).append_index_html_on_directories(true);
    Router::new()
        .fallback_service(files)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// What `audlink serve` is started with.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The address to listen on (port 0: any free port).
    pub addr: SocketAddr,
    /// The page's folder, when given.
    pub root: Option<PathBuf>,
    /// The database.
    pub db: DbUrl,
    /// The configuration file.
    pub config: PathBuf,
}

/// `audlink serve`: binds `addr` (port 0 picks a free port), prints the page's URL on stdout
/// and serves until SIGTERM or ctrl-c.
pub fn run(settings: &ServeSettings) -> Result<(), AppError> {
    let root = root(settings.root.as_deref())?;
    let config = Config::load(&settings.config)?;
    let base = settings
        .config
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let env = std::env::var(TOKENS_ENV).ok();
    let tokens = Tokens::load(
        env.as_deref(),
        config.serve.tokens_file.as_deref(),
        &base,
        config.serve.concurrency_per_token,
    )?;
    check_exposure(settings.addr, &tokens)?;
    let limits = Limits {
        memory: config.serve.sandbox_memory_mib << 20,
        deadline: Duration::from_millis(config.serve.sandbox_deadline_ms),
    };
    let sandbox = Sandbox::pooled(limits, config.serve.instances, cache::default_dir())?;
    let pool = SandboxPool::new(sandbox, config.serve.instances);
    tracing::info!(tokens = tokens.len(), "api tokens configured");
    let jobs_dir = match &config.serve.jobs_dir {
        Some(dir) => base.join(dir),
        None => {
            let Some(db) = settings.db.local_path() else {
                return Err(AppError::Usage(format!(
                    "{}: set [serve] jobs_dir (no folder beside a database server)",
                    settings.db
                )));
            };
            let mut name = db.as_os_str().to_owned();
            name.push(".jobs");
            PathBuf::from(name)
        }
    };
    let left = crate::serve::jobs::interrupt_left(&settings.db);
    if left > 0 {
        tracing::warn!("{left} job(s) left unfinished by a previous server marked interrupted");
    }
    let state = Arc::new(ServeState {
        tokens,
        metrics: Metrics::default(),
        pool,
        db: settings.db.clone(),
        config,
        jobs: JobRunner::new(jobs_dir),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::Job(format!("cannot start the server runtime: {e}")))?;
    let served = runtime.block_on(serve(settings.addr, &root, state));
    // Jobs still running were marked interrupted: their threads are not waited for (a list
    // write not committed is rolled back by the database).
    runtime.shutdown_timeout(Duration::ZERO);
    served
}

/// Refuses an address other hosts can reach when no token is configured.
pub fn check_exposure(addr: SocketAddr, tokens: &Tokens) -> Result<(), AppError> {
    if !addr.ip().is_loopback() && tokens.is_empty() {
        return Err(AppError::Usage(format!(
            "--addr {addr} is reachable from other hosts and no API token is configured; set \
             {TOKENS_ENV} (name:role:token,...) or [serve] tokens_file, or bind 127.0.0.1"
        )));
    }
    Ok(())
}

/// The whole app: the API and the page's files.
pub fn app(root: &Path, state: Arc<ServeState>) -> Router {
    let cors = cors(&state.serve().cors_origins);
    let app = crate::serve::routes::router(state).merge(router(root));
    match cors {
        Some(layer) => app.layer(layer),
        None => app,
    }
}

/// CORS for the configured origins; none: no CORS layer (no CORS headers at all).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

async fn serve(addr: SocketAddr, root: &Path, state: Arc<ServeState>) -> Result<(), AppError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| AppError::Job(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| AppError::Job(format!("cannot listen on {addr}: {e}")))?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        // The URL is the one line a caller (or a test) reads to find the page.
        let _ = writeln!(out, "http://{bound}/");
        let _ = out.flush();
    }
    tracing::info!(
        "serving {} on http://{bound}/ (ctrl-c or SIGTERM stops)",
        root.display()
    );
    axum::serve(listener, app(root, Arc::clone(&state)))
        .with_graceful_shutdown(stopped())
        .await
        .map_err(|e| AppError::Job(format!("server: {e}")))?;
    let wait = Duration::from_millis(state.serve().shutdown_wait_ms);
    let interrupted = state.jobs.drain(&state.db, wait).await;
    tracing::info!(interrupted, "stopped");
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stopping: no new connections, finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_without_the_wasm_package_is_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("audlink-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("index.html"), "<!doctype html>").expect("write");
        let error = root(Some(&dir)).expect_err("no pkg/");
        assert!(error.to_string().contains("make js"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_address_other_hosts_reach_needs_tokens() {
        let none = Tokens::default();
        let error =
            check_exposure("0.0.0.0:8080".parse().expect("addr"), &none).expect_err("0.0.0.0");
        assert!(error.is_usage(), "{error}");
        assert!(error.to_string().contains(TOKENS_ENV), "{error}");
        check_exposure("127.0.0.1:0".parse().expect("addr"), &none).expect("loopback");
        check_exposure("[::1]:0".parse().expect("addr"), &none).expect("loopback v6");
        let some = Tokens::parse("a:read:0123456789abcdefgh", "test", 1).expect("tokens");
        check_exposure("0.0.0.0:8080".parse().expect("addr"), &some).expect("with tokens");
    }
}
