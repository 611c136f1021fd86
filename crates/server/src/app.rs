//! The route table and dispatch: every URL statuslab answers is listed in [`ROUTES`].
//!
//! Method handling is data: each route names its methods, so OPTIONS (204 + `Allow`), 405
//! (+ `Allow`) and 501 (a method no route implements) come from one place.

use crate::bodies::{self, Bodies};
use crate::config::Config;
use crate::negotiate::Format;
use crate::reply::Reply;
use crate::request::Request;
use crate::store::SharedStore;
use crate::{catalog_routes, status};
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::Method;
use http::header::{self, HeaderName, HeaderValue};
use statuslab_catalog::Status;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
    Status,
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

/// Every method statuslab implements; any other gets 501.
pub(crate) const IMPLEMENTED: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];
const READ: &[Method] = &[Method::GET, Method::HEAD, Method::OPTIONS];
const ANY: &[Method] = IMPLEMENTED;

/// The whole URL space.
pub(crate) const ROUTES: &[Route] = &[
    route("/", Handler::Index, READ),
    route("/codes", Handler::Codes, READ),
    route("/codes/{code}", Handler::Code, READ),
    route("/status/{codes}", Handler::Status, ANY),
    route("/{code}", Handler::Httpstat, ANY),
    route("/random/{list}", Handler::Random, ANY),
    route(
        "/websocket/echo",
        Handler::WebSocketEcho,
        &[Method::GET, Method::OPTIONS],
    ),
    route("/openapi.json", Handler::OpenApi, READ),
    route("/health", Handler::Health, READ),
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
    route("/gateway/{upstream}/{*path}", Handler::Gateway, ANY),
    route("/resources/", Handler::Canonical, ANY),
    route("/resources/{name}/", Handler::Canonical, ANY),
    route("/jobs/", Handler::Canonical, ANY),
    route("/jobs/{id}/", Handler::Canonical, ANY),
    route("/codes/", Handler::Canonical, ANY),
];

/// Headers a browser script may read on a cross-origin reply.
const EXPOSE: &str = "Retry-After, Location, Content-Range, Allow, WWW-Authenticate, Proxy-Authenticate, ETag, Last-Modified, Link, RateLimit, RateLimit-Policy";

/// The application: routes, pre-rendered bodies and configuration; shared read-only by every
/// connection (no locks).
#[derive(Debug)]
pub struct App {
    pub(crate) cfg: Arc<Config>,
    pub(crate) store: SharedStore,
    pub(crate) edge: crate::guard::Edge,
    router: matchit::Router<usize>,
    allow: Vec<HeaderValue>,
    pub(crate) bodies: Bodies,
    pub(crate) pages: catalog_routes::Pages,
}

/// A routed request: the route and its path parameters (every route has at most two).
pub(crate) struct Routed<'a> {
    pub(crate) route: &'a Route,
    pub(crate) allow: &'a HeaderValue,
    pub(crate) param: &'a str,
    pub(crate) param2: &'a str,
}

