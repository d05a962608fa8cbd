//! The file exchange: object storage where onboarding files go and audience files come from.
//!
//! One trait, [`Storage`], with three operations — [`put`](Storage::put) bytes under a key,
//! [`list`](Storage::list) the objects under a prefix (key, size, ETag when the backend has
//! one), [`get`](Storage::get) an object's bytes — and two backends:
//!
//! - [`LocalFolder`] (`exchange/local.rs`), the embedded default: keys are `/`-separated paths
//!   below one directory; a put writes a temporary file and renames it, so a reader never sees
//!   half an object. It has no ETags.
//! - [`S3Bucket`] (`exchange/s3.rs`): an S3-compatible bucket through `object_store` — custom
//!   endpoint, path-style addressing, plain HTTP only when asked (loopback tests), bounded
//!   retries of transient failures; the secret key is a [`Secret`] and never appears in an
//!   error or a log line.
//!
//! [`Exchange`] is either backend behind the same trait. Keys are checked by [`check_key`]
//! before any backend sees them. [`onboarding_key`] names an export's upload deterministically
//! (`<prefix>/date=<yyyy-mm-dd>/<file name>`, the date of the file's own timestamp), so a retried
//! upload of the same export writes the same key and cannot create a second copy.
//!
//! [`process_new`] (`exchange/ledger.rs`) walks a listing against the store's ledger of
//! processed objects: an object already processed with the same size, ETag and content hash is
//! skipped, a changed one is processed again, a key listed twice is processed once.
//!
//! [`Secret`]: crate::remote::credentials::Secret

mod ledger;
mod local;
mod s3;

use std::future::Future;

use audlink_core::format::onboarding::OnboardingFileName;
use audlink_core::time::Timestamp;

pub use ledger::{Examined, ProcessSummary, examine, list_once, process_new, sha256};
pub use local::LocalFolder;
pub use s3::{S3Bucket, S3Settings};

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key (`/`-separated, no leading `/`).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// The backend's entity tag, when it has one (S3 does, a local folder does not).
    pub etag: Option<String>,
}

/// Why an exchange operation failed. Messages name the operation, the key or prefix and the
/// location (folder or bucket); never a credential.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The exchange is configured wrongly (exit 2).
    #[error("exchange configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// A key or prefix that no backend accepts.
    #[error("invalid object key \"{key}\": {reason}")]
    BadKey {
        /// The key.
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// No object under that key.
    #[error("no object \"{key}\" in {location}")]
    NotFound {
        /// The key.
        key: String,
        /// The folder or bucket.
        location: String,
    },
    /// The backend failed (after its retries, for S3).
    #[error("cannot {op} \"{key}\" in {location}: {reason}")]
    Backend {
        /// `put`, `list` or `get`.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// The folder or bucket.
        location: String,
        /// The cause, scrubbed of credentials.
        reason: String,
    },
    /// The ledger in the store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The caller's processing of an object failed; the object is not recorded.
    #[error("processing \"{key}\" failed: {reason}")]
    Process {
        /// The object's key.
        key: String,
        /// The caller's error.
        reason: String,
    },
}

/// Object storage, as the exchange uses it.
pub trait Storage {
    /// Where the objects are, for messages and the ledger (`folder /path`, `s3://bucket at
    /// http://endpoint`); holds no credential.
    fn location(&self) -> String;

    /// Stores `bytes` under `key`, replacing what was there.
    fn put(&self, key: &str, bytes: Vec<u8>) -> impl Future<Output = Result<(), ExchangeError>>;

    /// Every object whose key starts with `prefix` (an empty prefix lists everything), sorted
    /// by key.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<ObjectInfo>, ExchangeError>>;

    /// The bytes of the object under `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, ExchangeError>>;
}

/// The configured exchange: a local folder or an S3-compatible bucket.
#[derive(Debug)]
pub enum Exchange {
    /// A directory on this machine (the default).
    Local(LocalFolder),
    /// An S3-compatible bucket.
    S3(S3Bucket),
}

