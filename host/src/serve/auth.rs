//! Bearer tokens of `audlink serve`: where they come from (`AUDLINK_SERVE_TOKENS`, or the
//! `[serve] tokens_file`), how a request's `Authorization` header is checked (SHA-256 of the
//! presented token compared in constant time with every configured token's, so neither the
//! time nor the length of a comparison says anything about a token), and the per-token limit of
//! requests in flight.
//!
//! A token's text is kept only as its digest: it never reaches a log line, an error message or a
//! response. Only its name (chosen by whoever configured it) may appear in logs.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ConfigError;

/// The environment variable with the tokens: `name:role:token`, comma-separated.
pub const TOKENS_ENV: &str = "AUDLINK_SERVE_TOKENS";

/// Tokens shorter than this are refused (a guessable token is no token).
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Previews and reads.
    Read,
    /// Imports and exports, and everything `read` may do.
    Write,
}

impl Role {
    /// The role's name in configuration and errors.
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }

    /// Whether this role may do what `needed` allows (`write` implies `read`).
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

/// One configured token: its name, role, digest and requests in flight.
pub struct Token {
    /// A name for logs (never the token).
    pub name: String,
    /// What it may do.
    pub role: Role,
    digest: [u8; 32],
    in_flight: Arc<Semaphore>,
    limit: u32,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The configured tokens.
#[derive(Debug, Default)]
pub struct Tokens(Vec<Token>);

/// Why a request is not authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header, or an unknown token (401).
    Unauthenticated,
    /// A known token without the role the route needs (403).
    Forbidden {
        /// The role the route needs.
        needed: Role,
    },
    /// The token has as many requests in flight as it may (429).
    Busy {
        /// The limit.
        limit: u32,
    },
}

/// A request's token, holding its slot among the token's requests in flight until dropped.
#[derive(Debug)]
pub struct Granted {
    /// The token's name.
    pub name: String,
    _slot: OwnedSemaphorePermit,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// Parses `name:role:token` entries separated by commas or newlines (`#` starts a comment
    /// line in a file); `source` names where they came from in errors (never the token).
    pub fn parse(text: &str, source: &str, concurrency: u32) -> Result<Tokens, ConfigError> {
        let mut tokens: Vec<Token> = Vec::new();
        let entries = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (index, entry) in entries.enumerate() {
            let n = index + 1;
            let mut parts = entry.splitn(3, ':');
            let (Some(name), Some(role), Some(token)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(ConfigError(format!(
                    "{source}: entry {n} is not name:role:token"
                )));
            };
            let role = match role {
                "read" => Role::Read,
                "write" => Role::Write,
                _ => {
                    return Err(ConfigError(format!(
                        "{source}: entry {n} ({name:?}) has role {role:?}; expected read or write"
                    )));
                }
            };
            if name.is_empty() {
                return Err(ConfigError(format!("{source}: entry {n} has no name")));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(ConfigError(format!(
                    "{source}: the token of {name:?} is shorter than {MIN_TOKEN_LEN} characters"
                )));
            }
            if tokens.iter().any(|t| t.name == name) {
                return Err(ConfigError(format!(
                    "{source}: token name {name:?} is given twice"
                )));
            }
            let digest = digest(token.as_bytes());
            if tokens.iter().any(|t| bool::from(t.digest.ct_eq(&digest))) {
                return Err(ConfigError(format!(
                    "{source}: the token of {name:?} is the same as an earlier one"
                )));
            }
            tokens.push(Token {
                name: name.to_owned(),
                role,
                digest,
                in_flight: Arc::new(Semaphore::new(concurrency as usize)),
                limit: concurrency,
            });
        }
        Ok(Tokens(tokens))
    }

