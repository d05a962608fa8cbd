//! The `js` front door (wasm-bindgen, Node build in `target/js/nodejs/`, made by `make js`) gives
//! the answers of the native dispatch.
//!
//! Each test writes fixture files and a `steps.json` to a temporary directory, runs
//! `node tests/js/run.mjs <dir>` (which runs the steps through the JS `Workspace` and prints one
//! outcome per step as JSON), runs the same steps natively through
//! `audlink_wasm::dispatch::Workspace`, and compares outcome by outcome.
//!
//! The native side is turned into what the JS API promises, written out here independently of
//! `wasm/src/js.rs`: recipient keys (list changes' `added`/`removed`, `not_exported[].recipient`,
//! a preview sample's `id`) become strings, the export snapshot an array of identifiers, file
//! bytes `{"hex": …}` (JS prints its `Uint8Array`s that way), an error
//! `{"is_error": true, …the DispatchError's fields}` (JS prints `instanceof Error`, `message`
//! and the error's own properties). Then both sides are normalized the same way: every number
//! becomes an f64, because JS has only doubles and `JSON.stringify` writes `1` where serde_json
//! writes `1.0` for a float and keeps integers as integers — `Number(1) != Number(1.0)` in
//! serde_json, though the values are the same. Nothing else is normalized: field names, nulls,
//! strings and the order of arrays must be equal, and export files byte-identical.
//!
//! A missing Node build fails the tests (run `make js`); so does a build older than the Rust
//! sources it is made from, which would compare stale code.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use audlink_core::export::Snapshot;
use audlink_core::format::recipients;
use audlink_core::import::RecipientKeys;
use audlink_core::recipients::RecipientKey;
use audlink_core::sample;
use audlink_wasm::dispatch::{
    DispatchError, ExportSpec, ImportFileSpec, ImportSpec, LoadOptions, PreviewSpec, SqlSpec,
    Workspace, format_of_name, rule_sql, unmatched_page,
};
use serde_json::{Value, json};

use crate::built::{modified, newest_source, root};

const NOW: &str = "2026-01-01T00:00:00Z";

