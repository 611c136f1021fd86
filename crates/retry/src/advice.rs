//! What a client should do with one response or one connection failure.

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Method, StatusCode};
use statuslab_catalog::{Advice as Guidance, Status};
use std::time::{Duration, SystemTime};

/// The `Idempotency-Key` request header (IETF httpapi draft): a client that sends one may repeat
/// a POST or PATCH, since the server will not apply it twice.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Whose guidance decides where the status-code table and RFC 9110 differ.
///
/// They differ on the repeat advice of 503 (the table: "The client should not repeat the request
/// without modifications"; RFC 9110 §15.6.4: temporary, retry after `Retry-After`), 413 (the
/// table: repeat after `Retry-After` when the condition is temporary) and 504 (the table ties it
/// to a timeout parameter). The per-code guidance comes from the catalog:
/// [`Status::advice`] in table mode, [`Status::rfc_advice`] in RFC mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Follow the status-code table (the default): 503 is not repeated unchanged.
    #[default]
    Table,
    /// Follow RFC 9110: 503 with `Retry-After` is repeated after it.
    Rfc,
}

impl Mode {
    /// The catalog's guidance for `status` in this mode.
    pub fn guidance(self, status: Status) -> Guidance {
        match self {
            Mode::Table => status.advice(),
            Mode::Rfc => status.rfc_advice(),
        }
    }
}

/// What a client should do next with a request, given the answer it got.
///
/// Derived from the catalog's per-code guidance (see [`Mode`]), the request's method and
/// `Idempotency-Key` (a request that is not [repeatable](is_repeatable) is never repeated), and
/// the response's `Retry-After`.
///
/// ```
/// use http::{HeaderMap, Method, StatusCode};
/// use statuslab_retry::Advice;
/// use std::time::Duration;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", "2".parse().unwrap());
/// let advice = Advice::for_response(&Method::GET, StatusCode::TOO_MANY_REQUESTS, &headers);
/// assert_eq!(advice, Advice::RepeatAfter(Duration::from_secs(2)));
///
/// // The table: a 503 client "should not repeat the request without modifications".
/// let advice = Advice::for_response(&Method::GET, StatusCode::SERVICE_UNAVAILABLE, &headers);
/// assert_eq!(advice, Advice::DoNotRepeat);
///
/// // A POST without an Idempotency-Key is not repeated after a 500.
/// let advice = Advice::for_response(&Method::POST, StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new());
/// assert_eq!(advice, Advice::DoNotRepeat);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// Nothing to repeat: use the response (2xx, 304, 202's monitor, interim codes).
    Done,
    /// Repeat the request unchanged after this delay, which the response's `Retry-After` asked
    /// for (never shorter, and no longer than [`Rules::max_retry_after`]).
    RepeatAfter(Duration),
    /// Repeat the request unchanged after a backoff delay (see [`crate::Backoff`]).
    RepeatWithBackoff,
    /// Do not repeat the request without modifications.
    DoNotRepeat,
    /// The server asked for a wait longer than [`Rules::max_retry_after`]: the request is not
    /// repeated (waiting less would not honour `Retry-After`); the response goes to the caller.
    RetryAfterTooLong(Duration),
    /// Authenticate first (401, 407, 511), then send the request with credentials.
    Authenticate,
    /// Follow the URI in `Location` (3xx).
    FollowLocation,
}

impl Advice {
    /// The advice for a response (`status` and the response's `headers`) to a request without
    /// an `Idempotency-Key`, under the default [`Rules`] (table mode, waiting out a
    /// `Retry-After` of up to 60 s), at the current time. [`Rules::advise`] takes the request's
    /// headers too.
    pub fn for_response(method: &Method, status: StatusCode, headers: &HeaderMap) -> Advice {
        Rules::default().advise(method, &HeaderMap::new(), status, headers)
    }

    /// The advice after a connection failure (reset, no answer, a truncated or malformed
    /// response): repeat with backoff only if [`connection_error_is_transient`].
    pub fn for_connection_error(method: &Method, headers: &HeaderMap) -> Advice {
        if connection_error_is_transient(method, headers) {
            Advice::RepeatWithBackoff
        } else {
            Advice::DoNotRepeat
        }
    }

    /// Whether the advice is to send the same request again (after a delay).
    pub const fn repeats(self) -> bool {
        matches!(self, Advice::RepeatAfter(_) | Advice::RepeatWithBackoff)
    }
}

