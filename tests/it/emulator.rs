//! The Experience Cloud emulator: a loopback HTTP server (axum) that speaks the subset of Adobe
//! IMS and the Audience Manager REST API audlink uses, and misbehaves on request.
//!
//! - `POST /ims/token/v3` (form): checks `grant_type`, the client id and secret and that every
//!   required scope was asked for; issues opaque tokens valid for a configurable lifetime,
//!   measured on an injectable [`Clock`] (shared with the client under test, so advancing a fake
//!   clock expires tokens on both sides).
//! - `GET /v1/datasources/`, `GET|POST /v1/traits/`, `GET|POST /v1/segments/`: check the bearer
//!   token (`401` when missing, unknown or expired), `x-api-key` and `x-gw-ims-org-id` (`403`
//!   when wrong), keep traits and segments in memory, page lists (`page` from 0, `pageSize`,
//!   `folderId`), answer `409` to a name already in the folder and `400` to a bad body or a
//!   segment rule naming no trait.
//!
//! Every request is counted per [`Route`] (faulty ones included). [`Emulator::fault`] queues a
//! [`Fault`] for the next request on a route: a status with `Retry-After`, a slow response, a
//! connection dropped in the middle of the body, all tokens revoked, a body that is not JSON, or
//! a competing client creating the same name first.
//!
//! The server runs on a runtime the [`Emulator`] owns, so synchronous tests (which run the
//! `audlink` binary) and async ones ([`Emulator::block_on`]) both use it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use audlink_host::remote::clock::{Clock, SystemClock};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The client id the emulator accepts.
pub(crate) const CLIENT_ID: &str = "emu-client-id-0f9e";
/// The client secret the emulator accepts.
pub(crate) const CLIENT_SECRET: &str = "emu-SECRET-p8q7r6s5t4u3";
/// The organization the emulator belongs to.
pub(crate) const ORG: &str = "EMU0123456789ABCDEF@AdobeOrg";
/// The scopes a token request must include.
pub(crate) const SCOPES: &[&str] = &["openid", "AdobeID", "read_organizations"];

/// A route of the emulator, for counting and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Route {
    Token,
    DataSources,
    TraitsGet,
    TraitsPost,
    SegmentsGet,
    SegmentsPost,
}

/// Something the emulator does wrong on purpose, once.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Answers `status` (with `Retry-After` when given) without doing anything.
    Status(u16, Option<&'static str>),
    /// Does the work, then waits this long (real time) before answering.
    Slow(Duration),
    /// Does the work, then sends the headers and half the body and drops the connection.
    DropMidBody,
    /// Revokes every token issued so far, then handles the request (which then fails `401`).
    RevokeTokens,
    /// Does the work and answers `200` with a body that is not JSON.
    Garbage,
    /// A competing client creates the posted name just before this request is handled.
    Race,
}

/// How the emulator is set up.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// How long issued tokens are valid.
    pub(crate) token_lifetime: Duration,
    /// The clock token expiry is measured on.
    pub(crate) clock: Arc<dyn Clock>,
    /// The data sources (`dataSourceId`, name).
    pub(crate) datasources: Vec<(u64, &'static str)>,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            token_lifetime: Duration::from_secs(3600),
            clock: Arc::new(SystemClock),
            datasources: vec![(21, "ECID"), (22, "CRM hashed email"), (23, "CRM id")],
        }
    }
}

#[derive(Debug, Default)]
struct Data {
    counts: BTreeMap<Route, u32>,
    faults: HashMap<Route, VecDeque<Fault>>,
    /// Valid tokens and when they expire.
    tokens: HashMap<String, Instant>,
    issued: Vec<String>,
    traits: Vec<Value>,
    segments: Vec<Value>,
    next_sid: u64,
}

#[derive(Debug)]
struct Shared {
    setup: Setup,
    data: Mutex<Data>,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running emulator; stops when dropped.
#[derive(Debug)]
pub(crate) struct Emulator {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Emulator {
    /// Starts an emulator with the default setup.
    pub(crate) fn start() -> Emulator {
        Emulator::with(Setup::default())
    }

