//! Unit tests: the advice for every code, Retry-After, idempotency, backoff.

use super::*;
use catalog::{Advice as Guidance, Status};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sun, 06 Nov 1994 08:49:37 GMT.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(784_111_777)
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|&(k, v)| {
            (
                http::HeaderName::from_static(k),
                HeaderValue::from_str(v).expect("a header value"),
            )
        })
        .collect()
}

/// The advice for `code` answering `method` (with `request` headers), the answer carrying
/// `response` headers.
fn advise(
    rules: Rules,
    method: Method,
    request: &[(&'static str, &str)],
    code: u16,
    response: &[(&'static str, &str)],
) -> Advice {
    rules.advise_at(
        &method,
        &headers(request),
        StatusCode::from_u16(code).expect("a status code"),
        &headers(response),
        now(),
    )
}

const TABLE: Rules = Rules::new();
const RFC: Rules = Rules::new().mode(Mode::Rfc);
const KEY: &[(&str, &str)] = &[("idempotency-key", "k-1")];
const RA1: &[(&str, &str)] = &[("retry-after", "1")];
const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Header fields as written in a case.
type Fields<'a> = &'a [(&'static str, &'a str)];
/// One case: rules, the request's method and fields, the answer's code and fields, the advice.
type Case<'a> = (Rules, Method, Fields<'a>, u16, Fields<'a>, Advice);

#[track_caller]
fn check(cases: &[Case<'_>]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(rules, method, req, code, res, want)| {
            let got = advise(*rules, method.clone(), req, *code, res);
            (got != *want).then(|| {
                format!(
                    "  {:?} {method} {req:?} -> {code} {res:?}: got {got:?}, want {want:?}",
                    rules.current_mode()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn decisions_by_code() {
    use Advice::*;
    let get = || Method::GET;
    let post = || Method::POST;
    check(&[
        (TABLE, get(), &[], 200, &[], Done),
        (TABLE, get(), &[], 202, &[("location", "/jobs/1")], Done),
        (TABLE, get(), &[], 204, &[], Done),
        (TABLE, get(), &[], 304, &[], Done),
        (
            TABLE,
            get(),
            &[],
            301,
            &[("location", "/b")],
            FollowLocation,
        ),
        (
            TABLE,
            post(),
            &[],
            303,
            &[("location", "/b")],
            FollowLocation,
        ),
        (
            TABLE,
            get(),
            &[],
            307,
            &[("location", "/b")],
            FollowLocation,
        ),
        (
            TABLE,
            get(),
            &[],
            300,
            &[("location", "/b")],
            FollowLocation,
        ),
        (TABLE, get(), &[], 300, &[], Done),
        (TABLE, get(), &[], 305, &[("location", "/p")], DoNotRepeat),
        (TABLE, get(), &[], 401, &[], Authenticate),
        (TABLE, get(), &[], 407, &[], Authenticate),
        (TABLE, get(), &[], 511, &[], Authenticate),
        (TABLE, get(), &[], 400, RA1, DoNotRepeat),
        (TABLE, get(), &[], 403, &[], DoNotRepeat),
        (TABLE, get(), &[], 404, &[], DoNotRepeat),
        (TABLE, get(), &[], 405, &[], DoNotRepeat),
        (TABLE, get(), &[], 418, &[], DoNotRepeat),
        (TABLE, get(), &[], 426, &[], DoNotRepeat),
        // 408: "may repeat the request without modifications at any later time".
        (TABLE, get(), &[], 408, &[], RepeatWithBackoff),
        (TABLE, post(), &[], 408, &[], DoNotRepeat),
        (TABLE, post(), KEY, 408, &[], RepeatWithBackoff),
        (TABLE, get(), &[], 408, RA1, RepeatAfter(SECS(1))),
        // 429: wait for Retry-After; without one, do not repeat unchanged.
        (TABLE, get(), &[], 429, RA1, RepeatAfter(SECS(1))),
        (TABLE, post(), &[], 429, RA1, DoNotRepeat),
        (TABLE, post(), KEY, 429, RA1, RepeatAfter(SECS(1))),
        (TABLE, get(), &[], 429, &[], DoNotRepeat),
        // 413: the table's "after what time the client may try again".
        (TABLE, put(), &[], 413, RA1, RepeatAfter(SECS(1))),
        (TABLE, put(), &[], 413, &[], DoNotRepeat),
        (RFC, put(), &[], 413, RA1, DoNotRepeat),
        // 503: the table never repeats it unchanged; RFC 9110 after Retry-After.
        (TABLE, get(), &[], 503, RA1, DoNotRepeat),
        (TABLE, get(), &[], 503, &[], DoNotRepeat),
        (RFC, get(), &[], 503, RA1, RepeatAfter(SECS(1))),
        (RFC, get(), &[], 503, &[], DoNotRepeat),
        // 5xx server failures: idempotent requests, or keyed ones, with backoff.
        (TABLE, get(), &[], 500, &[], RepeatWithBackoff),
        (TABLE, post(), &[], 500, &[], DoNotRepeat),
        (TABLE, post(), KEY, 500, &[], RepeatWithBackoff),
        (TABLE, Method::PATCH, &[], 502, &[], DoNotRepeat),
        (TABLE, Method::PATCH, KEY, 502, &[], RepeatWithBackoff),
        (
            TABLE,
            post(),
            &[("idempotency-key", " ")],
            500,
            &[],
            DoNotRepeat,
        ),
        (TABLE, Method::DELETE, &[], 500, &[], RepeatWithBackoff),
        (
            TABLE,
            get(),
            &[],
            500,
            &[("retry-after", "2")],
            RepeatAfter(SECS(2)),
        ),
        (TABLE, get(), &[], 504, &[], RepeatWithBackoff),
        (RFC, get(), &[], 504, &[], RepeatWithBackoff),
        (TABLE, get(), &[], 501, &[], DoNotRepeat),
        (TABLE, get(), &[], 505, &[], DoNotRepeat),
        // Unregistered codes: their class's x00 code.
        (TABLE, get(), &[], 299, &[], Done),
        (TABLE, get(), &[], 499, &[], DoNotRepeat),
        (TABLE, get(), &[], 599, &[], RepeatWithBackoff),
        (TABLE, post(), &[], 599, &[], DoNotRepeat),
    ]);

    fn put() -> Method {
        Method::PUT
    }
}

#[test]
fn retry_after_seconds_date_and_cap() {
    use Advice::*;
    let get = || Method::GET;
    let capped = Rules::new().max_retry_after(SECS(10));
    check(&[
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "45")],
            RepeatAfter(SECS(45)),
        ),
        // An HTTP date three seconds after now(), in each of the three formats.
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT")],
            RepeatAfter(SECS(3)),
        ),
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "Sunday, 06-Nov-94 08:49:40 GMT")],
            RepeatAfter(SECS(3)),
        ),
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "Sun Nov  6 08:49:40 1994")],
            RepeatAfter(SECS(3)),
        ),
        // A date already past: repeat now.
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")],
            RepeatAfter(Duration::ZERO),
        ),
        // Past the cap: not waited out, not repeated early either.
        (
            capped,
            get(),
            &[],
            429,
            &[("retry-after", "10")],
            RepeatAfter(SECS(10)),
        ),
        (
            capped,
            get(),
            &[],
            429,
            &[("retry-after", "11")],
            RetryAfterTooLong(SECS(11)),
        ),
        (
            capped,
            get(),
            &[],
            429,
            &[("retry-after", "Sun, 06 Nov 1994 09:49:37 GMT")],
            RetryAfterTooLong(SECS(3600)),
        ),
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "99999999999999999999999")],
            RetryAfterTooLong(SECS(u64::MAX)),
        ),
        // Not a Retry-After value: as if there were none.
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "soon")],
            DoNotRepeat,
        ),
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "-1")],
            DoNotRepeat,
        ),
        (
            TABLE,
            get(),
            &[],
            429,
            &[("retry-after", "1.5")],
            DoNotRepeat,
        ),
        (
            TABLE,
            get(),
            &[],
            500,
            &[("retry-after", "soon")],
            RepeatWithBackoff,
        ),
    ]);
    assert!(!RetryAfterTooLong(SECS(11)).repeats());
}

