//! The Experience Cloud client against the emulator (`emulator.rs`), which fails on purpose.
//!
//! In-process tests drive `audlink_host::remote::Client` with a [`FakeClock`]: backoff and
//! `Retry-After` waits are recorded, not slept, and token expiry follows the fake time (the
//! emulator reads the same clock). Only request timeouts are real, and short (milliseconds).
//! Every test asserts exact request counts per route, so a retry too many, a missing renewal or
//! a duplicate create fails it.
//!
//! Binary tests run the real `audlink` (located as in `cli.rs`): `audience export --remote`
//! creates one trait and one segment and a re-run none, `remote check` lists data sources found
//! and missing, bad or missing credentials are exit 2 before anything is written, a platform that
//! keeps failing is exit 1 with one line, and the complete output of runs at `-vv` (trace)
//! contains neither the client secret nor any issued token.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use audlink_host::remote::aam::{Ensured, SegmentSpec, TraitSpec, trait_rule_of};
use audlink_host::remote::clock::{Clock, FakeClock};
use audlink_host::remote::credentials::{Credentials, Secret};
use audlink_host::remote::retry::RetryPolicy;
use audlink_host::remote::{Client, RemoteError, Settings};
use serde_json::{Value, json};

use crate::cli::{TempDir, append_config, check_failure, command, demo_db, describe, file_names};
use crate::emulator::{CLIENT_ID, CLIENT_SECRET, Emulator, Fault, ORG, Route, SCOPES, Setup};

const TRAIT_FOLDER: u64 = 7;
const SEGMENT_FOLDER: u64 = 8;
/// The data source (DPID) of the exported audience.
const DPID: u64 = 21;

fn credentials() -> Credentials {
    Credentials {
        client_id: CLIENT_ID.to_owned(),
        client_secret: Secret::new(CLIENT_SECRET),
        org_id: ORG.to_owned(),
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    }
}

fn settings(emu: &Emulator) -> Settings {
    Settings {
        ims_url: emu.url(),
        aam_url: emu.url(),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        // Generous: only the slow-response tests shorten it.
        timeout: Duration::from_secs(20),
        retry: policy(),
        page_size: 100,
    }
}

fn client_with(clock: &FakeClock, settings: Settings, creds: Credentials) -> Client {
    let clock: Arc<dyn Clock> = Arc::new(clock.clone());
    Client::new(settings, creds, clock).expect("a client")
}

fn client(emu: &Emulator, clock: &FakeClock) -> Client {
    client_with(clock, settings(emu), credentials())
}

fn trait_spec(name: &str) -> TraitSpec {
    TraitSpec {
        name: name.to_owned(),
        data_source_id: DPID,
        folder_id: TRAIT_FOLDER,
        trait_rule: "d_sid == 4242".to_owned(),
        ttl: 30,
    }
}

/// Finds or creates the trait and then the segment of `name`, as `export --remote` does.
async fn ensure(client: &Client, name: &str) -> Result<(Ensured, Ensured), RemoteError> {
    let made = client.ensure_trait(&trait_spec(name)).await?;
    let segment = client
        .ensure_segment(&SegmentSpec {
            name: name.to_owned(),
            data_source_id: DPID,
            folder_id: SEGMENT_FOLDER,
            segment_rule: trait_rule_of(made.sid),
        })
        .await?;
    Ok((made, segment))
}

/// The emulator holds exactly one trait and one segment called `name`, the segment on the trait.
fn exactly_one(emu: &Emulator, name: &str) -> (u64, u64) {
    let traits = emu.traits();
    let named: Vec<&Value> = traits.iter().filter(|t| t["name"] == json!(name)).collect();
    assert_eq!(named.len(), 1, "traits: {traits:?}");
    let segments = emu.segments();
    assert_eq!(segments.len(), 1, "segments: {segments:?}");
    let sid = named[0]["sid"].as_u64().unwrap();
    assert_eq!(segments[0]["segmentRule"], json!(format!("{sid}T")));
    (sid, segments[0]["sid"].as_u64().unwrap())
}