/// Checks the Node build exists and is not older than the sources it is built from.
fn require_node_build() {
    let dir = root().join("target/js/nodejs");
    let wasm = dir.join("audlink_wasm_bg.wasm");
    for file in [dir.join("audlink_wasm.js"), wasm.clone()] {
        assert!(
            file.is_file(),
            "{} is missing: run `make js` (the Node build of the js front door) first",
            file.display()
        );
    }
    let built = modified(&wasm);
    for sources in ["core/src", "wasm/src"] {
        if let Some((time, path)) = newest_source(&root().join(sources)) {
            assert!(
                time <= built,
                "the Node build {} is older than {}: run `make js`",
                wasm.display(),
                path.display()
            );
        }
    }
}

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("audlink-js-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `tests/js/run.mjs` on `dir` and returns its outcomes.
pub(crate) fn run_node(dir: &Path) -> Vec<Value> {
    require_node_build();
    let script = root().join("tests/js/run.mjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (needed for the js front door tests): {e}"));
    assert!(
        output.status.success(),
        "node {} failed ({}):\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "node printed no JSON array ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn keys(keys: &RecipientKeys) -> Value {
    keys.iter().map(|k| Value::String(k.to_string())).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A step's JSON as a dispatch type.
macro_rules! spec {
    ($value:expr) => {
        serde_json::from_value($value.clone()).expect("the test's specs are valid")
    };
}

/// Runs one step natively, as the JS API presents its result.
fn native_step(ws: &mut Workspace, dir: &Path, step: &Value) -> Result<Value, DispatchError> {
    let read = |file: &Value| fs::read(dir.join(file.as_str().expect("file name"))).expect("read");
    let name = || step["name"].as_str().expect("name");
    Ok(match step["op"].as_str().expect("op") {
        op @ ("loadRecipients" | "loadLinks") => {
            let bytes = read(&step["file"]);
            let options: LoadOptions = if step["options"].is_null() {
                LoadOptions::default()
            } else {
                spec!(step["options"])
            };
            let summary = if op == "loadRecipients" {
                ws.load_recipients(name(), &bytes, options)?
            } else {
                ws.load_links(name(), &bytes, options)?
            };
            json!(summary)
        }
        "setList" => {
            let members: Vec<RecipientKey> = spec!(step["members"]);
            let count = members.len();
            ws.set_list(name(), members);
            json!(count)
        }
        "import" => {
            let spec: ImportSpec = spec!(step["spec"]);
            let files: Vec<(ImportFileSpec, Vec<u8>)> = step["files"]
                .as_array()
                .expect("files")
                .iter()
                .map(|f| {
                    let file = ImportFileSpec {
                        name: f["name"].as_str().expect("name").to_owned(),
                        format: serde_json::from_value(f["format"].clone()).expect("format"),
                    };
                    (file, read(&f["file"]))
                })
                .collect();
            let files: Vec<(ImportFileSpec, &[u8])> = files
                .iter()
                .map(|(f, b)| (f.clone(), b.as_slice()))
                .collect();
            let result = ws.import(&spec, &files)?;
            let lists: Vec<Value> = result
                .lists
                .iter()
                .map(|c| {
                    json!({"list": c.list, "replaced": c.replaced, "added": keys(&c.added),
                           "removed": keys(&c.removed), "members": c.members})
                })
                .collect();
            json!({"lists": lists, "last_applied": result.last_applied, "report": result.report})
        }
        "export" => {
            let spec: ExportSpec = spec!(step["spec"]);
            let snapshot: Vec<String> = if step["snapshot"].is_null() {
                Vec::new()
            } else {
                spec!(step["snapshot"])
            };
            let result = ws.export(&spec, &Snapshot::new(snapshot))?;
            let files: Vec<Value> = result
                .files
                .iter()
                .map(|f| json!({"name": f.name, "lines": f.lines, "bytes": {"hex": hex(&f.bytes)}}))
                .collect();
            let not_exported: Vec<Value> = result
                .not_exported
                .iter()
                .map(|n| {
                    let mut value = json!(n);
                    value["recipient"] = Value::String(n.recipient.to_string());
                    value
                })
                .collect();
            json!({"files": files, "not_exported": not_exported,
                   "snapshot": result.snapshot.identifiers(), "report": result.report})
        }
        "previewRule" => {
            let spec: PreviewSpec = spec!(step["spec"]);
            let preview = ws.preview_rule(&spec)?;
            let mut value = json!(preview);
            for (row, sampled) in value["sample"]["rows"]
                .as_array_mut()
                .expect("sample rows")
                .iter_mut()
                .zip(&preview.sample.rows)
            {
                row["id"] = Value::String(sampled.id.to_string());
            }
            value
        }
        "ruleSql" => {
            let spec: SqlSpec = spec!(step["spec"]);
            json!(rule_sql(&spec)?)
        }
        "importPreview" => {
            let spec: ImportSpec = spec!(step["spec"]);
            let files: Vec<(ImportFileSpec, Vec<u8>)> = step["files"]
                .as_array()
                .expect("files")
                .iter()
                .map(|f| {
                    let file = ImportFileSpec {
                        name: f["name"].as_str().expect("name").to_owned(),
                        format: serde_json::from_value(f["format"].clone()).expect("format"),
                    };
                    (file, read(&f["file"]))
                })
                .collect();
            let files: Vec<(ImportFileSpec, &[u8])> = files
                .iter()
                .map(|(f, b)| (f.clone(), b.as_slice()))
                .collect();
            let (preview, unmatched) = ws.import_preview(&spec, &files)?;
            let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
            for row in &unmatched {
                *by_reason.entry(row.reason.code()).or_default() += 1;
            }
            let mut value = json!(preview);
            value["unmatched_total"] = json!(unmatched.len());
            value["unmatched_by_reason"] = json!(by_reason);
            UNMATCHED.with(|kept| *kept.borrow_mut() = unmatched);
            value
        }
        "unmatchedPage" => UNMATCHED.with(|kept| {
            let kept = kept.borrow();
            let count = |key: &str| step[key].as_u64().expect("a count") as usize;
            let (total, rows) = unmatched_page(
                &kept,
                count("offset"),
                count("limit"),
                step["reason"].as_str(),
            );
            json!({"total": total, "rows": rows})
        }),
        "formatOfName" => json!(format_of_name(name())),
        other => panic!("unknown step {other}"),
    })
}

thread_local! {
    /// The native side's unmatched rows of the last `importPreview` (the JS `Workspace` keeps
    /// them itself); one test per thread.
    static UNMATCHED: std::cell::RefCell<Vec<audlink_core::import::UnmatchedId>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs the steps natively: one outcome per step, as `run.mjs` prints them.
fn run_native(dir: &Path, steps: &[Value]) -> Vec<Value> {
    let mut ws = Workspace::new();
    steps
        .iter()
        .map(|step| match native_step(&mut ws, dir, step) {
            Ok(value) => json!({ "ok": value }),
            Err(error) => {
                let mut value = json!(error);
                value["is_error"] = Value::Bool(true);
                json!({ "error": value })
            }
        })
        .collect()
}

/// Every number as an f64 (see the module documentation).
fn normalize(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().expect("finite")),
        Value::Array(items) => items.iter().map(normalize).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect(),
        other => other.clone(),
    }
}

/// The first place where `a` and `b` differ, as a path with both values.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
        (Value::Object(x), Value::Object(y)) if x.keys().eq(y.keys()) => x
            .iter()
            .find_map(|(k, v)| first_difference(&format!("{path}.{k}"), v, &y[k])),
        _ if a == b => None,
        _ => {
            let short = |v: &Value| {
                let text = v.to_string();
                text.chars().take(400).collect::<String>()
            };
            Some(format!(
                "{path}:\n  js:     {}\n  native: {}",
                short(a),
                short(b)
            ))
        }
    }
}

