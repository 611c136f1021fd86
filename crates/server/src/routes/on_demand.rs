//! On-demand codes: `/status/{codes}`, `/{code}`, `/random/{list}`, each answered in full dress.
//!
//! "Full dress" is driven by the catalog: for every header the code's wire rules call for,
//! [`dress_header`] knows how to produce a faithful value; framing (no content on 1xx/204/304,
//! `Content-Length: 0` on 205) is applied by the protocol writers from the same rules.

use super::methods::ANY;
use crate::content::negotiate::Format;
use crate::content::params::{self, Bare};
use crate::content::range::{self, RangeRequest};
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::wire::fault::{Fault, FaultKind};
use crate::wire::reply::{Body, Interim, Prebuilt, Reply, is_framing_header, known};
use crate::wire::request::Request;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Version};
use percent_encoding::percent_decode_str;
use statuslab_catalog::{BodyRule, Status};
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Most codes in one list.
const MAX_CHOICES: usize = 100;
/// Most headers added with `header=` and `X-HttpStatus-Response-*`.
const MAX_EXTRA_HEADERS: usize = 32;
/// Longest value of an added header.
const MAX_HEADER_VALUE: usize = 4096;
/// Longest `Retry-After` in seconds (one year).
const MAX_RETRY_AFTER: u64 = 365 * 24 * 3600;

/// Length of the deterministic representation served by 206 and named by 416.
pub const REPRESENTATION_LEN: usize = 1024;
/// The deterministic representation: byte `i` is `b'a' + i % 26`.
static REPRESENTATION: LazyLock<Bytes> = LazyLock::new(|| {
    (0..REPRESENTATION_LEN)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
});
/// The representation's validators, kept on 206 and 304.
const ETAG: &str = "\"statuslab-representation-1\"";
const LAST_MODIFIED: &str = "Wed, 01 Jan 2025 00:00:00 GMT";
/// The byte range served by `/status/206` when the request has no `Range`.
const DEFAULT_RANGE: &str = "bytes=0-99";

/// The plain on-demand answers, dressed once at start: `GET /status/{code}` and `GET /{code}`
/// with no query, no `X-HttpStatus-*` field and no `Accept` other than `*/*` get the same
/// reply every time (but for `Date`), so it is dressed by [`dress`] itself when the server
/// starts and kept with its header fields already rendered ([`Prebuilt`]). Codes whose dress
/// reads the request (1xx, 206 and its validators, 305's `Host`, the closes and upgrades of
/// 408 and 426) are always dressed per request.
#[derive(Debug)]
pub(crate) struct Plain {
    /// By code − 100: the reply, prebuilt.
    by_code: Vec<Option<Arc<Prebuilt>>>,
}

impl Plain {
    /// Dresses every plain answer; `finish` adds what every reply of the application carries.
    pub(crate) fn new(ctx: &Ctx, finish: impl Fn(Reply) -> Reply) -> Plain {
        let by_code = (100..=599)
            .map(|c| {
                let code = Status::new(c).ok()?;
                if c < 200 || matches!(c, 206 | 305 | 408 | 426) {
                    return None;
                }
                let req = Request {
                    method: Method::GET,
                    uri: http::Uri::try_from(format!("/status/{c}")).ok()?,
                    version: Version::HTTP_11,
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                    peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                };
                let reply = finish(dress(ctx, &req, code, &Options::default()).ok()?);
                let fixed = reply.interim.is_empty()
                    && !reply.close
                    && reply.upgrade.is_none()
                    && reply.fault.is_none()
                    && !reply.headers.contains_key(header::DATE)
                    && matches!(reply.body, Body::Empty | Body::Full(_));
                fixed.then(|| Arc::new(Prebuilt::new(code, reply.headers, reply.body)))
            })
            .collect();
        Plain { by_code }
    }

    /// Makes `reply` (a [`Reply::new`]) the prebuilt reply to `req` for the route parameter
    /// `param`, if the request is plain; says whether it did.
    pub(crate) fn answer(&self, req: &Request, param: &str, reply: &mut Reply) -> bool {
        self.answer_in(req, param, reply).is_some()
    }

    fn answer_in(&self, req: &Request, param: &str, reply: &mut Reply) -> Option<()> {
        if req.method != Method::GET || req.uri.query().is_some() {
            return None;
        }
        let &[a, b, c] = param.as_bytes() else {
            return None;
        };
        if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
            return None;
        }
        for (name, value) in &req.headers {
            let plain = if name == header::ACCEPT {
                value.as_bytes() == b"*/*"
            } else {
                !name.as_str().starts_with("x-httpstatus-")
            };
            if !plain {
                return None;
            }
        }
        let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
        let prebuilt = self
            .by_code
            .get(usize::from(code).checked_sub(100)?)?
            .as_ref()?;
        reply.status = known(code);
        reply.body = prebuilt.body().clone();
        reply.prebuilt = Some(Arc::clone(prebuilt));
        Some(())
    }
}

