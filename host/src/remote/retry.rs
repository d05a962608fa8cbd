//! When to try a request again and how long to wait first.
//!
//! A request is retried when the failure says nothing about the request itself: a timeout, a
//! connection refused or dropped (also in the middle of a body), `429 Too Many Requests` and
//! `500`, `502`, `503`, `504`. The wait before retry `n` (from 0) is exponential backoff with
//! jitter — `base · 2ⁿ`, capped at `max_delay`, of which the upper half is random — unless the
//! response carried `Retry-After` (seconds or an HTTP date), which is honoured as given up to
//! [`MAX_RETRY_AFTER`]. After `max_retries` retries the last failure is the error.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` honoured; a server asking for more fails the request.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How many times and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// The first backoff.
    pub base: Duration,
    /// No backoff is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry `retry` (0 = the first retry), with `jitter` in `[0, 1)`
    /// choosing where in the upper half of the exponential step the wait falls.
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The wait before retry `retry`: the server's `Retry-After` when it gave one, else the
    /// backoff. `None` when the server asks for longer than [`MAX_RETRY_AFTER`].
    pub fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        match retry_after {
            Some(wait) if wait > MAX_RETRY_AFTER => None,
            Some(wait) => Some(wait),
            None => Some(self.backoff(retry, jitter)),
        }
    }
}

/// Whether a response status is worth retrying.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// A `Retry-After` header value: delay seconds, or an HTTP date (relative to `now`; a date in
/// the past is no wait). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A number in `[0, 1)` from the standard library's per-process random hash keys (no
/// dependency for a jitter that only has to spread clients apart).
pub fn random_jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_within_its_upper_half_and_is_capped() {
        let p = policy();
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(0, 0.999_999), Duration::from_nanos(99_999_950));
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 0.5), Duration::from_millis(300));
        assert_eq!(p.backoff(3, 0.0), Duration::from_millis(400));
        // 100ms · 2⁴ = 1.6s is over the cap: the step is the cap.
        assert_eq!(p.backoff(4, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(4, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(60, 1.0), Duration::from_secs(1));
        // Jitter out of range is clamped.
        assert_eq!(p.backoff(0, 7.0), Duration::from_millis(100));
        assert_eq!(p.backoff(0, -1.0), Duration::from_millis(50));
    }

    #[test]
    fn retry_after_wins_over_backoff_up_to_a_limit() {
        let p = policy();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(7)), 0.3),
            Some(Duration::from_secs(7))
        );
        assert_eq!(p.delay(2, None, 0.0), Some(Duration::from_millis(200)));
        assert_eq!(
            p.delay(0, Some(MAX_RETRY_AFTER + Duration::from_secs(1)), 0.0),
            None
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn which_statuses_are_retried() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 501] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn jitter_is_in_the_unit_interval() {
        for _ in 0..1000 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
