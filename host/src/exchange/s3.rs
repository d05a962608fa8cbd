//! The S3-compatible backend, through `object_store`'s Amazon S3 client.
//!
//! Path-style addressing (`<endpoint>/<bucket>/<key>`) unless virtual-hosted style is asked
//! for, any endpoint (MinIO, Ceph, a loopback test server), plain HTTP only with `allow_http`.
//! Credentials are given explicitly — from the settings or the environment — so the client
//! never goes looking for an instance profile; the secret key is a [`Secret`] and every
//! error message is scrubbed of it. Transient failures (5xx, 429, timeouts, dropped
//! connections) are retried by `object_store` itself, at most `max_retries` times with
//! exponential backoff from `backoff_base_ms`, all within `retry_timeout_ms`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use super::{ExchangeError, ObjectInfo, Storage, check_key, check_prefix};
use crate::remote::credentials::Secret;

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The bucket's name.
    pub bucket: String,
    /// The endpoint (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`); `None`
    /// is AWS's own endpoint of `region`.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// Virtual-hosted style (`<bucket>.<endpoint>`) instead of path style.
    pub virtual_hosted_style: bool,
    /// Whether a plain `http://` endpoint is allowed (loopback servers).
    pub allow_http: bool,
    /// Retries of one request after a transient failure.
    pub max_retries: usize,
    /// The first backoff; it doubles per retry (capped at 30 s).
    pub backoff_base_ms: u64,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout_ms: u64,
    /// One attempt's limit: connection, request and whole response.
    pub timeout_ms: u64,
}

impl S3Settings {
    /// Settings for `bucket` with the defaults (region `us-east-1`, path style, HTTPS only, 4
    /// retries from 100 ms, 3 minutes of retries, 30 s per attempt) and the credentials of the
    /// environment: `AUDLINK_S3_ACCESS_KEY_ID` / `AUDLINK_S3_SECRET_ACCESS_KEY`, else
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub fn from_env(bucket: impl Into<String>) -> Result<S3Settings, ExchangeError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let pair = match (
            var("AUDLINK_S3_ACCESS_KEY_ID"),
            var("AUDLINK_S3_SECRET_ACCESS_KEY"),
        ) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => var("AWS_ACCESS_KEY_ID").zip(var("AWS_SECRET_ACCESS_KEY")),
            _ => None,
        };
        let Some((id, secret)) = pair else {
            return Err(ExchangeError::Config {
                detail: "no S3 credentials: set AUDLINK_S3_ACCESS_KEY_ID and \
                         AUDLINK_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY)"
                    .into(),
            });
        };
        Ok(S3Settings::new(bucket, id, Secret::new(secret)))
    }

    /// Settings for `bucket` with the given credentials and the defaults of
    /// [`from_env`](S3Settings::from_env).
    pub fn new(
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: Secret,
    ) -> S3Settings {
        S3Settings {
            bucket: bucket.into(),
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: access_key_id.into(),
            secret_access_key,
            virtual_hosted_style: false,
            allow_http: false,
            max_retries: 4,
            backoff_base_ms: 100,
            retry_timeout_ms: 180_000,
            timeout_ms: 30_000,
        }
    }
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    store: Arc<AmazonS3>,
    location: String,
    secret: Secret,
}

