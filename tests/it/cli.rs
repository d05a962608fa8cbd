//! The `audlink` binary end to end: each test runs the real binary as a child process in a fresh
//! temporary directory (`--db` and `--config` point into it) and checks exit codes, stdout (the
//! `--json` output, parsed) and stderr against the contract of issue #7 (README.md).
//!
//! The binary is `target/debug/audlink`, next to this test executable's `deps/` folder. It is
//! not built by `cargo test` (it belongs to another package): a missing binary, or one older
//! than the sources it is built from, fails the tests with a message saying how to build it
//! (`make test` does).
//!
//! What is covered: generate → init → load → import → preview → export → import of the export
//! gives back the list (`end_to_end_*`); re-imports and repeated `delta` exports change nothing
//! (`idempotent_*`); bad input fails with one line on stderr, empty stdout and nothing written,
//! while bad records inside a readable audience file are counted outcomes (`bad_*`, `a_bad_*`,
//! `an_*`); an import killed with SIGKILL leaves every list exactly before or after
//! (`an_import_killed_*`); `--where` exports select what `segment preview` counts
//! (`where_exports_*`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use audlink_host::cli::GENERATED_OUTBOUND;
use serde_json::{Value, json};

use crate::built::{modified, newest_source, root};

/// The database and configuration file names inside a test's directory.
pub(crate) const DB: &str = "audlink.db";
pub(crate) const CONFIG: &str = "audlink.toml";
/// A fixed `now()` for rules.
const NOW: &str = "2026-01-01T00:00:00Z";
/// A fixed timestamp for export file names.
const TIMESTAMP: &str = "1767300000";

/// A declared-id data source on the `crm_id` column (plain ids: exports give back exactly the
/// ids imported), appended to the template `audlink init` writes.
const CRM_DATASOURCE: &str = r#"
[[datasource]]
name = "crm"
kind = "declared-id"
dpid = 23
key = "crm_id"
encoding = "plain"
"#;

// ---------------------------------------------------------------------------------------------
// Locating the binary

/// `target/debug/audlink` next to this test executable (`target/debug/deps/it-…`), checked to
/// exist and to be newer than the sources it is built from.
pub(crate) fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable is in target/<profile>/deps");
        let binary = profile_dir.join(format!("audlink{}", std::env::consts::EXE_SUFFIX));
        assert!(
            binary.is_file(),
            "{} is missing: build it with `cargo build -p audlink-host` (make test does)",
            binary.display()
        );
        let built = modified(&binary);
        for sources in ["host/src", "core/src", "wasm/src"] {
            if let Some((time, path)) = newest_source(&root().join(sources)) {
                assert!(
                    time <= built,
                    "{} is older than {}: build it with `cargo build -p audlink-host` (make test does)",
                    binary.display(),
                    path.display()
                );
            }
        }
        binary
    })
}

// ---------------------------------------------------------------------------------------------
// Temporary directories and running the binary

/// A fresh directory under the system's temporary directory, removed when dropped (kept, and
/// named on stderr, when the test failed).
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "audlink-cli-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// The binary with `--db` and `--config` in `dir` (the configuration file given), run in
/// `dir`.
pub(crate) fn command(dir: &Path, config: &Path) -> Command {
    let mut command = Command::new(binary());
    command
        .current_dir(dir)
        .env_remove("AUDLINK_DB")
        .arg("--db")
        .arg(dir.join(DB))
        .arg("--config")
        .arg(config);
    command
}

/// Runs `audlink --db DIR/audlink.db --config DIR/audlink.toml ARGS…` in `dir`.
fn audlink(dir: &Path, args: &[&str]) -> Output {
    audlink_with_config(dir, &dir.join(CONFIG), args)
}

fn audlink_with_config(dir: &Path, config: &Path, args: &[&str]) -> Output {
    command(dir, config)
        .args(args)
        .output()
        .expect("cannot run the audlink binary")
}

