//! The OpenAPI document against the real server: schemathesis (PyPI, installed by `make test`)
//! reads `GET /api/openapi.json` of `audlink serve` over a generated database and sends what
//! the document allows — and what it does not — to every route with a `write` token, checking
//! each answer's status, content type, headers and body against the document.
//!
//! Checks: all but `positive_data_acceptance`. That check expects every schema-valid request
//! to succeed, but the document cannot say which data sources `audlink.toml` holds, which rule
//! texts parse or which of `list` and `rule` an export names; the server refuses those with a
//! documented 4xx, as it must. Every other check (server errors, undocumented status codes,
//! content types, response schemas, negative data accepted, missing auth, methods, …) runs.
//!
//! Bounded by examples, not by time: 50 examples per route and phase, deterministic generation
//! (the same requests on every run; `--max-time` is not used, as it makes the fuzzing phase
//! repeat with fresh examples until the time is spent, so a run's cases would depend on the
//! machine's speed), a per-request timeout and a wall-clock cap (`timeout 150`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::built::root;
use crate::cli::{CONFIG, append_config, command, demo_db};

const TOKEN: &str = "writer-token-for-openapi-fuzz-0001";

/// `audlink serve`, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn schemathesis_finds_nothing_the_document_does_not_allow() {
    let version = Command::new("schemathesis").arg("--version").output();
    let installed = version.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "schemathesis is not installed: `make test` installs it (make setup), or \
         `pip install schemathesis==4.32.5` ({version:?})"
    );

    let dir = demo_db("openapi-fuzz", 200, 5);
    append_config(
        dir.path(),
        "\n[serve]\nmax_body_bytes = 65536\nmax_upload_bytes = 1048576\n\
         concurrency_per_token = 64\ninstances = 2\nquery_deadline_ms = 2000\n",
    );
    let import = command(dir.path(), &dir.path().join(CONFIG))
        .args(["-q", "audience", "import", "--datasource", "ecid"])
        .arg(format!("data/{}", audlink_host::cli::GENERATED_OUTBOUND))
        .output()
        .expect("audlink audience import");
    assert!(import.status.success(), "{import:?}");

    let log = dir.join("serve.log");
    let mut cmd = command(dir.path(), &dir.path().join(CONFIG));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(root().join("www"))
        .env("AUDLINK_SERVE_TOKENS", format!("fuzz:write:{TOKEN}"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"));
    let mut child = cmd.spawn().expect("cannot run audlink serve");
    let stdout = child.stdout.take().expect("stdout");
    let server = Serve(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("audlink serve prints its URL");
    let url = line.trim().trim_end_matches('/').to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "audlink serve printed {line:?}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let started = Instant::now();
    let output = Command::new("timeout")
        .args(["--kill-after=10", "150", "schemathesis", "run"])
        .arg(format!("{url}/api/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "50"])
        .args(["--request-timeout", "20", "--workers", "2"])
        .args(["--generation-deterministic", "--no-color"])
        .current_dir(dir.path())
        .output()
        .expect("cannot run schemathesis");
    let elapsed = started.elapsed();
    drop(server);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("schemathesis ran {elapsed:.1?}");
    assert!(
        output.status.success() && !text.contains("FAILURES") && !text.contains("ERRORS"),
        "schemathesis found failures ({:?}, {elapsed:.1?}):\n{text}\nserver log:\n{}",
        output.status,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        text.contains("passed") && elapsed < Duration::from_secs(170),
        "schemathesis did not run to its end ({elapsed:.1?}):\n{text}"
    );
}