fn counts(emu: &Emulator, routes: &[(Route, u32)]) {
    for (route, expected) in routes {
        assert_eq!(
            emu.count(*route),
            *expected,
            "requests on {route:?} (all: {:?})",
            emu.counts()
        );
    }
}

fn message(result: Result<impl std::fmt::Debug, RemoteError>) -> String {
    match result {
        Err(RemoteError::Failed(m)) => m,
        other => panic!("expected a remote failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// In process, on a fake clock

#[test]
fn ensure_creates_one_trait_and_one_segment_and_a_rerun_creates_none() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    let client = client(&emu, &clock);
    let (t, s) = emu.block_on(ensure(&client, "vip")).unwrap();
    assert!(t.created && s.created);
    counts(
        &emu,
        &[
            (Route::Token, 1),
            (Route::TraitsGet, 1),
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 1),
            (Route::SegmentsPost, 1),
        ],
    );
    let (trait_sid, segment_sid) = exactly_one(&emu, "vip");
    assert_eq!((t.sid, s.sid), (trait_sid, segment_sid));
    let stored = &emu.traits()[0];
    assert_eq!(stored["traitType"], json!("ON_BOARDED_TRAIT"));
    assert_eq!(stored["dataSourceId"], json!(DPID));
    assert_eq!(stored["folderId"], json!(TRAIT_FOLDER));
    assert_eq!(stored["traitRule"], json!("d_sid == 4242"));
    assert_eq!(stored["ttl"], json!(30));
    assert_eq!(emu.segments()[0]["folderId"], json!(SEGMENT_FOLDER));

    // Again, with the same client (cached token) and with a new one.
    let again = emu.block_on(ensure(&client, "vip")).unwrap();
    assert_eq!(
        again,
        (
            Ensured {
                sid: t.sid,
                created: false
            },
            Ensured {
                sid: s.sid,
                created: false
            }
        )
    );
    let fresh = self::client(&emu, &clock);
    let third = emu.block_on(ensure(&fresh, "vip")).unwrap();
    assert_eq!(third, again);
    counts(
        &emu,
        &[
            (Route::Token, 2),
            (Route::TraitsGet, 3),
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 3),
            (Route::SegmentsPost, 1),
        ],
    );
    exactly_one(&emu, "vip");
    assert!(clock.sleeps().is_empty());
}

#[test]
fn a_429_with_retry_after_is_honoured_then_the_run_completes() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.fault(Route::TraitsGet, Fault::Status(429, Some("7")));
    emu.fault(Route::SegmentsPost, Fault::Status(503, Some("2")));
    let client = client(&emu, &clock);
    emu.block_on(ensure(&client, "vip")).unwrap();
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(7), Duration::from_secs(2)]
    );
    // The failed create was looked up again before it was retried.
    counts(
        &emu,
        &[
            (Route::Token, 1),
            (Route::TraitsGet, 2),
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 2),
            (Route::SegmentsPost, 2),
        ],
    );
    exactly_one(&emu, "vip");
}

#[test]
fn server_errors_are_retried_with_exponential_backoff_and_jitter() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.fault(Route::Token, Fault::Status(504, None));
    emu.fault(Route::TraitsGet, Fault::Status(500, None));
    emu.fault(Route::TraitsGet, Fault::Status(502, None));
    emu.fault(Route::TraitsGet, Fault::Status(503, None));
    let client = client(&emu, &clock);
    emu.block_on(ensure(&client, "vip")).unwrap();
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 4, "{sleeps:?}");
    // Retry n waits within the upper half of base · 2ⁿ.
    let within = |d: Duration, n: u32| {
        let step = Duration::from_millis(100) * 2u32.pow(n);
        assert!(d >= step / 2 && d <= step, "retry {n}: {d:?}");
    };
    within(sleeps[0], 0); // the token
    within(sleeps[1], 0);
    within(sleeps[2], 1);
    within(sleeps[3], 2);
    counts(
        &emu,
        &[
            (Route::Token, 2),
            (Route::TraitsGet, 4),
            (Route::TraitsPost, 1),
            (Route::SegmentsPost, 1),
        ],
    );
    exactly_one(&emu, "vip");
}