    /// Starts an emulator on a free loopback port.
    pub(crate) fn with(setup: Setup) -> Emulator {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("emulator runtime");
        let shared = Arc::new(Shared {
            setup,
            data: Mutex::new(Data {
                next_sid: 1000,
                ..Data::default()
            }),
        });
        let app = Router::new()
            .route("/ims/token/v3", post(token))
            .route("/v1/datasources/", get(datasources))
            .route("/v1/traits/", get(traits_get).post(traits_post))
            .route("/v1/segments/", get(segments_get).post(segments_post))
            .with_state(shared.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Emulator {
            runtime,
            addr,
            shared,
        }
    }

    /// The base URL (both IMS and Audience Manager live here).
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs a future on the emulator's runtime.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Queues `fault` for the next request on `route` (faults on a route apply in order).
    pub(crate) fn fault(&self, route: Route, fault: Fault) {
        self.shared
            .data()
            .faults
            .entry(route)
            .or_default()
            .push_back(fault);
    }

    /// Queues `fault` for the next `n` requests on `route`.
    pub(crate) fn faults(&self, route: Route, fault: Fault, n: usize) {
        for _ in 0..n {
            self.fault(route, fault.clone());
        }
    }

    /// Drops every queued fault.
    pub(crate) fn clear_faults(&self) {
        self.shared.data().faults.clear();
    }

    /// Requests received on `route` so far.
    pub(crate) fn count(&self, route: Route) -> u32 {
        self.shared.data().counts.get(&route).copied().unwrap_or(0)
    }

    /// Requests per route so far (routes never called are absent).
    pub(crate) fn counts(&self) -> BTreeMap<Route, u32> {
        self.shared.data().counts.clone()
    }

    /// Every token issued so far.
    pub(crate) fn issued_tokens(&self) -> Vec<String> {
        self.shared.data().issued.clone()
    }

    /// The traits held.
    pub(crate) fn traits(&self) -> Vec<Value> {
        self.shared.data().traits.clone()
    }

    /// The segments held.
    pub(crate) fn segments(&self) -> Vec<Value> {
        self.shared.data().segments.clone()
    }

    /// Adds traits as if created earlier (for paging); their sids.
    pub(crate) fn seed_traits(&self, folder: u64, names: impl IntoIterator<Item = String>) {
        let mut data = self.shared.data();
        for name in names {
            let sid = data.next_sid;
            data.next_sid += 1;
            data.traits.push(json!({
                "sid": sid, "name": name, "traitType": "ON_BOARDED_TRAIT",
                "dataSourceId": 21, "folderId": folder, "traitRule": "", "ttl": 120,
            }));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request handling

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

/// Counts the request and takes the route's next fault.
fn begin(shared: &Shared, route: Route) -> Option<Fault> {
    let mut data = shared.data();
    *data.counts.entry(route).or_default() += 1;
    let fault = data.faults.get_mut(&route).and_then(VecDeque::pop_front);
    if matches!(fault, Some(Fault::RevokeTokens)) {
        data.tokens.clear();
    }
    fault
}

/// Answers `work`'s response, or the fault's version of it.
async fn finish(fault: Option<Fault>, work: Response) -> Response {
    match fault {
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            work
        }
        Some(Fault::Garbage) if work.status().is_success() => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"list\": [ {\"sid\": 12, \"na",
        )
            .into_response(),
        Some(Fault::DropMidBody) => {
            let (parts, body) = work.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "dropped on purpose",
                )),
            ];
            let mut response =
                Response::from_parts(parts, Body::from_stream(futures_util::stream::iter(chunks)));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
        _ => work,
    }
}

/// A fault that answers before any work.
fn early(fault: &Option<Fault>) -> Option<Response> {
    match fault {
        Some(Fault::Status(status, retry_after)) => {
            let status = StatusCode::from_u16(*status).expect("a valid status");
            let mut response = error(status, &status.as_u16().to_string(), "injected failure");
            if let Some(wait) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, wait.parse().expect("a header value"));
            }
            Some(response)
        }
        _ => None,
    }
}

