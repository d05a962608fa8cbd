//! The API's routes, their handlers and the OpenAPI document generated from them (utoipa).
//!
//! | route | role |
//! |---|---|
//! | `GET /healthz`, `GET /api/openapi.json` | none |
//! | `GET /metrics`, `POST /api/rules/preview`, `GET /api/lists`, `GET /api/recipients.csv`, `GET /api/visitor-links.csv`, `GET /api/lists/{name}/members`, `GET /api/jobs/{id}`, `GET /api/jobs/{id}/files/{name}`, `GET /api/imports/{id}/unmatched` | `read` |
//! | `POST /api/imports`, `POST /api/exports` | `write` |
//!
//! Every other path under `/api` answers 401 without a token and 404 with one. Bodies larger
//! than `[serve] max_body_bytes` (`max_upload_bytes` for `POST /api/imports`) get 413 before
//! anything is read.

use std::sync::Arc;

use audlink_core::recipients::RecipientKey;
use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody, ErrorDetail, ErrorKind, too_large};
use super::extract::Reader;
use super::{ServeState, job_routes};
use crate::app::answer::{Lists, MembersPage, RecipientId};
use crate::app::now;
use crate::app::preview::{Preview, lists as app_lists, preview as app_preview};
use crate::plan::PreviewPlan;

type Shared = Arc<ServeState>;

/// Recipients a preview shows at most.
pub const MAX_SAMPLE: usize = 1000;
/// Members a page holds by default.
pub const DEFAULT_PAGE: usize = 1000;
/// Members a page holds at most.
pub const MAX_PAGE: usize = 10_000;

/// The API's routes (without the static files), with the body-size guard and the request
/// counters.
pub fn router(state: Shared) -> Router {
    let max_body = usize::try_from(state.serve().max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/api/rules/preview", post(preview))
        .route("/api/lists", get(lists))
        .route("/api/recipients.csv", get(recipients_csv))
        .route("/api/visitor-links.csv", get(links_csv))
        .route("/api/lists/{name}/members", get(members))
        .route(
            "/api/imports",
            post(job_routes::import_files).layer(DefaultBodyLimit::max(
                usize::try_from(state.serve().max_upload_bytes).unwrap_or(usize::MAX),
            )),
        )
        .route("/api/imports/{id}/unmatched", get(job_routes::unmatched))
        .route("/api/exports", post(job_routes::export_audience))
        .route("/api/jobs/{id}", get(job_routes::job))
        .route("/api/jobs/{id}/files/{name}", get(job_routes::job_file))
        .route("/api/{*rest}", axum::routing::any(unknown))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            guard_body,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), count))
        .with_state(state)
}

/// 413 for a declared body larger than the route accepts, before authentication.
async fn guard_body(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let limit = if request.uri().path() == "/api/imports" {
        state.serve().max_upload_bytes
    } else {
        state.serve().max_body_bytes
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&n| n > limit) {
        // Nothing of it is used; a modest body is read and dropped so that the client, still
        // sending, gets the answer rather than a reset connection.
        if declared <= DRAIN_LIMIT {
            let _ = axum::body::to_bytes(request.into_body(), DRAIN_LIMIT as usize).await;
        }
        return too_large(limit).into_response();
    }
    next.run(request).await
}

/// Largest refused body that is read (and dropped) before the 413 is sent.
const DRAIN_LIMIT: u64 = 8 << 20;

/// Counts every answer by route pattern and status, and the limits error answers name.
async fn count(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "static".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.request(&route, response.status().as_u16());
    if let Some(ErrorKind(kind)) = response.extensions().get::<ErrorKind>() {
        let limit = match *kind {
            "too_large" => Some("body_size"),
            "too_many_requests" => Some("concurrency"),
            "deadline" => Some("deadline"),
            "memory" => Some("memory"),
            "query_deadline" => Some("query_deadline"),
            _ => None,
        };
        if let Some(limit) = limit {
            state.metrics.limit_hit(limit);
        }
    }
    response
}

/// `GET /healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
}

/// The server answers.
#[utoipa::path(get, path = "/healthz", tag = "server",
    responses((status = 200, description = "The server answers", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "server",
    responses((status = 200, description = "The OpenAPI document of this API")))]