#[test]
fn a_platform_that_keeps_failing_is_an_error_after_bounded_retries_and_creates_nothing() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.faults(Route::TraitsGet, Fault::Status(503, None), 50);
    let client = client(&emu, &clock);
    let error = message(emu.block_on(ensure(&client, "vip")));
    assert!(
        error.contains("GET /v1/traits/")
            && error.contains("HTTP 503")
            && error.contains("gave up after 4 attempts"),
        "{error}"
    );
    assert_eq!(clock.sleeps().len(), 3);
    counts(
        &emu,
        &[
            (Route::TraitsGet, 4),
            (Route::TraitsPost, 0),
            (Route::SegmentsGet, 0),
        ],
    );

    // A create that keeps failing: every retry looks the name up first; still nothing made.
    let emu = Emulator::start();
    emu.faults(Route::TraitsPost, Fault::Status(500, None), 50);
    let client = self::client(&emu, &clock);
    let error = message(emu.block_on(ensure(&client, "vip")));
    assert!(
        error.contains("POST /v1/traits/") && error.contains("gave up after 4 attempts"),
        "{error}"
    );
    counts(
        &emu,
        &[
            (Route::TraitsGet, 4),
            (Route::TraitsPost, 4),
            (Route::SegmentsPost, 0),
        ],
    );
    assert!(emu.traits().is_empty() && emu.segments().is_empty());

    // Retry-After beyond five minutes is not waited for.
    let emu = Emulator::start();
    emu.fault(Route::TraitsGet, Fault::Status(429, Some("3600")));
    let client = self::client(&emu, &clock);
    let error = message(emu.block_on(ensure(&client, "vip")));
    assert!(error.contains("longer than 300s"), "{error}");
    counts(&emu, &[(Route::TraitsGet, 1)]);
}

/// A client whose attempts time out after one second (the slow faults wait 30 s; a normal
/// loopback exchange takes milliseconds).
fn impatient(emu: &Emulator, clock: &FakeClock) -> Client {
    let mut s = settings(emu);
    s.timeout = Duration::from_secs(1);
    client_with(clock, s, credentials())
}

#[test]
fn a_create_answered_after_the_timeout_is_found_again_not_repeated() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.fault(Route::TraitsPost, Fault::Slow(Duration::from_secs(30)));
    let client = impatient(&emu, &clock);
    let (t, s) = emu.block_on(ensure(&client, "vip")).unwrap();
    // The platform made the trait; the client never saw the answer and found it by name.
    assert!(!t.created && s.created);
    counts(
        &emu,
        &[
            (Route::TraitsGet, 2),
            (Route::TraitsPost, 1),
            (Route::SegmentsPost, 1),
        ],
    );
    exactly_one(&emu, "vip");
    assert_eq!(clock.sleeps().len(), 1);
}

#[test]
fn a_list_answered_after_the_timeout_is_retried() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.fault(Route::SegmentsGet, Fault::Slow(Duration::from_secs(30)));
    let client = impatient(&emu, &clock);
    emu.block_on(ensure(&client, "vip")).unwrap();
    counts(
        &emu,
        &[
            (Route::SegmentsGet, 2),
            (Route::SegmentsPost, 1),
            (Route::TraitsPost, 1),
        ],
    );
    exactly_one(&emu, "vip");
}

