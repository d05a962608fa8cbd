//! The file exchange against a real S3-compatible server and the local folder, through the same
//! `Storage` trait.
//!
//! The server is moto (`python3 -m moto.server`, from PyPI; `make test` installs it), started on
//! a loopback port per test. With [`Auth::Checked`] it runs with `INITIAL_NO_AUTH_ACTION_COUNT=3`:
//! the bootstrap script's three IAM calls (user, access key, policy) go through unauthenticated,
//! and from then on moto checks every request's access key and signature — a wrong secret is
//! refused. moto 5.2 recomputes the signature from the *decoded* path and query, so a correctly
//! signed request whose key or prefix holds a reserved character (`=` of `date=…`, the `/` of a
//! listed prefix, which the S3 rules percent-encode) is refused too; the signature test therefore
//! uses plain keys, and the other tests run moto without checks. When moto is missing these tests
//! fail (never skip) and say how to install it.
//!
//! Faults moto cannot make (500/503, dropped connections) come from a small axum fake and a
//! plain listener on loopback that count the requests, so the bounded retries are asserted
//! exactly. Backoffs are a millisecond: no test
//! sleeps.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use audlink_core::format::onboarding::OnboardingFileName;
use audlink_host::exchange::{
    ExchangeError, LocalFolder, ObjectInfo, S3Bucket, S3Settings, Storage, onboarding_key,
    process_new,
};
use audlink_host::remote::credentials::Secret;
use audlink_host::store::{SqliteStore, Store};

use crate::cli::{TempDir, binary};

pub(crate) const BUCKET: &str = "audlink-exchange";
const INSTALL: &str = "pip install 'moto[server]==5.2.5'";

/// Creates an IAM user with an access key allowed everything, and the test bucket with it;
/// prints `<key id> <secret>`.
const BOOTSTRAP: &str = r#"
import sys, json, boto3
ep, bucket = sys.argv[1], sys.argv[2]
anon = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam = boto3.client("iam", **anon)
iam.create_user(UserName="audlink")
key = iam.create_access_key(UserName="audlink")["AccessKey"]
iam.put_user_policy(UserName="audlink", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
    aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

/// Whether moto checks signatures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Every request after the bootstrap is authenticated.
    Checked,
    /// moto's default: anything goes.
    Open,
}

/// A moto server on a loopback port, killed on drop.
pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
    pub(crate) key_id: String,
    pub(crate) secret: String,
    dir: TempDir,
}

impl Moto {
    pub(crate) fn start(name: &str, auth: Auth) -> Moto {
        let probe = Command::new("python3")
            .args(["-c", "import moto, boto3"])
            .output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "moto is not installed (python3 -c 'import moto' failed: {}); install it with: {INSTALL}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => panic!("cannot run python3 ({e}); install Python 3 and then: {INSTALL}"),
        }
        let dir = TempDir::new(&format!("moto-{name}"));
        let log = dir.join("moto.log");
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env(
                "INITIAL_NO_AUTH_ACTION_COUNT",
                if auth == Auth::Checked { "3" } else { "inf" },
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("moto log"))
            .stderr(std::fs::File::create(dir.join("moto.err")).expect("moto log"))
            .spawn()
            .expect("spawn python3 -m moto.server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut moto = Moto {
            child,
            endpoint,
            key_id: String::new(),
            secret: String::new(),
            dir,
        };
        moto.wait_ready(port);
        let out = Command::new("python3")
            .args(["-c", BOOTSTRAP, &moto.endpoint, BUCKET])
            .output()
            .expect("run the moto bootstrap");
        assert!(
            out.status.success(),
            "moto bootstrap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let mut words = text.split_whitespace();
        moto.key_id = words.next().expect("key id").to_owned();
        moto.secret = words.next().expect("secret").to_owned();
        moto
    }

