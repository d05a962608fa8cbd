//! Builds the sandbox's guest: `audlink-wasm` with feature `abi` for wasm32-unknown-unknown, in
//! its own target directory, and leaves it at `$OUT_DIR/audlink_guest.wasm` for
//! `include_bytes!`.
//!
//! The nested cargo runs with the outer build's `CARGO_*` and `RUSTFLAGS` variables cleared (they
//! describe the host build, not this one), so `cargo build -p audlink-host` works from a clean
//! clone once the wasm32 target is installed (`make test` installs it).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir
        .parent()
        .expect("host/ is in the workspace")
        .to_owned();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    for path in [
        "core/src",
        "core/Cargo.toml",
        "wasm/src",
        "wasm/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=AUDLINK_GUEST_WASM");

    let dest = out_dir.join("audlink_guest.wasm");
    // A prebuilt guest (e.g. optimized with wasm-opt) may be given instead.
    if let Some(prebuilt) = env::var_os("AUDLINK_GUEST_WASM") {
        std::fs::copy(&prebuilt, &dest).expect("copy AUDLINK_GUEST_WASM");
        return;
    }
    let target_dir = guest_target_dir(&out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "--locked", "-p", "audlink-wasm"])
        .args([
            "--no-default-features",
            "--features",
            "abi",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let outer = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "RUSTDOCFLAGS";
        if outer {
            command.env_remove(key.as_ref());
        }
    }
    // The guest's own release settings: one codegen unit and LTO make it smaller and faster;
    // no debug info. SIMD128 is supported by wasmtime and every current browser.
    command
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+simd128");
    let status = command.status().expect("run cargo for the wasm guest");
    if !status.success() {
        panic!(
            "building the wasm guest failed ({status}): see cargo's output above; a missing \
             {TARGET} target is installed by `rustup target add {TARGET}` (`make test` does)"
        );
    }
    let built = target_dir
        .join(TARGET)
        .join("release")
        .join("audlink_wasm.wasm");
    std::fs::copy(&built, &dest)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), dest.display()));
}

/// `<target>/guest`, next to the outer build's profile directories, so every profile and tool
/// (test, clippy, doc) shares one guest build.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    // OUT_DIR is <target>[/<triple>]/<profile>/build/<pkg>-<hash>/out.
    let target = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .unwrap_or(out_dir);
    target.join("guest")
}
