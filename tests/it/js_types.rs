//! The TypeScript declarations of the `js` front door (`target/js/nodejs/audlink_wasm.d.ts`,
//! written by wasm-bindgen from `wasm/src/js.rs` and the types tsify derives them from) are
//! valid TypeScript and say what the API takes and returns.
//!
//! `tests/js/types.ts` uses the whole API with the declared types and holds lines marked
//! `@ts-expect-error` that must fail to compile (a wrong literal, a missing field, a recipient
//! as a number, …); `tsc --strict --noEmit` (TypeScript from `tests/browser/package-lock.json`)
//! passes only when both hold. The declarations themselves are checked too (no `skipLibCheck`):
//! a type they name but do not declare fails.
//!
//! A missing or stale Node build fails the tests (run `make js`), as does a missing TypeScript
//! (run `npm ci` in tests/browser; `make test` does both).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::built::root;
use crate::js_node::require_node_build;

/// `tsc` over `files` with the options of this check; its output.
fn tsc(files: &[&Path]) -> Output {
    require_node_build();
    let tsc = root().join("tests/browser/node_modules/typescript/bin/tsc");
    assert!(
        tsc.is_file(),
        "{} is missing: run `npm ci` in tests/browser (`make test` does)",
        tsc.display()
    );
    Command::new("node")
        .arg(&tsc)
        .args([
            "--strict",
            "--noEmit",
            "--pretty",
            "false",
            "--target",
            "es2022",
            "--lib",
            "es2022,esnext.disposable",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
        ])
        .args(files)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (needed for the TypeScript check): {e}"))
}

#[test]
fn the_declarations_type_check_the_whole_api_and_reject_misuse() {
    let output = tsc(&[&root().join("tests/js/types.ts")]);
    assert!(
        output.status.success(),
        "tsc rejects tests/js/types.ts against target/js/nodejs/audlink_wasm.d.ts ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The check can fail: a field used with a type the declarations do not give it is an error.
#[test]
fn a_field_of_the_wrong_type_fails_the_check() {
    let dir = std::env::temp_dir().join(format!("audlink-js-types-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    let package = root().join("target/js/nodejs/audlink_wasm.js");
    let wrong = dir.join("wrong.ts");
    fs::write(
        &wrong,
        format!(
            "import {{ Workspace }} from {:?};\n\
             const summary = new Workspace().loadLinks(\"links.csv\", new Uint8Array());\n\
             const rows: string = summary.rows;\n\
             void rows;\n",
            package.display().to_string()
        ),
    )
    .expect("write wrong.ts");
    let output = tsc(&[&wrong]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success() && stdout.contains("wrong.ts(3,7): error TS2322"),
        "expected tsc to reject `const rows: string = summary.rows` ({}):\n{stdout}",
        output.status
    );
    let _ = fs::remove_dir_all(&dir);
}
