//! The route table and dispatch: every URL statuslab answers is listed in [`ROUTES`], and every
//! request meets one admission pipeline ([`App::admit`]) before its handler runs.
//!
//! Method handling is data: each route names its methods, so OPTIONS (204 + `Allow`), 405
//! (+ `Allow`) and 501 (a method no route implements) come from one place. Handlers live one
//! family per file, take the shared [`Ctx`] and return `Result<Reply, Problem>`; errors are
//! rendered here, once.

mod access_log;
mod admin;
mod auth;
mod caching;
mod catalog;
mod cookies;
mod digest;
mod echo;
mod formats;
mod health;
mod httpbin;
mod jobs;
mod methods;
mod on_demand;
mod page;
mod rate_limit;
mod redirects;
mod report;
mod resources;
mod sequences;
mod streams;
mod websocket;

use crate::config::Config;
use crate::ctx::Ctx;
use crate::edge::{self, RateLimited, Slot};
use crate::gateway;
use crate::metrics::Tally;
use crate::problem::{FIXED_LIMIT, Problem};
use crate::wire::Service;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use formats::Coding;
use futures_util::FutureExt as _;
use http::Method;
use http::header::{self, HeaderValue};
use httpbin::Bin;
use methods::{ANY, ECHO, IMPLEMENTED, READ};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

/// The route families' parser properties, for the fuzz targets' entry points (the `fuzzing`
/// module in lib.rs).
#[cfg(feature = "fuzzing")]
pub(crate) use self::{
    on_demand::props as on_demand_props, resources::props as resources_props,
    sequences::props as sequences_props,
};
pub use on_demand::REPRESENTATION_LEN;

/// Which handler a route runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handler {
    /// `/`: the web page of every code.
    Index,
    /// `/codes`: the catalog as JSON.
    Codes,
    /// `/codes/{code}`: one entry as JSON.
    Code,
    /// `/status/{codes}`: on-demand codes (httpbin).
    OnDemand,
    /// `/{code}`: on-demand code (httpstat.us).
    Httpstat,
    /// `/random/{list}`: a random code from a list with ranges (httpstat.us).
    Random,
    /// `/websocket/echo`: a WebSocket echo (101).
    WebSocketEcho,
    /// `/openapi.json`: the OpenAPI description of these routes.
    OpenApi,
    /// `/health`: liveness for load balancers.
    Health,
    /// `/metrics`: Prometheus metrics.
    Metrics,
    /// `/healthz`: liveness (the process answers).
    Healthz,
    /// `/readyz`: readiness (a store round trip).
    Readyz,
    /// `/resources`: list (GET) and create with a name from `Slug` (POST).
    Resources,
    /// `/resources/{name}`: a stored resource.
    Resource,
    /// `/jobs`: submit a job (202).
    Jobs,
    /// `/jobs/{id}`: the job's status monitor (200 running, 303 done).
    Job,
    /// `/jobs/{id}/result`: the finished job's result.
    JobResult,
    /// `/sequence/{key}/{codes}`: the next code of a per-key sequence.
    Sequence,
    /// `/sequences/{key}`: a sequence's position and recorded attempts.
    SequenceState,
    /// `/sequences/{key}/report`: the verdict on the client that tried a sequence.
    SequenceReport,
    /// A URL with a trailing slash: 301 to the canonical one.
    Canonical,
    /// `/basic-auth/{user}/{passwd}` (httpbin): 200 with those Basic credentials, else 401.
    BasicAuth,
    /// `/hidden-basic-auth/{user}/{passwd}` (httpbin): like `BasicAuth`, but 404 instead of 401.
    HiddenBasicAuth,
    /// `/bearer` (httpbin): 200 with any bearer token, else 401.
    Bearer,
    /// `/rate-limit/{n}/{period}`: an on-demand rate limiter for testing clients.
    RateLimit,
    /// `/admin/maintenance`: maintenance mode (admin token).
    Maintenance,
    /// `/gateway/{upstream}/{*path}`: forward to a configured or built-in upstream.
    Gateway,
    /// `/fault/{kind}`: a connection fault on demand (retry testing).
    Fault,
    /// An httpbin / go-httpbin route (routes/httpbin.rs).
    Httpbin(Bin),
}

/// One route: a path pattern (matchit syntax), its handler and the methods it allows.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) pattern: &'static str,
    pub(crate) handler: Handler,
    pub(crate) methods: &'static [Method],
    /// Uploads must declare their length (`Content-Length`); without it, 411.
    pub(crate) needs_length: bool,
}

const fn route(pattern: &'static str, handler: Handler, methods: &'static [Method]) -> Route {
    Route {
        pattern,
        handler,
        methods,
        needs_length: false,
    }
}

const fn upload(pattern: &'static str, handler: Handler, methods: &'static [Method]) -> Route {
    Route {
        pattern,
        handler,
        methods,
        needs_length: true,
    }
}

const fn bin(pattern: &'static str, bin: Bin, methods: &'static [Method]) -> Route {
    route(pattern, Handler::Httpbin(bin), methods)
}

/// The index of the on-demand route (`/status/{codes}`) in [`ROUTES`].
const ON_DEMAND: usize = 3;