impl Storage for Exchange {
    fn location(&self) -> String {
        match self {
            Exchange::Local(folder) => folder.location(),
            Exchange::S3(bucket) => bucket.location(),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ExchangeError> {
        match self {
            Exchange::Local(folder) => folder.put(key, bytes).await,
            Exchange::S3(bucket) => bucket.put(key, bytes).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ExchangeError> {
        match self {
            Exchange::Local(folder) => folder.list(prefix).await,
            Exchange::S3(bucket) => bucket.list(prefix).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ExchangeError> {
        match self {
            Exchange::Local(folder) => folder.get(key).await,
            Exchange::S3(bucket) => bucket.get(key).await,
        }
    }
}

/// Checks an object key: non-empty, at most 1024 bytes, `/`-separated segments that are not
/// empty, `.` or `..`, no backslash and no control character. A prefix is checked the same way
/// except that it may be empty or end in `/`.
pub fn check_key(key: &str) -> Result<(), ExchangeError> {
    check(key)
}

fn check_prefix(prefix: &str) -> Result<(), ExchangeError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check(prefix.strip_suffix('/').unwrap_or(prefix)).map_err(|e| match e {
        ExchangeError::BadKey { reason, .. } => ExchangeError::BadKey {
            key: prefix.to_owned(),
            reason,
        },
        other => other,
    })
}

fn check(key: &str) -> Result<(), ExchangeError> {
    let bad = |reason| {
        Err(ExchangeError::BadKey {
            key: key.escape_debug().to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("it holds a control character or a backslash");
    }
    for segment in key.split('/') {
        match segment {
            "" => return bad("it has an empty path segment (a leading, trailing or double `/`)"),
            "." | ".." => return bad("it has a `.` or `..` segment"),
            _ => {}
        }
    }
    Ok(())
}

/// The key an onboarding file is uploaded under: `<prefix>/date=<yyyy-mm-dd>/<file name>`,
/// the date being the UTC day of the name's own timestamp. The same export (same name, which a
/// retried export keeps) always gets the same key. An empty prefix leaves out `<prefix>/`.
pub fn onboarding_key(prefix: &str, name: &OnboardingFileName) -> Result<String, ExchangeError> {
    let seconds = i64::try_from(name.timestamp).ok();
    let Some(stamp) = seconds.and_then(Timestamp::from_unix_seconds) else {
        return Err(ExchangeError::BadKey {
            key: name.render(),
            reason: "its timestamp is out of range",
        });
    };
    let prefix = prefix.trim_end_matches('/');
    let key = if prefix.is_empty() {
        format!("date={}/{}", stamp.date(), name.render())
    } else {
        format!("{prefix}/date={}/{}", stamp.date(), name.render())
    };
    check_key(&key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onboarding_keys_are_deterministic_and_dated_by_the_file() {
        let name = OnboardingFileName::parse("ftp_dpm_21_1767225600.sync.gz").unwrap();
        let key = onboarding_key("audlink/onboarding/", &name).unwrap();
        assert_eq!(
            key,
            "audlink/onboarding/date=2026-01-01/ftp_dpm_21_1767225600.sync.gz"
        );
        assert_eq!(onboarding_key("audlink/onboarding", &name).unwrap(), key);
        // 23:59:59 the day before is still that day.
        let late = OnboardingFileName::parse("ftp_dpm_21_1767225599.sync").unwrap();
        assert_eq!(
            onboarding_key("", &late).unwrap(),
            "date=2025-12-31/ftp_dpm_21_1767225599.sync"
        );
        let err = onboarding_key("../up", &name).unwrap_err();
        assert!(err.to_string().contains("`..`"), "{err}");
    }

    #[test]
    fn keys_are_checked() {
        check_key("a/b/c.gz").unwrap();
        for (key, reason) in [
            ("", "empty"),
            ("/a", "empty path segment"),
            ("a//b", "empty path segment"),
            ("a/", "empty path segment"),
            ("a/../b", "`..`"),
            ("./a", "`.`"),
            ("a\\b", "backslash"),
            ("a\nb", "control"),
        ] {
            let err = check_key(key).unwrap_err().to_string();
            assert!(err.contains(reason), "{key:?}: {err}");
        }
        assert!(check_key(&"k".repeat(1025)).is_err());
        check_prefix("").unwrap();
        check_prefix("in/").unwrap();
        check_prefix("in").unwrap();
        assert!(check_prefix("in//").is_err());
    }
}