/// Answers an on-demand request: picks the code, waits the asked delay, dresses the reply.
pub(crate) async fn answer(
    ctx: &Ctx,
    req: &Request,
    param: &str,
    ranges: bool,
) -> Result<Reply, Problem> {
    let list = percent_decode_str(param).decode_utf8_lossy();
    let choice = pick(&list, ranges).map_err(|detail| Problem::new(400, detail))?;
    let opts = Options::parse(ctx, req).map_err(|detail| Problem::new(400, detail))?;
    let code = match choice {
        Choice::Code(code) => code,
        Choice::Fault(kind) => {
            if !opts.sleep.is_zero() {
                tokio::time::sleep(opts.sleep).await;
            }
            return fault_reply(ctx, req, kind, &opts);
        }
    };
    if opts.then.is_some() && list.len() == 3 && !code.is_informational() {
        return Err(Problem::new(
            400,
            format!("then= names the final code after an interim 1xx; {code} is not one"),
        ));
    }
    if !opts.sleep.is_zero() {
        tokio::time::sleep(opts.sleep).await;
    }
    dress(ctx, req, code, &opts)
}

/// Parses a code list and picks one: `404`, `500,503` (uniform), `200:0.9,500:0.1`
/// (weighted, as httpbin), and with `ranges` also `200,500-504` (httpstat.us; each code of a
/// range weighs as much as a single code). Ranges are sampled, never expanded, so
/// `/random/100-599` costs no more than `/random/200`.
pub(crate) fn pick(list: &str, ranges: bool) -> Result<Choice, String> {
    if list.len() == 3 {
        return parse_code(list).map(Choice::Code);
    }
    // Each item: the codes lo..=hi, each of weight `w`.
    let mut items: Vec<(u16, u16, f64)> = Vec::new();
    for item in list.split(',') {
        if items.len() >= MAX_CHOICES {
            return Err(format!("too many codes: at most {MAX_CHOICES} in one list"));
        }
        let item = item.trim();
        let (code, weight) = match item.split_once(':') {
            Some((c, w)) => {
                let w: f64 = w
                    .trim()
                    .parse()
                    .map_err(|_| format!("weight {w:?} in {item:?} is not a number"))?;
                if !(w.is_finite() && w >= 0.0) {
                    return Err(format!(
                        "weight {w} in {item:?} must be a finite number >= 0"
                    ));
                }
                (c.trim(), w)
            }
            None => (item, 1.0),
        };
        match code.split_once('-') {
            Some((lo, hi)) if ranges => {
                let (lo, hi) = (parse_code(lo)?, parse_code(hi)?);
                if lo > hi {
                    return Err(format!("range {code:?} is empty: {lo} > {hi}"));
                }
                items.push((lo.code(), hi.code(), weight));
            }
            _ => {
                // A fault's name stands in a list as its stored number (900 + its index).
                let c = match FaultKind::from_name(code) {
                    Some(kind) => kind.code(),
                    None => parse_code(code)?.code(),
                };
                items.push((c, c, weight));
            }
        }
    }
    let share = |&(lo, hi, w): &(u16, u16, f64)| w * f64::from(hi - lo + 1);
    let total: f64 = items.iter().map(share).sum();
    if total <= 0.0 {
        return Err("the weights add up to 0: no code can be picked".to_owned());
    }
    let mut x = fastrand::f64() * total;
    for item in &items {
        let (lo, hi, w) = *item;
        if x < share(item) {
            // `x / w` < the range's length, but stays in it even if rounding says otherwise.
            let offset = (x / w) as u16;
            return Ok(Choice::from_code(lo.saturating_add(offset).min(hi)));
        }
        x -= share(item);
    }
    let (lo, _, _) = items
        .iter()
        .rev()
        .find(|i| i.2 > 0.0)
        .copied()
        .unwrap_or(items[0]);
    Ok(Choice::from_code(lo))
}

/// What a list picked: a status code or a connection fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Answer with this code, in full dress.
    Code(Status),
    /// Break the answer this way.
    Fault(FaultKind),
}

impl Choice {
    /// A picked number: a fault's stored number, or a code in 100–599.
    pub(crate) fn from_code(code: u16) -> Choice {
        FaultKind::from_code(code).map_or_else(|| Choice::Code(known(code)), Choice::Fault)
    }

    /// The code, or the fault's stored number.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn code(self) -> u16 {
        match self {
            Choice::Code(s) => s.code(),
            Choice::Fault(k) => k.code(),
        }
    }
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::Code(s) => write!(f, "{}", s.code()),
            Choice::Fault(k) => f.write_str(k.name()),
        }
    }
}

/// Longest `duration=` of a fault, and its default for the slow kinds.
const DEFAULT_FAULT_DURATION: Duration = Duration::from_secs(2);

