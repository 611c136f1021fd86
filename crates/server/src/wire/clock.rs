//! The clock as the hot path reads it: once when a request's head has been read and once when
//! its reply is made. Everything else a request needs of time is derived from those two
//! readings: how long it took (metrics, access log), the wall-clock time of its answer (`Date`,
//! the access log's timestamp) and the start of the connection's idle time-out. Each clock read
//! is a `clock_gettime` call; a plain request once made six.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

/// How long a reading of the wall clock is extended with the monotonic one before the wall
/// clock is read again: a step of the system clock shows in `Date` within twice this time (a
/// second's date is kept until that second is over).
const RESYNC: Duration = Duration::from_secs(1);

thread_local! {
    /// The monotonic and the wall clock, read together less than [`RESYNC`] ago.
    static ANCHOR: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
}

/// The wall-clock time at the monotonic instant `at` (which should be recent): the wall clock
/// is read at most once a second per thread, and `at` placed relative to that reading.
pub(crate) fn wall(at: Instant) -> SystemTime {
    ANCHOR.with(|anchor| {
        if let Some((mono, sys)) = anchor.get()
            && let Some(since) = at.checked_duration_since(mono)
            && since < RESYNC
        {
            return sys + since;
        }
        let (mono, sys) = (Instant::now(), SystemTime::now());
        anchor.set(Some((mono, sys)));
        match mono.checked_duration_since(at) {
            Some(before) => sys.checked_sub(before).unwrap_or(sys),
            None => sys + at.duration_since(mono),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_follows_the_monotonic_one() {
        let now = Instant::now();
        let sys = SystemTime::now();
        let off = |a: SystemTime, b: SystemTime| {
            a.duration_since(b)
                .unwrap_or_else(|e| e.duration())
                .as_millis()
        };
        assert!(off(wall(now), sys) < 50);
        // Instants before and after the anchor, near and past the re-read.
        assert!(
            off(
                wall(now + Duration::from_millis(300)),
                sys + Duration::from_millis(300)
            ) < 50
        );
        assert!(
            off(
                wall(now + Duration::from_secs(3)),
                sys + Duration::from_secs(3)
            ) < 50
        );
        assert!(off(wall(now), sys) < 50);
    }
}