#[test]
fn connections_dropped_mid_body_are_retried_without_duplicates() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.fault(Route::Token, Fault::DropMidBody);
    emu.fault(Route::TraitsPost, Fault::DropMidBody);
    emu.fault(Route::SegmentsGet, Fault::DropMidBody);
    emu.fault(Route::SegmentsPost, Fault::DropMidBody);
    let client = client(&emu, &clock);
    let (t, s) = emu.block_on(ensure(&client, "vip")).unwrap();
    assert!(
        !t.created && !s.created,
        "both creates happened before the drop"
    );
    counts(
        &emu,
        &[
            (Route::Token, 2),
            (Route::TraitsGet, 2),
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 3),
            (Route::SegmentsPost, 1),
        ],
    );
    exactly_one(&emu, "vip");
}

#[test]
fn a_token_revoked_mid_run_is_renewed_once_and_the_run_continues() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.fault(Route::SegmentsGet, Fault::RevokeTokens);
    let client = client(&emu, &clock);
    emu.block_on(ensure(&client, "vip")).unwrap();
    counts(
        &emu,
        &[
            (Route::Token, 2),
            (Route::TraitsGet, 1),
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 2),
            (Route::SegmentsPost, 1),
        ],
    );
    exactly_one(&emu, "vip");
    assert!(clock.sleeps().is_empty(), "a renewal is not a backoff");
}

#[test]
fn a_401_with_the_renewed_token_is_an_error_not_a_loop() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.faults(Route::TraitsGet, Fault::RevokeTokens, 50);
    let client = client(&emu, &clock);
    let error = message(emu.block_on(ensure(&client, "vip")));
    assert!(
        error.contains("GET /v1/traits/") && error.contains("401"),
        "{error}"
    );
    counts(
        &emu,
        &[
            (Route::Token, 2),
            (Route::TraitsGet, 2),
            (Route::TraitsPost, 0),
        ],
    );
}

#[test]
fn tokens_are_renewed_before_they_expire_on_the_clock() {
    let clock = FakeClock::new();
    let emu = Emulator::with(Setup {
        token_lifetime: Duration::from_secs(60),
        clock: Arc::new(clock.clone()),
        ..Setup::default()
    });
    let client = client(&emu, &clock);
    emu.block_on(client.ensure_trait(&trait_spec("a"))).unwrap();
    clock.advance(Duration::from_secs(30));
    emu.block_on(client.ensure_trait(&trait_spec("b"))).unwrap();
    counts(&emu, &[(Route::Token, 1)]);
    // 55 s in: within the renewal margin (6 s of 60), so renewed before use — no 401 first.
    clock.advance(Duration::from_secs(25));
    emu.block_on(client.ensure_trait(&trait_spec("c"))).unwrap();
    counts(
        &emu,
        &[
            (Route::Token, 2),
            (Route::TraitsGet, 3),
            (Route::TraitsPost, 3),
        ],
    );
}

#[test]
fn a_token_that_expires_during_a_retry_wait_is_renewed_before_the_next_call() {
    let clock = FakeClock::new();
    let emu = Emulator::with(Setup {
        token_lifetime: Duration::from_secs(100),
        clock: Arc::new(clock.clone()),
        ..Setup::default()
    });
    emu.fault(Route::SegmentsGet, Fault::Status(429, Some("120")));
    let client = client(&emu, &clock);
    emu.block_on(ensure(&client, "vip")).unwrap();
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(120)]);
    counts(
        &emu,
        &[
            (Route::Token, 2),
            (Route::SegmentsGet, 2),
            (Route::SegmentsPost, 1),
        ],
    );
    exactly_one(&emu, "vip");
}