/// `/fault/{kind}`: the connection fault `kind` (see `FaultKind`), with `?duration=`,
/// `?jitter=` and `?code=` (the code of the answer a fault breaks or delays; 200 by default).
pub(crate) async fn fault(ctx: &Ctx, req: &Request, kind: &str) -> Result<Reply, Problem> {
    let kind = FaultKind::from_name(kind).ok_or_else(|| {
        let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
        Problem::new(
            404,
            format!(
                "no fault named {kind:?}; the faults are {}",
                names.join(", ")
            ),
        )
    })?;
    let opts = Options::parse(ctx, req).map_err(|detail| Problem::new(400, detail))?;
    if !opts.sleep.is_zero() {
        tokio::time::sleep(opts.sleep).await;
    }
    fault_reply(ctx, req, kind, &opts)
}

/// The answer a fault breaks (the full-dress `code=`, 200 by default), with the fault and its
/// timing: `duration=` (drip, slow head, slow close, stall; 2 s by default, a stall holds
/// until `--max-delay`), `jitter=` for latency (`MIN-MAX` or `MAX`, uniform; 0-1 s by
/// default).
pub(crate) fn fault_reply(
    ctx: &Ctx,
    req: &Request,
    kind: FaultKind,
    opts: &Options,
) -> Result<Reply, Problem> {
    let duration = match kind {
        FaultKind::Latency => {
            let (lo, hi) = opts
                .jitter
                .unwrap_or((Duration::ZERO, Duration::from_secs(1)));
            let span = hi.saturating_sub(lo).as_millis() as u64;
            lo + Duration::from_millis(fastrand::u64(0..=span))
        }
        FaultKind::Stall => opts.duration.unwrap_or(ctx.cfg.max_delay),
        _ => opts.duration.unwrap_or(DEFAULT_FAULT_DURATION),
    };
    let mut reply = dress(ctx, req, opts.code.unwrap_or(known(200)), opts)?;
    reply.fault = Some(Fault { kind, duration });
    Ok(reply)
}

fn parse_code(s: &str) -> Result<Status, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty code: expected a number in 100-599".to_owned());
    }
    s.parse::<Status>().map_err(|e| e.to_string())
}

/// What a request may ask of an on-demand reply.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// Wait this long before answering (`sleep`, `X-HttpStatus-Sleep`).
    pub(crate) sleep: Duration,
    /// `Retry-After` to send (`retry_after`).
    pub(crate) retry_after: Option<HeaderValue>,
    /// `Location` to send (`location`), checked to be same-origin.
    pub(crate) location: Option<HeaderValue>,
    /// Extra header fields (`header=Name:Value`, `X-HttpStatus-Response-Name`).
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// The final code after an interim 1xx (`then`).
    pub(crate) then: Option<Status>,
    /// Body format regardless of `Accept` (`format`).
    pub(crate) format: Option<Format>,
    /// Seconds a cache may keep the answer (`cache`); without it, `Cache-Control: no-store`.
    pub(crate) cache: Option<u32>,
    /// A fault's duration (`duration`).
    pub(crate) duration: Option<Duration>,
    /// The range a `latency` fault's delay is drawn from (`jitter=MIN-MAX` or `jitter=MAX`).
    pub(crate) jitter: Option<(Duration, Duration)>,
    /// The code of the answer a fault breaks or delays (`code`).
    pub(crate) code: Option<Status>,
}

