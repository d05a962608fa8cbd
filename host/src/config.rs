//! `audlink.toml`: the data sources, the platform (`[remote]`), the file exchange
//! (`[exchange]`) and the jobs of `audlink sync` (`[[job]]`).
//!
//! ```toml
//! [[datasource]]
//! name = "ecid"            # what commands call it (--datasource ecid)
//! kind = "visitor-id"      # or "declared-id"
//! dpid = 21                # the platform's data source id
//! # integration_code = "crm-ecid"
//! # policy = "latest"      # latest | all | skip: an identifier linked to several recipients
//!
//! [[datasource]]
//! name = "crm-email"
//! kind = "declared-id"
//! dpid = 22
//! key = "email"            # the recipients column holding the key
//! encoding = "sha256-email" # plain | sha256-email | sha256-phone
//! # profile = "adobe-v1"   # normalization profile of hashed keys
//! # country_code = 31      # for national phone numbers (sha256-phone)
//! ```
//!
//! An optional `[remote]` table says where the platform is and how the integration talks to it
//! (see [`RemoteConfig`]); the credentials themselves are never in this file.
//!
//! `[[job]]` tables declare what `audlink sync` runs (see [`job`]).
//!
//! Unknown keys are errors, so a typo does not silently change what is matched.

pub mod job;

use std::path::{Path, PathBuf};

use audlink_core::datasource::{
    AmbiguityPolicy, DataSource, DataSourceConfig, DataSourceKind, KeyEncoding,
};
use audlink_core::normalize::{CountryCode, Profile};
use serde::Deserialize;

/// The commented file `audlink init` writes when there is none.
pub const TEMPLATE: &str = r#"# audlink configuration. Data sources name the platform's identifier spaces; commands refer
# to them with --datasource NAME.

[[datasource]]
name = "ecid"              # Experience Cloud visitor ids, matched through the visitor links
kind = "visitor-id"
dpid = 21
# policy = "latest"        # latest | all | skip: a visitor id linked to several recipients

[[datasource]]
name = "crm-email"         # hashed emails, matched against the recipients' email column
kind = "declared-id"
dpid = 22
key = "email"
encoding = "sha256-email"  # plain | sha256-email | sha256-phone
# profile = "adobe-v1"     # adobe-v1 | google-v1 | uid2-v1 | meta-v1

# The platform (`audlink remote check`, `audlink audience export --remote`). Credentials come
# from AUDLINK_CLIENT_ID / AUDLINK_CLIENT_SECRET (and AUDLINK_ORG_ID) or from credentials_file,
# never from this file.
# [remote]
# org_id = "0123456789ABCDEF01234567@AdobeOrg"  # the suffix may be left out
# credentials_file = "audlink-credentials.toml" # client_id, client_secret[, org_id]; mode 0600
# trait_folder_id = 12345      # where exported audiences' traits go
# segment_folder_id = 678      # where their segments go
# trait_ttl = 120              # days a qualification lasts (0: forever)
# ims_url = "https://ims-na1.adobelogin.com"
# aam_url = "https://aam.adobe.io"
# scopes = ["openid", "AdobeID", "read_organizations", "additional_info.projectedProductContext", "additional_info.roles"]
# timeout_ms = 30000           # one attempt: request and whole response
# max_retries = 4              # transient failures (timeouts, 429, 5xx) retried with backoff
# backoff_base_ms = 500        # first backoff; doubles, with jitter, capped at 30 s
# page_size = 200              # items per page when listing

## The file exchange: a local folder (default: `exchange` beside this file) or an S3-compatible
## bucket (credentials from AUDLINK_S3_ACCESS_KEY_ID / AUDLINK_S3_SECRET_ACCESS_KEY).
# [exchange]
# folder = "exchange"
## bucket = "my-audience-bucket"            # instead of folder, with:
## endpoint = "https://s3.eu-west-1.amazonaws.com"
## region = "eu-west-1"
# onboarding_prefix = "onboarding"          # uploads: <prefix>/date=<yyyy-mm-dd>/ftp_dpm_…
## max_retries = 4                          # 5xx, 429, timeouts; backoff from backoff_base_ms

