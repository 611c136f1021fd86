//! httpbin's cookie routes: `/cookies` (what the client sent), `/cookies/set?name=value`,
//! `/cookies/set/{name}/{value}` and `/cookies/delete?name`, which set or expire cookies and
//! answer 302 to `/cookies`, as httpbin does.

use super::echo;
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use http::header::{self, HeaderValue};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

/// Most cookies one request may set or delete (each becomes a `Set-Cookie` field).
const MAX_COOKIES: usize = 32;

/// The cookies the request carries: name → value (the last one wins, as httpbin shows them).
fn sent(req: &Request) -> Map<String, Value> {
    let mut out = Map::new();
    for v in req.headers.get_all(header::COOKIE) {
        let text = String::from_utf8_lossy(v.as_bytes());
        for pair in text.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            out.insert(name.trim().to_owned(), Value::from(value));
        }
    }
    out
}

/// `/cookies`.
pub(crate) fn show(req: &Request) -> Reply {
    echo::json_reply(&json!({ "cookies": sent(req) }))
}

/// A cookie name is an RFC 9110 token; a value is cookie-octets (RFC 6265 §4.1.1).
fn check(name: &str, value: &str) -> Result<(), Problem> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let octet = |b: u8| {
        b == 0x21
            || (0x23..=0x2b).contains(&b)
            || (0x2d..=0x3a).contains(&b)
            || (0x3c..=0x5b).contains(&b)
            || (0x5d..=0x7e).contains(&b)
    };
    if name.is_empty() || !name.bytes().all(token) {
        return Err(Problem::new(
            400,
            format!("{name:?} is not a cookie name (a token: letters, digits, !#$%&'*+-.^_`|~)"),
        ));
    }
    if !value.bytes().all(octet) {
        return Err(Problem::new(
            400,
            format!(
                "{value:?} is not a cookie value: no spaces, quotes, commas, semicolons or backslashes (RFC 6265)"
            ),
        ));
    }
    Ok(())
}

fn to_cookies(cookies: &[String]) -> Result<Reply, Problem> {
    if cookies.len() > MAX_COOKIES {
        return Err(Problem::new(
            400,
            format!("at most {MAX_COOKIES} cookies per request"),
        ));
    }
    let mut reply =
        Reply::new(known(302)).with_header(header::LOCATION, HeaderValue::from_static("/cookies"));
    for c in cookies {
        let v = HeaderValue::from_str(c).map_err(|e| Problem::new(400, e.to_string()))?;
        reply.headers.append(header::SET_COOKIE, v);
    }
    Ok(reply)
}

/// `/cookies/set?name=value&…`: sets each, then 302 to `/cookies`.
pub(crate) fn set_query(req: &Request) -> Result<Reply, Problem> {
    let mut cookies = Vec::new();
    for (name, value) in echo::query_pairs(req) {
        check(&name, &value)?;
        cookies.push(format!("{name}={value}; Path=/"));
    }
    to_cookies(&cookies)
}

/// `/cookies/set/{name}/{value}`.
pub(crate) fn set_path(name: &str, value: &str) -> Result<Reply, Problem> {
    let name = percent_decode_str(name).decode_utf8_lossy();
    let value = percent_decode_str(value).decode_utf8_lossy();
    check(&name, &value)?;
    to_cookies(&[format!("{name}={value}; Path=/")])
}

/// `/cookies/delete?name&…`: expires each, then 302 to `/cookies`.
pub(crate) fn delete(req: &Request) -> Result<Reply, Problem> {
    let mut cookies = Vec::new();
    for (name, _) in echo::query_pairs(req) {
        check(&name, "")?;
        cookies.push(format!(
            "{name}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
        ));
    }
    to_cookies(&cookies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_checked() {
        assert!(check("session", "abc123").is_ok());
        assert!(check("a b", "x").is_err());
        assert!(check("", "x").is_err());
        assert!(check("a", "x;y").is_err());
        assert!(check("a", "\"q\"").is_err());
        assert!(check("a", "").is_ok());
    }
}