#[test]
fn paging_reads_until_the_name_or_a_short_page() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    // 250 traits in the folder (and 150 elsewhere), the wanted one last: on the third page.
    emu.seed_traits(TRAIT_FOLDER + 1, (0..150).map(|i| format!("elsewhere {i}")));
    emu.seed_traits(TRAIT_FOLDER, (0..249).map(|i| format!("other {i}")));
    emu.seed_traits(TRAIT_FOLDER, ["vip".to_owned()]);
    let client = client(&emu, &clock);
    let found = emu
        .block_on(client.ensure_trait(&trait_spec("vip")))
        .unwrap();
    assert!(!found.created);
    counts(&emu, &[(Route::TraitsGet, 3), (Route::TraitsPost, 0)]);
    let sid = emu
        .traits()
        .iter()
        .find(|t| t["name"] == json!("vip"))
        .unwrap()["sid"]
        .clone();
    assert_eq!(json!(found.sid), sid);

    // A name that is not there: pages are read until the total is reached, then one create.
    let emu = Emulator::start();
    emu.seed_traits(TRAIT_FOLDER, (0..200).map(|i| format!("other {i}")));
    let client = self::client(&emu, &clock);
    let made = emu
        .block_on(client.ensure_trait(&trait_spec("vip")))
        .unwrap();
    assert!(made.created);
    counts(&emu, &[(Route::TraitsGet, 2), (Route::TraitsPost, 1)]);
    assert_eq!(emu.traits().len(), 201);
}

#[test]
fn a_name_taken_by_a_competing_client_is_found_after_the_409() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.fault(Route::TraitsPost, Fault::Race);
    emu.fault(Route::SegmentsPost, Fault::Race);
    let client = client(&emu, &clock);
    let (t, s) = emu.block_on(ensure(&client, "vip")).unwrap();
    assert!(!t.created && !s.created);
    counts(
        &emu,
        &[
            (Route::TraitsGet, 2),
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 2),
            (Route::SegmentsPost, 1),
        ],
    );
    exactly_one(&emu, "vip");
    assert!(clock.sleeps().is_empty());
}

#[test]
fn a_wrong_organization_is_a_403_without_retries() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    let mut creds = credentials();
    creds.org_id = "SOMEONEELSE@AdobeOrg".to_owned();
    let client = client_with(&clock, settings(&emu), creds);
    let error = message(emu.block_on(ensure(&client, "vip")));
    assert!(error.contains("403") && error.contains("org_id"), "{error}");
    counts(
        &emu,
        &[
            (Route::Token, 1),
            (Route::TraitsGet, 1),
            (Route::TraitsPost, 0),
        ],
    );
    assert!(clock.sleeps().is_empty());
}

#[test]
fn ims_refusals_name_the_problem_and_never_the_secret() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    let mut creds = credentials();
    creds.client_secret = Secret::new("wrong-secret-zz9");
    let client = client_with(&clock, settings(&emu), creds);
    let error = message(emu.block_on(ensure(&client, "vip")));
    assert!(
        error.contains("401") && error.contains("invalid_client"),
        "{error}"
    );
    assert!(!error.contains("wrong-secret-zz9"));
    counts(&emu, &[(Route::Token, 1), (Route::TraitsGet, 0)]);

    let mut s = settings(&emu);
    s.scopes = vec!["openid".to_owned()];
    let client = client_with(&clock, s, credentials());
    let error = message(emu.block_on(client.datasources()));
    assert!(
        error.contains("invalid_scope") && error.contains("scopes"),
        "{error}"
    );
}

#[test]
fn responses_that_are_not_json_are_clear_errors() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    emu.fault(Route::TraitsGet, Fault::Garbage);
    let client = client(&emu, &clock);
    let error = message(emu.block_on(ensure(&client, "vip")));
    assert!(
        error.contains("GET /v1/traits/") && error.contains("not JSON"),
        "{error}"
    );
    counts(&emu, &[(Route::TraitsGet, 1), (Route::TraitsPost, 0)]);

    let emu = Emulator::start();
    emu.fault(Route::Token, Fault::Garbage);
    let client = self::client(&emu, &clock);
    let error = message(emu.block_on(client.datasources()));
    assert!(
        error.starts_with("ims:") && error.contains("not JSON"),
        "{error}"
    );
    assert!(!error.contains("emu-TOKEN"), "{error}");
}

