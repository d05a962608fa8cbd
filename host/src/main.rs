//! `audlink`: the command-line tool (see README.md for the contract).
//!
//! Exit codes: 0 ok, 1 the job failed, 2 usage or configuration error. On failure stdout stays
//! empty and one line goes to stderr.

use std::io::IsTerminal;
use std::process::ExitCode;

use audlink_host::cli::Cli;
use audlink_host::commands;
use clap::Parser;
use tracing_subscriber::filter::LevelFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => LevelFilter::WARN,
        (false, 0) => LevelFilter::INFO,
        (false, 1) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .init();
    match commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("audlink: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
