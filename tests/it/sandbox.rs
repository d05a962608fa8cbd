//! The wasmtime sandbox: the guest imports nothing, gives byte-identical answers to the native
//! core, and is stopped cleanly by its deadline and memory cap — after which the next call
//! works.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use audlink_core::datasource::DataSource;
use audlink_core::export::{ExportMode, FileLimits, Snapshot};
use audlink_core::format::ReadOptions;
use audlink_core::format::links;
use audlink_core::format::recipients as recipients_format;
use audlink_core::import::{
    self, AudienceFile, AudienceFormat, ImportOptions, ImportRequest, UnmatchedReason,
};
use audlink_core::recipients::{RecipientKey, RecipientsTable};
use audlink_core::sample;
use audlink_core::time::Timestamp;
use audlink_host::guest::{self, GuestError, Request};
use audlink_host::sandbox::{GUEST_WASM, Limits, Sandbox, SandboxError};
use audlink_wasm::dispatch::{
    ErrorKind, ExportSpec, ImportFileSpec, ImportSpec, LoadOptions, Members, PreviewSpec, SqlSpec,
};
use audlink_wasm::wire::{Op, ResponseError, packed};
use serde_json::json;

/// One sandbox for the whole test binary: compiling the guest is the slow part.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(Limits::default(), None).expect("sandbox"))
}

fn visitor_source() -> DataSource {
    serde_json::from_value(json!({"name": "ecid", "dpid": 21, "kind": "visitor-id"})).unwrap()
}

/// Recipients, links, a current list and two audience files, all generated from seeds.
struct Fixture {
    recipients_csv: Vec<u8>,
    links_csv: Vec<u8>,
    outbound: Vec<u8>,
    id_list: Vec<u8>,
    current: Vec<RecipientKey>,
}

const OUTBOUND_NAME: &str = "S3_1_iter_1700000000000.sync";
const ID_LIST_NAME: &str = "vip-ids.txt";

fn fixture() -> Fixture {
    let n = 2_000;
    let visitors = sample::visitor_sample(7, n);
    let table = sample::recipients_table(7, n);
    let recipients_csv = recipients_format::write(&table);
    // The outbound sample's body, with removals appended to every tenth line.
    let mut outbound = Vec::new();
    for (i, line) in visitors.audience.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        outbound.extend_from_slice(line);
        if i % 10 == 0 {
            outbound.extend_from_slice(b" 1001");
        }
        outbound.push(b'\n');
    }
    let id_list: Vec<u8> = visitors
        .audience
        .split(|&b| b == b'\n')
        .take(300)
        .filter_map(|line| line.split(|&b| b == b' ').next())
        .flat_map(|id| id.iter().copied().chain([b'\n']))
        .collect();
    Fixture {
        recipients_csv,
        links_csv: visitors.links_csv,
        outbound,
        id_list,
        current: (1..=400).map(RecipientKey::Int).collect(),
    }
}

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn import_spec() -> ImportSpec {
    ImportSpec {
        data_source: visitor_source(),
        options: ImportOptions {
            mappings: BTreeMap::from([("1001".to_owned(), "current".to_owned())]),
            list_unmatched: true,
            strict: false,
        },
        last_applied: BTreeMap::new(),
    }
}

fn files() -> Vec<ImportFileSpec> {
    vec![
        ImportFileSpec {
            name: OUTBOUND_NAME.to_owned(),
            format: AudienceFormat::Outbound { mode: None },
        },
        ImportFileSpec {
            name: ID_LIST_NAME.to_owned(),
            format: AudienceFormat::IdList {
                segment: "vip".to_owned(),
            },
        },
    ]
}