## Jobs of `audlink sync` (`--once`: each once; without: each on its interval until stopped).
# [[job]]
# name = "platform-in"                      # unique
# kind = "import"                           # exchange objects under prefix -> lists
# every = "15m"                             # s, m, h, d: "30s", "1h30m", "1d"
# datasource = "ecid"
# prefix = "outbound/"                      # each object imported once (changed: again)
# map = { "4321" = "vip" }                  # segment -> list (default: segment-<ID>)
# [[job]]
# name = "vip-out"
# kind = "export"                           # a list (or where = "rule") -> the exchange
# every = "1h"
# datasource = "ecid"
# list = "vip"
# trait_id = 4242
# mode = "delta"                            # sync | overwrite | delta
"#;

/// One `[[datasource]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSourceToml {
    name: String,
    kind: DataSourceKind,
    dpid: u64,
    #[serde(default)]
    integration_code: Option<String>,
    #[serde(default)]
    policy: Option<AmbiguityPolicy>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    encoding: Option<KeyEncoding>,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    country_code: Option<CountryCode>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigToml {
    #[serde(default)]
    datasource: Vec<DataSourceToml>,
    #[serde(default)]
    remote: Option<RemoteConfig>,
    #[serde(default)]
    exchange: Option<ExchangeConfig>,
    #[serde(default)]
    job: Vec<toml::Spanned<job::JobToml>>,
    #[serde(default)]
    serve: Option<ServeConfig>,
    #[serde(default)]
    sync: Option<SyncConfig>,
}

/// The configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The data sources, in file order.
    pub datasources: Vec<DataSource>,
    /// The `[remote]` table (all defaults when absent).
    pub remote: RemoteConfig,
    /// The `[exchange]` table (the local folder `exchange/` when absent).
    pub exchange: ExchangeConfig,
    /// Whether the file has a `[remote]` table (export jobs then use the platform by default).
    pub has_remote: bool,
    /// The `[[job]]` tables, in file order.
    pub jobs: Vec<job::Job>,
    /// The `[serve]` table (`audlink serve`'s limits; all defaults when absent).
    pub serve: ServeConfig,
    /// The `[sync]` table (where `audlink sync` keeps its lock and downloads).
    pub sync: SyncConfig,
}

/// The `[sync]` table: the files `audlink sync` keeps beside its work. Paths are relative to
/// the configuration file; the defaults sit beside a SQLite database (`<db>.sync-lock`,
/// `<db>.sync-<run>/`), and a database that is not a file (a server) needs them set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// The lock file one `audlink sync` per database holds.
    pub lock_file: Option<PathBuf>,
    /// The folder import jobs download into (a subfolder per run, removed after it).
    pub scratch_dir: Option<PathBuf>,
}

/// The `[serve]` table: the limits of `audlink serve`'s API. The tokens are not here: they come
/// from `AUDLINK_SERVE_TOKENS` or from `tokens_file` (see `crate::serve::auth`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// A file of tokens, one `name:role:token` a line (relative to this configuration file;
    /// readable by its owner only).
    pub tokens_file: Option<PathBuf>,
    /// Largest JSON request body, in bytes.
    pub max_body_bytes: u64,
    /// Largest upload (all files of one import), in bytes.
    pub max_upload_bytes: u64,
    /// Requests one token may have in flight; more get 429.
    pub concurrency_per_token: u32,
    /// Origins allowed to call the API from a browser (CORS); none: no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// Sandbox instances that may exist at once (the pooling allocator's slots).
    pub instances: u32,
    /// Memory cap of one sandboxed call, in MiB.
    pub sandbox_memory_mib: u64,
    /// Deadline of one sandboxed call, in milliseconds.
    pub sandbox_deadline_ms: u64,
    /// Deadline of one database query of a preview or export rule, in milliseconds.
    pub query_deadline_ms: u64,
    /// How long shutdown waits for running jobs before marking them interrupted, in
    /// milliseconds.
    pub shutdown_wait_ms: u64,
    /// Where jobs keep their uploads and files (relative to this configuration file; default:
    /// `<database>.jobs` beside the database).
    pub jobs_dir: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            tokens_file: None,
            max_body_bytes: 1 << 20,
            max_upload_bytes: 256 << 20,
            concurrency_per_token: 8,
            cors_origins: Vec::new(),
            instances: 16,
            sandbox_memory_mib: 1024,
            sandbox_deadline_ms: 60_000,
            query_deadline_ms: 60_000,
            shutdown_wait_ms: 10_000,
            jobs_dir: None,
        }
    }
}