pub(crate) fn describe(args: &[&str], output: &Output) -> String {
    format!(
        "audlink {}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a command that must succeed; its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let output = audlink(dir, args);
    assert!(output.status.success(), "{}", describe(args, &output));
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs a command with `--json` that must succeed; its parsed stdout.
fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = audlink(dir, &all);
    assert!(output.status.success(), "{}", describe(&all, &output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", describe(&all, &output)))
}

/// Checks a failed run: exit `code`, empty stdout, exactly one non-empty line on stderr
/// (returned).
pub(crate) fn check_failure(args: &[&str], output: &Output, code: i32) -> String {
    let context = describe(args, output);
    assert_eq!(output.status.code(), Some(code), "{context}");
    assert!(
        output.stdout.is_empty(),
        "stdout must stay empty\n{context}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.trim_end_matches('\n');
    assert!(
        !line.trim().is_empty() && !line.contains('\n'),
        "stderr must be one line\n{context}"
    );
    line.to_owned()
}

/// Runs a command that must fail with exit `code`, empty stdout and one line on stderr.
fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    check_failure(args, &audlink(dir, args), code)
}

/// A JSON number as `u64` (panics with the field's name otherwise).
fn n(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what} is not a count: {value}"))
}

// ---------------------------------------------------------------------------------------------
// Setups and state

pub(crate) fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

pub(crate) fn append_config(dir: &Path, text: &str) {
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(dir.join(CONFIG))
        .expect("audlink.toml exists after init");
    file.write_all(text.as_bytes()).expect("append");
}

/// The `crm_id` of recipient `id`: a clean, unique declared id.
fn crm_id(id: u64) -> String {
    format!("CRM-{id:06}")
}

/// `id,crm_id` for recipients `1..=n`.
fn crm_csv(n: u64) -> String {
    let mut csv = String::from("id,crm_id\n");
    for id in 1..=n {
        csv.push_str(&format!("{id},{}\n", crm_id(id)));
    }
    csv
}

/// A database with `n` generated recipients (plus a `crm_id` column and the `crm` data source)
/// and their visitor links; the generated files in `data/`.
pub(crate) fn demo_db(name: &str, n: u64, seed: u64) -> TempDir {
    let dir = TempDir::new(name);
    let p = dir.path();
    let (count, seed) = (n.to_string(), seed.to_string());
    ok(
        p,
        &[
            "-q",
            "generate",
            "--out",
            "data",
            "--recipients",
            &count,
            "--seed",
            &seed,
        ],
    );
    ok(p, &["-q", "init"]);
    append_config(p, CRM_DATASOURCE);
    ok(p, &["-q", "recipients", "load", "data/recipients.csv"]);
    write(&dir.join("crm.csv"), crm_csv(n));
    ok(p, &["-q", "recipients", "load", "crm.csv"]);
    ok(p, &["-q", "visitors", "load", "data/visitors.csv"]);
    dir
}

/// Every list and its members (`list ls`, then `list show` of each).
fn lists(dir: &Path) -> BTreeMap<String, Vec<Value>> {
    let ls = json(dir, &["list", "ls"]);
    let mut out = BTreeMap::new();
    for list in ls["lists"].as_array().expect("lists") {
        let name = list["name"].as_str().expect("a list's name").to_owned();
        let shown = json(dir, &["list", "show", &name]);
        assert_eq!(shown["name"], json!(name));
        let members = shown["members"].as_array().expect("members").clone();
        assert_eq!(
            members.len() as u64,
            n(&list["members"], "list ls members"),
            "list ls and list show disagree on {name}"
        );
        out.insert(name, members);
    }
    out
}

/// The members of one list.
fn members(dir: &Path, list: &str) -> Vec<Value> {
    json(dir, &["list", "show", list])["members"]
        .as_array()
        .expect("members")
        .clone()
}

/// What a failed command must not change: lists, recipients and their columns.
#[derive(Debug, PartialEq)]
struct State {
    lists: BTreeMap<String, Vec<Value>>,
    recipients: u64,
    columns: Vec<String>,
}

fn state(dir: &Path) -> State {
    let all = json(dir, &["segment", "preview", "true", "--sample", "1"]);
    assert_eq!(all["count"], all["total"]);
    let columns = all["sample"][0]
        .as_object()
        .map(|row| row.keys().cloned().collect())
        .unwrap_or_default();
    State {
        lists: lists(dir),
        recipients: n(&all["total"], "total"),
        columns,
    }
}

/// The names of the files in `dir` (none when it does not exist).
pub(crate) fn file_names(dir: &Path) -> BTreeSet<String> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The names in an export's `files`.
fn exported_names(export: &Value) -> BTreeSet<String> {
    export["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["name"].as_str().expect("a file name").to_owned())
        .collect()
}

/// Checks the contract's shape of an import report and its accounting; the segments by
/// segment id.
fn check_import_report(report: &Value) -> BTreeMap<String, Value> {
    assert!(report["import_id"].is_i64(), "import_id: {report}");
    assert!(report["skipped"].is_boolean(), "skipped: {report}");
    assert!(report["totals"].is_object(), "totals: {report}");
    let segments = report["segments"].as_array().expect("segments");
    let mut by_segment = BTreeMap::new();
    let (mut matched, mut unmatched) = (0, 0);
    for s in segments {
        let segment = s["segment"].as_str().expect("segment is a string");
        assert!(s["list"].is_string(), "list: {s}");
        let reasons = s["unmatched_by_reason"]
            .as_object()
            .expect("unmatched_by_reason");
        let codes: BTreeSet<&str> = reasons.keys().map(String::as_str).collect();
        assert_eq!(
            codes,
            BTreeSet::from(["ambiguous", "duplicate", "invalid_format", "no_recipient"]),
            "every reason, zeros included: {s}"
        );
        let by_reason: u64 = reasons.values().map(|v| n(v, "a reason's count")).sum();
        let (ids, m, u) = (
            n(&s["ids"], "ids"),
            n(&s["matched"], "matched"),
            n(&s["unmatched"], "unmatched"),
        );
        n(&s["removed"], "removed");
        let recipients = n(&s["recipients"], "recipients");
        assert_eq!(ids, m + u, "ids = matched + unmatched: {s}");
        assert_eq!(u, by_reason, "unmatched = the sum by reason: {s}");
        assert!(recipients <= m, "recipients <= matched: {s}");
        matched += m;
        unmatched += u;
        by_segment.insert(segment.to_owned(), s.clone());
    }
    assert_eq!(n(&report["totals"]["matched"], "totals.matched"), matched);
    assert_eq!(
        n(&report["totals"]["unmatched"], "totals.unmatched"),
        unmatched
    );
    by_segment
}

fn reason(segment: &Value, code: &str) -> u64 {
    n(&segment["unmatched_by_reason"][code], code)
}

/// The recipient ids (numbers) a preview selects, all of them.
fn selected(dir: &Path, rule: &str) -> Vec<Value> {
    let preview = json(
        dir,
        &[
            "segment", "preview", rule, "--now", NOW, "--sample", "1000000",
        ],
    );
    let sample = preview["sample"].as_array().expect("sample");
    assert_eq!(sample.len() as u64, n(&preview["count"], "count"));
    sample.iter().map(|row| row["id"].clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. End to end

#[test]
fn end_to_end_generate_init_load_import_preview_export_and_back() {
    let dir = TempDir::new("e2e");
    let p = dir.path();

    // generate
    let generated = json(
        p,
        &[
            "generate",
            "--out",
            "data",
            "--recipients",
            "3000",
            "--seed",
            "5",
        ],
    );
    let files = generated["files"].as_array().expect("files");
    assert_eq!(files.len(), 4, "{generated}");
    for file in files {
        let path = Path::new(file["file"].as_str().expect("file"));
        assert!(p.join(path).is_file(), "{} not written", path.display());
    }
    assert!(dir.join("data").join(GENERATED_OUTBOUND).is_file());
    assert_eq!(
        fs::read_to_string(dir.join("data/recipients.csv"))
            .expect("recipients.csv")
            .lines()
            .count(),
        3001
    );

    // init: the database and a commented audlink.toml; a second init keeps the file
    let init = json(p, &["init"]);
    assert_eq!(init["config_written"], json!(true), "{init}");
    assert_eq!(
        init["schema_version"],
        json!(audlink_host::store::SCHEMA_VERSION)
    );
    assert!(dir.join(DB).is_file());
    let template = fs::read_to_string(dir.join(CONFIG)).expect("audlink.toml");
    assert!(template.contains("name = \"ecid\"") && template.contains('#'));
    let again = json(p, &["init"]);
    assert_eq!(again["config_written"], json!(false), "{again}");
    assert_eq!(fs::read_to_string(dir.join(CONFIG)).unwrap(), template);
    append_config(p, CRM_DATASOURCE);

    // recipients load, then a second file adding a column to the same recipients
    let load = json(p, &["recipients", "load", "data/recipients.csv"]);
    assert_eq!(
        (&load["inserted"], &load["updated"], &load["rejected"]),
        (&json!(3000), &json!(0), &json!(0)),
        "{load}"
    );
    let nl = r#"country = "NL" and age >= 30"#;
    let nl_before = json(p, &["segment", "preview", nl])["count"].clone();
    write(&dir.join("crm.csv"), crm_csv(3000));
    let crm = json(p, &["recipients", "load", "crm.csv"]);
    assert_eq!(
        (&crm["inserted"], &crm["updated"], &crm["added_columns"]),
        (&json!(0), &json!(3000), &json!(["crm_id"])),
        "{crm}"
    );
    assert_eq!(
        json(p, &["segment", "preview", nl])["count"],
        nl_before,
        "an upsert of other columns keeps the loaded ones"
    );

    // visitors load
    let visitors = json(p, &["visitors", "load", "data/visitors.csv"]);
    assert!(n(&visitors["inserted"], "inserted") >= 3000, "{visitors}");
    assert_eq!(visitors["rejected"], json!(0), "{visitors}");

    // audience import of the outbound file
    let outbound = format!("data/{GENERATED_OUTBOUND}");
    let import = json(
        p,
        &["audience", "import", &outbound, "--datasource", "ecid"],
    );
    assert_eq!(import["skipped"], json!(false));
    let segments = check_import_report(&import);
    assert!(!segments.is_empty(), "{import}");
    assert_eq!(import["totals"]["lines"], json!(3000));
    // The generator writes some malformed visitor ids: counted, not failures.
    let malformed: u64 = segments.values().map(|s| reason(s, "invalid_format")).sum();
    assert!(malformed > 0, "no malformed identifier counted");
    let after_import = lists(p);
    for s in segments.values() {
        let list = s["list"].as_str().unwrap();
        assert_eq!(
            after_import[list].len() as u64,
            n(&s["recipients"], "recipients"),
            "list {list} after a first import holds the segment's recipients"
        );
    }

    // the stored report again
    let id = import["import_id"].to_string();
    let report = json(p, &["report", &id]);
    assert_eq!(report["segments"], import["segments"]);
    assert_eq!(report["totals"], import["totals"]);

    // segment preview
    let preview = json(
        p,
        &["segment", "preview", nl, "--by", "country", "--sample", "5"],
    );
    let count = n(&preview["count"], "count");
    assert_eq!(preview["total"], json!(3000));
    assert!(count > 0 && count < 3000, "{preview}");
    let sample = preview["sample"].as_array().expect("sample");
    assert_eq!(sample.len() as u64, count.min(5));
    for row in sample {
        assert_eq!(row["country"], json!("NL"), "{row}");
        assert!(n(&row["age"], "age") >= 30, "{row}");
    }
    assert_eq!(preview["breakdown"]["column"], json!("country"));
    assert_eq!(
        preview["breakdown"]["values"],
        json!([{"value": "NL", "count": count}])
    );
    assert_eq!(
        (
            &preview["breakdown"]["other"],
            &preview["breakdown"]["null"]
        ),
        (&json!(0), &json!(0))
    );

    // the largest imported list: in_list() agrees with list show
    let (list, list_members) = after_import
        .iter()
        .max_by_key(|(name, m)| (m.len(), std::cmp::Reverse(name.to_string())))
        .map(|(name, m)| (name.clone(), m.clone()))
        .expect("lists");
    let in_list = json(
        p,
        &[
            "segment",
            "preview",
            &format!("in_list({list:?})"),
            "--sample",
            "100000",
        ],
    );
    let in_list_ids: Vec<Value> = in_list["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(in_list_ids, list_members, "in_list({list:?}) and list show");

    // export the list (visitor ids), then import the export back
    let export = json(
        p,
        &[
            "audience",
            "export",
            "--list",
            &list,
            "--mode",
            "sync",
            "--datasource",
            "ecid",
            "--trait-id",
            "901",
            "--out",
            "out1",
            "--timestamp",
            TIMESTAMP,
        ],
    );
    let names = exported_names(&export);
    assert!(!names.is_empty(), "{export}");
    assert_eq!(
        file_names(&dir.join("out1")),
        names,
        "the folder receives only the onboarding files"
    );
    for name in &names {
        assert!(
            name.starts_with(&format!("ftp_dpm_21_{TIMESTAMP}")),
            "{name}"
        );
    }
    let er = &export["report"];
    assert_eq!(n(&er["members"], "members"), list_members.len() as u64);
    let not_exported: u64 = export["not_exported_by_reason"]
        .as_object()
        .expect("not_exported_by_reason")
        .values()
        .map(|v| n(v, "not exported"))
        .sum();
    assert_eq!(
        n(&er["exported_recipients"], "exported_recipients") + not_exported,
        list_members.len() as u64,
        "{export}"
    );
    let skipped_members: BTreeSet<String> = export["not_exported"]
        .as_array()
        .expect("not_exported")
        .iter()
        .map(|r| r["recipient"].to_string())
        .collect();
    assert_eq!(skipped_members.len() as u64, not_exported, "{export}");

    let mut args = vec!["audience", "import"];
    let paths: Vec<String> = names.iter().map(|f| format!("out1/{f}")).collect();
    args.extend(paths.iter().map(String::as_str));
    args.extend(["--datasource", "ecid", "--map", "901=back-ecid"]);
    let back = json(p, &args);
    let back_segments = check_import_report(&back);
    let s = &back_segments["901"];
    assert_eq!(s["list"], json!("back-ecid"));
    assert_eq!(s["unmatched"], json!(0), "{back}");
    assert_eq!(s["ids"], er["identifiers"], "{back}");
    // Every exported member comes back; the members that were not exported do not.
    let expected: Vec<Value> = list_members
        .iter()
        .filter(|m| !skipped_members.contains(&m.to_string()))
        .cloned()
        .collect();
    assert_eq!(members(p, "back-ecid"), expected);

    // Declared ids (plain): a list from a plain id list, exported and imported back, is the
    // same list. Only recipients that are not opted out are exported, so the list holds those.
    let chosen = selected(p, r#"country = "NL" and not opted_out"#);
    assert!(chosen.len() > 10);
    let mut ids_file = String::new();
    for id in &chosen {
        ids_file.push_str(&crm_id(id.as_u64().expect("integer ids")));
        ids_file.push('\n');
    }
    // a stranger, a malformed id (':' is not allowed) and a repeated id: counted, exit 0
    ids_file.push_str(&format!(
        "{}\nbad:id\n{}\n",
        crm_id(999_999),
        crm_id(chosen[0].as_u64().unwrap())
    ));
    write(&dir.join("crm_ids.txt"), ids_file);
    let imported = json(
        p,
        &[
            "audience",
            "import",
            "crm_ids.txt",
            "--datasource",
            "crm",
            "--format",
            "ids",
            "--segment",
            "77",
            "--map",
            "77=crm-list",
        ],
    );
    let s = &check_import_report(&imported)["77"];
    assert_eq!(s["list"], json!("crm-list"));
    assert_eq!(n(&s["ids"], "ids"), chosen.len() as u64 + 3, "{s}");
    assert_eq!(n(&s["matched"], "matched"), chosen.len() as u64, "{s}");
    assert_eq!(
        (
            reason(s, "invalid_format"),
            reason(s, "no_recipient"),
            reason(s, "duplicate"),
            reason(s, "ambiguous")
        ),
        (1, 1, 1, 0),
        "{s}"
    );
    let crm_list = members(p, "crm-list");
    assert_eq!(crm_list, chosen, "members sorted by id, as JSON numbers");

    let export = json(
        p,
        &[
            "audience",
            "export",
            "--list",
            "crm-list",
            "--datasource",
            "crm",
            "--trait-id",
            "902",
            "--out",
            "out2",
            "--timestamp",
            TIMESTAMP,
        ],
    );
    assert_eq!(
        export["report"]["identifiers"],
        json!(chosen.len()),
        "{export}"
    );
    let names = exported_names(&export);
    assert_eq!(file_names(&dir.join("out2")), names);
    let mut args = vec!["audience", "import"];
    let paths: Vec<String> = names.iter().map(|f| format!("out2/{f}")).collect();
    args.extend(paths.iter().map(String::as_str));
    args.extend(["--datasource", "crm", "--map", "902=crm-back"]);
    let back = json(p, &args);
    let s = &check_import_report(&back)["902"];
    assert_eq!(
        (&s["ids"], &s["unmatched"]),
        (&json!(chosen.len()), &json!(0))
    );
    assert_eq!(members(p, "crm-back"), crm_list);
}

// ---------------------------------------------------------------------------------------------
// 2. Idempotency

#[test]
fn idempotent_reimport_and_repeated_delta_export() {
    let dir = demo_db("idem", 2000, 3);
    let p = dir.path();
    let outbound = format!("data/{GENERATED_OUTBOUND}");
    let first = json(
        p,
        &["audience", "import", &outbound, "--datasource", "ecid"],
    );
    assert_eq!(first["skipped"], json!(false));
    check_import_report(&first);
    let before = lists(p);
    assert!(!before.is_empty());

    let second = json(
        p,
        &["audience", "import", &outbound, "--datasource", "ecid"],
    );
    assert_eq!(second["skipped"], json!(true), "{second}");
    assert_eq!(second["import_id"], first["import_id"]);
    assert_eq!(second["segments"], first["segments"]);
    assert_eq!(second["totals"], first["totals"]);
    assert_eq!(lists(p), before, "a skipped re-import changes no list");
    let human = ok(
        p,
        &["audience", "import", &outbound, "--datasource", "ecid"],
    );
    assert!(
        human.contains("already applied"),
        "the human output says so: {human}"
    );

    // The same bytes under the same name elsewhere are the same input.
    let copy = dir.join("copy").join(GENERATED_OUTBOUND);
    write(&copy, fs::read(dir.join(&outbound)).unwrap());
    let third = json(
        p,
        &[
            "audience",
            "import",
            copy.to_str().unwrap(),
            "--datasource",
            "ecid",
        ],
    );
    assert_eq!(third["skipped"], json!(true), "{third}");
    assert_eq!(third["import_id"], first["import_id"]);
    assert_eq!(lists(p), before);

    // delta twice: the second run has no changes and writes no file
    let list = before.keys().next().unwrap().clone();
    let delta = |timestamp: &str| {
        json(
            p,
            &[
                "audience",
                "export",
                "--list",
                &list,
                "--audience",
                "delta-audience",
                "--mode",
                "delta",
                "--datasource",
                "ecid",
                "--trait-id",
                "7",
                "--out",
                "delta",
                "--timestamp",
                timestamp,
            ],
        )
    };
    let run1 = delta("1767300000");
    let written = exported_names(&run1);
    assert!(!written.is_empty(), "{run1}");
    assert!(n(&run1["report"]["added"], "added") > 0, "{run1}");
    assert_eq!(file_names(&dir.join("delta")), written);
    let run2 = delta("1767300060");
    assert_eq!(run2["files"], json!([]), "{run2}");
    assert_eq!(
        (&run2["report"]["added"], &run2["report"]["removed"]),
        (&json!(0), &json!(0)),
        "{run2}"
    );
    assert_ne!(run2["export_id"], run1["export_id"], "a run of its own");
    assert_eq!(run2["report"]["snapshot"], run1["report"]["snapshot"]);
    assert_eq!(
        file_names(&dir.join("delta")),
        written,
        "no second set of changes"
    );
    let run3 = delta("1767300120");
    assert_eq!(run3["files"], json!([]), "{run3}");
    assert_eq!(file_names(&dir.join("delta")), written);
}

// ---------------------------------------------------------------------------------------------
// 3. Bad input

#[test]
fn bad_input_fails_with_one_line_and_writes_nothing() {
    let dir = demo_db("bad", 500, 9);
    let p = dir.path();
    let outbound = format!("data/{GENERATED_OUTBOUND}");
    ok(
        p,
        &[
            "-q",
            "audience",
            "import",
            &outbound,
            "--datasource",
            "ecid",
        ],
    );
    let before = state(p);
    assert!(!before.lists.is_empty() && before.recipients == 500);

    // recipients without an `id` column (with new rows that must not appear)
    write(&dir.join("noid.csv"), "key,country\n9001,NL\n9002,BE\n");
    let line = fails(p, &["recipients", "load", "noid.csv"], 1);
    assert!(
        line.contains("noid.csv") && line.contains("\"id\""),
        "{line}"
    );
    assert_eq!(state(p), before);

    // duplicate ids in one file
    write(
        &dir.join("dup.csv"),
        "id,country\n9001,NL\n9002,BE\n9001,DE\n",
    );
    let line = fails(p, &["recipients", "load", "dup.csv"], 1);
    assert!(line.contains("dup.csv"), "{line}");
    assert_eq!(state(p), before);

    // a column whose type conflicts with the type fixed at the first load
    write(&dir.join("age.csv"), "id,age,extra\n9001,old,1\n");
    let line = fails(p, &["recipients", "load", "age.csv"], 1);
    assert!(line.contains("\"age\""), "names the column: {line}");
    assert_eq!(state(p), before, "no row, no column added");

    // a truncated gzip file in a multi-file import whose other file is fine
    let mut good = String::new();
    for id in 1..=50 {
        good.push_str(&crm_id(id));
        good.push('\n');
    }
    write(&dir.join("good.txt"), &good);
    let mut more = String::new();
    for id in 51..=500 {
        more.push_str(&crm_id(id));
        more.push('\n');
    }
    let gz = audlink_core::sample::gzip(more.as_bytes());
    write(&dir.join("more.txt.gz"), &gz[..gz.len() / 2]);
    let ids_import = |files: &[&str]| {
        let mut args = vec!["audience", "import"];
        args.extend_from_slice(files);
        args.extend([
            "--datasource",
            "crm",
            "--format",
            "ids",
            "--segment",
            "88",
            "--map",
            "88=gz-list",
        ]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = ids_import(&["good.txt", "more.txt.gz"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = fails(p, &args, 1);
    assert!(line.contains("more.txt.gz"), "names the file: {line}");
    assert_eq!(state(p), before, "no list changed");
    // Nothing was recorded: the good file alone is a new import.
    let args = ids_import(&["good.txt"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let alone = json(p, &args);
    assert_eq!(alone["skipped"], json!(false), "{alone}");
    assert_eq!(members(p, "gz-list").len(), 50);
    let before = state(p);

    // a missing path
    let line = fails(p, &["recipients", "load", "missing.csv"], 1);
    assert!(line.contains("missing.csv"), "{line}");
    let line = fails(p, &["visitors", "load", "missing.csv"], 1);
    assert!(line.contains("missing.csv"), "{line}");
    let line = fails(
        p,
        &["audience", "import", "missing.sync", "--datasource", "ecid"],
        1,
    );
    assert!(line.contains("missing.sync"), "{line}");
    // a file the name of which is no known format
    write(&dir.join("unknown.bin"), "x\n");
    let line = fails(
        p,
        &["audience", "import", "unknown.bin", "--datasource", "ecid"],
        1,
    );
    assert!(line.contains("unknown.bin"), "{line}");
    assert_eq!(state(p), before);

    // an unknown data source (import and export; the export's folder is not created)
    let line = fails(
        p,
        &["audience", "import", &outbound, "--datasource", "nope"],
        2,
    );
    assert!(line.contains("nope"), "{line}");
    let line = fails(
        p,
        &[
            "audience",
            "export",
            "--list",
            "gz-list",
            "--datasource",
            "nope",
            "--trait-id",
            "1",
            "--out",
            "never",
        ],
        2,
    );
    assert!(line.contains("nope"), "{line}");
    assert!(!dir.join("never").exists());
    assert_eq!(state(p), before);

    // an invalid audlink.toml
    let bad = dir.join("bad.toml");
    write(
        &bad,
        "[[datasource]]\nname = \"ecid\"\nkind = \"visitor-id\"\ndpid = 21\nkye = 2\n",
    );
    let args = ["audience", "import", &outbound, "--datasource", "ecid"];
    let line = check_failure(&args, &audlink_with_config(p, &bad, &args), 2);
    assert!(line.contains("bad.toml") && line.contains("kye"), "{line}");
    write(&bad, "[[datasource\n");
    let line = check_failure(&args, &audlink_with_config(p, &bad, &args), 2);
    assert!(line.contains("bad.toml"), "{line}");
    assert_eq!(state(p), before);

    // a rule that does not type-check is a usage error
    let output = audlink(p, &["segment", "preview", "agee > 3"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("did you mean \"age\""));
}

#[test]
fn bad_records_inside_an_audience_file_are_counted_not_failures() {
    let dir = demo_db("bad-records", 500, 9);
    let p = dir.path();
    let outbound = fs::read_to_string(dir.join("data").join(GENERATED_OUTBOUND)).unwrap();
    // A later delivery: 20 good lines, a line that is no record, a malformed visitor id, a
    // blank line and a bad segment list.
    let mut text: String = outbound.lines().take(20).flat_map(|l| [l, "\n"]).collect();
    let first_id = outbound.split(' ').next().unwrap();
    text.push_str(&format!("this is not a line\n123 1000\n\n{first_id} abc\n"));
    write(&dir.join("S3_1_iter_1767312000000.sync"), text);
    let report = json(
        p,
        &[
            "audience",
            "import",
            "S3_1_iter_1767312000000.sync",
            "--datasource",
            "ecid",
        ],
    );
    let segments = check_import_report(&report);
    let totals = &report["totals"];
    assert_eq!(totals["lines"], json!(24), "{totals}");
    assert!(n(&totals["bad_records"], "bad_records") >= 1, "{totals}");
    assert_eq!(totals["blank_lines"], json!(1), "{totals}");
    assert!(
        segments
            .values()
            .map(|s| reason(s, "invalid_format"))
            .sum::<u64>()
            >= 1,
        "the malformed id is counted: {report}"
    );
    // The unmatched rows are stored with their reasons.
    let id = report["import_id"].to_string();
    let stored = json(p, &["report", &id, "--unmatched", "--limit", "1000"]);
    let rows = stored["unmatched"].as_array().expect("unmatched rows");
    assert_eq!(
        rows.len() as u64,
        n(&totals["unmatched"], "unmatched"),
        "{stored}"
    );
}

/// The contract: a bad flag is a usage error (exit 2) with one line on stderr.
#[test]
fn a_bad_flag_is_exit_2_with_one_line() {
    let dir = TempDir::new("flag");
    let p = dir.path();
    fails(p, &["audience", "import", "x.sync", "--bogus"], 2);
    fails(p, &["list", "frobnicate"], 2);
    fails(p, &["audience", "export", "--datasource", "ecid"], 2);
    assert!(!dir.join(DB).exists(), "nothing written");
}

/// A path that exists but cannot be read as a file fails the job, naming it.
#[test]
fn an_unreadable_path_is_exit_1_naming_it() {
    let dir = demo_db("unreadable", 100, 2);
    let p = dir.path();
    let before = state(p);
    fs::create_dir_all(dir.join("folder.csv")).unwrap();
    let line = fails(p, &["recipients", "load", "folder.csv"], 1);
    assert!(line.contains("folder.csv"), "{line}");
    let line = fails(
        p,
        &[
            "audience",
            "import",
            "folder.csv",
            "--datasource",
            "crm",
            "--format",
            "ids",
            "--segment",
            "1",
        ],
        1,
    );
    assert!(line.contains("folder.csv"), "{line}");
    assert_eq!(state(p), before);
}

/// `--json` output into a reader that stopped early (`| head`) is not a failure.
#[test]
fn json_output_into_a_closed_pipe_is_not_a_failure() {
    let dir = demo_db("pipe", 3000, 4);
    let p = dir.path();
    for json_flag in [false, true] {
        let mut args = vec!["segment", "preview", "true", "--sample", "3000"];
        if json_flag {
            args.insert(0, "--json");
        }
        // More than a pipe buffer of output: the child cannot finish writing before the read
        // end is closed.
        let mut child = command(p, &dir.join(CONFIG))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("wait");
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{}",
            describe(&args, &output)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Atomicity under SIGKILL

/// When to kill the import.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// As soon as the write-ahead log grows (the write transaction is under way).
    WalGrows,
    /// After the process has run this long.
    After(Duration),
}

/// Copies the database (and a write-ahead log, if any) and the configuration into a fresh
/// directory.
fn copy_db(from: &Path, name: &str) -> TempDir {
    let to = TempDir::new(name);
    for file in [DB, "audlink.db-wal", CONFIG] {
        let source = from.join(file);
        if source.exists() {
            fs::copy(&source, to.join(file)).expect("copy");
        }
    }
    to
}

#[test]
fn an_import_killed_with_sigkill_leaves_every_list_as_before_or_after() {
    let base = demo_db("kill", 200_000, 11);
    let b = base.path();
    let outbound = base.join("data").join(GENERATED_OUTBOUND);
    let outbound = outbound.to_str().unwrap().to_owned();
    // An earlier delivery of part of the audience, so there are lists before.
    let text = fs::read_to_string(&outbound).unwrap();
    let early: String = text.lines().take(20_000).flat_map(|l| [l, "\n"]).collect();
    write(&base.join("early/S3_1_iter_1767139200000.sync"), early);
    ok(
        b,
        &[
            "-q",
            "audience",
            "import",
            "early/S3_1_iter_1767139200000.sync",
            "--datasource",
            "ecid",
        ],
    );
    let before = lists(b);
    assert!(!before.is_empty());

    // The state after a complete import, in a copy.
    let complete = copy_db(b, "kill-complete");
    let started = Instant::now();
    let report = json(
        complete.path(),
        &["audience", "import", &outbound, "--datasource", "ecid"],
    );
    let full = started.elapsed();
    assert_eq!(report["skipped"], json!(false));
    let after = lists(complete.path());
    assert_ne!(
        after, before,
        "the import must change the lists to prove anything"
    );

    for (attempt, when) in [
        Kill::WalGrows,
        Kill::After(full / 4),
        Kill::After(full / 2),
        Kill::After(full * 9 / 10),
    ]
    .into_iter()
    .enumerate()
    {
        let copy = copy_db(b, &format!("kill-{attempt}"));
        let dir = copy.path();
        let wal = dir.join("audlink.db-wal");
        let mut child = command(dir, &dir.join(CONFIG))
            .args([
                "-q",
                "audience",
                "import",
                &outbound,
                "--datasource",
                "ecid",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the import");
        let started = Instant::now();
        let outcome = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break format!("finished before the kill ({status})");
            }
            let due = match when {
                Kill::WalGrows => {
                    fs::metadata(&wal).is_ok_and(|m| m.len() > 0) || started.elapsed() > full * 10
                }
                Kill::After(after) => started.elapsed() >= after,
            };
            if due {
                // SIGKILL on Unix.
                child.kill().expect("kill");
                child.wait().expect("wait");
                break format!("killed after {:?}", started.elapsed());
            }
            sleep(Duration::from_millis(1));
        };

        // The database opens, and every list is as before or as after, all together.
        let now = lists(dir);
        let which = if now == before {
            "before"
        } else if now == after {
            "after"
        } else {
            let changed: Vec<&String> = now
                .keys()
                .chain(before.keys())
                .filter(|k| now.get(*k) != before.get(*k) && now.get(*k) != after.get(*k))
                .collect();
            panic!(
                "attempt {attempt} ({when:?}, {outcome}): the lists are neither before nor after the import; lists in neither state: {changed:?}"
            );
        };
        eprintln!("sigkill attempt {attempt} ({when:?}): {outcome}; lists as {which}");

        // A complete import now gives the state after: applied when the killed one was not,
        // skipped when it was.
        let again = json(
            dir,
            &["audience", "import", &outbound, "--datasource", "ecid"],
        );
        assert_eq!(
            again["skipped"],
            json!(which == "after"),
            "attempt {attempt}: {outcome}, lists {which}"
        );
        assert_eq!(lists(dir), after, "attempt {attempt}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. `--where` and `segment preview` agree

#[test]
fn where_exports_and_segment_preview_select_what_the_js_build_selects() {
    let dir = demo_db("where", 3000, 5);
    let p = dir.path();
    let rules = [
        r#"country = "NL" and age >= 30"#,
        "vip",
        "last_order > now() - 90d",
        r#"country in ("BE", "DE") or age is null"#,
    ];
    for (i, rule) in rules.into_iter().enumerate() {
        let preview = json(
            p,
            &[
                "segment", "preview", rule, "--now", NOW, "--sample", "1000000",
            ],
        );
        let count = n(&preview["count"], "count");
        assert!(count > 0 && count < 3000, "{rule}: {count}");
        let rows = preview["sample"].as_array().unwrap();
        assert_eq!(rows.len() as u64, count);

        let audience = format!("where-{i}");
        let trait_id = (300 + i).to_string();
        let out = format!("out-{i}");
        let export = json(
            p,
            &[
                "audience",
                "export",
                "--where",
                rule,
                "--now",
                NOW,
                "--audience",
                &audience,
                "--datasource",
                "crm",
                "--trait-id",
                &trait_id,
                "--out",
                &out,
                "--timestamp",
                TIMESTAMP,
            ],
        );
        assert_eq!(
            n(&export["report"]["members"], "members"),
            count,
            "{rule}: export --where and segment preview disagree"
        );
        // Every selected recipient that is not opted out is in the files, and nothing else.
        let expected: BTreeSet<String> = rows
            .iter()
            .filter(|row| row["opted_out"] != json!(true))
            .map(|row| crm_id(row["id"].as_u64().unwrap()))
            .collect();
        let mut sent = BTreeSet::new();
        for name in exported_names(&export) {
            let text = fs::read_to_string(dir.join(&out).join(&name)).expect("an onboarding file");
            for line in text.lines() {
                let id = line.split('\t').next().unwrap().to_owned();
                assert!(line.ends_with(&format!("d_sid={trait_id}")), "{line}");
                assert!(sent.insert(id), "{line} twice");
            }
        }
        assert_eq!(sent, expected, "{rule}");

        // The browser build evaluates the same rule over the same recipients file to the same
        // recipients (SQLite ran the CLI's; the core's evaluator runs the js build's).
        let steps = json!([
            {"op": "loadRecipients", "name": "recipients.csv", "file": "data/recipients.csv"},
            {"op": "previewRule", "spec": {"rule": rule, "now": NOW, "sample": 1_000_000}},
        ]);
        write(&p.join("steps.json"), steps.to_string());
        let outcomes = crate::js_node::run_node(p);
        let js = &outcomes[1]["ok"];
        assert_eq!(
            js["count"]["selected"].as_u64(),
            Some(count),
            "{rule}: {}",
            outcomes[1]
        );
        let js_ids: Vec<String> = js["sample"]["rows"]
            .as_array()
            .expect("sample rows")
            .iter()
            .map(|row| {
                row["id"]
                    .as_str()
                    .expect("ids are strings in JS")
                    .to_owned()
            })
            .collect();
        let cli_ids: Vec<String> = rows.iter().map(|row| row["id"].to_string()).collect();
        assert_eq!(
            js_ids, cli_ids,
            "{rule}: the js build selects other recipients"
        );
    }
    // Without --audience a rule export is a usage error.
    fails(
        p,
        &[
            "audience",
            "export",
            "--where",
            "vip",
            "--datasource",
            "crm",
            "--trait-id",
            "1",
            "--out",
            "x",
        ],
        2,
    );
}

// ---------------------------------------------------------------------------------------------
// Large recipients files, read in parts

/// Runs `audlink --json ARGS…` with parts of `part_bytes` bytes (`AUDLINK_PART_BYTES`).
fn in_parts(dir: &Path, part_bytes: Option<usize>, args: &[&str]) -> Output {
    let mut command = command(dir, &dir.join(CONFIG));
    if let Some(bytes) = part_bytes {
        command.env("AUDLINK_PART_BYTES", bytes.to_string());
    } else {
        command.env_remove("AUDLINK_PART_BYTES");
    }
    command
        .args(args)
        .output()
        .expect("cannot run the audlink binary")
}

/// Stored recipients as text rows, and the column registry (name, type, position).
type RecipientsDump = (Vec<Vec<String>>, Vec<(String, String, i64)>);

/// Every stored recipient as text, ordered by id, and the column registry.
fn dump_recipients(dir: &Path) -> RecipientsDump {
    let db = rusqlite::Connection::open(dir.join(DB)).expect("the database opens");
    let mut registry = db
        .prepare("SELECT name, type, position FROM recipient_columns ORDER BY position")
        .expect("the registry");
    let registry: Vec<(String, String, i64)> = registry
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("registry rows")
        .collect::<Result<_, _>>()
        .expect("registry rows");
    let mut select = db
        .prepare("SELECT * FROM recipients ORDER BY id")
        .expect("the recipients");
    let width = select.column_count();
    let rows = select
        .query_map([], |r| {
            (0..width)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                        rusqlite::types::ValueRef::Integer(n) => format!("int {n}"),
                        rusqlite::types::ValueRef::Real(x) => format!("real {x:?}"),
                        rusqlite::types::ValueRef::Text(t) => {
                            format!("text {}", String::from_utf8_lossy(t))
                        }
                        rusqlite::types::ValueRef::Blob(b) => format!("blob {b:?}"),
                    })
                })
                .collect::<Result<Vec<String>, rusqlite::Error>>()
        })
        .expect("recipient rows")
        .collect::<Result<_, _>>()
        .expect("recipient rows");
    (rows, registry)
}

/// A recipients file whose columns call for different types in different parts: integers,
/// then floats; nothing, then dates; booleans, then a word (a string column keeps `TRUE`
/// verbatim); a quoted cell with a line break; a bad row and empty lines.
fn mixed_recipients(rows: u64) -> String {
    let mut csv = String::from("id,amount,since,flag,note\n");
    for id in 1..=rows {
        let amount = if id > rows - 5 {
            format!("{id}.25")
        } else {
            id.to_string()
        };
        let since = if id > rows / 2 && id % 3 == 0 {
            "2024-02-29"
        } else {
            ""
        };
        let flag = match id {
            _ if id == rows - 1 => "maybe",
            _ if id % 2 == 0 => "TRUE",
            _ => "false",
        };
        let note = if id % 17 == 0 {
            "\"two\nlines, one cell\""
        } else {
            "plain"
        };
        let _ = writeln!(csv, "{id},{amount},{since},{flag},{note}");
        if id % 50 == 0 {
            csv.push_str("\nnot,a,whole,row\n");
        }
    }
    csv
}

#[test]
fn a_recipients_file_read_in_parts_loads_exactly_what_one_read_loads() {
    let csv = mixed_recipients(400);
    let mut loaded = Vec::new();
    for (label, file, bytes, part_bytes) in [
        ("whole", "r.csv", csv.clone().into_bytes(), None),
        ("parts", "r.csv", csv.clone().into_bytes(), Some(97)),
        (
            "gzip parts",
            "r.csv.gz",
            audlink_core::format::input::gzip(csv.as_bytes()),
            Some(211),
        ),
    ] {
        let dir = TempDir::new(&format!("parts-{}", label.replace(' ', "-")));
        ok(dir.path(), &["init"]);
        write(&dir.join(file), &bytes);
        let args = ["--json", "recipients", "load", file];
        let output = in_parts(dir.path(), part_bytes, &args);
        assert!(
            output.status.success(),
            "{label}: {}",
            describe(&args, &output)
        );
        let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        let (rows, registry) = dump_recipients(dir.path());
        loaded.push((label, report, rows, registry, dir));
    }
    let (_, whole_report, whole_rows, whole_registry, _) = &loaded[0];
    assert_eq!(n(&whole_report["rows"], "rows"), 400);
    assert_eq!(n(&whole_report["rejected"], "rejected"), 8);
    // The types the whole file calls for: float, date, string.
    let types: Vec<&str> = whole_registry.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["int", "float", "date", "string", "string"],
        "{whole_registry:?}"
    );
    assert!(
        whole_rows.iter().any(|r| r[3] == "text TRUE"),
        "verbatim strings"
    );
    for (label, report, rows, registry, _) in &loaded[1..] {
        assert_eq!(report["rows"], whole_report["rows"], "{label}");
        assert_eq!(report["inserted"], whole_report["inserted"], "{label}");
        assert_eq!(report["rejected"], whole_report["rejected"], "{label}");
        assert_eq!(
            report["rejected_rows"], whole_report["rejected_rows"],
            "{label}"
        );
        assert_eq!(
            report["added_columns"], whole_report["added_columns"],
            "{label}"
        );
        let theirs: Vec<&str> = registry.iter().map(|(_, t, _)| t.as_str()).collect();
        assert_eq!(theirs, types, "{label}: column types");
        assert_eq!(rows, whole_rows, "{label}: stored rows");
    }

    // A reload in parts into the loaded database keeps the stored types and updates every row.
    let (_, _, _, _, dir) = &loaded[1];
    let output = in_parts(
        dir.path(),
        Some(97),
        &["--json", "recipients", "load", "r.csv"],
    );
    assert!(
        output.status.success(),
        "{}",
        describe(&["reload"], &output)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(n(&report["updated"], "updated"), 400);
    assert_eq!(n(&report["inserted"], "inserted"), 0);
    assert_eq!(dump_recipients(dir.path()).0, *whole_rows);
}

#[test]
fn an_id_repeated_in_a_later_part_fails_like_one_in_the_same_part() {
    let mut csv = String::from("id,name\n");
    for id in 1..=300 {
        let _ = writeln!(csv, "{id},n{id}");
    }
    // Line 2 holds id 1; line 302 repeats it.
    csv.push_str("1,again\n");
    let mut messages = Vec::new();
    for part_bytes in [None, Some(64)] {
        let dir = TempDir::new(&format!("parts-dup-{}", part_bytes.is_some()));
        ok(dir.path(), &["init"]);
        write(&dir.join("dup.csv"), &csv);
        let args = ["recipients", "load", "dup.csv"];
        let output = in_parts(dir.path(), part_bytes, &args);
        let line = check_failure(&args, &output, 1);
        assert!(
            line.contains("recipient id on line 302 repeats line 2"),
            "{line}"
        );
        let db = rusqlite::Connection::open(dir.join(DB)).expect("the database opens");
        let tables: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'recipients'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(tables, 0, "nothing written");
        messages.push(line);
    }
    assert_eq!(messages[0], messages[1]);
}
