//! `/rate-limit/{n}/{period}?key=K&algorithm=A`: an on-demand rate limiter for testing
//! clients. By default a sliding window (never more than `n` requests in any window of
//! `period`); `?algorithm=gcra` for the smoothed limiter (see [`crate::store::rate`]).

use super::on_demand;
use crate::content::params::{self, Bare};
use crate::ctx::Ctx;
use crate::edge::RateLimited;
use crate::edge::rate_limit::MAX_KEY;
use crate::problem::Problem;
use crate::store::RateAlgorithm;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use std::time::Duration;

/// Most requests per period the on-demand limiter takes.
const MAX_LIMIT: u32 = 1_000_000;
/// Longest period of the on-demand limiter.
const MAX_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// `n` requests per period per key pass (200, or `?code=`), the rest get 429 with
/// `Retry-After` (when the next one would pass); all carry the RateLimit headers.
pub(crate) async fn answer(
    ctx: &Ctx,
    req: &Request,
    n: &str,
    period: &str,
) -> Result<Reply, Problem> {
    let limit: u32 = match n.parse() {
        Ok(l) if (1..=MAX_LIMIT).contains(&l) => l,
        _ => {
            return Err(Problem::new(
                400,
                format!("limit {n:?} must be a whole number in 1-{MAX_LIMIT}"),
            ));
        }
    };
    let period = params::duration("period", period, Bare::Secs, MAX_PERIOD, "24 h")
        .map_err(|e| Problem::new(400, e))?;
    if period.is_zero() {
        return Err(Problem::new(400, "the period must be at least 1 ms"));
    }
    let mut key = None;
    let mut code = known(200);
    let mut algorithm = RateAlgorithm::default();
    for (k, v) in form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "key" => key = Some(v.chars().take(MAX_KEY).collect::<String>()),
            "algorithm" => {
                algorithm = RateAlgorithm::from_name(&v).ok_or_else(|| {
                    let names: Vec<&str> = RateAlgorithm::ALL.iter().map(|a| a.name()).collect();
                    Problem::new(
                        400,
                        format!("algorithm={v:?} is not one of {}", names.join(", ")),
                    )
                })?;
            }
            "code" => match v.parse::<statuslab_catalog::Status>() {
                Ok(s) if !s.is_informational() => code = s,
                _ => {
                    return Err(Problem::new(
                        400,
                        format!("code={v:?} must be a final code in 200-599"),
                    ));
                }
            },
            _ => {}
        }
    }
    let who = key.unwrap_or_else(|| req.peer.ip().to_string());
    // Each algorithm keeps its own state: the sliding window under the key GCRA used before
    // it (whose old values it reads as no state), GCRA under a key of its own.
    let store_key = match algorithm {
        RateAlgorithm::SlidingWindow => format!("on-demand:{limit}/{}ms:{who}", period.as_millis()),
        RateAlgorithm::Gcra => format!("on-demand:gcra:{limit}/{}ms:{who}", period.as_millis()),
    };
    let decision = ctx
        .store
        .rate_limit_with(&store_key, limit, period, algorithm)
        .await?;
    let limited = RateLimited {
        name: "on-demand",
        limit,
        period,
        algorithm,
        decision,
    };
    if !limited.decision.allowed {
        if let Some(m) = &ctx.metrics {
            m.rate_limited(crate::metrics::Limiter::Route);
        }
        return Err(limited.refusal());
    }
    let mut reply = on_demand::dress(ctx, req, code, &on_demand::Options::default())?;
    limited.headers(&mut reply);
    Ok(reply)
}
