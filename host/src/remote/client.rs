//! [`Client`]: one authenticated, retried HTTP exchange at a time with IMS and Audience Manager.
//!
//! Every API call carries `Authorization: Bearer <token>`, `x-api-key: <client id>` and
//! `x-gw-ims-org-id: <org>@AdobeOrg`. One attempt — sending the request and reading the whole
//! body — is bounded by the configured timeout. Transient failures (see [`super::retry`]) are
//! retried with backoff on the injected [`Clock`]; a `401` renews the token once and retries
//! once, and a second `401` is an error, never a loop. Calls that create something are not
//! retried here: [`super::aam`] looks the name up again first, so a create the platform did
//! before the connection broke is found instead of repeated.
//!
//! Errors name the call (`GET /v1/traits/`) and what went wrong, with at most a short excerpt of
//! the platform's own message; no URL carries a credential, and every message is scrubbed of the
//! secret and of every token this client has received.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde_json::Value;
use tracing::{debug, trace};

use super::clock::Clock;
use super::credentials::{Credentials, Secret};
use super::ims::{self, Token};
use super::retry::{self, parse_retry_after, retryable_status};
use super::{RemoteError, Settings};

/// What one attempt at a request came back with.
#[derive(Debug)]
enum Attempt {
    /// A complete response.
    Response {
        status: u16,
        retry_after: Option<Duration>,
        body: Vec<u8>,
    },
    /// No complete response: timed out, could not connect, dropped mid-body.
    Transport(String),
}

/// Why a call did not succeed, before the retry decision.
#[derive(Debug)]
pub(crate) enum CallError {
    /// Worth trying again (after `retry_after` when the server said so).
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// `409`: the name is taken.
    Conflict(String),
    /// Not worth trying again.
    Fatal(RemoteError),
}

/// An Experience Cloud client: credentials, the cached token, the clock and the HTTP client.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    settings: Settings,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    token: tokio::sync::Mutex<Option<Token>>,
    /// Every token received, so no error message can carry one (secrets: `Debug` of the
    /// client shows none).
    seen: Mutex<Vec<Secret>>,
}