/// The whole scenario as one request: load, import, export, preview, compile.
fn scenario(f: &Fixture) -> Request {
    let mut r = Request::new();
    let recipients = r.bytes(f.recipients_csv.clone());
    let links = r.bytes(f.links_csv.clone());
    let current = r.bytes(packed::encode_keys(&f.current));
    let outbound = r.bytes(f.outbound.clone());
    let id_list = r.bytes(f.id_list.clone());
    let snapshot = r.bytes(packed::encode_lines(&[
        "00000000000000000000000000000000000001",
    ]));
    r.op(Op::LoadRecipients {
        name: "recipients.csv".into(),
        payload: recipients,
        options: LoadOptions::default(),
        part: None,
    });
    r.op(Op::LoadLinks {
        name: "links.csv".into(),
        payload: links,
        options: LoadOptions::default(),
    });
    r.op(Op::SetList {
        name: "current".into(),
        payload: current,
    });
    let payloads = [outbound, id_list];
    r.op(Op::Import {
        spec: import_spec(),
        files: files()
            .into_iter()
            .zip(payloads)
            .map(|(file, payload)| audlink_wasm::wire::FileRef { file, payload })
            .collect(),
    });
    r.op(Op::Export {
        spec: ExportSpec {
            data_source: visitor_source(),
            members: Members::List("current".into()),
            trait_id: 4242,
            mode: ExportMode::Delta,
            timestamp: 1_764_000_000,
            limits: FileLimits {
                max_lines: 150,
                ..FileLimits::default()
            },
        },
        snapshot: Some(snapshot),
    });
    r.op(Op::PreviewRule {
        spec: PreviewSpec {
            rule: r#"country in ("NL", "BE") and age >= 30"#.into(),
            now: now(),
            sample: 5,
            breakdown: Some("country".into()),
            top_k: 3,
        },
    });
    r.op(Op::RuleSql {
        spec: SqlSpec {
            rule: r#"last_order > now() - 90d and in_list("current")"#.into(),
            schema: serde_json::from_value(
                json!({"columns": [["id", "int"], ["last_order", "date_time"]]}),
            )
            .unwrap(),
            lists: None,
            dialect: audlink_core::rule::sql::Dialect::Sqlite,
            tables: Default::default(),
            now: now(),
        },
    });
    r
}

#[test]
fn the_guest_module_imports_nothing() {
    let engine = audlink_host::sandbox::engine().unwrap();
    let module = wasmtime::Module::new(&engine, GUEST_WASM).unwrap();
    let imports: Vec<String> = module
        .imports()
        .map(|i| format!("{}::{}", i.module(), i.name()))
        .collect();
    assert_eq!(imports, Vec::<String>::new());
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    for name in [
        "memory",
        "audlink_abi_version",
        "audlink_alloc",
        "audlink_free",
        "audlink_call",
    ] {
        assert!(
            exports.contains(&name),
            "missing export {name}: {exports:?}"
        );
    }
    assert!(
        !GUEST_WASM.windows(10).any(|w| w == b"__wbindgen"),
        "the abi module mentions __wbindgen"
    );
}

#[test]
fn sandbox_and_native_give_byte_identical_responses() {
    let f = fixture();
    let request = scenario(&f);
    let native = request.run_native().unwrap();
    let sandboxed = request.run(sandbox()).unwrap();
    assert_eq!(native.len(), sandboxed.len());
    assert!(native == sandboxed, "responses differ");

    // And the response is the core's own answer, computed here directly.
    let decoded = audlink_wasm::wire::decode(&sandboxed).unwrap();
    let table: RecipientsTable =
        recipients_format::read("recipients.csv", &f.recipients_csv, ReadOptions::default())
            .unwrap()
            .table;
    let parsed_links = links::read("links.csv", &f.links_csv, ReadOptions::default()).unwrap();
    let current = BTreeMap::from([("current".to_owned(), f.current.clone())]);
    let specs = files();
    let bytes = [&f.outbound[..], &f.id_list[..]];
    let audience: Vec<AudienceFile<'_>> = specs
        .iter()
        .zip(bytes)
        .map(|(spec, bytes)| AudienceFile {
            name: &spec.name,
            bytes,
            format: &spec.format,
        })
        .collect();
    let spec = import_spec();
    let direct = import::import(&ImportRequest {
        data_source: &spec.data_source,
        recipients: Some(&table),
        links: &parsed_links.links,
        files: &audience,
        options: &spec.options,
        current: &current,
        last_applied: &spec.last_applied,
    })
    .unwrap();
    let via_guest = decoded.import(3).unwrap();
    assert_eq!(via_guest, direct);
    assert!(
        direct.report.totals.units > 2_000,
        "{:?}",
        direct.report.totals
    );
    assert!(
        direct.report.segments.values().any(|s| s
            .unmatched
            .get(&UnmatchedReason::InvalidFormat)
            .copied()
            .unwrap_or(0)
            > 0),
        "the fixture has malformed ids"
    );

    let export = decoded.export(4).unwrap();
    assert!(export.files.len() > 1, "split into several files");
    assert!(export.files.iter().all(|file| file.lines <= 150));
    assert_eq!(
        export.report.removed, 1,
        "the snapshot's stranger is removed"
    );
    assert_eq!(
        export.snapshot,
        Snapshot::new(export.snapshot.identifiers().to_vec())
    );
    let preview: serde_json::Value = decoded.typed(5).unwrap();
    assert!(
        preview["count"]["selected"].as_u64().unwrap() > 0,
        "{preview}"
    );
    let sql: serde_json::Value = decoded.typed(6).unwrap();
    assert!(
        sql["select"]
            .as_str()
            .unwrap()
            .starts_with("SELECT \"id\" FROM \"recipients\"")
    );
}