/// Runs `steps` on the fixtures in `dir` through Node and natively; asserts equal outcomes and
/// returns the native ones (normalized) and the JS progress reports by step.
fn differential(dir: &Path, steps: &[Value]) -> (Vec<Value>, BTreeMap<usize, Value>) {
    fs::write(
        dir.join("steps.json"),
        serde_json::to_vec(steps).expect("json"),
    )
    .expect("write");
    let mut js = run_node(dir);
    let native = run_native(dir, steps);
    assert_eq!(js.len(), steps.len(), "node printed one outcome per step");
    let mut progress = BTreeMap::new();
    for (i, outcome) in js.iter_mut().enumerate() {
        if let Some(events) = outcome.as_object_mut().and_then(|o| o.remove("progress")) {
            progress.insert(i, events);
        }
    }
    let js = normalize(&Value::Array(js));
    let native = normalize(&Value::Array(native));
    if let Some(difference) = first_difference("outcomes", &js, &native) {
        panic!("the JS front door and the native dispatch differ at {difference}");
    }
    let Value::Array(native) = native else {
        unreachable!()
    };
    (native, progress)
}

/// Visitor id (38 digits) of each recipient of a generated links CSV: its first link.
fn visitor_of(links_csv: &[u8]) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for line in String::from_utf8_lossy(links_csv).lines().skip(1) {
        let mut fields = line.split(',');
        let (Some(recipient), Some(visitor)) = (fields.next(), fields.next()) else {
            continue;
        };
        out.entry(recipient.parse().expect("recipient"))
            .or_insert_with(|| visitor.to_owned());
    }
    out
}

/// Valid visitor ids no recipient is linked to.
fn unknown_visitor(i: u64) -> String {
    format!(
        "{:038}",
        77_000_000_000_000_000_000_000_000_000_000_000u128 + u128::from(i)
    )
}

const N: u64 = 2000;

fn data_source() -> Value {
    json!({"name": "web", "dpid": 1234, "kind": "visitor-id"})
}

