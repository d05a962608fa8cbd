//! Export benchmark: a list of N members exported as an audience (visitor ids through links, and
//! SHA-256 emails), on seeded generated data held in memory.
//!
//! `cargo bench -p audlink-core --features gen --bench export -- [N]` prints the time of each
//! export, identifiers and bytes written per second, and the peak RSS of the process.

use std::time::Instant;

use audlink_core::datasource::{DataSourceKind, KeyEncoding};
use audlink_core::export::{ExportMode, ExportRequest, FileLimits, Snapshot, export};
use audlink_core::format::{ReadOptions, links, recipients};
use audlink_core::recipients::RecipientKey;
use audlink_core::sample;

mod common;
use common::{peak_rss_mib, source};

fn run(label: &str, request: &ExportRequest<'_>) {
    let t = Instant::now();
    let result = export(request).expect("export");
    let elapsed = t.elapsed().as_secs_f64();
    let bytes: usize = result.files.iter().map(|f| f.bytes.len()).sum();
    println!("{label}");
    println!(
        "  {:>8.3} s  {} members, {} identifiers, {} not exported, {} files, {:.1} MiB written",
        elapsed,
        result.report.members,
        result.report.identifiers,
        result.not_exported.len(),
        result.files.len(),
        bytes as f64 / (1 << 20) as f64
    );
    println!(
        "  {:.2} M identifiers/s, peak RSS {:.0} MiB",
        result.report.identifiers as f64 / elapsed / 1e6,
        peak_rss_mib()
    );
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .map_or(1_000_000, |a| {
            a.replace('_', "").parse().expect("N members")
        });
    let members: Vec<RecipientKey> = (1..=n as i64).map(RecipientKey::Int).collect();
    let limits = FileLimits {
        gzip: false,
        ..FileLimits::default()
    };

    let visitors = sample::visitor_sample(42, n);
    let parsed =
        links::read("links.csv", &visitors.links_csv, ReadOptions::default()).expect("links");
    let ids: String = std::iter::once("id\n".to_owned())
        .chain((1..=n).map(|i| format!("{i}\n")))
        .collect();
    let table = recipients::read("ids.csv", ids.as_bytes(), ReadOptions::default())
        .expect("ids")
        .table;
    let visitor = source(DataSourceKind::VisitorId, None, None);
    for mode in [ExportMode::Sync, ExportMode::Delta] {
        run(
            &format!("visitor-id export, {n} members, {mode:?}, empty snapshot, plain files"),
            &ExportRequest {
                members: &members,
                recipients: &table,
                links: &parsed.links,
                data_source: &visitor,
                trait_id: 1,
                mode,
                snapshot: &Snapshot::default(),
                timestamp: 1_700_000_000,
                limits,
            },
        );
    }

    let emails = sample::email_sample(43, n);
    let table = recipients::read(
        "recipients.csv",
        &emails.recipients_csv,
        ReadOptions::default(),
    )
    .expect("recipients")
    .table;
    let declared = source(
        DataSourceKind::DeclaredId,
        Some("email"),
        Some(KeyEncoding::Sha256Email),
    );
    run(
        &format!("declared-id (sha256 email) export, {n} members, sync, gzip"),
        &ExportRequest {
            members: &members,
            recipients: &table,
            links: &[],
            data_source: &declared,
            trait_id: 1,
            mode: ExportMode::Sync,
            snapshot: &Snapshot::default(),
            timestamp: 1_700_000_000,
            limits: FileLimits::default(),
        },
    );
}