impl Client {
    /// A client for `settings` authenticating with `credentials`, reading time from `clock`.
    pub fn new(
        settings: Settings,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
    ) -> Result<Client, RemoteError> {
        for (what, url) in [
            ("ims_url", &settings.ims_url),
            ("aam_url", &settings.aam_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(RemoteError::Config(format!(
                    "[remote] {what} {url:?} is not an http(s) URL"
                )));
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .user_agent(concat!("audlink/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Failed(format!("http client: {e}")))?;
        Ok(Client {
            http,
            settings,
            credentials,
            clock,
            token: tokio::sync::Mutex::new(None),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A usable token: the cached one while fresh, else a new one from IMS.
    pub async fn token(&self) -> Result<Token, RemoteError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && token.fresh(self.clock.now())
        {
            return Ok(token.clone());
        }
        if cached.is_some() {
            debug!("ims: the access token is about to expire, renewing it");
        }
        let token = self.fetch_token().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Drops the cached token if it is still `used` (a `401` answered it).
    async fn forget(&self, used: &Token) {
        let mut cached = self.token.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| t.value.expose() == used.value.expose())
        {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<Token, RemoteError> {
        let what = format!("ims: POST {}", ims::TOKEN_PATH);
        let url = format!(
            "{}{}",
            self.settings.ims_url.trim_end_matches('/'),
            ims::TOKEN_PATH
        );
        let form = ims::form(&self.credentials, &self.settings.scopes);
        let mut retries = 0;
        loop {
            let request = self.http.post(&url).form(&form);
            let error = match self.attempt(request).await {
                Attempt::Response {
                    status: 200..=299,
                    body,
                    ..
                } => {
                    let (token, lifetime) =
                        ims::parse(&body, self.clock.now()).map_err(|e| self.scrub_error(e))?;
                    self.remember(&token);
                    debug!(
                        "ims: access token obtained, valid for {}s",
                        lifetime.as_secs()
                    );
                    return Ok(token);
                }
                Attempt::Response {
                    status,
                    retry_after,
                    body,
                } if retryable_status(status) => CallError::Transient {
                    message: format!("HTTP {status}{}", excerpt(&body)),
                    retry_after,
                },
                Attempt::Response { status, body, .. } => {
                    let hint = match status {
                        400 | 401 | 403 => ": check the client id, secret and scopes",
                        _ => "",
                    };
                    return Err(self.scrub_error(RemoteError::Failed(format!(
                        "{what}: the token request was refused (HTTP {status}{}){hint}",
                        excerpt(&body)
                    ))));
                }
                Attempt::Transport(message) => CallError::Transient {
                    message,
                    retry_after: None,
                },
            };
            self.pause(&what, retries, error).await?;
            retries += 1;
        }
    }

    /// `GET {aam}{path}?query` as JSON, retried.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, RemoteError> {
        let what = format!("GET {path}");
        let mut retries = 0;
        loop {
            match self.call_once(Method::GET, path, query, None).await {
                Ok(value) => return Ok(value),
                Err(CallError::Fatal(e)) => return Err(e),
                Err(CallError::Conflict(message)) => {
                    return Err(RemoteError::Failed(format!("{what}: {message}")));
                }
                Err(error) => self.pause(&what, retries, error).await?,
            }
            retries += 1;
        }
    }

    /// `POST {aam}{path}` with a JSON body, one attempt (plus the one renewal on `401`): the
    /// caller decides whether trying again could duplicate what it creates.
    pub(crate) async fn post_once(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        self.call_once(Method::POST, path, &[], Some(body)).await
    }

    /// Waits before retry `retries` of a transient `error`, or turns it into the final error
    /// when the retries are used up (or the server asks for an unreasonable wait).
    pub(crate) async fn pause(
        &self,
        what: &str,
        retries: u32,
        error: CallError,
    ) -> Result<(), RemoteError> {
        let (message, retry_after) = match error {
            CallError::Transient {
                message,
                retry_after,
            } => (message, retry_after),
            CallError::Conflict(message) => {
                return Err(self.scrub_error(RemoteError::Failed(format!("{what}: {message}"))));
            }
            CallError::Fatal(e) => return Err(e),
        };
        let policy = self.settings.retry;
        if retries >= policy.max_retries {
            return Err(self.scrub_error(RemoteError::Failed(format!(
                "{what}: {message} (gave up after {} attempts)",
                retries + 1
            ))));
        }
        let Some(delay) = policy.delay(retries, retry_after, retry::random_jitter()) else {
            return Err(self.scrub_error(RemoteError::Failed(format!(
                "{what}: {message}, and the server asks to wait longer than {}s",
                retry::MAX_RETRY_AFTER.as_secs()
            ))));
        };
        // Debug, not warn: at the default level a failed command's stderr is its one error line.
        debug!(
            "{what}: {message}; retry {}/{} in {delay:?}",
            retries + 1,
            policy.max_retries
        );
        self.clock.sleep(delay).await;
        Ok(())
    }

    /// One API call with the current token; after a `401`, one renewal and one more attempt.
    async fn call_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let what = format!("{method} {path}");
        let url = format!("{}{path}", self.settings.aam_url.trim_end_matches('/'));
        let mut renewed = false;
        loop {
            let token = self.token().await.map_err(CallError::Fatal)?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .query(query)
                .bearer_auth(token.value.expose())
                .header("x-api-key", &self.credentials.client_id)
                .header("x-gw-ims-org-id", &self.credentials.org_id)
                .header("accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            trace!("{what} {query:?}");
            let (status, retry_after, bytes) = match self.attempt(request).await {
                Attempt::Response {
                    status,
                    retry_after,
                    body,
                } => (status, retry_after, body),
                Attempt::Transport(message) => {
                    return Err(CallError::Transient {
                        message,
                        retry_after: None,
                    });
                }
            };
            trace!("{what}: HTTP {status}, {} bytes", bytes.len());
            let fatal = |message: String| {
                CallError::Fatal(
                    self.scrub_error(RemoteError::Failed(format!("{what}: {message}"))),
                )
            };
            return match status {
                200..=299 => serde_json::from_slice(&bytes).map_err(|e| {
                    fatal(format!(
                        "the response is not JSON ({} at line {} column {})",
                        match e.classify() {
                            serde_json::error::Category::Eof => "truncated",
                            _ => "invalid",
                        },
                        e.line(),
                        e.column()
                    ))
                }),
                401 if !renewed => {
                    debug!("{what}: HTTP 401, renewing the access token once");
                    self.forget(&token).await;
                    renewed = true;
                    continue;
                }
                401 => Err(fatal(format!(
                    "unauthorized (HTTP 401) even with a new token{}",
                    excerpt(&bytes)
                ))),
                403 => Err(fatal(format!(
                    "forbidden (HTTP 403{}): check org_id, the client id and the credential's Audience Manager product profile",
                    excerpt(&bytes)
                ))),
                409 => Err(CallError::Conflict(
                    self.scrub(&format!("conflict (HTTP 409{})", excerpt(&bytes))),
                )),
                status if retryable_status(status) => Err(CallError::Transient {
                    message: self.scrub(&format!("HTTP {status}{}", excerpt(&bytes))),
                    retry_after,
                }),
                status => Err(fatal(format!("HTTP {status}{}", excerpt(&bytes)))),
            };
        }
    }

    /// Sends `request` and reads the whole body, within the timeout.
    async fn attempt(&self, request: reqwest::RequestBuilder) -> Attempt {
        let timeout = self.settings.timeout;
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, body.to_vec()))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Attempt::Transport(format!("no complete response within {timeout:?}")),
            Ok(Ok((status, retry_after, body))) => Attempt::Response {
                status,
                retry_after,
                body,
            },
            Ok(Err(e)) => Attempt::Transport(self.scrub(&describe(&e))),
        }
    }

    fn remember(&self, token: &Token) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.push(token.value.clone());
    }

    /// `text` with the secret and every token seen replaced by `[redacted]`.
    fn scrub(&self, text: &str) -> String {
        let mut out = self.credentials.client_secret.redact(text);
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for token in seen.iter() {
            out = token.redact(&out);
        }
        out
    }

    fn scrub_error(&self, error: RemoteError) -> RemoteError {
        match error {
            RemoteError::Config(m) => RemoteError::Config(self.scrub(&m)),
            RemoteError::Failed(m) => RemoteError::Failed(self.scrub(&m)),
        }
    }
}

/// A transport error in a few words, without the URL (its causes say what happened).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "the connection broke while reading the response"
    } else if error.is_request() {
        "the request failed"
    } else {
        "the exchange failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    match causes.last() {
        Some(root) => format!("{what} ({root})"),
        None => what.to_owned(),
    }
}

/// `: <message>` from a JSON error body's `message`, `error_description`, `error` or `detail`
/// field, at most 160 characters; nothing for any other body (it is not quoted).
pub(crate) fn excerpt(body: &[u8]) -> String {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let text = [
        "message",
        "error_description",
        "error",
        "detail",
        "errorMessage",
    ]
    .iter()
    .find_map(|k| map.get(*k).and_then(Value::as_str));
    match text {
        Some(t) if !t.trim().is_empty() => {
            let one_line: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = one_line.chars().take(160).collect();
            format!(": {short}")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::clock::FakeClock;

    #[test]
    fn messages_are_scrubbed_of_the_secret_and_every_token() {
        let credentials = Credentials {
            client_id: "cid".to_owned(),
            client_secret: Secret::new("hunter2-secret"),
            org_id: "O@AdobeOrg".to_owned(),
        };
        let client =
            Client::new(Settings::default(), credentials, Arc::new(FakeClock::new())).unwrap();
        for value in ["tok-one", "tok-two"] {
            client.remember(&Token {
                value: Secret::new(value),
                renew_at: client.clock.now(),
            });
        }
        assert_eq!(
            client.scrub("a hunter2-secret b tok-one c tok-two"),
            "a [redacted] b [redacted] c [redacted]"
        );
        let error = client.scrub_error(RemoteError::Failed("x tok-two".to_owned()));
        assert_eq!(error, RemoteError::Failed("x [redacted]".to_owned()));
        let debug = format!("{client:?}");
        assert!(
            !debug.contains("tok-one") && !debug.contains("hunter2"),
            "{debug}"
        );
        let bad = Settings {
            aam_url: "aam.adobe.io".to_owned(),
            ..Settings::default()
        };
        let credentials = Credentials {
            client_id: "cid".to_owned(),
            client_secret: Secret::new("s"),
            org_id: "O@AdobeOrg".to_owned(),
        };
        let err = Client::new(bad, credentials, Arc::new(FakeClock::new())).unwrap_err();
        assert!(matches!(err, RemoteError::Config(m) if m.contains("aam_url")));
    }

    #[test]
    fn excerpts_take_one_known_field_and_nothing_else() {
        assert_eq!(
            excerpt(br#"{"message":"Name  taken\nreally"}"#),
            ": Name taken really"
        );
        assert_eq!(
            excerpt(br#"{"error":"invalid_client"}"#),
            ": invalid_client"
        );
        assert_eq!(excerpt(br#"{"other":"x"}"#), "");
        assert_eq!(excerpt(b"<html>500</html>"), "");
        assert_eq!(excerpt(&[b'{'; 3]), "");
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(500));
        assert_eq!(excerpt(long.as_bytes()).len(), 2 + 160);
    }
}
