//! `audlink.toml`: the data sources (and, later, jobs and credentials' locations).
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
//! Unknown keys are errors, so a typo does not silently change what is matched.

use std::path::Path;

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
}

/// The configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The data sources, in file order.
    pub datasources: Vec<DataSource>,
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
        Ok(Config { datasources })
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
        let err = config.datasource("nope", None).unwrap_err();
        assert!(
            err.0.contains("unknown data source \"nope\"") && err.0.contains("ecid"),
            "{err}"
        );
    }
}