    /// The tokens of `AUDLINK_SERVE_TOKENS` and of `tokens_file` (relative to `base`), which
    /// must be readable by its owner only.
    pub fn load(
        env: Option<&str>,
        file: Option<&Path>,
        base: &Path,
        concurrency: u32,
    ) -> Result<Tokens, ConfigError> {
        let mut all = match env {
            Some(text) => Tokens::parse(text, TOKENS_ENV, concurrency)?,
            None => Tokens::default(),
        };
        if let Some(file) = file {
            let path = base.join(file);
            check_private(&path)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            let more = Tokens::parse(&text, &path.display().to_string(), concurrency)?;
            for token in more.0 {
                if all.0.iter().any(|t| t.name == token.name) {
                    return Err(ConfigError(format!(
                        "{}: token name {:?} is also in {TOKENS_ENV}",
                        path.display(),
                        token.name
                    )));
                }
                all.0.push(token);
            }
        }
        Ok(all)
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Checks an `Authorization` header value for `needed`; on success the request holds one
    /// of the token's slots until the [`Granted`] is dropped.
    pub fn check(&self, header: Option<&[u8]>, needed: Role) -> Result<Granted, Denied> {
        let presented = header
            .and_then(|h| h.strip_prefix(b"Bearer "))
            .map(|t| t.trim_ascii())
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Unauthenticated)?;
        let presented = digest(presented);
        // Every token is compared, whatever matched before.
        let mut found: Option<&Token> = None;
        for token in &self.0 {
            if bool::from(token.digest.ct_eq(&presented)) {
                found = Some(token);
            }
        }
        let token = found.ok_or(Denied::Unauthenticated)?;
        if !token.role.allows(needed) {
            return Err(Denied::Forbidden { needed });
        }
        let slot = Arc::clone(&token.in_flight)
            .try_acquire_owned()
            .map_err(|_| Denied::Busy { limit: token.limit })?;
        Ok(Granted {
            name: token.name.clone(),
            _slot: slot,
        })
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError(format!(
            "{}: readable by others (mode {mode:04o}); restrict it with `chmod 600`",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: &str = "reader-token-0123456789";
    const WRITER: &str = "writer-token-0123456789";

    fn tokens() -> Tokens {
        Tokens::parse(&format!("r:read:{READER}, w:write:{WRITER}"), "test", 2).expect("tokens")
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[test]
    fn roles_are_checked_and_write_implies_read() {
        let tokens = tokens();
        assert_eq!(
            tokens
                .check(Some(&bearer(READER)), Role::Read)
                .expect("read")
                .name,
            "r"
        );
        assert_eq!(
            tokens
                .check(Some(&bearer(READER)), Role::Write)
                .expect_err("read only"),
            Denied::Forbidden {
                needed: Role::Write
            }
        );
        assert_eq!(
            tokens
                .check(Some(&bearer(WRITER)), Role::Read)
                .expect("write reads")
                .name,
            "w"
        );
        assert_eq!(
            tokens
                .check(Some(&bearer("writer-token-012345678")), Role::Read)
                .expect_err("prefix"),
            Denied::Unauthenticated
        );
        assert_eq!(
            tokens.check(None, Role::Read).expect_err("none"),
            Denied::Unauthenticated
        );
        assert_eq!(
            tokens
                .check(Some(READER.as_bytes()), Role::Read)
                .expect_err("no scheme"),
            Denied::Unauthenticated
        );
    }

    #[test]
    fn a_token_has_a_bounded_number_of_requests_in_flight() {
        let tokens = tokens();
        let first = tokens.check(Some(&bearer(READER)), Role::Read).expect("1");
        let _second = tokens.check(Some(&bearer(READER)), Role::Read).expect("2");
        assert!(matches!(
            tokens.check(Some(&bearer(READER)), Role::Read),
            Err(Denied::Busy { .. })
        ));
        // Another token is not affected; a finished request frees its slot.
        tokens
            .check(Some(&bearer(WRITER)), Role::Read)
            .expect("other token");
        drop(first);
        tokens
            .check(Some(&bearer(READER)), Role::Read)
            .expect("slot freed");
    }

    #[test]
    fn bad_entries_are_named_without_the_token() {
        for (text, expected) in [
            ("a:admin:0123456789abcdefgh", "role \"admin\""),
            ("a:read:short", "shorter than 16"),
            ("a:read", "not name:role:token"),
            (
                "a:read:0123456789abcdefgh,a:write:0123456789abcdefgX",
                "given twice",
            ),
            (
                "a:read:0123456789abcdefgh,b:write:0123456789abcdefgh",
                "same as an earlier",
            ),
        ] {
            let error = Tokens::parse(text, "ENV", 1).expect_err(text);
            assert!(error.0.contains(expected), "{text}: {}", error.0);
            assert!(
                !error.0.contains("0123456789"),
                "{text}: the token leaked: {}",
                error.0
            );
        }
    }
}
