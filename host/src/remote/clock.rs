//! The clock the remote client reads and sleeps on, injectable so tests never wait.
//!
//! Token expiry and retry backoff are the only things in the client that depend on time. Both go
//! through [`Clock`]: [`SystemClock`] reads [`Instant::now`] and sleeps with tokio; [`FakeClock`]
//! (for tests) starts at the real now, advances instantly on `sleep` and records every sleep, so
//! a test can assert the backoff schedule without waiting for it. Request timeouts are not the
//! clock's business: they bound real network waits and stay real time.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A boxed future, as [`Clock::sleep`] returns.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where the client reads the time and waits.
pub trait Clock: Debug + Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> Sleep<'_>;
}

/// The real clock: [`Instant::now`] and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep<'_> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock for tests: `sleep` returns at once after moving the clock forward, and every sleep is
/// recorded. Clones share one time line.
#[derive(Debug, Clone)]
pub struct FakeClock {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug)]
struct FakeState {
    now: Instant,
    sleeps: Vec<Duration>,
}

impl Default for FakeClock {
    fn default() -> FakeClock {
        FakeClock::new()
    }
}

impl FakeClock {
    /// A fake clock starting at the real current instant.
    pub fn new() -> FakeClock {
        FakeClock {
            inner: Arc::new(Mutex::new(FakeState {
                now: Instant::now(),
                sleeps: Vec::new(),
            })),
        }
    }

    /// Moves the clock forward without recording a sleep.
    pub fn advance(&self, duration: Duration) {
        self.lock().now += duration;
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        // A test that panicked while holding the lock has failed already; the state is plain.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> Sleep<'_> {
        let mut state = self.lock();
        state.now += duration;
        state.sleeps.push(duration);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_clock_advances_on_sleep_and_records_it() {
        let clock = FakeClock::new();
        let start = clock.now();
        let shared = clock.clone();
        futures_ready(shared.sleep(Duration::from_secs(30)));
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.now() - start, Duration::from_secs(35));
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(30)]);
    }

    /// Polls a future that is ready at once.
    fn futures_ready(future: Sleep<'_>) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future);
    }
}
