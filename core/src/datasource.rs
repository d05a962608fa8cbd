//! Data sources: how one identifier namespace of the platform maps to recipients.
//!
//! A `visitor-id` data source matches 38-digit visitor ids through the visitor links table; a
//! `declared-id` data source matches declared ids against a key column of the recipients table,
//! written as is (`plain`) or as the SHA-256 of a normalized email or phone (`sha256-email`,
//! `sha256-phone`, with a normalization [`Profile`]). Settings are plain serde values: the host
//! reads them from `[[datasource]]` tables of `audlink.toml`, the browser from JSON.
//!
//! ```toml
//! [[datasource]]
//! name = "crm-email"
//! dpid = 12345
//! kind = "declared-id"
//! key_column = "email"
//! encoding = "sha256-email"
//! profile = "adobe-v1"
//! policy = "all"
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{DeclaredId, HashedId, IdError, UserIdKind};
use crate::normalize::{CountryCode, DigestEncoding, PhoneOptions, Profile};

/// What to do when one identifier points at several recipients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AmbiguityPolicy {
    /// The most recently seen link wins (ties: the smallest recipient id). Declared keys have no
    /// time, so for them `latest` is `skip`.
    #[default]
    Latest,
    /// Every recipient the identifier points at.
    All,
    /// None of them: the identifier is `ambiguous`.
    Skip,
}

/// How a declared-id data source writes the recipients' key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyEncoding {
    /// The key column's value is the declared id.
    #[default]
    Plain,
    /// SHA-256 of the email in the key column, normalized by the profile.
    Sha256Email,
    /// SHA-256 of the phone number in the key column, normalized by the profile.
    Sha256Phone,
}

/// The two kinds of data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSourceKind {
    /// Visitor ids, through visitor links.
    VisitorId,
    /// Declared ids, from a recipients column.
    DeclaredId,
}

/// How a data source's identifiers relate to recipients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// Visitor ids, through the visitor links table.
    VisitorId,
    /// Declared ids, from a key column of the recipients table.
    DeclaredId(DeclaredKey),
}

/// The key column of a declared-id data source and how it becomes an identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeclaredKey {
    /// Recipients column holding the key.
    pub column: String,
    /// How the key is written as an identifier.
    pub encoding: KeyEncoding,
    /// Normalization profile for hashed encodings.
    pub profile: Profile,
    /// Phone options for `sha256-phone`.
    pub phone: PhoneOptions,
}

/// A configured data source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "DataSourceConfig", into = "DataSourceConfig")]
pub struct DataSource {
    /// Name users refer to it by.
    pub name: String,
    /// The platform's data source id.
    pub dpid: u64,
    /// The platform's integration code, if any.
    pub integration_code: Option<String>,
    /// What its identifiers are.
    pub identifier: Identifier,
    /// What to do when an identifier points at several recipients.
    pub policy: AmbiguityPolicy,
}

/// The flat form of a data source, as written in configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSourceConfig {
    /// Name users refer to it by.
    pub name: String,
    /// The platform's data source id.
    pub dpid: u64,
    /// The platform's integration code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_code: Option<String>,
    /// `visitor-id` or `declared-id`.
    pub kind: DataSourceKind,
    /// Recipients column of the key (declared-id only; required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_column: Option<String>,
    /// Key encoding (declared-id only; default `plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<KeyEncoding>,
    /// Normalization profile (hashed encodings only; default `adobe-v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Country code for national phone numbers (`sha256-phone` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_country_code: Option<CountryCode>,
    /// Ambiguity policy (default `latest`).
    #[serde(default)]
    pub policy: AmbiguityPolicy,
}

/// A data source configuration that does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data source {name:?}: {detail}")]
pub struct DataSourceError {
    /// The data source's name as given.
    pub name: String,
    /// What is wrong.
    pub detail: String,
}

impl TryFrom<DataSourceConfig> for DataSource {
    type Error = DataSourceError;

