//! The store's notion of "now": an input, not a race.
//!
//! Every store operation that depends on time — tombstone, job and sequence expiry, a job
//! going from running to done, GCRA rate limits, the sweep — reads one [`Clock`]. Production
//! uses [`SystemClock`]; tests use a [`ManualClock`] and move time on explicitly, so that no
//! test depends on how fast the machine runs:
//!
//! ```
//! use statuslab_server::store::clock::ManualClock;
//! use statuslab_server::store::memory::MemoryEngine;
//! use statuslab_server::store::{KvStore, Limits, Store};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let clock = Arc::new(ManualClock::new(1_700_000_000_000));
//! let store = KvStore::with_clock(MemoryEngine::new(), Limits::default(), clock.clone());
//! assert_eq!(store.now_ms(), 1_700_000_000_000);
//! clock.advance(Duration::from_secs(90));
//! assert_eq!(store.now_ms(), 1_700_000_090_000);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time for a store.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// The same instant as a [`SystemTime`].
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }
}

/// The real clock ([`SystemTime::now`]); what every server uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        super::now_ms()
    }
}

/// A clock that stands still until told to move: for tests. Share it with
/// `Arc<ManualClock>` — hand one clone to [`super::KvStore::with_clock`], keep another to
/// [`ManualClock::advance`] time. It never goes backwards unless [`ManualClock::set_ms`] says so.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock showing `start_ms` milliseconds since the epoch.
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock {
            ms: AtomicU64::new(start_ms),
        }
    }

    /// A clock showing the real time now (and then only what it is told).
    pub fn starting_now() -> ManualClock {
        ManualClock::new(super::now_ms())
    }

    /// Moves time on by `by` (whole milliseconds; the rest is dropped).
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }

    /// Sets the time, in milliseconds since the epoch.
    pub fn set_ms(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(Duration::from_micros(2_999));
        assert_eq!(c.now_ms(), 1_002, "sub-millisecond rest is dropped");
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now_ms(), 2_002);
        assert_eq!(c.now(), UNIX_EPOCH + Duration::from_millis(2_002));
        c.set_ms(5);
        assert_eq!(c.now_ms(), 5);
        c.advance(Duration::MAX);
        assert_eq!(c.now_ms(), u64::MAX, "saturates");
    }

    #[test]
    fn system_clock_follows_the_real_time() {
        let before = super::super::now_ms();
        let t = SystemClock.now_ms();
        assert!(t >= before && t <= super::super::now_ms());
    }
}
