//! [`AppError`]: why a workflow failed, typed so that each front door can say it its own way —
//! the command line as one stderr line and exit code 1 or 2, the server as a status and a
//! stable kind. Its `Display` is the one line a person reads (a rule error with its byte span,
//! a file error with the file and line), never holding a credential.

use audlink_wasm::dispatch::ErrorKind;
use audlink_wasm::wire::ResponseError;

use crate::config::ConfigError;
use crate::exchange::ExchangeError;
use crate::guest::GuestError;
use crate::remote::RemoteError;
use crate::sandbox::SandboxError;
use crate::store::StoreError;

/// Why a workflow failed; nothing it would have written was written.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The guest stopped the call (deadline, memory cap), or the core refused the input.
    #[error("{}", guest_message(.0))]
    Guest(#[from] GuestError),
    /// The database refused, or a query ran past its deadline.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The platform could not be reached or refused (configuration problems are `Usage`).
    #[error("{0}")]
    Remote(String),
    /// The file exchange failed (configuration problems and bad keys are `Usage`).
    #[error("{0}")]
    Exchange(String),
    /// A plan, option or configuration that cannot be used (exit 2 on the command line).
    #[error("{0}")]
    Usage(String),
    /// Anything else that fails the job: an unreadable path, a file the core cannot read.
    #[error("{0}")]
    Job(String),
}

impl AppError {
    /// Whether the user's input is at fault (usage or configuration), rather than the job.
    pub fn is_usage(&self) -> bool {
        match self {
            AppError::Usage(_) => true,
            AppError::Guest(e) => rule_error(e),
            _ => false,
        }
    }

    /// Whether the core refused a segment rule (the server's `rule` kind).
    pub fn is_rule(&self) -> bool {
        matches!(self, AppError::Guest(e) if rule_error(e))
    }
}

fn rule_error(error: &GuestError) -> bool {
    matches!(error, GuestError::Core(ResponseError::Failed { error, .. }) if error.kind == ErrorKind::Rule)
}

/// The one line of a guest error: a rule with its byte span, a file error with file and line.
fn guest_message(error: &GuestError) -> String {
    match error {
        GuestError::Core(ResponseError::Failed { error, .. }) if error.kind == ErrorKind::Rule => {
            // The core renders the rule with a caret line; one line is kept.
            let last = error.message.lines().last().unwrap_or_default();
            let what = last.trim_start_matches(['^', ' ']);
            match error.span {
                Some(span) => format!("rule: {what} (at bytes {}..{})", span.start, span.end),
                None => format!("rule: {what}"),
            }
        }
        GuestError::Core(ResponseError::Failed { error, .. }) => match (&error.file, error.line) {
            (Some(file), Some(line)) if !error.message.contains(file.as_str()) => {
                format!("{file}:{line}: {}", error.message)
            }
            (Some(file), None) if !error.message.contains(file.as_str()) => {
                format!("{file}: {}", error.message)
            }
            _ => error.message.clone(),
        },
        other => other.to_string(),
    }
}

impl From<SandboxError> for AppError {
    fn from(error: SandboxError) -> AppError {
        AppError::Guest(GuestError::Sandbox(error))
    }
}

impl From<ConfigError> for AppError {
    fn from(error: ConfigError) -> AppError {
        AppError::Usage(error.0)
    }
}

impl From<RemoteError> for AppError {
    fn from(error: RemoteError) -> AppError {
        match error {
            RemoteError::Config(m) => AppError::Usage(m),
            RemoteError::Failed(m) => AppError::Remote(m),
        }
    }
}

impl From<ExchangeError> for AppError {
    fn from(error: ExchangeError) -> AppError {
        match error {
            ExchangeError::Config { .. } | ExchangeError::BadKey { .. } => {
                AppError::Usage(error.to_string())
            }
            other => AppError::Exchange(other.to_string()),
        }
    }
}
