//! `audlink sync` end to end: the real binary runs `[[job]]`s of `audlink.toml` against the
//! local folder, moto (`exchange.rs`) with the Experience Cloud emulator (`emulator.rs`), and a
//! fake S3 that fails on purpose (`fake_s3.rs`).
//!
//! Every database starts from `demo_db` (generated recipients, plain `crm` declared ids of data
//! source 23) with the list `vip` = recipients 1..=10. The jobs: `vip-out` exports `vip` (the
//! onboarding file is uploaded under `onboarding/date=…/ftp_dpm_23_<ts>.sync`), `platform-in`
//! imports what the platform puts under `outbound/` (Audience Manager outbound files of
//! declared ids of data source 23, `S3_1234_23_full_<ms>.sync`).
//!
//! What is covered: the full cycle on the folder and on moto + the emulator (export, the
//! platform's file imported into a list that equals what was placed, a second run that imports
//! nothing and uploads no second copy); faults (500, 503, dropped connections, a doubled
//! listing, an object changed between runs, a process SIGKILLed between an upload and its
//! record); the looping `sync` stopped by SIGTERM, idle or in the middle of an upload; `sync
//! status`; configuration errors.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{TempDir, append_config, check_failure, command, demo_db, describe, write};
use crate::emulator::{CLIENT_ID, CLIENT_SECRET, Emulator, ORG};
use crate::exchange::{Auth, BUCKET, Moto, runtime};
use crate::fake_s3::FakeS3;

/// The jobs every test runs (the import job's mapping is appended by the tests that use one).
const JOBS: &str = r#"
[[job]]
name = "vip-out"
kind = "export"
every = "1h"
datasource = "crm"
list = "vip"
trait_id = 4242

[[job]]
name = "platform-in"
kind = "import"
every = "15m"
datasource = "crm"
prefix = "outbound/"
"#;

/// The outbound file the platform delivers in these tests.
const OUTBOUND: &str = "outbound/S3_1234_23_full_1767300000000.sync";

/// The `crm_id` of recipient `id` (as `cli.rs` generates them).
fn crm(id: u64) -> String {
    format!("CRM-{id:06}")
}

/// An outbound file putting recipients `ids` into `segment`.
fn outbound(segment: &str, ids: &[u64]) -> Vec<u8> {
    ids.iter()
        .map(|id| format!("{} {segment}\n", crm(*id)))
        .collect::<String>()
        .into_bytes()
}

/// A database with the list `vip` (recipients 1..=10), `extra` appended to its configuration.
fn setup(name: &str, extra: &str) -> TempDir {
    let dir = demo_db(name, 40, 9);
    let ids: String = (1..=10).map(|id| crm(id) + "\n").collect();
    write(&dir.join("vip.ids"), ids);
    let args = [
        "-q",
        "audience",
        "import",
        "vip.ids",
        "--datasource",
        "crm",
        "--format",
        "ids",
        "--segment",
        "vip",
        "--map",
        "vip=vip",
    ];
    let out = command(dir.path(), &dir.join("audlink.toml"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&args, &out));
    append_config(dir.path(), extra);
    dir
}