/// The whole URL space.
pub(crate) const ROUTES: &[Route] = &[
    route("/", Handler::Index, READ),
    route("/codes", Handler::Codes, READ),
    route("/codes/{code}", Handler::Code, READ),
    route("/status/{codes}", Handler::OnDemand, ANY),
    route("/{code}", Handler::Httpstat, ANY),
    route("/random/{list}", Handler::Random, ANY),
    route("/fault/{kind}", Handler::Fault, ANY),
    route(
        "/websocket/echo",
        Handler::WebSocketEcho,
        &[Method::GET, Method::OPTIONS],
    ),
    route("/openapi.json", Handler::OpenApi, READ),
    route("/health", Handler::Health, READ),
    route("/metrics", Handler::Metrics, READ),
    route("/healthz", Handler::Healthz, READ),
    route("/readyz", Handler::Readyz, READ),
    upload(
        "/resources",
        Handler::Resources,
        &[Method::GET, Method::HEAD, Method::POST, Method::OPTIONS],
    ),
    upload(
        "/resources/{name}",
        Handler::Resource,
        &[
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ],
    ),
    upload("/jobs", Handler::Jobs, &[Method::POST, Method::OPTIONS]),
    route(
        "/jobs/{id}",
        Handler::Job,
        &[Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS],
    ),
    route("/jobs/{id}/result", Handler::JobResult, READ),
    route("/sequence/{key}/{codes}", Handler::Sequence, ANY),
    route(
        "/sequences/{key}",
        Handler::SequenceState,
        &[Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS],
    ),
    route("/sequences/{key}/report", Handler::SequenceReport, READ),
    route("/basic-auth/{user}/{passwd}", Handler::BasicAuth, READ),
    route(
        "/hidden-basic-auth/{user}/{passwd}",
        Handler::HiddenBasicAuth,
        READ,
    ),
    route("/bearer", Handler::Bearer, READ),
    route("/rate-limit/{n}/{period}", Handler::RateLimit, ANY),
    route(
        "/admin/maintenance",
        Handler::Maintenance,
        &[
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ],
    ),
    route("/gateway/{upstream}", Handler::Gateway, ANY),
    route("/gateway/{upstream}/", Handler::Gateway, ANY),
    route("/gateway/{upstream}/{*path}", Handler::Gateway, ANY),
    // httpbin / go-httpbin (routes/httpbin.rs, docs/COMPATIBILITY.md).
    bin("/get", Bin::Method, READ),
    bin("/post", Bin::Method, &[Method::POST, Method::OPTIONS]),
    bin("/put", Bin::Method, &[Method::PUT, Method::OPTIONS]),
    bin("/patch", Bin::Method, &[Method::PATCH, Method::OPTIONS]),
    bin("/delete", Bin::Method, &[Method::DELETE, Method::OPTIONS]),
    bin("/anything", Bin::Anything, ECHO),
    bin("/anything/{*path}", Bin::Anything, ECHO),
    bin("/headers", Bin::Headers, READ),
    bin("/ip", Bin::Ip, READ),
    bin("/user-agent", Bin::UserAgent, READ),
    bin("/uuid", Bin::Uuid, READ),
    bin("/dump/request", Bin::Dump, ECHO),
    bin("/delay/{n}", Bin::Delay, ANY),
    bin("/drip", Bin::Drip, READ),
    bin("/stream/{n}", Bin::Stream, READ),
    bin("/stream-bytes/{n}", Bin::StreamBytes, READ),
    bin("/bytes/{n}", Bin::Bytes, READ),
    bin("/range/{n}", Bin::Range, READ),
    bin("/links/{n}", Bin::LinksStart, READ),
    bin("/links/{n}/{offset}", Bin::Links, READ),
    bin("/sse", Bin::Sse, READ),
    bin("/trailers", Bin::Trailers, READ),
    bin("/unstable", Bin::Unstable, ANY),
    bin("/redirect/{n}", Bin::Redirect, READ),
    bin("/relative-redirect/{n}", Bin::RelativeRedirect, READ),
    bin("/absolute-redirect/{n}", Bin::AbsoluteRedirect, READ),
    bin("/redirect-to", Bin::RedirectTo, ANY),
    bin("/cookies", Bin::Cookies, READ),
    bin("/cookies/set", Bin::CookiesSet, READ),
    bin("/cookies/set/{name}/{value}", Bin::CookieSet, READ),
    bin("/cookies/delete", Bin::CookiesDelete, READ),
    bin("/json", Bin::Json, READ),
    bin("/html", Bin::Html, READ),
    bin("/xml", Bin::Xml, READ),
    bin("/robots.txt", Bin::Robots, READ),
    bin("/deny", Bin::Deny, READ),
    bin("/encoding/utf8", Bin::Utf8, READ),
    bin("/image", Bin::Image, READ),
    bin("/image/{kind}", Bin::ImageKind, READ),
    bin("/gzip", Bin::Encoded(Coding::Gzip), READ),
    bin("/deflate", Bin::Encoded(Coding::Deflate), READ),
    bin("/brotli", Bin::Encoded(Coding::Brotli), READ),
    bin("/zstd", Bin::Encoded(Coding::Zstd), READ),
    bin("/base64/{value}", Bin::Base64, READ),
    bin("/cache", Bin::Cache, READ),
    bin("/cache/{n}", Bin::CacheFor, READ),
    bin("/etag/{etag}", Bin::Etag, READ),
    bin(
        "/response-headers",
        Bin::ResponseHeaders,
        &[Method::GET, Method::HEAD, Method::POST, Method::OPTIONS],
    ),
    bin("/digest-auth/{qop}/{user}/{passwd}", Bin::DigestAuth, READ),
    bin(
        "/digest-auth/{qop}/{user}/{passwd}/{algorithm}",
        Bin::DigestAuth,
        READ,
    ),
    bin(
        "/digest-auth/{qop}/{user}/{passwd}/{algorithm}/{stale_after}",
        Bin::DigestAuth,
        READ,
    ),
    route("/resources/", Handler::Canonical, ANY),
    route("/resources/{name}/", Handler::Canonical, ANY),
    route("/jobs/", Handler::Canonical, ANY),
    route("/jobs/{id}/", Handler::Canonical, ANY),
    route("/codes/", Handler::Canonical, ANY),
];

/// Headers a browser script may read on a cross-origin reply.
const EXPOSE: &str = "Retry-After, Location, Content-Range, Allow, WWW-Authenticate, Proxy-Authenticate, ETag, Last-Modified, Link, RateLimit, RateLimit-Policy, Sequence-Step, X-Error-Id";