/// The methods RFC 9110 §9.2.2 defines as idempotent: GET, HEAD, OPTIONS, PUT, DELETE, TRACE.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Whether the request may be sent twice without being applied twice: an idempotent method, or
/// a non-empty `Idempotency-Key` header.
pub fn is_repeatable(method: &Method, headers: &HeaderMap) -> bool {
    is_idempotent(method)
        || headers
            .get(IDEMPOTENCY_KEY)
            .is_some_and(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
}

/// Whether a connection failure is worth a retry: the server may have applied the request
/// before the connection broke, so only a [repeatable](is_repeatable) request is sent again.
pub fn connection_error_is_transient(method: &Method, headers: &HeaderMap) -> bool {
    is_repeatable(method, headers)
}

/// The wait a `Retry-After` value asks for at `now` (RFC 9110 §10.2.3): delay-seconds, or the
/// time until an HTTP date (zero for a date in the past). `None` for anything else.
///
/// ```
/// use statuslab_retry::parse_retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(parse_retry_after(&"120".parse().unwrap(), now), Some(Duration::from_secs(120)));
/// let date = "Sun, 06 Nov 1994 08:49:40 GMT".parse().unwrap();
/// assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(3)));
/// assert_eq!(parse_retry_after(&"soon".parse().unwrap(), now), None);
/// ```
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // An absurdly long number is still "a very long time", never an error.
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// The rules that turn a response into [`Advice`]: whose guidance decides ([`Mode`]) and the
/// longest `Retry-After` a client will wait out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rules {
    mode: Mode,
    max_retry_after: Duration,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules::new()
    }
}

impl Rules {
    /// Table mode, waiting out a `Retry-After` of up to 60 seconds.
    pub const fn new() -> Rules {
        Rules {
            mode: Mode::Table,
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// These rules in `mode`.
    pub const fn mode(mut self, mode: Mode) -> Rules {
        self.mode = mode;
        self
    }

    /// These rules waiting out a `Retry-After` of at most `max`; a longer one gives
    /// [`Advice::RetryAfterTooLong`].
    pub const fn max_retry_after(mut self, max: Duration) -> Rules {
        self.max_retry_after = max;
        self
    }

    /// The mode.
    pub const fn current_mode(&self) -> Mode {
        self.mode
    }

    /// The longest `Retry-After` waited out.
    pub const fn current_max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The advice for a response to a request: the request's method and headers (an
    /// `Idempotency-Key` makes a POST repeatable), the response's status and headers (for
    /// `Retry-After` and `Location`), at the current time.
    pub fn advise(
        &self,
        method: &Method,
        request_headers: &HeaderMap,
        status: StatusCode,
        response_headers: &HeaderMap,
    ) -> Advice {
        self.advise_at(
            method,
            request_headers,
            status,
            response_headers,
            SystemTime::now(),
        )
    }

    /// [`Rules::advise`] at a given time (an HTTP-date `Retry-After` counts from `now`).
    pub fn advise_at(
        &self,
        method: &Method,
        request_headers: &HeaderMap,
        status: StatusCode,
        response_headers: &HeaderMap,
        now: SystemTime,
    ) -> Advice {
        self.decide(
            status,
            response_headers,
            is_repeatable(method, request_headers),
            now,
        )
    }

    fn decide(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        repeatable: bool,
        now: SystemTime,
    ) -> Advice {
        let Ok(status) = Status::new(status.as_u16()) else {
            // http::StatusCode allows 600-999; RFC 9110 §15 makes them invalid answers.
            return Advice::DoNotRepeat;
        };
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| parse_retry_after(v, now));
        let wait = |d: Duration| {
            if d > self.max_retry_after {
                Advice::RetryAfterTooLong(d)
            } else {
                Advice::RepeatAfter(d)
            }
        };
        // Every repeat might apply the request twice (even after a 429, the server may have
        // acted on part of it): only a repeatable one is sent again.
        let guarded = |advice: Advice| {
            if repeatable {
                advice
            } else {
                Advice::DoNotRepeat
            }
        };
        match self.guidance(status) {
            Guidance::Done
            | Guidance::Continue
            | Guidance::SwitchProtocol
            | Guidance::Wait
            | Guidance::Poll
            | Guidance::UseCached => Advice::Done,
            Guidance::FollowLocation | Guidance::SeeOther => Advice::FollowLocation,
            Guidance::Choose if headers.contains_key(http::header::LOCATION) => {
                Advice::FollowLocation
            }
            Guidance::Choose => Advice::Done,
            Guidance::Authenticate | Guidance::ProxyAuthenticate => Advice::Authenticate,
            // The server names when the same request may come again; without a Retry-After the
            // catalog says not to repeat it unchanged.
            Guidance::RetryAfter => guarded(retry_after.map_or(Advice::DoNotRepeat, wait)),
            Guidance::RepeatLater
            | Guidance::RetryIdempotent
            | Guidance::RetryWithTimeout
            | Guidance::RepeatElsewhere => {
                guarded(retry_after.map_or(Advice::RepeatWithBackoff, wait))
            }
            // DoNotRepeat, UseProxy (clients refuse it), Upgrade (another protocol is a
            // modification), and any guidance a later catalog adds.
            _ => Advice::DoNotRepeat,
        }
    }

    /// The catalog's guidance for `status` under these rules; an unused code (306, 418) takes
    /// its class's x00 code's, as RFC 9110 §15 says.
    pub fn guidance(&self, status: Status) -> Guidance {
        match self.mode.guidance(status) {
            Guidance::Unused => {
                let x00 = Status::new(status.class().digit() * 100).expect("x00 is a code");
                self.mode.guidance(x00)
            }
            g => g,
        }
    }
}