#[test]
fn data_sources_are_listed_as_the_platform_has_them() {
    let emu = Emulator::start();
    let clock = FakeClock::new();
    let mut s = settings(&emu);
    s.page_size = 2;
    let client = client_with(&clock, s, credentials());
    let all = emu.block_on(client.datasources()).unwrap();
    let ids: Vec<u64> = all.iter().map(|d| d.data_source_id).collect();
    assert_eq!(ids, vec![21, 22, 23]);
    assert_eq!(all[0].name, "ECID");
    counts(&emu, &[(Route::DataSources, 2)]);
}

// ---------------------------------------------------------------------------------------------
// The audlink binary

/// A database with generated recipients and a configuration whose `[remote]` points at `emu`.
fn remote_db(name: &str, emu: &Emulator, extra: &str) -> TempDir {
    let dir = demo_db(name, 300, 3);
    append_config(
        dir.path(),
        &format!(
            "\n[remote]\nims_url = \"{url}\"\naam_url = \"{url}\"\norg_id = \"{org}\"\ntrait_folder_id = {TRAIT_FOLDER}\nsegment_folder_id = {SEGMENT_FOLDER}\ntimeout_ms = 10000\nmax_retries = 3\nbackoff_base_ms = 1\n{extra}",
            url = emu.url(),
            // Without the suffix: audlink adds it.
            org = ORG.trim_end_matches("@AdobeOrg"),
        ),
    );
    dir
}

/// Runs the binary in `dir` with the emulator's credentials in the environment (or `secret`).
fn run(dir: &Path, secret: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = command(dir, &dir.join("audlink.toml"));
    for var in [
        "AUDLINK_CLIENT_ID",
        "AUDLINK_CLIENT_SECRET",
        "AUDLINK_ORG_ID",
    ] {
        cmd.env_remove(var);
    }
    if let Some(secret) = secret {
        cmd.env("AUDLINK_CLIENT_ID", CLIENT_ID)
            .env("AUDLINK_CLIENT_SECRET", secret);
    }
    cmd.args(args)
        .output()
        .expect("cannot run the audlink binary")
}

fn export_args(audience: &str) -> Vec<&str> {
    vec![
        "audience",
        "export",
        "--where",
        "age >= 30",
        "--now",
        "2026-01-01T00:00:00Z",
        "--audience",
        audience,
        "--datasource",
        "ecid",
        "--trait-id",
        "4242",
        "--out",
        "out",
        "--timestamp",
        "1767300000",
        "--remote",
    ]
}

fn ok_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = run(dir, Some(CLIENT_SECRET), &all);
    assert!(output.status.success(), "{}", describe(&all, &output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", describe(&all, &output)))
}

#[test]
fn export_remote_creates_one_trait_and_one_segment_and_a_rerun_none() {
    let emu = Emulator::start();
    let dir = remote_db("remote-export", &emu, "");
    let first = ok_json(dir.path(), &export_args("vip buyers"));
    assert!(!first["files"].as_array().unwrap().is_empty(), "{first}");
    let (trait_sid, segment_sid) = exactly_one(&emu, "vip buyers");
    assert_eq!(
        first["remote"]["trait"],
        json!({"sid": trait_sid, "created": true, "folder_id": TRAIT_FOLDER})
    );
    assert_eq!(first["remote"]["segment"]["sid"], json!(segment_sid));
    assert_eq!(first["remote"]["segment"]["created"], json!(true));
    assert_eq!(
        first["remote"]["segment"]["rule"],
        json!(format!("{trait_sid}T"))
    );
    assert_eq!(first["remote"]["trait_matches_files"], json!(false));
    assert_eq!(emu.traits()[0]["traitRule"], json!("d_sid == 4242"));
    assert_eq!(emu.traits()[0]["dataSourceId"], json!(21));
    counts(
        &emu,
        &[
            (Route::Token, 1),
            (Route::TraitsGet, 1),
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 1),
            (Route::SegmentsPost, 1),
        ],
    );

    let second = ok_json(dir.path(), &export_args("vip buyers"));
    assert_eq!(second["remote"]["trait"]["sid"], json!(trait_sid));
    assert_eq!(second["remote"]["trait"]["created"], json!(false));
    assert_eq!(second["remote"]["segment"]["created"], json!(false));
    counts(
        &emu,
        &[
            (Route::Token, 2),
            (Route::TraitsGet, 2),
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 2),
            (Route::SegmentsPost, 1),
        ],
    );
    exactly_one(&emu, "vip buyers");

    // The human output names both ids and says the files carry another trait id.
    let output = run(dir.path(), Some(CLIENT_SECRET), &export_args("vip buyers"));
    assert!(output.status.success(), "{}", describe(&[], &output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "trait {trait_sid} (found), segment {segment_sid} (found)"
        )) && stdout.contains(&format!("--trait-id {trait_sid}")),
        "{stdout}"
    );
}