async fn openapi() -> Response {
    let mut response = Json(ApiDoc::openapi()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Prometheus text: requests by route and status, sandbox calls and live instances, limit hits,
/// job durations.
#[utoipa::path(get, path = "/metrics", tag = "server", security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
async fn metrics(State(state): State<Shared>, _token: Reader) -> Response {
    let text = state.metrics.render(Some(state.pool.sandbox()));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// `POST /api/rules/preview`'s body: `audlink segment preview`'s arguments.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// The rule, e.g. `country in ("NL", "BE") and age >= 18`.
    pub rule: String,
    /// Recipients to show (default 10, at most 1000).
    #[serde(default = "default_sample")]
    pub sample: usize,
    /// A column to break the selection down by.
    #[serde(default)]
    pub by: Option<String>,
    /// The value of `now()` (RFC 3339; default: the server's clock).
    #[serde(default)]
    pub now: Option<String>,
}

fn default_sample() -> usize {
    10
}

/// Counts, samples and breaks down what a rule selects among the database's recipients: the
/// rule is compiled in the sandbox (a fresh instance) and run in the database, as `audlink
/// segment preview` does.
#[utoipa::path(post, path = "/api/rules/preview", tag = "rules", security(("bearer" = [])),
    request_body = PreviewBody,
    responses(
        (status = 200, description = "The preview", body = Preview),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A bad rule (`rule`), a bad field (`invalid`), or a limit hit (`deadline`, `memory`, `query_deadline`)", body = ErrorBody),
        (status = 429, description = "Too many requests in flight for this token", body = ErrorBody),
        (status = 503, description = "No database", body = ErrorBody),
    ))]
async fn preview(
    State(state): State<Shared>,
    _token: Reader,
    body: Result<Json<PreviewBody>, JsonRejection>,
) -> Result<Json<Preview>, ApiError> {
    let Json(body) = body?;
    if body.sample > MAX_SAMPLE {
        return Err(ApiError::invalid(format!(
            "sample: {} is more than {MAX_SAMPLE}",
            body.sample
        )));
    }
    let now = match &body.now {
        Some(text) => text
            .parse()
            .map_err(|e| ApiError::invalid(format!("now {text:?}: {e}")))?,
        None => now(),
    };
    let deadline = state.query_deadline();
    let db = state.db.clone();
    let answer = state
        .pool
        .run(db, move |guest, store| {
            let plan = PreviewPlan {
                rule: body.rule,
                sample: body.sample,
                by: body.by,
                now,
                deadline,
            };
            app_preview(guest, store, &plan)
        })
        .await?;
    Ok(Json(answer))
}

/// Every list with its number of members (as `audlink list ls`).
#[utoipa::path(get, path = "/api/lists", tag = "lists", security(("bearer" = [])),
    responses(
        (status = 200, description = "The lists", body = Lists),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 503, description = "No database", body = ErrorBody),
    ))]
async fn lists(State(state): State<Shared>, _token: Reader) -> Result<Json<Lists>, ApiError> {
    let db = state.db.clone();
    let answer = state.pool.run_store(db, |store| app_lists(store)).await?;
    Ok(Json(answer))
}

/// The database's recipients as a recipients CSV (the file `audlink recipients load` reads, in
/// id order), for the preview page's "database" source: the page loads it as if it were a file.
#[utoipa::path(get, path = "/api/recipients.csv", tag = "data", security(("bearer" = [])),
    responses(
        (status = 200, description = "Recipients CSV", content_type = "text/csv"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 503, description = "No database", body = ErrorBody),
    ))]
async fn recipients_csv(State(state): State<Shared>, _token: Reader) -> Result<Response, ApiError> {
    let db = state.db.clone();
    let csv = state
        .pool
        .run_store(db, |store| {
            Ok(audlink_core::format::recipients::write(
                &store.recipients_table()?,
            ))
        })
        .await?;
    Ok(csv_response(csv, "recipients.csv"))
}

/// The database's visitor links as a links CSV (`recipient_id,visitor_id,last_seen`).
#[utoipa::path(get, path = "/api/visitor-links.csv", tag = "data", security(("bearer" = [])),
    responses(
        (status = 200, description = "Visitor links CSV", content_type = "text/csv"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 503, description = "No database", body = ErrorBody),
    ))]
async fn links_csv(State(state): State<Shared>, _token: Reader) -> Result<Response, ApiError> {
    let db = state.db.clone();
    let csv = state
        .pool
        .run_store(db, |store| {
            Ok(audlink_core::format::links::write(&store.links()?))
        })
        .await?;
    Ok(csv_response(csv, "visitors.csv"))
}

