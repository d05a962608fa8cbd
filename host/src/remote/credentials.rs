//! The integration's credentials: an OAuth server-to-server client id and secret and the
//! organization, from environment variables or a credentials file.
//!
//! - Environment: `AUDLINK_CLIENT_ID` and `AUDLINK_CLIENT_SECRET` (both, or neither), and
//!   `AUDLINK_ORG_ID` when `[remote] org_id` does not name the organization.
//! - File: `[remote] credentials_file` in `audlink.toml` (relative to that file), a TOML file with
//!   `client_id`, `client_secret` and optionally `org_id`. On unix a file that the group or
//!   others may read is refused: the secret would not be secret.
//!
//! The secret is a [`Secret`]: its `Debug` and `Display` print `[redacted]`, so no log line,
//! error or report can show it by accident. The client id is not secret (it travels as the
//! `x-api-key` header) but is not printed either.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variable holding the client id.
pub const ENV_CLIENT_ID: &str = "AUDLINK_CLIENT_ID";
/// The environment variable holding the client secret.
pub const ENV_CLIENT_SECRET: &str = "AUDLINK_CLIENT_SECRET";
/// The environment variable holding the organization id.
pub const ENV_ORG_ID: &str = "AUDLINK_ORG_ID";

/// A value that must never be shown: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the value replaced by `[redacted]` (an empty value
    /// replaces nothing): what every error message that may quote a request goes through.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "[redacted]")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The credentials of one integration.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The OAuth client id (also the `x-api-key`).
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: Secret,
    /// The IMS organization, always with its `@AdobeOrg` suffix.
    pub org_id: String,
}

/// Why there are no usable credentials (a configuration error: exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialsError(pub String);

/// The organization id with its `@AdobeOrg` suffix, whether it was written with it or not.
pub fn org_with_suffix(org: &str) -> String {
    let org = org.trim();
    if org.ends_with("@AdobeOrg") {
        org.to_owned()
    } else {
        format!("{org}@AdobeOrg")
    }
}

/// The credentials file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    client_id: String,
    client_secret: Secret,
    #[serde(default)]
    org_id: Option<String>,
}

/// Reads the credentials: from the environment (`env` looks a variable up) when the client id
/// and secret are set there, else from `file`; the organization from `org_id` (configuration),
/// the environment or the file, in that order.
pub fn load(
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&Path>,
    org_id: Option<&str>,
) -> Result<Credentials, CredentialsError> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let (client_id, client_secret, file_org) = match (set(ENV_CLIENT_ID), set(ENV_CLIENT_SECRET)) {
        (Some(id), Some(secret)) => (id, Secret::new(secret), None),
        (Some(_), None) | (None, Some(_)) => {
            return Err(CredentialsError(format!(
                "{ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} must be set together"
            )));
        }
        (None, None) => match file {
            Some(path) => {
                let read = read_file(path)?;
                (read.client_id, read.client_secret, read.org_id)
            }
            None => {
                return Err(CredentialsError(format!(
                    "no credentials: set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}, or [remote] credentials_file in audlink.toml"
                )));
            }
        },
    };
    if client_id.trim().is_empty() || client_secret.expose().trim().is_empty() {
        return Err(CredentialsError(
            "the client id and secret must not be empty".to_owned(),
        ));
    }
    let org = org_id
        .map(str::to_owned)
        .or_else(|| set(ENV_ORG_ID))
        .or(file_org)
        .filter(|o| !o.trim().is_empty())
        .ok_or_else(|| {
            CredentialsError(format!(
                "no organization: set [remote] org_id in audlink.toml or {ENV_ORG_ID}"
            ))
        })?;
    Ok(Credentials {
        client_id: client_id.trim().to_owned(),
        client_secret,
        org_id: org_with_suffix(&org),
    })
}

/// Reads the credentials from the process environment (and `file`).
pub fn from_env(
    file: Option<&Path>,
    org_id: Option<&str>,
) -> Result<Credentials, CredentialsError> {
    load(&|name| std::env::var(name).ok(), file, org_id)
}