/// The application: the shared context, the router and the pages rendered at start; shared
/// read-only by every connection (no locks).
#[derive(Debug)]
pub struct App {
    pub(crate) ctx: Ctx,
    access_log: Option<access_log::AccessLog>,
    router: matchit::Router<usize>,
    allow: Vec<HeaderValue>,
    /// Each route's parameter names.
    names: Vec<Vec<&'static str>>,
    pages: catalog::Pages,
    /// The plain on-demand answers, prebuilt.
    plain: on_demand::Plain,
    /// Set when the server starts shutting down (read on every reply, written once: an
    /// atomic, where the shutdown token would take a lock).
    stopping: std::sync::atomic::AtomicBool,
}

/// A routed request: the route, its `Allow` value and its named path parameters.
pub(crate) struct Routed<'a> {
    /// The route's index in `ROUTES`.
    index: usize,
    route: &'a Route,
    allow: &'a HeaderValue,
    /// The names of the route's parameters, in pattern order.
    names: &'a [&'static str],
    /// The path matched, and where its parameters lie in it.
    path: &'a str,
    spans: Spans,
}

impl<'a> Routed<'a> {
    /// The path parameter `name` (as matched, still percent-encoded); empty if the route has
    /// none by that name.
    fn param(&self, name: &str) -> &'a str {
        self.get(name).unwrap_or("")
    }

    /// The path parameter `name`, if the route has one.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.spans.get(i))
            .and_then(|(start, end)| self.path.get(start as usize..end as usize))
    }
}

/// Most named parameters a route pattern has.
const MAX_PARAMS: usize = 6;

/// Where each of a route's parameters (in pattern order) lies in the path: what admission
/// matched, handed to the handler so the path is matched once per request.
/// (`(start, end)` each; [`Spans::NONE`] where a route has no such parameter. Compact: every
/// request's ticket carries it.)
#[derive(Debug, Clone, Copy)]
struct Spans([(u32, u32); MAX_PARAMS]);

impl Default for Spans {
    fn default() -> Spans {
        Spans([Spans::NONE; MAX_PARAMS])
    }
}

impl Spans {
    const NONE: (u32, u32) = (u32::MAX, u32::MAX);

    /// The spans of matchit's parameters, which are slices of `path`; `None` if one is not.
    fn of(path: &str, params: &matchit::Params<'_, '_>) -> Option<Spans> {
        let mut spans = Spans::default();
        for (i, (_, value)) in params.iter().enumerate().take(MAX_PARAMS) {
            let start = (value.as_ptr() as usize).checked_sub(path.as_ptr() as usize)?;
            let end = start + value.len();
            if path.get(start..end) != Some(value) {
                return None;
            }
            spans.set(i, start, end)?;
        }
        Some(spans)
    }

    /// Parameter `i` lies at `start..end` (`None` past `u32`).
    fn set(&mut self, i: usize, start: usize, end: usize) -> Option<()> {
        self.0[i] = (u32::try_from(start).ok()?, u32::try_from(end).ok()?);
        (self.0[i] != Spans::NONE).then_some(())
    }

    /// Where parameter `i` lies, if the route has it.
    fn get(&self, i: usize) -> Option<(u32, u32)> {
        self.0.get(i).copied().filter(|&span| span != Spans::NONE)
    }
}