fn csv_response(csv: Vec<u8>, name: &'static str) -> Response {
    let disposition = format!("inline; filename=\"{name}\"");
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        csv,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /api/lists/{name}/members`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// Where the page starts: `next_cursor` of the previous page (absent: the first page).
    pub cursor: Option<String>,
    /// Members per page (default 1000, at most 10000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// A page of a list's members in id order (the ids of `audlink list show`). The cursor names
/// the last id of the page, so pages do not shift when members are added or removed meanwhile.
#[utoipa::path(get, path = "/api/lists/{name}/members", tag = "lists", security(("bearer" = [])),
    params(("name" = String, Path, description = "The list"), MembersQuery),
    responses(
        (status = 200, description = "A page of members", body = MembersPage),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
        (status = 503, description = "No database", body = ErrorBody),
    ))]
async fn members(
    State(state): State<Shared>,
    _token: Reader,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<MembersQuery>, QueryRejection>,
) -> Result<Json<MembersPage>, ApiError> {
    let Path(name) =
        name.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("limit: {limit} is not in 1..={MAX_PAGE}"),
        ));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let db = state.db.clone();
    let page = state
        .pool
        .run_store(db, move |store| {
            let members = store.list_members(&name)?;
            let start = match &after {
                Some(key) => members.partition_point(|m| m <= key),
                None => 0,
            };
            let end = (start + limit).min(members.len());
            let page = &members[start..end];
            let next_cursor = (end < members.len())
                .then(|| page.last().map(encode_cursor))
                .flatten();
            Ok(MembersPage {
                name,
                members: page.iter().map(RecipientId::from).collect(),
                next_cursor,
            })
        })
        .await?;
    Ok(Json(page))
}

/// A cursor: the last key of a page, as JSON, hex-encoded.
fn encode_cursor(key: &RecipientKey) -> String {
    let text = serde_json::to_string(key).expect("keys serialize");
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Result<RecipientKey, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "cursor: not a cursor this server gave (use next_cursor of the previous page)",
        )
    };
    if !cursor.len().is_multiple_of(2) || cursor.len() > 2048 {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

async fn unknown(_token: Reader) -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this route does not answer {method}"),
    )
}

#[derive(Debug)]
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, generated from the handlers above.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "audlink", description = "audlink serve: rule previews, lists, imports and exports over the audlink database, every rule and file run in the wasm sandbox."),
    paths(healthz, openapi, metrics, preview, lists, recipients_csv, links_csv, members, job_routes::import_files, job_routes::unmatched, job_routes::export_audience, job_routes::job, job_routes::job_file),
    components(schemas(ErrorBody, ErrorDetail, Health, PreviewBody, Preview, crate::app::preview::Breakdown, crate::app::preview::Bucket, crate::app::answer::ListSize, Lists, MembersPage, RecipientId, job_routes::ImportForm, job_routes::ImportBody, job_routes::ExportBody, job_routes::JobAccepted, crate::app::answer::JobAnswer, crate::app::answer::JobState, crate::app::answer::JobError, crate::app::answer::JobResult, crate::app::answer::UnmatchedPage, crate::app::answer::UnmatchedRow)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        for key in [
            RecipientKey::Int(-5),
            RecipientKey::String("a\"b/é".to_owned()),
        ] {
            assert_eq!(
                decode_cursor(&encode_cursor(&key)).expect("round trip"),
                key
            );
        }
        for bad in ["", "0", "zz", "7b7d"] {
            assert_eq!(
                decode_cursor(bad).expect_err(bad).status,
                StatusCode::BAD_REQUEST
            );
        }
    }

    #[test]
    fn the_document_lists_every_route_and_the_bearer_scheme() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        for path in [
            "/healthz",
            "/api/openapi.json",
            "/metrics",
            "/api/rules/preview",
            "/api/lists",
            "/api/recipients.csv",
            "/api/visitor-links.csv",
            "/api/lists/{name}/members",
            "/api/imports",
            "/api/exports",
            "/api/jobs/{id}",
            "/api/jobs/{id}/files/{name}",
            "/api/imports/{id}/unmatched",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn the_document_describes_bodies_as_the_server_reads_and_writes_them() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let schemas = &doc["components"]["schemas"];
        // The upload is a form of `options` (JSON text) and `file` parts, not ImportBody.
        assert_eq!(
            doc["paths"]["/api/imports"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
                ["$ref"],
            "#/components/schemas/ImportForm"
        );
        assert_eq!(
            schemas["ImportForm"]["required"],
            json!(["options", "file"])
        );
        assert_eq!(
            schemas["ImportForm"]["properties"]["file"]["items"]["format"],
            "binary"
        );
        // Members are ids: integers or strings.
        assert_eq!(
            schemas["MembersPage"]["properties"]["members"]["items"]["$ref"],
            "#/components/schemas/RecipientId"
        );
        // A breakdown's value is any JSON value (a scalar), not an object.
        assert!(
            schemas["Bucket"]["properties"]["value"]
                .get("type")
                .is_none()
        );
        // Bodies the server reads with deny_unknown_fields say so.
        for body in ["PreviewBody", "ImportBody", "ExportBody"] {
            assert_eq!(schemas[body]["additionalProperties"], false, "{body}");
        }
    }
}
