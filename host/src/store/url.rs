//! Which database `--db` names: [`DbUrl`], parsed from `sqlite:PATH`, `sqlite://PATH`, a bare
//! path (SQLite, as before URLs), or `postgres://…` / `postgresql://…`.
//!
//! A PostgreSQL URL may hold a password (`user:password@host`, or `?password=…`): it is kept
//! for connecting and never shown — [`Display`](std::fmt::Display), [`Debug`] and every error
//! print the URL with the password replaced by `[redacted]`.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// What replaces a password wherever a URL is shown.
const REDACTED: &str = "[redacted]";

/// A database named by `--db`.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server (not supported by this build yet).
    Postgres(PostgresUrl),
}

/// Why a `--db` value names no database. Its text never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbUrlError {
    /// `sqlite:` with nothing after it.
    #[error("{0:?} names no file (use sqlite:PATH or a path)")]
    EmptyPath(String),
    /// A URL of a scheme audlink has no store for.
    #[error(
        "unsupported database URL scheme \"{0}\" (use a path, sqlite:PATH or postgres://user@host/db)"
    )]
    Scheme(String),
}

impl DbUrl {
    /// Parses a `--db` value: `sqlite:PATH`, `sqlite://PATH` (`sqlite:///abs` is `/abs`),
    /// `postgres://…` / `postgresql://…`, or any other text as the path of a SQLite file (as
    /// `--db` was before URLs) unless it looks like `scheme://…` of another scheme.
    pub fn parse(text: &str) -> Result<DbUrl, DbUrlError> {
        if let Some(rest) = strip_scheme(text, "sqlite") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(DbUrlError::EmptyPath(text.to_owned()));
            }
            return Ok(DbUrl::Sqlite(PathBuf::from(path)));
        }
        if strip_scheme(text, "postgres").is_some() || strip_scheme(text, "postgresql").is_some() {
            return Ok(DbUrl::Postgres(PostgresUrl(text.to_owned())));
        }
        if let Some((scheme, _)) = text.split_once("://")
            && scheme.len() > 1
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(DbUrlError::Scheme(scheme.to_owned()));
        }
        Ok(DbUrl::Sqlite(PathBuf::from(text)))
    }

    /// [`DbUrl::parse`] of an OS string: one that is not UTF-8 is a path (as before URLs).
    pub fn parse_os(text: &OsStr) -> Result<DbUrl, DbUrlError> {
        match text.to_str() {
            Some(text) => DbUrl::parse(text),
            None => Ok(DbUrl::Sqlite(PathBuf::from(text))),
        }
    }

    /// The file a database lives in, when it is a local file (SQLite): what today's defaults
    /// place beside it (`<db>.sync-lock`, `<db>.sync-<run>`, `<db>.jobs`). `None` for a server.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            DbUrl::Sqlite(path) => Some(path),
            DbUrl::Postgres(_) => None,
        }
    }
}

impl From<PathBuf> for DbUrl {
    /// A SQLite file.
    fn from(path: PathBuf) -> DbUrl {
        DbUrl::Sqlite(path)
    }
}

impl From<&Path> for DbUrl {
    /// A SQLite file.
    fn from(path: &Path) -> DbUrl {
        DbUrl::Sqlite(path.to_owned())
    }
}

impl std::str::FromStr for DbUrl {
    type Err = DbUrlError;

    fn from_str(text: &str) -> Result<DbUrl, DbUrlError> {
        DbUrl::parse(text)
    }
}

impl fmt::Display for DbUrl {
    /// A SQLite database as its path (as messages named it before URLs); a server's URL
    /// without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite(path) => write!(f, "{}", path.display()),
            DbUrl::Postgres(url) => write!(f, "{url}"),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            DbUrl::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
        }
    }
}

/// A `postgres://` or `postgresql://` URL (libpq's form). Shown with its password redacted;
/// [`PostgresUrl::expose`] is the one way to the text with it, for connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL as given, password included: for the connection only, never for a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with the password of its user info and any `password=` parameter replaced by
    /// `[redacted]`.
    pub fn redacted(&self) -> String {
        let url = self.0.as_str();
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        // The user info ends at the last `@` before the query or fragment (not at the first
        // `/`: a password with an unescaped `/` is still a password, and showing too little
        // beats showing a secret).
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        let (authority, tail) = match rest[..end].rfind('@') {
            Some(at) => {
                let (userinfo, after) = rest.split_at(at);
                let userinfo = match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{user}:{REDACTED}"),
                    None => userinfo.to_owned(),
                };
                let host_end = after.find(['/', '?', '#']).unwrap_or(after.len());
                (
                    format!("{userinfo}{}", &after[..host_end]),
                    &after[host_end..],
                )
            }
            None => {
                let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                (rest[..host_end].to_owned(), &rest[host_end..])
            }
        };
        let (before_fragment, fragment) = match tail.split_once('#') {
            Some((before, fragment)) => (before, Some(fragment)),
            None => (tail, None),
        };
        let tail = match before_fragment.split_once('?') {
            Some((path, query)) => {
                let params: Vec<String> = query
                    .split('&')
                    .map(|param| match param.split_once('=') {
                        Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                            format!("{key}={REDACTED}")
                        }
                        _ => param.to_owned(),
                    })
                    .collect();
                format!("{path}?{}", params.join("&"))
            }
            None => before_fragment.to_owned(),
        };
        let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
        format!("{scheme}://{authority}{tail}{fragment}")
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl")
            .field(&self.redacted())
            .finish()
    }
}