/// Writes the scenario's files: recipients, gzipped links, an outbound `iter` file (gzipped,
/// with removals) and an id list.
fn write_scenario(dir: &Path) -> BTreeMap<u64, String> {
    let visitors = sample::visitor_sample(42, N);
    let table = sample::recipients_table(42, N);
    fs::write(dir.join("recipients.csv"), recipients::write(&table)).expect("write");
    fs::write(dir.join("links.csv.gz"), sample::gzip(&visitors.links_csv)).expect("write");
    let vid = visitor_of(&visitors.links_csv);

    // The generated audience, every fifth line also removing 1000 and 1002; then recipients
    // 1..=50 leave segment 1000 (mapped to the list "current") while joining 1049; then a line
    // that cannot be read.
    let mut outbound = String::new();
    for (i, line) in String::from_utf8_lossy(&visitors.audience)
        .lines()
        .enumerate()
    {
        outbound.push_str(line);
        if i % 5 == 0 {
            outbound.push_str(" 1000,1002");
        }
        outbound.push('\n');
    }
    for r in 1..=50 {
        outbound.push_str(&format!("{} 1049 1000\n", vid[&r]));
    }
    // A line of four fields: a bad record.
    outbound.push_str(&format!("{} 1049 1000 1001\n", vid[&51]));
    fs::write(
        dir.join("S3_1234_iter_1486140844000.sync.gz"),
        sample::gzip(outbound.as_bytes()),
    )
    .expect("write");

    // Recipients 100..=160, a few unknown ids and a malformed one: all members of segment 2000.
    let mut ids = String::new();
    for r in 100..=160 {
        ids.push_str(&vid[&r]);
        ids.push('\n');
    }
    for i in 0..5 {
        ids.push_str(&unknown_visitor(i));
        ids.push('\n');
    }
    ids.push_str("123\n\n");
    fs::write(dir.join("ids-2000.txt"), ids).expect("write");
    vid
}

