//! An in-memory S3 subset on loopback — PutObject, GetObject, HeadObject, ListObjectsV2 on one
//! bucket — that fails on purpose: queued error statuses, PUTs stored and then held unanswered
//! until released (a process killed while waiting is "killed between upload and record"), listings that
//! return every object twice, and connections dropped before any answer (a front listener that
//! closes the next N connections and forwards the others). PUTs are counted; nothing is
//! checked about signatures (moto does that in `exchange.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::exchange::BUCKET;

#[derive(Default)]
struct Shared {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Statuses answered to the next requests, in order.
    faults: Mutex<VecDeque<u16>>,
    double_listing: AtomicBool,
    hang_puts: AtomicBool,
    /// Connections still to drop.
    drops: AtomicUsize,
    puts: AtomicUsize,
}

impl Shared {
    fn objects(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake; stops when dropped.
pub(crate) struct FakeS3 {
    _runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    /// `http://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
}

impl FakeS3 {
    /// Starts the fake with the bucket [`BUCKET`], empty.
    pub(crate) fn start() -> FakeS3 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("fake S3 runtime");
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let (front, back) = runtime.block_on(async {
            let back = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            (front, back)
        });
        let back_addr = back.local_addr().unwrap();
        let endpoint = format!("http://{}", front.local_addr().unwrap());
        runtime.spawn(async move {
            let _ = axum::serve(back, app).await;
        });
        runtime.spawn(front_door(front, back_addr, shared.clone()));
        FakeS3 {
            _runtime: runtime,
            shared,
            endpoint,
        }
    }

    /// Answers the next `n` requests with `status`.
    pub(crate) fn fail_next(&self, status: u16, n: usize) {
        let mut faults = self.shared.faults.lock().unwrap();
        faults.extend(std::iter::repeat_n(status, n));
    }

    /// Drops the next `n` connections before answering anything.
    pub(crate) fn drop_next(&self, n: usize) {
        self.shared.drops.store(n, Ordering::SeqCst);
    }

    /// No more queued statuses or drops.
    pub(crate) fn heal(&self) {
        self.shared.faults.lock().unwrap().clear();
        self.shared.drops.store(0, Ordering::SeqCst);
        self.shared.hang_puts.store(false, Ordering::SeqCst);
        self.shared.double_listing.store(false, Ordering::SeqCst);
    }

    /// Lists every object twice.
    pub(crate) fn double_listings(&self, on: bool) {
        self.shared.double_listing.store(on, Ordering::SeqCst);
    }

    /// Stores PUTs, then answers them only once this is switched off again.
    pub(crate) fn hang_puts(&self, on: bool) {
        self.shared.hang_puts.store(on, Ordering::SeqCst);
    }

    /// The keys held, sorted.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.shared.objects().keys().cloned().collect()
    }

    /// The bytes under `key`.
    pub(crate) fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.shared.objects().get(key).cloned()
    }

    /// Stores an object as another client would.
    pub(crate) fn put(&self, key: &str, bytes: &[u8]) {
        self.shared.objects().insert(key.to_owned(), bytes.to_vec());
    }

    /// PUT requests answered or hung so far.
    pub(crate) fn puts(&self) -> usize {
        self.shared.puts.load(Ordering::SeqCst)
    }
}

/// Accepts connections: drops the next `drops` ones after reading a little, forwards the others
/// byte for byte to the S3 handler.
async fn front_door(front: tokio::net::TcpListener, back: SocketAddr, shared: Arc<Shared>) {
    use tokio::io::AsyncReadExt;
    loop {
        let Ok((mut stream, _)) = front.accept().await else {
            return;
        };
        let drop_it = shared
            .drops
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        tokio::spawn(async move {
            if drop_it {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                return;
            }
            if let Ok(mut upstream) = tokio::net::TcpStream::connect(back).await {
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
            }
        });
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if bytes[i] == b'%'
            && let Some(byte) = hex
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// FNV-1a of the bytes, quoted, as the object's ETag.
fn etag(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml")],
        format!(
            "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
        ),
    )
        .into_response()
}

const LAST_MODIFIED: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    _headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = shared.faults.lock().unwrap().pop_front();
    if let Some(status) = fault {
        let status = StatusCode::from_u16(status).unwrap();
        let code = if status.as_u16() == 503 {
            "SlowDown"
        } else {
            "InternalError"
        };
        return error(status, code);
    }
    let path = decode(uri.path());
    let Some(rest) = path.strip_prefix(&format!("/{BUCKET}")) else {
        return error(StatusCode::NOT_FOUND, "NoSuchBucket");
    };
    let key = rest.trim_start_matches('/').to_owned();
    if method == Method::GET && key.is_empty() {
        return list(&shared, &query(&uri));
    }
    if key.is_empty() {
        return error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    }
    if method == Method::PUT {
        shared.puts.fetch_add(1, Ordering::SeqCst);
        let tag = etag(&body);
        shared.objects().insert(key, body.to_vec());
        while shared.hang_puts.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        return (StatusCode::OK, [(header::ETAG, tag)]).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    }
    let Some(bytes) = shared.objects().get(&key).cloned() else {
        return error(StatusCode::NOT_FOUND, "NoSuchKey");
    };
    let headers = [
        (header::ETAG, etag(&bytes)),
        (header::LAST_MODIFIED, LAST_MODIFIED.to_owned()),
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
    ];
    if method == Method::HEAD {
        let mut response = (StatusCode::OK, headers).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, bytes.len().into());
        response
    } else {
        (StatusCode::OK, headers, bytes).into_response()
    }
}

fn list(shared: &Shared, query: &BTreeMap<String, String>) -> Response {
    let prefix = query.get("prefix").cloned().unwrap_or_default();
    let objects = shared.objects();
    let times = if shared.double_listing.load(Ordering::SeqCst) {
        2
    } else {
        1
    };
    let mut contents = String::new();
    let mut count = 0;
    for (key, bytes) in objects.iter().filter(|(k, _)| k.starts_with(&prefix)) {
        for _ in 0..times {
            count += 1;
            contents.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                xml_escape(key),
                xml_escape(&etag(bytes)),
                bytes.len()
            ));
        }
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{BUCKET}</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
        xml_escape(&prefix)
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}
