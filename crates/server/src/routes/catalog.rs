//! The catalog over HTTP: `/` (a page of every code with try-it links, no JavaScript needed),
//! `/codes`, `/codes/{code}`, plus `/openapi.json` and `/health`.

use crate::config::Config;
use crate::content::bodies::escape;
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use bytes::Bytes;
use http::HeaderValue;
use serde::Serialize as _;
use serde_json::{Value, json};
use statuslab_catalog::{Info, Source, Status};
use std::fmt::Write as _;

/// Pages rendered once at start-up.
#[derive(Debug)]
pub(crate) struct Pages {
    index: Bytes,
    codes: Bytes,
    openapi: Bytes,
}

impl Pages {
    pub(crate) fn new(cfg: &Config) -> Pages {
        let infos: Vec<Info> = statuslab_catalog::all().map(Status::info).collect();
        Pages {
            index: Bytes::from(index_html()),
            codes: Bytes::from(serde_json::to_vec(&infos).expect("catalog serializes")),
            openapi: Bytes::from(openapi(cfg)),
        }
    }
}

impl Pages {
    /// `GET /`.
    pub(crate) fn index(&self) -> Reply {
        Reply::new(known(200)).with_body(
            HeaderValue::from_static("text/html; charset=utf-8"),
            self.index.clone(),
        )
    }

    /// `GET /codes`.
    pub(crate) fn codes(&self) -> Reply {
        Reply::json(200, self.codes.clone())
    }

    /// `GET /openapi.json`.
    pub(crate) fn openapi(&self) -> Reply {
        Reply::json(200, self.openapi.clone())
    }
}

/// The OpenAPI document as this server answers: a schema marked `x-max-delay` (`"ms"` or
/// `"s"`) gets `--max-delay` as its `maximum`, one marked `x-max-body` gets `--max-body`, one
/// marked `x-max-job-duration` gets `--max-job-duration` (ms), so the bounds a client reads are
/// the ones the server enforces.
pub(crate) fn openapi(cfg: &Config) -> Vec<u8> {
    let mut doc: Value =
        serde_json::from_slice(include_bytes!("openapi.json")).expect("openapi.json is JSON");
    fill_bounds(&mut doc, cfg);
    let mut out = Vec::with_capacity(256 * 1024);
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    doc.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))
    .expect("a JSON value serializes");
    out.push(b'\n');
    out
}

fn fill_bounds(v: &mut Value, cfg: &Config) {
    match v {
        Value::Object(map) => {
            let max = match map.get("x-max-delay").and_then(Value::as_str) {
                Some("ms") => Some(json!(
                    u64::try_from(cfg.max_delay.as_millis()).unwrap_or(u64::MAX)
                )),
                Some("s") => Some(json!(cfg.max_delay.as_secs_f64())),
                _ if map.contains_key("x-max-body") => Some(json!(cfg.max_body)),
                _ => map.get("x-max-job-duration").map(|_| {
                    json!(u64::try_from(cfg.max_job_duration.as_millis()).unwrap_or(u64::MAX))
                }),
            };
            if let Some(max) = max {
                map.insert("maximum".to_owned(), max);
            }
            map.values_mut().for_each(|x| fill_bounds(x, cfg));
        }
        Value::Array(items) => items.iter_mut().for_each(|x| fill_bounds(x, cfg)),
        _ => {}
    }
}

/// `GET /codes/{code}`: any code 100–599, registered or not.
pub(crate) fn code(param: &str) -> Result<Reply, Problem> {
    match param.parse::<Status>() {
        Ok(s) => Ok(Reply::json(
            200,
            serde_json::to_vec(&s.info()).expect("catalog serializes"),
        )),
        Err(e) => Err(Problem::new(404, format!("no catalog entry: {e}"))),
    }
}

/// `GET /health`.
pub(crate) fn health() -> Reply {
    Reply::json(200, Bytes::from_static(b"{\"status\":\"ok\"}"))
}