/// The rest of `text` after `scheme:` (ASCII case ignored), if it starts so.
fn strip_scheme<'t>(text: &'t str, scheme: &str) -> Option<&'t str> {
    let head = text.get(..scheme.len())?;
    let rest = text[scheme.len()..].strip_prefix(':')?;
    head.eq_ignore_ascii_case(scheme).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(text: &str) -> PathBuf {
        match DbUrl::parse(text).unwrap() {
            DbUrl::Sqlite(path) => path,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn paths_and_sqlite_urls_name_a_sqlite_file() {
        assert_eq!(sqlite("audlink.db"), PathBuf::from("audlink.db"));
        assert_eq!(sqlite("/var/lib/a.db"), PathBuf::from("/var/lib/a.db"));
        assert_eq!(
            sqlite("dir/with:colon.db"),
            PathBuf::from("dir/with:colon.db")
        );
        assert_eq!(sqlite("sqlite:a.db"), PathBuf::from("a.db"));
        assert_eq!(sqlite("sqlite:/abs/a.db"), PathBuf::from("/abs/a.db"));
        assert_eq!(sqlite("SQLite:a.db"), PathBuf::from("a.db"));
        assert_eq!(sqlite("sqlite://a.db"), PathBuf::from("a.db"));
        assert_eq!(sqlite("sqlite:///abs/a.db"), PathBuf::from("/abs/a.db"));
        let url = DbUrl::parse("sqlite:dir/a.db").unwrap();
        assert_eq!(url.local_path(), Some(Path::new("dir/a.db")));
        // Shown as the path, as messages named the database before URLs.
        assert_eq!(url.to_string(), "dir/a.db");
        assert_eq!(format!("{url:?}"), "Sqlite(\"dir/a.db\")");
        assert_eq!(
            DbUrl::parse_os(OsStr::new("x.db")).unwrap(),
            DbUrl::from(PathBuf::from("x.db"))
        );
        for empty in ["sqlite:", "sqlite://"] {
            let err = DbUrl::parse(empty).unwrap_err();
            assert_eq!(err, DbUrlError::EmptyPath(empty.to_owned()));
        }
        let err = DbUrl::parse("mysql://root:pw@h/db").unwrap_err();
        assert_eq!(err, DbUrlError::Scheme("mysql".to_owned()));
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_is_a_sqlite_file() {
        use std::os::unix::ffi::OsStrExt;
        let name = OsStr::from_bytes(b"a\xff.db");
        assert_eq!(
            DbUrl::parse_os(name).unwrap().local_path(),
            Some(Path::new(name))
        );
    }

    #[test]
    fn postgres_urls_never_show_their_password() {
        for (text, shown) in [
            (
                "postgres://audlink:s3cret@db.example:5432/campaign",
                "postgres://audlink:[redacted]@db.example:5432/campaign",
            ),
            (
                "postgresql://audlink:s3cret@db.example/campaign?sslmode=require&password=s3cret",
                "postgresql://audlink:[redacted]@db.example/campaign?sslmode=require&password=[redacted]",
            ),
            (
                "postgres://a%40b:s3cret:more@h/db#s3cret-not-a-password",
                "postgres://a%40b:[redacted]@h/db#s3cret-not-a-password",
            ),
            (
                "postgres://audlink:s3/cr@et@h/db",
                "postgres://audlink:[redacted]@h/db",
            ),
            ("postgres://audlink@h/db", "postgres://audlink@h/db"),
            ("postgres:///db?host=/run/pg", "postgres:///db?host=/run/pg"),
        ] {
            let url = DbUrl::parse(text).unwrap();
            let DbUrl::Postgres(pg) = &url else {
                panic!("{text}: {url:?}")
            };
            assert_eq!(pg.expose(), text);
            assert_eq!(url.to_string(), shown);
            assert_eq!(url.local_path(), None);
            let debug = format!("{url:?} {pg:?} {:#?}", url);
            assert!(debug.contains(shown), "{debug}");
            if !text.contains("#s3cret") {
                assert!(!url.to_string().contains("s3cret"), "{url}");
                assert!(!debug.contains("s3cret"), "{debug}");
            }
        }
    }
}
