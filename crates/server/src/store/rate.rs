//! The rate limiters' arithmetic: what one request at `now` does to a key's state, as pure
//! functions over the stored value (no transaction, no clock). [`super::ops::rate_limit`] runs
//! them inside a store transaction; the Redis engine runs the sliding window as one Lua script
//! (`rate_limit.lua`) that mirrors [`sliding_window`] step for step, and the conformance suite
//! checks every engine against the same arrivals.
//!
//! # Algorithms
//!
//! - [`RateAlgorithm::SlidingWindow`] (the default): **never more than `limit` admitted
//!   requests in any window of `period`**. Up to [`LOG_MAX`] requests per period, the state is
//!   a log of the admitted requests' times (milliseconds), so the limiter is exact: a request
//!   passes if and only if fewer than `limit` were admitted in the `period` before it, and a
//!   refused one learns when the oldest of those leaves the window. Above [`LOG_MAX`], the
//!   period is cut into [`BUCKETS`] buckets of `ceil(period / BUCKETS)` ms and the state holds a
//!   count per bucket; a bucket counts for as long as any of it lies in the window, so the
//!   limiter counts at least every request in the window (the bound still holds) and at worst
//!   one bucket more: a request may be refused, or told to wait, up to `period / BUCKETS`
//!   longer than an exact log would (1/64 of the period).
//! - [`RateAlgorithm::Gcra`]: the generic cell rate algorithm, a smoothed limiter: `limit`
//!   requests at once, then one every `period / limit`. Over a long run it admits `limit` per
//!   period, but one window of `period` can see up to `2 × limit - 1` (a full burst, then the
//!   requests the refill lets through).
//!
//! Either way the state of a key is bounded: at most [`LOG_MAX`] times, or `BUCKETS + 1`
//! counts, or one number.

use super::RateDecision;
use std::collections::BTreeMap;

/// Largest limit the sliding window keeps an exact log for; above it, buckets.
pub const LOG_MAX: u32 = 64;

/// Buckets per period of the sliding window above [`LOG_MAX`].
pub const BUCKETS: u64 = 64;

/// How a rate limit decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RateAlgorithm {
    /// No more than `limit` requests in any window of the period (exact up to [`LOG_MAX`]).
    #[default]
    SlidingWindow,
    /// A smoothed limiter: a burst of `limit`, then one request per `period / limit`.
    Gcra,
}

impl RateAlgorithm {
    /// Every algorithm, the default first.
    pub const ALL: [RateAlgorithm; 2] = [RateAlgorithm::SlidingWindow, RateAlgorithm::Gcra];

    /// Its name in URLs (`?algorithm=`).
    pub const fn name(self) -> &'static str {
        match self {
            RateAlgorithm::SlidingWindow => "sliding-window",
            RateAlgorithm::Gcra => "gcra",
        }
    }

    /// The algorithm called `name`.
    pub fn from_name(name: &str) -> Option<RateAlgorithm> {
        RateAlgorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The width in ms of one sliding-window bucket for `limit` per `period_ms`, or 0 when the
/// window keeps an exact log.
pub fn bucket_width(limit: u32, period_ms: u64) -> u64 {
    if limit <= LOG_MAX {
        0
    } else {
        period_ms.div_ceil(BUCKETS).max(1)
    }
}

/// Milliseconds to whole seconds, rounded up.
fn ms_to_secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// A sliding window's stored value: `S{expires};{width};{entries}`. `expires` is when every
/// entry has left the window (ms; the sweep reads it); `width` is 0 for a log, whose entries
/// are admission times, else the bucket width, and the entries are `index,count` pairs
/// (bucket `i` holds the times `i × width .. (i + 1) × width`). All numbers decimal, entries
/// ascending.
fn parse(raw: &[u8], width: u64) -> Option<Vec<u64>> {
    let text = std::str::from_utf8(raw).ok()?.strip_prefix('S')?;
    let mut parts = text.splitn(3, ';');
    let _expires: u64 = parts.next()?.parse().ok()?;
    let stored: u64 = parts.next()?.parse().ok()?;
    if stored != width {
        return None;
    }
    let list = parts.next()?;
    if list.is_empty() {
        return Some(Vec::new());
    }
    list.split(',').map(|n| n.parse().ok()).collect()
}

/// When a sliding window's stored value has no entry left in its window (ms), if `raw` is one.
pub fn window_expires(raw: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(raw).ok()?.strip_prefix('S')?;
    text.split(';').next()?.parse().ok()
}

fn encode(expires: u64, width: u64, entries: impl Iterator<Item = u64>) -> Vec<u8> {
    let mut out = format!("S{expires};{width};").into_bytes();
    let mut buf = itoa::Buffer::new();
    for (i, n) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(buf.format(n).as_bytes());
    }
    out
}

