//! `audlink serve`: the preview page (`www/` and its built wasm package `www/pkg/`) as static
//! files over HTTP on a loopback address. Nothing but files is served for now; everything the
//! page computes stays in the browser.
//!
//! The root folder is `--root` (env `AUDLINK_WWW`) when given, else `./www` when the current
//! directory holds the page (a binary run from the repository), else the `www/` of the source
//! tree the binary was built from (a binary run from elsewhere on the build machine). A root
//! without `index.html` or without the wasm package (`make js` builds it) is an error that says
//! so, rather than a page that fails in the browser.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use super::Failure;
use crate::cli::ServeArgs;

/// The page folder of the source tree this binary was built from.
const BUILT_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");

/// The files a root must hold to be the page.
const REQUIRED: [&str; 2] = ["index.html", "pkg/audlink_wasm.js"];

/// Where the page's files are: `--root`, `./www`, or the source tree's `www/`.
pub fn root(given: Option<&Path>) -> Result<PathBuf, Failure> {
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
            return Err(Failure::job(format!(
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

/// `audlink serve`: binds `--addr` (port 0 picks a free port), prints the page's URL on stdout
/// and serves until interrupted.
pub(super) fn run(args: &ServeArgs) -> Result<(), Failure> {
    let root = root(args.root.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::job(format!("cannot start the server runtime: {e}")))?;
    runtime.block_on(serve(args.addr, &root))
}

async fn serve(addr: SocketAddr, root: &Path) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::job(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::job(format!("cannot listen on {addr}: {e}")))?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        // The URL is the one line a caller (or a test) reads to find the page.
        let _ = writeln!(out, "http://{bound}/");
        let _ = out.flush();
    }
    tracing::info!(
        "serving {} on http://{bound}/ (ctrl-c stops)",
        root.display()
    );
    axum::serve(listener, router(root))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::job(format!("server: {e}")))
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
        assert!(error.message.contains("make js"), "{}", error.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