#[test]
fn remote_check_lists_configured_data_sources_found_and_missing() {
    let emu = Emulator::start();
    // The template's ecid (21) and crm-email (22) and the tests' crm (23) exist; 99 does not.
    let dir = remote_db("remote-check", &emu, "");
    append_config(
        dir.path(),
        "\n[[datasource]]\nname = \"partner\"\nkind = \"visitor-id\"\ndpid = 99\n",
    );
    let check = ok_json(dir.path(), &["remote", "check"]);
    assert_eq!(check["token"], json!("ok"));
    assert_eq!(check["platform_datasources"], json!(3));
    assert_eq!(check["missing"], json!(1));
    let rows = check["datasources"].as_array().unwrap();
    let by_name = |n: &str| rows.iter().find(|r| r["name"] == json!(n)).unwrap().clone();
    assert_eq!(
        by_name("ecid"),
        json!({"name": "ecid", "dpid": 21, "found": true, "platform_name": "ECID"})
    );
    assert_eq!(
        by_name("partner"),
        json!({"name": "partner", "dpid": 99, "found": false, "platform_name": null})
    );
    counts(&emu, &[(Route::Token, 1), (Route::DataSources, 1)]);
}

#[cfg(unix)]
#[test]
fn missing_or_unsafe_credentials_are_exit_2_before_anything_is_written() {
    let emu = Emulator::start();
    let dir = remote_db("remote-creds", &emu, "");
    let p = dir.path();
    let args = export_args("vip");

    let line = check_failure(&args, &run(p, None, &args), 2);
    assert!(
        line.contains("AUDLINK_CLIENT_ID") && line.contains("credentials_file"),
        "{line}"
    );
    assert!(file_names(&dir.join("out")).is_empty());

    // A credentials file readable by others is refused; mode 0600 is used.
    let creds = dir.join("creds.toml");
    std::fs::write(
        &creds,
        format!("client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n"),
    )
    .unwrap();
    set_mode(&creds, 0o644);
    append_config(p, "credentials_file = \"creds.toml\"\n");
    let line = check_failure(&args, &run(p, None, &args), 2);
    assert!(
        line.contains("creds.toml") && line.contains("readable by others") && line.contains("0644"),
        "{line}"
    );
    assert!(!line.contains(CLIENT_SECRET));
    assert!(file_names(&dir.join("out")).is_empty());
    assert_eq!(emu.counts().values().sum::<u32>(), 0, "no request was made");

    set_mode(&creds, 0o600);
    let output = run(p, None, &["--json", "remote", "check"]);
    assert!(output.status.success(), "{}", describe(&[], &output));
    counts(&emu, &[(Route::Token, 1), (Route::DataSources, 1)]);
}

#[test]
fn export_remote_without_folders_is_exit_2_before_anything_is_written() {
    let emu = Emulator::start();
    let dir = demo_db("remote-folders", 50, 4);
    append_config(
        dir.path(),
        &format!(
            "\n[remote]\nims_url = \"{0}\"\naam_url = \"{0}\"\norg_id = \"{ORG}\"\n",
            emu.url()
        ),
    );
    let args = export_args("vip");
    let line = check_failure(&args, &run(dir.path(), Some(CLIENT_SECRET), &args), 2);
    assert!(line.contains("trait_folder_id"), "{line}");
    assert!(file_names(&dir.join("out")).is_empty());
}