    fn try_from(config: DataSourceConfig) -> Result<DataSource, DataSourceError> {
        let fail = |detail: &str| DataSourceError {
            name: config.name.clone(),
            detail: detail.to_owned(),
        };
        if config.name.trim().is_empty() {
            return Err(fail("the name cannot be empty"));
        }
        if config.integration_code.as_deref() == Some("") {
            return Err(fail("integration_code cannot be empty"));
        }
        let identifier = match config.kind {
            DataSourceKind::VisitorId => {
                if config.key_column.is_some()
                    || config.encoding.is_some()
                    || config.profile.is_some()
                    || config.default_country_code.is_some()
                {
                    return Err(fail(
                        "key_column, encoding, profile and default_country_code only apply to a declared-id data source",
                    ));
                }
                Identifier::VisitorId
            }
            DataSourceKind::DeclaredId => {
                let Some(column) = config.key_column.clone().filter(|c| !c.is_empty()) else {
                    return Err(fail("a declared-id data source needs key_column"));
                };
                let encoding = config.encoding.unwrap_or_default();
                if encoding == KeyEncoding::Plain && config.profile.is_some() {
                    return Err(fail(
                        "profile only applies to the sha256-email and sha256-phone encodings",
                    ));
                }
                if encoding != KeyEncoding::Sha256Phone && config.default_country_code.is_some() {
                    return Err(fail(
                        "default_country_code only applies to the sha256-phone encoding",
                    ));
                }
                Identifier::DeclaredId(DeclaredKey {
                    column,
                    encoding,
                    profile: config.profile.unwrap_or_default(),
                    phone: PhoneOptions {
                        default_country_code: config.default_country_code,
                    },
                })
            }
        };
        Ok(DataSource {
            name: config.name,
            dpid: config.dpid,
            integration_code: config.integration_code,
            identifier,
            policy: config.policy,
        })
    }
}

impl From<DataSource> for DataSourceConfig {
    fn from(source: DataSource) -> DataSourceConfig {
        let (kind, key) = match source.identifier {
            Identifier::VisitorId => (DataSourceKind::VisitorId, None),
            Identifier::DeclaredId(key) => (DataSourceKind::DeclaredId, Some(key)),
        };
        let hashed = key
            .as_ref()
            .is_some_and(|k| k.encoding != KeyEncoding::Plain);
        DataSourceConfig {
            name: source.name,
            dpid: source.dpid,
            integration_code: source.integration_code,
            kind,
            encoding: key.as_ref().map(|k| k.encoding),
            profile: key.as_ref().filter(|_| hashed).map(|k| k.profile),
            default_country_code: key.as_ref().and_then(|k| k.phone.default_country_code),
            key_column: key.map(|k| k.column),
            policy: source.policy,
        }
    }
}

/// The match key of one identifier: what indexes are built on and probed with.
///
/// Visitor ids are their integer; declared ids are a SHA-256 digest — of the id itself for
/// `plain` keys (so every declared key is a fixed 32 bytes), or the hashed identifier's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchKey {
    /// A visitor id's value.
    Visitor(u128),
    /// A 32-byte digest.
    Digest([u8; 32]),
}

impl DataSource {
    /// The kind of user id the data source's files hold.
    pub fn user_id_kind(&self) -> UserIdKind {
        match self.identifier {
            Identifier::VisitorId => UserIdKind::VisitorId,
            Identifier::DeclaredId(_) => UserIdKind::DeclaredId,
        }
    }

    /// The match key of an identifier as it appears in a platform file: a 38-digit visitor id,
    /// a declared id, or a hashed id in the profile's digest encoding (hex in any case, or
    /// base64).
    pub fn incoming_key(&self, raw: &[u8]) -> Result<MatchKey, IdError> {
        match &self.identifier {
            Identifier::VisitorId => {
                crate::id::VisitorId::parse(raw).map(|id| MatchKey::Visitor(id.as_u128()))
            }
            Identifier::DeclaredId(key) => match key.encoding {
                KeyEncoding::Plain => {
                    let id = DeclaredId::parse(raw)?;
                    Ok(MatchKey::Digest(*Profile::hash(id.as_str()).digest()))
                }
                KeyEncoding::Sha256Email | KeyEncoding::Sha256Phone => {
                    let digest = match key.profile.encoding() {
                        DigestEncoding::Hex => HashedId::parse_hex(raw)?,
                        DigestEncoding::Base64 => HashedId::parse_base64(raw)?,
                    };
                    Ok(MatchKey::Digest(*digest.digest()))
                }
            },
        }
    }
}

impl DeclaredKey {
    /// Turns a recipient's key value into its identifier: the text the platform is sent and the
    /// match key it is found by. `scratch` is reused between calls.
    pub fn encode(&self, value: &str, scratch: &mut String) -> Result<(String, MatchKey), IdError> {
        match self.encoding {
            KeyEncoding::Plain => {
                let id = DeclaredId::parse(value.as_bytes())?;
                Ok((
                    id.as_str().to_owned(),
                    MatchKey::Digest(*Profile::hash(id.as_str()).digest()),
                ))
            }
            KeyEncoding::Sha256Email | KeyEncoding::Sha256Phone => {
                if self.encoding == KeyEncoding::Sha256Email {
                    self.profile.normalize_email_into(value, scratch)?;
                } else {
                    self.profile
                        .normalize_phone_into(value, &self.phone, scratch)?;
                }
                let digest = Profile::hash(scratch);
                let text = match self.profile.encoding() {
                    DigestEncoding::Hex => digest.to_hex(),
                    DigestEncoding::Base64 => digest.to_base64(),
                };
                Ok((text, MatchKey::Digest(*digest.digest())))
            }
        }
    }
}

