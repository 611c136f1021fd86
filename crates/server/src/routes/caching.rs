//! httpbin's caching routes: `/cache` (304 to any conditional request), `/cache/{n}`
//! (`Cache-Control: public, max-age=n`), `/etag/{etag}` (RFC 9110 §13 preconditions against
//! that tag, evaluated by the store's precondition code) and `/response-headers`.

use super::echo::{self, Shape};
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::store::precondition::{Conditions, Outcome, Validators};
use crate::wire::reply::{Reply, is_framing_header, known};
use crate::wire::request::Request;
use http::header::{self, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use std::time::SystemTime;

/// Longest `max-age` `/cache/{n}` sets: one year.
const MAX_AGE: u64 = 365 * 24 * 3600;

/// Most header fields `/response-headers` and `/trailers` set.
pub(crate) const MAX_SET_HEADERS: usize = 64;

/// `/cache`: 304 when the request carries `If-Modified-Since` or `If-None-Match` (whatever
/// their values, as httpbin does), else `/get`'s echo with `Last-Modified` and `ETag`.
pub(crate) fn cache(ctx: &Ctx, req: &Request) -> Result<Reply, Problem> {
    if req.headers.contains_key(header::IF_MODIFIED_SINCE)
        || req.headers.contains_key(header::IF_NONE_MATCH)
    {
        return Ok(Reply::new(known(304)));
    }
    let mut reply = echo::answer(ctx, req, Shape::Get)?;
    let now = httpdate::fmt_http_date(SystemTime::now());
    let tag = format!("\"{:032x}\"", fastrand::u128(..));
    let h = &mut reply.headers;
    h.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_str(&now).map_err(Problem::internal)?,
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&tag).map_err(Problem::internal)?,
    );
    Ok(reply)
}

/// `/cache/{n}`: `/get`'s echo with `Cache-Control: public, max-age=n`.
pub(crate) fn cache_for(ctx: &Ctx, req: &Request, n: &str) -> Result<Reply, Problem> {
    let secs = n
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= MAX_AGE)
        .ok_or_else(|| Problem::new(400, format!("{n:?}: max-age is 0 to {MAX_AGE} seconds")))?;
    let mut reply = echo::answer(ctx, req, Shape::Get)?;
    reply.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={secs}")).map_err(Problem::internal)?,
    );
    Ok(reply)
}

/// `/etag/{etag}`: the representation's tag is `"{etag}"`; `If-None-Match` (weak comparison)
/// gives 304, a failed `If-Match` (strong comparison) 412, in RFC 9110 §13.2.2's order.
pub(crate) fn etag(ctx: &Ctx, req: &Request, tag: &str) -> Result<Reply, Problem> {
    let tag = percent_encoding::percent_decode_str(tag).decode_utf8_lossy();
    if tag.is_empty() || !tag.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
        return Err(Problem::new(
            400,
            format!("{tag:?} cannot be an entity tag: visible ASCII without quotes"),
        ));
    }
    let quoted = format!("\"{tag}\"");
    let etag = HeaderValue::from_str(&quoted).map_err(Problem::internal)?;
    let conditions =
        Conditions::from_headers(&req.headers).map_err(|why| Problem::new(400, why))?;
    let read = req.method == http::Method::GET || req.method == http::Method::HEAD;
    // Only the entity tag is a validator here: date conditions have nothing to compare with.
    let conditions = Conditions {
        if_modified_since: None,
        if_unmodified_since: None,
        ..conditions
    };
    let current = Validators {
        etag: &quoted,
        modified: 0,
    };
    match conditions.evaluate(Some(current), read) {
        Outcome::NotModified => Ok(Reply::new(known(304)).with_header(header::ETAG, etag)),
        Outcome::Failed => Err(Problem::new(
            412,
            format!(
                "the current entity tag is {quoted}, which the request's precondition rules out"
            ),
        )
        .with_header(header::ETAG, etag)),
        Outcome::Proceed => {
            let mut reply = echo::answer(ctx, req, Shape::Get)?;
            reply.headers.insert(header::ETAG, etag);
            Ok(reply)
        }
    }
}

/// Header fields named by query parameters, refusing framing fields and bad names or values.
pub(crate) fn named_headers(req: &Request) -> Result<Vec<(HeaderName, HeaderValue)>, Problem> {
    let pairs = echo::query_pairs(req);
    if pairs.len() > MAX_SET_HEADERS {
        return Err(Problem::new(
            400,
            format!("at most {MAX_SET_HEADERS} header fields"),
        ));
    }
    let mut out = Vec::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Problem::new(400, format!("{k:?} is not a header field name")))?;
        if is_framing_header(&name) {
            return Err(Problem::new(
                400,
                format!("{name} is a framing header; statuslab sets it itself"),
            ));
        }
        let value = HeaderValue::from_str(&v)
            .map_err(|_| Problem::new(400, format!("{v:?} is not a header field value")))?;
        out.push((name, value));
    }
    Ok(out)
}

/// `/response-headers?Name=value&…` (GET and POST): each pair becomes a response header field,
/// and the body is the response's header fields as JSON (httpbin's shape).
pub(crate) fn response_headers(req: &Request) -> Result<Reply, Problem> {
    let fields = named_headers(req)?;
    let mut reply = Reply::json(200, Vec::new());
    for (name, value) in &fields {
        if *name == header::CONTENT_TYPE {
            reply.headers.insert(name.clone(), value.clone());
        } else {
            reply.headers.append(name.clone(), value.clone());
        }
    }
    let mut map = Map::new();
    for name in reply.headers.keys() {
        let values: Vec<Value> = reply
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let value = if values.len() == 1 {
            values.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(values)
        };
        map.insert(echo::title_case(name.as_str()), value);
    }
    let mut text = serde_json::to_vec_pretty(&Value::Object(map)).expect("JSON serializes");
    text.push(b'\n');
    reply.body = crate::wire::reply::Body::Full(text.into());
    Ok(reply)
}