fn read_file(path: &Path) -> Result<CredentialsFile, CredentialsError> {
    let fail =
        |what: String| CredentialsError(format!("credentials file {}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a file".to_owned()));
    }
    check_private(&meta).map_err(fail)?;
    let text = std::io::read_to_string(file).map_err(|e| fail(e.to_string()))?;
    // The parser's message may quote the line it stopped at, which may hold the secret: only
    // the location is kept.
    toml::from_str::<CredentialsFile>(&text).map_err(|e| {
        let what = match e.span() {
            Some(span) => format!(
                "not valid (line {}; expected client_id, client_secret and optionally org_id)",
                text[..span.start.min(text.len())].matches('\n').count() + 1
            ),
            None => {
                "not valid (expected client_id, client_secret and optionally org_id)".to_owned()
            }
        };
        fail(what)
    })
}

#[cfg(unix)]
fn check_private(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "readable by others (mode {mode:04o}); restrict it with `chmod 600`"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// `path` relative to the directory of the configuration file `config`, unless absolute.
pub fn resolve(config: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    match config.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("audlink-credentials-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("p8-very-secret");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        let creds = Credentials {
            client_id: "id".into(),
            client_secret: secret,
            org_id: "O@AdobeOrg".into(),
        };
        assert!(!format!("{creds:?}").contains("p8-very-secret"));
    }

    #[test]
    fn the_environment_wins_and_the_org_gets_its_suffix() {
        let e = env(&[
            (ENV_CLIENT_ID, "cid"),
            (ENV_CLIENT_SECRET, "s3cret"),
            (ENV_ORG_ID, "ABC123"),
        ]);
        let c = load(&e, None, None).unwrap();
        assert_eq!(c.client_id, "cid");
        assert_eq!(c.client_secret.expose(), "s3cret");
        assert_eq!(c.org_id, "ABC123@AdobeOrg");
        let c = load(&e, None, Some("XYZ@AdobeOrg")).unwrap();
        assert_eq!(c.org_id, "XYZ@AdobeOrg");
    }

    #[test]
    fn missing_or_half_credentials_say_what_to_set() {
        let err = load(&env(&[]), None, Some("O")).unwrap_err();
        assert!(
            err.0.contains(ENV_CLIENT_ID) && err.0.contains("credentials_file"),
            "{err}"
        );
        let err = load(&env(&[(ENV_CLIENT_ID, "x")]), None, Some("O")).unwrap_err();
        assert!(err.0.contains("together"), "{err}");
        let err = load(
            &env(&[(ENV_CLIENT_ID, "x"), (ENV_CLIENT_SECRET, "y")]),
            None,
            None,
        )
        .unwrap_err();
        assert!(err.0.contains("org_id"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_readable_by_others_is_refused_a_private_one_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("mode");
        let path = dir.join("creds.toml");
        std::fs::write(
            &path,
            "client_id = \"cid\"\nclient_secret = \"file-secret\"\norg_id = \"ORG\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&env(&[]), Some(&path), None).unwrap_err();
        assert!(
            err.0.contains("readable by others") && err.0.contains("0644"),
            "{err}"
        );
        assert!(!err.0.contains("file-secret"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = load(&env(&[]), Some(&path), None).unwrap();
        assert_eq!(c.client_secret.expose(), "file-secret");
        assert_eq!(c.org_id, "ORG@AdobeOrg");
        // A malformed file is named without quoting its content.
        std::fs::write(&path, "client_secret = \"file-secret\nbroken").unwrap();
        let err = load(&env(&[]), Some(&path), None).unwrap_err();
        assert!(
            err.0.contains("not valid") && !err.0.contains("file-secret"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn relative_files_are_relative_to_the_configuration() {
        assert_eq!(
            resolve(
                Path::new("/etc/audlink/audlink.toml"),
                Path::new("creds.toml")
            ),
            PathBuf::from("/etc/audlink/creds.toml")
        );
        assert_eq!(
            resolve(Path::new("audlink.toml"), Path::new("creds.toml")),
            PathBuf::from("creds.toml")
        );
        assert_eq!(
            resolve(Path::new("a/audlink.toml"), Path::new("/abs.toml")),
            PathBuf::from("/abs.toml")
        );
    }
}