impl Options {
    /// Reads the query string and the httpstat.us request headers.
    pub(crate) fn parse(ctx: &Ctx, req: &Request) -> Result<Options, String> {
        let mut o = Options::default();
        for (name, value) in &req.headers {
            let n = name.as_str();
            if n == "x-httpstatus-sleep" {
                let v = value
                    .to_str()
                    .map_err(|_| "X-HttpStatus-Sleep is not text".to_owned())?;
                o.sleep = parse_delay(v, ctx.cfg.max_delay)?;
            } else if let Some(target) = n.strip_prefix("x-httpstatus-response-") {
                let target = HeaderName::from_bytes(target.as_bytes())
                    .map_err(|_| format!("bad header name in {n}"))?;
                o.add_header(target, value.clone(), req)?;
            }
        }
        let Some(query) = req.uri.query() else {
            return Ok(o);
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "sleep" => o.sleep = parse_delay(&value, ctx.cfg.max_delay)?,
                "retry_after" | "retry-after" => o.retry_after = Some(parse_retry_after(&value)?),
                "location" => o.location = Some(check_location(&value, req)?),
                "header" => {
                    let (n, v) = value
                        .split_once(':')
                        .ok_or_else(|| format!("header={value:?}: expected Name:Value"))?;
                    let name = HeaderName::from_bytes(n.trim().as_bytes())
                        .map_err(|_| format!("header={value:?}: {n:?} is not a header name"))?;
                    let value = HeaderValue::from_str(v.trim()).map_err(|_| {
                        format!("header={value:?}: the value has characters a header cannot carry")
                    })?;
                    o.add_header(name, value, req)?;
                }
                "then" => {
                    let s = parse_code(&value)?;
                    if s.is_informational() {
                        return Err(format!(
                            "then={s}: the final code after an interim one must be 200-599"
                        ));
                    }
                    o.then = Some(s);
                }
                "duration" => {
                    o.duration = Some(params::duration(
                        "duration",
                        &value,
                        Bare::Millis,
                        ctx.cfg.max_delay,
                        "--max-delay",
                    )?);
                }
                "jitter" => {
                    let d = |s: &str| {
                        params::duration(
                            "jitter",
                            s,
                            Bare::Millis,
                            ctx.cfg.max_delay,
                            "--max-delay",
                        )
                    };
                    let (lo, hi) = match value.split_once('-') {
                        Some((lo, hi)) => (d(lo)?, d(hi)?),
                        None => (Duration::ZERO, d(&value)?),
                    };
                    if lo > hi {
                        return Err(format!("jitter={value}: the minimum is above the maximum"));
                    }
                    o.jitter = Some((lo, hi));
                }
                "code" => {
                    let s = parse_code(&value)?;
                    if s.is_informational() {
                        return Err(format!("code={s}: a fault breaks a final answer, 200-599"));
                    }
                    o.code = Some(s);
                }
                "cache" => {
                    let secs: u32 = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|&s| u64::from(s) <= MAX_RETRY_AFTER)
                        .ok_or_else(|| {
                            format!("cache={value:?}: expected seconds a cache may keep the answer, at most a year")
                        })?;
                    o.cache = Some(secs);
                }
                "format" => {
                    o.format = Some(Format::from_name(&value).ok_or_else(|| {
                        format!("format={value:?}: expected text, json, problem or html")
                    })?);
                }
                _ => {}
            }
        }
        if o.location.is_some() && o.headers.iter().any(|(n, _)| n == header::LOCATION) {
            return Err(
                "give the Location once: location= or header=Location:..., not both".to_owned(),
            );
        }
        Ok(o)
    }

    fn add_header(
        &mut self,
        name: HeaderName,
        value: HeaderValue,
        req: &Request,
    ) -> Result<(), String> {
        if is_framing_header(&name) {
            return Err(format!(
                "{name} is a framing header; statuslab sets it itself"
            ));
        }
        // Fields that send a client elsewhere get the same check as `location=`, so an
        // added header cannot make statuslab an open redirector.
        if name == header::LOCATION || name == header::CONTENT_LOCATION {
            let v = value
                .to_str()
                .map_err(|_| format!("the value of {name} is not text"))?;
            check_location(v, req).map_err(|e| format!("{name}: {e}"))?;
        } else if name.as_str() == "refresh" {
            return Err(
                "refresh redirects clients; use location= (checked to be same-host) instead"
                    .to_owned(),
            );
        }
        if value.len() > MAX_HEADER_VALUE {
            return Err(format!(
                "the value of {name} is longer than {MAX_HEADER_VALUE} bytes"
            ));
        }
        if self.headers.len() >= MAX_EXTRA_HEADERS {
            return Err(format!("at most {MAX_EXTRA_HEADERS} extra headers"));
        }
        self.headers.push((name, value));
        Ok(())
    }
}

/// Parses a delay: milliseconds (`250`) or a duration with a unit (`250ms`, `2s`, `1m`).
pub(crate) fn parse_delay(s: &str, max: Duration) -> Result<Duration, String> {
    params::duration("sleep", s, Bare::Millis, max, "--max-delay")
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn parse_retry_after(s: &str) -> Result<HeaderValue, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        if secs > MAX_RETRY_AFTER {
            return Err(format!(
                "retry_after={secs} is more than a year ({MAX_RETRY_AFTER} s)"
            ));
        }
        return Ok(HeaderValue::from(secs));
    }
    let date = httpdate::parse_http_date(s)
        .map_err(|_| format!("retry_after={s:?}: expected seconds or an HTTP date"))?;
    HeaderValue::from_str(&httpdate::fmt_http_date(date)).map_err(|e| e.to_string())
}

/// Accepts a relative reference or an absolute http(s) URI on the request's own host;
/// anything else would make statuslab an open redirector.
fn check_location(s: &str, req: &Request) -> Result<HeaderValue, String> {
    check_location_allowing(s, req, &[])
}

