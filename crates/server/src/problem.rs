//! `Problem`: why a request is answered with an error, rendered once (in dispatch) as
//! problem+json, JSON, text or HTML by `Accept` (RFC 9457).
//!
//! Handlers return `Result<Reply, Problem>` and never render errors themselves; store failures
//! become a `Problem` through one `From` impl: 503 with `Retry-After` when the store cannot be
//! reached, 500 with an error id (details in the log only) otherwise.

use crate::content::bodies;
use crate::content::negotiate::Format;
use crate::ctx::Ctx;
use crate::store::StoreError;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::borrow::Cow;
use std::fmt;

/// The next step of a 413 for content over a fixed limit (`--max-body`): the table's advice
/// (repeat after `Retry-After`) is for temporary conditions.
pub(crate) const FIXED_LIMIT: &str = "do not repeat the request with the same content: it is over a fixed limit, not a temporary one";

/// The next step of a 503 with `Retry-After`: the table's 503 advice is for a service that
/// stays unavailable.
pub(crate) const TEMPORARY: &str =
    "repeat the request unchanged after Retry-After: the condition is temporary";

/// An error answer: a code, what was wrong, and the header fields the code needs. Boxed, so a
/// `Result<Reply, Problem>` stays small on the paths that succeed.
#[derive(Debug)]
pub(crate) struct Problem(Box<Inner>);

#[derive(Debug)]
struct Inner {
    /// The code (4xx, 5xx; also a few 3xx answered with an explanation, such as 301).
    code: u16,
    /// What was wrong, for the client.
    detail: Cow<'static, str>,
    /// Extra header fields (`Allow`, `WWW-Authenticate`, `Retry-After`, …).
    headers: HeaderMap,
    /// `Retry-After: --default-retry-after`, filled in when rendered.
    default_retry_after: bool,
    /// A failure inside statuslab: logged under an error id, never sent.
    internal: Option<String>,
    /// What the client should do next, where this answer knows better than the table.
    advice: Option<&'static str>,
}

impl Problem {
    /// `code` with `detail` saying what was wrong.
    pub(crate) fn new(code: u16, detail: impl Into<Cow<'static, str>>) -> Problem {
        Problem(Box::new(Inner {
            code,
            detail: detail.into(),
            headers: HeaderMap::new(),
            default_retry_after: false,
            internal: None,
            advice: None,
        }))
    }

    /// The status code.
    pub(crate) fn code(&self) -> u16 {
        self.0.code
    }

    /// 500 for a failure inside statuslab: `err` goes to the log under an error id; the client
    /// gets the id and nothing internal.
    pub(crate) fn internal(err: impl fmt::Display) -> Problem {
        let mut p = Problem::new(500, "");
        p.0.internal = Some(err.to_string());
        p
    }

    /// Adds a header field.
    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Problem {
        self.0.headers.append(name, value);
        self
    }

    /// Says what the client should do next instead of the table's general advice.
    pub(crate) fn advice(mut self, next_step: &'static str) -> Problem {
        self.0.advice = Some(next_step);
        self
    }

    /// Adds `Retry-After: --default-retry-after`. On a 503 it also says to repeat the request
    /// then: the table's 503 advice (do not repeat it without modifications) would contradict
    /// the `Retry-After` of a temporary condition (maintenance, shedding, a store away).
    pub(crate) fn retry_later(mut self) -> Problem {
        self.0.default_retry_after = true;
        if self.0.code == 503 && self.0.advice.is_none() {
            self.0.advice = Some(TEMPORARY);
        }
        self
    }

    /// The reply: the body in the format `Accept` prefers (problem+json by default).
    pub(crate) fn into_reply(self, ctx: &Ctx, req: &Request) -> Reply {
        let Inner {
            code,
            mut detail,
            headers,
            default_retry_after,
            internal,
            advice,
        } = *self.0;
        let mut extra = headers;
        if let Some(err) = internal {
            let id = format!("{:016x}", fastrand::u64(..));
            tracing::error!(error_id = %id, method = %req.method, path = req.path(), error = %err, "request failed");
            detail = format!(
                "statuslab failed to handle the request; error id {id} (the server log has the details)"
            )
            .into();
            if let Ok(v) = HeaderValue::from_str(&id) {
                extra.insert(HeaderName::from_static("x-error-id"), v);
            }
        }
        if default_retry_after {
            extra.insert(
                header::RETRY_AFTER,
                HeaderValue::from(ctx.cfg.default_retry_after),
            );
        }
        let mut reply = render(req, code, &detail, advice);
        // A consumed `HeaderMap` names each field once, then `None` for its further values.
        let mut prev: Option<HeaderName> = None;
        for (name, value) in extra {
            match name {
                Some(name) => {
                    reply.headers.insert(name.clone(), value);
                    prev = Some(name);
                }
                None => {
                    if let Some(name) = &prev {
                        reply.headers.append(name.clone(), value);
                    }
                }
            }
        }
        reply
    }
}

/// An error reply: `code` with a body (problem+json, or JSON, text or HTML if the client
/// accepts only those) whose `detail` says what was wrong.
fn render(req: &Request, code: u16, detail: &str, advice: Option<&str>) -> Reply {
    let s = known(code);
    let format = Format::negotiate(req.headers.get(header::ACCEPT), Format::Problem)
        .unwrap_or(Format::Problem);
    let mut reply = Reply::new(s)
        .with_body(
            format.content_type(),
            bodies::render(s, format, Some(detail), advice),
        )
        .with_header(header::VARY, HeaderValue::from_static("Accept"));
    reply.close = code == 408;
    reply
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Problem {
        match err {
            StoreError::Unavailable(why) => Problem::new(
                503,
                format!(
                    "the state store is unavailable ({why}); on-demand routes such as /status still work"
                ),
            )
            .retry_later(),
            StoreError::Full { family, limit } => Problem::new(
                507,
                format!("the store holds its maximum number of {family} ({limit}, --max-keys)"),
            )
            .retry_later(),
            other => Problem::internal(other),
        }
    }
}
