//! The job routes: `POST /api/imports` (multipart upload, `write`), `POST /api/exports`
//! (`write`), `GET /api/jobs/{id}`, `GET /api/jobs/{id}/files/{name}` and `GET
//! /api/imports/{id}/unmatched` (`read`).

use std::io::Write as _;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use audlink_core::datasource::AmbiguityPolicy;
use audlink_core::export::ExportMode;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Schema};

use super::ServeState;
use super::error::ApiError;
use super::error::{ErrorBody, too_large};
use super::extract::{Reader, Writer};
use super::jobs::{self, JobWork};
use crate::app::answer::{JobAnswer, UnmatchedPage, UnmatchedRow};
use crate::app::export::{self, write_files};
use crate::app::import;
use crate::plan::{
    AepMode, Choice, ExportMembers, ExportPlan, ImportInput, ImportOptions, ImportPlan, InputFormat,
};

type Shared = Arc<ServeState>;

/// Unmatched rows a page holds at most.
pub const MAX_UNMATCHED_PAGE: usize = 10_000;

/// The options of an upload (the multipart field `options`): `audience import`'s flags.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The data source (a `[[datasource]]` of `audlink.toml`).
    pub datasource: String,
    /// `auto` (from the file names, the default), `ids`, `outbound`, `aep`, `onboarding`.
    #[serde(default)]
    pub format: Option<String>,
    /// The segment of a plain id list (`format: ids`).
    #[serde(default)]
    pub segment: Option<String>,
    /// The identity column of an Experience Platform export.
    #[serde(default)]
    pub identity_column: Option<String>,
    /// The status column of an Experience Platform export.
    #[serde(default)]
    pub status_column: Option<String>,
    /// `incremental` (default) or `full`, for Experience Platform exports.
    #[serde(default)]
    pub mode: Option<String>,
    /// Segment → list names.
    #[serde(default)]
    pub mappings: std::collections::BTreeMap<String, String>,
    /// `latest`, `all` or `skip` (default: the data source's).
    #[serde(default)]
    pub policy: Option<String>,
}

/// `POST /api/imports`'s body as sent: a `multipart/form-data` form with a field `options`
/// (the JSON text of an [`ImportBody`]) and one or more fields `file`, each an audience file
/// with its file name. Documentation only: the handler reads the form field by field.
#[derive(Debug)]
pub struct ImportForm;

impl utoipa::PartialSchema for ImportForm {
    fn schema() -> RefOr<Schema> {
        let options = ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/json")
            .description(Some(
                "The JSON text of an `ImportBody`: the data source, the format and the options",
            ));
        let file = ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
            )
            .min_items(Some(1))
            .description(Some(
                "The audience files, each with its file name (the name says the format)",
            ));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("options", options)
            .property("file", file)
            .required("options")
            .required("file")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for ImportForm {}

/// An accepted job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    /// The job's id (`GET /api/jobs/{id}`).
    pub job_id: i64,
    /// `queued`.
    pub status: String,
}

fn option<T: Choice>(name: &str, value: Option<&str>) -> Result<Option<T>, ApiError> {
    value
        .map(|v| T::parse_code(v).map_err(|e| ApiError::invalid(format!("{name}: {e}"))))
        .transpose()
}

impl ImportBody {
    /// The import's options (the inputs are the uploads).
    fn options(&self) -> Result<ImportOptions, ApiError> {
        Ok(ImportOptions {
            datasource: self.datasource.clone(),
            mappings: self
                .mappings
                .iter()
                .map(|(s, l)| (s.clone(), l.clone()))
                .collect(),
            policy: option::<AmbiguityPolicy>("policy", self.policy.as_deref())?,
            identity_column: self.identity_column.clone(),
            status_column: self.status_column.clone(),
            mode: option::<AepMode>("mode", self.mode.as_deref())?.unwrap_or_default(),
            format: option::<InputFormat>("format", self.format.as_deref())?.unwrap_or_default(),
            segment: self.segment.clone(),
        })
    }
}