/// [`check_location`], also accepting hosts the operator allowed (`--redirect-allow`: a
/// host name, any port, or `host:port`).
pub(crate) fn check_location_allowing(
    s: &str,
    req: &Request,
    allow: &[String],
) -> Result<HeaderValue, String> {
    let refuse = |why: &str| Err(format!("location={s:?}: {why}"));
    if s.is_empty() {
        return refuse("empty");
    }
    if s.contains('\\') || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return refuse("backslashes, spaces and control characters are not allowed");
    }
    let scheme_end = s.find(':').filter(|&i| {
        let scheme = &s[..i];
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !s[..i].contains('/')
    });
    let authority = match scheme_end {
        Some(i) => {
            let scheme = s[..i].to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return refuse("only http and https URIs (or relative references) are allowed");
            }
            match s[i + 1..].strip_prefix("//") {
                Some(rest) => Some(rest),
                None => return refuse("an absolute URI needs a host"),
            }
        }
        None => s.strip_prefix("//"),
    };
    if let Some(rest) = authority {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let own = req.host().unwrap_or("");
        let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
        let allowed = allow
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name));
        if !allowed && (own.is_empty() || !host.eq_ignore_ascii_case(own)) {
            return refuse(
                "redirects to other hosts are refused (statuslab is not an open redirector)",
            );
        }
    }
    HeaderValue::from_str(s).or_else(|_| refuse("not a valid header value; percent-encode it"))
}

/// Builds the full-dress reply for `code`.
pub(crate) fn dress(
    ctx: &Ctx,
    req: &Request,
    code: Status,
    opts: &Options,
) -> Result<Reply, Problem> {
    let c = code.code();
    if c == 101 {
        return super::websocket::handshake(req);
    }
    if code.is_informational() {
        let then = opts.then.unwrap_or(known(200));
        let mut reply = dress(ctx, req, then, opts)?;
        // RFC 9110 §15.2: a server must not send a 1xx to an HTTP/1.0 client.
        if req.version != Version::HTTP_10 {
            let mut headers = HeaderMap::new();
            if c == 103 {
                headers.insert(
                    header::LINK,
                    HeaderValue::from_static("</style.css>; rel=preload; as=style"),
                );
            }
            reply.interim.insert(0, Interim { status: c, headers });
        }
        return Ok(reply);
    }
    if c == 206 {
        // The representation behind 206 has validators: a request that already holds it gets
        // 304; a range outside it gets 416 (a malformed Range is ignored: the default slice).
        if not_modified(req) {
            return dress(ctx, req, known(304), opts);
        }
        if let Some(asked) = req.header(header::RANGE)
            && range::parse(asked, REPRESENTATION_LEN as u64) == RangeRequest::Unsatisfiable
        {
            return dress(ctx, req, known(416), opts);
        }
    }
    let accept = req.headers.get(header::ACCEPT);
    let Some(format) = opts
        .format
        .or_else(|| Format::negotiate(accept, Format::Text))
    else {
        let detail = "none of the media types in Accept can be produced; available: text/plain, application/json, application/problem+json, text/html";
        return Err(Problem::new(406, detail));
    };
    let mut reply = Reply::new(code);
    if code.wire().body == BodyRule::Allowed {
        reply = reply.with_body(format.content_type(), ctx.bodies.get(code, format));
        if opts.format.is_none() {
            reply
                .headers
                .insert(header::VARY, HeaderValue::from_static("Accept"));
        }
    }
    // On-demand answers are test fixtures: a cache that kept one would hide the next.
    let cache_control = match opts.cache {
        None => HeaderValue::from_static("no-store"),
        Some(secs) => HeaderValue::from_str(&format!("max-age={secs}")).expect("digits"),
    };
    reply.headers.insert(header::CACHE_CONTROL, cache_control);
    for rule in code.wire().headers {
        dress_header(req, code, opts, rule.name, &mut reply);
    }
    if let Some(ra) = &opts.retry_after {
        reply.headers.insert(header::RETRY_AFTER, ra.clone());
    }
    if let Some(loc) = &opts.location {
        reply.headers.insert(header::LOCATION, loc.clone());
    }
    match c {
        413 | 429 | 503 if !reply.headers.contains_key(header::RETRY_AFTER) => {
            reply.headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(ctx.cfg.default_retry_after),
            );
        }
        408 => reply.close = true,
        451 => {
            reply.headers.insert(
                header::LINK,
                HeaderValue::from_static("</>; rel=\"blocked-by\""),
            );
        }
        300 => {
            for alt in ALTERNATIVES {
                reply
                    .headers
                    .append(header::LINK, HeaderValue::from_static(alt));
            }
        }
        _ => {}
    }
    // An asked-for field replaces the one statuslab dressed the reply with (so a singleton
    // such as Content-Type or Location is never sent twice); repeating a name adds values.
    let mut set: Vec<&HeaderName> = Vec::new();
    for (name, value) in &opts.headers {
        if set.contains(&name) {
            reply.headers.append(name.clone(), value.clone());
        } else {
            reply.headers.insert(name.clone(), value.clone());
            set.push(name);
        }
    }
    Ok(reply)
}

/// Whether a GET or HEAD already holds the representation behind 206 (`If-None-Match` names
/// its tag, or `If-Modified-Since` is not before its date; RFC 9110 §13.1.2–3).
fn not_modified(req: &Request) -> bool {
    if req.method != Method::GET && req.method != Method::HEAD {
        return false;
    }
    if let Some(tags) = req.header(header::IF_NONE_MATCH) {
        let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        return tags.split(',').any(|t| t.trim() == "*" || bare(t) == ETAG);
    }
    let since = req
        .header(header::IF_MODIFIED_SINCE)
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let modified = httpdate::parse_http_date(LAST_MODIFIED).expect("a valid date");
    since.is_some_and(|since| since >= modified)
}