#[test]
fn files_stream_from_disk_into_the_guest() {
    let f = fixture();
    let dir = tempdir();
    let path = dir.join("links.csv");
    std::fs::write(&path, &f.links_csv).unwrap();
    let mut from_file = Request::new();
    let p = from_file.file(&path);
    from_file.op(Op::LoadLinks {
        name: "links.csv".into(),
        payload: p,
        options: LoadOptions::default(),
    });
    let mut from_memory = Request::new();
    let p = from_memory.bytes(f.links_csv.clone());
    from_memory.op(Op::LoadLinks {
        name: "links.csv".into(),
        payload: p,
        options: LoadOptions::default(),
    });
    let a = from_file.run(sandbox()).unwrap();
    let b = from_memory.run(sandbox()).unwrap();
    assert_eq!(a, b);
    let summary: serde_json::Value = audlink_wasm::wire::decode(&a).unwrap().typed(0).unwrap();
    assert_eq!(
        summary["rows"].as_u64(),
        Some(f.links_csv.iter().filter(|&&b| b == b'\n').count() as u64 - 1)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn core_errors_come_back_typed_with_file_and_reason() {
    let mut r = Request::new();
    let gz = sample::gzip(b"recipient_id,visitor_id\n1,1\n");
    let p = r.bytes(gz[..gz.len() - 6].to_vec());
    r.op(Op::LoadLinks {
        name: "links.csv.gz".into(),
        payload: p,
        options: LoadOptions::default(),
    });
    match guest::call(sandbox(), &r) {
        Err(GuestError::Core(ResponseError::Failed { op, error })) => {
            assert_eq!(op, Some(0));
            assert_eq!(error.kind, ErrorKind::File);
            assert_eq!(error.file.as_deref(), Some("links.csv.gz"));
            assert_eq!(error.reason.as_deref(), Some("truncated_gzip"), "{error:?}");
        }
        other => panic!("expected a file error, got {other:?}"),
    }
    // A request that is not JSON of the ABI is an ABI error, not a trap.
    let bad = sandbox()
        .call(b"{\"abi\":1,\"ops\":[{\"op\":\"fly\"}]}", &[])
        .unwrap();
    match audlink_wasm::wire::decode(&bad.response) {
        Err(ResponseError::Failed { op: None, error }) => assert_eq!(error.kind, ErrorKind::Abi),
        other => panic!("expected an ABI error, got {other:?}"),
    }
}

/// A links file of `rows` copies of one valid line: cheap to build, slow and big to read.
fn repeated_links(rows: usize) -> Vec<u8> {
    let mut bytes = b"recipient_id,visitor_id\n".to_vec();
    bytes.extend(b"12345,12345678901234567890123456789012345678\n".repeat(rows));
    bytes
}

fn load_links_request(bytes: Vec<u8>) -> Request {
    let mut r = Request::new();
    let p = r.bytes(bytes);
    r.op(Op::LoadLinks {
        name: "links.csv".into(),
        payload: p,
        options: LoadOptions::default(),
    });
    r
}

fn small_request_works(sandbox: &Sandbox) {
    let request = load_links_request(repeated_links(3));
    let decoded = guest::call(sandbox, &request).expect("the next call works");
    let summary: serde_json::Value = decoded.typed(0).unwrap();
    assert_eq!(summary["rows"], 3);
}

#[test]
fn a_runaway_call_is_stopped_by_the_deadline_and_the_next_call_works() {
    let sandbox = Sandbox::new(
        Limits {
            deadline: Duration::from_millis(20),
            ..Limits::default()
        },
        None,
    )
    .unwrap();
    let request = load_links_request(repeated_links(4_000_000));
    match request.run(&sandbox) {
        Err(SandboxError::Deadline { limit }) => assert_eq!(limit, Duration::from_millis(20)),
        other => panic!("expected the deadline, got {:?}", other.map(|r| r.len())),
    }
    let err = request.run(&sandbox).unwrap_err();
    assert!(err.to_string().contains("deadline of 20ms"), "{err}");
    // The same sandbox, a request that fits: a fresh instance answers.
    small_request_works(&sandbox);
}

#[test]
fn memory_past_the_cap_is_refused_and_the_next_call_works() {
    let limit = 64 << 20;
    let sandbox = Sandbox::new(
        Limits {
            memory: limit,
            ..Limits::default()
        },
        None,
    )
    .unwrap();
    // The payload fits, but the table read from it does not: the guest traps on allocation.
    let fits = load_links_request(repeated_links(1_000_000));
    match fits.run(&sandbox) {
        Err(SandboxError::Memory { limit: l }) => assert_eq!(l, limit),
        other => panic!(
            "expected the memory limit, got {:?}",
            other.map(|r| r.len())
        ),
    }
    // A payload larger than the cap is refused before it is copied.
    let too_big = load_links_request(repeated_links(2_000_000));
    assert!(matches!(
        too_big.run(&sandbox),
        Err(SandboxError::Memory { .. })
    ));
    small_request_works(&sandbox);
}

#[test]
fn compiled_code_is_cached_on_disk_and_reused() {
    let dir = tempdir();
    let first = Sandbox::new(Limits::default(), Some(dir.clone())).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("guest-") && name.ends_with(".cwasm"),
        "{name}"
    );
    let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    drop(first);
    let second = Sandbox::new(Limits::default(), Some(dir.clone())).unwrap();
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        modified
    );
    small_request_works(&second);
    // A corrupt cache file is not trusted: the module is compiled again.
    std::fs::write(&files[0], b"not compiled code").unwrap();
    let third = Sandbox::new(Limits::default(), Some(dir.clone())).unwrap();
    small_request_works(&third);
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "audlink-sandbox-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Node embeds the module with nothing but `WebAssembly.instantiate`, following `wasm/ABI.md`
/// (`tests/js/abi.mjs`), and gets the native response byte for byte.
#[test]
fn node_embeds_the_abi_module_by_the_document_alone() {
    let f = fixture();
    let request = scenario(&f);
    let dir = tempdir();
    let module = dir.join("guest.wasm");
    let response_path = dir.join("response.bin");
    std::fs::write(&module, GUEST_WASM).unwrap();
    std::fs::write(dir.join("request.json"), request.json()).unwrap();
    for (i, payload) in request.read_payloads().unwrap().iter().enumerate() {
        std::fs::write(dir.join(format!("payload-{i}.bin")), payload).unwrap();
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js/abi.mjs");
    let output = std::process::Command::new("node")
        .arg(&script)
        .args([&module, &dir, &response_path])
        .output()
        .expect("node runs (it is on every machine of this kind)");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains(r#""status":0"#), "{summary}");
    let from_node = std::fs::read(&response_path).unwrap();
    assert!(
        from_node == request.run_native().unwrap(),
        "node's response differs"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