impl fmt::Display for DataSourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataSourceKind::VisitorId => "visitor-id",
            DataSourceKind::DeclaredId => "declared-id",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<DataSource, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn visitor_and_declared_sources_round_trip() {
        let visitor =
            parse(r#"{"name":"web","dpid":1,"kind":"visitor-id","policy":"skip"}"#).unwrap();
        assert_eq!(
            (visitor.identifier.clone(), visitor.policy),
            (Identifier::VisitorId, AmbiguityPolicy::Skip)
        );
        let email = parse(
            r#"{"name":"crm","dpid":2,"kind":"declared-id","key_column":"email","encoding":"sha256-email","profile":"uid2-v1"}"#,
        )
        .unwrap();
        let Identifier::DeclaredId(key) = &email.identifier else {
            panic!("declared")
        };
        assert_eq!(
            (key.column.as_str(), key.encoding, key.profile),
            ("email", KeyEncoding::Sha256Email, Profile::Uid2V1)
        );
        assert_eq!(email.policy, AmbiguityPolicy::Latest);
        for source in [visitor, email] {
            let json = serde_json::to_string(&source).unwrap();
            assert_eq!(parse(&json).unwrap(), source, "{json}");
        }
    }

    #[test]
    fn inconsistent_settings_are_errors_naming_the_source() {
        let cases = [
            (
                r#"{"name":"x","dpid":1,"kind":"declared-id"}"#,
                "data source \"x\": a declared-id data source needs key_column",
            ),
            (
                r#"{"name":"x","dpid":1,"kind":"visitor-id","key_column":"email"}"#,
                "only apply to a declared-id",
            ),
            (
                r#"{"name":"x","dpid":1,"kind":"declared-id","key_column":"k","profile":"google-v1"}"#,
                "profile only applies",
            ),
            (
                r#"{"name":"x","dpid":1,"kind":"declared-id","key_column":"k","encoding":"sha256-email","default_country_code":1}"#,
                "default_country_code only applies",
            ),
            (
                r#"{"name":" ","dpid":1,"kind":"visitor-id"}"#,
                "name cannot be empty",
            ),
            (
                r#"{"name":"x","dpid":1,"kind":"visitor-id","colour":"red"}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"name":"x","dpid":1,"kind":"device-id"}"#,
                "unknown variant `device-id`",
            ),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn incoming_and_recipient_keys_meet() {
        let source = parse(r#"{"name":"crm","dpid":2,"kind":"declared-id","key_column":"email","encoding":"sha256-email"}"#).unwrap();
        let Identifier::DeclaredId(key) = &source.identifier else {
            panic!("declared")
        };
        let mut scratch = String::new();
        let (text, from_recipient) = key.encode(" Test@Example.COM ", &mut scratch).unwrap();
        assert_eq!(
            text,
            "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
        );
        assert_eq!(
            source.incoming_key(text.to_uppercase().as_bytes()).unwrap(),
            from_recipient
        );
        assert_eq!(
            source.incoming_key(b"not-a-hash").unwrap_err().reason,
            crate::id::IdReason::BadChar
        );
        assert_eq!(
            key.encode("no-at-sign", &mut scratch).unwrap_err().reason,
            crate::id::IdReason::InvalidEmail
        );

        let plain =
            parse(r#"{"name":"p","dpid":3,"kind":"declared-id","key_column":"crm_id"}"#).unwrap();
        let Identifier::DeclaredId(key) = &plain.identifier else {
            panic!("declared")
        };
        let (text, k) = key.encode("CRM-1", &mut scratch).unwrap();
        assert_eq!(
            (text.as_str(), plain.incoming_key(b"CRM-1").unwrap()),
            ("CRM-1", k)
        );
        assert_ne!(
            plain.incoming_key(b"crm-1").unwrap(),
            k,
            "declared ids are case-sensitive"
        );

        let visitor = parse(r#"{"name":"v","dpid":4,"kind":"visitor-id"}"#).unwrap();
        assert_eq!(
            visitor.incoming_key(&[b'0'; 38]).unwrap(),
            MatchKey::Visitor(0)
        );
        assert_eq!(visitor.user_id_kind(), UserIdKind::VisitorId);
    }
}
