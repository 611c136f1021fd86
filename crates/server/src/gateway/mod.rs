//! The gateway (502, 504, 203) and the forward proxy (407, 403, in [`proxy`]).
//!
//! `/gateway/{upstream}/{path}` forwards to an upstream named with `--upstream NAME=URL` or to a
//! built-in one: `broken` (answers invalid HTTP; `/gateway/broken/{kind}` picks how, see
//! [`builtin::BROKEN`]), `refused` (nothing listening), `hang` (accepts, never answers) and
//! `self` (this server). With `--proxy`, absolute-form requests (`GET http://host/path`) are
//! forwarded too, after `Proxy-Authorization` (407), and only to those same upstreams and to
//! statuslab itself (403 for any other host, before any connection is made): never an open
//! proxy.
//!
//! The upstream side is statuslab's own HTTP/1.1 client ([`client`]): one request per
//! connection, every response byte checked, everything bounded: connect time, the request's
//! `timeout` parameter or `--gateway-max-wait` for the whole exchange, `--max-head-bytes` and
//! `--max-headers` for the response head, `--max-body` for its content.
//!
//! Codes: an invalid response or a failed connection gives 502; no complete answer within
//! the wait gives 504 (the detail says which bound fired); a 200 changed by `?transform=` gives
//! 203; any other upstream answer passes through with its code and end-to-end headers.

mod builtin;
mod transform;

pub(crate) mod proxy;

use crate::config::Upstream;
use crate::content::params::{self, Bare};
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::wire::client::{self, ClientLimits, Failure};
use crate::wire::reply::{Body, Interim, Reply, known, put_header};
use crate::wire::request::Request;
use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Version};
use statuslab_catalog::Status;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;
use transform::Transform;

/// Longest a connection to an upstream may take to open (within the overall wait).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Statuslab hops a request may already have made (counted in `Via`) before the next one is
/// refused with 508: `/gateway/self/gateway/self/…` cannot fan out without end.
const MAX_HOPS: usize = 8;
/// The built-in upstreams.
const BUILTIN: [&str; 4] = ["broken", "refused", "hang", "self"];
/// Header fields that describe one connection, not the message (RFC 9110 §7.6.1), plus the
/// pre-standard `Keep-Alive` and `Proxy-Connection`, and this proxy's own credentials. Never
/// forwarded in either direction. (`Proxy-Authenticate` does pass back: a 407 from an upstream
/// stays a valid 407, which must carry its challenge.)
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Where a forwarded request goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The upstream's name, for messages.
    name: String,
    dest: Dest,
    /// The `Host` sent upstream.
    authority: String,
    /// The upstream URL's path without a trailing slash, prefixed to forwarded paths.
    base: String,
}

#[derive(Debug, Clone)]
enum Dest {
    /// A TCP connection to host and port (configured upstreams, `self`, `refused`).
    Tcp { host: String, port: u16 },
    /// The in-process fake upstream that answers invalid HTTP.
    Broken,
    /// The in-process fake upstream that never answers.
    Hang,
}

impl Target {
    fn upstream(u: &Upstream, with_base: bool) -> Target {
        let host = u.url.host().unwrap_or("");
        let authority = match u.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Target {
            name: u.name.clone(),
            dest: Dest::Tcp {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port: u.url.port_u16().unwrap_or(80),
            },
            authority,
            base: if with_base {
                u.url.path().trim_end_matches('/').to_owned()
            } else {
                String::new()
            },
        }
    }

    fn tcp(name: &str, addr: SocketAddr) -> Target {
        Target {
            name: name.to_owned(),
            dest: Dest::Tcp {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
            authority: addr.to_string(),
            base: String::new(),
        }
    }

    fn fake(name: &str, dest: Dest) -> Target {
        Target {
            name: name.to_owned(),
            dest,
            authority: name.to_owned(),
            base: String::new(),
        }
    }
}

/// Statuslab's own address, from `--listen` (an unspecified address means loopback). `None`
/// while it listens on port 0: the bound port is not in the configuration.
fn own_addr(ctx: &Ctx) -> Option<SocketAddr> {
    let listen = ctx.cfg.listen;
    if listen.port() == 0 {
        return None;
    }
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SocketAddr::new(ip, listen.port()))
}

