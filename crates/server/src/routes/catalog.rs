//! The catalog over HTTP: `/` (the page in `page.rs`), `/codes`, `/codes/{code}`, plus
//! `/openapi.json` and `/health`.

use super::page;
use crate::config::Config;
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use bytes::Bytes;
use http::{HeaderValue, header};
use serde::Serialize as _;
use serde_json::{Value, json};
use statuslab_catalog::{Info, Status};

/// Pages rendered once at start-up.
#[derive(Debug)]
pub(crate) struct Pages {
    index: Bytes,
    index_csp: HeaderValue,
    codes: Bytes,
    openapi: Bytes,
}

impl Pages {
    /// Renders every page for this configuration (the index links `/metrics` when it
    /// answers; the OpenAPI document carries this server's bounds).
    pub(crate) fn new(cfg: &Config) -> Pages {
        let infos: Vec<Info> = statuslab_catalog::all().map(Status::info).collect();
        let index = page::render(cfg.metrics);
        Pages {
            index: Bytes::from(index.html),
            index_csp: index.csp,
            codes: Bytes::from(serde_json::to_vec(&infos).expect("catalog serializes")),
            openapi: Bytes::from(openapi(cfg)),
        }
    }
}

impl Pages {
    /// `GET /`.
    pub(crate) fn index(&self) -> Reply {
        Reply::new(known(200))
            .with_body(
                HeaderValue::from_static("text/html; charset=utf-8"),
                self.index.clone(),
            )
            .with_header(header::CONTENT_SECURITY_POLICY, self.index_csp.clone())
            .with_header(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
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
