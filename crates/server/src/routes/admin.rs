//! `/admin/maintenance`: `GET` shows, `PUT` switches on and `DELETE` switches off maintenance
//! mode (admin token; reading needs a read token when tokens are configured).

use crate::config::Scope;
use crate::ctx::Ctx;
use crate::edge::auth;
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use http::Method;
use serde_json::json;

pub(crate) async fn maintenance(ctx: &Ctx, req: &Request) -> Result<Reply, Problem> {
    let needed = if req.method.is_safe() {
        Scope::Read
    } else {
        Scope::Admin
    };
    auth::require(ctx, req, needed)?;
    if req.method == Method::PUT || req.method == Method::DELETE {
        let on = req.method == Method::PUT;
        ctx.store.set_maintenance(on).await?;
        ctx.edge.set_maintenance(on);
        tracing::warn!(on, "maintenance mode switched");
        return Ok(Reply::new(known(204)));
    }
    let on = ctx.store.maintenance().await?;
    Ok(Reply::json(200, json!({ "maintenance": on }).to_string()))
}
