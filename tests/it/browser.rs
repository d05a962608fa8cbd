//! The preview page (`www/`) in a real browser: each test serves the page with the real
//! `audlink serve` on a free loopback port, runs `node tests/browser/run.mjs <scenario>` (Playwright
//! driving Debian's headless Chromium, `tests/browser/`) on fixtures made by `audlink generate`,
//! runs the `audlink` CLI on the same files against a fresh SQLite database, and compares what
//! the page shows (its test hooks: `data-testid`, `data-segment`, `data-ids`, …) and downloads
//! with the CLI's `--json` reports and files.
//!
//! Covered: `audlink serve`'s MIME types; the import preview's per-segment numbers, totals,
//! paged unmatched rows and overlap heat map against `audience import --json`, `report
//! --unmatched` and `list show`; an Experience Platform import with the data source the page
//! writes as TOML (the CLI reads that TOML); gzip files; files dropped rather than picked; the
//! rule editor's counts (against `segment preview`) and error positions; export downloads
//! byte-identical to `audience export` for a list and for a rule; a bad file's name, line and
//! reason.
//!
//! The driver fails (and so the test) on any console error, uncaught exception, failed request
//! or HTTP error status of the page. Screenshots go to `target/browser/`.
//!
//! Nothing here is skipped: a missing Chromium (`/usr/bin/chromium`, or `AUDLINK_CHROMIUM`),
//! a missing `tests/browser/node_modules` (run `npm ci` there), or a missing or stale `www/pkg/`
//! (run `make js`) fails the tests with the command that fixes it; `make test` does all three.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use audlink_host::cli::{GENERATED_AEP, GENERATED_OUTBOUND};
use serde_json::{Value, json};

use crate::built::{modified, newest_source, root};
use crate::cli::{TempDir, binary, describe};

const NOW: &str = "2026-01-01T00:00:00Z";
const TIMESTAMP: u64 = 1_767_300_000;
/// Recipients in the generated fixtures: enough for 50 segments with every outcome.
const RECIPIENTS: &str = "3000";

// ---------------------------------------------------------------------------------------------
// What the tests need, checked (never skipped)

/// Chromium, Playwright and the page's wasm package are there (fails with the fix otherwise).
fn require_browser() {
    let chromium = chromium();
    assert!(
        chromium.is_file(),
        "{} is missing: the browser tests need Debian's Chromium (`apt-get install chromium`; \
         `make test` installs it)",
        chromium.display()
    );
    let playwright = root().join("tests/browser/node_modules/playwright-core/package.json");
    assert!(
        playwright.is_file(),
        "{} is missing: run `npm ci` in tests/browser (`make test` does)",
        playwright.display()
    );
    let wasm = root().join("www/pkg/audlink_wasm_bg.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run `make js`",
        wasm.display()
    );
    for sources in ["core/src", "wasm/src"] {
        if let Some((time, path)) = newest_source(&root().join(sources)) {
            assert!(
                time <= modified(&wasm),
                "{} is older than {}: run `make js`",
                wasm.display(),
                path.display()
            );
        }
    }
}