/// The alternatives a 300 lists (the same status in each format); the first is preferred.
const ALTERNATIVES: &[&str] = &[
    "</status/200?format=json>; rel=\"alternate\"; type=\"application/json\"",
    "</status/200?format=html>; rel=\"alternate\"; type=\"text/html\"",
    "</status/200?format=text>; rel=\"alternate\"; type=\"text/plain\"",
];

/// Produces one header the code's wire rules call for.
fn dress_header(req: &Request, code: Status, opts: &Options, name: &str, reply: &mut Reply) {
    let h = &mut reply.headers;
    match name {
        "Location" if opts.location.is_none() => {
            let value = if code.code() == 305 {
                // 305 names the proxy to use: statuslab itself.
                let host = req.host().unwrap_or("localhost");
                HeaderValue::from_str(&format!("http://{host}/"))
                    .unwrap_or(HeaderValue::from_static("/"))
            } else if code.code() == 300 {
                HeaderValue::from_static("/status/200?format=json")
            } else {
                HeaderValue::from_static("/status/200")
            };
            h.insert(header::LOCATION, value);
        }
        "Allow" => {
            let others: Vec<&str> = ANY
                .iter()
                .filter(|m| **m != req.method)
                .map(Method::as_str)
                .collect();
            h.insert(
                header::ALLOW,
                HeaderValue::from_str(&others.join(", ")).expect("method names are tokens"),
            );
        }
        "WWW-Authenticate" => {
            h.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"statuslab\", charset=\"UTF-8\""),
            );
            h.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"statuslab\""),
            );
        }
        "Proxy-Authenticate" => {
            h.insert(
                header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"statuslab proxy\", charset=\"UTF-8\""),
            );
        }
        "Content-Range" => content_range(req, code, reply),
        "Upgrade" => {
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            if req.version != Version::HTTP_2 {
                h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            }
        }
        "ETag" if code.code() == 304 => {
            h.insert(header::ETAG, HeaderValue::from_static(ETAG));
            h.insert(
                header::LAST_MODIFIED,
                HeaderValue::from_static(LAST_MODIFIED),
            );
        }
        "Connection" if code.code() == 408 => {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
}

/// 206 serves the asked slice of the deterministic representation (or `bytes=0-99`);
/// 416 names the representation's length.
fn content_range(req: &Request, code: Status, reply: &mut Reply) {
    let len = REPRESENTATION_LEN as u64;
    let h = &mut reply.headers;
    if code.code() == 416 {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&range::unsatisfied(len)).expect("ascii"),
        );
        return;
    }
    let asked: Cow<'_, str> = req
        .header(header::RANGE)
        .map_or(Cow::Borrowed(DEFAULT_RANGE), Cow::Borrowed);
    let ranges = match range::parse(&asked, len) {
        RangeRequest::Partial(r) => r,
        // A whole-representation (or malformed, hence ignored) ask of /status/206 still
        // answers 206 with the default slice: the caller asked for this code. (An
        // unsatisfiable one got 416 in `dress`.)
        RangeRequest::Full | RangeRequest::Unsatisfiable => {
            match range::parse(DEFAULT_RANGE, len) {
                RangeRequest::Partial(r) => r,
                _ => unreachable!("the default range is satisfiable"),
            }
        }
    };
    h.insert(header::ETAG, HeaderValue::from_static(ETAG));
    h.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_static(LAST_MODIFIED),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let [one] = ranges.as_slice() {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&range::content_range(*one, len)).expect("ascii"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        reply.body = Body::Full(REPRESENTATION.slice(one.first as usize..=one.last as usize));
    } else {
        let ct = format!("multipart/byteranges; boundary={}", range::BOUNDARY);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&ct).expect("ascii"),
        );
        reply.body = Body::Full(range::multipart(
            &REPRESENTATION,
            "text/plain; charset=utf-8",
            &ranges,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks() {
        assert_eq!(pick("404", false).unwrap().code(), 404);
        for _ in 0..50 {
            let c = pick("500,503", false).unwrap().code();
            assert!(c == 500 || c == 503);
            assert_eq!(pick("200:0,500:1", false).unwrap().code(), 500);
            let r = pick("200,500-504", true).unwrap().code();
            assert!(r == 200 || (500..=504).contains(&r));
            let wide = pick("100-599", true).unwrap().code();
            assert!((100..=599).contains(&wide));
        }
        for bad in [
            "", "abc", "99", "600", "200:x", "200:-1", "200:0", "500-504", "1000",
        ] {
            assert!(pick(bad, false).is_err(), "{bad:?} must be refused");
        }
        assert!(pick("504-500", true).is_err());
    }

    #[test]
    fn weighted_pick_follows_weights() {
        let n = 4000;
        let ok = (0..n)
            .filter(|_| pick("200:0.9,500:0.1", false).unwrap().code() == 200)
            .count();
        let share = ok as f64 / n as f64;
        assert!(
            (0.85..0.95).contains(&share),
            "200 picked {share} of the time, want ~0.9"
        );
    }

    #[test]
    fn delays() {
        let max = Duration::from_secs(60);
        assert_eq!(parse_delay("250", max).unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_delay("250ms", max).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_delay("2s", max).unwrap(), Duration::from_secs(2));
        assert!(parse_delay("61s", max).unwrap_err().contains("--max-delay"));
        assert!(parse_delay("-1", max).is_err());
        assert!(parse_delay("soon", max).is_err());
        assert!(parse_delay("99999999999999999999999", max).is_err());
    }

    #[test]
    fn retry_after_values() {
        assert_eq!(parse_retry_after("120").unwrap(), "120");
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").unwrap(),
            "Wed, 21 Oct 2015 07:28:00 GMT"
        );
        assert!(parse_retry_after("tomorrow").is_err());
        assert!(parse_retry_after("999999999999").is_err());
    }
}