#[test]
fn js_workspace_gives_the_native_import_export_and_preview() {
    let dir = temp_dir("scenario");
    let vid = write_scenario(&dir);
    let mut current: Vec<String> = (1..=300).map(|r| r.to_string()).collect();
    current.extend(["99999".into(), "abc".into(), "0007".into()]);
    let mut snapshot: Vec<String> = (1..=100).map(|r| vid[&r].clone()).collect();
    snapshot.extend((0..7).map(|i| unknown_visitor(100 + i)));
    let steps = vec![
        json!({"op": "loadRecipients", "name": "recipients.csv", "file": "recipients.csv",
               "progress": true}),
        json!({"op": "loadLinks", "name": "links.csv.gz", "file": "links.csv.gz",
               "options": {"max_bad": 3}, "progress": true}),
        json!({"op": "setList", "name": "current", "members": current}),
        json!({"op": "setList", "name": "idlist",
               "members": (150..=200).map(|r: u64| r.to_string()).collect::<Vec<_>>()}),
        json!({"op": "import",
        "spec": {"data_source": data_source(),
                 "options": {"mappings": {"1000": "current", "2000": "idlist"},
                             "list_unmatched": true},
                 "last_applied": {"1000": 1_486_140_843_000_i64,
                                  "1001": 1_486_140_845_000_i64}},
        "files": [
            {"name": "S3_1234_iter_1486140844000.sync.gz", "file": "S3_1234_iter_1486140844000.sync.gz",
             "format": {"format": "outbound"}},
            {"name": "ids-2000.txt", "file": "ids-2000.txt",
             "format": {"format": "id-list", "segment": "2000"}},
        ]}),
        json!({"op": "export", "snapshot": snapshot,
               "spec": {"data_source": data_source(), "members": {"list": "current"},
                        "trait_id": 555, "mode": "delta", "timestamp": 1_700_000_000,
                        "limits": {"max_lines": 100, "max_bytes": 1_048_576, "gzip": true}}}),
        json!({"op": "export",
               "spec": {"data_source": data_source(),
                        "members": {"rule": {"text": "age >= 85 and vip", "now": NOW}},
                        "trait_id": 556, "mode": "overwrite", "timestamp": 1_700_000_001,
                        "limits": {"gzip": false}}}),
        json!({"op": "previewRule",
               "spec": {"rule": "age >= 30 and country in (\"NL\", \"BE\") and not in_list(\"current\")",
                        "now": NOW, "sample": 5, "breakdown": "country", "top_k": 3}}),
        json!({"op": "previewRule",
               "spec": {"rule": "last_order > now() - 90d", "now": NOW, "breakdown": "vip"}}),
        json!({"op": "ruleSql",
               "spec": {"rule": "age >= 30 and in_list(\"current\")",
                        "schema": {"columns": [["id", "int"], ["age", "int"]]},
                        "lists": ["current"], "dialect": "postgres", "now": NOW}}),
    ];
    let (native, progress) = differential(&dir, &steps);

    // Every step succeeded, and the scenario exercises what it claims to.
    for (i, outcome) in native.iter().enumerate() {
        assert!(outcome["error"].is_null(), "step {i} failed: {outcome}");
    }
    let import = &native[4]["ok"];
    let list = |name: &str| {
        import["lists"]
            .as_array()
            .expect("lists")
            .iter()
            .find(|l| l["list"] == name)
            .unwrap_or_else(|| panic!("no change of list {name}: {import}"))
            .clone()
    };
    let current = list("current");
    assert!(
        current["removed"].as_array().is_some_and(|r| r.len() >= 40),
        "{current}"
    );
    assert!(current["removed"][0].is_string(), "keys cross as strings");
    let idlist = list("idlist");
    assert_eq!(idlist["replaced"], json!(true));
    assert!(idlist["added"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(idlist["removed"].as_array().is_some_and(|r| !r.is_empty()));
    let report = &import["report"];
    assert!(report["refused"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(
        report["unmatched"]
            .as_array()
            .is_some_and(|u| u.len() > 100)
    );
    assert!(
        report["problems"].as_array().is_some_and(|p| p.len() == 1),
        "{}",
        report["problems"]
    );
    assert!(report["segments"]["1000"]["removed"].as_f64() > Some(0.0));

    let delta = &native[5]["ok"];
    assert!(
        delta["files"].as_array().is_some_and(|f| f.len() >= 2),
        "{delta}"
    );
    assert!(
        delta["files"][0]["bytes"]["hex"]
            .as_str()
            .is_some_and(|h| h.starts_with("1f8b"))
    );
    assert!(delta["report"]["added"].as_f64() > Some(0.0));
    assert_eq!(delta["report"]["removed"].as_f64(), Some(7.0));
    let not_exported: Vec<&str> = delta["not_exported"]
        .as_array()
        .expect("not exported")
        .iter()
        .filter_map(|n| n["recipient"].as_str())
        .collect();
    assert!(not_exported.contains(&"abc") && not_exported.contains(&"0007"));
    assert!(
        native[6]["ok"]["files"]
            .as_array()
            .is_some_and(|f| f.len() == 1)
    );
    let preview = &native[7]["ok"];
    assert!(preview["count"]["selected"].as_f64() > Some(0.0));
    assert_eq!(preview["sample"]["rows"].as_array().map(Vec::len), Some(5));
    assert!(
        preview["breakdown"]["top"]
            .as_array()
            .is_some_and(|t| t.len() == 2)
    );
    assert!(native[9]["ok"]["clause"]["params"].as_array().is_some());

    // Progress: copy and read, each reported at its start and end, in bytes.
    for (step, file) in [(0, "recipients.csv"), (1, "links.csv.gz")] {
        let total = fs::metadata(dir.join(file)).expect("fixture").len();
        let event = |phase: &str, done: u64| json!({"phase": phase, "done": done, "total": total});
        assert_eq!(
            normalize(&progress[&step]),
            normalize(&json!([
                event("copy", 0),
                event("copy", total),
                event("read", 0),
                event("read", total)
            ])),
            "progress of step {step}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn js_errors_are_error_objects_with_the_native_fields() {
    let dir = temp_dir("errors");
    let table = sample::recipients_table(7, 50);
    let csv = recipients::write(&table);
    fs::write(dir.join("recipients.csv"), &csv).expect("write");
    let gz = sample::gzip(&csv);
    fs::write(dir.join("truncated.csv.gz"), &gz[..gz.len() - 9]).expect("write");
    let preview = |rule: &str| json!({"op": "previewRule", "spec": {"rule": rule, "now": NOW}});
    let steps = vec![
        json!({"op": "loadRecipients", "name": "truncated.csv.gz", "file": "truncated.csv.gz"}),
        preview("age >= 30"),
        json!({"op": "loadRecipients", "name": "recipients.csv", "file": "recipients.csv"}),
        preview("age >= \"thirty\""),
        preview("country in (\"NL\", \"BE\" and vip"),
        preview("agee >= 30"),
        json!({"op": "export", "spec": {"data_source": data_source(), "members": {"list": "nope"},
               "trait_id": 1, "mode": "sync", "timestamp": 1}}),
        json!({"op": "ruleSql",
               "spec": {"rule": "in_list(\"x\")", "schema": {"columns": [["id", "int"]]},
                        "lists": [], "dialect": "sqlite", "now": NOW}}),
        json!({"op": "loadLinks", "name": "recipients.csv", "file": "recipients.csv"}),
    ];
    let (native, _) = differential(&dir, &steps);

    let error = |i: usize| {
        let e = &native[i]["error"];
        assert_eq!(
            e["is_error"],
            json!(true),
            "step {i} is an Error: {}",
            native[i]
        );
        e.clone()
    };
    let truncated = error(0);
    assert_eq!(truncated["kind"], "file");
    assert_eq!(truncated["file"], "truncated.csv.gz");
    assert_eq!(truncated["reason"], "truncated_gzip");
    assert_eq!(error(1)["kind"], "request");
    assert!(native[2]["ok"].is_object());
    for i in [3, 4, 5] {
        let rule = error(i);
        assert_eq!(rule["kind"], "rule", "{rule}");
        let (start, end) = (rule["span"]["start"].as_f64(), rule["span"]["end"].as_f64());
        assert!(start.is_some() && end >= start, "{rule}");
        assert!(
            rule["message"].as_str().is_some_and(|m| m.contains('^')),
            "{rule}"
        );
    }
    assert!(
        error(5)["message"]
            .as_str()
            .is_some_and(|m| m.contains("age"))
    );
    assert_eq!(error(6)["kind"], "request");
    assert_eq!(error(7)["kind"], "rule");
    let links = error(8);
    assert_eq!(links["kind"], "file");
    assert_eq!(links["file"], "recipients.csv");
    assert!(links["reason"].is_string(), "{links}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn js_arguments_that_do_not_convert_are_request_errors() {
    let dir = temp_dir("arguments");
    fs::write(dir.join("links.csv"), "recipient_id,visitor_id,last_seen\n").expect("write");
    let steps = vec![
        json!({"op": "loadLinks", "name": "links.csv", "file": "links.csv",
               "options": {"maxBad": 1}}),
        json!({"op": "loadLinks", "name": "links.csv", "file": "links.csv",
               "options": {"max_bad": null, "strict": true}}),
        json!({"op": "import", "spec": {"data_source": data_source(), "extra": 1}, "files": []}),
        json!({"op": "setList", "name": "l", "members": ["1", "02", 3]}),
    ];
    fs::write(
        dir.join("steps.json"),
        serde_json::to_vec(&steps).expect("json"),
    )
    .expect("write");
    let js = run_node(&dir);
    let message = |i: usize| {
        let e = &js[i]["error"];
        assert_eq!(e["is_error"], json!(true), "{}", js[i]);
        assert_eq!(e["kind"], "request", "{e}");
        e["message"].as_str().expect("message").to_owned()
    };
    assert!(message(0).starts_with("options: unknown field `maxBad`"));
    // null counts as absent: the default max_bad, and strict as given.
    assert_eq!(js[1]["ok"]["rows"], json!(0));
    assert!(message(2).starts_with("spec: unknown field `extra`"));
    assert_eq!(js[3]["ok"], json!(3));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn js_import_preview_keeps_lists_and_pages_unmatched_rows_as_native() {
    let dir = temp_dir("import-preview");
    write_scenario(&dir);
    let current: Vec<String> = (1..=300).map(|r| r.to_string()).collect();
    let files = json!([
        {"name": "S3_1234_iter_1486140844000.sync.gz", "file": "S3_1234_iter_1486140844000.sync.gz",
         "format": {"format": "outbound"}},
        {"name": "ids-2000.txt", "file": "ids-2000.txt",
         "format": {"format": "id-list", "segment": "2000"}},
    ]);
    let steps = vec![
        json!({"op": "loadRecipients", "name": "recipients.csv", "file": "recipients.csv"}),
        json!({"op": "loadLinks", "name": "links.csv.gz", "file": "links.csv.gz"}),
        // A list with members before: the preview applies removals and additions to it.
        json!({"op": "setList", "name": "current", "members": current}),
        json!({"op": "importPreview", "files": files,
               "spec": {"data_source": data_source(),
                        "options": {"mappings": {"1000": "current", "2000": "idlist"},
                                    "list_unmatched": true}}}),
        json!({"op": "unmatchedPage", "offset": 0, "limit": 5}),
        json!({"op": "unmatchedPage", "offset": 2, "limit": 3, "reason": "no_recipient"}),
        json!({"op": "unmatchedPage", "offset": 1_000_000, "limit": 3}),
        // The kept lists answer rules and exports.
        json!({"op": "previewRule",
               "spec": {"rule": "in_list(\"current\") and not in_list(\"idlist\")", "now": NOW}}),
        json!({"op": "export",
               "spec": {"data_source": data_source(), "members": {"list": "idlist"},
                        "trait_id": 9, "mode": "sync", "timestamp": 1_700_000_000}}),
        json!({"op": "formatOfName", "name": "S3_1234_iter_1486140844000.sync.gz"}),
        json!({"op": "formatOfName", "name": "Demo_segment77_20260101120000.csv"}),
        json!({"op": "formatOfName", "name": "ftp_dpm_21_1767225600.sync"}),
        json!({"op": "formatOfName", "name": "ids.txt"}),
    ];
    let (native, _) = differential(&dir, &steps);
    for (i, outcome) in native.iter().enumerate() {
        assert!(outcome.get("ok").is_some(), "step {i} failed: {outcome}");
    }
    let preview = &native[3]["ok"];
    let total = preview["unmatched_total"].as_f64().expect("total");
    assert!(total > 5.0, "{preview}");
    assert_eq!(preview["report"]["unmatched"], json!([]), "rows come apart");
    assert!(preview["overlap"]["lists"].as_array().expect("lists").len() >= 2);
    let current = preview["lists"]
        .as_array()
        .expect("lists")
        .iter()
        .find(|l| l["list"] == json!("current"))
        .expect("the list current");
    assert!(current["removed"].as_f64() > Some(0.0), "{current}");
    assert_eq!(native[4]["ok"]["total"].as_f64(), Some(total));
    assert_eq!(native[4]["ok"]["rows"].as_array().map(Vec::len), Some(5));
    assert_eq!(native[5]["ok"]["rows"].as_array().map(Vec::len), Some(3));
    assert_eq!(native[6]["ok"]["rows"], json!([]));
    assert!(native[7]["ok"]["count"]["selected"].as_f64() > Some(0.0));
    assert_eq!(
        native[9..]
            .iter()
            .map(|o| o["ok"].clone())
            .collect::<Vec<_>>(),
        [
            json!("outbound"),
            json!("aep"),
            json!("onboarding"),
            Value::Null
        ]
    );
}