fn index_html() -> String {
    let mut rows = String::new();
    for s in statuslab_catalog::all() {
        let code = s.code();
        let source = match s.source() {
            Source::Table => "table",
            Source::Registry => "registry",
            Source::Unregistered => "",
        };
        let _ = writeln!(
            rows,
            "<tr id=\"c{code}\"><td><a href=\"/status/{code}\">{code}</a></td><td>{m}</td><td>{r}</td><td>{src}</td><td>{d}</td>\
             <td><a href=\"/status/{code}?format=html\">html</a> <a href=\"/status/{code}?format=json\">json</a> \
             <a href=\"/status/{code}?format=problem\">problem</a> <a href=\"/codes/{code}\">catalog</a></td></tr>",
            m = escape(s.message()),
            r = escape(s.reason()),
            src = source,
            d = escape(s.description()),
        );
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>statuslab</title>\n\
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}}table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}}code{{background:#f4f4f4;padding:0 .2rem}}</style>\n\
</head><body>\n<h1>statuslab</h1>\n\
<p>Every HTTP status code, answered in full dress. Try <code>/status/{{code}}</code> (lists such as <code>500,503</code> or <code>200:0.9,500:0.1</code> pick one), \
<code>/{{code}}?sleep=250ms</code>, <code>/random/200,500-504</code>. Options: <code>sleep</code>, <code>retry_after</code>, <code>location</code>, \
<code>header=Name:Value</code>, <code>then</code> (final code after a 1xx), <code>format</code> (text, json, problem, html). \
Catalog as JSON: <a href=\"/codes\">/codes</a>; API description: <a href=\"/openapi.json\">/openapi.json</a>; WebSocket echo: <code>/websocket/echo</code>.</p>\n\
<h2>httpbin drop-in</h2>\n<p>httpbin and go-httpbin endpoints with their JSON shapes (redirects stay on this host or a <code>--redirect-allow</code> host; sizes and waits are bounded by <code>--max-body</code> and <code>--max-delay</code>):</p>\n<ul>\n\
<li>Echo: <a href=\"/get\">/get</a>, <code>/post</code>, <code>/put</code>, <code>/patch</code>, <code>/delete</code>, <a href=\"/anything\">/anything</a>, <a href=\"/headers\">/headers</a>, <a href=\"/ip\">/ip</a>, <a href=\"/user-agent\">/user-agent</a>, <a href=\"/uuid\">/uuid</a>, <a href=\"/dump/request\">/dump/request</a></li>\n\
<li>Delays and streams: <a href=\"/delay/1\">/delay/{{n}}</a>, <a href=\"/drip\">/drip</a>, <a href=\"/stream/5\">/stream/{{n}}</a>, <a href=\"/stream-bytes/1024\">/stream-bytes/{{n}}</a>, <a href=\"/bytes/64\">/bytes/{{n}}</a>, <a href=\"/range/64\">/range/{{n}}</a>, <a href=\"/links/10/0\">/links/{{n}}/{{offset}}</a>, <a href=\"/sse?count=5&amp;duration=5s\">/sse</a>, <a href=\"/trailers?X-Sum=1\">/trailers</a>, <a href=\"/unstable\">/unstable</a></li>\n\
<li>Redirects: <a href=\"/redirect/3\">/redirect/{{n}}</a>, <a href=\"/relative-redirect/3\">/relative-redirect/{{n}}</a>, <a href=\"/absolute-redirect/3\">/absolute-redirect/{{n}}</a>, <a href=\"/redirect-to?url=/get\">/redirect-to</a></li>\n\
<li>Cookies: <a href=\"/cookies\">/cookies</a>, <a href=\"/cookies/set?name=value\">/cookies/set</a>, <code>/cookies/set/{{name}}/{{value}}</code>, <a href=\"/cookies/delete?name\">/cookies/delete</a></li>\n\
<li>Formats: <a href=\"/json\">/json</a>, <a href=\"/html\">/html</a>, <a href=\"/xml\">/xml</a>, <a href=\"/robots.txt\">/robots.txt</a>, <a href=\"/deny\">/deny</a>, <a href=\"/encoding/utf8\">/encoding/utf8</a>, <a href=\"/image\">/image</a>, <a href=\"/image/png\">/image/{{png,jpeg,webp,svg}}</a>, <a href=\"/gzip\">/gzip</a>, <a href=\"/deflate\">/deflate</a>, <a href=\"/brotli\">/brotli</a>, <a href=\"/zstd\">/zstd</a>, <a href=\"/base64/c3RhdHVzbGFi\">/base64/{{value}}</a></li>\n\
<li>Caching: <a href=\"/cache\">/cache</a>, <a href=\"/cache/60\">/cache/{{n}}</a>, <a href=\"/etag/v1\">/etag/{{etag}}</a>, <a href=\"/response-headers?X-Hello=1\">/response-headers</a></li>\n\
<li>Auth: <a href=\"/basic-auth/user/pass\">/basic-auth/{{user}}/{{passwd}}</a>, <code>/hidden-basic-auth/…</code>, <code>/bearer</code>, <a href=\"/digest-auth/auth/user/pass\">/digest-auth/{{qop}}/{{user}}/{{passwd}}[/{{algorithm}}[/{{stale_after}}]]</a></li>\n</ul>\n\
<table>\n<thead><tr><th>Code</th><th>Message (table)</th><th>RFC reason</th><th>Source</th><th>Description</th><th>Try it</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n</body></html>\n"
    )
}
