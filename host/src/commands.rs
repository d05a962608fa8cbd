//! What each command does: read files and the database, run the core in the sandbox, write
//! the results. The host only moves bytes and rows; every decision is the core's.
//!
//! Errors carry their exit code ([`Failure`]): 1 when the job fails (an unreadable path, a file
//! the core cannot read, a database error), 2 for usage and configuration errors. Record-level
//! problems inside a readable file are outcomes in the report, not failures.

mod exchange;
pub mod export;
pub mod import;
mod load;
mod misc;
mod remote;
pub mod serve;
mod sync;

pub use misc::{GENERATED_AEP, GENERATED_OUTBOUND, PreviewQuery, lists_json, preview_json};

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use audlink_core::datasource::{DataSource, Identifier};
use audlink_core::export::OPTED_OUT_COLUMN;
use audlink_core::rule::sql::SqlTables;
use audlink_core::time::Timestamp;
use audlink_wasm::dispatch::{SqlOutput, SqlSpec};
use audlink_wasm::wire::{Decoded, Op, ResponseError, table};
use serde_json::Value;

use crate::cli::{
    AudienceCommand, Cli, Command, ListCommand, RecipientsCommand, RemoteCommand, SegmentCommand,
    VisitorsCommand,
};
use crate::config::{Config, ConfigError};
use crate::guest::{GuestError, Request};
use crate::sandbox::{Limits, Sandbox, SandboxError, cache};
use crate::store::{Store, StoreError};

/// How long a database query of a preview or rule may run.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(60);

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

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::job(error.to_string())
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Failure {
        Failure::usage(error.0)
    }
}

impl From<crate::remote::RemoteError> for Failure {
    fn from(error: crate::remote::RemoteError) -> Failure {
        match error {
            crate::remote::RemoteError::Config(m) => Failure::usage(m),
            crate::remote::RemoteError::Failed(m) => Failure::job(m),
        }
    }
}

impl From<SandboxError> for Failure {
    fn from(error: SandboxError) -> Failure {
        Failure::job(error.to_string())
    }
}

impl From<GuestError> for Failure {
    fn from(error: GuestError) -> Failure {
        match error {
            GuestError::Sandbox(e) => e.into(),
            GuestError::Core(ResponseError::Failed { error, .. }) => {
                // A rule the user typed is a usage error; a file the core cannot read fails
                // the job.
                let code = match error.kind {
                    audlink_wasm::dispatch::ErrorKind::Rule => 2,
                    _ => 1,
                };
                if error.kind == audlink_wasm::dispatch::ErrorKind::Rule {
                    // The core renders the rule with a caret line; stderr gets one line.
                    let last = error.message.lines().last().unwrap_or_default();
                    let what = last.trim_start_matches(['^', ' ']);
                    let message = match error.span {
                        Some(span) => {
                            format!("rule: {what} (at bytes {}..{})", span.start, span.end)
                        }
                        None => format!("rule: {what}"),
                    };
                    return Failure { code, message };
                }
                let message = match (&error.file, error.line) {
                    (Some(file), Some(line)) if !error.message.contains(file.as_str()) => {
                        format!("{file}:{line}: {}", error.message)
                    }
                    (Some(file), None) if !error.message.contains(file.as_str()) => {
                        format!("{file}: {}", error.message)
                    }
                    _ => error.message.clone(),
                };
                Failure { code, message }
            }
            GuestError::Core(e) => Failure::job(e.to_string()),
        }
    }
}

/// Why a step shared by a command and `audlink serve`'s API failed, typed so the server can say
/// which input or limit was at fault (the command turns it into a [`Failure`]).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The sandbox stopped the call, or the core refused the input.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// The database refused or a query ran past its deadline.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An option that cannot be used.
    #[error("{0}")]
    Usage(String),
    /// Anything else that fails the job.
    #[error("{0}")]
    Job(String),
}

impl From<Failure> for StepError {
    fn from(failure: Failure) -> StepError {
        match failure.code {
            2 => StepError::Usage(failure.message),
            _ => StepError::Job(failure.message),
        }
    }
}

impl From<ConfigError> for StepError {
    fn from(error: ConfigError) -> StepError {
        StepError::Usage(error.0)
    }
}