    /// Waits until the port accepts connections (moto imports for a second or two); fails
    /// with moto's stderr when it exits or is not up after a minute.
    fn wait_ready(&mut self, port: u16) {
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let err = std::fs::read_to_string(self.dir.join("moto.err")).unwrap_or_default();
                panic!(
                    "moto.server exited ({status}) before listening: {err}\n(install: {INSTALL})"
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto.server did not listen on port {port} within a minute"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn settings(&self, bucket: &str, secret: &str) -> S3Settings {
        let mut s = S3Settings::new(bucket, &self.key_id, Secret::new(secret));
        s.endpoint = Some(self.endpoint.clone());
        s.allow_http = true;
        s.max_retries = 2;
        s.backoff_base_ms = 1;
        s.retry_timeout_ms = 10_000;
        s.timeout_ms = 10_000;
        s
    }

    pub(crate) fn bucket(&self) -> S3Bucket {
        S3Bucket::new(&self.settings(BUCKET, &self.secret)).expect("bucket client")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("address").port()
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn keys(list: &[ObjectInfo]) -> Vec<&str> {
    list.iter().map(|o| o.key.as_str()).collect()
}

/// The same contract on any backend: put, list under a prefix, get; the same export uploaded
/// twice is one object; a replaced object is listed with its new size.
async fn round_trip<S: Storage>(storage: &S, has_etag: bool) {
    let name = OnboardingFileName::parse("ftp_dpm_21_1767225600.sync.gz").unwrap();
    let key = onboarding_key("onboarding", &name).unwrap();
    assert_eq!(
        key,
        "onboarding/date=2026-01-01/ftp_dpm_21_1767225600.sync.gz"
    );
    let export = b"\x1f\x8b not really gzip, just bytes".to_vec();
    storage.put(&key, export.clone()).await.unwrap();
    // A retried upload of the same export: same key, still one object.
    storage
        .put(
            &onboarding_key("onboarding/", &name).unwrap(),
            export.clone(),
        )
        .await
        .unwrap();
    storage
        .put("outbound/S3_1_iter_1.sync", b"a 1,2 3\n".to_vec())
        .await
        .unwrap();
    storage
        .put("outbound/S3_1_iter_2.sync", b"b\n".to_vec())
        .await
        .unwrap();
    storage.put("outboundx/other", b"x".to_vec()).await.unwrap();

    let onboarding = storage.list("onboarding/").await.unwrap();
    assert_eq!(keys(&onboarding), [key.as_str()]);
    assert_eq!(onboarding[0].size, export.len() as u64);
    assert_eq!(onboarding[0].etag.is_some(), has_etag, "{onboarding:?}");
    assert_eq!(storage.get(&key).await.unwrap(), export);

    let outbound = storage.list("outbound/").await.unwrap();
    assert_eq!(
        keys(&outbound),
        ["outbound/S3_1_iter_1.sync", "outbound/S3_1_iter_2.sync"]
    );
    let partial = storage.list("outbound/S3_1_iter_1").await.unwrap();
    assert_eq!(keys(&partial), ["outbound/S3_1_iter_1.sync"]);
    assert_eq!(storage.list("").await.unwrap().len(), 4);
    assert!(storage.list("nothing/").await.unwrap().is_empty());

    storage
        .put("outbound/S3_1_iter_2.sync", b"bbbb\n".to_vec())
        .await
        .unwrap();
    let replaced = storage.list("outbound/S3_1_iter_2").await.unwrap();
    assert_eq!(replaced[0].size, 5);
    if has_etag {
        assert_ne!(
            replaced[0].etag, outbound[1].etag,
            "a changed object gets a new ETag"
        );
    }

    let err = storage.get("outbound/missing").await.unwrap_err();
    assert!(matches!(err, ExchangeError::NotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("outbound/missing") && text.contains(&storage.location()),
        "{text}"
    );
}

#[test]
fn s3_put_list_get_round_trip() {
    let moto = Moto::start("round-trip", Auth::Open);
    let bucket = moto.bucket();
    runtime().block_on(round_trip(&bucket, true));
}

#[test]
fn local_folder_put_list_get_round_trip() {
    let dir = TempDir::new("exchange-local");
    let folder = LocalFolder::new(dir.join("exchange"));
    runtime().block_on(round_trip(&folder, false));
}

#[test]
fn s3_checks_credentials_and_a_missing_bucket_fails_clearly() {
    let moto = Moto::start("refusals", Auth::Checked);
    let rt = runtime();
    // The right secret: signed requests are accepted (plain keys, see the module's note).
    let good = moto.bucket();
    rt.block_on(good.put("plain-key", b"signed".to_vec()))
        .unwrap();
    assert_eq!(rt.block_on(good.get("plain-key")).unwrap(), b"signed");
    assert_eq!(keys(&rt.block_on(good.list("")).unwrap()), ["plain-key"]);

    // A wrong secret is refused, and the error names key and bucket but no secret.
    let wrong = "wrong-secret-0123456789";
    let bad = S3Bucket::new(&moto.settings(BUCKET, wrong)).unwrap();
    let err = rt
        .block_on(bad.put("other-key", b"x".to_vec()))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ExchangeError::Backend { op: "put", .. }),
        "{text}"
    );
    assert!(
        text.contains("\"other-key\"") && text.contains(BUCKET),
        "{text}"
    );
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(!text.contains(wrong), "the secret leaked: {text}");
    assert!(!text.contains(&moto.secret), "the secret leaked: {text}");
    let err = rt.block_on(bad.get("plain-key")).unwrap_err().to_string();
    assert!(err.starts_with("cannot get \"plain-key\""), "{err}");
    // Nothing was written by the refused put.
    assert_eq!(keys(&rt.block_on(good.list("")).unwrap()), ["plain-key"]);

    let missing = S3Bucket::new(&moto.settings("no-such-bucket", &moto.secret)).unwrap();
    let err = rt
        .block_on(missing.put("plain-key", b"x".to_vec()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-bucket") && err.contains("\"plain-key\""),
        "{err}"
    );
    assert!(err.starts_with("cannot put"), "{err}");
    assert!(err.contains("NoSuchBucket") || err.contains("404"), "{err}");
}

/// Wraps a storage: every listing returns each object twice, and gets are counted.
struct Doubled<'a, S> {
    inner: &'a S,
    gets: AtomicUsize,
}

impl<S: Storage> Storage for Doubled<'_, S> {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ExchangeError> {
        self.inner.put(key, bytes).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ExchangeError> {
        let mut list = self.inner.list(prefix).await?;
        let again = list.clone();
        list.extend(again);
        Ok(list)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ExchangeError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
}

#[test]
fn s3_ledger_processes_each_object_once_and_changed_ones_again() {
    let moto = Moto::start("ledger", Auth::Open);
    let bucket = moto.bucket();
    let dir = TempDir::new("exchange-ledger");
    let store = SqliteStore::create(&dir.join("audlink.db")).unwrap();
    runtime().block_on(async {
        bucket
            .put("outbound/a.sync", b"1 2\n".to_vec())
            .await
            .unwrap();
        bucket
            .put("outbound/b.sync", b"3 4\n".to_vec())
            .await
            .unwrap();
        let doubled = Doubled {
            inner: &bucket,
            gets: AtomicUsize::new(0),
        };
        assert_eq!(doubled.list("outbound/").await.unwrap().len(), 4);

        // Each object listed twice: processed once.
        let mut seen = Vec::new();
        let summary = process_new(&store, &doubled, "outbound/", 1, |o, bytes| {
            seen.push((o.key.clone(), bytes.to_vec()));
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(summary.processed, ["outbound/a.sync", "outbound/b.sync"]);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].1, b"1 2\n");
        assert_eq!(doubled.gets.load(Ordering::SeqCst), 2);

        // Listed again unchanged: skipped on the ETag, nothing downloaded.
        let summary = process_new(&store, &doubled, "outbound/", 2, |o, _| {
            panic!("{} processed twice", o.key)
        })
        .await
        .unwrap();
        assert_eq!(summary.skipped, ["outbound/a.sync", "outbound/b.sync"]);
        assert!(summary.processed.is_empty());
        assert_eq!(doubled.gets.load(Ordering::SeqCst), 2);

        // One object changed between runs (same size): processed again, the other skipped.
        bucket
            .put("outbound/b.sync", b"3 5\n".to_vec())
            .await
            .unwrap();
        let mut seen = Vec::new();
        let summary = process_new(&store, &doubled, "outbound/", 3, |o, bytes| {
            seen.push((o.key.clone(), bytes.to_vec()));
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(summary.processed, ["outbound/b.sync"]);
        assert_eq!(summary.skipped, ["outbound/a.sync"]);
        assert_eq!(seen, [("outbound/b.sync".to_owned(), b"3 5\n".to_vec())]);
        let row = store
            .processed_object(&bucket.location(), "outbound/b.sync")
            .unwrap()
            .expect("recorded");
        assert_eq!(row.size, 4);
        assert!(row.etag.is_some());
    });
}

/// What the fake S3 answers.
#[derive(Clone, Copy)]
enum Fault {
    /// `503` this many times, then success.
    UnavailableThenOk(usize),
    /// Always `500`.
    AlwaysError,
}

/// A fake S3 endpoint on loopback that fails on purpose and counts requests.
async fn fake_s3(fault: Fault) -> (SocketAddr, Arc<AtomicUsize>) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let app = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            match fault {
                Fault::UnavailableThenOk(failures) if n < failures => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "<Error><Code>SlowDown</Code></Error>",
                )
                    .into_response(),
                Fault::UnavailableThenOk(_) => {
                    (StatusCode::OK, [(header::ETAG, "\"abc\"")], "").into_response()
                }
                Fault::AlwaysError => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<Error><Code>InternalError</Code></Error>",
                )
                    .into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, count)
}