impl ServeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_upload_bytes", self.max_upload_bytes),
            (
                "concurrency_per_token",
                u64::from(self.concurrency_per_token),
            ),
            ("instances", u64::from(self.instances)),
            ("sandbox_deadline_ms", self.sandbox_deadline_ms),
            ("query_deadline_ms", self.query_deadline_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError(format!("[serve] {key} must be positive")));
            }
        }
        if !(16..=4096).contains(&self.sandbox_memory_mib) {
            return Err(ConfigError(
                "[serve] sandbox_memory_mib must be in 16..=4096".to_owned(),
            ));
        }
        if self.instances > 1000 {
            return Err(ConfigError(
                "[serve] instances must be at most 1000".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The `[exchange]` table: where files are exchanged — a local folder (`folder`, the default
/// `exchange` beside `audlink.toml`) or an S3-compatible bucket (`bucket` and the keys after
/// it). The credentials are not here (`AUDLINK_S3_ACCESS_KEY_ID` / `AUDLINK_S3_SECRET_ACCESS_KEY`
/// or `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeConfig {
    /// The local folder (relative to `audlink.toml`); not with `bucket`.
    pub folder: Option<PathBuf>,
    /// The S3 bucket.
    pub bucket: Option<String>,
    /// The S3 endpoint (AWS's own when absent).
    pub endpoint: Option<String>,
    /// The signing region (`us-east-1` when absent).
    pub region: Option<String>,
    /// Virtual-hosted style addressing instead of path style.
    pub virtual_hosted_style: bool,
    /// Whether a plain `http://` endpoint is allowed.
    pub allow_http: bool,
    /// Retries of a transient failure (4 when absent).
    pub max_retries: Option<usize>,
    /// Milliseconds of the first backoff (100 when absent).
    pub backoff_base_ms: Option<u64>,
    /// Milliseconds one attempt may take (30000 when absent).
    pub timeout_ms: Option<u64>,
    /// The key prefix onboarding files are uploaded under (`onboarding` when absent).
    pub onboarding_prefix: Option<String>,
}

impl ExchangeConfig {
    /// The exchange these values name; `config_path` is the `audlink.toml` a relative folder is
    /// resolved against. S3 credentials are read from the environment here.
    pub fn open(&self, config_path: &Path) -> Result<crate::exchange::Exchange, ConfigError> {
        use crate::exchange::{Exchange, LocalFolder, S3Bucket, S3Settings};
        let Some(bucket) = &self.bucket else {
            let folder = self
                .folder
                .clone()
                .unwrap_or_else(|| PathBuf::from("exchange"));
            let base = config_path.parent().unwrap_or(Path::new("."));
            return Ok(Exchange::Local(LocalFolder::new(base.join(folder))));
        };
        if self.folder.is_some() {
            return Err(ConfigError(
                "[exchange] has both folder and bucket; keep one".to_owned(),
            ));
        }
        let mut settings =
            S3Settings::from_env(bucket.clone()).map_err(|e| ConfigError(e.to_string()))?;
        settings.endpoint = self.endpoint.clone();
        if let Some(region) = &self.region {
            settings.region = region.clone();
        }
        settings.virtual_hosted_style = self.virtual_hosted_style;
        settings.allow_http = self.allow_http;
        if let Some(n) = self.max_retries {
            settings.max_retries = n;
        }
        if let Some(ms) = self.backoff_base_ms {
            settings.backoff_base_ms = ms;
        }
        if let Some(ms) = self.timeout_ms {
            settings.timeout_ms = ms;
        }
        S3Bucket::new(&settings)
            .map(Exchange::S3)
            .map_err(|e| ConfigError(e.to_string()))
    }

    /// The prefix onboarding files go under.
    pub fn onboarding_prefix(&self) -> &str {
        self.onboarding_prefix.as_deref().unwrap_or("onboarding")
    }
}

/// The `[remote]` table: where the platform is and how patiently to talk to it. Every key is
/// optional; the credentials are not here (environment or `credentials_file`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    /// The IMS base URL.
    pub ims_url: String,
    /// The Audience Manager API base URL.
    pub aam_url: String,
    /// The IMS organization (with or without `@AdobeOrg`).
    pub org_id: Option<String>,
    /// The scopes of the token.
    pub scopes: Vec<String>,
    /// A TOML file with `client_id`, `client_secret` and optionally `org_id` (relative to
    /// this configuration file; readable by its owner only).
    pub credentials_file: Option<PathBuf>,
    /// The trait folder exported audiences' traits go to.
    pub trait_folder_id: Option<u64>,
    /// The segment folder their segments go to.
    pub segment_folder_id: Option<u64>,
    /// Days a trait qualification lasts (0: forever).
    pub trait_ttl: u32,
    /// Milliseconds one attempt (request and whole response) may take.
    pub timeout_ms: u64,
    /// Retries of a transient failure.
    pub max_retries: u32,
    /// Milliseconds of the first backoff.
    pub backoff_base_ms: u64,
    /// Items per page when listing.
    pub page_size: u32,
}

impl Default for RemoteConfig {
    fn default() -> RemoteConfig {
        let settings = crate::remote::Settings::default();
        RemoteConfig {
            ims_url: settings.ims_url,
            aam_url: settings.aam_url,
            org_id: None,
            scopes: settings.scopes,
            credentials_file: None,
            trait_folder_id: None,
            segment_folder_id: None,
            trait_ttl: 120,
            timeout_ms: settings.timeout.as_millis() as u64,
            max_retries: settings.retry.max_retries,
            backoff_base_ms: settings.retry.base.as_millis() as u64,
            page_size: settings.page_size,
        }
    }
}

impl RemoteConfig {
    /// The client settings these values give.
    pub fn settings(&self) -> crate::remote::Settings {
        let defaults = crate::remote::Settings::default();
        crate::remote::Settings {
            ims_url: self.ims_url.clone(),
            aam_url: self.aam_url.clone(),
            scopes: self.scopes.clone(),
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            retry: crate::remote::retry::RetryPolicy {
                max_retries: self.max_retries,
                base: std::time::Duration::from_millis(self.backoff_base_ms),
                max_delay: defaults.retry.max_delay,
            },
            page_size: self.page_size,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [("ims_url", &self.ims_url), ("aam_url", &self.aam_url)] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError(format!(
                    "[remote] {key} {url:?} is not an http(s) URL"
                )));
            }
        }
        if self.scopes.is_empty()
            || self
                .scopes
                .iter()
                .any(|s| s.trim().is_empty() || s.contains(','))
        {
            return Err(ConfigError(
                "[remote] scopes must be a non-empty list of scope names".to_owned(),
            ));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError(
                "[remote] timeout_ms must be positive".to_owned(),
            ));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(ConfigError(
                "[remote] page_size must be in 1..=1000".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A configuration that cannot be used (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(ConfigError(format!("{}: {e}", path.display()))),
        };
        Config::parse(&text)
            .map_err(|ConfigError(e)| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Parses the text of an `audlink.toml`.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: ConfigToml = toml::from_str(text).map_err(|e| {
            ConfigError(e.message().trim_end_matches('.').to_owned() + &location(text, &e))
        })?;
        let mut datasources: Vec<DataSource> = Vec::with_capacity(raw.datasource.len());
        for ds in raw.datasource {
            if datasources.iter().any(|d| d.name == ds.name) {
                return Err(ConfigError(format!(
                    "data source {:?} is defined twice",
                    ds.name
                )));
            }
            let config = DataSourceConfig {
                name: ds.name,
                dpid: ds.dpid,
                integration_code: ds.integration_code,
                kind: ds.kind,
                key_column: ds.key,
                encoding: ds.encoding,
                profile: ds.profile,
                default_country_code: ds.country_code,
                policy: ds.policy.unwrap_or_default(),
            };
            datasources.push(DataSource::try_from(config).map_err(|e| ConfigError(e.to_string()))?);
        }
        let has_remote = raw.remote.is_some();
        let remote = raw.remote.unwrap_or_default();
        remote.validate()?;
        let jobs = job::validate(text, raw.job, &datasources, has_remote)?;
        let serve = raw.serve.unwrap_or_default();
        serve.validate()?;
        Ok(Config {
            datasources,
            remote,
            exchange: raw.exchange.unwrap_or_default(),
            has_remote,
            jobs,
            serve,
            sync: raw.sync.unwrap_or_default(),
        })
    }

    /// The data source called `name`, with `policy` overriding the file's when given.
    pub fn datasource(
        &self,
        name: &str,
        policy: Option<AmbiguityPolicy>,
    ) -> Result<DataSource, ConfigError> {
        let mut found = self
            .datasources
            .iter()
            .find(|d| d.name == name)
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = self.datasources.iter().map(|d| d.name.as_str()).collect();
                ConfigError(if known.is_empty() {
                    format!("unknown data source {name:?}: audlink.toml defines none (run `audlink init`)")
                } else {
                    format!("unknown data source {name:?} (audlink.toml defines {})", known.join(", "))
                })
            })?;
        if let Some(policy) = policy {
            found.policy = policy;
        }
        Ok(found)
    }
}

/// ` (line N)` of a parse error, when it has a place.
fn location(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audlink_core::datasource::Identifier;

    /// The complete organisation's `audlink.toml` of README.md ("`audlink sync`: scheduled
    /// jobs") is a configuration audlink accepts, with every table it shows.
    #[test]
    fn the_readme_organisation_config_parses() {
        let readme = include_str!("../../README.md");
        let from = readme
            .find("A complete `audlink.toml` for an organisation")
            .expect("README shows the complete audlink.toml");
        let block = &readme[from..];
        let start = block.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let end = start + block[start..].find("\n```").expect("the block ends");
        let config = Config::parse(&block[start..end]).unwrap();
        assert_eq!(config.datasources.len(), 2);
        assert!(config.has_remote);
        assert_eq!(config.exchange.bucket.as_deref(), Some("acme-aam-exchange"));
        let jobs: Vec<(&str, job::JobKind)> = config
            .jobs
            .iter()
            .map(|j| (j.name.as_str(), j.kind()))
            .collect();
        assert_eq!(
            jobs,
            [
                ("aam-segments-in", job::JobKind::Import),
                ("aep-newsletter-in", job::JobKind::Import),
                ("vip-out", job::JobKind::Export),
                ("lapsed-out", job::JobKind::Export),
            ]
        );
    }

    #[test]
    fn the_template_parses_into_both_kinds() {
        let config = Config::parse(TEMPLATE).unwrap();
        assert_eq!(config.datasources.len(), 2);
        assert!(matches!(
            config.datasources[0].identifier,
            Identifier::VisitorId
        ));
        assert!(matches!(
            config.datasources[1].identifier,
            Identifier::DeclaredId(_)
        ));
        let skip = config
            .datasource("ecid", Some(AmbiguityPolicy::Skip))
            .unwrap();
        assert_eq!(skip.policy, AmbiguityPolicy::Skip);
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let err = Config::parse(
            "[[datasource]]\nname = \"a\"\nkind = \"visitor-id\"\ndpid = 1\nkye = 2\n",
        )
        .unwrap_err();
        assert!(err.0.contains("kye") && err.0.contains("line 5"), "{err}");
        let err = Config::parse("[[datasource]]\nname = \"a\"\nkind = \"declared-id\"\ndpid = 1\n")
            .unwrap_err();
        assert!(err.0.contains("data source \"a\""), "{err}");
        let twice = "[[datasource]]\nname = \"a\"\nkind = \"visitor-id\"\ndpid = 1\n".repeat(2);
        assert!(
            Config::parse(&twice)
                .unwrap_err()
                .0
                .contains("defined twice")
        );
        let config = Config::parse(TEMPLATE).unwrap();
        assert_eq!(config.remote, RemoteConfig::default());
        let err = config.datasource("nope", None).unwrap_err();
        assert!(
            err.0.contains("unknown data source \"nope\"") && err.0.contains("ecid"),
            "{err}"
        );
    }

    #[test]
    fn the_sync_table_names_the_lock_and_the_scratch_folder() {
        let config =
            Config::parse("[sync]\nlock_file = \"run/lock\"\nscratch_dir = \"tmp\"\n").unwrap();
        assert_eq!(config.sync.lock_file, Some(PathBuf::from("run/lock")));
        assert_eq!(config.sync.scratch_dir, Some(PathBuf::from("tmp")));
        assert_eq!(Config::parse("").unwrap().sync, SyncConfig::default());
        let err = Config::parse("[sync]\nlock = \"x\"\n").unwrap_err();
        assert!(err.0.contains("lock") && err.0.contains("line 2"), "{err}");
    }

    /// The template's commented `[remote]` table, uncommented, is valid and means what it says.
    #[test]
    fn the_templates_remote_table_uncommented_parses() {
        // The data sources as they are, everything from `# [remote]` on uncommented.
        let uncommented: String = TEMPLATE
            .lines()
            .take_while(|l| !l.starts_with("# [remote]"))
            .chain(
                TEMPLATE
                    .lines()
                    .skip_while(|l| !l.starts_with("# [remote]"))
                    .map(|l| l.strip_prefix("# ").unwrap_or(l)),
            )
            .collect::<Vec<_>>()
            .join("\n");
        let config = Config::parse(&uncommented).unwrap();
        let remote = &config.remote;
        assert_eq!(
            remote.org_id.as_deref(),
            Some("0123456789ABCDEF01234567@AdobeOrg")
        );
        assert_eq!(remote.trait_folder_id, Some(12345));
        assert_eq!(remote.segment_folder_id, Some(678));
        assert_eq!(
            config.exchange.folder.as_deref(),
            Some(Path::new("exchange"))
        );
        assert_eq!(config.exchange.bucket, None);
        assert_eq!(config.exchange.onboarding_prefix(), "onboarding");
        let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["platform-in", "vip-out"]);
        assert_eq!(config.jobs[0].every, std::time::Duration::from_secs(900));
        assert_eq!(
            remote.credentials_file.as_deref(),
            Some(Path::new("audlink-credentials.toml"))
        );
        // Everything else written there is the default.
        let defaults = RemoteConfig::default();
        assert_eq!(
            (
                &remote.ims_url,
                &remote.aam_url,
                &remote.scopes,
                remote.timeout_ms
            ),
            (
                &defaults.ims_url,
                &defaults.aam_url,
                &defaults.scopes,
                defaults.timeout_ms
            )
        );
        assert_eq!(
            (
                remote.max_retries,
                remote.backoff_base_ms,
                remote.page_size,
                remote.trait_ttl
            ),
            (
                defaults.max_retries,
                defaults.backoff_base_ms,
                defaults.page_size,
                defaults.trait_ttl
            )
        );
        let settings = remote.settings();
        assert_eq!(settings.retry.base, std::time::Duration::from_millis(500));
    }

    #[test]
    fn bad_remote_tables_are_refused() {
        for (text, what) in [
            ("[remote]\nims_url = \"ftp://x\"\n", "ims_url"),
            ("[remote]\nscopes = []\n", "scopes"),
            ("[remote]\nscopes = [\"a,b\"]\n", "scopes"),
            ("[remote]\ntimeout_ms = 0\n", "timeout_ms"),
            ("[remote]\npage_size = 0\n", "page_size"),
            ("[remote]\nclient_secret = \"x\"\n", "client_secret"),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(err.0.contains(what), "{text}: {err}");
        }
    }

    #[test]
    fn the_serve_table_has_defaults_and_refuses_unusable_limits() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.serve, ServeConfig::default());
        let config = Config::parse(
            "[serve]\ninstances = 2\nsandbox_memory_mib = 64\ncors_origins = [\"https://a.example\"]\n",
        )
        .unwrap();
        assert_eq!(config.serve.instances, 2);
        assert_eq!(config.serve.sandbox_memory_mib, 64);
        assert_eq!(
            config.serve.cors_origins,
            vec!["https://a.example".to_owned()]
        );
        assert_eq!(
            config.serve.max_body_bytes,
            ServeConfig::default().max_body_bytes
        );
        for (text, what) in [
            ("[serve]\ninstances = 0\n", "instances must be positive"),
            ("[serve]\nsandbox_memory_mib = 8\n", "16..=4096"),
            (
                "[serve]\nquery_deadline_ms = 0\n",
                "query_deadline_ms must be positive",
            ),
            ("[serve]\ntokens = \"x\"\n", "unknown field"),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(err.0.contains(what), "{text}: {err}");
        }
    }
}