impl S3Bucket {
    /// The client for `settings`; nothing is sent yet.
    pub fn new(settings: &S3Settings) -> Result<S3Bucket, ExchangeError> {
        let config = |detail: String| Err(ExchangeError::Config { detail });
        if settings.bucket.is_empty() {
            return config("the S3 bucket name is empty".into());
        }
        if settings.access_key_id.is_empty() || settings.secret_access_key.expose().is_empty() {
            return config(format!(
                "the S3 credentials of bucket \"{}\" are empty",
                settings.bucket
            ));
        }
        if let Some(endpoint) = &settings.endpoint {
            if endpoint.starts_with("http://") && !settings.allow_http {
                return config(format!(
                    "the endpoint {endpoint} of bucket \"{}\" is plain http; set allow_http \
                     to use it",
                    settings.bucket
                ));
            }
            if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                return config(format!(
                    "the endpoint {endpoint} of bucket \"{}\" is not an http(s) URL",
                    settings.bucket
                ));
            }
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(settings.backoff_base_ms),
                max_backoff: Duration::from_secs(30),
                base: 2.0,
            },
            max_retries: settings.max_retries,
            retry_timeout: Duration::from_millis(settings.retry_timeout_ms),
        };
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        let options = ClientOptions::new()
            .with_allow_http(settings.allow_http)
            .with_timeout(timeout)
            .with_connect_timeout(timeout);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key.expose())
            .with_virtual_hosted_style_request(settings.virtual_hosted_style)
            .with_allow_http(settings.allow_http)
            .with_retry(retry)
            .with_client_options(options);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        let location = match &settings.endpoint {
            Some(endpoint) => format!("bucket \"{}\" at {endpoint}", settings.bucket),
            None => format!("bucket \"{}\" ({})", settings.bucket, settings.region),
        };
        let secret = settings.secret_access_key.clone();
        match builder.build() {
            Ok(store) => Ok(S3Bucket {
                store: Arc::new(store),
                location,
                secret,
            }),
            Err(error) => config(format!(
                "cannot set up {location}: {}",
                scrub(&error, &secret)
            )),
        }
    }

    fn failed(&self, op: &'static str, key: &str, error: object_store::Error) -> ExchangeError {
        if op == "get" && matches!(error, object_store::Error::NotFound { .. }) {
            return ExchangeError::NotFound {
                key: key.to_owned(),
                location: self.location.clone(),
            };
        }
        ExchangeError::Backend {
            op,
            key: key.to_owned(),
            location: self.location.clone(),
            reason: scrub(&error, &self.secret),
        }
    }
}

impl Storage for S3Bucket {
    fn location(&self) -> String {
        self.location.clone()
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ExchangeError> {
        check_key(key)?;
        let path = Path::from(key);
        match self.store.put(&path, bytes.into()).await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.failed("put", key, error)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ExchangeError> {
        check_prefix(prefix)?;
        // `object_store` lists whole path segments; list the deepest directory the prefix
        // names whole and keep the keys that start with the rest.
        let dir = prefix.rfind('/').map(|end| Path::from(&prefix[..end]));
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(dir.as_ref())
            .try_collect()
            .await
            .map_err(|error| self.failed("list", prefix, error))?;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .filter(|meta| meta.location.as_ref().starts_with(prefix))
            .map(|meta| ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
                etag: meta.e_tag,
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ExchangeError> {
        check_key(key)?;
        let path = Path::from(key);
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(error) => return Err(self.failed("get", key, error)),
        };
        match result.bytes().await {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(error) => Err(self.failed("get", key, error)),
        }
    }
}

/// `error` and its sources as one line, with the secret replaced by `[redacted]`.
fn scrub(error: &dyn std::error::Error, secret: &Secret) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    secret.redact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> S3Settings {
        let mut s = S3Settings::new("b", "AKID", Secret::new("s3cr3t-value"));
        s.endpoint = Some("http://127.0.0.1:9".into());
        s.allow_http = true;
        s
    }

    #[test]
    fn configuration_is_checked_before_anything_is_sent() {
        S3Bucket::new(&settings()).unwrap();
        let mut s = settings();
        s.allow_http = false;
        let err = S3Bucket::new(&s).unwrap_err().to_string();
        assert!(err.contains("allow_http"), "{err}");
        let mut s = settings();
        s.endpoint = Some("ftp://x".into());
        assert!(
            S3Bucket::new(&s)
                .unwrap_err()
                .to_string()
                .contains("not an http(s) URL")
        );
        let mut s = settings();
        s.bucket.clear();
        assert!(S3Bucket::new(&s).is_err());
        let mut s = settings();
        s.secret_access_key = Secret::new("");
        let err = S3Bucket::new(&s).unwrap_err().to_string();
        assert!(
            err.contains("credentials") && err.contains("\"b\""),
            "{err}"
        );
        // The settings never print the secret.
        assert!(!format!("{:?}", settings()).contains("s3cr3t-value"));
    }

    #[test]
    fn scrub_removes_the_secret_from_every_source() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(std::io::Error::other("saw s3cr3t-value here"));
        let text = scrub(&error, &Secret::new("s3cr3t-value"));
        assert_eq!(text, "outer: saw [redacted] here");
    }
}