/// Every code 100–599 gets a decision in both modes, for safe, unsafe and keyed requests,
/// with and without Retry-After, and the decision agrees with the catalog's guidance: it
/// repeats only what the guidance lets be repeated unchanged, never a row the table says not
/// to repeat unchanged, and never a POST without a key.
#[test]
fn every_code_follows_the_catalog() {
    let mut decided = 0;
    let mut failures = Vec::new();
    for code in 100..=599u16 {
        let status = Status::new(code).expect("100-599");
        for rules in [TABLE, RFC] {
            let guidance = rules.guidance(status);
            for (method, req) in [
                (Method::GET, &[][..]),
                (Method::POST, &[][..]),
                (Method::POST, KEY),
            ] {
                for res in [&[][..], RA1] {
                    let advice = advise(rules, method.clone(), req, code, res);
                    decided += 1;
                    let why = if advice.repeats() && !guidance.may_repeat_unchanged() {
                        Some("repeats what the catalog says not to repeat unchanged")
                    } else if advice.repeats()
                        && rules.current_mode() == Mode::Table
                        && status.advice() == Guidance::DoNotRepeat
                    {
                        Some("repeats a table row that says not to repeat unchanged")
                    } else if advice.repeats() && req.is_empty() && method == Method::POST {
                        Some("repeats a POST without an Idempotency-Key")
                    } else if code < 300 && advice != Advice::Done {
                        Some("1xx/2xx is not Done")
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        failures.push(format!("  {code} {:?} {method} {req:?} {res:?}: {advice:?} ({guidance:?}): {why}", rules.current_mode()));
                    }
                }
            }
        }
    }
    assert_eq!(decided, 500 * 2 * 3 * 2);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The catalog's registered codes are all among them, and the table's repeat guidance shows.
    assert!(catalog::all().count() > 60);
    for status in catalog::all() {
        let advice = advise(TABLE, Method::GET, &[], status.code(), RA1);
        assert_eq!(
            advice.repeats(),
            status.advice().may_repeat_unchanged() && status.advice() != Guidance::Poll,
            "{status:?}: {advice:?}"
        );
    }
}