/// Whether `host:port` names statuslab itself: its listening address, or loopback (and
/// `localhost`) when it listens on all addresses or on loopback.
fn names_self(ctx: &Ctx, host: &str, port: u16) -> bool {
    let listen = ctx.cfg.listen;
    if listen.port() == 0 || port != listen.port() {
        return false;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let local = listen.ip().is_unspecified() || listen.ip().is_loopback();
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip == listen.ip() || (listen.ip().is_unspecified() && ip.is_loopback()),
        Err(_) => bare.eq_ignore_ascii_case("localhost") && local,
    }
}

fn own_target(ctx: &Ctx) -> Result<Target, String> {
    own_addr(ctx)
        .map(|a| Target::tcp("self", a))
        .ok_or_else(|| {
            "statuslab does not know its own address: it listens on port 0 (give --listen a port)"
                .to_owned()
        })
}

/// The upstream called `name`: a configured one (which may shadow a built-in), or a built-in;
/// `None` for an unknown name.
fn resolve(ctx: &Ctx, name: &str, ignore_case: bool) -> Option<Result<Target, String>> {
    let same = |a: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(name)
        } else {
            a == name
        }
    };
    if let Some(u) = ctx.cfg.upstreams.iter().find(|u| same(&u.name)) {
        return Some(Ok(Target::upstream(u, true)));
    }
    let builtin = BUILTIN.into_iter().find(|b| same(b))?;
    Some(match builtin {
        "broken" => Ok(Target::fake("broken", Dest::Broken)),
        "hang" => Ok(Target::fake("hang", Dest::Hang)),
        "refused" => Ok(Target::tcp(
            "refused",
            SocketAddr::from(([127, 0, 0, 1], builtin::REFUSED_PORT)),
        )),
        _ => own_target(ctx),
    })
}

/// Every upstream name, for messages.
fn names(ctx: &Ctx) -> String {
    let mut all: Vec<&str> = ctx.cfg.upstreams.iter().map(|u| u.name.as_str()).collect();
    for b in BUILTIN {
        if !all.contains(&b) {
            all.push(b);
        }
    }
    all.join(", ")
}

/// How long the gateway waits for an upstream, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The request's `timeout` parameter.
    Param(Duration),
    /// `--gateway-max-wait`.
    Max(Duration),
}

impl Wait {
    fn limit(self) -> Duration {
        match self {
            Wait::Param(d) | Wait::Max(d) => d,
        }
    }

    fn explain(self) -> String {
        match self {
            Wait::Param(d) => format!(
                "the request's timeout parameter (timeout={})",
                humantime::format_duration(d)
            ),
            Wait::Max(d) => format!(
                "the gateway's maximum wait of {} (--gateway-max-wait; a request may ask for less with ?timeout=)",
                humantime::format_duration(d)
            ),
        }
    }
}

/// Statuslab's own query parameters on a gateway request; the rest goes upstream.
#[derive(Debug, Default)]
struct Params {
    timeout: Option<Duration>,
    transforms: Vec<Transform>,
    /// The other parameters, exactly as received.
    rest: String,
}

fn params(query: Option<&str>, max_wait: Duration) -> Result<Params, String> {
    let mut p = Params::default();
    let mut rest: Vec<&str> = Vec::new();
    for piece in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let Some((key, value)) = form_urlencoded::parse(piece.as_bytes()).next() else {
            rest.push(piece);
            continue;
        };
        match &*key {
            "timeout" => {
                if p.timeout.is_some() {
                    return Err("timeout= is given more than once".to_owned());
                }
                p.timeout = Some(parse_timeout(&value, max_wait)?);
            }
            "transform" => {
                if p.transforms.len() >= transform::MAX_TRANSFORMS {
                    return Err(format!("at most {} transforms", transform::MAX_TRANSFORMS));
                }
                p.transforms.push(value.parse()?);
            }
            _ => rest.push(piece),
        }
    }
    p.rest = rest.join("&");
    Ok(p)
}

/// `timeout=`: milliseconds (`500`) or a duration (`500ms`, `2s`), positive and at most the
/// gateway's maximum wait.
fn parse_timeout(s: &str, max: Duration) -> Result<Duration, String> {
    let d = params::duration("timeout", s, Bare::Millis, max, "--gateway-max-wait")?;
    if d.is_zero() {
        return Err("timeout=0: the timeout must be positive".to_owned());
    }
    Ok(d)
}

/// Whether a forwarded path has a `.` or `..` segment (also percent-encoded, or hidden behind
/// an encoded slash), which could climb out of an upstream's base path.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|seg| {
        let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        decoded.split(['/', '\\']).any(|s| s == "." || s == "..")
    })
}

