//! The command line's flags (clap): global options and commands (the contract in README.md).
//! Options with a fixed set of values take the plans' own types ([`Choice`]), so the flags,
//! the server's bodies and the `[[job]]` tables accept the same codes.

use std::path::PathBuf;

use audlink_core::datasource::AmbiguityPolicy;
use audlink_core::export::ExportMode;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::plan::{AepMode, Choice, InputFormat};
use crate::store::DbUrl;

/// Parses `--db` into a [`DbUrl`]. Unlike clap's own error, a refusal never repeats the value
/// (a URL may hold a password); the [`DbUrlError`](crate::store::DbUrlError) says what is
/// wrong without it.
#[derive(Debug, Clone, Copy)]
struct DbUrlParser;

impl TypedValueParser for DbUrlParser {
    type Value = DbUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<DbUrl, clap::Error> {
        DbUrl::parse_os(value).map_err(|e| {
            let arg = arg.map_or_else(|| "--db".to_owned(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{arg}': {e}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

/// clap's parser of a [`Choice`]: its codes are the possible values.
fn choice<T: Choice + Clone + Send + Sync>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::ALL.iter().map(|v| v.code())).try_map(|s| T::parse_code(&s))
}

/// Share audiences between a campaign database and an identity platform.
#[derive(Debug, Parser)]
#[command(name = "audlink", version, about, max_term_width = 100)]
pub struct Cli {
    /// The database: a SQLite file's path (or sqlite:PATH); postgres://… is not supported yet.
    #[arg(
        long,
        global = true,
        env = "AUDLINK_DB",
        default_value = "audlink.db",
        value_parser = DbUrlParser
    )]
    pub db: DbUrl,
    /// The configuration file (data sources).
    #[arg(long, global = true, default_value = "audlink.toml")]
    pub config: PathBuf,
    /// Machine-readable output on stdout (logs stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Less output: no progress bars, warnings and errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Memory cap of one sandboxed call, in MiB (at most 4096: all wasm32 can address).
    #[arg(
        long,
        global = true,
        env = "AUDLINK_SANDBOX_MEMORY_MIB",
        default_value_t = 4096,
        value_parser = clap::value_parser!(u64).range(16..=4096)
    )]
    pub sandbox_memory_mib: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database and a commented audlink.toml if missing.
    Init,
    /// Recipients: load a CSV (upsert by id).
    #[command(subcommand)]
    Recipients(RecipientsCommand),
    /// Visitor links: load a CSV `recipient_id,visitor_id[,last_seen]`.
    #[command(subcommand)]
    Visitors(VisitorsCommand),
    /// Shared audiences: import into lists, export as onboarding files.
    #[command(subcommand)]
    Audience(AudienceCommand),
    /// Show a stored import report again.
    Report(ReportArgs),
    /// Lists and their members.
    #[command(subcommand)]
    List(ListCommand),
    /// Segment rules over the recipients.
    #[command(subcommand)]
    Segment(SegmentCommand),
    /// Write seeded sample data (recipients, links, an outbound file, an AEP export).
    Generate(GenerateArgs),
    /// Serve the browser preview page (static files) and print its URL.
    Serve(ServeArgs),
    /// The platform: credentials and data sources as Audience Manager sees them.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// The file exchange (`[exchange]`: a local folder or an S3 bucket).
    #[command(subcommand)]
    Exchange(ExchangeCommand),
    /// Run the `[[job]]`s of audlink.toml: once, or on their intervals until SIGINT/SIGTERM.
    Sync(SyncArgs),
}

/// `audlink sync [--once] [--job NAME]...` and `audlink sync status`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SyncArgs {
    /// Show runs instead of running jobs.
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
    /// Run every job once (in file order) and exit: non-zero when a job failed.
    #[arg(long)]
    pub once: bool,
    /// Run only this job (repeatable).
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
}

/// `audlink sync status`.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// The last runs of the jobs, newest first.
    Status {
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only the runs of this job.
        #[arg(long = "job", value_name = "NAME")]
        job: Option<String>,
    },
}

/// `audlink exchange …`.
#[derive(Debug, Subcommand)]
pub enum ExchangeCommand {
    /// List the objects under a prefix: key, size, ETag.
    Ls {
        /// Key prefix (everything when absent).
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Upload files; an onboarding file (`ftp_dpm_…`) goes under
    /// `<onboarding_prefix>/date=<yyyy-mm-dd>/<name>`, any other file needs `--key`.
    Put {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The key (one file only).
        #[arg(long)]
        key: Option<String>,
    },
}

/// `audlink remote …`.
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Get a token and list the configured data sources as the platform sees them.
    Check,
}

/// `audlink recipients …`.
#[derive(Debug, Subcommand)]
pub enum RecipientsCommand {
    /// Upsert recipients from a CSV with a header row and an `id` column.
    Load {
        /// The CSV file (plain or gzip).
        file: PathBuf,
    },
}

/// `audlink visitors …`.
#[derive(Debug, Subcommand)]
pub enum VisitorsCommand {
    /// Load visitor links from a CSV `recipient_id,visitor_id[,last_seen]`.
    Load {
        /// The CSV file (plain or gzip).
        file: PathBuf,
    },
}

/// `audlink audience …`.
#[derive(Debug, Subcommand)]
pub enum AudienceCommand {
    /// Import audience files into lists (one transaction for all files).
    Import(ImportArgs),
    /// Export a list or a rule's recipients as onboarding files.
    Export(ExportArgs),
}

