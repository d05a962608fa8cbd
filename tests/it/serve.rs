//! `audlink serve`'s API, end to end: the real binary on a loopback port (port 0) over a
//! database the CLI made, driven by a reqwest client.
//!
//! Covered: every route without a token (401), with a `read` token on a `write` route (403),
//! with a malformed or ill-typed JSON body (400/422) and an oversized body (413), each a JSON
//! error, with nothing written (the database's lists, imports and jobs compared before and
//! after); `/healthz` and `/api/openapi.json` public; `/metrics` counting; a preview equal to
//! `segment preview --json`; lists and member pages equal to `list ls` / `list show`; an import
//! job's lists, report and unmatched pages equal to the CLI import's; an export job's files
//! byte-identical to `audience export`'s; a pathological file (a gzip bomb: memory cap) and a
//! pathological rule (query deadline) run concurrently with normal previews, which succeed, the
//! server's resident memory bounded; a file that runs past the sandbox's deadline (422
//! `deadline`) beside normal previews; the per-token concurrency limit (429); a bounded load test
//! (no errors, no instance left alive; p50/p99 and throughput printed); SIGTERM during a job
//! (done, or interrupted with every list as it was); no database (page served, 503); a refusal
//! to bind 0.0.0.0 without tokens; no token ever in the server's log.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use audlink_host::cli::GENERATED_OUTBOUND;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::built::root;
use crate::cli::{CONFIG, TempDir, append_config, command, demo_db, describe};

const READ_TOKEN: &str = "reader-token-for-tests-0001";
const WRITE_TOKEN: &str = "writer-token-for-tests-0002";
const NOW: &str = "2026-01-01T00:00:00Z";
const TIMESTAMP: u64 = 1_767_300_000;

/// The `[serve]` table of the tests: small caps, so a pathological input hits them quickly.
const SERVE: &str = "
[serve]
max_body_bytes = 65536
max_upload_bytes = 2097152
concurrency_per_token = 64
instances = 4
sandbox_memory_mib = 128
sandbox_deadline_ms = 20000
query_deadline_ms = 1000
shutdown_wait_ms = 20000
";

// ---------------------------------------------------------------------------------------------
// The server and the CLI

/// `audlink serve` on a free loopback port of a database folder, killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Server {
    fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    fn start_with(dir: &Path, env: &[(&str, &str)]) -> Server {
        let log = dir.join(format!("serve-{}.log", std::process::id()));
        let mut cmd = command(dir, &dir.join(CONFIG));
        cmd.args(["-v", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root().join("www"))
            .env(
                "AUDLINK_SERVE_TOKENS",
                format!("reader:read:{READ_TOKEN},writer:write:{WRITE_TOKEN}"),
            )
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot run audlink serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("audlink serve prints its URL");
        let url = line.trim().trim_end_matches('/').to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "audlink serve printed {line:?}; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        Server {
            child,
            url,
            log,
            runtime,
            client,
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.url));
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// Sends and reads the answer: status and body (JSON when it is).
    fn send(&self, builder: reqwest::RequestBuilder) -> (StatusCode, Value) {
        self.runtime.block_on(read(builder))
    }

    fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::GET, path, token))
    }

    fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::POST, path, token).json(body))
    }

    fn bytes(&self, path: &str, token: &str) -> Vec<u8> {
        self.runtime.block_on(async {
            let response = self
                .request(reqwest::Method::GET, path, Some(token))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.bytes().await.expect("body").to_vec()
        })
    }

    /// Uploads `files` (name, bytes) with `options` as an import job; the answer.
    fn import(
        &self,
        token: Option<&str>,
        options: &Value,
        files: &[(&str, Vec<u8>)],
    ) -> (StatusCode, Value) {
        let mut form = reqwest::multipart::Form::new().text("options", options.to_string());
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        self.send(
            self.request(reqwest::Method::POST, "/api/imports", token)
                .multipart(form),
        )
    }

    /// Polls job `id` until it ends; the job.
    fn wait_job(&self, id: u64) -> Value {
        let started = Instant::now();
        loop {
            let (status, job) = self.get(&format!("/api/jobs/{id}"), Some(READ_TOKEN));
            assert_eq!(status, StatusCode::OK, "{job}");
            match job["status"].as_str() {
                Some("queued" | "running") => {}
                _ => return job,
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "job {id} never ended: {job}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metrics(&self) -> String {
        self.runtime.block_on(async {
            self.request(reqwest::Method::GET, "/metrics", Some(READ_TOKEN))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text")
        })
    }

    /// The server's resident memory in KiB (Linux `VmRSS`).
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        self.child.wait().expect("wait")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = self.log();
        if !std::thread::panicking() {
            // No token in any log line, whatever happened.
            assert!(
                !log.contains(READ_TOKEN) && !log.contains(WRITE_TOKEN),
                "a token is in the server's log:\n{log}"
            );
        } else {
            eprintln!("server log:\n{log}");
        }
    }
}

