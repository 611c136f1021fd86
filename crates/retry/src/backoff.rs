//! Exponential backoff with jitter, and how many attempts a request gets.

use crate::Advice;
use std::time::Duration;

/// How a backoff delay is randomised, so that many clients that failed together do not all
/// come back at the same moment (see "Exponential Backoff And Jitter", AWS Architecture Blog).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// The exponential delay itself: `min(cap, base * 2^n)`.
    None,
    /// Anywhere from zero to the exponential delay: the widest spread, but a repeat may come
    /// at once.
    Full,
    /// Half the exponential delay plus up to the other half (the default): spread, and never
    /// sooner than half the delay, so a client never repeats at once.
    #[default]
    Equal,
}

/// Exponential backoff: retry `n` (0 for the first retry) waits `min(cap, base * 2^n)`,
/// randomised by [`Jitter`]; a request gets at most `max_attempts` attempts in all, the
/// first included, whatever the [`Advice`].
///
/// ```
/// use statuslab_retry::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
///     .jitter(Jitter::None)
///     .max_attempts(5);
/// assert_eq!(backoff.delay(0), Duration::from_millis(100));
/// assert_eq!(backoff.delay(2), Duration::from_millis(400));
/// assert_eq!(backoff.delay(9), Duration::from_secs(1)); // capped
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_attempts: u32,
    jitter: Jitter,
}

impl Default for Backoff {
    /// 100 ms base, 10 s cap, 3 attempts, equal jitter.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    /// Backoff from `base` up to `cap`, 3 attempts, equal jitter.
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            max_attempts: 3,
            jitter: Jitter::Equal,
        }
    }

    /// This backoff with `jitter`.
    pub const fn jitter(mut self, jitter: Jitter) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// This backoff allowing `n` attempts in all, the first included (at least 1).
    pub const fn max_attempts(mut self, n: u32) -> Backoff {
        self.max_attempts = if n == 0 { 1 } else { n };
        self
    }

    /// The attempts a request gets in all, the first included.
    pub const fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The exponential delay before retry `n` (0 for the first retry), before jitter.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.checked_pow(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry `n` (0 for the first retry), randomised by the jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, fastrand::f64())
    }

    /// The delay before retry `n` with the jitter's random draw fixed at `unit` (in 0..=1):
    /// full jitter waits `unit` of the ceiling, equal jitter half of it plus `unit` of the
    /// other half.
    pub fn delay_with(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(retry);
        let unit = unit.clamp(0.0, 1.0);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => ceiling.mul_f64(unit),
            Jitter::Equal => {
                let half = ceiling / 2;
                half + (ceiling - half).mul_f64(unit)
            }
        }
    }

    /// How long to wait before sending the request again, after `made` attempts (1 after the
    /// first) that ended with `advice`; `None` when it is not to be sent again: the advice is
    /// not to [repeat](Advice::repeats), or the request has had its attempts.
    ///
    /// ```
    /// use statuslab_retry::{Advice, Backoff};
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::default().max_attempts(2);
    /// let wait = Duration::from_secs(1);
    /// assert_eq!(backoff.next_delay(Advice::RepeatAfter(wait), 1), Some(wait));
    /// assert_eq!(backoff.next_delay(Advice::RepeatAfter(wait), 2), None);
    /// assert_eq!(backoff.next_delay(Advice::DoNotRepeat, 1), None);
    /// ```
    pub fn next_delay(&self, advice: Advice, made: u32) -> Option<Duration> {
        if made >= self.max_attempts {
            return None;
        }
        match advice {
            Advice::RepeatAfter(wait) => Some(wait),
            Advice::RepeatWithBackoff => Some(self.delay(made.saturating_sub(1))),
            _ => None,
        }
    }
}
