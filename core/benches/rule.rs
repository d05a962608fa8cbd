//! Rule evaluation benchmark: a 5-predicate segment rule over N generated recipients
//! (default 1,000,000) with typed columns, evaluated several times.
//!
//! `cargo bench -p audlink-core --features gen --bench rule -- [N] [RUNS]` prints the median
//! and fastest evaluation time, the number of recipients selected and the peak RSS.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use audlink_core::recipients::RecipientKey;
use audlink_core::rule::check::check;
use audlink_core::rule::eval::{EvalContext, evaluate};
use audlink_core::rule::parser::parse;
use audlink_core::rule::{Rule, Schema};
use audlink_core::sample::{self, Rng};
use audlink_core::time::Timestamp;

const RULE: &str = "country in (\"NL\", \"BE\") and age >= 18 and last_order > now() - 90d \
                    and not in_list(\"suppressed\") and email ends_with \"@example.com\"";

/// Peak resident set size of this process so far, in MiB (NaN where unknown).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: u64 = args
        .first()
        .map_or(1_000_000, |a| a.replace('_', "").parse().expect("N"));
    let runs: usize = args.get(1).map_or(11, |a| a.parse().expect("RUNS"));

    let t = Instant::now();
    let table = sample::recipients_table(42, n);
    // 2% of the recipients are suppressed.
    let mut rng = Rng::new(7);
    let suppressed: Vec<RecipientKey> = (1..=n as i64)
        .filter(|_| rng.chance(20))
        .map(RecipientKey::Int)
        .collect();
    let mut lists = BTreeMap::new();
    lists.insert("suppressed".to_owned(), suppressed);
    eprintln!("generated {n} recipients in {:.2?}", t.elapsed());

    let schema = Schema::of(&table);
    let rule: Rule = check(parse(RULE).expect("parses"), &schema, None).expect("checks");
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("timestamp");
    let ctx = EvalContext { now, lists: &lists };

    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut selected = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let selection = evaluate(&rule, &table, &ctx).expect("evaluates");
        times.push(t.elapsed());
        selected = selection.count();
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("rule: {RULE}");
    println!(
        "{n} recipients: median {:.2} ms, fastest {:.2} ms over {} runs; {selected} selected; \
         {:.1} M recipients/s; peak RSS {:.0} MiB",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times.len(),
        n as f64 / median.as_secs_f64() / 1e6,
        peak_rss_mib()
    );
}