#[test]
fn a_platform_that_keeps_failing_is_exit_1_with_one_line() {
    let emu = Emulator::start();
    let dir = remote_db("remote-fail", &emu, "");
    emu.faults(Route::SegmentsPost, Fault::Status(503, Some("0")), 50);
    let args = export_args("vip");
    let line = check_failure(&args, &run(dir.path(), Some(CLIENT_SECRET), &args), 1);
    assert!(
        line.contains("POST /v1/segments/") && line.contains("gave up after 4 attempts"),
        "{line}"
    );
    counts(
        &emu,
        &[
            (Route::TraitsPost, 1),
            (Route::SegmentsGet, 4),
            (Route::SegmentsPost, 4),
        ],
    );
    // The files were written before the platform was asked; a re-run completes the job.
    assert!(!file_names(&dir.join("out")).is_empty());
    emu.clear_faults();
    let again = ok_json(dir.path(), &args);
    assert_eq!(again["remote"]["trait"]["created"], json!(false), "{again}");
    assert_eq!(
        again["remote"]["segment"]["created"],
        json!(true),
        "{again}"
    );
    exactly_one(&emu, "vip");
}

#[test]
fn trace_output_never_contains_the_secret_or_a_token() {
    let emu = Emulator::start();
    let dir = remote_db("remote-leak", &emu, "");
    let p = dir.path();
    // Renewals, retries and drops, so every path that logs runs.
    emu.fault(Route::TraitsGet, Fault::Status(503, Some("0")));
    emu.fault(Route::TraitsPost, Fault::DropMidBody);
    emu.fault(Route::SegmentsGet, Fault::RevokeTokens);
    emu.fault(Route::SegmentsPost, Fault::Status(500, None));
    let mut outputs = Vec::new();
    let mut args = vec!["-vv"];
    args.extend(export_args("vip"));
    outputs.push(run(p, Some(CLIENT_SECRET), &args));
    assert!(
        outputs[0].status.success(),
        "{}",
        describe(&args, &outputs[0])
    );
    let mut json_args = vec!["-vv", "--json"];
    json_args.extend(export_args("vip"));
    outputs.push(run(p, Some(CLIENT_SECRET), &json_args));
    outputs.push(run(p, Some(CLIENT_SECRET), &["-vv", "remote", "check"]));
    // Failures: a 401 after renewal, and a refused secret.
    emu.faults(Route::DataSources, Fault::RevokeTokens, 2);
    outputs.push(run(p, Some(CLIENT_SECRET), &["-vv", "remote", "check"]));
    assert_eq!(outputs[3].status.code(), Some(1));
    outputs.push(run(
        p,
        Some("wrong-secret-zz9"),
        &["-vv", "--json", "remote", "check"],
    ));
    assert_eq!(outputs[4].status.code(), Some(1));

    let tokens = emu.issued_tokens();
    assert!(tokens.len() >= 5, "{tokens:?}");
    let mut all = String::new();
    for output in &outputs {
        all.push_str(&String::from_utf8_lossy(&output.stdout));
        all.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    // The trace level is on: the calls and the retries are in the log.
    assert!(
        all.contains("TRACE") && all.contains("GET /v1/traits/") && all.contains("retry 1/3"),
        "{all}"
    );
    assert!(all.contains("renewing the access token"), "{all}");
    for secret in [CLIENT_SECRET, "wrong-secret-zz9"]
        .iter()
        .copied()
        .chain(tokens.iter().map(String::as_str))
    {
        assert!(
            !all.contains(secret),
            "{secret:?} appears in the output:\n{all}"
        );
    }
    assert!(!all.contains("emu-TOKEN"), "{all}");
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
