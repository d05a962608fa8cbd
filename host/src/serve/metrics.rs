//! The server's counters and their Prometheus text rendering (`GET /metrics`): requests by
//! route and status, sandbox calls and live instances, limit hits by limit, job durations.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::sandbox::Sandbox;

/// Finished jobs by (kind, status): how many, and their seconds in all.
type JobDurations = BTreeMap<(&'static str, &'static str), (u64, f64)>;

/// Counters shared by every request.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    limit_hits: Mutex<BTreeMap<&'static str, u64>>,
    jobs: Mutex<JobDurations>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while counting leaves a count, not a broken invariant.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Counts a request answered on `route` (the route's pattern, never the path).
    pub fn request(&self, route: &str, status: u16) {
        *lock(&self.requests)
            .entry((route.to_owned(), status))
            .or_default() += 1;
    }

    /// Counts a call stopped by `limit` (`deadline`, `memory`, `query_deadline`, or
    /// `concurrency` for a 429).
    pub fn limit_hit(&self, limit: &'static str) {
        *lock(&self.limit_hits).entry(limit).or_default() += 1;
    }

    /// Records a finished job of `kind` (`import`, `export`) with its final status.
    pub fn job(&self, kind: &'static str, status: &'static str, took: Duration) {
        let mut jobs = lock(&self.jobs);
        let entry = jobs.entry((kind, status)).or_default();
        entry.0 += 1;
        entry.1 += took.as_secs_f64();
    }

    /// The Prometheus text exposition of every counter, and of `sandbox`'s calls and live
    /// instances.
    pub fn render(&self, sandbox: Option<&Sandbox>) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP audlink_http_requests_total Requests answered, by route pattern and status.\n",
        );
        out.push_str("# TYPE audlink_http_requests_total counter\n");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "audlink_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP audlink_limit_hits_total Calls stopped by a limit, by limit.\n");
        out.push_str("# TYPE audlink_limit_hits_total counter\n");
        for limit in [
            "deadline",
            "memory",
            "query_deadline",
            "concurrency",
            "body_size",
        ] {
            let n = lock(&self.limit_hits).get(limit).copied().unwrap_or(0);
            let _ = writeln!(out, "audlink_limit_hits_total{{limit=\"{limit}\"}} {n}");
        }
        let (calls, live) = sandbox.map_or((0, 0), |s| (s.calls(), s.live_instances()));
        out.push_str("# HELP audlink_sandbox_calls_total Sandboxed calls started (one fresh instance each).\n");
        out.push_str("# TYPE audlink_sandbox_calls_total counter\n");
        let _ = writeln!(out, "audlink_sandbox_calls_total {calls}");
        out.push_str("# HELP audlink_sandbox_instances Sandbox instances alive now.\n");
        out.push_str("# TYPE audlink_sandbox_instances gauge\n");
        let _ = writeln!(out, "audlink_sandbox_instances {live}");
        out.push_str(
            "# HELP audlink_job_duration_seconds Durations of finished jobs, by kind and status.\n",
        );
        out.push_str("# TYPE audlink_job_duration_seconds summary\n");
        for ((kind, status), (count, sum)) in lock(&self.jobs).iter() {
            let labels = format!("kind=\"{kind}\",status=\"{status}\"");
            let _ = writeln!(out, "audlink_job_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(
                out,
                "audlink_job_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

/// A label value escaped as the text format wants.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.request("/api/lists", 200);
        metrics.request("/api/lists", 200);
        metrics.request("/api/lists/{name}/members", 404);
        metrics.limit_hit("memory");
        metrics.job("import", "done", Duration::from_millis(1500));
        let text = metrics.render(None);
        assert!(
            text.contains("audlink_http_requests_total{route=\"/api/lists\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("route=\"/api/lists/{name}/members\",status=\"404\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("audlink_limit_hits_total{limit=\"memory\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("audlink_limit_hits_total{limit=\"deadline\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "audlink_job_duration_seconds_sum{kind=\"import\",status=\"done\"} 1.5\n"
            ),
            "{text}"
        );
        assert!(text.contains("audlink_sandbox_instances 0\n"), "{text}");
    }
}
