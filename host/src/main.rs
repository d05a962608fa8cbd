//! `audlink`: the command-line tool (see README.md for the contract).
//!
//! Exit codes: 0 ok, 1 the job failed, 2 usage or configuration error. On failure stdout stays
//! empty and one line goes to stderr.

use std::io::IsTerminal;
use std::process::ExitCode;

use audlink_host::cli;
use audlink_host::cli::args::Cli;
use clap::Parser;
use tracing_subscriber::filter::LevelFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap writes them; a usage error is one line.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid usage");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("audlink: {first} (see --help)");
            return ExitCode::from(2);
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
    match cli::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("audlink: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
