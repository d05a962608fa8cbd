//! What the benchmark binaries share: memory readings and a data source for generated data.

use audlink_core::datasource::{
    AmbiguityPolicy, DataSource, DataSourceConfig, DataSourceKind, KeyEncoding,
};

/// Has glibc's malloc keep the memory it is given back for reuse (no block of its own mapped
/// for a large allocation, no heap trimmed), so the import's later phases reuse what the earlier
/// ones freed instead of faulting fresh pages in. That is the memory the core has in the
/// sandbox, where it runs in production: a WebAssembly guest's linear memory never shrinks,
/// and its allocator reuses what was freed. Glibc's default instead returns large blocks to
/// the kernel when they are freed; each later page is then a fault, and on a virtual machine a
/// costly one. Returns whether it was done (glibc on Linux only).
#[allow(dead_code)]
pub(crate) fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets malloc's parameters; no other thread is running yet.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

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

/// Field `n` (counted from 0 after the command name, which may hold spaces) of
/// `/proc/thread-self/stat`.
fn thread_stat(n: usize) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(n)?.parse::<f64>().ok()
}

/// Seconds this thread has spent in the kernel so far (10 ms ticks; NaN where there is no
/// `/proc`): here almost all of it zeroing fresh pages on first touch, which costs far more in
/// a virtual machine than on bare metal.
#[allow(dead_code)]
pub(crate) fn kernel_seconds() -> f64 {
    thread_stat(12).map_or(f64::NAN, |ticks| ticks / 100.0)
}

/// MiB of fresh pages this thread has faulted in so far (minor faults of 4 KiB pages; NaN
/// where there is no `/proc`): the memory a phase touched for the first time, a count that,
/// unlike the time it costs, does not change from run to run.
#[allow(dead_code)]
pub(crate) fn faulted_mib() -> f64 {
    thread_stat(7).map_or(f64::NAN, |faults| faults * 4096.0 / (1024.0 * 1024.0))
}

/// What a phase cost: wall and CPU seconds, seconds of that in the kernel, fresh MiB.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cost {
    pub(crate) wall: f64,
    pub(crate) cpu: f64,
    pub(crate) kernel: f64,
    pub(crate) faulted: f64,
}

impl Cost {
    /// The phase as a row of the benchmarks' table, `extra` after it.
    #[allow(dead_code)]
    pub(crate) fn row(&self, name: &str, extra: &str) -> String {
        let row = format!(
            "  {name:<16} {:>8.3} s  {:>6.3} s  {:>5.2} s  {:>5.0} MiB  {extra}",
            self.wall, self.cpu, self.kernel, self.faulted
        );
        row.trim_end().to_owned()
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;

    fn add(self, other: Cost) -> Cost {
        Cost {
            wall: self.wall + other.wall,
            cpu: self.cpu + other.cpu,
            kernel: self.kernel + other.kernel,
            faulted: self.faulted + other.faulted,
        }
    }
}

/// Runs `f`, and what it cost.
#[allow(dead_code)]
pub(crate) fn measure<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    let (t, c, k, m) = (
        std::time::Instant::now(),
        cpu_seconds(),
        kernel_seconds(),
        faulted_mib(),
    );
    let value = f();
    let cost = Cost {
        wall: t.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c,
        kernel: kernel_seconds() - k,
        faulted: faulted_mib() - m,
    };
    (value, cost)
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