/// A file name an upload may have: one path segment, no control characters.
fn upload_name(name: &str) -> Result<&str, ApiError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 255
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(ApiError::invalid(format!(
            "file name {name:?}: not a plain file name"
        )));
    }
    Ok(name)
}

/// Removes an upload's folder when the request fails before the job takes it.
struct UploadGuard(Option<PathBuf>);

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Some(dir) = self
            .0
            .take()
            .and_then(|d| d.parent().map(FsPath::to_path_buf))
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Uploads audience files and imports them as a job (`audlink audience import`'s work). The
/// body is `multipart/form-data`: a field `options` (JSON, [`ImportBody`]) and one or more
/// fields `file` with a file name (the name says the format, as on the command line). Files
/// are streamed to disk, all of them together at most `[serve] max_upload_bytes`.
#[utoipa::path(post, path = "/api/imports", tag = "jobs", security(("bearer" = [])),
    request_body(content = ImportForm, content_type = "multipart/form-data",
        description = "`options`: the JSON text of an `ImportBody`; `file`: one or more audience files"),
    responses(
        (status = 202, description = "The job", body = JobAccepted),
        (status = 400, description = "Not a multipart body, or bad options JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "The token is not `write`", body = ErrorBody),
        (status = 413, description = "The upload is too large", body = ErrorBody),
        (status = 422, description = "Bad options or file names", body = ErrorBody),
        (status = 503, description = "No database", body = ErrorBody),
    ))]
pub(super) async fn import_files(
    State(state): State<Shared>,
    _token: Writer,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let limit = state.serve().max_upload_bytes;
    let dir = state.jobs.upload_dir()?;
    let mut guard = UploadGuard(Some(dir.clone()));
    let mut options: Option<ImportBody> = None;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut total: u64 = 0;
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("options") => {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                total += bytes.len() as u64;
                let body: ImportBody = serde_json::from_slice(&bytes).map_err(|e| {
                    let status = if e.is_data() {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::BAD_REQUEST
                    };
                    ApiError::new(
                        status,
                        if e.is_data() {
                            "invalid"
                        } else {
                            "bad_request"
                        },
                        format!("options: {e}"),
                    )
                })?;
                options = Some(body);
            }
            Some("file") => {
                let name = upload_name(field.file_name().unwrap_or_default())?.to_owned();
                let path = dir.join(&name);
                if files.contains(&path) {
                    return Err(ApiError::invalid(format!(
                        "file name {name:?} is given twice"
                    )));
                }
                let mut file = std::fs::File::create_new(&path)
                    .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    total += chunk.len() as u64;
                    if total > limit {
                        return Err(too_large(limit));
                    }
                    file.write_all(&chunk)
                        .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
                }
                files.push(path);
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unexpected field {:?}: expected options and file",
                    other.unwrap_or_default()
                )));
            }
        }
        if total > limit {
            return Err(too_large(limit));
        }
    }
    let options = options.ok_or_else(|| ApiError::invalid("the field `options` is missing"))?;
    if files.is_empty() {
        return Err(ApiError::invalid(
            "no field `file`: upload one or more audience files",
        ));
    }
    // The job's folder replaces the upload's: paths as they will be.
    let job_files: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let options = options.options()?;
    state
        .config
        .datasource(&options.datasource, options.policy)
        .map_err(|e| ApiError::invalid(e.0))?;
    let config = state.config.clone();
    let work: JobWork = Box::new(move |dir, guest, store, step| {
        let plan = ImportPlan {
            options,
            inputs: job_files
                .iter()
                .map(|n| ImportInput::file(dir.join("in").join(n)))
                .collect(),
        };
        import::check(&config, &plan)?;
        let answer = import::import(guest, store, &config, &plan, &[], step)?;
        let report = serde_json::to_value(answer).expect("answers serialize");
        Ok((report, Vec::new()))
    });
    let id = jobs::start(&state, "import", Some(dir), work).await?;
    guard.0 = None;
    Ok(accepted(id))
}

