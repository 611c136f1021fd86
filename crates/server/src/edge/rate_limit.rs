//! 429 from a real rate limiter (state in the store, so every instance shares it), with the
//! IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers) on every limited reply.

use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::store::{RateAlgorithm, RateDecision, SERVER_RATE_PREFIX};
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
    /// How the limiter decides.
    pub(crate) algorithm: RateAlgorithm,
    /// The limiter's answer for this request.
    pub(crate) decision: RateDecision,
}

impl RateLimited {
    /// `RateLimit-Policy` and `RateLimit`: the policy and where the client stands in it. `q`
    /// requests per `w` seconds: with the sliding window, never more than `q` in any `w`
    /// seconds; with GCRA, a burst of `q` that refills over `w`. `r` is exactly how many more
    /// would pass now, `t` the seconds until all `q` are available again.
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
        let (limit, period) = (self.limit, humantime::format_duration(self.period));
        let retry = self.decision.retry_after_secs;
        let detail = match self.algorithm {
            RateAlgorithm::SlidingWindow => format!(
                "{limit} requests were admitted in the last {period} (sliding window: at most \
                 {limit} in any {period}); the next one passes in {retry} s"
            ),
            RateAlgorithm::Gcra => format!(
                "the burst of {limit} is spent and refills one request per {} (GCRA, {limit} \
                 per {period}); the next one passes in {retry} s",
                humantime::format_duration(gcra_interval(self.limit, self.period))
            ),
        };
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

/// GCRA's emission interval, `period / limit`, to the millisecond.
fn gcra_interval(limit: u32, period: Duration) -> Duration {
    let ms = period.as_millis() / u128::from(limit.max(1));
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
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

/// The server-wide limiter (`--rate-limit N/PERIOD`, a sliding window: never more than `N`
/// requests from one client in any `PERIOD`): where the client stands, or the 429.
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
        algorithm: RateAlgorithm::SlidingWindow,
        decision,
    };
    if limited.decision.allowed {
        Ok(Some(limited))
    } else {
        Err(limited.refusal())
    }
}