fn fake_bucket(endpoint: String) -> S3Bucket {
    let mut s = S3Settings::new(BUCKET, "AKIDFAKE", Secret::new("fake-secret-value"));
    s.endpoint = Some(endpoint);
    s.allow_http = true;
    s.max_retries = 2;
    s.backoff_base_ms = 1;
    s.retry_timeout_ms = 10_000;
    s.timeout_ms = 5_000;
    S3Bucket::new(&s).unwrap()
}

#[test]
fn s3_transient_503_is_retried_and_lasting_500_fails_after_bounded_retries() {
    let rt = runtime();
    rt.block_on(async {
        let (addr, count) = fake_s3(Fault::UnavailableThenOk(2)).await;
        let bucket = fake_bucket(format!("http://{addr}"));
        bucket.put("in/a", b"x".to_vec()).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 3, "two 503s, then the put");

        let (addr, count) = fake_s3(Fault::AlwaysError).await;
        let bucket = fake_bucket(format!("http://{addr}"));
        let err = bucket.put("in/a", b"x".to_vec()).await.unwrap_err();
        assert_eq!(
            count.load(Ordering::SeqCst),
            3,
            "one attempt and two retries"
        );
        let text = err.to_string();
        assert!(
            matches!(err, ExchangeError::Backend { op: "put", .. }),
            "{text}"
        );
        assert!(text.contains("\"in/a\"") && text.contains(BUCKET), "{text}");
        assert!(text.contains("500"), "{text}");
        assert!(!text.contains("fake-secret-value"), "{text}");
    });
}