impl From<StepError> for Failure {
    fn from(error: StepError) -> Failure {
        match error {
            StepError::Guest(e) => e.into(),
            StepError::Store(e) => e.into(),
            StepError::Usage(m) => Failure::usage(m),
            StepError::Job(m) => Failure::job(m),
        }
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

    fn sandbox(&mut self) -> Result<&Sandbox, Failure> {
        if self.sandbox.is_none() {
            let limits = Limits {
                memory: self.cli.sandbox_memory_mib << 20,
                ..Limits::default()
            };
            self.sandbox = Some(Sandbox::new(limits, cache::default_dir())?);
        }
        Ok(self.sandbox.as_ref().expect("set above"))
    }

    /// Runs a request in the sandbox.
    fn call(&mut self, request: &Request) -> Result<Decoded, Failure> {
        let sandbox = self.sandbox()?;
        Ok(crate::guest::call(sandbox, request)?)
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

/// The current time (the host's clock; the core never reads one).
pub fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    Timestamp::from_unix_micros(micros).expect("the clock is within years 0000..=9999")
}

/// `--now` or the current time.
fn now_or(text: Option<&str>) -> Result<Timestamp, Failure> {
    match text {
        Some(text) => text
            .parse()
            .map_err(|e| Failure::usage(format!("--now {text:?}: {e}"))),
        None => Ok(now()),
    }
}

/// Checks that a path is a readable file (exit 1 naming it otherwise).
fn readable(path: &Path) -> Result<(), Failure> {
    let file =
        std::fs::File::open(path).map_err(|e| Failure::job(format!("{}: {e}", path.display())))?;
    match file.metadata() {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(Failure::job(format!("{}: not a file", path.display()))),
        Err(e) => Err(Failure::job(format!("{}: {e}", path.display()))),
    }
}

/// The file name of a path, for the core (names carry metadata).
fn base_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Hands `request` what matching through `data_source` reads from the database, packed: the
/// recipient ids with the `opted_out` column and, for declared ids, the key column; the
/// visitor links for visitor ids. Nothing before the first recipients load.
fn put_tables(
    store: &dyn Store,
    data_source: &DataSource,
    request: &mut Request,
) -> Result<(), StepError> {
    if store.has_recipients_table()? {
        let mut wanted = vec![OPTED_OUT_COLUMN];
        if let Identifier::DeclaredId(key) = &data_source.identifier {
            wanted.push(&key.column);
        }
        let recipients = request.bytes(table::encode_table(&store.recipients_columns(&wanted)?));
        request.op(Op::SetRecipients {
            payload: recipients,
        });
        if matches!(data_source.identifier, Identifier::VisitorId) {
            let links = request.bytes(table::encode_links(&store.links()?));
            request.op(Op::SetLinks { payload: links });
        }
    }
    Ok(())
}

/// Compiles `rule` to SQL in `sandbox`, against the database's schema and lists.
pub fn compile_rule(
    sandbox: &Sandbox,
    store: &dyn Store,
    rule: &str,
    now: Timestamp,
) -> Result<SqlOutput, StepError> {
    let lists: Vec<String> = store.lists()?.into_iter().map(|l| l.name).collect();
    let mut request = Request::new();
    request.op(Op::RuleSql {
        spec: SqlSpec {
            rule: rule.to_owned(),
            schema: store.schema()?,
            lists: Some(lists),
            dialect: store.dialect(),
            tables: SqlTables::default(),
            now,
        },
    });
    crate::guest::call(sandbox, &request)?
        .typed(0)
        .map_err(|e| StepError::Job(e.to_string()))
}

/// Prints a command's result: JSON on stdout with `--json`, else the human text.
fn print(ctx: &Context<'_>, json: &Value, human: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = if ctx.json() {
        serde_json::to_writer_pretty(&mut out, json)
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
        Command::Serve(args) => serve::run(cli, args),
        Command::Remote(RemoteCommand::Check) => remote::check(&mut ctx),
        Command::Exchange(command) => exchange::run(&mut ctx, command),
        Command::Sync(args) => sync::run(&mut ctx, args),
    }
}
