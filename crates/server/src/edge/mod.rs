//! Codes that arise at a server's edge, before a route's handler runs: 401/403 from bearer
//! tokens ([`auth`]), 503 in maintenance mode ([`maintenance`]), 429 from the server-wide
//! rate limit ([`rate_limit`]) and 503 from load shedding ([`shedding`]).

pub(crate) mod auth;
pub(crate) mod maintenance;
pub(crate) mod rate_limit;
pub(crate) mod shedding;

pub(crate) use rate_limit::RateLimited;
pub(crate) use shedding::Slot;

/// Whether a path is exempt from the edge's refusals (maintenance, the server-wide rate limit
/// and load shedding): health checks, the metrics, and the admin routes that switch
/// maintenance off.
pub(crate) fn exempt(path: &str) -> bool {
    path.starts_with("/admin/") || matches!(path, "/health" | "/healthz" | "/readyz" | "/metrics")
}
