//! Retry advice for HTTP clients that follows the status-code table.
//!
//! For each answer a client gets, [`Rules::advise`] says what to do next: use it, repeat the
//! request after the delay its `Retry-After` asks for (seconds or an HTTP date, up to a
//! maximum), repeat it with [`Backoff`], do not repeat it unchanged, authenticate first, or
//! follow `Location`. The per-code guidance is the catalog's ([`statuslab_catalog`]): the
//! table's where it speaks ([`Mode::Table`], the default: a 503 client "should not repeat the
//! request without modifications"), or RFC 9110's ([`Mode::Rfc`]: 503 may be retried after
//! `Retry-After`). Only a request that may be sent twice is ever repeated: an idempotent method
//! (GET, HEAD, OPTIONS, PUT, DELETE, TRACE), or a POST or PATCH that carries an
//! `Idempotency-Key`. These are the rules statuslab's retry report
//! (`GET /sequences/{key}/report`) judges a client by.
//!
//! ```
//! use http::{HeaderMap, Method, StatusCode};
//! use statuslab_retry::{Advice, Backoff, Mode, Rules};
//! use std::time::Duration;
//!
//! let rules = Rules::new().mode(Mode::Rfc).max_retry_after(Duration::from_secs(30));
//! let mut answer = HeaderMap::new();
//! answer.insert("retry-after", "5".parse().unwrap());
//!
//! // RFC 9110: a 503 with Retry-After may be retried after it; the table says not unchanged.
//! let no_key = HeaderMap::new();
//! let advice = rules.advise(&Method::GET, &no_key, StatusCode::SERVICE_UNAVAILABLE, &answer);
//! assert_eq!(advice, Advice::RepeatAfter(Duration::from_secs(5)));
//! let table = Rules::new();
//! let advice = table.advise(&Method::GET, &no_key, StatusCode::SERVICE_UNAVAILABLE, &answer);
//! assert_eq!(advice, Advice::DoNotRepeat);
//!
//! // A POST is repeated after a 500 only when it carries an Idempotency-Key.
//! let none = HeaderMap::new();
//! let error = StatusCode::INTERNAL_SERVER_ERROR;
//! assert_eq!(rules.advise(&Method::POST, &no_key, error, &none), Advice::DoNotRepeat);
//! let mut keyed = HeaderMap::new();
//! keyed.insert("idempotency-key", "order-42".parse().unwrap());
//! assert_eq!(rules.advise(&Method::POST, &keyed, error, &none), Advice::RepeatWithBackoff);
//!
//! // How long to wait before the next attempt, if there is to be one.
//! let backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2)).max_attempts(3);
//! assert!(backoff.next_delay(Advice::RepeatWithBackoff, 1).unwrap() <= Duration::from_millis(50));
//! assert_eq!(backoff.next_delay(Advice::RepeatWithBackoff, 3), None);
//! ```
//!
//! # Integrations
//!
//! - feature `tower`: [`tower::RetryPolicy`], a `tower::retry::Policy` with a retry budget that
//!   sleeps out `Retry-After` or the backoff before each retry;
//! - feature `reqwest`: [`reqwest::RetryMiddleware`], a `reqwest-middleware` `Middleware`.

mod advice;
mod backoff;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "tower")]
pub mod tower;

pub use advice::{
    Advice, IDEMPOTENCY_KEY, Mode, Rules, connection_error_is_transient, is_idempotent,
    is_repeatable, parse_retry_after,
};
pub use backoff::{Backoff, Jitter};
/// The catalog whose per-code guidance the rules follow.
pub use statuslab_catalog as catalog;

#[cfg(test)]
mod tests;