fn accepted(id: i64) -> Response {
    let mut response = (
        StatusCode::ACCEPTED,
        Json(JobAccepted {
            job_id: id,
            status: "queued".to_owned(),
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/jobs/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `POST /api/exports`'s body: `audience export`'s flags (files go to the job, the platform is
/// not called).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    /// The data source.
    pub datasource: String,
    /// The list to export (or `rule`).
    #[serde(default)]
    pub list: Option<String>,
    /// The rule whose recipients to export (or `list`; needs `audience`).
    #[serde(default)]
    pub rule: Option<String>,
    /// The audience's name (default: the list's).
    #[serde(default)]
    pub audience: Option<String>,
    /// The value of `now()` for the rule (RFC 3339).
    #[serde(default)]
    pub now: Option<String>,
    /// The trait id the lines carry.
    pub trait_id: u64,
    /// `sync` (default), `overwrite` or `delta`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Gzip the files.
    #[serde(default)]
    pub gzip: bool,
    /// Lines a file holds at most.
    #[serde(default)]
    pub max_lines: Option<u64>,
    /// The files' unix timestamp (default: now).
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// Exports a list or a rule's recipients as onboarding files, as a job (`audlink audience
/// export`'s work, without `--remote`); the files are downloadable from the job.
#[utoipa::path(post, path = "/api/exports", tag = "jobs", security(("bearer" = [])),
    request_body = ExportBody,
    responses(
        (status = 202, description = "The job", body = JobAccepted),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "The token is not `write`", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "Bad fields", body = ErrorBody),
        (status = 503, description = "No database", body = ErrorBody),
    ))]
pub(super) async fn export_audience(
    State(state): State<Shared>,
    _token: Writer,
    body: Result<Json<ExportBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let mode = option::<ExportMode>("mode", body.mode.as_deref())?;
    let members = match (body.list, body.rule) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("give list or rule, not both")),
        (None, None) => return Err(ApiError::invalid("give list or rule")),
        (Some(list), None) => ExportMembers::List(list),
        (None, Some(rule)) => {
            let now = body
                .now
                .as_deref()
                .map(|text| {
                    text.parse()
                        .map_err(|e| ApiError::invalid(format!("--now {text:?}: {e}")))
                })
                .transpose()?;
            ExportMembers::Rule { rule, now }
        }
    };
    let audience = match (body.audience, ExportPlan::default_audience(&members)) {
        (Some(name), _) => name,
        (None, Some(name)) => name.to_owned(),
        (None, None) => return Err(ApiError::invalid("rule needs audience")),
    };
    state
        .config
        .datasource(&body.datasource, None)
        .map_err(|e| ApiError::invalid(e.0))?;
    let plan = ExportPlan {
        members,
        audience,
        datasource: body.datasource,
        trait_id: body.trait_id,
        mode: mode.unwrap_or(ExportMode::Sync),
        gzip: body.gzip,
        max_lines: body.max_lines,
        timestamp: body.timestamp,
        skip_unchanged: false,
    };
    let config = state.config.clone();
    let work: JobWork = Box::new(move |dir, guest, store, step| {
        let out = dir.join("out");
        let exported = export::export(guest, store, &config, &plan, step, &mut |files| {
            write_files(&out, files)
        })?;
        let files = exported
            .answer
            .files
            .iter()
            .map(|f| f.name.clone())
            .collect();
        let json = serde_json::to_value(exported.answer).expect("answers serialize");
        Ok((json, files))
    });
    let id = jobs::start(&state, "export", None, work).await?;
    Ok(accepted(id))
}

fn bad_path(e: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
}

