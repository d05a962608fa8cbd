//! Import benchmark: an Audience Manager outbound file of N lines against N visitor links, and
//! a declared-id (SHA-256 email) import, on seeded generated data held in memory.
//!
//! `cargo bench -p audlink-core --features gen --bench import -- [N] [--emails N] [--write DIR | --read DIR] [--trim]`
//! prints the time of each phase, lines per second, bytes of index per key and the peak RSS of
//! the process. Freed memory is kept for reuse, as in the sandbox (`--trim`: glibc's default,
//! which returns it to the kernel; see `common::keep_freed_memory`). `--write DIR` also writes the generated files (for the DuckDB comparison);
//! `--read DIR` reads them back instead of generating (quicker repeated runs and profiles).

use std::collections::BTreeMap;
use std::time::Instant;

use audlink_core::datasource::{DataSourceKind, KeyEncoding};
use audlink_core::format::aep::AepColumns;
use audlink_core::format::{ReadOptions, links, recipients};
use audlink_core::import::{
    AudienceFile, AudienceFormat, ImportOptions, ImportRequest, import, prepare_owned, run_prepared,
};
use audlink_core::sample;

mod common;
use common::{keep_freed_memory, measure, peak_rss_mib, rss_mib, source};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut n: u64 = 1_000_000;
    let mut emails: u64 = 0;
    let mut write: Option<String> = None;
    let mut read: Option<String> = None;
    let mut trim = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            // Glibc's default: freed blocks go back to the kernel (see keep_freed_memory).
            "--trim" => trim = true,
            "--emails" => {
                emails = args[i + 1].parse().expect("--emails N");
                i += 1;
            }
            "--read" => {
                read = Some(args[i + 1].clone());
                i += 1;
            }
            "--write" => {
                write = Some(args[i + 1].clone());
                i += 1;
            }
            other => n = other.replace('_', "").parse().expect("N lines"),
        }
        i += 1;
    }

    let memory = if !trim && keep_freed_memory() {
        "freed memory kept for reuse, as in the sandbox"
    } else {
        "freed blocks returned to the kernel (glibc's default)"
    };
    if n > 0 {
        let t = Instant::now();
        let mut data = match &read {
            // Files an earlier `--write DIR` wrote for the same N (no generation time).
            Some(dir) => sample::VisitorSample {
                links_csv: std::fs::read(format!("{dir}/links.csv")).expect("read links"),
                audience: std::fs::read(format!("{dir}/S3_1_iter_1700000000000.sync"))
                    .expect("read audience"),
                links: 0,
            },
            None => sample::visitor_sample(42, n),
        };
        eprintln!(
            "generated or read {n} lines / {} links in {:.2?}",
            data.links,
            t.elapsed()
        );
        if let Some(dir) = &write {
            std::fs::create_dir_all(dir).expect("output directory");
            std::fs::write(format!("{dir}/links.csv"), &data.links_csv).expect("write links");
            std::fs::write(
                format!("{dir}/S3_1_iter_1700000000000.sync"),
                &data.audience,
            )
            .expect("write audience");
        }
        let (parsed, parse_links) = measure(|| {
            links::read_compact("links.csv", &data.links_csv, ReadOptions::default())
                .expect("links")
        });
        let links_count = parsed.len();
        // The links file is no longer needed once parsed (a host would stream and drop it).
        data.links_csv = Vec::new();
        let format = AudienceFormat::Outbound { mode: None };
        let files = [AudienceFile {
            name: "S3_1_iter_1700000000000.sync",
            bytes: &data.audience,
            format: &format,
        }];
        let source = source(DataSourceKind::VisitorId, None, None);
        let rss_parsed = peak_rss_mib();
        eprintln!("  RSS after dropping the links file: {:.0} MiB", rss_mib());
        let options = ImportOptions::default();
        let (current, last_applied) = (BTreeMap::new(), BTreeMap::new());
        let request = ImportRequest {
            data_source: &source,
            recipients: None,
            links: &[],
            files: &files,
            options: &options,
            current: &current,
            last_applied: &last_applied,
        };
        // A one-off import: the index takes the links over.
        let (prepared, build) = measure(|| prepare_owned(&request, parsed).expect("prepare"));
        let rss_built = peak_rss_mib();
        eprintln!("  RSS after the index: {:.0} MiB", rss_mib());
        let (result, probe) = measure(|| run_prepared(&request, prepared).expect("import"));
        let total = parse_links + build + probe;
        let r = &result.report;
        println!(
            "visitor-id import, N = {n} (wall time; on a CPU; of which in the kernel, faulting fresh pages in; MiB of them); {memory}"
        );
        println!(
            "{}",
            parse_links.row("parse links", &format!("({links_count} links)"))
        );
        println!(
            "{}",
            build.row(
                "number+index",
                &format!(
                    "(peak RSS {rss_parsed:.0} MiB after parsing links, {rss_built:.0} MiB after the index)"
                )
            )
        );
        println!("{}", probe.row("read+probe+agg", ""));
        println!(
            "{}",
            total.row(
                "total",
                &format!("({:.2} M lines/s)", n as f64 / total.wall / 1e6)
            )
        );
        println!(
            "  units {} matched {} unmatched {} bad {}",
            r.totals.units, r.totals.matched, r.totals.unmatched, r.totals.bad_records
        );
        let pairs: u64 = r.segments.values().map(|s| s.distinct_recipients).sum();
        println!(
            "  {} segments, {pairs} distinct (segment, recipient) pairs",
            r.segments.len()
        );
        if let Some(dir) = write.as_ref().or(read.as_ref()) {
            // For bench/duckdb_import.py: the ratio and the cross-check of the result (this
            // run's, whether it wrote the files or read them).
            std::fs::write(
                format!("{dir}/audlink.txt"),
                format!("{} {pairs}\n", total.wall),
            )
            .expect("write audlink figures");
        }
        println!(
            "  index {} keys, {:.1} bytes/key",
            r.data_source.indexed_keys,
            r.data_source.index_bytes as f64 / r.data_source.indexed_keys.max(1) as f64
        );
        println!("  peak RSS         {:>8.0} MiB", peak_rss_mib());
    }

    if emails > 0 {
        let data = sample::email_sample(43, emails);
        let t = Instant::now();
        let table = recipients::read(
            "recipients.csv",
            &data.recipients_csv,
            ReadOptions::default(),
        )
        .expect("recipients")
        .table;
        let parse = t.elapsed();
        let format = AudienceFormat::Aep {
            columns: AepColumns {
                identity: "email_sha256".into(),
                status: Some("status".into()),
            },
            full: false,
        };
        let files = [AudienceFile {
            name: "Bench_segment1_20260101000000.csv",
            bytes: &data.audience,
            format: &format,
        }];
        let source = source(
            DataSourceKind::DeclaredId,
            Some("email"),
            Some(KeyEncoding::Sha256Email),
        );
        let t = Instant::now();
        let result = import(&ImportRequest {
            data_source: &source,
            recipients: Some(&table),
            links: &[],
            files: &files,
            options: &ImportOptions::default(),
            current: &BTreeMap::new(),
            last_applied: &BTreeMap::new(),
        })
        .expect("import");
        let run = t.elapsed();
        println!("declared-id (sha256 email) import, {emails} recipients / rows");
        println!("  parse recipients {:>8.3} s", parse.as_secs_f64());
        println!(
            "  hash+index+probe {:>8.3} s  (matched {})",
            run.as_secs_f64(),
            result.report.totals.matched
        );
        println!("  peak RSS         {:>8.0} MiB", peak_rss_mib());
    }
}
