//! Retry testing: `/sequence/{key}/{codes}` answers the listed codes in order for that key
//! (the last repeats), with the same options and full dress as `/status`; `/sequences/{key}`
//! shows where a key stands and every attempt, so a client's retry behaviour can be checked.

use super::on_demand::{Options, dress, fault_reply};
use super::report::{self, step_json};
use super::resources::valid_name;
use crate::content::negotiate::Format;
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::store::{Attempt, Sequence, SequenceStep};
use crate::wire::fault::FaultKind;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use http::Method;
use http::header::{HeaderName, HeaderValue};
use serde_json::json;
use statuslab_catalog::Status;

/// Most codes in a sequence.
const MAX_CODES: usize = 100;
/// Request headers recorded with each attempt: the ones that tell retries apart.
const RECORDED: &[&str] = &[
    "user-agent",
    "idempotency-key",
    "x-request-id",
    "x-retry-attempt",
    "x-stainless-retry-count",
    "amz-sdk-request",
    "if-match",
    "if-none-match",
];
/// Longest recorded header value.
const MAX_RECORDED_VALUE: usize = 256;
/// Request headers left out of an attempt's fingerprint: per-attempt bookkeeping that clients
/// change on every repeat without changing the request.
const BOOKKEEPING: &[&str] = &[
    "connection",
    "content-length",
    "date",
    "keep-alive",
    "te",
    "traceparent",
    "tracestate",
    "x-request-id",
    "x-amzn-trace-id",
    "x-retry-attempt",
    "x-stainless-retry-count",
    "amz-sdk-request",
    "amz-sdk-invocation-id",
];