#[test]
fn for_response_is_the_default_rules_without_a_key() {
    let answer = headers(RA1);
    let m = &Method::POST;
    assert_eq!(
        Advice::for_response(m, StatusCode::TOO_MANY_REQUESTS, &answer),
        Advice::DoNotRepeat
    );
    assert_eq!(
        Advice::for_response(&Method::GET, StatusCode::TOO_MANY_REQUESTS, &answer),
        Advice::RepeatAfter(SECS(1))
    );
    assert_eq!(
        Advice::for_response(m, StatusCode::INTERNAL_SERVER_ERROR, &answer),
        Advice::DoNotRepeat
    );
    assert_eq!(
        Advice::for_response(&Method::GET, StatusCode::SERVICE_UNAVAILABLE, &answer),
        Advice::DoNotRepeat
    );
    assert_eq!(Rules::default(), Rules::new());
    assert_eq!(Rules::new().current_max_retry_after(), SECS(60));
}

#[test]
fn connection_errors_are_transient_only_for_repeatable_requests() {
    for m in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
        let m: Method = m.parse().expect("a method");
        assert!(is_idempotent(&m), "{m}");
        assert!(connection_error_is_transient(&m, &HeaderMap::new()), "{m}");
        assert_eq!(
            Advice::for_connection_error(&m, &HeaderMap::new()),
            Advice::RepeatWithBackoff
        );
    }
    for m in ["POST", "PATCH", "CONNECT", "PURGE"] {
        let m: Method = m.parse().expect("a method");
        assert!(!is_idempotent(&m), "{m}");
        assert!(!connection_error_is_transient(&m, &HeaderMap::new()), "{m}");
        assert_eq!(
            Advice::for_connection_error(&m, &HeaderMap::new()),
            Advice::DoNotRepeat
        );
        assert!(
            connection_error_is_transient(&m, &headers(KEY)),
            "{m} with a key"
        );
        assert!(
            !connection_error_is_transient(&m, &headers(&[("idempotency-key", "")])),
            "{m} with an empty key"
        );
    }
}