/// The names of a pattern's parameters (`{name}` or `{*name}`), in order.
fn param_names(pattern: &'static str) -> Vec<&'static str> {
    pattern
        .split('{')
        .skip(1)
        .map(|p| p.split('}').next().unwrap_or("").trim_start_matches('*'))
        .collect()
}

/// What admission hands on to the handler.
#[derive(Debug)]
pub(crate) struct Ticket {
    /// An absolute-form request for the forward proxy, not for statuslab's own routes.
    proxied: bool,
    /// The in-flight slot held while the handler runs (under `--max-in-flight`).
    _slot: Option<Slot>,
    /// Where the client stands in the server-wide rate limit, for the RateLimit headers.
    limited: Option<Box<RateLimited>>,
    /// The route's index in `ROUTES` (`usize::MAX`: none), for the handler and the metrics.
    route: usize,
    /// Where the route's parameters lie in the path.
    spans: Spans,
    /// Counts the request in flight while it waits (with metrics on; see [`Service::hold`]).
    _in_flight: Option<crate::metrics::InFlight>,
}

impl App {
    /// Builds the application for a configuration and a store.
    pub fn new(cfg: Config, store: crate::store::SharedStore) -> App {
        let mut router = matchit::Router::new();
        for (i, r) in ROUTES.iter().enumerate() {
            router
                .insert(r.pattern, i)
                .expect("route patterns are distinct");
        }
        let allow = ROUTES
            .iter()
            .map(|r| {
                let list: Vec<&str> = r.methods.iter().map(Method::as_str).collect();
                HeaderValue::from_str(&list.join(", ")).expect("method names are tokens")
            })
            .collect();
        let names = ROUTES.iter().map(|r| param_names(r.pattern)).collect();
        let pages = catalog::Pages::new(&cfg);
        let ctx = Ctx::new(cfg, store, ROUTES.iter().map(|r| r.pattern));
        App {
            plain: on_demand::Plain::new(&ctx, finish),
            stopping: Default::default(),
            ctx,
            access_log: None,
            router,
            allow,
            names,
            pages,
        }
    }

    /// Logs each answered request to `log` (started with [`start_access_log`]).
    pub(crate) fn with_access_log(mut self, log: Option<access_log::AccessLog>) -> App {
        self.access_log = log;
        self
    }

    /// `GET /metrics`: the Prometheus text format, or OpenMetrics when `Accept` asks for it;
    /// 404 under `--no-metrics`.
    fn metrics(&self, req: &Request) -> Result<Reply, Problem> {
        let Some(m) = &self.ctx.metrics else {
            return Err(Problem::new(404, "metrics are off (--no-metrics)"));
        };
        let openmetrics = req
            .header(header::ACCEPT)
            .is_some_and(|a| a.contains("application/openmetrics-text"));
        let gauges = crate::metrics::Gauges {
            access_log_dropped: self.access_log.as_ref().map_or(0, |l| l.dropped()),
        };
        Ok(Reply::new(known(200)).with_body(
            HeaderValue::from_static(crate::metrics::content_type(openmetrics)),
            m.render(gauges, openmetrics),
        ))
    }

    /// Marks the server as shutting down: every reply from now on closes its connection.
    pub(crate) fn stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes the access log's pending lines and stops its writer.
    pub(crate) fn close_access_log(&self) {
        if let Some(log) = &self.access_log {
            log.close();
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.ctx.cfg
    }

    fn route<'a>(&'a self, path: &'a str) -> Option<Routed<'a>> {
        // The on-demand route, the hot path, without the router: `/status/` and one segment.
        if let Some(codes) = path.strip_prefix("/status/")
            && !codes.is_empty()
            && !codes.contains('/')
        {
            let mut spans = Spans::default();
            spans.set(0, 8, path.len())?;
            return Some(self.routed(ON_DEMAND, path, spans));
        }
        self.matched(path)
    }

    /// [`App::route`] through the router alone.
    fn matched<'a>(&'a self, path: &'a str) -> Option<Routed<'a>> {
        let m = self.router.at(path).ok()?;
        let route = &ROUTES[*m.value];
        if route.handler == Handler::Httpstat {
            let code = m.params.get("code").unwrap_or("");
            if !(code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())) {
                return None;
            }
        }
        Some(self.routed(*m.value, path, Spans::of(path, &m.params)?))
    }

    /// The route admission matched, without matching the path again.
    fn admitted<'a>(&'a self, ticket: &Ticket, path: &'a str) -> Option<Routed<'a>> {
        ROUTES.get(ticket.route)?;
        Some(self.routed(ticket.route, path, ticket.spans))
    }

    /// Route `index` (which must be one) matched on `path`.
    fn routed<'a>(&'a self, index: usize, path: &'a str, spans: Spans) -> Routed<'a> {
        Routed {
            index,
            route: &ROUTES[index],
            allow: &self.allow[index],
            names: &self.names[index],
            path,
            spans,
        }
    }

    /// The admission pipeline, the same for every request and run once, from the head alone
    /// (so a refused upload is never read): proxy → maintenance → rate limit → shedding →
    /// route → method → auth → what the route demands of an upload's head.
    async fn admission(&self, req: &Request) -> Result<Ticket, Problem> {
        let mut ticket = self.admission_before_limit(req)?;
        // It may wait for the store: in flight from here.
        self.hold(&mut ticket);
        if !edge::exempt(req.path()) {
            let ctx = &self.ctx;
            ticket.limited = edge::rate_limit::server(ctx, req)
                .await
                .inspect_err(|p| {
                    if let (429, Some(m)) = (p.code(), &ctx.metrics) {
                        m.rate_limited(crate::metrics::Limiter::Server);
                    }
                })?
                .map(Box::new);
        }
        self.admission_after_limit(req, ticket)
    }

    /// Admission without waiting, when the server-wide rate limit (the one step that asks the
    /// store) is off: the same steps as [`App::admission`], in the same order.
    fn admission_now(&self, req: &Request) -> Option<Result<Ticket, Problem>> {
        if self.ctx.cfg.rate_limit.is_some() {
            return None;
        }
        Some(
            self.admission_before_limit(req)
                .and_then(|ticket| self.admission_after_limit(req, ticket)),
        )
    }

    /// Admission up to the rate limit: proxy, maintenance.
    fn admission_before_limit(&self, req: &Request) -> Result<Ticket, Problem> {
        let ctx = &self.ctx;
        let proxied =
            ctx.cfg.proxy && req.uri.scheme().is_some() && req.version != http::Version::HTTP_2;
        if proxied {
            gateway::proxy::admit(ctx, req)?;
        }
        if !edge::exempt(req.path()) && ctx.edge.in_maintenance() {
            return Err(edge::maintenance::refusal());
        }
        Ok(Ticket {
            proxied,
            _slot: None,
            limited: None,
            route: usize::MAX,
            spans: Spans::default(),
            _in_flight: None,
        })
    }

    /// Admission after the rate limit: shedding, route, method, auth, the upload's head.
    fn admission_after_limit(&self, req: &Request, mut ticket: Ticket) -> Result<Ticket, Problem> {
        let ctx = &self.ctx;
        if !edge::exempt(req.path()) {
            ticket._slot = edge::shedding::enter(ctx).inspect_err(|_| {
                if let Some(m) = &ctx.metrics {
                    m.shed();
                }
            })?;
        }
        if ticket.proxied {
            return Ok(ticket);
        }
        if !IMPLEMENTED.contains(&req.method) {
            // Whatever the target (CONNECT names no path at all): the method is unknown here.
            return Err(Problem::new(
                501,
                format!("method {} is not implemented by statuslab", req.method),
            ));
        }
        let Some(routed) = self.route(req.path()) else {
            if req.method == Method::OPTIONS && req.path() == "*" {
                return Ok(ticket);
            }
            return Err(not_found());
        };
        ticket.route = routed.index;
        ticket.spans = routed.spans;
        if req.method == Method::OPTIONS {
            return Ok(ticket);
        }
        method_check(req, &routed)?;
        if is_guarded(routed.route.handler) {
            edge::auth::require(ctx, req, edge::auth::scope_for(&req.method))?;
        }
        if routed.route.needs_length && req.headers.contains_key(header::TRANSFER_ENCODING) {
            return Err(Problem::new(
                411,
                "uploads here must declare their length with Content-Length (no chunked uploads)",
            ));
        }
        match routed.route.handler {
            Handler::Resource if req.method == Method::PATCH => resources::patch_type_check(req)?,
            Handler::Jobs => jobs::type_check(req)?,
            _ => {}
        }
        Ok(ticket)
    }

    /// The answer to an admitted request that needs no waiting and no handler future: a plain
    /// on-demand code, prebuilt.
    fn answer_now(&self, req: &Request, ticket: &Ticket, reply: &mut Reply) -> bool {
        if ticket.proxied {
            return false;
        }
        let Some(r) = self.admitted(ticket, req.path()) else {
            return false;
        };
        let param = match r.route.handler {
            Handler::OnDemand => r.param("codes"),
            Handler::Httpstat => r.param("code"),
            _ => return false,
        };
        self.plain.answer(req, param, reply)
    }

    /// What every reply of an admitted request gets, whatever produced it.
    /// (In place: a reply is 200 bytes, and the hot path moves it as little as it can.)
    fn conclude(&self, reply: &mut Reply, ticket: &Ticket) {
        if let Some(limited) = &ticket.limited {
            limited.headers(reply);
        }
        reply.route = ticket.route;
        if reply.prebuilt.is_none() {
            add_cors(reply);
        }
    }

    /// A refused request's reply (its route, if any, still counted in the metrics).
    fn refused(&self, req: &Request, problem: Problem) -> Reply {
        let mut reply = self.finish(problem.into_reply(&self.ctx, req));
        if self.ctx.metrics.is_some() {
            reply.route = self.route(req.path()).map_or(usize::MAX, |r| r.index);
        }
        reply
    }

    /// Runs the handler of an admitted request. Handlers whose futures are large and whose
    /// routes are not the hot path (gateway, state) are boxed, so the on-demand path keeps a
    /// small future and every connection's task stays small.
    async fn dispatch(&self, req: &Request, ticket: &Ticket) -> Result<Reply, Problem> {
        let ctx = &self.ctx;
        if ticket.proxied {
            return Box::pin(gateway::proxy::forward(ctx, req)).await;
        }
        let Some(r) = self.admitted(ticket, req.path()) else {
            if req.method == Method::OPTIONS && req.path() == "*" {
                return Ok(options(req, &HeaderValue::from_static(methods::ALLOW_ALL)));
            }
            return Err(not_found());
        };
        if req.method == Method::OPTIONS {
            return Ok(options(req, r.allow));
        }
        match r.route.handler {
            Handler::Index => Ok(self.pages.index()),
            Handler::Codes => Ok(self.pages.codes()),
            Handler::Code => catalog::code(r.param("code")),
            Handler::OpenApi => Ok(self.pages.openapi()),
            Handler::Health => Ok(catalog::health()),
            Handler::Metrics => self.metrics(req),
            Handler::Healthz => Ok(health::healthz()),
            Handler::Readyz => health::readyz(ctx).await,
            Handler::OnDemand => on_demand::answer(ctx, req, r.param("codes"), false).await,
            Handler::Httpstat => on_demand::answer(ctx, req, r.param("code"), false).await,
            Handler::Random => on_demand::answer(ctx, req, r.param("list"), true).await,
            Handler::Fault => on_demand::fault(ctx, req, r.param("kind")).await,
            Handler::WebSocketEcho => websocket::handshake(req),
            Handler::Resources => Box::pin(resources::collection(ctx, req)).await,
            Handler::Resource => Box::pin(resources::item(ctx, req, r.param("name"))).await,
            Handler::Jobs => Box::pin(jobs::submit(ctx, req)).await,
            Handler::Job => Box::pin(jobs::monitor(ctx, req, r.param("id"))).await,
            Handler::JobResult => Box::pin(jobs::result(ctx, r.param("id"))).await,
            Handler::Sequence => {
                Box::pin(sequences::step(ctx, req, r.param("key"), r.param("codes"))).await
            }
            Handler::SequenceState => Box::pin(sequences::state(ctx, req, r.param("key"))).await,
            Handler::SequenceReport => Box::pin(sequences::verdict(ctx, req, r.param("key"))).await,
            Handler::Canonical => Err(canonical(req)),
            Handler::BasicAuth => auth::basic(req, r.param("user"), r.param("passwd"), false),
            Handler::HiddenBasicAuth => auth::basic(req, r.param("user"), r.param("passwd"), true),
            Handler::Bearer => auth::bearer(req),
            Handler::RateLimit => {
                rate_limit::answer(ctx, req, r.param("n"), r.param("period")).await
            }
            Handler::Maintenance => admin::maintenance(ctx, req).await,
            Handler::Httpbin(bin) => {
                let param = |name: &str| r.get(name).map(str::to_owned);
                Box::pin(httpbin::handle(ctx, req, bin, param)).await
            }
            Handler::Gateway => {
                Box::pin(gateway::forward(
                    ctx,
                    req,
                    r.param("upstream"),
                    r.param("path"),
                ))
                .await
            }
        }
    }

    /// Adds what every reply carries: CORS headers, so browser clients can read the codes.
    /// A request that set these itself (`header=Access-Control-Allow-Origin:…`) keeps its
    /// values, so clients can test their CORS handling too.
    fn finish(&self, reply: Reply) -> Reply {
        if reply.prebuilt.is_some() {
            // Finished when it was prebuilt.
            return reply;
        }
        finish(reply)
    }
}

/// Adds what every reply carries (CORS), unless the handler set it.
fn finish(mut reply: Reply) -> Reply {
    add_cors(&mut reply);
    reply
}

/// [`finish`] in place.
fn add_cors(reply: &mut Reply) {
    let h = &mut reply.headers;
    h.entry(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .or_insert(HeaderValue::from_static("*"));
    h.entry(header::ACCESS_CONTROL_EXPOSE_HEADERS)
        .or_insert(HeaderValue::from_static(EXPOSE));
}

/// A panic inside `fut` becomes a 500 with an error id; the connection and the server carry on.
/// (A plain function: an `async fn` would hold `fut` twice, as its argument and in the
/// `CatchUnwind` it awaits, and every held request's task pays for the larger future.)
fn guarded<T>(
    fut: impl Future<Output = Result<T, Problem>>,
) -> impl Future<Output = Result<T, Problem>> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .map(|caught| caught.unwrap_or_else(|panic| Err(panicked(&*panic))))
}

/// The 500 (with an error id) for a handler's panic.
fn panicked(panic: &(dyn std::any::Any + Send)) -> Problem {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a handler panicked".to_owned());
    Problem::internal(format!("panic: {what}"))
}

impl Service for App {
    type Ticket = Ticket;
    type Tally = Tally;

    async fn admit(&self, req: &Request) -> Result<Ticket, Box<Reply>> {
        guarded(self.admission(req))
            .await
            .map_err(|p| Box::new(self.refused(req, p)))
    }

    fn admit_now(&self, req: &Request) -> Option<Result<Ticket, Box<Reply>>> {
        let admitted = std::panic::catch_unwind(AssertUnwindSafe(|| self.admission_now(req)))
            .unwrap_or_else(|panic| Some(Err(panicked(&*panic))))?;
        Some(admitted.map_err(|p| Box::new(self.refused(req, p))))
    }

    fn hold(&self, ticket: &mut Ticket) {
        if ticket._in_flight.is_none() {
            ticket._in_flight = self
                .ctx
                .metrics
                .as_ref()
                .map(crate::metrics::Metrics::admitted);
        }
    }

    async fn handle(&self, req: &Request, ticket: &Ticket) -> Reply {
        let mut reply = match guarded(self.dispatch(req, ticket)).await {
            Ok(reply) => reply,
            Err(problem) => problem.into_reply(&self.ctx, req),
        };
        self.conclude(&mut reply, ticket);
        reply
    }

    fn handle_now_in(&self, req: &Request, ticket: &Ticket, reply: &mut Reply) -> bool {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            let answered = self.answer_now(req, ticket, reply);
            if answered {
                self.conclude(reply, ticket);
            }
            answered
        }))
        .unwrap_or_else(|panic| {
            *reply = panicked(&*panic).into_reply(&self.ctx, req);
            self.conclude(reply, ticket);
            true
        })
    }

    fn reject(&self, req: &Request, code: u16, detail: &str) -> Reply {
        let mut problem = Problem::new(code, detail.to_owned());
        match code {
            503 => problem = problem.retry_later(),
            // The wire layer's 413 is a fixed limit (--max-body), not a temporary condition:
            // no Retry-After, and the body says not to wait for one.
            413 => problem = problem.advice(FIXED_LIMIT),
            _ => {}
        }
        self.finish(problem.into_reply(&self.ctx, req))
    }

    fn settle(&self, tally: &mut Tally) {
        tally.settle();
    }

    fn budget(&self) -> &std::sync::Arc<crate::wire::BodyBudget> {
        &self.ctx.budget
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn completed(
        &self,
        tally: &mut Tally,
        req: &Request,
        reply: &Reply,
        started: Instant,
        done: Instant,
    ) {
        if let Some(m) = &self.ctx.metrics {
            m.tally(
                tally,
                reply.route,
                req.method.as_str(),
                reply.status.code(),
                done.saturating_duration_since(started),
            );
        }
        if let Some(log) = &self.access_log {
            log.log(req, reply, started, done);
        }
    }
}

