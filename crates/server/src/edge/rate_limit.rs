//! 429 from a real rate limiter (state in the store, so every instance shares it), with the
//! IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers) on every limited reply.

use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::store::{RateDecision, SERVER_RATE_PREFIX};
use crate::wire::reply::Reply;
use crate::wire::request::Request;
use http::header::{self, HeaderName, HeaderValue};
use std::time::Duration;

/// Longest client key.
pub(crate) const MAX_KEY: usize = 128;

/// Where a request stands in a rate limit: the policy and the limiter's decision.
#[derive(Debug)]
pub(crate) struct RateLimited {
    /// The policy's name in the headers (`server`, `on-demand`).
    pub(crate) name: &'static str,
    /// Requests per period.
    pub(crate) limit: u32,
    /// The period.
    pub(crate) period: Duration,
    /// The limiter's answer for this request.
    pub(crate) decision: RateDecision,
}

impl RateLimited {
    /// `RateLimit-Policy` and `RateLimit`: the policy and where the client stands in it.
    fn values(&self) -> Option<(HeaderValue, HeaderValue)> {
        let (name, d) = (self.name, &self.decision);
        let policy = format!(
            "\"{name}\";q={};w={}",
            self.limit,
            self.period.as_secs().max(1)
        );
        let state = format!("\"{name}\";r={};t={}", d.remaining, d.reset_secs);
        Some((
            HeaderValue::from_str(&policy).ok()?,
            HeaderValue::from_str(&state).ok()?,
        ))
    }

    /// Adds the RateLimit headers to a reply.
    pub(crate) fn headers(&self, reply: &mut Reply) {
        if let Some((policy, state)) = self.values() {
            reply.headers.append(POLICY, policy);
            reply.headers.append(STATE, state);
        }
    }

    /// The 429 for a refused request: `Retry-After` and the RateLimit headers.
    pub(crate) fn refusal(&self) -> Problem {
        let detail = format!(
            "more than {} requests per {}; the next one passes in {} s",
            self.limit,
            humantime::format_duration(self.period),
            self.decision.retry_after_secs
        );
        let mut problem = Problem::new(429, detail).with_header(
            header::RETRY_AFTER,
            HeaderValue::from(self.decision.retry_after_secs),
        );
        if let Some((policy, state)) = self.values() {
            problem = problem
                .with_header(POLICY, policy)
                .with_header(STATE, state);
        }
        problem
    }
}

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const STATE: HeaderName = HeaderName::from_static("ratelimit");

/// The client key of the server-wide limiter: the `--rate-limit-key` header, else the address.
fn client_key(ctx: &Ctx, req: &Request) -> String {
    let from_header = ctx
        .cfg
        .rate_limit_key
        .as_ref()
        .and_then(|h| req.header(h))
        .filter(|v| !v.is_empty());
    match from_header {
        Some(v) => v.chars().take(MAX_KEY).collect(),
        None => req.peer.ip().to_string(),
    }
}

/// The server-wide limiter (`--rate-limit N/PERIOD`): where the client stands, or the 429.
pub(crate) async fn server(ctx: &Ctx, req: &Request) -> Result<Option<RateLimited>, Problem> {
    let Some((limit, period)) = ctx.cfg.rate_limit else {
        return Ok(None);
    };
    let key = format!("{SERVER_RATE_PREFIX}{}", client_key(ctx, req));
    let decision = ctx.store.rate_limit(&key, limit, period).await?;
    let limited = RateLimited {
        name: "server",
        limit,
        period,
        decision,
    };
    if limited.decision.allowed {
        Ok(Some(limited))
    } else {
        Err(limited.refusal())
    }
}