async fn read(builder: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = builder.send().await.expect("request");
    let status = response.status();
    let json_body = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let bytes = response.bytes().await.expect("body");
    let body = if json_body {
        serde_json::from_slice(&bytes).expect("a JSON body")
    } else {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    };
    (status, body)
}

/// `audlink --json ARGS` in `dir`, which must succeed: its JSON.
fn cli(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = command(dir, &dir.join(CONFIG))
        .args(&all)
        .output()
        .expect("run audlink");
    assert!(output.status.success(), "{}", describe(&all, &output));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// A database of `n` generated recipients with the test `[serve]` table.
fn database(name: &str, n: u64) -> TempDir {
    let dir = demo_db(name, n, 11);
    append_config(dir.path(), SERVE);
    dir
}

/// Everything a refused request must leave as it was: the lists with their members, the import
/// and export runs, the jobs.
fn written(dir: &Path) -> Value {
    let conn = rusqlite::Connection::open(dir.join("audlink.db")).expect("open");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    let lists = cli(dir, &["list", "ls"]);
    json!({
        "lists": lists,
        "imports": count("SELECT count(*) FROM import_runs"),
        "exports": count("SELECT count(*) FROM export_runs"),
        "jobs": count("SELECT count(*) FROM serve_jobs"),
        "members": count("SELECT count(*) FROM list_members"),
    })
}

fn error_kind(body: &Value) -> &str {
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no error message: {body}"
    );
    body["error"]["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error: {body}"))
}

fn outbound(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("data").join(GENERATED_OUTBOUND)).expect("generated outbound file")
}

// ---------------------------------------------------------------------------------------------
// Authentication, roles, bodies