/// Opens the configured access-log destination and starts its writer thread.
pub(crate) fn start_access_log(cfg: &Config) -> std::io::Result<access_log::AccessLog> {
    access_log::AccessLog::start(&cfg.access_log_to, cfg.access_log_json)
}

/// Routes whose every method needs a bearer token when tokens are configured.
fn is_guarded(handler: Handler) -> bool {
    matches!(
        handler,
        Handler::Resources | Handler::Resource | Handler::Jobs | Handler::Job | Handler::JobResult
    )
}

fn not_found() -> Problem {
    Problem::new(
        404,
        "no route matches this path; see / for the list of routes",
    )
}

/// 501 for a method statuslab does not implement, 405 (+ `Allow`) for one the route does not allow.
fn method_check(req: &Request, r: &Routed<'_>) -> Result<(), Problem> {
    if !IMPLEMENTED.contains(&req.method) {
        return Err(Problem::new(
            501,
            format!("method {} is not implemented by statuslab", req.method),
        ));
    }
    if !r.route.methods.contains(&req.method) {
        let detail = format!(
            "{} does not allow {}; allowed: {}",
            r.route.pattern,
            req.method,
            r.allow.to_str().unwrap_or("")
        );
        return Err(Problem::new(405, detail).with_header(header::ALLOW, r.allow.clone()));
    }
    Ok(())
}