/// `audlink audience import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The audience files (plain or gzip).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The data source the identifiers belong to (from audlink.toml).
    #[arg(long)]
    pub datasource: String,
    /// Put segment SEGMENT into list LIST (default list name: `segment-<ID>`).
    #[arg(long = "map", value_name = "SEGMENT=LIST", value_parser = parse_mapping)]
    pub mappings: Vec<(String, String)>,
    /// Ambiguity policy, overriding the data source's.
    #[arg(long, value_parser = choice::<AmbiguityPolicy>())]
    pub policy: Option<AmbiguityPolicy>,
    /// Experience Platform exports: the identity column (default: detected).
    #[arg(long)]
    pub identity_column: Option<String>,
    /// Experience Platform exports: the status column (default: detected).
    #[arg(long)]
    pub status_column: Option<String>,
    /// Experience Platform exports: full or incremental.
    #[arg(long, value_parser = choice::<AepMode>(), default_value = "incremental")]
    pub mode: AepMode,
    /// The files' format.
    #[arg(long, value_parser = choice::<InputFormat>(), default_value = "auto")]
    pub format: InputFormat,
    /// With `--format ids`: the segment the ids belong to.
    #[arg(long)]
    pub segment: Option<String>,
}

/// `audlink audience export`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("members").required(true).args(["list", "rule"]))]
pub struct ExportArgs {
    /// Export the members of this list.
    #[arg(long)]
    pub list: Option<String>,
    /// Export the recipients this rule selects.
    #[arg(long = "where", value_name = "RULE")]
    pub rule: Option<String>,
    /// The value of now() in the rule (RFC 3339; default: the current time).
    #[arg(long)]
    pub now: Option<String>,
    /// The data source whose identifiers are sent.
    #[arg(long)]
    pub datasource: String,
    /// The trait the members are added to.
    #[arg(long)]
    pub trait_id: u64,
    /// Where to write the onboarding files (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// How the audience changes.
    #[arg(long, value_parser = choice::<ExportMode>(), default_value = "sync")]
    pub mode: ExportMode,
    /// The audience's name (default: the list's; required with --where).
    #[arg(long)]
    pub audience: Option<String>,
    /// Gzip the files.
    #[arg(long)]
    pub gzip: bool,
    /// At most this many lines per file.
    #[arg(long)]
    pub max_lines: Option<u64>,
    /// The unix timestamp in the file names (default: now; a retried run reuses its own).
    #[arg(long)]
    pub timestamp: Option<u64>,
    /// Then find or create the audience's onboarded trait and segment on the platform.
    #[arg(long)]
    pub remote: bool,
}

/// `audlink report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The import's id (printed by `audience import`).
    pub import_id: i64,
    /// Also list the identifiers that did not match, with reason and line.
    #[arg(long)]
    pub unmatched: bool,
    /// At most this many unmatched rows.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// `audlink list …`.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// The lists and their sizes.
    Ls,
    /// A list's members, sorted by id.
    Show {
        /// The list's name.
        name: String,
    },
}

/// `audlink segment …`.
#[derive(Debug, Subcommand)]
pub enum SegmentCommand {
    /// Count, sample and break down the recipients a rule selects.
    Preview(PreviewArgs),
}

/// `audlink segment preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The rule, e.g. `country in ("NL", "BE") and age >= 18`.
    pub rule: String,
    /// Recipients to show.
    #[arg(long, default_value_t = 10)]
    pub sample: usize,
    /// A column to break the selection down by.
    #[arg(long)]
    pub by: Option<String>,
    /// The value of now() (RFC 3339; default: the current time).
    #[arg(long)]
    pub now: Option<String>,
}

/// `audlink generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The directory to write to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of recipients.
    #[arg(long, default_value_t = 10_000)]
    pub recipients: u64,
    /// The generator's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `audlink serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0: any free port; the URL printed says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// The page's folder (default: ./www if it holds index.html, else the source tree's www/).
    #[arg(long, env = "AUDLINK_WWW")]
    pub root: Option<PathBuf>,
}

fn parse_mapping(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((segment, list)) if !segment.is_empty() && !list.is_empty() => {
            Ok((segment.to_owned(), list.to_owned()))
        }
        _ => Err(format!("expected SEGMENT=LIST, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn import_flags_parse() {
        let cli = Cli::try_parse_from([
            "audlink",
            "--json",
            "audience",
            "import",
            "a.sync",
            "b.sync",
            "--datasource",
            "ecid",
            "--map",
            "55=vip",
            "--policy",
            "skip",
        ])
        .unwrap();
        let Command::Audience(AudienceCommand::Import(args)) = cli.command else {
            panic!("not an import");
        };
        assert_eq!(args.files.len(), 2);
        assert_eq!(args.mappings, vec![("55".to_owned(), "vip".to_owned())]);
        assert_eq!(args.policy, Some(AmbiguityPolicy::Skip));
        assert!(cli.json);
        let err = Cli::try_parse_from([
            "audlink",
            "audience",
            "import",
            "a",
            "--datasource",
            "x",
            "--map",
            "55",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("SEGMENT=LIST"), "{err}");
    }

    #[test]
    fn export_needs_a_list_or_a_rule() {
        let base = [
            "audlink",
            "audience",
            "export",
            "--datasource",
            "ecid",
            "--trait-id",
            "4",
            "--out",
            "o",
        ];
        assert!(Cli::try_parse_from(base).is_err());
        let mut with_list = base.to_vec();
        with_list.extend(["--list", "vip"]);
        assert!(Cli::try_parse_from(&with_list).is_ok());
        with_list.push("--remote");
        let cli = Cli::try_parse_from(&with_list).unwrap();
        let Command::Audience(AudienceCommand::Export(args)) = cli.command else {
            panic!("not an export");
        };
        assert!(args.remote);
    }

    #[test]
    fn remote_check_parses() {
        let cli = Cli::try_parse_from(["audlink", "-vv", "remote", "check", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Remote(RemoteCommand::Check)));
        assert!(cli.json);
        assert_eq!(cli.verbose, 2);
    }
}
