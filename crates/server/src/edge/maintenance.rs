//! 503 in maintenance mode. The flag lives in the store, so a switch on one instance reaches
//! every instance; each process mirrors it once a second.

use crate::ctx::Ctx;
use crate::problem::Problem;
use std::time::Duration;

/// The refusal every non-exempt request meets in maintenance mode.
pub(crate) fn refusal() -> Problem {
    Problem::new(
        503,
        "statuslab is in maintenance mode; repeat the request after Retry-After",
    )
    .retry_later()
}

/// Keeps the process's maintenance flag in step with the store (and records `--maintenance`
/// there at start); runs until the server stops.
pub(crate) async fn follow(ctx: &Ctx) {
    if ctx.cfg.maintenance {
        if let Err(e) = ctx.store.set_maintenance(true).await {
            tracing::warn!(error = %e, "could not record maintenance mode in the store");
        }
        ctx.edge.set_maintenance(true);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match ctx.store.maintenance().await {
            Ok(on) => ctx.edge.set_maintenance(on),
            Err(e) => tracing::debug!(error = %e, "reading maintenance mode failed"),
        }
    }
}