/// One request at `now` (ms) against `limit` per `period_ms` with the sliding window: the
/// decision and, if it passed, the value to store. `stored` is the key's value; a value in
/// another shape (written by GCRA, or for another policy) counts as no state.
pub fn sliding_window(
    stored: Option<&[u8]>,
    limit: u32,
    period_ms: u64,
    now: u64,
) -> (RateDecision, Option<Vec<u8>>) {
    let limit = u64::from(limit.max(1));
    let period = period_ms.max(1);
    let width = bucket_width(u32::try_from(limit).unwrap_or(u32::MAX), period);
    let entries = stored.and_then(|raw| parse(raw, width)).unwrap_or_default();
    if width == 0 {
        log(entries, limit, period, now)
    } else {
        buckets(entries, limit, period, width, now)
    }
}

/// The exact log: `times` of admitted requests; those with `t + period > now` are in the
/// window.
fn log(mut times: Vec<u64>, limit: u64, period: u64, now: u64) -> (RateDecision, Option<Vec<u8>>) {
    times.retain(|&t| t.saturating_add(period) > now);
    times.sort_unstable();
    let count = times.len() as u64;
    if count < limit {
        times.push(now);
        times.sort_unstable();
        let newest = times.last().copied().unwrap_or(now);
        let expires = newest.saturating_add(period);
        let decision = RateDecision {
            allowed: true,
            remaining: u32::try_from(limit - count - 1).unwrap_or(u32::MAX),
            reset_secs: ms_to_secs(expires - now),
            retry_after_secs: 0,
        };
        return (decision, Some(encode(expires, 0, times.into_iter())));
    }
    // The request after `limit` more passes when the oldest of the last `limit` leaves.
    let leaves = times[(count - limit) as usize].saturating_add(period);
    let newest = times.last().copied().unwrap_or(now);
    let decision = RateDecision {
        allowed: false,
        remaining: 0,
        reset_secs: ms_to_secs(newest.saturating_add(period).saturating_sub(now)),
        retry_after_secs: ms_to_secs(leaves - now).max(1),
    };
    (decision, None)
}

/// The buckets: `pairs` is `index, count, index, count, …`. Bucket `i` counts while any of
/// its times is in the window `(now - period, now]`, that is until `(i + 1) × width + period
/// - 1`.
fn buckets(
    pairs: Vec<u64>,
    limit: u64,
    period: u64,
    width: u64,
    now: u64,
) -> (RateDecision, Option<Vec<u8>>) {
    let lowest = (now + 1).saturating_sub(period) / width;
    let current = now / width;
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for pair in pairs.chunks_exact(2) {
        if pair[0] >= lowest && pair[1] > 0 {
            *counts.entry(pair[0]).or_default() += pair[1];
        }
    }
    let leaves = |i: u64| (i + 1).saturating_mul(width).saturating_add(period - 1);
    let total: u64 = counts.values().sum();
    if total < limit {
        *counts.entry(current).or_default() += 1;
        let newest = counts.keys().next_back().copied().unwrap_or(current);
        let expires = leaves(newest);
        let decision = RateDecision {
            allowed: true,
            remaining: u32::try_from(limit - total - 1).unwrap_or(u32::MAX),
            reset_secs: ms_to_secs(expires - now),
            retry_after_secs: 0,
        };
        let flat = counts.into_iter().flat_map(|(i, c)| [i, c]);
        return (decision, Some(encode(expires, width, flat)));
    }
    // Buckets leave oldest first: the next request passes once enough have left.
    let mut left = total;
    let mut next = now;
    for (&i, &c) in &counts {
        left -= c;
        if left < limit {
            next = leaves(i);
            break;
        }
    }
    let newest = counts.keys().next_back().copied().unwrap_or(current);
    let decision = RateDecision {
        allowed: false,
        remaining: 0,
        reset_secs: ms_to_secs(leaves(newest).saturating_sub(now)),
        retry_after_secs: ms_to_secs(next.saturating_sub(now)).max(1),
    };
    (decision, None)
}

