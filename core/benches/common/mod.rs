//! What the benchmark binaries share: memory readings and a data source for generated data.

use audlink_core::datasource::{
    AmbiguityPolicy, DataSource, DataSourceConfig, DataSourceKind, KeyEncoding,
};

/// A `kB` field of `/proc/self/status` in MiB (NaN where there is none).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Peak resident set size of this process so far.
pub(crate) fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Seconds this thread has run on a CPU so far (`/proc/self/schedstat`; NaN where there is
/// none). On a machine shared with other work, phases compare better by this than by wall time,
/// which also counts the time spent waiting for a CPU.
#[allow(dead_code)]
pub(crate) fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Seconds this thread has spent in the kernel so far (`/proc/thread-self/stat`, 10 ms
/// ticks; NaN where there is none): here almost all of it zeroing fresh pages on first touch,
/// which costs far more in a virtual machine than on bare metal.
#[allow(dead_code)]
pub(crate) fn kernel_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            rest.split_whitespace().nth(12)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |ticks| ticks / 100.0)
}

/// MiB of fresh pages this thread has faulted in so far (minor faults of 4 KiB pages, from
/// `/proc/thread-self/stat`; NaN where there is none): the memory a phase touched for the first
/// time, a count that, unlike the time it costs, does not change from run to run.
#[allow(dead_code)]
pub(crate) fn faulted_mib() -> f64 {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            rest.split_whitespace().nth(7)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |faults| faults * 4096.0 / (1024.0 * 1024.0))
}

/// Current resident set size.
#[allow(dead_code)]
pub(crate) fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// The benchmarks' data source: visitor ids, or a declared key column with an encoding.
pub(crate) fn source(
    kind: DataSourceKind,
    key: Option<&str>,
    encoding: Option<KeyEncoding>,
) -> DataSource {
    DataSourceConfig {
        name: "bench".into(),
        dpid: 1,
        integration_code: None,
        kind,
        key_column: key.map(Into::into),
        encoding,
        profile: None,
        default_country_code: None,
        policy: AmbiguityPolicy::Latest,
    }
    .try_into()
    .expect("valid data source")
}
