//! The API's errors: a status and `{"error": {"kind", "message"}}`, for every failure of every
//! route — authentication, limits, bodies that cannot be read, inputs the core refuses, a
//! sandboxed call stopped by its deadline or memory cap, a missing database.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Denied;
use crate::app::AppError;
use crate::guest::GuestError;
use crate::sandbox::SandboxError;
use crate::store::StoreError;

/// A failed request: its status, a stable kind and one lower-case line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable kind (`unauthenticated`, `deadline`, `memory`, …).
    pub kind: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error of `status` and `kind`.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// 422 `invalid`: a well-formed request with a value that cannot be used.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 `internal` (the message is logged; the client gets it too, it holds no secret).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The limit this error names, when a sandbox or query limit was hit.
    pub fn limit(&self) -> Option<&'static str> {
        matches!(self.kind, "deadline" | "memory" | "query_deadline").then_some(self.kind)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"kind": self.kind, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        // The route's metrics read the kind (a limit hit is counted by name).
        response.extensions_mut().insert(ErrorKind(self.kind));
        response
    }
}

/// The kind of an error response, for the metrics layer.
#[derive(Debug, Clone, Copy)]
pub struct ErrorKind(pub &'static str);

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> ApiError {
        match denied {
            Denied::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "a valid `Authorization: Bearer <token>` header is required",
            ),
            Denied::Forbidden { needed } => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this route needs a token with the {} role", needed.name()),
            ),
            Denied::Busy { limit } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "this token has {limit} requests in flight already, its limit; retry when one ends"
                ),
            ),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let status = rejection.status();
        let kind = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::BAD_REQUEST => "bad_request",
            _ => "invalid",
        };
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                "the request body is larger than the server accepts".to_owned()
            }
            _ => lower_first(&rejection.body_text()),
        };
        ApiError::new(status, kind, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            lower_first(&rejection.body_text()),
        )
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let message = error.to_string();
        match error {
            StoreError::Missing { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_database", message)
            }
            StoreError::NewerSchema { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_database", message)
            }
            StoreError::NoRecipients => {
                ApiError::new(StatusCode::CONFLICT, "no_recipients", message)
            }
            StoreError::UnknownList { .. }
            | StoreError::UnknownImport { .. }
            | StoreError::UnknownExport { .. } => ApiError::not_found(message),
            StoreError::UnknownColumn { .. } => ApiError::invalid(message),
            StoreError::Deadline { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "query_deadline", message)
            }
            StoreError::ListChanged { .. } | StoreError::AlreadyImported { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "database", message),
        }
    }
}

impl From<SandboxError> for ApiError {
    fn from(error: SandboxError) -> ApiError {
        let message = error.to_string();
        match error {
            SandboxError::Deadline { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "deadline", message)
            }
            SandboxError::Memory { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "memory", message)
            }
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "sandbox", message),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> ApiError {
        match error {
            AppError::Guest(GuestError::Sandbox(e)) => e.into(),
            AppError::Store(e) => e.into(),
            AppError::Usage(m) => ApiError::invalid(m),
            // The one-line rendering (a rule with its byte span, a file with its line).
            e @ AppError::Guest(GuestError::Core(_)) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                if e.is_rule() { "rule" } else { "input" },
                e.to_string(),
            ),
            e => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "failed", e.to_string()),
        }
    }
}

/// 413 `too_large` naming the limit.
pub fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the request body is larger than this route accepts ({limit} bytes)"),
    )
}

/// An error's body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable kind: `unauthenticated`, `forbidden`, `too_many_requests`, `too_large`,
    /// `bad_request`, `invalid`, `rule`, `input`, `deadline`, `memory`, `query_deadline`,
    /// `not_found`, `no_database`, `no_recipients`, …
    pub kind: String,
    /// One line for a person.
    pub message: String,
}