/// A job: its kind, status (`queued`, `running`, `done`, `failed`, `interrupted`), step,
/// result (the command's `--json` document) or error, and files.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "The job", body = JobAnswer),
        (status = 400, description = "The id is not a 64-bit integer", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub(super) async fn job(
    State(state): State<Shared>,
    _token: Reader,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<JobAnswer>, ApiError> {
    let Path(id) = id.map_err(bad_path)?;
    let db = state.db.clone();
    let job = state
        .pool
        .run_store(db, move |store| Ok(store.job(id)?))
        .await?;
    let job = job.ok_or_else(|| ApiError::not_found(format!("no job with id {id}")))?;
    Ok(Json(JobAnswer::from(job)))
}

/// A file a job made (an export's onboarding file), as the exact bytes written.
#[utoipa::path(get, path = "/api/jobs/{id}/files/{name}", tag = "jobs", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The job"), ("name" = String, Path, description = "The file's name")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 400, description = "The id is not a 64-bit integer", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such job or file", body = ErrorBody),
    ))]
pub(super) async fn job_file(
    State(state): State<Shared>,
    _token: Reader,
    path: Result<Path<(i64, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((id, name)) = path.map_err(bad_path)?;
    let db = state.db.clone();
    let job = state
        .pool
        .run_store(db, move |store| Ok(store.job(id)?))
        .await?;
    let job = job.ok_or_else(|| ApiError::not_found(format!("no job with id {id}")))?;
    // Only a name the job recorded: never a path the client chose.
    if !job.files.contains(&name) {
        return Err(ApiError::not_found(format!(
            "job {id} has no file {name:?}"
        )));
    }
    let path = state.jobs.job_dir(id).join("out").join(&name);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::not_found(format!("job {id}: file {name:?}: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        Body::from(bytes),
    )
        .into_response())
}

/// `GET /api/imports/{id}/unmatched`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnmatchedQuery {
    /// `next_cursor` of the previous page (absent: the first page).
    pub cursor: Option<String>,
    /// Rows per page (default 1000, at most 10000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// A page of an import's unmatched identifiers, in recorded order (the rows of `audlink report
/// --unmatched`); rows never change once recorded, so the cursor (a position) is stable.
#[utoipa::path(get, path = "/api/imports/{id}/unmatched", tag = "jobs", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The import (`import_id` of the report)"), UnmatchedQuery),
    responses(
        (status = 200, description = "A page of unmatched identifiers", body = UnmatchedPage),
        (status = 400, description = "A bad id, cursor or limit", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such import", body = ErrorBody),
    ))]
pub(super) async fn unmatched(
    State(state): State<Shared>,
    _token: Reader,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<UnmatchedQuery>, QueryRejection>,
) -> Result<Json<UnmatchedPage>, ApiError> {
    let Path(id) = id.map_err(bad_path)?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(1000);
    if !(1..=MAX_UNMATCHED_PAGE).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("limit: {limit} is not in 1..={MAX_UNMATCHED_PAGE}"),
        ));
    }
    let start: usize = match &query.cursor {
        Some(c) => c.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "cursor: not a cursor this server gave (use next_cursor of the previous page)",
            )
        })?,
        None => 0,
    };
    let db = state.db.clone();
    let page = state
        .pool
        .run_store(db, move |store| {
            let upto = start.saturating_add(limit);
            let stored = store.import_report(id, upto)?;
            let total = stored.unmatched_total;
            let rows: Vec<UnmatchedRow> = crate::unmatched::rows(&stored, upto)?
                .iter()
                .skip(start)
                .map(UnmatchedRow::from)
                .collect();
            let end = start + rows.len();
            let next = ((end as u64) < total && !rows.is_empty()).then(|| end.to_string());
            Ok(UnmatchedPage {
                import_id: id,
                unmatched_total: total,
                unmatched: rows,
                next_cursor: next,
            })
        })
        .await?;
    Ok(Json(page))
}
