//! The forward proxy (407, 403): absolute-form requests (`GET http://host/path`) with
//! `--proxy`, after `Proxy-Authorization`, and only to the configured upstreams and to
//! statuslab itself (403 for any other host, before any connection is made): never an open
//! proxy.

use super::{Target, Wait, names, names_self, own_target, relay, resolve};
use crate::ctx::Ctx;
use crate::edge::auth::{basic_credentials, credentials_match};
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use http::Method;
use http::header::{self, HeaderValue};

/// The proxy's challenge.
const PROXY_CHALLENGE: &str = "Basic realm=\"statuslab proxy\", charset=\"UTF-8\"";

/// An absolute-form request in proxy mode.
pub(crate) async fn forward(ctx: &Ctx, req: &Request) -> Result<Reply, Problem> {
    let target = admit(ctx, req)?;
    if req.method == Method::OPTIONS && max_forwards(req) == Some(0) {
        // Max-Forwards: 0 is for this hop to answer itself (RFC 9110 §7.6.2).
        return Ok(Reply::new(known(204)).with_header(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        ));
    }
    let path = match req.uri.path() {
        "" => "/",
        p => p,
    };
    let mut to = format!("{}{path}", target.base);
    if let Some(q) = req.uri.query() {
        to.push('?');
        to.push_str(q);
    }
    relay(
        ctx,
        req,
        &target,
        &to,
        &[],
        Wait::Max(ctx.cfg.gateway_max_wait),
    )
    .await
}

/// The proxy's checks, from the head alone: `Proxy-Authorization` (407), then the target
/// (403 for any host that is not an upstream or statuslab itself). The connection layer may
/// run this before it reads a proxied upload.
pub(crate) fn admit(ctx: &Ctx, req: &Request) -> Result<Target, Problem> {
    if let Some((user, pass)) = &ctx.cfg.proxy_user {
        let given = basic_credentials(req.header(header::PROXY_AUTHORIZATION));
        let ok = given
            .as_ref()
            .is_some_and(|g| credentials_match(g, user, pass));
        if !ok {
            let detail = if req.headers.contains_key(header::PROXY_AUTHORIZATION) {
                "the Proxy-Authorization credentials are not valid for this proxy"
            } else {
                "this proxy needs Basic credentials in Proxy-Authorization (--proxy-user)"
            };
            return Err(Problem::new(407, detail).with_header(
                header::PROXY_AUTHENTICATE,
                HeaderValue::from_static(PROXY_CHALLENGE),
            ));
        }
    }
    proxy_target(ctx, req).map_err(|(code, why)| Problem::new(code, why))
}

/// The upstream an absolute-form target names: a configured upstream's host and port, an
/// upstream's name (`http://api/…`, `http://hang/…`), or statuslab's own address.
fn proxy_target(ctx: &Ctx, req: &Request) -> Result<Target, (u16, String)> {
    let scheme = req.uri.scheme_str().unwrap_or("");
    if !scheme.eq_ignore_ascii_case("http") {
        return Err((
            403,
            format!("statuslab proxies only http:// targets, not {scheme}://"),
        ));
    }
    let Some(authority) = req.uri.authority() else {
        return Err((403, "the target names no host".to_owned()));
    };
    let (host, port) = (authority.host(), authority.port_u16());
    let configured = ctx.cfg.upstreams.iter().find(|u| {
        u.url.host().is_some_and(|h| h.eq_ignore_ascii_case(host))
            && u.url.port_u16().unwrap_or(80) == port.unwrap_or(80)
    });
    if let Some(u) = configured {
        return Ok(Target::upstream(u, false));
    }
    if port.is_none()
        && let Some(found) = resolve(ctx, host, true)
    {
        return found.map_err(|why| (502, why));
    }
    if names_self(ctx, host, port.unwrap_or(80)) {
        return own_target(ctx).map_err(|why| (502, why));
    }
    let shown = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    Err((
        403,
        format!(
            "this proxy forwards only to its upstreams ({}) and to statuslab itself; {shown} is neither, so nothing was sent to it",
            names(ctx)
        ),
    ))
}

pub(super) fn max_forwards(req: &Request) -> Option<u32> {
    req.header(header::MAX_FORWARDS)?.trim().parse().ok()
}
