//! `audlink-core` stays pure: no I/O, runtime, JS or database crate in its dependency graph, and
//! no I/O, clock, environment, thread or randomness in its source.
//!
//! The graph comes from `cargo metadata`, resolved once for the native host and once for
//! `wasm32-unknown-unknown`, following normal dependencies only (dev-dependencies may test with
//! whatever they like).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Crates (or crate-name prefixes ending in `*`) that mean I/O, a runtime, JS, a database or
/// environment randomness.
const FORBIDDEN: &[&str] = &[
    "tokio*",
    "async-std",
    "smol",
    "mio",
    "socket2",
    "hyper*",
    "reqwest",
    "ureq",
    "curl*",
    "h2",
    "http",
    "axum*",
    "tower*",
    "rustls*",
    "native-tls",
    "openssl*",
    "aws-*",
    "object_store",
    "wasm-bindgen*",
    "js-sys",
    "web-sys",
    "gloo*",
    "wasmtime*",
    "wasmer*",
    "cranelift*",
    "rusqlite",
    "libsqlite3-sys",
    "sqlx*",
    "postgres*",
    "tokio-postgres",
    "diesel*",
    "getrandom",
    "rand",
    "rand_core",
    "uuid",
    "ahash",
    "tracing-subscriber",
    "env_logger",
    "notify",
    "walkdir",
    "tempfile",
    "fs-err",
    "memmap2",
    "libc",
    "nix",
    "rustix",
    "windows-sys",
    "winapi",
];

fn forbidden(name: &str) -> bool {
    FORBIDDEN
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *pattern,
        })
}

/// Names of the packages `root` depends on through normal (non-dev, non-build) edges, given the
/// JSON of `cargo metadata --format-version 1`.
fn normal_closure(metadata: &Value, root: &str) -> Result<BTreeSet<String>, String> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or("metadata has no packages")?;
    let names: HashMap<&str, &str> = packages
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("metadata has no resolve graph")?;
    let edges: HashMap<&str, Vec<&str>> = nodes
        .iter()
        .filter_map(|node| {
            let id = node["id"].as_str()?;
            let deps = node["deps"].as_array()?;
            let normal = deps
                .iter()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
                })
                .filter_map(|dep| dep["pkg"].as_str())
                .collect();
            Some((id, normal))
        })
        .collect();
    let root_id = names
        .iter()
        .find(|(_, name)| **name == root)
        .map(|(id, _)| *id)
        .ok_or_else(|| format!("package {root} not in metadata"))?;

    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    let mut closure = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if id != root_id {
            closure.insert(names.get(id).copied().unwrap_or(id).to_owned());
        }
        stack.extend(edges.get(id).into_iter().flatten().copied());
    }
    Ok(closure)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    let text = String::from_utf8(out.stdout).expect("rustc -vV prints utf-8");
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

fn metadata_for(target: &str) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            target,
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints json")
}

#[test]
fn core_has_no_io_runtime_js_or_database_dependency() {
    for target in [host_triple(), "wasm32-unknown-unknown".to_owned()] {
        let closure = normal_closure(&metadata_for(&target), "audlink-core").unwrap();
        let bad: Vec<_> = closure.iter().filter(|name| forbidden(name)).collect();
        assert!(
            bad.is_empty(),
            "audlink-core depends on {bad:?} for {target}; full graph: {closure:?}"
        );
        // The graph was really read: core's own direct dependencies are in it.
        for expected in ["sha2", "serde", "thiserror"] {
            assert!(
                closure.contains(expected),
                "{expected} missing from {closure:?} for {target}"
            );
        }
    }
}

#[test]
fn closure_follows_normal_edges_and_skips_dev_edges() {
    let metadata = serde_json::json!({
        "packages": [
            {"id": "core", "name": "audlink-core"},
            {"id": "a", "name": "helper"},
            {"id": "t", "name": "tokio"},
            {"id": "p", "name": "proptest"},
            {"id": "r", "name": "rand"},
        ],
        "resolve": {"nodes": [
            {"id": "core", "deps": [
                {"pkg": "a", "dep_kinds": [{"kind": null}]},
                {"pkg": "p", "dep_kinds": [{"kind": "dev"}]},
            ]},
            {"id": "a", "deps": [{"pkg": "t", "dep_kinds": [{"kind": null}]}]},
            {"id": "p", "deps": [{"pkg": "r", "dep_kinds": [{"kind": null}]}]},
            {"id": "t", "deps": []},
            {"id": "r", "deps": []},
        ]}
    });
    let closure = normal_closure(&metadata, "audlink-core").unwrap();
    assert_eq!(closure.into_iter().collect::<Vec<_>>(), ["helper", "tokio"]);
    assert!(forbidden("tokio") && forbidden("tokio-util") && forbidden("wasm-bindgen-futures"));
    assert!(!forbidden("sha2") && !forbidden("serde"));
}

/// Paths and macros that do I/O or read the clock, environment, threads or randomness.
const FORBIDDEN_SOURCE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::thread",
    "std::time",
    "SystemTime",
    "Instant::",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "println!",
    "eprintln!",
    "print!",
    "eprint!",
    "dbg!",
    "std::os",
    "thread_rng",
    "getrandom",
];

/// `(line number, pattern)` of each forbidden use in `source`, skipping `//` comments.
fn forbidden_uses(source: &str) -> Vec<(usize, &'static str)> {
    source
        .lines()
        .enumerate()
        .flat_map(|(i, line)| {
            let code = line.split("//").next().unwrap_or_default();
            FORBIDDEN_SOURCE
                .iter()
                .filter(move |p| code.contains(*p))
                .map(move |p| (i + 1, *p))
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("core/src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_source_does_no_io_and_reads_no_clock() {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("core/src"), &mut files);
    assert!(files.len() >= 5, "expected core's modules, found {files:?}");
    let mut hits = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        hits.extend(
            forbidden_uses(&source)
                .into_iter()
                .map(|(line, p)| format!("{}:{line}: {p}", file.display())),
        );
    }
    assert!(
        hits.is_empty(),
        "core must not do I/O or read clocks/env:\n{}",
        hits.join("\n")
    );
}

#[test]
fn source_scan_finds_what_it_looks_for() {
    let source = "use std::fs::File;\n// std::net in a comment is fine\nlet t = SystemTime::now(); // and here\n";
    assert_eq!(forbidden_uses(source), [(1, "std::fs"), (3, "SystemTime")]);
}
