//! The Experience Cloud side: Adobe IMS OAuth (server-to-server) and the Audience Manager REST
//! calls behind shared audiences.
//!
//! - [`credentials`]: client id, secret and organization from the environment or a private
//!   file; [`Secret`](credentials::Secret) never prints.
//! - [`ims`]: the access token — fetched with the client credentials grant, cached, renewed
//!   before it expires (there is no refresh token) and once after a `401`.
//! - [`client`]: [`Client`], every API call: the three headers, a per-attempt timeout, bounded
//!   retries ([`retry`]) and the single renewal on `401`.
//! - [`aam`]: data sources, traits and segments, paged; find-or-create by name so a re-run never
//!   creates a duplicate, even when a create timed out after the platform had done it.
//! - [`clock`]: the injectable clock token expiry and backoff read, so tests never wait.
//!
//! The client is async (reqwest on tokio); the commands drive it with a runtime of their own.
//! Credentials never leave this module except as request headers and the token request's form:
//! errors are built from status codes and selected response fields, and scrubbed of the secret
//! and every token before they are returned.

pub mod aam;
pub mod client;
pub mod clock;
pub mod credentials;
pub mod ims;
pub mod retry;

use std::time::Duration;

pub use client::Client;

use retry::RetryPolicy;

/// Where the platform is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The IMS base URL (`https://ims-na1.adobelogin.com`).
    pub ims_url: String,
    /// The Audience Manager API base URL (`https://aam.adobe.io`).
    pub aam_url: String,
    /// The scopes the token is requested with.
    pub scopes: Vec<String>,
    /// How long one attempt (request and whole response body) may take.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Items per page when listing.
    pub page_size: u32,
}

/// The scopes an OAuth server-to-server credential with the Audience Manager API is granted.
pub const DEFAULT_SCOPES: &[&str] = &[
    "openid",
    "AdobeID",
    "read_organizations",
    "additional_info.projectedProductContext",
    "additional_info.roles",
];

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            ims_url: "https://ims-na1.adobelogin.com".to_owned(),
            aam_url: "https://aam.adobe.io".to_owned(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            page_size: 200,
        }
    }
}

/// A remote operation that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The configuration or the credentials cannot be used (exit 2).
    #[error("{0}")]
    Config(String),
    /// The platform refused, or kept failing after the retries (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl From<credentials::CredentialsError> for RemoteError {
    fn from(error: credentials::CredentialsError) -> RemoteError {
        RemoteError::Config(error.0)
    }
}