/// The binary in `dir` with `env` set (and every credential variable cleared otherwise).
fn audlink(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = command(dir, &dir.join("audlink.toml"));
    for var in [
        "AUDLINK_S3_ACCESS_KEY_ID",
        "AUDLINK_S3_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AUDLINK_CLIENT_ID",
        "AUDLINK_CLIENT_SECRET",
        "AUDLINK_ORG_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    audlink(dir, env).args(args).output().unwrap()
}

/// `sync --once --json` that must succeed: its runs.
fn sync_ok(dir: &Path, env: &[(&str, &str)]) -> Vec<Value> {
    let args = ["--json", "sync", "--once"];
    let out = run(dir, env, &args);
    assert!(out.status.success(), "{}", describe(&args, &out));
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = parsed["runs"].as_array().unwrap().clone();
    for r in &runs {
        assert_eq!(r["status"], "ok", "{r}");
    }
    runs
}

/// The run of `job` among `runs`.
fn of<'a>(runs: &'a [Value], job: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["job"] == job)
        .unwrap_or_else(|| panic!("no run of {job}: {runs:?}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn uploaded_keys(run: &Value) -> Vec<String> {
    run["report"]["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect()
}

/// The members of list `name` (recipient ids).
fn members(dir: &Path, name: &str) -> Vec<u64> {
    let args = ["--json", "list", "show", name];
    let out = run(dir, &[], &args);
    assert!(out.status.success(), "{}", describe(&args, &out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    shown["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap())
        .collect()
}

/// `sync status --json`'s runs.
fn status(dir: &Path) -> Vec<Value> {
    let args = ["--json", "sync", "status", "--limit", "100"];
    let out = run(dir, &[], &args);
    assert!(out.status.success(), "{}", describe(&args, &out));
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    parsed["runs"].as_array().unwrap().clone()
}

/// Every file below `root`, as `/`-separated paths relative to it.
fn files_below(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}

/// The local folder through the whole cycle: export uploads the onboarding file, the platform's
/// outbound file becomes the list it names, a third run imports nothing and uploads nothing.
#[test]
fn sync_once_on_the_local_folder_exports_imports_and_then_does_nothing() {
    let dir = setup(
        "sync-local",
        &format!("{JOBS}map = {{ \"5555\" = \"from-platform\" }}\n"),
    );
    let p = dir.path();
    let exchange = dir.join("exchange");

    let first = sync_ok(p, &[]);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["job"], "vip-out", "file order");
    let keys = uploaded_keys(of(&first, "vip-out"));
    assert_eq!(keys.len(), 1, "{first:?}");
    assert!(
        keys[0].starts_with("onboarding/date=") && keys[0].contains("/ftp_dpm_23_"),
        "{keys:?}"
    );
    let sent = std::fs::read_to_string(exchange.join(&keys[0])).unwrap();
    let counts = &of(&first, "vip-out")["report"]["report"];
    assert_eq!(counts["members"], 10, "{counts}");
    assert_eq!(json!(sent.lines().count()), counts["identifiers"], "{sent}");
    assert!(sent.lines().count() > 5, "{sent}");
    assert!(sent.lines().all(|l| l.ends_with("\td_sid=4242")), "{sent}");
    assert!(strings(&of(&first, "platform-in")["report"]["imported"]).is_empty());

    // The platform delivers a full outbound file (and a manifest that is not an audience file).
    write(&exchange.join(OUTBOUND), outbound("5555", &[3, 7, 9]));
    write(
        &exchange.join("outbound/S3_1234_23_full_1767300000000.info"),
        "{}",
    );
    let second = sync_ok(p, &[]);
    let import = of(&second, "platform-in");
    assert_eq!(strings(&import["report"]["imported"]), [OUTBOUND]);
    assert_eq!(
        strings(&import["report"]["ignored"]),
        ["outbound/S3_1234_23_full_1767300000000.info"]
    );
    assert_eq!(members(p, "from-platform"), [3, 7, 9]);
    let export = of(&second, "vip-out");
    assert_eq!(export["report"]["unchanged"], true, "{export}");
    assert!(uploaded_keys(export).is_empty());

    let before = files_below(&exchange);
    let third = sync_ok(p, &[]);
    let import = of(&third, "platform-in");
    assert!(
        strings(&import["report"]["imported"]).is_empty(),
        "{import}"
    );
    assert_eq!(strings(&import["report"]["skipped"]), [OUTBOUND]);
    assert!(uploaded_keys(of(&third, "vip-out")).is_empty());
    assert_eq!(
        files_below(&exchange),
        before,
        "no second copy, nothing new"
    );
    let onboarding: Vec<_> = before
        .iter()
        .filter(|k| k.starts_with("onboarding/"))
        .collect();
    assert_eq!(onboarding, [&keys[0]]);
    assert_eq!(members(p, "from-platform"), [3, 7, 9]);

    // Six runs stored, newest first, each with what it moved.
    let runs = status(p);
    assert_eq!(runs.len(), 6);
    assert!(runs.iter().all(|r| r["status"] == "ok"), "{runs:?}");
    let ids: Vec<u64> = runs.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let moved: Vec<(String, String)> = runs
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap().clone())
        .map(|o| {
            (
                o["action"].as_str().unwrap().to_owned(),
                o["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moved,
        [
            ("imported".to_owned(), OUTBOUND.to_owned()),
            ("uploaded".to_owned(), keys[0].clone())
        ]
    );
    let out = run(
        p,
        &[],
        &["sync", "status", "--job", "platform-in", "--limit", "1"],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("platform-in\timport\tok") && text.contains("0 imported, 0 uploaded"),
        "{text}"
    );
}

/// One job failing is recorded and reported; the others still run; the exit code says so.
#[test]
fn a_failing_job_is_recorded_and_the_others_still_run() {
    let broken = JOBS.replace("list = \"vip\"", "list = \"no-such-list\"");
    let dir = setup("sync-failing", &broken);
    let p = dir.path();
    write(
        &dir.join("exchange").join(OUTBOUND),
        outbound("5555", &[2, 4]),
    );
    let args = ["-q", "--json", "sync", "--once"];
    let out = run(p, &[], &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&args, &out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.trim_end();
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(
        line.contains("1 of 2 jobs failed")
            && line.contains("vip-out")
            && line.contains("no-such-list"),
        "{line}"
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = parsed["runs"].as_array().unwrap();
    assert_eq!(of(runs, "vip-out")["status"], "failed");
    assert_eq!(of(runs, "platform-in")["status"], "ok");
    assert_eq!(members(p, "segment-5555"), [2, 4]);
    let stored = status(p);
    assert_eq!(stored[1]["status"], "failed");
    assert!(
        stored[1]["error"]
            .as_str()
            .unwrap()
            .contains("no-such-list"),
        "{stored:?}"
    );
}

/// The full cycle on moto with the emulator: the trait and segment are created through the API,
/// the onboarding file lands in the bucket, the outbound file placed for that segment becomes
/// its list, and a second run changes nothing anywhere.
#[test]
fn sync_once_on_s3_with_the_platform_runs_the_full_cycle() {
    let moto = Moto::start("sync-cycle", Auth::Open);
    let emu = Emulator::start();
    let config = format!(
        "\n[exchange]\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\nallow_http = true\nmax_retries = 2\nbackoff_base_ms = 1\n\n[remote]\nims_url = \"{url}\"\naam_url = \"{url}\"\norg_id = \"{ORG}\"\ntrait_folder_id = 7\nsegment_folder_id = 8\nmax_retries = 2\nbackoff_base_ms = 1\n{JOBS}",
        moto.endpoint,
        url = emu.url(),
    );
    let dir = setup("sync-s3", &config);
    let p = dir.path();
    let env = [
        ("AUDLINK_S3_ACCESS_KEY_ID", moto.key_id.as_str()),
        ("AUDLINK_S3_SECRET_ACCESS_KEY", moto.secret.as_str()),
        ("AUDLINK_CLIENT_ID", CLIENT_ID),
        ("AUDLINK_CLIENT_SECRET", CLIENT_SECRET),
    ];
    let bucket = moto.bucket();
    let rt = runtime();
    let list = |prefix: &str| -> Vec<String> {
        rt.block_on(audlink_host::exchange::Storage::list(&bucket, prefix))
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    };

    let first = sync_ok(p, &env);
    let export = of(&first, "vip-out");
    let keys = uploaded_keys(export);
    assert_eq!(list("onboarding/"), keys);
    assert_eq!(keys.len(), 1);
    let segment = export["report"]["remote"]["segment"]["sid"]
        .as_u64()
        .unwrap();
    assert_eq!(export["report"]["remote"]["segment"]["created"], true);
    assert_eq!(emu.traits().len(), 1);
    assert_eq!(emu.segments().len(), 1);
    assert_eq!(emu.segments()[0]["name"], "vip");
    assert_eq!(json!(segment), emu.segments()[0]["sid"]);

    let placed = [1, 5, 6, 11];
    rt.block_on(audlink_host::exchange::Storage::put(
        &bucket,
        OUTBOUND,
        outbound(&segment.to_string(), &placed),
    ))
    .unwrap();
    let second = sync_ok(p, &env);
    assert_eq!(
        strings(&of(&second, "platform-in")["report"]["imported"]),
        [OUTBOUND]
    );
    assert_eq!(members(p, &format!("segment-{segment}")), placed);
    assert!(uploaded_keys(of(&second, "vip-out")).is_empty());

    let third = sync_ok(p, &env);
    assert!(strings(&of(&third, "platform-in")["report"]["imported"]).is_empty());
    assert!(uploaded_keys(of(&third, "vip-out")).is_empty());
    assert_eq!(list(""), [keys[0].clone(), OUTBOUND.to_owned()]);
    assert_eq!(emu.traits().len(), 1, "no second trait");
    assert_eq!(emu.segments().len(), 1, "no second segment");
    assert_eq!(members(p, &format!("segment-{segment}")), placed);
}

/// A configuration pointing at the fake S3, with bounded fast retries.
fn fake_config(fake: &FakeS3) -> String {
    format!(
        "\n[exchange]\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\nallow_http = true\nmax_retries = 2\nbackoff_base_ms = 1\ntimeout_ms = 30000\n{JOBS}",
        fake.endpoint
    )
}

const FAKE_ENV: [(&str, &str); 2] = [
    ("AUDLINK_S3_ACCESS_KEY_ID", "AKIDFAKE"),
    ("AUDLINK_S3_SECRET_ACCESS_KEY", "fake-secret-value-123"),
];

/// `sync --once` that must fail: its one stderr line (stdout holds the runs).
fn sync_fails(dir: &Path) -> String {
    let args = ["-q", "--json", "sync", "--once"];
    let out = run(dir, &FAKE_ENV, &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&args, &out));
    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert!(!stderr.contains('\n'), "{stderr}");
    assert!(!stderr.contains("fake-secret-value-123"), "{stderr}");
    stderr
}

/// 500s, 503s, dropped connections, a doubled listing and a changed object during sync: each
/// run completes correctly or fails naming the key and bucket, and re-runs reach one state.
#[test]
fn faults_during_sync_fail_clearly_or_complete_and_never_duplicate() {
    let fake = FakeS3::start();
    let dir = setup("sync-faults", &fake_config(&fake));
    let p = dir.path();

    // A bucket that keeps answering 500: both jobs fail after the bounded retries.
    fake.fail_next(500, 1000);
    let line = sync_fails(p);
    assert!(line.contains("2 of 2 jobs failed"), "{line}");
    assert!(
        line.contains("cannot put \"onboarding/date=") && line.contains(BUCKET),
        "{line}"
    );
    assert!(
        line.contains("cannot list \"outbound/\"") && line.contains("500"),
        "{line}"
    );
    fake.heal();
    assert!(fake.keys().is_empty());

    // Two 503s: retried, the run completes; the export's run (begun by the failed run) is
    // resumed with its timestamp.
    fake.fail_next(503, 2);
    let runs = sync_ok(p, &FAKE_ENV);
    let keys = uploaded_keys(of(&runs, "vip-out"));
    assert_eq!(keys.len(), 1);
    assert_eq!(of(&runs, "vip-out")["report"]["resumed"], true);
    assert_eq!(fake.keys(), keys);

    // Two dropped connections: retried; the placed object is imported.
    fake.put(OUTBOUND, &outbound("5555", &[1, 2, 3]));
    fake.drop_next(2);
    let runs = sync_ok(p, &FAKE_ENV);
    assert_eq!(
        strings(&of(&runs, "platform-in")["report"]["imported"]),
        [OUTBOUND]
    );
    assert_eq!(members(p, "segment-5555"), [1, 2, 3]);

    // Every connection dropped: a clear failure naming the prefix and bucket.
    fake.drop_next(1000);
    let line = sync_fails(p);
    assert!(
        line.contains("cannot list \"outbound/\"") && line.contains(BUCKET),
        "{line}"
    );
    fake.heal();

    // A listing that returns every object twice: the new object is imported once.
    let second = "outbound/S3_1234_23_full_1767300000001.sync";
    fake.put(second, &outbound("6666", &[4, 5]));
    fake.double_listings(true);
    let runs = sync_ok(p, &FAKE_ENV);
    let import = of(&runs, "platform-in");
    assert_eq!(strings(&import["report"]["imported"]), [second]);
    assert_eq!(strings(&import["report"]["skipped"]), [OUTBOUND]);
    assert_eq!(members(p, "segment-6666"), [4, 5]);
    fake.heal();

    // An object that changes between runs is imported again.
    fake.put(OUTBOUND, &outbound("5555", &[8, 9]));
    let runs = sync_ok(p, &FAKE_ENV);
    assert_eq!(
        strings(&of(&runs, "platform-in")["report"]["imported"]),
        [OUTBOUND]
    );
    assert_eq!(members(p, "segment-5555"), [8, 9]);
    assert_eq!(members(p, "segment-6666"), [4, 5]);

    // Nothing new: nothing imported, nothing uploaded; still one onboarding object.
    let runs = sync_ok(p, &FAKE_ENV);
    assert!(strings(&of(&runs, "platform-in")["report"]["imported"]).is_empty());
    assert!(uploaded_keys(of(&runs, "vip-out")).is_empty());
    let onboarding: Vec<String> = fake
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("onboarding/"))
        .collect();
    assert_eq!(onboarding, keys);
    // Each imported object is recorded once per change, in the run that imported it.
    let imported: Vec<String> = status(p)
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap().clone())
        .filter(|o| o["action"] == "imported")
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(imported, [OUTBOUND, second, OUTBOUND]);
}

/// Waits (at most a minute; not a timing assertion) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process killed after its upload reached the bucket and before the run was recorded: the
/// re-run uploads the same key again (one object) and records the run; the killed run is marked
/// interrupted.
#[test]
fn a_sync_killed_between_upload_and_record_reaches_the_same_state_when_rerun() {
    let fake = FakeS3::start();
    let dir = setup("sync-kill", &fake_config(&fake));
    let p = dir.path();
    fake.hang_puts(true);
    let mut child = audlink(p, &FAKE_ENV)
        .args(["--json", "sync", "--once", "--job", "vip-out"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the upload to reach the bucket", || !fake.keys().is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    let stored = fake.keys();
    assert_eq!(stored.len(), 1);
    let left = status(p);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["status"], "running", "killed before recording");
    assert!(left[0]["objects"].as_array().unwrap().is_empty());

    fake.hang_puts(false);
    let runs = sync_ok(p, &FAKE_ENV);
    let export = of(&runs, "vip-out");
    assert_eq!(uploaded_keys(export), stored, "the same key again");
    assert_eq!(export["report"]["resumed"], true);
    assert_eq!(fake.keys(), stored, "exactly one object");
    let sent = String::from_utf8(fake.object(&stored[0]).unwrap()).unwrap();
    assert_eq!(
        json!(sent.lines().count()),
        export["report"]["report"]["identifiers"]
    );
    assert!(sent.lines().all(|l| l.ends_with("\td_sid=4242")), "{sent}");
    assert_eq!(fake.puts(), 2);
    let runs = status(p);
    let vip: Vec<&Value> = runs.iter().filter(|r| r["job"] == "vip-out").collect();
    assert_eq!(vip.len(), 2, "{runs:?}");
    assert_eq!(vip[0]["status"], "ok");
    assert_eq!(vip[0]["objects"][0]["key"], json!(stored[0]));
    assert_eq!(vip[0]["objects"].as_array().unwrap().len(), 1);
    assert_eq!(vip[1]["status"], "interrupted");
    assert!(vip[1]["error"].as_str().unwrap().contains("killed"));
    // And a further run sends nothing.
    let runs = sync_ok(p, &FAKE_ENV);
    assert!(uploaded_keys(of(&runs, "vip-out")).is_empty());
    assert_eq!(fake.keys(), stored);
}

/// `audlink sync` keeps running jobs until SIGTERM, then exits 0 with its runs stored.
#[test]
fn sync_stops_cleanly_on_sigterm() {
    let dir = setup("sync-loop", JOBS);
    let p = dir.path();
    let child = audlink(p, &[])
        .args(["--json", "sync"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("both jobs' first runs", || {
        status(p).iter().filter(|r| r["status"] == "ok").count() >= 2
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&["sync"], &out));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["job"], "vip-out");
    assert_eq!(lines[1]["job"], "platform-in");
    let runs = status(p);
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["status"] == "ok"), "{runs:?}");
    assert!(runs.iter().all(|r| r["finished_at"].is_string()));
}

/// A signal that arrives while an upload is under way lets that step finish — the upload is
/// answered, the run recorded `ok` with its object and the snapshot stored — and then `sync`
/// exits 0 without starting the next job.
#[test]
fn a_signal_during_an_upload_lets_the_step_finish_then_sync_exits_0() {
    use std::io::BufRead;
    let fake = FakeS3::start();
    let dir = setup("sync-signal", &fake_config(&fake));
    let p = dir.path();
    fake.hang_puts(true);
    let mut child = audlink(p, &FAKE_ENV)
        .args(["--json", "sync"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    wait_until("the upload to reach the bucket", || !fake.keys().is_empty());
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // The process says it got the signal while its PUT is still unanswered; then release it.
    loop {
        let line = received
            .recv_timeout(Duration::from_secs(60))
            .expect("sync said nothing about the signal");
        if line.contains("signal received") {
            break;
        }
    }
    fake.hang_puts(false);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&["sync"], &out));
    let printed: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "the next job was not started: {printed:?}"
    );
    assert_eq!(printed[0]["job"], "vip-out");
    assert_eq!(printed[0]["status"], "ok");
    let runs = status(p);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["objects"][0]["key"], json!(fake.keys()[0]));
    // The snapshot was stored: the next export sends nothing.
    let args = ["--json", "sync", "--once", "--job", "vip-out"];
    let out = run(p, &FAKE_ENV, &args);
    assert!(out.status.success(), "{}", describe(&args, &out));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["runs"][0]["report"]["unchanged"], true, "{again}");
    assert_eq!(fake.puts(), 1);
}

/// Bad `[[job]]` tables are exit 2 with one line naming the job, the key and its line.
#[test]
fn bad_job_tables_are_refused_with_their_line() {
    let dir = TempDir::new("sync-config");
    let p = dir.path();
    let out = run(p, &[], &["-q", "init"]);
    assert!(out.status.success());
    let base = std::fs::read_to_string(dir.join("audlink.toml")).unwrap();
    let base_lines = base.lines().count();
    let job = |body: &str| {
        format!("{base}\n[[job]]\nname = \"in\"\nkind = \"import\"\ndatasource = \"ecid\"\n{body}")
    };
    for (text, wanted, line) in [
        (
            job("every = \"15m\"\nprefix = \"a/\"\nprefx = \"b/\"\n"),
            "prefx",
            base_lines + 8,
        ),
        (
            job("every = \"15\"\nprefix = \"a/\"\n"),
            "every = \"15\" is not an interval",
            base_lines + 6,
        ),
        (
            job("every = \"1h\"\nprefix = \"a/\"\nlist = \"vip\"\n"),
            "list is a key of export jobs",
            base_lines + 8,
        ),
        (
            job("every = \"1h\"\nprefix = \"a/\"\n")
                + "\n[[job]]\nname = \"in\"\nkind = \"import\"\ndatasource = \"ecid\"\nevery = \"1m\"\nprefix = \"b/\"\n",
            "job \"in\": the name is taken by the job at line",
            base_lines + 10,
        ),
        (
            job("every = \"1h\"\nprefix = \"a/\"\ndatasource2 = 1\n"),
            "datasource2",
            base_lines + 8,
        ),
    ] {
        std::fs::write(dir.join("audlink.toml"), &text).unwrap();
        let args = ["sync", "--once"];
        let line_text = check_failure(&args, &run(p, &[], &args), 2);
        assert!(line_text.contains(wanted), "{line_text}\n{text}");
        assert!(
            line_text.contains(&format!("line {line}")),
            "{line_text}\n{text}"
        );
    }
    std::fs::write(
        dir.join("audlink.toml"),
        job("every = \"1h\"\nprefix = \"a/\"\n"),
    )
    .unwrap();
    let args = ["sync", "--once", "--job", "nope"];
    let line = check_failure(&args, &run(p, &[], &args), 2);
    assert!(line.contains("\"nope\"") && line.contains("in"), "{line}");
    let out = run(p, &[], &["sync", "status"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "no runs yet (audlink sync --once runs every job)\n"
    );
}

#[test]
fn the_lock_and_the_downloads_go_where_the_sync_table_says() {
    let dir = setup(
        "sync-paths",
        &format!(
            "{JOBS}map = {{ \"5555\" = \"from-platform\" }}\n\n[sync]\nlock_file = \"state/sync.lock\"\nscratch_dir = \"state/scratch\"\n"
        ),
    );
    let p = dir.path();
    std::fs::create_dir_all(p.join("state/scratch")).unwrap();
    write(
        &dir.join("exchange").join(OUTBOUND),
        outbound("5555", &[2, 4]),
    );
    let runs = sync_ok(p, &[]);
    assert_eq!(
        strings(&of(&runs, "platform-in")["report"]["imported"]),
        [OUTBOUND]
    );
    assert_eq!(members(p, "from-platform"), [2, 4]);
    assert!(
        p.join("state/sync.lock").is_file(),
        "the configured lock file"
    );
    assert!(
        !p.join("audlink.db.sync-lock").exists(),
        "no lock beside the database when [sync] names one"
    );
    let left: Vec<_> = std::fs::read_dir(p.join("state/scratch"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the run's downloads are removed: {left:?}");

    // Another process holding the configured lock keeps a second sync out.
    let held = std::fs::File::open(p.join("state/sync.lock")).unwrap();
    held.try_lock().unwrap();
    let out = run(p, &[], &["sync", "--once"]);
    let line = check_failure(&["sync", "--once"], &out, 1);
    assert!(
        line.contains("another audlink sync is running") && line.contains("state/sync.lock"),
        "{line}"
    );
}
