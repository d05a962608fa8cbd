//! The command line, one of audlink's front doors: clap's flags ([`args`]) become plans
//! ([`crate::plan`]) for the application layer ([`crate::app`]), and its typed answers become
//! text or, with `--json`, the answer's JSON on stdout. An [`AppError`] becomes a [`Failure`]:
//! one stderr line and exit code 1 (the job failed) or 2 (usage or configuration). Record-level
//! problems inside a readable file are outcomes in the report, not failures.
//!
//! Nothing below this module sees a clap type. `audlink serve` and `audlink sync` are front
//! doors of their own ([`crate::serve`], [`crate::sync`]); the command line only starts them.

pub mod args;
mod exchange;
mod export;
mod import;
mod load;
mod misc;
mod remote;
mod sync;

pub use misc::{GENERATED_AEP, GENERATED_OUTBOUND};

use std::io::Write;
use std::time::Duration;

use audlink_core::time::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::app::{self, AppError};
use crate::config::{Config, ConfigError};
use crate::guest::Guest;
use crate::sandbox::{Limits, Sandbox, cache};
use crate::store::{Store, StoreError};
use args::{
    AudienceCommand, Cli, Command, ListCommand, RecipientsCommand, RemoteCommand, SegmentCommand,
    VisitorsCommand,
};

/// A failed command: the one line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// 1: the job failed; 2: usage or configuration.
    pub code: u8,
    /// One line, lower-case, naming the file or option at fault.
    pub message: String,
}

impl Failure {
    /// A failed job (exit 1).
    pub fn job(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// A usage or configuration error (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<AppError> for Failure {
    fn from(error: AppError) -> Failure {
        let code = if error.is_usage() { 2 } else { 1 };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        AppError::from(error).into()
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Failure {
        AppError::from(error).into()
    }
}

/// What every command may need, opened on first use.
#[derive(Debug)]
pub struct Context<'a> {
    cli: &'a Cli,
    sandbox: Option<Sandbox>,
}

impl<'a> Context<'a> {
    /// The context of one command line.
    pub fn new(cli: &'a Cli) -> Context<'a> {
        Context { cli, sandbox: None }
    }

    /// Whether output is JSON.
    pub fn json(&self) -> bool {
        self.cli.json
    }

    fn config(&self) -> Result<Config, Failure> {
        Ok(Config::load(&self.cli.config)?)
    }

    fn store(&self) -> Result<Box<dyn Store>, Failure> {
        Ok(crate::store::open(&self.cli.db)?)
    }

    /// The guest: the wasmtime sandbox, built on first use under `--sandbox-memory-mib`.
    fn guest(&mut self) -> Result<&dyn Guest, Failure> {
        if self.sandbox.is_none() {
            let limits = Limits {
                memory: self.cli.sandbox_memory_mib << 20,
                ..Limits::default()
            };
            let sandbox = Sandbox::new(limits, cache::default_dir()).map_err(AppError::from)?;
            self.sandbox = Some(sandbox);
        }
        Ok(self.sandbox.as_ref().expect("set above"))
    }
}

/// A spinner on stderr for a step that may take a while; hidden with `-q`, `--json` or when
/// stderr is not a terminal, and cleared when the step ends.
#[derive(Debug)]
pub struct Progress(indicatif::ProgressBar);

impl Progress {
    fn start(ctx: &Context<'_>, message: impl Into<String>) -> Progress {
        use std::io::IsTerminal;
        let shown = !ctx.cli.quiet && !ctx.cli.json && std::io::stderr().is_terminal();
        let bar = if shown {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_message(message.into());
        Progress(bar)
    }

    fn step(&self, message: impl Into<String>) {
        self.0.set_message(message.into());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// `--now` or the current time.
fn now_or(text: Option<&str>) -> Result<Timestamp, Failure> {
    match text {
        Some(text) => text
            .parse()
            .map_err(|e| Failure::usage(format!("--now {text:?}: {e}"))),
        None => Ok(app::now()),
    }
}

/// Prints a command's answer: its JSON on stdout with `--json` (through `Value`, so keys
/// come out sorted), else the human text.
fn print(ctx: &Context<'_>, answer: &impl Serialize, human: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = if ctx.json() {
        let json: Value = serde_json::to_value(answer).expect("answers serialize");
        serde_json::to_writer_pretty(&mut out, &json)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write!(out, "{human}")
    };
    match written {
        // A reader that stopped early (`| head`) is not a failure of the job.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| Failure::job(format!("stdout: {e}"))),
    }
}

/// Runs the command line's command.
pub fn run(cli: &Cli) -> Result<(), Failure> {
    let mut ctx = Context::new(cli);
    match &cli.command {
        Command::Init => misc::init(&mut ctx),
        Command::Recipients(RecipientsCommand::Load { file }) => load::recipients(&mut ctx, file),
        Command::Visitors(VisitorsCommand::Load { file }) => load::visitors(&mut ctx, file),
        Command::Audience(AudienceCommand::Import(args)) => import::run(&mut ctx, args),
        Command::Audience(AudienceCommand::Export(args)) => export::run(&mut ctx, args),
        Command::Report(args) => import::report(&mut ctx, args),
        Command::List(ListCommand::Ls) => misc::list_ls(&mut ctx),
        Command::List(ListCommand::Show { name }) => misc::list_show(&mut ctx, name),
        Command::Segment(SegmentCommand::Preview(args)) => misc::preview(&mut ctx, args),
        Command::Generate(args) => misc::generate(&mut ctx, args),
        Command::Serve(args) => misc::serve(&ctx, args),
        Command::Remote(RemoteCommand::Check) => remote::check(&mut ctx),
        Command::Exchange(command) => exchange::run(&mut ctx, command),
        Command::Sync(args) => sync::run(&mut ctx, args),
    }
}
