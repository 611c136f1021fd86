//! Health checks for orchestrators: `/healthz` (the process is up) and `/readyz` (the store
//! answers, so stateful routes can work). Both skip maintenance, rate limits and shedding,
//! like `/health` (see `edge::exempt`): a load balancer must see the instance as it is.

use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::store::StoreError;
use crate::wire::reply::Reply;
use bytes::Bytes;
use std::time::Duration;

/// How long `/readyz` waits for the store before calling it unready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: liveness. Answers whenever the process can answer at all.
pub(crate) fn healthz() -> Reply {
    Reply::json(200, Bytes::from_static(b"{\"status\":\"ok\"}"))
}

/// `GET /readyz`: readiness, by one cheap store round trip (reading the maintenance flag).
/// 503 with `Retry-After` when the store fails or takes longer than two seconds.
pub(crate) async fn readyz(ctx: &Ctx) -> Result<Reply, Problem> {
    let kind = ctx.store.kind();
    match tokio::time::timeout(READY_TIMEOUT, ctx.store.maintenance()).await {
        Ok(Ok(_)) => Ok(Reply::json(
            200,
            format!("{{\"status\":\"ok\",\"store\":\"{kind}\"}}"),
        )),
        Ok(Err(StoreError::Unavailable(why))) => Err(not_ready(format!(
            "the {kind} store does not answer ({why})"
        ))),
        Ok(Err(e)) => {
            // Engine detail stays in the log, as for every other store failure.
            tracing::warn!(error = %e, store = kind, "readiness check failed");
            Err(not_ready(format!(
                "the {kind} store failed a read (the server log has the details)"
            )))
        }
        Err(_) => Err(not_ready(format!(
            "the {kind} store did not answer within {}s",
            READY_TIMEOUT.as_secs()
        ))),
    }
}

fn not_ready(detail: String) -> Problem {
    Problem::new(503, detail).retry_later()
}
