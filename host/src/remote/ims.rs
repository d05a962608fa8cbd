//! Adobe IMS access tokens (OAuth server-to-server, the client credentials grant).
//!
//! `POST {ims}/ims/token/v3` with the form `grant_type=client_credentials`, `client_id`,
//! `client_secret` and `scope` (comma-separated) answers `access_token`, `token_type` and
//! `expires_in` (seconds). There is no refresh token: a token is renewed by asking again. The
//! client keeps one [`Token`] and asks for a new one when [`Token::fresh`] says the current one
//! is within its renewal margin of expiring (a tenth of its lifetime, at most five minutes), or
//! once after an API call answered `401`.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::RemoteError;
use super::credentials::{Credentials, Secret};

/// The token endpoint's path below the IMS base URL.
pub const TOKEN_PATH: &str = "/ims/token/v3";

/// The longest renewal margin.
const MAX_MARGIN: Duration = Duration::from_secs(300);

/// An access token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The bearer token (never printed).
    pub value: Secret,
    /// From this instant on the token is renewed before use.
    pub renew_at: Instant,
}

impl Token {
    /// Whether the token may still be used at `now`.
    pub fn fresh(&self, now: Instant) -> bool {
        now < self.renew_at
    }
}

/// The renewal margin of a token valid for `lifetime`.
pub fn margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_MARGIN)
}

/// The token request's form fields.
pub fn form(credentials: &Credentials, scopes: &[String]) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", credentials.client_id.clone()),
        (
            "client_secret",
            credentials.client_secret.expose().to_owned(),
        ),
        ("scope", scopes.join(",")),
    ]
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: u64,
}

/// Reads a successful token response received at `now`.
pub fn parse(body: &[u8], now: Instant) -> Result<(Token, Duration), RemoteError> {
    let response: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        RemoteError::Failed(format!(
            "ims: the token response is not what was expected ({})",
            e.classify_name()
        ))
    })?;
    if let Some(kind) = &response.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(RemoteError::Failed(format!(
            "ims: unexpected token type {kind:?}"
        )));
    }
    if response.access_token.expose().is_empty() {
        return Err(RemoteError::Failed(
            "ims: the token response holds no token".to_owned(),
        ));
    }
    let lifetime = Duration::from_secs(response.expires_in);
    Ok((
        Token {
            value: response.access_token,
            renew_at: now + lifetime - margin(lifetime),
        },
        lifetime,
    ))
}

/// What a serde_json error was, without quoting the input.
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "missing or mistyped fields",
            serde_json::error::Category::Eof => "not JSON: truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_a_tenth_before_expiry_at_most_five_minutes() {
        assert_eq!(margin(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(margin(Duration::from_secs(86_400)), MAX_MARGIN);
        let now = Instant::now();
        let (token, lifetime) = parse(
            br#"{"access_token":"tok","token_type":"bearer","expires_in":100}"#,
            now,
        )
        .unwrap();
        assert_eq!(lifetime, Duration::from_secs(100));
        assert!(token.fresh(now + Duration::from_secs(89)));
        assert!(!token.fresh(now + Duration::from_secs(90)));
        assert_eq!(format!("{token:?}").matches("tok").count(), 0);
    }

    #[test]
    fn bad_token_responses_are_clear_errors_that_quote_nothing() {
        let now = Instant::now();
        for (body, what) in [
            (&b"<html>oops"[..], "not JSON"),
            (br#"{"access_token":"secret-tok"}"#, "missing"),
            (
                br#"{"access_token":"secret-tok","expires_in":"x"}"#,
                "mistyped",
            ),
            (br#"{"access_token":"","expires_in":5}"#, "no token"),
            (
                br#"{"access_token":"secret-tok","token_type":"mac","expires_in":5}"#,
                "type",
            ),
        ] {
            let err = parse(body, now).unwrap_err().to_string();
            assert!(err.contains(what) && !err.contains("secret-tok"), "{err}");
        }
    }
}
