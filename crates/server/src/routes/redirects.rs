//! httpbin's redirect routes: `/redirect/{n}`, `/relative-redirect/{n}`,
//! `/absolute-redirect/{n}` (chains ending at `/get`) and `/redirect-to?url=&status_code=`,
//! which sends clients only to relative targets, the request's own host or a host the operator
//! allowed with `--redirect-allow`: statuslab is never an open redirector.

use super::echo;
use super::on_demand::check_location_allowing;
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use http::header::{self, HeaderValue};

/// Longest chain `/redirect/{n}` and its kin build; longer is 400 (every client gives up long
/// before: curl after 50 hops, requests after 30).
pub(crate) const MAX_REDIRECTS: u32 = 100;

/// How a chain names its next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chain {
    /// `/redirect/{n}`: relative, or absolute with `?absolute=true`.
    Either,
    /// `/relative-redirect/{n}`.
    Relative,
    /// `/absolute-redirect/{n}`.
    Absolute,
}

fn count(n: &str) -> Result<u32, Problem> {
    match n.parse::<u32>() {
        Ok(n) if (1..=MAX_REDIRECTS).contains(&n) => Ok(n),
        _ => Err(Problem::new(
            400,
            format!("{n:?}: the number of redirects is 1 to {MAX_REDIRECTS}"),
        )),
    }
}

/// One hop of a redirect chain: 302 to the next hop, the last one to `/get`.
pub(crate) fn chain(ctx: &Ctx, req: &Request, n: &str, kind: Chain) -> Result<Reply, Problem> {
    let n = count(n)?;
    let absolute = match kind {
        Chain::Absolute => true,
        Chain::Relative => false,
        Chain::Either => echo::query(req, "absolute").is_some_and(|v| v == "true"),
    };
    let path = match (n, kind, absolute) {
        (1, _, _) => "/get".to_owned(),
        (_, Chain::Either, true) | (_, Chain::Absolute, _) => {
            format!("/absolute-redirect/{}", n - 1)
        }
        _ => format!("/relative-redirect/{}", n - 1),
    };
    let target = if absolute {
        let own = echo::url(ctx, req);
        // Scheme and authority of the request's own URL.
        let origin_end = own
            .find("://")
            .and_then(|i| own[i + 3..].find('/').map(|j| i + 3 + j))
            .unwrap_or(own.len());
        format!("{}{path}", &own[..origin_end])
    } else {
        path
    };
    Ok(found(302, &target))
}

/// A redirect with an empty body (as httpbin sends them).
fn found(code: u16, location: &str) -> Reply {
    let mut reply = Reply::new(known(code));
    if let Ok(v) = HeaderValue::from_str(location) {
        reply.headers.insert(header::LOCATION, v);
    }
    reply
}

/// `url` with each character outside ASCII percent-encoded (its UTF-8 bytes, `é` → `%C3%A9`), as
/// browsers do, since a Location value is ASCII (RFC 9110 §5.5, RFC 3986 §2.1). Control and
/// whitespace characters stay as they are, for the location check to refuse.
fn percent_encode_non_ascii(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        if c.is_ascii() || c.is_control() || c.is_whitespace() {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// `/redirect-to?url=…&status_code=…`: a redirect (302 unless `status_code` names another
/// 3xx) to a relative target, the request's own host or a `--redirect-allow` host; any other
/// target is 400, naming the flag.
pub(crate) fn redirect_to(ctx: &Ctx, req: &Request) -> Result<Reply, Problem> {
    let mut url = None;
    let mut code = 302;
    for (k, v) in echo::query_pairs(req) {
        match k.as_str() {
            "url" => url = Some(v),
            "status_code" => {
                code = match v.parse::<u16>() {
                    Ok(c) if (300..=399).contains(&c) => c,
                    _ => {
                        return Err(Problem::new(
                            400,
                            format!("status_code={v:?}: a redirect code is 300 to 399"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    let url = url.ok_or_else(|| Problem::new(400, "the url parameter is required"))?;
    let url = percent_encode_non_ascii(&url);
    let location =
        check_location_allowing(&url, req, &ctx.cfg.redirect_allow).map_err(|why| {
            Problem::new(
                400,
                format!(
                    "{why}; relative targets and the request's own host are allowed, other hosts only when the operator allows them with --redirect-allow HOST (STATUSLAB_REDIRECT_ALLOW)"
                ),
            )
        })?;
    let mut reply = Reply::new(known(code));
    reply.headers.insert(header::LOCATION, location);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use crate::routes::redirects::percent_encode_non_ascii;

    /// Outside ASCII is percent-encoded (UTF-8); ASCII, controls and spaces stay for the check.
    #[test]
    fn non_ascii_is_percent_encoded() {
        assert_eq!(percent_encode_non_ascii("/get"), "/get");
        assert_eq!(
            percent_encode_non_ascii("/caf\u{e9}?q=\u{1f600}"),
            "/caf%C3%A9?q=%F0%9F%98%80"
        );
        assert_eq!(
            percent_encode_non_ascii("/a\u{a0}b\u{85}"),
            "/a\u{a0}b\u{85}"
        );
    }
}
