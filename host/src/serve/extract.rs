//! The request extractors that check a bearer token's role: [`Reader`] and [`Writer`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};

use super::ServeState;
use super::auth::{Granted, Role};
use super::error::ApiError;

type Shared = Arc<ServeState>;

/// The request's token, checked for the `read` role.
#[derive(Debug)]
pub struct Reader(pub Granted);

/// The request's token, checked for the `write` role.
#[derive(Debug)]
pub struct Writer(pub Granted);

fn authorize(parts: &Parts, state: &ServeState, role: Role) -> Result<Granted, ApiError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    Ok(state.tokens.check(header, role)?)
}

impl FromRequestParts<Shared> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Reader, ApiError> {
        authorize(parts, state, Role::Read).map(Reader)
    }
}

impl FromRequestParts<Shared> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Writer, ApiError> {
        authorize(parts, state, Role::Write).map(Writer)
    }
}
