//! Where the cache gets "now" from.
//!
//! Freshness and age (RFC 9111 §4.2) are arithmetic on wall-clock times: when
//! we sent the request, when the response arrived, and the present moment. If
//! the cache read the system clock directly, a test of "this response is stale
//! after 60 seconds" would have to sleep for a minute. Instead every time the
//! cache needs goes through the [`Clock`] trait: the proxy uses
//! [`SystemClock`], tests use [`ManualClock`] and move time forward by hand.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A source of the current time. `Send + Sync` because one clock is shared
/// by every worker thread through the cache.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

// ANCHOR: manual_clock
/// A clock that only moves when told to, so tests can say "61 seconds later"
/// without sleeping. Thread-safe: integration tests advance it while proxy
/// threads read it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `t` (backwards too, to test clock skew).
    pub fn set(&self, t: SystemTime) {
        *self.lock() = t;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        // A test that advances past the end of time gets the end of time
        // rather than a panic.
        *now = now.checked_add(by).unwrap_or(*now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        // A panic in another test thread must not make the clock unusable:
        // a SystemTime cannot be left half-written, so the value is fine.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}
// ANCHOR_END: manual_clock

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(61));
        assert_eq!(clock.now(), start + Duration::from_secs(61));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn manual_clock_is_shared_between_threads() {
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH));
        let other = Arc::clone(&clock);
        std::thread::spawn(move || other.advance(Duration::from_secs(5)))
            .join()
            .unwrap();
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(5));
    }

    #[test]
    fn system_clock_is_after_1970() {
        assert!(SystemClock.now() > UNIX_EPOCH);
    }
}
