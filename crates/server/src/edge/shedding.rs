//! 503 from load shedding: past `--max-in-flight` requests at once, new ones are refused.

use crate::ctx::Ctx;
use crate::problem::Problem;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Holds one in-flight slot; frees it on drop.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes an in-flight slot (none is needed, and nothing is counted, without a limit), or
/// refuses with 503 past `--max-in-flight`.
pub(crate) fn enter(ctx: &Ctx) -> Result<Option<Slot>, Problem> {
    // Without a limit, nothing is counted: no shared counter on the hot path.
    let Some(max) = ctx.cfg.max_in_flight else {
        return Ok(None);
    };
    let counter = &ctx.edge.in_flight;
    let now = counter.fetch_add(1, Ordering::Relaxed) + 1;
    let slot = Slot(Arc::clone(counter));
    if now <= max {
        return Ok(Some(slot));
    }
    Err(Problem::new(
        503,
        format!(
            "statuslab is handling its maximum of {max} requests at once (--max-in-flight); retry after Retry-After"
        ),
    )
    .retry_later())
}