fn chromium() -> PathBuf {
    std::env::var_os("AUDLINK_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

// ---------------------------------------------------------------------------------------------
// A test's directory, the CLI and the server

fn cli(dir: &TempDir, config: &Path, args: &[&str]) -> Value {
    let output = Command::new(binary())
        .current_dir(dir.path())
        .env_remove("AUDLINK_DB")
        .args(["--json", "-q", "--db"])
        .arg(dir.join("audlink.db"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("cannot run the audlink binary");
    assert!(output.status.success(), "{}", describe(args, &output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", describe(args, &output)))
}

/// Generated fixtures in `data/` and a database with `audlink init`'s configuration, the
/// recipients and visitor links loaded; the two load reports.
fn fixtures(name: &str) -> (TempDir, Value, Value) {
    let dir = TempDir::new(name);
    let config = dir.join("audlink.toml");
    cli(
        &dir,
        &config,
        &[
            "generate",
            "--out",
            "data",
            "--recipients",
            RECIPIENTS,
            "--seed",
            "5",
        ],
    );
    cli(&dir, &config, &["init"]);
    let recipients = cli(
        &dir,
        &config,
        &["recipients", "load", "data/recipients.csv"],
    );
    let links = cli(&dir, &config, &["visitors", "load", "data/visitors.csv"]);
    (dir, recipients, links)
}

/// `audlink serve` on a free loopback port, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(binary())
            .args(["serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root().join("www"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run audlink serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("audlink serve prints its URL");
        let url = line.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
            "audlink serve printed {line:?}"
        );
        Server { child, url }
    }

    /// `GET path` over a plain TCP connection: (status, content type, body).
    fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let host = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = TcpStream::connect(host).expect("connect to audlink serve");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("response");
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block");
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let content_type = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default();
        (status, content_type, response[split + 4..].to_vec())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where screenshots go: `target/browser/` of the workspace.
fn artifacts() -> PathBuf {
    let dir = root().join("target/browser");
    fs::create_dir_all(&dir).expect("target/browser");
    dir
}

/// Runs one scenario of `tests/browser/run.mjs` against `server` with `config` (plus `url` and
/// `out`); what the page showed.
fn browse(server: &Server, dir: &TempDir, scenario: &str, mut config: Value) -> Value {
    require_browser();
    let out = dir.join("browser");
    config["url"] = json!(server.url);
    config["out"] = json!(out);
    let config_path = dir.join(&format!("{scenario}.json"));
    fs::write(&config_path, config.to_string()).expect("write the scenario");
    let output = Command::new("node")
        .arg(root().join("tests/browser/run.mjs"))
        .arg(scenario)
        .arg(&config_path)
        .env("AUDLINK_CHROMIUM", chromium())
        .output()
        .expect("cannot run node (the browser tests need Node.js)");
    assert!(
        output.status.success(),
        "browser scenario {scenario} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the driver printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(
        result["problems"],
        json!([]),
        "console errors or exceptions"
    );
    result
}

fn path(dir: &TempDir, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The CLI's segments of an import report by segment id: the fields the page shows.
fn cli_segments(report: &Value) -> BTreeMap<String, Value> {
    report["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            (
                s["segment"].as_str().expect("segment").to_owned(),
                json!({
                    "segment": s["segment"], "list": s["list"], "ids": s["ids"],
                    "matched": s["matched"], "unmatched": s["unmatched"],
                    "recipients": s["recipients"],
                }),
            )
        })
        .collect()
}

fn page_segments(shown: &Value) -> BTreeMap<String, Value> {
    shown["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["segment"].as_str().expect("segment").to_owned(),
                r.clone(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn serve_gives_the_page_and_the_wasm_package_their_mime_types() {
    require_browser();
    let server = Server::start();
    let (status, content_type, body) = server.get("/");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(String::from_utf8_lossy(&body).contains("data-testid=\"input-recipients\""));
    let (status, content_type, body) = server.get("/pkg/audlink_wasm_bg.wasm");
    assert_eq!((status, content_type.as_str()), (200, "application/wasm"));
    assert_eq!(&body[..4], b"\0asm");
    for js in ["/app.js", "/worker.js", "/pkg/audlink_wasm.js"] {
        let (status, content_type, _) = server.get(js);
        assert_eq!(status, 200, "{js}");
        assert!(
            content_type.starts_with("text/javascript"),
            "{js}: {content_type}"
        );
    }
    assert_eq!(server.get("/no-such-file.js").0, 404);
    assert_eq!(server.get("/../Cargo.toml").0, 404);
}

#[test]
fn import_preview_shows_the_numbers_of_the_cli_report() {
    let (dir, recipients, links) = fixtures("import");
    let config = dir.join("audlink.toml");
    let report = cli(
        &dir,
        &config,
        &[
            "audience",
            "import",
            &format!("data/{GENERATED_OUTBOUND}"),
            "--datasource",
            "ecid",
        ],
    );
    let server = Server::start();
    let shown = browse(
        &server,
        &dir,
        "import",
        json!({
            "files": {
                "recipients": path(&dir, "data/recipients.csv"),
                "links": path(&dir, "data/visitors.csv"),
                "audience": [path(&dir, &format!("data/{GENERATED_OUTBOUND}"))],
            },
            "datasource": {"name": "ecid", "kind": "visitor-id", "dpid": 21, "policy": "latest"},
            "screenshot": "import-preview.png",
        }),
    );
    let _ = fs::copy(
        dir.join("browser/import-preview.png"),
        artifacts().join("import-preview.png"),
    );

    // Each file's parse result: rows and rejected rows as the CLI read them.
    assert_eq!(shown["loads"]["recipients"]["rows"], recipients["rows"]);
    assert_eq!(
        shown["loads"]["recipients"]["rejected"],
        recipients["rejected"]
    );
    assert_eq!(shown["loads"]["links"]["rows"], links["rows"]);
    let unreadable = links["rejected_rows"]
        .as_array()
        .expect("rejected_rows")
        .len();
    assert_eq!(shown["loads"]["links"]["rejected"], json!(unreadable));

    // Per segment: ids, matched, unmatched, recipients — all 50 of them.
    let expected = cli_segments(&report);
    assert!(expected.len() >= 10, "{report}");
    assert_eq!(page_segments(&shown), expected);

    // The totals and the unmatched table's size.
    let totals = &report["totals"];
    let number = |kpi: &str| shown["kpis"][kpi].as_str().expect("kpi").replace(',', "");
    assert_eq!(number("kpi-ids"), totals["units"].to_string());
    assert_eq!(number("kpi-matched"), totals["matched"].to_string());
    assert_eq!(number("kpi-unmatched"), totals["unmatched"].to_string());
    let unmatched = totals["unmatched"].as_u64().expect("unmatched");
    assert!(
        unmatched > 10,
        "fixtures have unmatched ids on more than one page"
    );
    let range = shown["unmatchedRange"]
        .as_str()
        .expect("range")
        .replace(',', "");
    assert_eq!(range, format!("1–10 of {unmatched}"));
    assert_eq!(shown["unmatchedRows"].as_array().expect("rows").len(), 10);
    let next = shown["nextPage"]["range"].as_str().expect("next page");
    assert_eq!(next.replace(',', ""), format!("11–20 of {unmatched}"));
    assert_ne!(shown["nextPage"]["rows"], shown["unmatchedRows"]);
    // Each unmatched row names its file, line, segment, identifier and reason as `report
    // --unmatched` does.
    let import_id = report["import_id"].to_string();
    let stored = cli(
        &dir,
        &config,
        &["report", &import_id, "--unmatched", "--limit", "100000"],
    );
    let stored_rows: Vec<Value> = stored["unmatched"]
        .as_array()
        .expect("unmatched")
        .iter()
        .map(|u| {
            json!([
                u["file"],
                u["line"].to_string(),
                u["segment"],
                u["id"],
                u["reason"]
            ])
        })
        .collect();
    for row in shown["unmatchedRows"].as_array().expect("rows") {
        assert!(
            stored_rows.contains(row),
            "{row} is not in the CLI's unmatched rows"
        );
    }

    // The overlap heat map: recipients in both lists, from the CLI's lists.
    let mut members: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let cells = shown["overlap"].as_array().expect("overlap");
    assert!(cells.len() >= 4, "a heat map of at least 2×2 cells");
    for cell in cells {
        for list in [&cell["a"], &cell["b"]] {
            let list = list.as_str().expect("list").to_owned();
            members.entry(list).or_insert_with_key(|list| {
                cli(&dir, &config, &["list", "show", list])["members"]
                    .as_array()
                    .expect("members")
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            });
        }
        let (a, b) = (
            &members[cell["a"].as_str().unwrap()],
            &members[cell["b"].as_str().unwrap()],
        );
        assert_eq!(cell["both"], json!(a.intersection(b).count()), "{cell}");
    }
}

#[test]
fn an_experience_platform_import_with_the_pages_datasource_toml_matches_the_cli() {
    let (dir, _, _) = fixtures("aep");
    let server = Server::start();
    let aep = format!("data/{GENERATED_AEP}");
    let shown = browse(
        &server,
        &dir,
        "import",
        json!({
            "files": {
                "recipients": path(&dir, "data/recipients.csv"),
                "links": path(&dir, "data/visitors.csv"),
                "audience": [path(&dir, &aep)],
            },
            "datasource": {
                "name": "from-page", "kind": "declared-id", "dpid": 77, "key_column": "email",
                "encoding": "sha256-email", "profile": "adobe-v1", "policy": "latest",
            },
            "audience_options": {"aep-identity": "email_sha256", "aep-status": "status", "aep-list": "newsletter"},
        }),
    );
    // The CLI reads the data source the page wrote as TOML.
    let toml = shown["toml"].as_str().expect("toml");
    assert!(
        toml.starts_with("[[datasource]]\nname = \"from-page\""),
        "{toml}"
    );
    let config = dir.join("page.toml");
    fs::write(&config, toml).expect("write page.toml");
    let report = cli(
        &dir,
        &config,
        &[
            "audience",
            "import",
            &aep,
            "--datasource",
            "from-page",
            "--identity-column",
            "email_sha256",
            "--status-column",
            "status",
            "--map",
            "77=newsletter",
        ],
    );
    let expected = cli_segments(&report);
    assert_eq!(expected["77"]["list"], json!("newsletter"));
    assert_eq!(page_segments(&shown), expected);
}

#[test]
fn the_rule_editor_counts_as_you_type_and_shows_errors_at_their_position() {
    let (dir, _, _) = fixtures("rule");
    let config = dir.join("audlink.toml");
    let good = "country in (\"NL\", \"BE\") and age >= 30";
    let wrong = "country in (\"NL\", \"BE\") and age >= ";
    let typo = "countri = \"NL\"";
    let fixed = "country = \"NL\"";
    let server = Server::start();
    let shown = browse(
        &server,
        &dir,
        "rule",
        json!({
            "files": {"recipients": path(&dir, "data/recipients.csv")},
            "rules": [good, wrong, good, typo, fixed],
            "screenshot_rule": "country in (\"NL\", \"BE\", \"DE\") and age >= 30 and not opted_out",
            "screenshot": "rule-editor.png",
            "screenshot_error": "country in (\"NL\", \"BE\") and agee >= 30",
            "screenshot_error_file": "rule-error.png",
        }),
    );
    let _ = fs::copy(
        dir.join("browser/rule-editor.png"),
        artifacts().join("rule-editor.png"),
    );
    let _ = fs::copy(
        dir.join("browser/rule-error.png"),
        artifacts().join("rule-error.png"),
    );
    let count = |rule: &str| {
        cli(&dir, &config, &["segment", "preview", rule, "--now", NOW])["count"].to_string()
    };
    let outcomes = shown["outcomes"].as_array().expect("outcomes");
    // A good rule: the CLI's count, no error.
    assert_eq!(outcomes[0]["count"], json!(count(good)));
    assert_eq!(outcomes[0]["error"], Value::Null);
    // Cut short: an error at the end of the text, no count.
    let error = &outcomes[1]["error"];
    assert_eq!(outcomes[1]["count"], json!("–"));
    let end = wrong.len().to_string();
    assert_eq!(error["start"], json!(end), "{error}");
    assert!(
        error["text"].as_str().expect("text").contains('^'),
        "{error}"
    );
    // Fixed: the error is gone, the count is back.
    assert_eq!(outcomes[2]["error"], Value::Null);
    assert_eq!(outcomes[2]["count"], json!(count(good)));
    // An unknown column: named, with the span of the name and a suggestion.
    let error = &outcomes[3]["error"];
    assert_eq!(
        (error["start"].clone(), error["end"].clone()),
        (json!("0"), json!("7")),
        "{error}"
    );
    let text = error["text"].as_str().expect("text");
    assert!(
        text.contains("countri") && text.contains("country"),
        "{text}"
    );
    assert_eq!(outcomes[4]["error"], Value::Null);
    assert_eq!(outcomes[4]["count"], json!(count(fixed)));
    assert_ne!(outcomes[4]["count"], outcomes[0]["count"]);
}

/// Runs the export scenario and the CLI's export; checks the downloads equal the CLI's files.
fn check_export(dir: &TempDir, page: Value, cli_args: &[&str]) {
    let config = dir.join("audlink.toml");
    let server = Server::start();
    let shown = browse(&server, dir, "export", page);
    let mut args = vec!["audience", "export"];
    args.extend_from_slice(cli_args);
    let exported = cli(dir, &config, &args);
    let names: Vec<String> = exported["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect();
    assert!(!names.is_empty(), "{exported}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(shown["downloads"], json!(sorted));
    for name in &names {
        let cli_bytes = fs::read(dir.join("out").join(name)).expect("the CLI's file");
        let page_bytes = fs::read(dir.join("browser").join(name)).expect("the downloaded file");
        assert!(
            cli_bytes == page_bytes,
            "{name}: the download differs from the CLI's file"
        );
    }
    let report = &exported["report"];
    let not_exported: BTreeMap<String, Value> = report["not_exported"]
        .as_object()
        .expect("not_exported")
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(shown["notExported"], json!(not_exported));
}

#[test]
fn the_downloaded_export_of_an_imported_list_equals_the_cli_files_byte_for_byte() {
    let (dir, _, _) = fixtures("export-list");
    let config = dir.join("audlink.toml");
    let outbound = format!("data/{GENERATED_OUTBOUND}");
    let report = cli(
        &dir,
        &config,
        &["audience", "import", &outbound, "--datasource", "ecid"],
    );
    let list = report["segments"][0]["list"]
        .as_str()
        .expect("a list")
        .to_owned();
    let timestamp = TIMESTAMP.to_string();
    check_export(
        &dir,
        json!({
            "files": {
                "recipients": path(&dir, "data/recipients.csv"),
                "links": path(&dir, "data/visitors.csv"),
                "audience": [path(&dir, &outbound)],
            },
            "datasource": {"name": "ecid", "kind": "visitor-id", "dpid": 21, "policy": "latest"},
            "now": NOW,
            "members": format!("list:{list}"),
            "trait_id": 4242, "mode": "delta", "timestamp": TIMESTAMP,
            "screenshot": "export-preview.png",
        }),
        &[
            "--list",
            &list,
            "--datasource",
            "ecid",
            "--trait-id",
            "4242",
            "--mode",
            "delta",
            "--timestamp",
            &timestamp,
            "--out",
            "out",
        ],
    );
    let _ = fs::copy(
        dir.join("browser/export-preview.png"),
        artifacts().join("export-preview.png"),
    );
}

#[test]
fn the_downloaded_export_of_a_rule_equals_the_cli_files_byte_for_byte() {
    let (dir, _, _) = fixtures("export-rule");
    let rule = "country in (\"NL\", \"BE\") and age >= 30";
    let timestamp = TIMESTAMP.to_string();
    check_export(
        &dir,
        json!({
            "files": {
                "recipients": path(&dir, "data/recipients.csv"),
                "links": path(&dir, "data/visitors.csv"),
            },
            "datasource": {
                "name": "crm-email", "kind": "declared-id", "dpid": 22, "key_column": "email",
                "encoding": "sha256-email", "profile": "adobe-v1", "policy": "latest",
            },
            "rule": rule, "now": NOW, "members": "rule",
            "trait_id": 77, "mode": "sync", "timestamp": TIMESTAMP,
        }),
        &[
            "--where",
            rule,
            "--now",
            NOW,
            "--audience",
            "nl-be",
            "--datasource",
            "crm-email",
            "--trait-id",
            "77",
            "--mode",
            "sync",
            "--timestamp",
            &timestamp,
            "--out",
            "out",
        ],
    );
}

#[test]
fn a_bad_file_shows_its_name_line_and_reason() {
    let dir = TempDir::new("bad");
    fs::write(dir.join("dup.csv"), "id,country\n1,NL\n2,BE\n1,DE\n").expect("write");
    fs::write(
        dir.join("links.csv"),
        "recipient_id,visitor_id\n1,12345678901234567890123456789012345678\n2,not-a-visitor-id\n",
    )
    .expect("write");
    let server = Server::start();
    let shown = browse(
        &server,
        &dir,
        "bad-files",
        json!({"files": {"recipients": path(&dir, "dup.csv"), "links": path(&dir, "links.csv")}}),
    );
    let error = shown["error"].as_str().expect("an error is shown");
    assert!(
        error.contains("dup.csv") && error.contains("line 4"),
        "{error}"
    );
    assert!(error.contains("duplicate"), "{error}");
    let links = &shown["loads"]["links"];
    assert_eq!(
        (links["rows"].clone(), links["rejected"].clone()),
        (json!(1), json!(1))
    );
    let text = links["text"].as_str().expect("text");
    assert!(text.contains("line 3"), "{text}");
}

#[test]
fn gzip_files_preview_like_the_cli_reads_them() {
    let (dir, _, _) = fixtures("gzip");
    let config = dir.join("audlink.toml");
    for name in ["recipients.csv", GENERATED_OUTBOUND] {
        let plain = fs::read(dir.join(&format!("data/{name}"))).expect("a generated file");
        fs::write(
            dir.join(&format!("data/{name}.gz")),
            audlink_core::format::input::gzip(&plain),
        )
        .expect("write the gzip file");
    }
    let outbound = format!("data/{GENERATED_OUTBOUND}.gz");
    let report = cli(
        &dir,
        &config,
        &["audience", "import", &outbound, "--datasource", "ecid"],
    );
    let server = Server::start();
    let shown = browse(
        &server,
        &dir,
        "import",
        json!({
            "files": {
                "recipients": path(&dir, "data/recipients.csv.gz"),
                "links": path(&dir, "data/visitors.csv"),
                "audience": [path(&dir, &outbound)],
            },
            "datasource": {"name": "ecid", "kind": "visitor-id", "dpid": 21, "policy": "latest"},
        }),
    );
    assert_eq!(shown["loads"]["recipients"]["rows"], json!(3000));
    assert_eq!(page_segments(&shown), cli_segments(&report));
}

#[test]
fn files_dropped_on_the_page_load_like_picked_ones() {
    let (dir, recipients, links) = fixtures("drop");
    let server = Server::start();
    let shown = browse(
        &server,
        &dir,
        "drop",
        json!({"files": {
            "recipients": path(&dir, "data/recipients.csv"),
            "links": path(&dir, "data/visitors.csv"),
        }}),
    );
    let loads = &shown["loads"];
    assert_eq!(loads["recipients"]["name"], json!("recipients.csv"));
    assert_eq!(loads["recipients"]["rows"], recipients["rows"]);
    assert_eq!(loads["links"]["name"], json!("visitors.csv"));
    assert_eq!(loads["links"]["rows"], links["rows"]);
}

#[test]
fn the_page_loads_recipients_from_the_servers_database_and_counts_as_the_cli() {
    let (dir, recipients, links) = fixtures("database");
    let config = dir.join("audlink.toml");
    let token = "page-reader-token-0123456789";
    let mut child = crate::cli::command(dir.path(), &config)
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(root().join("www"))
        .env("AUDLINK_SERVE_TOKENS", format!("page:read:{token}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run audlink serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("audlink serve prints its URL");
    let server = Server {
        child,
        url: line.trim().to_owned(),
    };
    let rules = [
        "country in (\"NL\", \"BE\") and age >= 30",
        "vip and not opted_out",
    ];
    let shown = browse(
        &server,
        &dir,
        "database",
        json!({"token": token, "rules": rules, "screenshot": "database-source.png"}),
    );
    let _ = fs::copy(
        dir.join("browser/database-source.png"),
        artifacts().join("database-source.png"),
    );
    // Every recipient and link the database holds, none rejected.
    let total = cli(&dir, &config, &["segment", "preview", "true"])["total"].clone();
    assert_eq!(shown["loads"]["recipients"]["rows"], total, "{shown}");
    assert_eq!(
        shown["loads"]["recipients"]["rejected"],
        json!(0),
        "{shown}"
    );
    assert!(
        recipients["rows"].as_u64() >= total.as_u64(),
        "{recipients}"
    );
    let shown_links = shown["loads"]["links"]["rows"]
        .as_u64()
        .expect("links rows");
    assert!(
        shown_links > 0 && Some(shown_links) <= links["rows"].as_u64(),
        "{shown} {links}"
    );
    assert_eq!(shown["loads"]["links"]["rejected"], json!(0), "{shown}");
    for (outcome, rule) in shown["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .zip(rules)
    {
        let expected = cli(&dir, &config, &["segment", "preview", rule, "--now", NOW]);
        assert_eq!(outcome["error"], Value::Null, "{rule}: {outcome}");
        assert_eq!(
            outcome["count"],
            json!(expected["count"].to_string()),
            "{rule}"
        );
    }
}
