//! The import benchmark of `core/benches/import.rs`, run natively and in the wasmtime sandbox
//! through the same request (`wasm/ABI.md`): load links + import an outbound file.
//!
//! `cargo bench -p audlink-host --bench sandbox -- [N] [--write DIR] [--memory-mib M] [--list-unmatched]` (default N = 1,000,000):
//! prints the time of each path, the sandbox/native ratio, the guest's peak linear memory and the
//! module's size. With `--write DIR`, also writes the guest module and the request to DIR, so
//! `node bench/node_abi.mjs DIR` can time the same request in Node.

use std::time::Instant;

use audlink_core::sample;
use audlink_host::guest::Request;
use audlink_host::sandbox::{GUEST_WASM, Limits, Sandbox};
use audlink_wasm::dispatch::{ImportFileSpec, ImportSpec, LoadOptions};
use audlink_wasm::wire::envelope::ABI_VERSION;
use audlink_wasm::wire::{self, FileRef, Op};

const OUTBOUND: &str = "S3_1_iter_1700000000000.sync";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: u64 = args
        .iter()
        .find(|a| a.chars().all(|c| c.is_ascii_digit()))
        .map_or(1_000_000, |a| a.parse().expect("N"));
    let write = args
        .iter()
        .position(|a| a == "--write")
        .map(|i| args[i + 1].clone());

    let memory = args
        .iter()
        .position(|a| a == "--memory-mib")
        .map_or(Limits::default().memory, |i| {
            args[i + 1].parse::<u64>().expect("MiB") << 20
        });
    let data = sample::visitor_sample(42, n);
    let mut request = Request::new();
    let links = request.bytes(data.links_csv);
    let audience = request.bytes(data.audience);
    request.op(Op::LoadLinks {
        name: "links.csv".into(),
        payload: links,
        options: LoadOptions::default(),
    });
    request.op(Op::Import {
        spec: ImportSpec {
            data_source: serde_json::from_value(serde_json::json!({
                "name": "bench", "dpid": 1, "kind": "visitor-id"
            }))
            .expect("data source"),
            // The CLI lists every unmatched identifier; `--list-unmatched` measures that too.
            options: audlink_core::import::ImportOptions {
                list_unmatched: args.iter().any(|a| a == "--list-unmatched"),
                ..Default::default()
            },
            last_applied: Default::default(),
        },
        files: vec![FileRef {
            file: ImportFileSpec {
                name: OUTBOUND.into(),
                format: audlink_core::import::AudienceFormat::Outbound { mode: None },
            },
            payload: audience,
        }],
    });
    let json = request.json();
    let payload_bytes = request.read_payloads().expect("payloads");
    let size: usize = payload_bytes.iter().map(Vec::len).sum();
    println!("sandbox benchmark: {n} audience lines against {n} visitor links");
    println!("  request: {:.0} MiB of payloads", mib(size as u64));
    println!(
        "  guest module: {} bytes ({:.2} MiB)",
        GUEST_WASM.len(),
        mib(GUEST_WASM.len() as u64)
    );
    if let Some(dir) = &write {
        std::fs::create_dir_all(dir).expect("output directory");
        std::fs::write(format!("{dir}/guest.wasm"), GUEST_WASM).expect("write module");
        std::fs::write(format!("{dir}/request.json"), &json).expect("write request");
        for (i, payload) in payload_bytes.iter().enumerate() {
            std::fs::write(format!("{dir}/payload-{i}.bin"), payload).expect("write payload");
        }
    }

    let t = Instant::now();
    let native = wire::handle(ABI_VERSION, &json, payload_bytes);
    let native_time = t.elapsed().as_secs_f64();
    let decoded = wire::decode(&native).expect("native result");
    let report = decoded.import(1).expect("import").report;
    println!(
        "  native:  {native_time:.3} s  ({} units, {} matched)",
        report.totals.units, report.totals.matched
    );

    let t = Instant::now();
    let limits = Limits {
        memory,
        ..Limits::default()
    };
    let sandbox = Sandbox::new(limits, None).expect("sandbox");
    println!(
        "  compile: {:.3} s (once per process; cached on disk by the CLI)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let output = sandbox
        .call(&request.json(), request.payloads())
        .expect("sandboxed call");
    let sandbox_time = t.elapsed().as_secs_f64();
    assert!(
        output.response == native,
        "sandbox and native responses differ"
    );
    println!(
        "  sandbox: {sandbox_time:.3} s  (instantiate + copy in {:.3} s, call + copy out {:.3} s; responses identical)",
        output.copy_in.as_secs_f64(),
        output.run.as_secs_f64()
    );
    println!("  sandbox / native: {:.2}", sandbox_time / native_time);
    println!(
        "  peak guest memory: {:.0} MiB (limit {:.0} MiB)",
        mib(output.peak_memory),
        mib(sandbox.limits().memory)
    );
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