/// `/gateway/{upstream}/{*path}`.
pub(crate) async fn forward(
    ctx: &Ctx,
    req: &Request,
    upstream: &str,
    path: &str,
) -> Result<Reply, Problem> {
    let target = match resolve(ctx, upstream, false) {
        Some(Ok(t)) => t,
        Some(Err(why)) => return Err(Problem::new(502, why)),
        None => {
            let detail = format!(
                "no upstream named {upstream:?}; the upstreams are: {} (configure more with --upstream NAME=URL)",
                names(ctx)
            );
            return Err(Problem::new(404, detail));
        }
    };
    let params = match params(req.uri.query(), ctx.cfg.gateway_max_wait) {
        Ok(p) => p,
        Err(why) => return Err(Problem::new(400, why)),
    };
    if has_dot_segment(path) {
        return Err(Problem::new(
            400,
            "the forwarded path may not contain . or .. segments",
        ));
    }
    let mut to = format!("{}/{path}", target.base);
    if !params.rest.is_empty() {
        to.push('?');
        to.push_str(&params.rest);
    }
    let wait = params
        .timeout
        .map_or(Wait::Max(ctx.cfg.gateway_max_wait), Wait::Param);
    relay(ctx, req, &target, &to, &params.transforms, wait).await
}

/// Statuslab hops already recorded in the request's `Via`.
fn hops(req: &Request) -> usize {
    req.headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|entry| {
            entry
                .split_whitespace()
                .nth(1)
                .is_some_and(|by| by.eq_ignore_ascii_case("statuslab"))
        })
        .count()
}

/// Forwards the request and turns the upstream's answer (or its absence) into the reply.
async fn relay(
    ctx: &Ctx,
    req: &Request,
    target: &Target,
    to: &str,
    transforms: &[Transform],
    wait: Wait,
) -> Result<Reply, Problem> {
    let hops = hops(req);
    if hops >= MAX_HOPS {
        let detail = format!(
            "the request has already passed through statuslab {hops} times (see Via): a forwarding loop"
        );
        return Err(Problem::new(508, detail));
    }
    let headers = outbound_headers(req, !transforms.is_empty());
    let request = request_bytes(&req.method, to, &target.authority, &headers, &req.body);
    let limits = ClientLimits {
        head: ctx.cfg.max_head_bytes,
        headers: ctx.cfg.max_headers,
        body: ctx.cfg.max_body,
    };
    let sent = tokio::time::timeout(
        wait.limit(),
        send(&target.dest, &request, req.is_head(), limits),
    )
    .await;
    let response = match sent {
        Ok(Ok(response)) => response,
        Err(_elapsed) => {
            let detail = format!(
                "upstream {} did not answer within {}",
                target.name,
                wait.explain()
            );
            return Err(Problem::new(504, detail));
        }
        Ok(Err(Failure::Connect(why))) => {
            let detail = format!(
                "could not connect to upstream {} ({}): {why}",
                target.name, target.authority
            );
            return Err(Problem::new(502, detail));
        }
        Ok(Err(Failure::Invalid(why))) => {
            let detail = format!("upstream {} sent an invalid response: {why}", target.name);
            return Err(Problem::new(502, detail));
        }
    };
    respond(req, target, response, transforms)
}

async fn send(
    dest: &Dest,
    request: &[u8],
    head: bool,
    limits: ClientLimits,
) -> Result<client::Response, Failure> {
    match dest {
        Dest::Tcp { host, port } => {
            let connect = TcpStream::connect((host.as_str(), *port));
            let io = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(Ok(io)) => io,
                Ok(Err(e)) => return Err(Failure::Connect(e.to_string())),
                Err(_) => {
                    return Err(Failure::Connect(format!(
                        "no connection within {}",
                        humantime::format_duration(CONNECT_TIMEOUT)
                    )));
                }
            };
            let _ = io.set_nodelay(true);
            client::exchange(io, request, head, limits).await
        }
        Dest::Broken => client::exchange(builtin::broken(), request, head, limits).await,
        Dest::Hang => client::exchange(builtin::hang(), request, head, limits).await,
    }
}