#[test]
fn retry_after_values() {
    let parse = |v: &str| parse_retry_after(&HeaderValue::from_str(v).expect("a value"), now());
    assert_eq!(parse("0"), Some(Duration::ZERO));
    assert_eq!(parse(" 7 "), Some(SECS(7)));
    assert_eq!(parse("Sun, 06 Nov 1994 08:50:37 GMT"), Some(SECS(60)));
    assert_eq!(parse(""), None);
    assert_eq!(parse("+5"), None);
    assert_eq!(parse("Sun, 06 Nov 1994"), None);
}

#[test]
fn backoff_is_exponential_capped_and_jittered() {
    let b = Backoff::new(Duration::from_millis(100), SECS(1));
    let none = b.jitter(Jitter::None);
    let ms = |n| Duration::from_millis(n);
    assert_eq!(
        (0..5).map(|n| none.delay(n)).collect::<Vec<_>>(),
        [ms(100), ms(200), ms(400), ms(800), ms(1000)]
    );
    assert_eq!(none.delay(u32::MAX), SECS(1), "no overflow");
    assert_eq!(b.ceiling(3), ms(800));
    // Full jitter: anywhere in 0..=ceiling; equal jitter: in ceiling/2..=ceiling.
    let full = b.jitter(Jitter::Full);
    let equal = b.jitter(Jitter::Equal);
    assert_eq!(full.delay_with(2, 0.0), Duration::ZERO);
    assert_eq!(full.delay_with(2, 0.5), ms(200));
    assert_eq!(full.delay_with(2, 1.0), ms(400));
    assert_eq!(equal.delay_with(2, 0.0), ms(200));
    assert_eq!(equal.delay_with(2, 1.0), ms(400));
    assert_eq!(equal.delay_with(2, 7.0), ms(400), "the draw is clamped");
    for n in 0..8 {
        let d = full.delay(n);
        assert!(d <= full.ceiling(n), "{d:?}");
        let d = equal.delay(n);
        assert!(d >= equal.ceiling(n) / 2 && d <= equal.ceiling(n), "{d:?}");
    }
    assert_eq!(
        Backoff::default(),
        Backoff::new(ms(100), SECS(10))
            .jitter(Jitter::Equal)
            .max_attempts(3)
    );
}

#[test]
fn attempts_bound_every_repeat() {
    let b = Backoff::new(Duration::from_millis(10), SECS(1))
        .jitter(Jitter::None)
        .max_attempts(3);
    assert_eq!(b.attempts(), 3);
    assert_eq!(
        b.next_delay(Advice::RepeatWithBackoff, 1),
        Some(Duration::from_millis(10))
    );
    assert_eq!(
        b.next_delay(Advice::RepeatWithBackoff, 2),
        Some(Duration::from_millis(20))
    );
    assert_eq!(b.next_delay(Advice::RepeatWithBackoff, 3), None);
    assert_eq!(b.next_delay(Advice::RepeatAfter(SECS(1)), 2), Some(SECS(1)));
    assert_eq!(b.next_delay(Advice::RepeatAfter(SECS(1)), 3), None);
    for advice in [
        Advice::Done,
        Advice::DoNotRepeat,
        Advice::Authenticate,
        Advice::FollowLocation,
        Advice::RetryAfterTooLong(SECS(9)),
    ] {
        assert_eq!(b.next_delay(advice, 1), None, "{advice:?}");
    }
    assert_eq!(Backoff::default().max_attempts(0).attempts(), 1);
    assert_eq!(
        Backoff::default()
            .max_attempts(1)
            .next_delay(Advice::RepeatWithBackoff, 1),
        None
    );
}
