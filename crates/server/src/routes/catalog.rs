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
/// marked `x-max-job-duration` gets `--max-job-duration` (`"ms"`: as its `maximum`;
/// `"pattern"`: as a `pattern` of the duration strings within it), so the bounds a client reads
/// are the ones the server enforces.
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
                _ => match map.get("x-max-job-duration").and_then(Value::as_str) {
                    Some("pattern") => {
                        let pattern = duration_pattern(cfg.max_job_duration);
                        map.insert("pattern".to_owned(), json!(pattern));
                        None
                    }
                    Some(_) => Some(json!(
                        u64::try_from(cfg.max_job_duration.as_millis()).unwrap_or(u64::MAX)
                    )),
                    None => None,
                },
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

/// The duration strings a job description may name (a whole number of `ms`, `s` or `m`) that
/// are at most `max`, as an anchored pattern: the bound the server enforces (422 past it),
/// stated where a JSON Schema can state it.
fn duration_pattern(max: std::time::Duration) -> String {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    let units: Vec<String> = [("ms", 1), ("s", 1000), ("m", 60_000)]
        .iter()
        .map(|(unit, per)| format!("({}){unit}", at_most(ms / per)))
        .collect();
    format!("^({})$", units.join("|"))
}

/// An alternation of the decimal numbers 0 to `n`, written with at most as many digits as `n`
/// (leading zeros allowed within that width).
fn at_most(n: u64) -> String {
    let digits = n.to_string();
    let len = digits.len();
    let mut alts = Vec::new();
    if len > 1 {
        alts.push(format!("[0-9]{{1,{}}}", len - 1));
    }
    for (i, d) in digits.bytes().enumerate() {
        let d = d - b'0';
        if d == 0 {
            continue;
        }
        let below = if d == 1 {
            "0".to_owned()
        } else {
            format!("[0-{}]", d - 1)
        };
        let rest = len - i - 1;
        let tail = if rest == 0 {
            String::new()
        } else {
            format!("[0-9]{{{rest}}}")
        };
        alts.push(format!("{}{below}{tail}", &digits[..i]));
    }
    alts.push(digits);
    alts.join("|")
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn at_most_names_exactly_the_numbers_up_to_n() {
        assert_eq!(at_most(0), "0");
        assert_eq!(at_most(5), "[0-4]|5");
        assert_eq!(at_most(10), "[0-9]{1,1}|0[0-9]{1}|10");
        assert_eq!(
            at_most(3_600_000),
            "[0-9]{1,6}|[0-2][0-9]{6}|3[0-5][0-9]{5}|3600000"
        );
        assert_eq!(at_most(60), "[0-9]{1,1}|[0-5][0-9]{1}|60");
    }

    #[test]
    fn the_job_duration_pattern_follows_the_configured_bound() {
        assert_eq!(
            duration_pattern(Duration::from_secs(90)),
            "^(([0-9]{1,4}|[0-8][0-9]{4}|90000)ms|([0-9]{1,1}|[0-8][0-9]{1}|90)s|(0|1)m)$"
        );
        let cfg = Config {
            max_job_duration: Duration::from_secs(90),
            ..Config::default()
        };
        let doc: Value = serde_json::from_slice(&openapi(&cfg)).expect("JSON");
        let duration = &doc["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["duration"]["anyOf"];
        assert_eq!(duration[0]["maximum"], 90_000);
        assert_eq!(
            duration[1]["pattern"],
            duration_pattern(Duration::from_secs(90))
        );
        // The document as written states the default bound.
        let raw: Value = serde_json::from_slice(include_bytes!("openapi.json")).expect("JSON");
        let duration = &raw["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["duration"]["anyOf"];
        assert_eq!(
            duration[1]["pattern"],
            duration_pattern(Config::default().max_job_duration)
        );
    }
}