/// Properties of the on-demand parameters, shared by the property tests below and the
/// `params` and `header_values` fuzz targets (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// A request for `/` carrying `host` as its `Host`, as `check_location` sees it.
    pub(crate) fn request_with_host(host: &str) -> Option<Request> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).ok()?);
        Some(Request {
            method: Method::GET,
            uri: http::Uri::from_static("/"),
            version: Version::HTTP_11,
            headers,
            body: Bytes::new(),
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        })
    }

    /// The host (with its port) a browser following `location` from a page of the request's
    /// own origin would go to, or `None` if `location` stays on that origin as a path. Read
    /// as WHATWG URL parsing does for http(s) bases, erring to the open side: any scheme is
    /// taken to name an authority after it, every run of slashes and backslashes after a
    /// scheme or at the start is skipped, and user information is dropped.
    fn redirect_host(location: &str) -> Option<&str> {
        let is_scheme = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        };
        let after = match location.find(':') {
            Some(i) if is_scheme(&location[..i]) => &location[i + 1..],
            _ if location.starts_with(['/', '\\']) && location[1..].starts_with(['/', '\\']) => {
                location
            }
            _ => return None,
        };
        let authority = after
            .trim_start_matches(['/', '\\'])
            .split(['/', '\\', '?', '#'])
            .next()
            .unwrap_or("");
        Some(authority.rsplit('@').next().unwrap_or(""))
    }

    /// For any `location=` value and request host: what `check_location` accepts is the value
    /// itself as a header, and it either stays on the request's origin or goes to the
    /// request's own host: statuslab is never an open redirector.
    pub(crate) fn check_location_stays_home(location: &str, host: &str) {
        let Some(req) = request_with_host(host) else {
            return;
        };
        if let Ok(v) = check_location(location, &req) {
            assert_eq!(v.as_bytes(), location.as_bytes());
            if let Some(target) = redirect_host(location) {
                let own = host.rsplit('@').next().unwrap_or("");
                assert!(
                    target.eq_ignore_ascii_case(own),
                    "location={location:?} leaves host {host:?} for {target:?}"
                );
            }
        }
    }

    /// For any code list: no panic; a code picked from a list without ranges is written in
    /// it; a sequence's codes are one per listed item, 1 to 100 of them, each 100-599.
    pub(crate) fn check_code_lists(list: &str) {
        for ranges in [false, true] {
            if let Ok(s) = pick(list, ranges) {
                assert!(
                    (100..=599).contains(&s.code()) || FaultKind::from_code(s.code()).is_some()
                );
                if !ranges {
                    let written = list.to_ascii_lowercase();
                    assert!(written.contains(&s.to_string()), "{list:?} gave {s}");
                }
            }
        }
    }

    /// For any `retry_after=` value: an accepted one is seconds up to a year, or an HTTP date
    /// in its preferred form that reads back as itself.
    pub(crate) fn check_retry_after(s: &str) {
        if let Ok(v) = parse_retry_after(s) {
            let v = v.to_str().expect("visible ASCII");
            match v.parse::<u64>() {
                Ok(secs) => assert!(secs <= MAX_RETRY_AFTER),
                Err(_) => {
                    let date = httpdate::parse_http_date(v).expect("an HTTP date");
                    assert_eq!(httpdate::fmt_http_date(date), v);
                }
            }
        }
    }

    /// `sleep=` is a duration in milliseconds by default, bounded by `--max-delay`.
    pub(crate) fn check_delay(s: &str, max: Duration) {
        assert_eq!(
            parse_delay(s, max),
            params::duration("sleep", s, Bare::Millis, max, "--max-delay")
        );
    }

    #[cfg(test)]
    use proptest::collection::vec;
    #[cfg(test)]
    use proptest::prelude::*;

    /// One item of a code list: a code or a range (`lo-hi`), with an optional weight.
    #[cfg(test)]
    fn item() -> impl Strategy<Value = (u16, Option<u16>, Option<&'static str>)> {
        (
            prop_oneof![100u16..600, 0u16..1000],
            proptest::option::of(100u16..600),
            proptest::option::of(prop::sample::select(vec![
                "0", "1", "0.5", "2.5", "1e-3", "1e308", "-1", "x", "inf", "NaN",
            ])),
        )
    }

    #[cfg(test)]
    proptest! {
        #[test]
        fn any_location_stays_home(
            location in prop_oneof![
                ".{0,24}",
                "[a-zA-Z:/\\\\?#@.%-]{0,24}",
                (
                    prop::sample::select(vec!["", "http:", "HTTPS:", "hTtP:", "ftp:", "javascript:", "http+x:", "1http:"]),
                    prop::sample::select(vec!["", "/", "//", "///", "\\\\", "/\\", ":", "./"]),
                    prop::sample::select(vec!["own", "OWN", "own:8080", "evil", "own@evil", "evil@own", "own.evil", ""]),
                    prop::sample::select(vec!["", "/", "/x?y#z", "?q", "#f", ":1/", "@evil", "\\evil", " x"]),
                ).prop_map(|(a, b, c, d)| format!("{a}{b}{c}{d}")),
            ],
            host in prop_oneof![Just("own".to_owned()), Just("own:8080".to_owned()), "[a-z0-9.:@-]{0,10}"],
        ) {
            check_location_stays_home(&location, &host);
        }

        /// Relative references and absolute http(s) URIs on the request's own host pass.
        #[test]
        fn own_locations_pass(
            scheme in prop::sample::select(vec!["http://", "https://", "HTTP://", "//", ""]),
            path in "(/[a-z0-9._~%-]{0,8}){0,3}(\\?[a-z0-9=&]{0,8})?",
        ) {
            let req = request_with_host("own:8080").unwrap();
            let location = if scheme.is_empty() {
                format!("/x{path}")
            } else {
                format!("{scheme}own:8080{path}")
            };
            prop_assert!(check_location(&location, &req).is_ok(), "{}", location);
        }

        /// A picked code is one of the listed codes (or in a listed range) with a weight above
        /// 0; a list is refused if any item is malformed or no weight is above 0.
        #[test]
        fn picks_follow_the_list(items in vec(item(), 1..8), ranges in any::<bool>(), ows in "[ ]{0,1}") {
            let rendered: Vec<String> = items
                .iter()
                .map(|(lo, hi, w)| {
                    let code = match hi {
                        Some(hi) => format!("{lo}-{hi}"),
                        None => lo.to_string(),
                    };
                    match w {
                        Some(w) => format!("{ows}{code}{ows}:{ows}{w}{ows}"),
                        None => format!("{ows}{code}{ows}"),
                    }
                })
                .collect();
            let list = rendered.join(",");
            let mut allowed = Vec::new();
            let mut valid = true;
            for (lo, hi, w) in &items {
                let w: f64 = w.map_or(Ok(1.0), str::parse).unwrap_or(f64::NAN);
                let hi = match hi {
                    Some(hi) if ranges => *hi,
                    Some(_) => 0,
                    None => *lo,
                };
                valid &= w.is_finite() && w >= 0.0 && (100..600).contains(lo) && (*lo..600).contains(&hi);
                if w > 0.0 {
                    allowed.push(*lo..=hi);
                }
            }
            check_code_lists(&list);
            match pick(&list, ranges) {
                Ok(s) => {
                    prop_assert!(valid, "{} gave {}", list, s);
                    prop_assert!(allowed.iter().any(|r| r.contains(&s.code())), "{} gave {}", list, s);
                }
                Err(_) => prop_assert!(!valid || allowed.is_empty(), "{} refused", list),
            }
        }

        #[test]
        fn any_code_list(list in prop_oneof![".{0,24}", "[0-9,:. e-]{0,24}"]) {
            check_code_lists(&list);
        }

        #[test]
        fn retry_after_round_trips(secs in 0u64..=MAX_RETRY_AFTER, date in 0u64..253_402_300_800, ows in "[ \t]{0,2}") {
            prop_assert_eq!(parse_retry_after(&format!("{ows}{secs}{ows}")), Ok(HeaderValue::from(secs)));
            prop_assert!(parse_retry_after(&(MAX_RETRY_AFTER + 1 + secs).to_string()).is_err());
            let when = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(date));
            prop_assert_eq!(parse_retry_after(&when), Ok(HeaderValue::from_str(&when).unwrap()));
        }

        #[test]
        fn any_retry_after_or_delay(s in prop_oneof![".{0,32}", "[0-9a-zA-Z, :]{0,32}"], max_ms in any::<u64>()) {
            check_retry_after(&s);
            check_delay(&s, Duration::from_millis(max_ms));
        }
    }
}
