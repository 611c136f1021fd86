//! Codes that arise at a server's edge: 429 from a real rate limiter (GCRA, state in the
//! store so every instance shares it), 503 from maintenance mode and from load shedding.

use crate::app::{App, status};
use crate::config::Scope;
use crate::reply::Reply;
use crate::request::Request;
use crate::store::RateDecision;
use http::header::{HeaderName, HeaderValue};
use http::{Method, header};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Most requests per period the on-demand limiter takes.
const MAX_ON_DEMAND_LIMIT: u32 = 1_000_000;
/// Longest period of the on-demand limiter.
const MAX_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// Longest client key.
const MAX_KEY: usize = 128;

/// Per-process edge state: lock-free.
#[derive(Debug, Default)]
pub(crate) struct Edge {
    /// Maintenance mode, mirrored from the store (refreshed every second).
    pub(crate) maintenance: AtomicBool,
    /// Requests being handled now.
    in_flight: AtomicUsize,
}

/// Holds one in-flight slot; frees it on drop.
pub(crate) struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Edge {
    /// Edge state starting in or out of maintenance mode (so the very first request already
    /// sees `--maintenance`, before the store is consulted).
    pub(crate) fn new(maintenance: bool) -> Edge {
        Edge {
            maintenance: AtomicBool::new(maintenance),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Takes an in-flight slot (none is needed without a limit), or `None` past `max`.
    pub(crate) fn enter(&self, max: Option<usize>) -> Option<Option<Slot<'_>>> {
        // Without a limit, nothing is counted: no shared counter on the hot path.
        let Some(max) = max else { return Some(None) };
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Slot(&self.in_flight);
        (now <= max).then_some(Some(slot))
    }
}

/// 503 for load shedding.
pub(crate) fn shed(app: &App, req: &Request) -> Reply {
    let detail = format!(
        "statuslab is handling its maximum of {} requests at once (--max-in-flight); retry after Retry-After",
        app.cfg.max_in_flight.unwrap_or(0)
    );
    app.error(req, 503, &detail).with_header(
        header::RETRY_AFTER,
        HeaderValue::from(app.cfg.default_retry_after),
    )
}

/// Whether a path stays reachable in maintenance mode, under load shedding and past the
/// server-wide rate limit: health checks and the admin routes that switch maintenance.
pub(crate) fn exempt_from_maintenance(path: &str) -> bool {
    path.starts_with("/admin/") || path == "/health"
}

/// 503 in maintenance mode.
pub(crate) fn in_maintenance(app: &App, req: &Request) -> Reply {
    app.error(
        req,
        503,
        "statuslab is in maintenance mode; retry after Retry-After",
    )
    .with_header(
        header::RETRY_AFTER,
        HeaderValue::from(app.cfg.default_retry_after),
    )
}

/// `GET` shows, `PUT` switches on and `DELETE` switches off maintenance mode (admin token).
pub(crate) async fn maintenance(app: &App, req: &Request) -> Reply {
    let needed = if req.method.is_safe() {
        Scope::Read
    } else {
        Scope::Admin
    };
    if let Some(refused) = crate::auth::require(app, req, needed) {
        return refused;
    }
    if req.method == Method::PUT || req.method == Method::DELETE {
        let on = req.method == Method::PUT;
        if let Err(e) = app.store.set_maintenance(on).await {
            return app.store_failed(req, e);
        }
        app.edge.maintenance.store(on, Ordering::Relaxed);
        tracing::warn!(on, "maintenance mode switched");
        return Reply::new(status(204));
    }
    let on = match app.store.maintenance().await {
        Ok(on) => on,
        Err(e) => return app.store_failed(req, e),
    };
    app.json(200, json!({ "maintenance": on }).to_string())
}

/// Keeps the maintenance flag in step with the store, so a switch on one instance reaches all.
pub(crate) async fn follow_maintenance(app: std::sync::Arc<App>) {
    if app.cfg.maintenance {
        if let Err(e) = app.store.set_maintenance(true).await {
            tracing::warn!(error = %e, "could not record maintenance mode in the store");
        }
        app.edge.maintenance.store(true, Ordering::Relaxed);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match app.store.maintenance().await {
            Ok(on) => app.edge.maintenance.store(on, Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "reading maintenance mode failed"),
        }
    }
}

/// The IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers): the policy and where the
/// client stands in it.
pub(crate) fn rate_headers(
    reply: &mut Reply,
    name: &str,
    limit: u32,
    period: Duration,
    d: &RateDecision,
) {
    let policy = format!("\"{name}\";q={limit};w={}", period.as_secs().max(1));
    let state = format!("\"{name}\";r={};t={}", d.remaining, d.reset_secs);
    if let (Ok(p), Ok(s)) = (
        HeaderValue::from_str(&policy),
        HeaderValue::from_str(&state),
    ) {
        reply
            .headers
            .append(HeaderName::from_static("ratelimit-policy"), p);
        reply
            .headers
            .append(HeaderName::from_static("ratelimit"), s);
    }
}

/// 429 with `Retry-After` for a refused request.
pub(crate) fn too_many(
    app: &App,
    req: &Request,
    limit: u32,
    period: Duration,
    d: &RateDecision,
) -> Reply {
    let detail = format!(
        "more than {limit} requests per {}; the next one passes in {} s",
        humantime::format_duration(period),
        d.retry_after_secs
    );
    app.error(req, 429, &detail)
        .with_header(header::RETRY_AFTER, HeaderValue::from(d.retry_after_secs))
}

/// The client key of the server-wide limiter: the `--rate-limit-key` header, else the address.
fn client_key(app: &App, req: &Request) -> String {
    let from_header = app
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

/// The server-wide limiter (`--rate-limit N/PERIOD`): `Err` is the reply that refuses.
pub(crate) async fn server_rate_limit(
    app: &App,
    req: &Request,
) -> Result<Option<(u32, Duration, RateDecision)>, Reply> {
    let Some((limit, period)) = app.cfg.rate_limit else {
        return Ok(None);
    };
    let key = format!("server:{}", client_key(app, req));
    match app.store.rate_limit(&key, limit, period).await {
        Ok(d) if d.allowed => Ok(Some((limit, period, d))),
        Ok(d) => {
            let mut r = too_many(app, req, limit, period, &d);
            rate_headers(&mut r, "server", limit, period, &d);
            Err(r)
        }
        Err(e) => Err(app.store_failed(req, e)),
    }
}

/// Parses a period: seconds (`60`) or a duration (`1m`, `10s`).
fn parse_period(s: &str) -> Result<Duration, String> {
    let d = if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        Duration::from_secs(
            s.parse()
                .map_err(|_| format!("period {s:?} is too large"))?,
        )
    } else {
        humantime::parse_duration(s).map_err(|_| {
            format!("period {s:?}: expected seconds or a duration such as 10s or 1m")
        })?
    };
    if d.is_zero() || d > MAX_PERIOD {
        return Err(format!("period {s:?} must be between 1 ms and 24 h"));
    }
    Ok(d)
}

/// `/rate-limit/{n}/{period}?key=K`: `n` requests per period per key pass (200, or `?code=`),
/// the rest get 429 with `Retry-After`; all carry the RateLimit headers.
pub(crate) async fn on_demand_rate_limit(app: &App, req: &Request, n: &str, period: &str) -> Reply {
    let limit: u32 = match n.parse() {
        Ok(l) if (1..=MAX_ON_DEMAND_LIMIT).contains(&l) => l,
        _ => {
            return app.error(
                req,
                400,
                &format!("limit {n:?} must be a whole number in 1-{MAX_ON_DEMAND_LIMIT}"),
            );
        }
    };
    let period_d = match parse_period(period) {
        Ok(p) => p,
        Err(e) => return app.error(req, 400, &e),
    };
    let mut key = None;
    let mut code = status(200);
    for (k, v) in form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "key" => key = Some(v.chars().take(MAX_KEY).collect::<String>()),
            "code" => match v.parse::<statuslab_catalog::Status>() {
                Ok(s) if !s.is_informational() => code = s,
                _ => {
                    return app.error(
                        req,
                        400,
                        &format!("code={v:?} must be a final code in 200-599"),
                    );
                }
            },
            _ => {}
        }
    }
    let who = key.unwrap_or_else(|| req.peer.ip().to_string());
    let store_key = format!("on-demand:{limit}/{}ms:{who}", period_d.as_millis());
    match app.store.rate_limit(&store_key, limit, period_d).await {
        Ok(d) => {
            let mut reply = if d.allowed {
                crate::status::dress(app, req, code, &crate::status::Options::default())
            } else {
                too_many(app, req, limit, period_d, &d)
            };
            rate_headers(&mut reply, "on-demand", limit, period_d, &d);
            reply
        }
        Err(e) => app.store_failed(req, e),
    }
}