#[test]
fn s3_unreachable_endpoint_fails_clearly() {
    // A port that was free a moment ago: nothing listens there.
    let port = free_port();
    let bucket = fake_bucket(format!("http://127.0.0.1:{port}"));
    let err = runtime().block_on(bucket.list("in/")).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ExchangeError::Backend { op: "list", .. }),
        "{text}"
    );
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains(BUCKET),
        "{text}"
    );
}

/// `audlink exchange put` / `ls` on `[exchange]`: the local folder by default, then a bucket
/// (moto) with credentials from the environment; the same export put twice is one object.
#[test]
fn cli_exchange_put_and_ls_on_folder_and_bucket() {
    let moto = Moto::start("cli", Auth::Open);
    let dir = TempDir::new("exchange-cli");
    let export = dir.join("ftp_dpm_21_1767225600.sync");
    std::fs::write(&export, b"1234\td_sid=4242\n").unwrap();
    let run = |config: &str, args: &[&str]| {
        let config_path = dir.join(config);
        Command::new(binary())
            .current_dir(dir.path())
            .env_remove("AUDLINK_S3_ACCESS_KEY_ID")
            .env_remove("AUDLINK_S3_SECRET_ACCESS_KEY")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .envs(if config == "s3.toml" {
                vec![
                    ("AUDLINK_S3_ACCESS_KEY_ID", moto.key_id.as_str()),
                    ("AUDLINK_S3_SECRET_ACCESS_KEY", moto.secret.as_str()),
                ]
            } else {
                vec![]
            })
            .arg("--db")
            .arg(dir.join("audlink.db"))
            .arg("--config")
            .arg(&config_path)
            .arg("--json")
            .args(args)
            .output()
            .expect("run audlink")
    };
    std::fs::write(dir.join("local.toml"), "").unwrap();
    std::fs::write(
        dir.join("s3.toml"),
        format!(
            "[exchange]\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\nallow_http = true\nmax_retries = 1\nbackoff_base_ms = 1\n",
            moto.endpoint
        ),
    )
    .unwrap();
    let key = "onboarding/date=2026-01-01/ftp_dpm_21_1767225600.sync";
    for config in ["local.toml", "s3.toml"] {
        let file = export.to_str().unwrap();
        for _ in 0..2 {
            let out = run(config, &["exchange", "put", file]);
            assert!(
                out.status.success(),
                "{config}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let put: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(put["uploaded"][0]["key"], key, "{put}");
        }
        let out = run(config, &["exchange", "ls", "onboarding/"]);
        assert!(
            out.status.success(),
            "{config}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ls: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let objects = ls["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 1, "{config}: {ls}");
        assert_eq!(objects[0]["key"], key);
        assert_eq!(objects[0]["size"], 16);
        assert_eq!(objects[0]["etag"].is_string(), config == "s3.toml", "{ls}");
    }
    assert!(
        dir.join("exchange").join(key).is_file(),
        "the default folder is beside audlink.toml"
    );

    // Not an onboarding file and no --key: usage error (exit 2), nothing uploaded.
    let other = dir.join("notes.txt");
    std::fs::write(&other, b"x").unwrap();
    let out = run("local.toml", &["exchange", "put", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));

    // A bucket without credentials in the environment: exit 2 naming the variables.
    let out = Command::new(binary())
        .current_dir(dir.path())
        .env_remove("AUDLINK_S3_ACCESS_KEY_ID")
        .env_remove("AUDLINK_S3_SECRET_ACCESS_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args([
            "--db",
            "audlink.db",
            "--config",
            "s3.toml",
            "exchange",
            "ls",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUDLINK_S3_SECRET_ACCESS_KEY"));
}

/// A loopback listener that reads each request's head and closes the connection without an
/// answer, counting connections.
fn dropping_server() -> (SocketAddr, Arc<AtomicUsize>) {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            drop(stream);
        }
    });
    (addr, count)
}

#[test]
fn s3_dropped_connections_are_retried_a_bounded_number_of_times_then_fail_clearly() {
    let (addr, count) = dropping_server();
    let bucket = fake_bucket(format!("http://{addr}"));
    let rt = runtime();
    let err = rt.block_on(bucket.put("in/a", b"x".to_vec())).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ExchangeError::Backend { op: "put", .. }),
        "{text}"
    );
    assert!(text.contains("\"in/a\"") && text.contains(BUCKET), "{text}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "one attempt and two retries: {text}"
    );
    let before = count.load(Ordering::SeqCst);
    let err = rt.block_on(bucket.list("in/")).unwrap_err().to_string();
    assert!(err.starts_with("cannot list \"in/\""), "{err}");
    assert_eq!(count.load(Ordering::SeqCst) - before, 3, "{err}");
}
