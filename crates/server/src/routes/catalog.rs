//! The catalog over HTTP: `/` (a page of every code with try-it links, no JavaScript needed),
//! `/codes`, `/codes/{code}`, plus `/openapi.json` and `/health`.

use crate::content::bodies::escape;
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use bytes::Bytes;
use http::HeaderValue;
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
    pub(crate) fn new() -> Pages {
        let infos: Vec<Info> = statuslab_catalog::all().map(Status::info).collect();
        Pages {
            index: Bytes::from(index_html()),
            codes: Bytes::from(serde_json::to_vec(&infos).expect("catalog serializes")),
            openapi: Bytes::from_static(include_bytes!("openapi.json")),
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
<table>\n<thead><tr><th>Code</th><th>Message (table)</th><th>RFC reason</th><th>Source</th><th>Description</th><th>Try it</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n</body></html>\n"
    )
}
