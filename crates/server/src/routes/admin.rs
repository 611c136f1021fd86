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
        let on = req.method == Method::PUT && wanted(req)?;
        ctx.store.set_maintenance(on).await?;
        ctx.edge.set_maintenance(on);
        tracing::warn!(on, "maintenance mode switched");
        return Ok(Reply::new(known(204)));
    }
    let on = ctx.store.maintenance().await?;
    Ok(Reply::json(200, json!({ "maintenance": on }).to_string()))
}

/// What a `PUT` asks for: on without content, or `{"maintenance": true|false}`; anything else
/// is refused rather than read as "on".
fn wanted(req: &Request) -> Result<bool, Problem> {
    if req.body.is_empty() {
        return Ok(true);
    }
    let doc: serde_json::Value = serde_json::from_slice(&req.body)
        .map_err(|e| Problem::new(400, format!("the body is not JSON: {e}")))?;
    match doc.get("maintenance") {
        Some(serde_json::Value::Bool(on)) if doc.as_object().is_some_and(|o| o.len() == 1) => {
            Ok(*on)
        }
        _ => Err(Problem::new(
            422,
            r#"the body must be {"maintenance": true} or {"maintenance": false}"#,
        )),
    }
}
