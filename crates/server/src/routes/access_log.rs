//! The access log: one event per answered request (target `statuslab::access`), with secrets
//! in paths redacted.

use crate::wire::reply::Reply;
use crate::wire::request::Request;
use std::time::Instant;

/// The path as logged: httpbin's `/basic-auth/{user}/{passwd}` carries a password in the path,
/// which never reaches the log.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/basic-auth/", "/hidden-basic-auth/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let user = rest.split('/').next().unwrap_or("");
            return format!("{prefix}{user}/<redacted>").into();
        }
    }
    path.into()
}

/// One access-log event per request.
pub(crate) fn log(req: &Request, reply: &Reply, started: Instant) {
    tracing::info!(
        target: "statuslab::access",
        peer = %req.peer,
        method = %req.method,
        path = &*loggable_path(req.uri.path()),
        version = ?req.version,
        status = reply.status.code(),
        bytes = reply.body.len(),
        micros = started.elapsed().as_micros() as u64,
    );
}
