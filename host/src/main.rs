//! `audlink`: the host binary.
//!
//! The host is the only part of audlink that touches the outside world: it will run
//! `audlink-core` in a wasmtime sandbox and own the database, files, credentials and network
//! calls (see ARCHITECTURE.md). No command exists yet; the binary answers `--version` and says
//! so for anything else.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version" | "-V") => {
            println!("audlink {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("audlink: no commands are implemented yet; only --version is available");
            ExitCode::from(2)
        }
    }
}