async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let fault = begin(&shared, Route::Token);
    if let Some(response) = early(&fault) {
        return response;
    }
    let form: HashMap<String, String> = match serde_urlencoded_from(&body) {
        Some(form) => form,
        None => return error(StatusCode::BAD_REQUEST, "invalid_request", "bad form"),
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let work = if field("grant_type") != "client_credentials" {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response()
    } else if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response()
    } else if SCOPES
        .iter()
        .any(|s| !field("scope").split(',').any(|asked| asked == *s))
    {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_scope"})),
        )
            .into_response()
    } else {
        let mut data = shared.data();
        let token = format!("emu-TOKEN-{:04}-a1b2c3d4e5", data.issued.len() + 1);
        let expires = shared.setup.clock.now() + shared.setup.token_lifetime;
        data.tokens.insert(token.clone(), expires);
        data.issued.push(token.clone());
        axum::Json(json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": shared.setup.token_lifetime.as_secs(),
        }))
        .into_response()
    };
    finish(fault, work).await
}

/// The form fields of a urlencoded body (`None` when it is not one).
fn serde_urlencoded_from(body: &[u8]) -> Option<HashMap<String, String>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut out = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        out.insert(decode(k)?, decode(v)?);
    }
    Some(out)
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `401`/`403` as Audience Manager answers them, or `None` when the caller may proceed.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = shared.setup.clock.now();
    let valid = get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| shared.data().tokens.get(t).copied())
        .is_some_and(|expires| now < expires);
    if !valid {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "401013",
            "Oauth token is not valid",
        ));
    }
    if get("x-api-key") != Some(CLIENT_ID) {
        return Some(error(StatusCode::FORBIDDEN, "403003", "Api Key is invalid"));
    }
    if get("x-gw-ims-org-id") != Some(ORG) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "403025",
            "Profile is not valid for this organization",
        ));
    }
    None
}

/// One page of `items` (filtered by `folderId`), as `{list, page, pageSize, total}`; the whole
/// list as an array without `page`.
fn page(items: &[Value], query: &HashMap<String, String>) -> Response {
    let folder = query.get("folderId").and_then(|f| f.parse::<u64>().ok());
    let items: Vec<&Value> = items
        .iter()
        .filter(|i| folder.is_none_or(|f| i["folderId"].as_u64() == Some(f)))
        .collect();
    let Some(page) = query.get("page") else {
        return axum::Json(json!(items)).into_response();
    };
    let (Ok(page), Ok(size)) = (
        page.parse::<usize>(),
        query
            .get("pageSize")
            .map_or("100", String::as_str)
            .parse::<usize>(),
    ) else {
        return error(StatusCode::BAD_REQUEST, "400", "bad paging parameters");
    };
    if size == 0 {
        return error(StatusCode::BAD_REQUEST, "400", "pageSize must be positive");
    }
    let list: Vec<&Value> = items.iter().skip(page * size).take(size).copied().collect();
    axum::Json(json!({"list": list, "page": page, "pageSize": size, "total": items.len()}))
        .into_response()
}

async fn datasources(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let fault = begin(&shared, Route::DataSources);
    if let Some(response) = early(&fault).or_else(|| authorize(&shared, &headers)) {
        return response;
    }
    let all: Vec<Value> = shared
        .setup
        .datasources
        .iter()
        .map(|(id, name)| json!({"dataSourceId": id, "name": name, "pid": 1}))
        .collect();
    finish(fault, page(&all, &query)).await
}

async fn traits_get(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    list(shared, Route::TraitsGet, headers, query, |d| &d.traits).await
}