#[test]
fn every_route_refuses_bad_requests_with_a_json_error_and_writes_nothing() {
    let dir = database("serve-refusals", 300);
    cli(
        dir.path(),
        &[
            "audience",
            "import",
            &format!("data/{GENERATED_OUTBOUND}"),
            "--datasource",
            "ecid",
        ],
    );
    let server = Server::start(dir.path());
    let before = written(dir.path());
    let import_id = cli(dir.path(), &["report", "1"])["import_id"]
        .as_u64()
        .expect("id");
    let list = before["lists"]["lists"][0]["name"]
        .as_str()
        .expect("a list")
        .to_owned();
    use reqwest::Method;
    // (method, path, role needed, JSON body?)
    let routes: Vec<(Method, String, &str, bool)> = vec![
        (Method::GET, "/metrics".into(), "read", false),
        (Method::POST, "/api/rules/preview".into(), "read", true),
        (Method::GET, "/api/lists".into(), "read", false),
        (
            Method::GET,
            format!("/api/lists/{list}/members"),
            "read",
            false,
        ),
        (Method::GET, "/api/jobs/1".into(), "read", false),
        (Method::GET, "/api/jobs/1/files/x".into(), "read", false),
        (
            Method::GET,
            format!("/api/imports/{import_id}/unmatched"),
            "read",
            false,
        ),
        (Method::POST, "/api/imports".into(), "write", false),
        (Method::POST, "/api/exports".into(), "write", true),
        (Method::GET, "/api/no-such-route".into(), "read", false),
    ];
    for (method, path, role, json_body) in &routes {
        let what = format!("{method} {path}");
        // No token, a bad scheme, an unknown token: 401.
        for token in [None, Some("not-a-token-at-all-0000")] {
            let (status, body) = server.send(server.request(method.clone(), path, token));
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
            assert_eq!(error_kind(&body), "unauthenticated", "{what}");
        }
        let (status, body) = server.send(
            server
                .client
                .request(method.clone(), format!("{}{path}", server.url))
                .header("authorization", format!("Basic {READ_TOKEN}")),
        );
        assert_eq!(
            (status, error_kind(&body)),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{what}"
        );
        // The wrong role: 403.
        if *role == "write" {
            let (status, body) =
                server.send(server.request(method.clone(), path, Some(READ_TOKEN)));
            assert_eq!(
                (status, error_kind(&body)),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{what}: {body}"
            );
        }
        // Malformed and ill-typed JSON: 400 and 422.
        if *json_body {
            let (status, body) = server.send(
                server
                    .request(method.clone(), path, Some(WRITE_TOKEN))
                    .header("content-type", "application/json")
                    .body("{\"rule\": "),
            );
            assert_eq!(
                (status, error_kind(&body)),
                (StatusCode::BAD_REQUEST, "bad_request"),
                "{what}: {body}"
            );
            let (status, body) = server.send(
                server
                    .request(method.clone(), path, Some(WRITE_TOKEN))
                    .json(&json!({"rule": 5, "unknown": true})),
            );
            assert_eq!(
                (status, error_kind(&body)),
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
                "{what}: {body}"
            );
        }
        // An oversized body (the imports route's cap is larger): 413, before authentication.
        let size = if path == "/api/imports" {
            4 * 1024 * 1024 + 1
        } else {
            65537
        };
        for token in [None, Some(WRITE_TOKEN)] {
            let (status, body) = server.send(
                server
                    .request(method.clone(), path, token)
                    .header("content-type", "application/json")
                    .body(vec![b' '; size]),
            );
            assert_eq!(
                (status, error_kind(&body)),
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
                "{what}: {body}"
            );
        }
    }
    // Bodies that are valid JSON but say something impossible.
    let refused = [
        (
            "/api/rules/preview",
            json!({"rule": "age >", "now": NOW}),
            "rule",
        ),
        (
            "/api/rules/preview",
            json!({"rule": "true", "now": "yesterday"}),
            "invalid",
        ),
        (
            "/api/rules/preview",
            json!({"rule": "true", "sample": 1_000_000}),
            "invalid",
        ),
        (
            "/api/rules/preview",
            json!({"rule": "true", "by": "no_such_column", "now": NOW}),
            "invalid",
        ),
        (
            "/api/exports",
            json!({"datasource": "nope", "list": list, "trait_id": 1}),
            "invalid",
        ),
        (
            "/api/exports",
            json!({"datasource": "ecid", "rule": "true", "trait_id": 1}),
            "invalid",
        ),
    ];
    for (path, body, kind) in refused {
        let (status, answer) = server.post_json(path, Some(WRITE_TOKEN), &body);
        assert_eq!(
            (status, error_kind(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, kind),
            "{path} {body}: {answer}"
        );
    }
    // An upload that is not multipart, without options, with a bad file name or a bad format.
    let (status, body) = server.send(
        server
            .request(reqwest::Method::POST, "/api/imports", Some(WRITE_TOKEN))
            .body("x"),
    );
    assert_eq!(
        (status, error_kind(&body)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{body}"
    );
    let (status, body) = server.import(
        Some(WRITE_TOKEN),
        &json!({"datasource": "ecid", "format": "pdf"}),
        &[("a.sync", b"x".to_vec())],
    );
    assert_eq!(
        (status, error_kind(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        "{body}"
    );
    let (status, body) = server.import(
        Some(WRITE_TOKEN),
        &json!({"datasource": "ecid"}),
        &[("../a.sync", b"x".to_vec())],
    );
    assert_eq!(
        (status, error_kind(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        "{body}"
    );
    let (status, body) = server.import(Some(WRITE_TOKEN), &json!({"datasource": "ecid"}), &[]);
    assert_eq!(
        (status, error_kind(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        "{body}"
    );
    // A streamed upload past the cap (no Content-Length): 413 too.
    let big = vec![b'1'; 2 * 1024 * 1024 + 10];
    let (status, body) = server.import(
        Some(WRITE_TOKEN),
        &json!({"datasource": "ecid"}),
        &[("big.sync", big)],
    );
    assert_eq!(
        (status, error_kind(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        "{body}"
    );
    // Unknown list, job, import: 404.
    for path in [
        "/api/lists/no-such-list/members",
        "/api/jobs/999",
        "/api/jobs/999/files/a",
        "/api/imports/999/unmatched",
        "/api/no-such-route",
    ] {
        let (status, body) = server.get(path, Some(READ_TOKEN));
        assert_eq!(
            (status, error_kind(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}: {body}"
        );
    }
    let (status, body) = server.get(
        &format!("/api/lists/{list}/members?cursor=zz"),
        Some(READ_TOKEN),
    );
    assert_eq!(
        (status, error_kind(&body)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{body}"
    );
    // Nothing was written, and no upload is left behind.
    assert_eq!(written(dir.path()), before);
    let jobs_dir = dir.join("audlink.db.jobs");
    let left: Vec<_> = std::fs::read_dir(&jobs_dir)
        .map(|d| d.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "uploads left in {}: {left:?}",
        jobs_dir.display()
    );
    // The public routes.
    let (status, body) = server.get("/healthz", None);
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, doc) = server.get("/api/openapi.json", None);
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["paths"]["/api/rules/preview"]["post"].is_object(),
        "{doc}"
    );
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    // No CORS header unless configured.
    let headers = server.runtime.block_on(async {
        server
            .request(reqwest::Method::GET, "/healthz", None)
            .header("origin", "https://evil.example")
            .send()
            .await
            .expect("get")
            .headers()
            .clone()
    });
    assert!(
        headers
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-")),
        "{headers:?}"
    );
    // The metrics counted the refusals by route and status.
    let metrics = server.metrics();
    assert!(
        metrics
            .contains("audlink_http_requests_total{route=\"/api/rules/preview\",status=\"401\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("audlink_limit_hits_total{limit=\"body_size\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("audlink_limit_hits_total{limit=\"body_size\"} 0"),
        "{metrics}"
    );
}

#[test]
fn a_busy_token_gets_429_and_others_are_served() {
    let dir = database("serve-busy", 20_000);
    // One request in flight per token.
    let config = std::fs::read_to_string(dir.join(CONFIG))
        .expect("config")
        .replace("concurrency_per_token = 64", "concurrency_per_token = 1");
    std::fs::write(dir.join(CONFIG), config).expect("config");
    let server = Server::start(dir.path());
    let slow = slow_rule();
    let (statuses, other) = server.runtime.block_on(async {
        let slow_request = read(
            server
                .request(
                    reqwest::Method::POST,
                    "/api/rules/preview",
                    Some(READ_TOKEN),
                )
                .json(&json!({"rule": slow, "now": NOW})),
        );
        let probes = async {
            // While the slow preview holds the reader's slot, the reader is refused and the writer served.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut statuses = Vec::new();
            for _ in 0..5 {
                let (status, body) =
                    read(server.request(reqwest::Method::GET, "/api/lists", Some(READ_TOKEN)))
                        .await;
                statuses.push((status, body));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let other =
                read(server.request(reqwest::Method::GET, "/api/lists", Some(WRITE_TOKEN))).await;
            (statuses, other)
        };
        let (slow_answer, probes) = tokio::join!(slow_request, probes);
        assert_eq!(
            slow_answer.0,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            slow_answer.1
        );
        probes
    });
    assert!(
        statuses
            .iter()
            .any(|(s, b)| *s == StatusCode::TOO_MANY_REQUESTS
                && error_kind(b) == "too_many_requests"),
        "no 429 while the slot was held: {statuses:?}"
    );
    assert_eq!(other.0, StatusCode::OK, "{}", other.1);
    // The slot is free again once the slow request ended.
    assert_eq!(server.get("/api/lists", Some(READ_TOKEN)).0, StatusCode::OK);
    assert!(
        !server
            .metrics()
            .contains("audlink_limit_hits_total{limit=\"concurrency\"} 0")
    );
}

/// A rule SQLite takes seconds over 20,000 recipients: a thousand case-insensitive substring
/// tests that never match.
fn slow_rule() -> String {
    (0..1000)
        .map(|i| format!("email icontains \"zq{i:04}x\""))
        .collect::<Vec<_>>()
        .join(" or ")
}

// ---------------------------------------------------------------------------------------------
// Same answers as the CLI

#[test]
fn previews_lists_and_member_pages_equal_the_cli() {
    let dir = database("serve-same", 2000);
    cli(
        dir.path(),
        &[
            "audience",
            "import",
            &format!("data/{GENERATED_OUTBOUND}"),
            "--datasource",
            "ecid",
        ],
    );
    let server = Server::start(dir.path());
    let first = cli(dir.path(), &["list", "ls"])["lists"][0]["name"]
        .as_str()
        .expect("a list")
        .to_owned();
    let in_first = format!("in_list(\"{first}\") and age < 50");
    for (rule, sample, by) in [
        ("true", 10, None),
        (
            "country in (\"NL\", \"BE\") and age >= 30",
            5,
            Some("country"),
        ),
        ("last_order >= now() - 30d or vip", 3, Some("vip")),
        (in_first.as_str(), 0, None),
    ] {
        let mut args = vec!["segment", "preview", rule, "--now", NOW];
        let sample_text = sample.to_string();
        args.extend(["--sample", &sample_text]);
        if let Some(by) = by {
            args.extend(["--by", by]);
        }
        let expected = cli(dir.path(), &args);
        let (status, answer) = server.post_json(
            "/api/rules/preview",
            Some(READ_TOKEN),
            &json!({"rule": rule, "sample": sample, "by": by, "now": NOW}),
        );
        assert_eq!(status, StatusCode::OK, "{rule}: {answer}");
        assert_eq!(answer, expected, "{rule}");
    }
    // A write token reads too.
    let (status, lists) = server.get("/api/lists", Some(WRITE_TOKEN));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lists, cli(dir.path(), &["list", "ls"]));
    for list in lists["lists"].as_array().expect("lists") {
        let name = list["name"].as_str().expect("name");
        let expected = cli(dir.path(), &["list", "show", name])["members"].clone();
        let mut paged = Vec::new();
        let mut path = format!("/api/lists/{name}/members?limit=7");
        loop {
            let (status, page) = server.get(&path, Some(READ_TOKEN));
            assert_eq!(status, StatusCode::OK, "{page}");
            let members = page["members"].as_array().expect("members");
            assert!(members.len() <= 7);
            paged.extend(members.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/lists/{name}/members?limit=7&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(Value::Array(paged), expected, "{name}");
    }
}

#[test]
fn import_and_export_jobs_equal_the_cli() {
    let api = database("serve-jobs-api", 1500);
    let cli_dir = database("serve-jobs-cli", 1500);
    let server = Server::start(api.path());
    let file = outbound(api.path());
    assert_eq!(file, outbound(cli_dir.path()), "same seed, same data");
    // Import: the job's report and lists are the CLI's.
    let expected = cli(
        cli_dir.path(),
        &[
            "audience",
            "import",
            &format!("data/{GENERATED_OUTBOUND}"),
            "--datasource",
            "ecid",
        ],
    );
    let (status, accepted) = server.import(
        Some(WRITE_TOKEN),
        &json!({"datasource": "ecid"}),
        &[(GENERATED_OUTBOUND, file.clone())],
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let job = server.wait_job(accepted["job_id"].as_u64().expect("job id"));
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["kind"], "import");
    // The upload is removed once the job has ended.
    let uploads = api.join(&format!("audlink.db.jobs/{}/in", job["id"]));
    let waited = Instant::now();
    while uploads.exists() && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!uploads.exists(), "{} is left", uploads.display());
    assert_eq!(job["result"], expected);
    assert_eq!(
        cli(api.path(), &["list", "ls"]),
        cli(cli_dir.path(), &["list", "ls"])
    );
    for list in cli(api.path(), &["list", "ls"])["lists"]
        .as_array()
        .expect("lists")
    {
        let name = list["name"].as_str().expect("name");
        assert_eq!(
            cli(api.path(), &["list", "show", name]),
            cli(cli_dir.path(), &["list", "show", name]),
            "{name}"
        );
    }
    // Its unmatched identifiers, paged, are `report --unmatched`'s.
    let import_id = job["result"]["import_id"]
        .as_u64()
        .expect("import id")
        .to_string();
    let report = cli(
        cli_dir.path(),
        &["report", &import_id, "--unmatched", "--limit", "100000"],
    );
    let mut rows = Vec::new();
    let mut path = format!("/api/imports/{import_id}/unmatched?limit=50");
    loop {
        let (status, page) = server.get(&path, Some(READ_TOKEN));
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["unmatched_total"], report["unmatched_total"]);
        rows.extend(page["unmatched"].as_array().expect("rows").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/imports/{import_id}/unmatched?limit=50&cursor={cursor}")
            }
            None => break,
        }
    }
    assert!(
        !rows.is_empty(),
        "the generated file has unmatched identifiers"
    );
    assert_eq!(Value::Array(rows), report["unmatched"]);
    // The same upload again is the CLI's no-op.
    let (_, again) = server.import(
        Some(WRITE_TOKEN),
        &json!({"datasource": "ecid"}),
        &[(GENERATED_OUTBOUND, file)],
    );
    let job = server.wait_job(again["job_id"].as_u64().expect("job id"));
    assert_eq!(job["result"]["skipped"], true, "{job}");

    // Export of a list and of a rule: the job's files are the CLI's, byte for byte.
    let list = cli(api.path(), &["list", "ls"])["lists"][0]["name"]
        .as_str()
        .expect("a list")
        .to_owned();
    let ts = TIMESTAMP.to_string();
    for (body, args) in [
        (
            json!({"datasource": "ecid", "list": list, "trait_id": 42, "timestamp": TIMESTAMP}),
            vec![
                "audience",
                "export",
                "--datasource",
                "ecid",
                "--list",
                &list,
                "--trait-id",
                "42",
                "--timestamp",
                &ts,
                "--out",
                "out-list",
            ],
        ),
        (
            json!({"datasource": "crm", "rule": "age >= 40", "audience": "forties", "now": NOW, "trait_id": 7, "timestamp": TIMESTAMP, "gzip": true}),
            vec![
                "audience",
                "export",
                "--datasource",
                "crm",
                "--where",
                "age >= 40",
                "--audience",
                "forties",
                "--now",
                NOW,
                "--trait-id",
                "7",
                "--timestamp",
                &ts,
                "--gzip",
                "--out",
                "out-rule",
            ],
        ),
    ] {
        let out = args.last().expect("out").to_string();
        let expected = cli(cli_dir.path(), &args);
        let (status, accepted) = server.post_json("/api/exports", Some(WRITE_TOKEN), &body);
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        let id = accepted["job_id"].as_u64().expect("job id");
        let job = server.wait_job(id);
        assert_eq!(job["status"], "done", "{job}");
        assert_eq!(job["result"]["files"], expected["files"], "{body}");
        assert_eq!(job["result"]["report"], expected["report"], "{body}");
        let names = job["files"].as_array().expect("files");
        assert!(!names.is_empty(), "{job}");
        for name in names {
            let name = name.as_str().expect("name");
            let bytes = server.bytes(&format!("/api/jobs/{id}/files/{name}"), READ_TOKEN);
            let cli_bytes = std::fs::read(cli_dir.join(&out).join(name)).expect("the CLI's file");
            assert!(bytes == cli_bytes, "{name} differs from the CLI's");
        }
    }
    let metrics = server.metrics();
    assert!(
        metrics.contains("audlink_job_duration_seconds_count{kind=\"import\",status=\"done\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("audlink_job_duration_seconds_count{kind=\"export\",status=\"done\"} 2"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// Limits, load, shutdown

#[test]
fn pathological_inputs_hit_their_limits_while_normal_previews_succeed() {
    let dir = database("serve-limits", 20_000);
    let server = Server::start(dir.path());
    // Warm up (page cache, first instances), then measure.
    for _ in 0..3 {
        assert_eq!(
            server
                .post_json(
                    "/api/rules/preview",
                    Some(READ_TOKEN),
                    &json!({"rule": "age > 30", "now": NOW})
                )
                .0,
            StatusCode::OK
        );
    }
    let rss_before = server.rss_kib();
    // 256 MiB of one repeated line, gzipped to a few hundred KiB: past the 128 MiB cap.
    let line = b"12345678901234567890123456789012345678 1 \n";
    let mut plain = Vec::with_capacity(256 << 20);
    while plain.len() < 256 << 20 {
        plain.extend_from_slice(line);
    }
    let bomb = audlink_core::sample::gzip(&plain);
    drop(plain);
    assert!(
        bomb.len() < 2 << 20,
        "the bomb fits the upload cap: {}",
        bomb.len()
    );
    let expected = cli(
        dir.path(),
        &["segment", "preview", "age > 30", "--now", NOW],
    );
    let slow = slow_rule();
    let (bomb_job, slow_answers, normal) = server.runtime.block_on(async {
        let bomb_upload = async {
            let form = reqwest::multipart::Form::new()
                .text(
                    "options",
                    json!({"datasource": "ecid", "format": "ids", "segment": "9"}).to_string(),
                )
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(bomb.clone()).file_name("bomb.txt.gz"),
                );
            read(
                server
                    .request(reqwest::Method::POST, "/api/imports", Some(WRITE_TOKEN))
                    .multipart(form),
            )
            .await
        };
        let slow_previews = futures_util::future::join_all((0..2).map(|_| {
            read(
                server
                    .request(
                        reqwest::Method::POST,
                        "/api/rules/preview",
                        Some(READ_TOKEN),
                    )
                    .json(&json!({"rule": slow, "now": NOW})),
            )
        }));
        let srv = &server;
        let normal_previews = futures_util::future::join_all((0..20).map(|i| async move {
            tokio::time::sleep(Duration::from_millis(50 * i)).await;
            read(
                srv.request(
                    reqwest::Method::POST,
                    "/api/rules/preview",
                    Some(READ_TOKEN),
                )
                .json(&json!({"rule": "age > 30", "now": NOW})),
            )
            .await
        }));
        tokio::join!(bomb_upload, slow_previews, normal_previews)
    });
    for (status, answer) in &normal {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(*answer, expected);
    }
    for (status, answer) in &slow_answers {
        assert_eq!(
            (*status, error_kind(answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, "query_deadline"),
            "{answer}"
        );
    }
    assert_eq!(bomb_job.0, StatusCode::ACCEPTED, "{}", bomb_job.1);
    let job = server.wait_job(bomb_job.1["job_id"].as_u64().expect("id"));
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["kind"], "memory", "{job}");
    assert_eq!(job["error"]["status"], 422, "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("memory limit")),
        "{job}"
    );
    // The server still serves, with nothing left alive in the sandbox.
    let (status, answer) = server.post_json(
        "/api/rules/preview",
        Some(READ_TOKEN),
        &json!({"rule": "age > 30", "now": NOW}),
    );
    assert_eq!((status, answer), (StatusCode::OK, expected));
    let metrics = server.metrics();
    assert!(
        metrics.contains("audlink_sandbox_instances 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("audlink_limit_hits_total{limit=\"memory\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("audlink_limit_hits_total{limit=\"query_deadline\"} 2\n"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("audlink_job_duration_seconds_count{kind=\"import\",status=\"failed\"} 1\n"),
        "{metrics}"
    );
    // Resident memory bounded: the guest's memory was released with its instance.
    let rss_after = server.rss_kib();
    eprintln!(
        "server VmRSS: {rss_before} KiB before, {rss_after} KiB after the pathological inputs"
    );
    assert!(
        rss_after < rss_before + 256 * 1024,
        "VmRSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

#[test]
fn a_file_that_runs_past_the_sandbox_deadline_gets_422_deadline_and_the_server_keeps_serving() {
    let dir = database("serve-deadline", 2000);
    // A deadline that normal previews (one rule compiled) never come near, and memory enough
    // that the long import meets the deadline first.
    let config = std::fs::read_to_string(dir.join(CONFIG))
        .expect("config")
        .replace("sandbox_deadline_ms = 20000", "sandbox_deadline_ms = 300")
        .replace("sandbox_memory_mib = 128", "sandbox_memory_mib = 2048");
    std::fs::write(dir.join(CONFIG), config).expect("config");
    let server = Server::start(dir.path());
    // Two million copies of one visitor id: seconds of work in the guest.
    let slow_file =
        audlink_core::sample::gzip(&b"12345678901234567890123456789012345678\n".repeat(2_000_000));
    assert!(slow_file.len() < 2 << 20, "{}", slow_file.len());
    let expected = cli(
        dir.path(),
        &["segment", "preview", "age > 30", "--now", NOW],
    );
    let (upload, normal) = server.runtime.block_on(async {
        let form = reqwest::multipart::Form::new()
            .text(
                "options",
                json!({"datasource": "ecid", "format": "ids", "segment": "9"}).to_string(),
            )
            .part(
                "file",
                reqwest::multipart::Part::bytes(slow_file).file_name("many.txt.gz"),
            );
        let upload = read(
            server
                .request(reqwest::Method::POST, "/api/imports", Some(WRITE_TOKEN))
                .multipart(form),
        );
        let srv = &server;
        let normal = futures_util::future::join_all((0..10).map(|i| async move {
            tokio::time::sleep(Duration::from_millis(40 * i)).await;
            read(
                srv.request(
                    reqwest::Method::POST,
                    "/api/rules/preview",
                    Some(READ_TOKEN),
                )
                .json(&json!({"rule": "age > 30", "now": NOW})),
            )
            .await
        }));
        tokio::join!(upload, normal)
    });
    for (status, answer) in &normal {
        assert_eq!((*status, answer), (StatusCode::OK, &expected));
    }
    assert_eq!(upload.0, StatusCode::ACCEPTED, "{}", upload.1);
    let job = server.wait_job(upload.1["job_id"].as_u64().expect("id"));
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        (&job["error"]["kind"], &job["error"]["status"]),
        (&json!("deadline"), &json!(422)),
        "{job}"
    );
    assert!(
        job["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("deadline")),
        "{job}"
    );
    // Nothing was imported, and the server goes on.
    assert_eq!(cli(dir.path(), &["list", "ls"])["lists"], json!([]));
    let (status, answer) = server.post_json(
        "/api/rules/preview",
        Some(READ_TOKEN),
        &json!({"rule": "age > 30", "now": NOW}),
    );
    assert_eq!((status, answer), (StatusCode::OK, expected));
    let metrics = server.metrics();
    assert!(
        metrics.contains("audlink_limit_hits_total{limit=\"deadline\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("audlink_sandbox_instances 0\n"),
        "{metrics}"
    );
}

#[test]
fn load_test_of_previews_and_imports_has_no_errors_and_leaks_no_instance() {
    const CLIENTS: usize = 8;
    const SECONDS: u64 = 20;
    const MAX_PER_CLIENT: usize = 5000;
    let dir = database("serve-load", 5000);
    let server = Server::start(dir.path());
    let rules = [
        "age > 30",
        "country = \"NL\" and vip",
        "last_order >= now() - 90d",
        "email icontains \"a\"",
    ];
    let file = outbound(dir.path());
    let started = Instant::now();
    let (latencies, imports) = server.runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(SECONDS);
        let clients = futures_util::future::join_all((0..CLIENTS).map(|c| {
            let server = &server;
            async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline && latencies.len() < MAX_PER_CLIENT {
                    let rule = rules[(c + latencies.len()) % rules.len()];
                    let t = Instant::now();
                    let (status, body) = read(
                        server
                            .request(
                                reqwest::Method::POST,
                                "/api/rules/preview",
                                Some(READ_TOKEN),
                            )
                            .json(&json!({"rule": rule, "now": NOW, "sample": 5})),
                    )
                    .await;
                    assert_eq!(status, StatusCode::OK, "{rule}: {body}");
                    latencies.push(t.elapsed());
                }
                latencies
            }
        }));
        let imports = futures_util::future::join_all((0..3).map(|i| {
            let server = &server;
            let file = file.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(2 + 5 * i)).await;
                let mapping = BTreeMap::from([("1".to_owned(), format!("load-{i}"))]);
                let form = reqwest::multipart::Form::new()
                    .text(
                        "options",
                        json!({"datasource": "ecid", "mappings": mapping}).to_string(),
                    )
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(file).file_name(GENERATED_OUTBOUND),
                    );
                read(
                    server
                        .request(reqwest::Method::POST, "/api/imports", Some(WRITE_TOKEN))
                        .multipart(form),
                )
                .await
            }
        }));
        let (latencies, imports) = tokio::join!(clients, imports);
        (latencies.into_iter().flatten().collect::<Vec<_>>(), imports)
    });
    let elapsed = started.elapsed();
    for (status, body) in &imports {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
        let job = server.wait_job(body["job_id"].as_u64().expect("id"));
        assert_eq!(job["status"], "done", "{job}");
    }
    let mut sorted = latencies.clone();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "load: {CLIENTS} clients, {} previews in {:.1} s ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms; 3 imports",
        sorted.len(),
        elapsed.as_secs_f64(),
        sorted.len() as f64 / elapsed.as_secs_f64(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
    assert!(!sorted.is_empty());
    let metrics = server.metrics();
    assert!(
        metrics.contains("audlink_sandbox_instances 0\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("status=\"5"), "server errors: {metrics}");
    assert!(
        metrics.contains(&format!(
            "audlink_http_requests_total{{route=\"/api/rules/preview\",status=\"200\"}} {}\n",
            sorted.len()
        )),
        "{metrics}"
    );
}

#[test]
fn sigterm_lets_a_running_import_finish_or_marks_it_interrupted_with_every_list_as_it_was() {
    let dir = database("serve-sigterm", 20_000);
    let file = outbound(dir.path());
    // What the import writes, from a copy of the database.
    let copy = TempDir::new("serve-sigterm-copy");
    for name in ["audlink.db", CONFIG] {
        std::fs::copy(dir.join(name), copy.join(name)).expect("copy");
    }
    std::fs::create_dir_all(copy.join("data")).expect("mkdir");
    std::fs::write(copy.join("data").join(GENERATED_OUTBOUND), &file).expect("write");
    cli(
        copy.path(),
        &[
            "audience",
            "import",
            &format!("data/{GENERATED_OUTBOUND}"),
            "--datasource",
            "ecid",
        ],
    );
    let after_import = cli(copy.path(), &["list", "ls"]);
    let job_status = |id: i64| -> String {
        let conn = rusqlite::Connection::open(dir.join("audlink.db")).expect("open");
        conn.query_row("SELECT status FROM serve_jobs WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .expect("job")
    };

    // 1. A bounded wait long enough: the job finishes, then the server exits 0.
    let mut server = Server::start(dir.path());
    let (status, accepted) = server.import(
        Some(WRITE_TOKEN),
        &json!({"datasource": "ecid"}),
        &[(GENERATED_OUTBOUND, file.clone())],
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["job_id"].as_i64().expect("id");
    let exit = server.terminate();
    assert!(
        exit.success(),
        "audlink serve exits 0 on SIGTERM: {exit:?}\n{}",
        server.log()
    );
    assert_eq!(job_status(id), "done", "{}", server.log());
    assert_eq!(cli(dir.path(), &["list", "ls"]), after_import);
    drop(server);

    // 2. No wait: the job (other lists, so real work) is cut short and marked interrupted, and
    // every list is as it was — or it finished first, and its lists are whole.
    let config = std::fs::read_to_string(dir.join(CONFIG))
        .expect("config")
        .replace("shutdown_wait_ms = 20000", "shutdown_wait_ms = 0");
    std::fs::write(dir.join(CONFIG), config).expect("config");
    let before = written(dir.path());
    let mut server = Server::start(dir.path());
    let mappings: BTreeMap<String, String> = (1..=60)
        .map(|s| (s.to_string(), format!("cut-{s}")))
        .collect();
    let (status, accepted) = server.import(
        Some(WRITE_TOKEN),
        &json!({"datasource": "ecid", "mappings": mappings}),
        &[(GENERATED_OUTBOUND, file)],
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["job_id"].as_i64().expect("id");
    let exit = server.terminate();
    assert!(
        exit.success(),
        "audlink serve exits 0 on SIGTERM: {exit:?}\n{}",
        server.log()
    );
    let ended = job_status(id);
    let now = written(dir.path());
    match ended.as_str() {
        "interrupted" => {
            for key in ["lists", "members", "imports"] {
                assert_eq!(
                    now[key], before[key],
                    "an interrupted import changed the {key}"
                );
            }
        }
        "done" => {
            let lists = now["lists"]["lists"].as_array().expect("lists");
            assert!(
                lists
                    .iter()
                    .any(|l| l["name"].as_str().is_some_and(|n| n.starts_with("cut-"))),
                "{now}"
            );
        }
        other => panic!("job {id} is {other} after SIGTERM"),
    }
    eprintln!("SIGTERM without a wait: the import job ended {ended}");
}

#[test]
fn without_a_database_the_page_is_served_and_database_routes_answer_503() {
    let dir = TempDir::new("serve-no-db");
    std::fs::write(dir.join(CONFIG), SERVE).expect("config");
    let server = Server::start(dir.path());
    let (status, page) = server.get("/", None);
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_str()
            .is_some_and(|p| p.contains("<html") || p.contains("<!doctype")),
        "{page}"
    );
    for (status, body) in [
        server.get("/api/lists", Some(READ_TOKEN)),
        server.get("/api/lists/a/members", Some(READ_TOKEN)),
        server.post_json(
            "/api/rules/preview",
            Some(READ_TOKEN),
            &json!({"rule": "true"}),
        ),
    ] {
        assert_eq!(
            (status, error_kind(&body)),
            (StatusCode::SERVICE_UNAVAILABLE, "no_database"),
            "{body}"
        );
    }
    assert!(
        !dir.join("audlink.db").exists(),
        "serve must not create the database"
    );
    assert_eq!(server.get("/healthz", None).0, StatusCode::OK);
}

#[test]
fn serve_refuses_an_address_other_hosts_reach_without_tokens() {
    let dir = TempDir::new("serve-exposed");
    let args = ["serve", "--addr", "0.0.0.0:0"];
    let output = command(dir.path(), &dir.join(CONFIG))
        .args(args)
        .arg("--root")
        .arg(root().join("www"))
        .env_remove("AUDLINK_SERVE_TOKENS")
        .output()
        .expect("run");
    let line = crate::cli::check_failure(&args, &output, 2);
    assert!(
        line.contains("AUDLINK_SERVE_TOKENS") && line.contains("0.0.0.0"),
        "{line}"
    );
    // A short token is refused without being echoed.
    let output = command(dir.path(), &dir.join(CONFIG))
        .args(args)
        .arg("--root")
        .arg(root().join("www"))
        .env("AUDLINK_SERVE_TOKENS", "a:read:tooshort-secret")
        .output()
        .expect("run");
    let line = crate::cli::check_failure(&args, &output, 2);
    assert!(
        line.contains("shorter than 16") && !line.contains("tooshort-secret"),
        "{line}"
    );
}