impl App {
    /// Builds the application for a configuration and a store.
    pub fn new(cfg: Config, store: SharedStore) -> App {
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
        let maintenance = cfg.maintenance;
        App {
            cfg: Arc::new(cfg),
            store,
            edge: crate::guard::Edge::new(maintenance),
            router,
            allow,
            bodies: Bodies::new(),
            pages: catalog_routes::Pages::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub(crate) fn route<'a>(&'a self, path: &'a str) -> Option<Routed<'a>> {
        let m = self.router.at(path).ok()?;
        let mut params = m.params.iter().map(|(_, v)| v);
        let (param, param2) = (params.next().unwrap_or(""), params.next().unwrap_or(""));
        let route = &ROUTES[*m.value];
        if route.handler == Handler::Httpstat
            && !(param.len() == 3 && param.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        Some(Routed {
            route,
            allow: &self.allow[*m.value],
            param,
            param2,
        })
    }

    /// Decides, from the head alone, whether a request with content will be refused; the
    /// connection layer calls this before it sends `100 Continue` or reads the content, so
    /// a refused upload is never read.
    pub fn precheck(&self, req: &Request) -> Option<Reply> {
        if self.cfg.proxy && req.uri.scheme().is_some() && req.version != http::Version::HTTP_2 {
            // A proxied upload is judged by the proxy (407/403), not by statuslab's own routes.
            return crate::gateway::admit(self, req).err().map(|r| *r);
        }
        let Some(r) = self.route(req.path()) else {
            let detail = "no route matches this path; see / for the list of routes";
            return Some(self.error(req, 404, detail));
        };
        if req.method == Method::OPTIONS {
            return None;
        }
        if let Some(refused) = self.method_check(req, &r) {
            return Some(refused);
        }
        if r.route.needs_length && !req.headers.contains_key(header::CONTENT_LENGTH) {
            let detail =
                "uploads here must declare their length with Content-Length (no chunked uploads)";
            return Some(self.error(req, 411, detail));
        }
        // The refusals the request would meet after its content was read, decided now so a
        // refused upload never gets `100 Continue`.
        if self.edge.maintenance.load(Ordering::Relaxed)
            && !crate::guard::exempt_from_maintenance(req.path())
        {
            return Some(crate::guard::in_maintenance(self, req));
        }
        if let Some(refused) = self.auth_refusal(req, r.route.handler) {
            return Some(refused);
        }
        let declared = req
            .header(header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok());
        match r.route.handler {
            Handler::Resource if req.method == Method::PATCH => {
                crate::resources::patch_type_refusal(self, req)
            }
            Handler::Jobs => crate::jobs::type_refusal(self, req, declared != Some(0)),
            _ => None,
        }
    }

    /// Bearer-token check on resources and jobs.
    fn auth_refusal(&self, req: &Request, handler: Handler) -> Option<Reply> {
        let guarded = matches!(
            handler,
            Handler::Resources
                | Handler::Resource
                | Handler::Jobs
                | Handler::Job
                | Handler::JobResult
        );
        guarded
            .then(|| crate::auth::require(self, req, crate::auth::scope_for(&req.method)))
            .flatten()
    }

    fn method_check(&self, req: &Request, r: &Routed<'_>) -> Option<Reply> {
        if !IMPLEMENTED.contains(&req.method) {
            let detail = format!("method {} is not implemented by statuslab", req.method);
            return Some(self.error(req, 501, &detail));
        }
        if !r.route.methods.contains(&req.method) {
            let detail = format!(
                "{} does not allow {}; allowed: {}",
                r.route.pattern,
                req.method,
                r.allow.to_str().unwrap_or("")
            );
            return Some(
                self.error(req, 405, &detail)
                    .with_header(header::ALLOW, r.allow.clone()),
            );
        }
        None
    }

    /// Answers a request.
    pub async fn handle(&self, req: &Request) -> Reply {
        let exempt = crate::guard::exempt_from_maintenance(req.path());
        let max_in_flight = if exempt { None } else { self.cfg.max_in_flight };
        let Some(_slot) = self.edge.enter(max_in_flight) else {
            return self.finish(req, crate::guard::shed(self, req));
        };
        // A panicking handler becomes a 500 with an error id; the connection and the server
        // carry on.
        let reply = match AssertUnwindSafe(self.guarded(req)).catch_unwind().await {
            Ok(reply) => reply,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a handler panicked".to_owned());
                self.internal(req, &format!("panic: {what}"))
            }
        };
        self.finish(req, reply)
    }

    /// The edge checks (proxy, maintenance, server-wide rate limit), then the route.
    async fn guarded(&self, req: &Request) -> Reply {
        if self.cfg.proxy && req.uri.scheme().is_some() && req.version != http::Version::HTTP_2 {
            return Box::pin(crate::gateway::proxy(self, req)).await;
        }
        if self.edge.maintenance.load(Ordering::Relaxed)
            && !crate::guard::exempt_from_maintenance(req.path())
        {
            return crate::guard::in_maintenance(self, req);
        }
        let limited = if crate::guard::exempt_from_maintenance(req.path()) {
            None
        } else {
            match crate::guard::server_rate_limit(self, req).await {
                Ok(l) => l,
                Err(refused) => return refused,
            }
        };
        let mut reply = self.dispatch(req).await;
        if let Some((limit, period, decision)) = limited {
            crate::guard::rate_headers(&mut reply, "server", limit, period, &decision);
        }
        reply
    }

    /// Routes and runs the handler. Handlers whose futures are large and whose routes are not
    /// the hot path (gateway, state) are boxed, so the on-demand path keeps a small future and
    /// every connection's task stays small.
    async fn dispatch(&self, req: &Request) -> Reply {
        let Some(routed) = self.route(req.path()) else {
            if req.method == Method::OPTIONS && req.path() == "*" {
                return self.options(
                    req,
                    &HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
                );
            }
            return self.error(
                req,
                404,
                "no route matches this path; see / for the list of routes",
            );
        };
        if req.method == Method::OPTIONS {
            return self.options(req, routed.allow);
        }
        if let Some(refused) = self.method_check(req, &routed) {
            return refused;
        }
        if let Some(refused) = self.auth_refusal(req, routed.route.handler) {
            return refused;
        }
        match routed.route.handler {
            Handler::Index => catalog_routes::index(self, req),
            Handler::Codes => catalog_routes::codes(self, req),
            Handler::Code => catalog_routes::code(self, req, routed.param),
            Handler::OpenApi => catalog_routes::openapi(self, req),
            Handler::Health => catalog_routes::health(self, req),
            Handler::Status | Handler::Httpstat => {
                status::on_demand(self, req, routed.param, false).await
            }
            Handler::Random => status::on_demand(self, req, routed.param, true).await,
            Handler::WebSocketEcho => crate::websocket::handshake(self, req),
            Handler::Resources => Box::pin(crate::resources::collection(self, req)).await,
            Handler::Resource => Box::pin(crate::resources::item(self, req, routed.param)).await,
            Handler::Jobs => Box::pin(crate::jobs::submit(self, req)).await,
            Handler::Job => Box::pin(crate::jobs::monitor(self, req, routed.param)).await,
            Handler::JobResult => Box::pin(crate::jobs::result(self, req, routed.param)).await,
            Handler::Sequence => {
                Box::pin(crate::sequences::step(
                    self,
                    req,
                    routed.param,
                    routed.param2,
                ))
                .await
            }
            Handler::SequenceState => {
                Box::pin(crate::sequences::state(self, req, routed.param)).await
            }
            Handler::Canonical => self.canonical(req),
            Handler::BasicAuth => crate::auth::basic(self, req, routed.param, routed.param2, false),
            Handler::HiddenBasicAuth => {
                crate::auth::basic(self, req, routed.param, routed.param2, true)
            }
            Handler::Bearer => crate::auth::bearer(self, req),
            Handler::RateLimit => {
                crate::guard::on_demand_rate_limit(self, req, routed.param, routed.param2).await
            }
            Handler::Maintenance => crate::guard::maintenance(self, req).await,
            Handler::Gateway => {
                Box::pin(crate::gateway::forward(
                    self,
                    req,
                    routed.param,
                    routed.param2,
                ))
                .await
            }
        }
    }

    /// OPTIONS: 204 with `Allow`, as the table says; a CORS preflight also gets its answer.
    fn options(&self, req: &Request, allow: &HeaderValue) -> Reply {
        let mut reply = Reply::new(status(204)).with_header(header::ALLOW, allow.clone());
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

    /// Adds what every reply carries: CORS headers, so browser clients can read the codes.
    /// A request that set these itself (`header=Access-Control-Allow-Origin:…`) keeps its values,
    /// so clients can test their CORS handling too.
    fn finish(&self, _req: &Request, mut reply: Reply) -> Reply {
        let h = &mut reply.headers;
        h.entry(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .or_insert(HeaderValue::from_static("*"));
        h.entry(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            .or_insert(HeaderValue::from_static(EXPOSE));
        reply
    }

    /// An error reply: `code` with a problem+json body (or JSON, text or HTML if the client
    /// accepts only those) whose `detail` says what was wrong.
    pub(crate) fn error(&self, req: &Request, code: u16, detail: &str) -> Reply {
        let s = status(code);
        let format = Format::negotiate(req.headers.get(header::ACCEPT), Format::Problem)
            .unwrap_or(Format::Problem);
        let mut reply = Reply::new(s).with_body(
            format.content_type(),
            bodies::render(s, format, Some(detail)),
        );
        reply.close = code == 408;
        reply
    }

    /// 301 from a URL with a trailing slash to the canonical one.
    fn canonical(&self, req: &Request) -> Reply {
        let path = req.path().trim_end_matches('/');
        let target = match req.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let detail = format!("the canonical URL is {target}");
        let mut reply = self.error(req, 301, &detail);
        if let Ok(v) = HeaderValue::from_str(&target) {
            reply.headers.insert(header::LOCATION, v);
        }
        reply
    }

    /// 500 for a failure inside statuslab: the detail goes to the log under an error id; the
    /// client gets the id and nothing internal.
    pub(crate) fn internal(&self, req: &Request, err: &dyn std::fmt::Display) -> Reply {
        let id = format!("{:016x}", fastrand::u64(..));
        tracing::error!(error_id = %id, method = %req.method, path = req.path(), error = %err, "request failed");
        let detail = format!(
            "statuslab failed to handle the request; error id {id} (the server log has the details)"
        );
        let mut reply = self.error(req, 500, &detail);
        if let Ok(v) = HeaderValue::from_str(&id) {
            reply
                .headers
                .insert(HeaderName::from_static("x-error-id"), v);
        }
        reply
    }

    /// 503 when the store cannot be reached: on-demand routes keep working.
    pub(crate) fn store_failed(&self, req: &Request, err: crate::store::StoreError) -> Reply {
        match err {
            crate::store::StoreError::Unavailable(why) => {
                let detail = format!(
                    "the state store is unavailable ({why}); on-demand routes such as /status still work"
                );
                self.error(req, 503, &detail).with_header(
                    header::RETRY_AFTER,
                    HeaderValue::from(self.cfg.default_retry_after),
                )
            }
            full @ crate::store::StoreError::Full { .. } => {
                self.error(req, 507, &full.to_string()).with_header(
                    header::RETRY_AFTER,
                    HeaderValue::from(self.cfg.store_full_retry_after),
                )
            }
            other => self.internal(req, &other),
        }
    }

    /// A JSON reply.
    pub(crate) fn json(&self, code: u16, body: impl Into<Bytes>) -> Reply {
        Reply::new(status(code)).with_body(HeaderValue::from_static("application/json"), body)
    }
}

/// A code known to be in 100–599.
pub(crate) fn status(code: u16) -> Status {
    Status::new(code).expect("status codes used by the server are in 100-599")
}

/// Header fields a request may not ask statuslab to set (they would break framing).
pub(crate) fn is_framing_header(name: &http::HeaderName) -> bool {
    matches!(
        *name,
        header::CONTENT_LENGTH
            | header::TRANSFER_ENCODING
            | header::CONNECTION
            | header::UPGRADE
            | header::TE
            | header::TRAILER
    ) || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

#[cfg(test)]
mod tests {
    use super::*;

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