/// One request at `now` (ms) with GCRA: one stored number, the theoretical arrival time
/// (TAT), in microseconds so that the emission interval (`period / limit`) stays exact at high
/// rates. A request passes if it arrives no earlier than `TAT - (limit - 1) × interval`; each
/// pass moves the TAT one interval on. A stored value that is not a number counts as no state.
pub fn gcra(
    stored: Option<&[u8]>,
    limit: u32,
    period_us: u64,
    now_ms: u64,
) -> (RateDecision, Option<Vec<u8>>) {
    let limit = limit.max(1);
    let now = now_ms.saturating_mul(1000);
    let period_us = period_us.max(1);
    let interval = (period_us / u64::from(limit)).max(1);
    let stored = stored
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .and_then(|s| s.parse::<u64>().ok());
    let tat = stored.unwrap_or(now).max(now);
    // The burst tolerance lets exactly `limit` requests through at once.
    let allow_at = tat.saturating_sub(interval.saturating_mul(u64::from(limit - 1)));
    if now < allow_at {
        let decision = RateDecision {
            allowed: false,
            remaining: 0,
            reset_secs: (tat - now).div_ceil(1_000_000),
            retry_after_secs: (allow_at - now).div_ceil(1_000_000).max(1),
        };
        return (decision, None);
    }
    let new_tat = tat.saturating_add(interval);
    let used = (new_tat - now).div_ceil(interval);
    let decision = RateDecision {
        allowed: true,
        remaining: u32::try_from(u64::from(limit).saturating_sub(used)).unwrap_or(0),
        reset_secs: (new_tat - now).div_ceil(1_000_000),
        retry_after_secs: 0,
    };
    let value = itoa::Buffer::new().format(new_tat).as_bytes().to_vec();
    (decision, Some(value))
}

/// When a stored GCRA value holds no more state than a fresh key (µs), if `raw` is one.
pub fn gcra_expires_us(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `times` (ms) through the sliding window, returning each decision.
    fn run(limit: u32, period: u64, times: &[u64]) -> Vec<RateDecision> {
        let mut state: Option<Vec<u8>> = None;
        times
            .iter()
            .map(|&t| {
                let (d, v) = sliding_window(state.as_deref(), limit, period, t);
                if let Some(v) = v {
                    state = Some(v);
                }
                d
            })
            .collect()
    }

    #[test]
    fn three_per_ten_seconds_is_exact() {
        let t0 = 1_750_000_000_000;
        let d = run(3, 10_000, &[t0, t0, t0, t0, t0 + 9_999, t0 + 10_000]);
        let allowed: Vec<bool> = d.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, false, false, true]);
        assert_eq!(
            d.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0, 0, 2]
        );
        assert_eq!(d[3].retry_after_secs, 10);
        assert_eq!(d[4].retry_after_secs, 1);
        assert_eq!(d[0].reset_secs, 10);
    }

    #[test]
    fn state_is_bounded() {
        let t0 = 1_000_000;
        let mut state: Option<Vec<u8>> = None;
        for i in 0..10_000u64 {
            let (_, v) = sliding_window(state.as_deref(), 5, 1_000, t0 + i * 7);
            if let Some(v) = v {
                state = Some(v);
            }
            let entries = parse(state.as_deref().unwrap(), 0).unwrap();
            assert!(entries.len() <= 5);
        }
        for i in 0..10_000u64 {
            let (_, v) = sliding_window(state.as_deref(), 1000, 1_000, t0 + i * 3);
            if let Some(v) = v {
                state = Some(v);
            }
            if let Some(e) = state
                .as_deref()
                .and_then(|s| parse(s, bucket_width(1000, 1000)))
            {
                assert!(e.len() as u64 <= 2 * (BUCKETS + 1));
            }
        }
    }

    #[test]
    fn another_shape_is_no_state() {
        let (d, _) = sliding_window(Some(b"123456"), 1, 1000, 5);
        assert!(d.allowed);
        let (d, v) = gcra(Some(b"S1;0;1"), 1, 1_000_000, 5);
        assert!(d.allowed && v.is_some());
    }

    #[test]
    fn names_round_trip() {
        for a in RateAlgorithm::ALL {
            assert_eq!(RateAlgorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(RateAlgorithm::from_name("token-bucket"), None);
    }
}