/// OPTIONS: 204 with `Allow`, as the table says; a CORS preflight also gets its answer.
fn options(req: &Request, allow: &HeaderValue) -> Reply {
    let mut reply = Reply::new(known(204)).with_header(header::ALLOW, allow.clone());
    if req
        .headers
        .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let h = &mut reply.headers;
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, allow.clone());
        if let Some(asked) = req.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    reply
}

/// 301 from a URL with a trailing slash to the canonical one.
fn canonical(req: &Request) -> Problem {
    let path = req.path().trim_end_matches('/');
    let target = match req.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let location = HeaderValue::from_str(&target).ok();
    let mut problem = Problem::new(301, format!("the canonical URL is {target}"));
    if let Some(v) = location {
        problem = problem.with_header(header::LOCATION, v);
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held request (`/status/200?sleep=…`) costs its connection's task, whose size is that
    /// of the connection's future in its largest state: 10,000 held requests must fit in
    /// 64 MiB (bench/run.sh). Large values kept across an await (arguments of `async fn`s,
    /// rare paths inline) once made this future 4.7 KB and the handler's 1.5 KB. Sizes of
    /// this (debug) build; release builds are about the same.
    #[tokio::test]
    async fn a_held_requests_futures_stay_small() {
        let cfg = Config::default();
        let limits = crate::wire::Limits::of(&cfg);
        let app = std::sync::Arc::new(App::new(
            cfg,
            std::sync::Arc::new(crate::store::KvStore::new(
                crate::store::memory::MemoryEngine::new(),
                Default::default(),
            )),
        ));
        let req = Request {
            method: Method::GET,
            uri: "/status/200?sleep=5000".parse().unwrap(),
            version: http::Version::HTTP_11,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        };
        let ticket = app.admit(&req).await.unwrap();
        let handler = std::mem::size_of_val(&app.handle(&req, &ticket));
        assert!(handler <= 640, "the handler's future is {handler} bytes");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (io, peer) = listener.accept().await.unwrap();
        let conn = crate::wire::h1::Conn::new(
            io,
            peer,
            app,
            limits,
            tokio_util::sync::CancellationToken::new(),
            None,
        );
        let connection = std::mem::size_of_val(&conn.run());
        assert!(
            connection <= 2_560,
            "the connection's future is {connection} bytes"
        );
    }

    /// A prebuilt on-demand answer is the answer dressed per request: byte for byte on HTTP/1.1
    /// (but for `Date`), field for field on HTTP/2, for every code, both URL forms and the
    /// `Accept` values it serves; requests it must not serve are dressed per request.
    #[tokio::test]
    async fn prebuilt_answers_are_the_dressed_ones() {
        use crate::wire::reply::{Body, put_final};
        let app = App::new(
            Config::default(),
            std::sync::Arc::new(crate::store::KvStore::new(
                crate::store::memory::MemoryEngine::new(),
                Default::default(),
            )),
        );
        let request = |target: &str, accept: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("localhost"));
            headers.insert(header::USER_AGENT, HeaderValue::from_static("t/1"));
            if let Some(a) = accept {
                headers.insert(header::ACCEPT, HeaderValue::from_str(a).unwrap());
            }
            Request {
                method: Method::GET,
                uri: target.parse().unwrap(),
                version: http::Version::HTTP_11,
                headers,
                body: bytes::Bytes::new(),
                peer: std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
            }
        };
        // Written as for GET and HEAD, kept alive and closing, as made and with a field added
        // (as the rate limit's and HTTP/1.0's keep-alive add theirs).
        let h1 = |reply: &Reply| {
            let mut added = reply.clone();
            added
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
            let mut out = bytes::BytesMut::new();
            for reply in [reply, &added] {
                for (head_only, close) in [(false, false), (true, false), (false, true)] {
                    put_final(&mut out, reply, head_only, close, std::time::Instant::now());
                }
            }
            let text = String::from_utf8(out.to_vec()).unwrap();
            text.split("\r\n")
                .filter(|l| !l.starts_with("Date: "))
                .collect::<Vec<_>>()
                .join("\r\n")
        };
        // As the connections do: the answer at once if there is one, else the handler's.
        let answer = async |req: &Request| {
            let ticket = match app.admit_now(req) {
                Some(admitted) => admitted.unwrap(),
                None => app.admit(req).await.unwrap(),
            };
            match app.handle_now(req, &ticket) {
                Some(reply) => reply,
                None => app.handle(req, &ticket).await,
            }
        };
        let mut prebuilt = 0;
        for code in 100..=599u16 {
            for target in [format!("/status/{code}"), format!("/{code}")] {
                for accept in [None, Some("*/*")] {
                    let req = request(&target, accept);
                    let fast = answer(&req).await;
                    let param = &target[target.rfind('/').unwrap() + 1..];
                    let slow = finish(
                        match on_demand::answer(&app.ctx, &req, param, false).await {
                            Ok(reply) => reply,
                            Err(problem) => problem.into_reply(&app.ctx, &req),
                        },
                    );
                    assert_eq!(fast.status, slow.status);
                    assert_eq!(h1(&fast), h1(&slow), "{target} Accept {accept:?}");
                    if fast.prebuilt.is_some() {
                        prebuilt += 1;
                        let at = std::time::Instant::now();
                        assert_eq!(
                            crate::wire::h2::fields(&fast, at),
                            crate::wire::h2::fields(&slow, at),
                            "{target} over HTTP/2"
                        );
                        assert!(matches!(fast.body, Body::Empty | Body::Full(_)));
                    }
                }
            }
        }
        // Every code but those whose dress reads the request was served prebuilt.
        let per_request = [206, 305, 408, 426].len() + 100;
        assert_eq!(prebuilt, (500 - per_request) * 4);
        // What a plain answer must not serve goes the long way.
        for (target, accept) in [
            ("/status/404?sleep=0", None),
            ("/status/404", Some("application/json")),
            ("/status/206", None),
            ("/status/101", None),
            ("/status/404,500", None),
        ] {
            let req = request(target, accept);
            let ticket = app.admit(&req).await.unwrap();
            assert!(
                app.handle(&req, &ticket).await.prebuilt.is_none(),
                "{target}"
            );
        }
        let mut req = request("/status/404", None);
        req.headers
            .insert("x-httpstatus-sleep", HeaderValue::from_static("0"));
        let ticket = app.admit(&req).await.unwrap();
        assert!(app.handle(&req, &ticket).await.prebuilt.is_none());
        req = request("/status/404", None);
        req.method = Method::HEAD;
        let ticket = app.admit(&req).await.unwrap();
        assert!(app.handle(&req, &ticket).await.prebuilt.is_none());
    }

    /// The parameters handed from admission to the handler are the ones matchit matched, for
    /// every route: a sample path per pattern, parameters filled with distinct values.
    #[test]
    fn admitted_parameters_are_the_matched_ones() {
        let app = App::new(
            Config::default(),
            std::sync::Arc::new(crate::store::KvStore::new(
                crate::store::memory::MemoryEngine::new(),
                Default::default(),
            )),
        );
        let mut checked = 0;
        for (i, r) in ROUTES.iter().enumerate() {
            let names = param_names(r.pattern);
            assert!(names.len() <= MAX_PARAMS, "{}", r.pattern);
            let mut path = r.pattern.to_owned();
            for (k, name) in names.iter().enumerate() {
                let value = if r.handler == Handler::Httpstat {
                    "418".to_owned()
                } else {
                    format!("v{k}x")
                };
                path = path
                    .replace(&format!("{{*{name}}}"), &format!("{value}/y"))
                    .replace(&format!("{{{name}}}"), &value);
            }
            let Some(routed) = app.route(&path) else {
                continue; // a more specific route shadows this sample
            };
            if routed.index != i {
                continue;
            }
            let matched = app.router.at(&path).unwrap();
            let ticket_spans = routed.spans;
            let again = app.routed(i, &path, ticket_spans);
            for (name, value) in matched.params.iter() {
                assert_eq!(again.param(name), value, "{} on {path}", r.pattern);
            }
            assert_eq!(again.param("no-such-parameter"), "");
            checked += 1;
        }
        assert!(
            checked * 10 >= ROUTES.len() * 9,
            "only {checked} of {} routes checked",
            ROUTES.len()
        );
    }

    /// The on-demand route's shortcut past the router routes every path as the router does.
    #[test]
    fn the_on_demand_shortcut_agrees_with_the_router() {
        let app = App::new(
            Config::default(),
            std::sync::Arc::new(crate::store::KvStore::new(
                crate::store::memory::MemoryEngine::new(),
                Default::default(),
            )),
        );
        assert_eq!(ROUTES[ON_DEMAND].pattern, "/status/{codes}");
        let paths = [
            "/status/404",
            "/status/200,500:3",
            "/status/%2F",
            "/status/",
            "/status",
            "/status//",
            "/status/404/",
            "/status/404/x",
            "/statusx/404",
            "/status/a b",
            "/404",
            "/",
        ];
        for path in paths {
            let fast = app.route(path).map(|r| (r.index, r.param("codes")));
            let slow = app.matched(path).map(|r| (r.index, r.param("codes")));
            assert_eq!(fast, slow, "{path}");
        }
        assert_eq!(
            app.route("/status/200,500").map(|r| r.param("codes")),
            Some("200,500")
        );
    }

    /// Every route is documented in openapi.json, and the document names no other route.
    #[test]
    fn openapi_lists_every_route() {
        let spec: serde_json::Value =
            serde_json::from_slice(include_bytes!("openapi.json")).expect("openapi.json is JSON");
        let paths = spec["paths"].as_object().expect("paths");
        let routes: Vec<String> = ROUTES
            .iter()
            .filter(|r| r.handler != Handler::Canonical)
            .map(|r| r.pattern.replace("{*", "{"))
            .collect();
        for r in &routes {
            assert!(
                paths.contains_key(r),
                "route {r} is missing from openapi.json"
            );
        }
        for p in paths.keys() {
            assert!(
                routes.contains(p),
                "openapi.json documents {p}, which is no route"
            );
        }
    }

    /// Each documented path lists exactly its route's methods (OPTIONS included), every
    /// operation documents the edge's answers (400, 413, 414, 431; 429 and 503 where the edge
    /// applies; 413 is the store's too on uploads), and OPTIONS documents 204 with `Allow`.
    /// 414 and 431 are the shared responses, except on /drip, which can send them itself.
    #[test]
    fn openapi_lists_each_routes_methods_and_edge_answers() {
        let spec: serde_json::Value =
            serde_json::from_slice(include_bytes!("openapi.json")).expect("openapi.json is JSON");
        let with_ref = |r: &serde_json::Value, name: &str| {
            r["$ref"].as_str() == Some(&format!("#/components/responses/{name}"))
        };
        for r in ROUTES.iter().filter(|r| r.handler != Handler::Canonical) {
            let path = r.pattern.replace("{*", "{");
            let item = spec["paths"][&path].as_object().expect("documented");
            let mut documented: Vec<String> = item
                .keys()
                .filter(|k| *k != "parameters" && *k != "summary" && *k != "description")
                .cloned()
                .collect();
            let mut allowed: Vec<String> = r
                .methods
                .iter()
                .map(|m| m.as_str().to_lowercase())
                .collect();
            documented.sort();
            allowed.sort();
            assert_eq!(documented, allowed, "{path}: documented methods");
            let options = &item["options"]["responses"]["204"];
            assert!(with_ref(options, "NoContent"), "{path}: OPTIONS 204");
            let edge_exempt = edge::exempt(&path);
            for (method, op) in item {
                if method == "parameters" || method == "options" {
                    continue;
                }
                let responses = &op["responses"];
                for (code, name) in [
                    ("400", None),
                    ("413", None),
                    ("414", Some("UriTooLong")),
                    ("431", Some("HeadersTooLarge")),
                    ("429", None),
                    ("503", None),
                ] {
                    if edge_exempt && (code == "429" || code == "503") {
                        continue;
                    }
                    let response = &responses[code];
                    assert!(!response.is_null(), "{method} {path} lacks {code}");
                    if let Some(name) = name {
                        if path == "/drip" {
                            // /drip answers these codes itself too (code=431), its content
                            // dripped as application/octet-stream: its own response object
                            // lists that next to the edge's problem report.
                            let shared = &spec["components"]["responses"][name]["content"];
                            let content = &response["content"];
                            assert_eq!(
                                content["application/problem+json"],
                                shared["application/problem+json"],
                                "{method} {path}: {code}"
                            );
                            assert!(
                                content["application/octet-stream"].is_object(),
                                "{method} {path}: {code}"
                            );
                        } else {
                            assert!(with_ref(response, name), "{method} {path}: {code}");
                        }
                    }
                }
            }
        }
        let unavailable = &spec["components"]["responses"]["Unavailable"]["headers"];
        assert!(
            unavailable["Retry-After"].is_object(),
            "503 has Retry-After"
        );
        let no_content = &spec["components"]["responses"]["NoContent"]["headers"];
        assert!(no_content["Allow"].is_object(), "OPTIONS has Allow");
    }

    /// Route patterns are unique and their method lists include OPTIONS.
    #[test]
    fn routes_are_well_formed() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                r.methods.contains(&Method::OPTIONS),
                "{} lacks OPTIONS",
                r.pattern
            );
            assert!(
                ROUTES[i + 1..].iter().all(|o| o.pattern != r.pattern),
                "{} twice",
                r.pattern
            );
        }
    }
}
