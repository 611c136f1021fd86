//! The gateway (502, 504, 203) and the forward proxy (407), filled in by the gateway work.

use crate::app::App;
use crate::reply::Reply;
use crate::request::Request;

/// `/gateway/{upstream}/{*path}`.
pub(crate) async fn forward(app: &App, req: &Request, upstream: &str, _path: &str) -> Reply {
    app.error(req, 502, &format!("no upstream named {upstream:?}"))
}

/// An absolute-form request in proxy mode.
pub(crate) async fn proxy(app: &App, req: &Request) -> Reply {
    app.error(req, 403, "proxying is not enabled")
}