/// The reply for an upstream's response: its code and end-to-end headers, `Via`, and for a
/// transformed 200, 203 with the transformed content.
fn respond(
    req: &Request,
    target: &Target,
    response: client::Response,
    transforms: &[Transform],
) -> Result<Reply, Problem> {
    let Ok(code) = Status::new(response.status) else {
        let detail = format!(
            "upstream {} answered status {}, outside 100-599",
            target.name, response.status
        );
        return Err(Problem::new(502, detail));
    };
    let mut headers = response.headers;
    strip_hop_by_hop(&mut headers);
    // A HEAD answer keeps the length the upstream announced (the wire layer writes it again).
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .filter(|_| req.is_head());
    headers.remove(header::CONTENT_LENGTH);
    let via = if response.minor == 0 {
        "1.0 statuslab"
    } else {
        "1.1 statuslab"
    };
    headers.append(header::VIA, HeaderValue::from_static(via));
    let mut reply = Reply::new(code);
    let mut body = response.body;
    if response.status == 200 && !transforms.is_empty() && !forbids_transform(&headers) {
        if !req.is_head() {
            if let Some(coding) = content_coding(&headers) {
                let detail = format!(
                    "upstream {}'s content has Content-Encoding {coding}; statuslab transforms only unencoded content",
                    target.name
                );
                return Err(Problem::new(502, detail));
            }
            body = match transform::apply_all(transforms, body) {
                Ok(b) => b,
                Err(why) => {
                    let detail = format!(
                        "upstream {}'s content cannot be transformed: {why}",
                        target.name
                    );
                    return Err(Problem::new(502, detail));
                }
            };
        }
        // Validators and digests described the upstream's bytes, not these.
        for name in [
            "etag",
            "content-md5",
            "digest",
            "content-digest",
            "repr-digest",
        ] {
            headers.remove(name);
        }
        reply.status = known(203);
    }
    reply.headers = headers;
    reply.body = match announced {
        Some(n) if reply.status.code() != 203 => Body::Unsent(n),
        _ if body.is_empty() => Body::Empty,
        _ => Body::Full(body),
    };
    reply.interim = response
        .interim
        .into_iter()
        .map(|(code, mut headers)| {
            strip_hop_by_hop(&mut headers);
            Interim {
                status: code,
                headers,
            }
        })
        .collect();
    Ok(reply)
}

/// Whether the upstream forbids transformation (`Cache-Control: no-transform`, RFC 9111 §5.2.2.6):
/// then the 200 passes through unchanged.
fn forbids_transform(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
}

fn content_coding(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_ENCODING)?;
    let v = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
    (!v.is_empty() && !v.eq_ignore_ascii_case("identity")).then_some(v)
}

/// Removes the hop-by-hop fields and every field `Connection` names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// The request's headers as forwarded: end-to-end fields only, plus `Via`, `X-Forwarded-For`
/// and `Forwarded`. `Host` and the framing are written by [`request_bytes`].
fn outbound_headers(req: &Request, transforming: bool) -> HeaderMap {
    let mut h = req.headers.clone();
    strip_hop_by_hop(&mut h);
    h.remove(header::HOST);
    h.remove(header::CONTENT_LENGTH);
    // The content is already read; an upstream's 100 Continue would mean nothing.
    h.remove(header::EXPECT);
    if transforming {
        // The transform needs the whole, unencoded representation.
        h.remove(header::ACCEPT_ENCODING);
        h.remove(header::RANGE);
        h.remove(header::IF_RANGE);
    }
    if req.method == Method::OPTIONS
        && let Some(n) = proxy::max_forwards(req)
    {
        h.insert(header::MAX_FORWARDS, HeaderValue::from(n.saturating_sub(1)));
    }
    let via = match req.version {
        Version::HTTP_10 => "1.0 statuslab",
        Version::HTTP_2 => "2 statuslab",
        _ => "1.1 statuslab",
    };
    h.append(header::VIA, HeaderValue::from_static(via));
    let ip = req.peer.ip();
    let prior: Vec<&str> = h
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = if prior.is_empty() {
        ip.to_string()
    } else {
        format!("{}, {ip}", prior.join(", "))
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
    let node = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut forwarded = format!("for={node};proto=http");
    if let Some(host) = req.host() {
        let escaped = host.replace('\\', "\\\\").replace('"', "\\\"");
        forwarded.push_str(&format!(";host=\"{escaped}\""));
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        h.append(header::FORWARDED, v);
    }
    h
}

/// The request as sent upstream: HTTP/1.1, `Host` = the upstream, one request per connection.
fn request_bytes(
    method: &Method,
    target: &str,
    authority: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> BytesMut {
    let mut out = BytesMut::with_capacity(512 + body.len());
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    put_header(&mut out, b"host", authority.as_bytes());
    for (name, value) in headers {
        put_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        put_header(
            &mut out,
            b"content-length",
            itoa::Buffer::new().format(body.len()).as_bytes(),
        );
    }
    put_header(&mut out, b"connection", b"close");
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out
}

#[cfg(test)]
mod tests;