/// A digest of what makes a request the same request: method, target, the headers that are
/// not bookkeeping (sorted, so their order does not matter) and the content.
fn fingerprint(req: &Request) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(req.method.as_str());
    h.update(b"\n");
    h.update(req.uri.path_and_query().map_or("", |p| p.as_str()));
    h.update(b"\n");
    let mut fields: Vec<(&str, &[u8])> = req
        .headers
        .iter()
        .filter(|(n, _)| !BOOKKEEPING.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    fields.sort_unstable();
    for (n, v) in fields {
        h.update(n);
        h.update(b":");
        h.update(v);
        h.update(b"\n");
    }
    h.update(b"\n");
    h.update(&req.body);
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A sequence's steps: codes 100–599 and fault names (`503,reset,200`), faults stored as
/// their number (900 + index).
fn parse_codes(list: &str) -> Result<Vec<u16>, String> {
    let codes: Vec<u16> = list
        .split(',')
        .map(|c| {
            let c = c.trim();
            if let Some(kind) = FaultKind::from_name(c) {
                return Ok(kind.code());
            }
            c.parse::<Status>()
                .map(Status::code)
                .map_err(|e| format!("{e} (or a fault: reset, empty, truncate, …)"))
        })
        .collect::<Result<_, _>>()?;
    if codes.len() > MAX_CODES {
        return Err(format!("a sequence has at most {MAX_CODES} codes"));
    }
    Ok(codes)
}

/// Seconds a `Retry-After` value asks for: delay-seconds, or the whole seconds until an HTTP
/// date (rounded down: a date has one-second resolution, and a client that waits until it
/// has waited at least this long).
fn retry_after_secs(v: &str) -> Option<u64> {
    if let Ok(secs) = v.parse() {
        return Some(secs);
    }
    let date = httpdate::parse_http_date(v).ok()?;
    let wait = date
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    Some(wait.as_secs())
}

/// The `Retry-After` seconds an answer carried: the request's own `retry_after` if it gave
/// seconds, else the server's default on the codes that always carry one.
fn effective_retry_after(ctx: &Ctx, a: &Attempt) -> Option<u64> {
    a.retry_after.or_else(|| {
        matches!(a.code, 413 | 429 | 503).then_some(u64::from(ctx.cfg.default_retry_after))
    })
}

/// `/sequence/{key}/{codes}`.
pub(crate) async fn step(
    ctx: &Ctx,
    req: &Request,
    key: &str,
    list: &str,
) -> Result<Reply, Problem> {
    let bad = |e: String| Problem::new(400, e);
    valid_name("sequence key", key).map_err(bad)?;
    let list = percent_encoding::percent_decode_str(list).decode_utf8_lossy();
    let codes = parse_codes(&list).map_err(bad)?;
    let opts = Options::parse(ctx, req).map_err(bad)?;
    // Refused before the step is taken, so that a bad request does not move the sequence.
    if opts.then.is_some() && !codes.iter().any(|&c| (100..200).contains(&c)) {
        return Err(bad(format!(
            "then= names the final code after an interim 1xx; the sequence {list} has none"
        )));
    }
    let headers = RECORDED
        .iter()
        .filter_map(|n| {
            let v = req.header(*n)?;
            Some((
                (*n).to_owned(),
                v.chars().take(MAX_RECORDED_VALUE).collect(),
            ))
        })
        .collect();
    let retry_after = opts
        .retry_after
        .as_ref()
        .and_then(|v| retry_after_secs(v.to_str().ok()?));
    let attempt = Attempt {
        at_ms: 0,
        method: req.method.to_string(),
        headers,
        step: 0,
        code: 0,
        retry_after,
        fingerprint: Some(fingerprint(req)),
    };
    let (step, code) = match ctx.store.sequence_step(key, codes.clone(), attempt).await? {
        SequenceStep::Answer { step, code } => (step, code),
        SequenceStep::TooManyKeys => {
            let detail = format!(
                "the store holds its maximum number of sequences ({}, --max-keys)",
                ctx.cfg.limits.max_keys
            );
            return Err(Problem::new(507, detail));
        }
        SequenceStep::Conflict { codes: held } => {
            let list = |codes: &[u16]| {
                codes
                    .iter()
                    .map(|&c| {
                        FaultKind::from_code(c)
                            .map_or_else(|| c.to_string(), |k| k.name().to_owned())
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let detail = format!(
                "the sequence {key:?} holds another list of codes, {}, not {}; DELETE /sequences/{key} resets it (its attempts go with it), or use another key",
                list(&held),
                list(&codes)
            );
            return Err(Problem::new(409, detail));
        }
    };
    if !opts.sleep.is_zero() {
        tokio::time::sleep(opts.sleep).await;
    }
    let mut reply = match FaultKind::from_code(code) {
        Some(kind) => fault_reply(ctx, req, kind, &opts)?,
        None => dress(ctx, req, known(code), &opts)?,
    };
    let position = format!("{}/{}", step + 1, codes.len());
    reply.headers.insert(
        HeaderName::from_static("sequence-step"),
        HeaderValue::from_str(&position).expect("digits"),
    );
    Ok(reply)
}

fn no_sequence(key: &str) -> Problem {
    Problem::new(404, format!("there is no sequence {key:?}"))
}

/// `GET /sequences/{key}` and `DELETE /sequences/{key}`.
pub(crate) async fn state(ctx: &Ctx, req: &Request, key: &str) -> Result<Reply, Problem> {
    valid_name("sequence key", key).map_err(|e| Problem::new(400, e))?;
    if req.method == Method::DELETE {
        return match ctx.store.reset_sequence(key).await? {
            true => Ok(Reply::new(known(204))),
            false => Err(no_sequence(key)),
        };
    }
    let seq = ctx
        .store
        .sequence(key)
        .await?
        .ok_or_else(|| no_sequence(key))?;
    Ok(Reply::json(200, state_json(ctx, key, &seq).to_string()))
}

/// A sequence's state with, for each attempt, the wait since the previous one and whether it
/// honoured the `Retry-After` the previous answer carried.
fn state_json(ctx: &Ctx, key: &str, seq: &Sequence) -> serde_json::Value {
    let mut previous: Option<(&Attempt, Option<u64>)> = None;
    let attempts: Vec<_> = seq
        .attempts
        .iter()
        .map(|a| {
            let retry_after = effective_retry_after(ctx, a);
            let waited = previous.map(|(p, _)| a.at_ms.saturating_sub(p.at_ms));
            let honoured = previous.and_then(|(_, ra)| ra).zip(waited).map(|(ra, w)| w >= ra * 1000);
            previous = Some((a, retry_after));
            json!({
                "at_ms": a.at_ms,
                "method": a.method,
                "step": a.step + 1,
                "code": step_json(a.code),
                "retry_after": retry_after,
                "since_previous_ms": waited,
                "honoured_retry_after": honoured,
                "headers": a.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    let next = usize::try_from(seq.served)
        .unwrap_or(usize::MAX)
        .min(seq.codes.len() - 1);
    json!({
        "key": key,
        "codes": seq.codes.iter().map(|&c| step_json(c)).collect::<Vec<_>>(),
        "served": seq.served,
        "next_step": next + 1,
        "next_code": step_json(seq.codes[next]),
        "attempts": attempts,
        "report": format!("/sequences/{key}/report"),
    })
}

/// `GET /sequences/{key}/report`: the verdict on the client that tried the sequence — JSON,
/// or a page with a time line for `Accept: text/html` (or `?format=html`).
pub(crate) async fn verdict(ctx: &Ctx, req: &Request, key: &str) -> Result<Reply, Problem> {
    valid_name("sequence key", key).map_err(|e| Problem::new(400, e))?;
    let asked = form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.into_owned());
    let format = match asked {
        Some(name) => match Format::from_name(&name) {
            Some(f @ (Format::Json | Format::Html)) => f,
            _ => {
                return Err(Problem::new(
                    400,
                    format!("format={name:?}: the report is written as json or html"),
                ));
            }
        },
        None => match Format::negotiate(req.headers.get(http::header::ACCEPT), Format::Json) {
            Some(Format::Html) => Format::Html,
            Some(Format::Json | Format::Problem) => Format::Json,
            _ => {
                return Err(Problem::new(
                    406,
                    "the report is written as application/json or text/html",
                ));
            }
        },
    };
    let seq = ctx
        .store
        .sequence(key)
        .await?
        .ok_or_else(|| no_sequence(key))?;
    let seen: Vec<report::Seen> = seq
        .attempts
        .iter()
        .map(|a| report::Seen::new(a, effective_retry_after(ctx, a)))
        .collect();
    let verdict = report::verdict(key, &seq.codes, &seen);
    let reply = match format {
        Format::Html => {
            Reply::new(known(200)).with_body(Format::Html.content_type(), report::html(&verdict))
        }
        _ => Reply::json(200, verdict.to_string()),
    };
    Ok(reply.with_header(http::header::VARY, HeaderValue::from_static("Accept")))
}

/// Properties of sequence code lists, shared by the property tests below and the `params`
/// fuzz target (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// For any list: no panic; an accepted list has one step per comma-separated item, 1 to
    /// 100 of them, each a code 100-599 or a fault, and renders back to the same steps.
    pub(crate) fn check_codes(list: &str) {
        if let Ok(codes) = parse_codes(list) {
            assert_eq!(codes.len(), list.split(',').count());
            assert!((1..=MAX_CODES).contains(&codes.len()));
            assert!(
                codes
                    .iter()
                    .all(|&c| (100..=599).contains(&c) || FaultKind::from_code(c).is_some())
            );
            let again: Vec<String> = codes
                .iter()
                .map(|&c| {
                    FaultKind::from_code(c).map_or_else(|| c.to_string(), |k| k.name().to_owned())
                })
                .collect();
            assert_eq!(parse_codes(&again.join(",")), Ok(codes));
        }
    }

    #[cfg(test)]
    use proptest::collection::vec;
    #[cfg(test)]
    use proptest::prelude::*;

    #[cfg(test)]
    proptest! {
        #[test]
        fn listed_codes_round_trip(codes in vec(100u16..600, 1..120), ows in "[ \t]{0,2}") {
            let list = codes.iter().map(|c| format!("{ows}{c}{ows}")).collect::<Vec<_>>().join(",");
            check_codes(&list);
            if codes.len() <= MAX_CODES {
                prop_assert_eq!(parse_codes(&list), Ok(codes));
            } else {
                prop_assert!(parse_codes(&list).is_err());
            }
        }

        #[test]
        fn any_list(list in prop_oneof![".{0,24}", "[0-9, ]{0,40}"]) {
            check_codes(&list);
        }

        #[test]
        fn a_bad_item_refuses_the_list(
            codes in vec(100u16..600, 0..5),
            bad in prop_oneof![Just("".to_owned()), "[0-9]{1,2}", "[6-9][0-9]{2}", "[0-9]{4,30}", "[a-z+-]{1,3}"],
            at in any::<prop::sample::Index>(),
        ) {
            let mut items: Vec<String> = codes.iter().map(u16::to_string).collect();
            items.insert(at.index(items.len() + 1), bad.clone());
            // `0100`-style zero padding is still a code; the other bad items are not.
            prop_assume!(bad.parse::<u64>().map_or(true, |n| !(100..600).contains(&n)));
            prop_assert!(parse_codes(&items.join(",")).is_err(), "{:?}", items);
        }
    }
}