async fn segments_get(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    list(shared, Route::SegmentsGet, headers, query, |d| &d.segments).await
}

async fn list(
    shared: Arc<Shared>,
    route: Route,
    headers: HeaderMap,
    query: HashMap<String, String>,
    items: fn(&Data) -> &Vec<Value>,
) -> Response {
    let fault = begin(&shared, route);
    if let Some(response) = early(&fault).or_else(|| authorize(&shared, &headers)) {
        return response;
    }
    let work = page(items(&shared.data()), &query);
    finish(fault, work).await
}

async fn traits_post(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(shared, Route::TraitsPost, headers, body).await
}

async fn segments_post(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(shared, Route::SegmentsPost, headers, body).await
}

/// Checks a posted trait or segment; the item as stored (without its sid) or why it is a `400`.
fn validate(
    shared: &Shared,
    data: &Data,
    route: Route,
    body: &Value,
) -> Result<Value, &'static str> {
    let bad = Err;
    let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
        return bad("name is required");
    };
    let Some(data_source) = body["dataSourceId"].as_u64() else {
        return bad("dataSourceId is required");
    };
    if !shared
        .setup
        .datasources
        .iter()
        .any(|(id, _)| *id == data_source)
    {
        return bad("dataSourceId is not a data source of this organization");
    }
    let Some(folder) = body["folderId"].as_u64() else {
        return bad("folderId is required");
    };
    if route == Route::TraitsPost {
        if body["traitType"] != json!("ON_BOARDED_TRAIT") {
            return bad("traitType must be ON_BOARDED_TRAIT here");
        }
        let (Some(rule), Some(ttl)) = (body["traitRule"].as_str(), body["ttl"].as_u64()) else {
            return bad("traitRule and ttl are required");
        };
        Ok(json!({
            "name": name, "traitType": "ON_BOARDED_TRAIT", "dataSourceId": data_source,
            "folderId": folder, "traitRule": rule, "ttl": ttl,
        }))
    } else {
        let Some(rule) = body["segmentRule"].as_str() else {
            return bad("segmentRule is required");
        };
        let trait_sid = rule.strip_suffix('T').and_then(|s| s.parse::<u64>().ok());
        if !trait_sid.is_some_and(|sid| data.traits.iter().any(|t| t["sid"] == json!(sid))) {
            return bad("segmentRule must name an existing trait");
        }
        Ok(json!({
            "name": name, "segmentRule": rule, "dataSourceId": data_source, "folderId": folder,
        }))
    }
}

async fn create(shared: Arc<Shared>, route: Route, headers: HeaderMap, body: Bytes) -> Response {
    let fault = begin(&shared, route);
    if let Some(response) = early(&fault).or_else(|| authorize(&shared, &headers)) {
        return response;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "400", "the body is not JSON");
    };
    let work = {
        let mut data = shared.data();
        match validate(&shared, &data, route, &body) {
            Err(why) => error(StatusCode::BAD_REQUEST, "400", why),
            Ok(item) => {
                let store = |data: &mut Data, mut item: Value| {
                    let sid = data.next_sid;
                    data.next_sid += 1;
                    item["sid"] = json!(sid);
                    match route {
                        Route::TraitsPost => data.traits.push(item.clone()),
                        _ => data.segments.push(item.clone()),
                    }
                    item
                };
                if matches!(fault, Some(Fault::Race)) {
                    store(&mut data, item.clone());
                }
                let items = match route {
                    Route::TraitsPost => &data.traits,
                    _ => &data.segments,
                };
                let taken = items
                    .iter()
                    .any(|i| i["name"] == item["name"] && i["folderId"] == item["folderId"]);
                if taken {
                    error(
                        StatusCode::CONFLICT,
                        "409",
                        "an item with this name already exists in the folder",
                    )
                } else {
                    (StatusCode::CREATED, axum::Json(store(&mut data, item))).into_response()
                }
            }
        }
    };
    finish(fault, work).await
}
