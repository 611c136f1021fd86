//! httpbin's echo routes: `/get`, `/post`, `/put`, `/patch`, `/delete`, `/anything`,
//! `/headers`, `/ip`, `/user-agent`, `/uuid` and go-httpbin's `/dump/request`.
//!
//! The JSON shapes are httpbin's: `args`, `form` and `files` map a name to a string, or to a
//! list when the name repeats; `headers` maps each field (title-cased, as httpbin shows them)
//! to its values joined by commas; `data` is the content as text (a `data:` URL when it is not
//! UTF-8); `json` is the content parsed as JSON, or `null`.

use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::wire::reply::Reply;
use crate::wire::request::Request;
use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderValue};
use serde_json::{Map, Value, json};

/// Most parts a multipart body may have; more is 400 (each part costs a map entry).
const MAX_PARTS: usize = 1000;

/// Which fields an echo carries besides `args`, `headers`, `origin` and `url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `/get`: the request line and head only.
    Get,
    /// `/post`, `/put`, `/patch`, `/delete`, `/delay/{n}`: also `data`, `files`, `form`, `json`.
    Body,
    /// `/anything`: all of them and `method`.
    Anything,
}

/// The echo of `req` in httpbin's shape.
pub(crate) fn echo(ctx: &Ctx, req: &Request, shape: Shape) -> Result<Value, Problem> {
    let mut out = Map::new();
    out.insert("args".into(), args(req));
    if shape != Shape::Get {
        let content = Content::parse(req)?;
        out.insert("data".into(), content.data);
        out.insert("files".into(), Value::Object(content.files));
        out.insert("form".into(), Value::Object(content.form));
    }
    out.insert("headers".into(), headers(req));
    if shape != Shape::Get {
        let parsed = serde_json::from_slice::<Value>(&req.body).unwrap_or(Value::Null);
        out.insert("json".into(), parsed);
    }
    if shape == Shape::Anything {
        out.insert("method".into(), Value::from(req.method.as_str()));
    }
    out.insert("origin".into(), Value::from(origin(req)));
    out.insert("url".into(), Value::from(url(ctx, req)));
    Ok(Value::Object(out))
}

/// The echo as a 200 JSON reply.
pub(crate) fn answer(ctx: &Ctx, req: &Request, shape: Shape) -> Result<Reply, Problem> {
    Ok(json_reply(&echo(ctx, req, shape)?))
}

/// A 200 reply with `value` as pretty JSON (as httpbin writes it), ending in a newline.
pub(crate) fn json_reply(value: &Value) -> Reply {
    let mut text = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    text.push(b'\n');
    Reply::json(200, text)
}

/// The query's parameters, httpbin style.
pub(crate) fn args(req: &Request) -> Value {
    let query = req.uri.query().unwrap_or("");
    Value::Object(multi_map(
        form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::from(v.into_owned()))),
    ))
}

/// The query's parameters as (name, value) pairs.
pub(crate) fn query_pairs(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of query parameter `name`.
pub(crate) fn query(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Names to values; a name given twice or more maps to a list.
fn multi_map(pairs: impl Iterator<Item = (String, Value)>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in pairs {
        match out.get_mut(&k) {
            None => {
                out.insert(k, v);
            }
            Some(Value::Array(list)) => list.push(v),
            Some(prev) => *prev = Value::Array(vec![prev.take(), v]),
        }
    }
    out
}

/// The request's header fields, title-cased, each name's values joined by commas.
pub(crate) fn headers(req: &Request) -> Value {
    let mut out = Map::new();
    if req.headers.get(header::HOST).is_none()
        && let Some(host) = req.host()
    {
        // HTTP/2 carries the host in `:authority`; httpbin shows it as Host either way.
        out.insert("Host".into(), Value::from(host));
    }
    for name in req.headers.keys() {
        let joined: Vec<String> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        out.insert(title_case(name.as_str()), Value::from(joined.join(",")));
    }
    Value::Object(out)
}

/// `user-agent` → `User-Agent`.
pub(crate) fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

/// The client's address, as httpbin's `origin` (statuslab does not trust `X-Forwarded-For`).
pub(crate) fn origin(req: &Request) -> String {
    req.peer.ip().to_string()
}

/// The URL the client asked for: scheme, host and target.
pub(crate) fn url(ctx: &Ctx, req: &Request) -> String {
    if req.uri.scheme().is_some() {
        return req.uri.to_string();
    }
    let scheme = if ctx.cfg.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{}{target}", req.host().unwrap_or("localhost"))
}

/// The content as httpbin reports it.
struct Content {
    data: Value,
    form: Map<String, Value>,
    files: Map<String, Value>,
}

impl Content {
    fn parse(req: &Request) -> Result<Content, Problem> {
        let ctype = req.header(header::CONTENT_TYPE).unwrap_or("");
        let bare = ctype
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let mut content = Content {
            data: Value::from(""),
            form: Map::new(),
            files: Map::new(),
        };
        match bare.as_str() {
            "application/x-www-form-urlencoded" => {
                content.form = multi_map(
                    form_urlencoded::parse(&req.body)
                        .map(|(k, v)| (k.into_owned(), Value::from(v.into_owned()))),
                );
            }
            "multipart/form-data" => {
                let boundary = param(ctype, "boundary").ok_or_else(|| {
                    Problem::new(400, "multipart/form-data without a boundary parameter")
                })?;
                let parts = multipart(&req.body, &boundary)
                    .map_err(|why| Problem::new(400, format!("malformed multipart body: {why}")))?;
                let (mut form, mut files) = (Vec::new(), Vec::new());
                for part in parts {
                    let value = text_or_data_url(&part.content, part.content_type.as_deref());
                    if part.filename.is_some() {
                        files.push((part.name, value));
                    } else {
                        form.push((part.name, value));
                    }
                }
                content.form = multi_map(form.into_iter());
                content.files = multi_map(files.into_iter());
            }
            _ => content.data = text_or_data_url(&req.body, None),
        }
        Ok(content)
    }
}

/// UTF-8 content as a string; other bytes as a `data:` URL (base64), as httpbin shows them.
fn text_or_data_url(bytes: &[u8], content_type: Option<&str>) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::from(s),
        Err(_) => Value::from(format!(
            "data:{};base64,{}",
            content_type.unwrap_or("application/octet-stream"),
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )),
    }
}

/// A parameter of a header value such as `multipart/form-data; boundary="x"` (quotes removed).
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Some(v.replace("\\\"", "\"").replace("\\\\", "\\"))
    })
}

/// One part of a `multipart/form-data` body (RFC 7578).
#[derive(Debug, PartialEq, Eq)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    content: Vec<u8>,
}

/// Splits a complete `multipart/form-data` body (already in memory, bounded by `--max-body`)
/// into its parts: a strict, bounded reading of RFC 2046 §5.1.1.
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err("the boundary must have 1 to 70 characters".into());
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let inner = [b"\r\n".as_slice(), delimiter].concat();
    let start = if body.starts_with(delimiter) {
        0
    } else {
        find(body, &inner).ok_or("no boundary line")? + 2
    };
    let mut pos = start + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let rest = trim_padding(rest);
        let rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a boundary line must end with CRLF")?;
        let offset = body.len() - rest.len();
        let (head, content_at) = if rest.starts_with(b"\r\n") {
            (&rest[..0], 2)
        } else {
            let end = find(rest, b"\r\n\r\n").ok_or("a part's header section never ends")?;
            (&rest[..end], end + 4)
        };
        let after = &rest[content_at..];
        let end = find(after, &inner).ok_or("the closing boundary is missing")?;
        parts.push(part(head, &after[..end])?);
        if parts.len() > MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} parts"));
        }
        pos = offset + content_at + end + inner.len();
    }
}

/// Transport padding after a boundary (RFC 2046: linear white space).
fn trim_padding(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

fn part(head: &[u8], content: &[u8]) -> Result<Part, String> {
    let head = std::str::from_utf8(head).map_err(|_| "a part's header is not UTF-8")?;
    let mut disposition = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("{line:?} is not a header field"))?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim().to_owned());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    let disposition = disposition.ok_or("a part without Content-Disposition")?;
    if !disposition
        .split(';')
        .next()
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("form-data"))
    {
        return Err(format!(
            "Content-Disposition {disposition:?} is not form-data"
        ));
    }
    Ok(Part {
        name: param(&disposition, "name").ok_or("a part without a name")?,
        filename: param(&disposition, "filename"),
        content_type,
        content: content.to_vec(),
    })
}

/// The first position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `/headers`.
pub(crate) fn headers_reply(req: &Request) -> Reply {
    json_reply(&json!({ "headers": headers(req) }))
}

/// `/ip`.
pub(crate) fn ip(req: &Request) -> Reply {
    json_reply(&json!({ "origin": origin(req) }))
}

/// `/user-agent`.
pub(crate) fn user_agent(req: &Request) -> Reply {
    let ua = req
        .headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    json_reply(&json!({ "user-agent": ua }))
}

/// `/uuid`: a random (version 4) UUID.
pub(crate) fn uuid() -> Reply {
    json_reply(&json!({ "uuid": uuid_v4() }))
}

fn uuid_v4() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `/dump/request` (go-httpbin): the request as received, as text: request line, header
/// fields (names lower-case, as statuslab keeps them; in the order received), blank line,
/// content.
pub(crate) fn dump(req: &Request) -> Reply {
    let mut out = BytesMut::new();
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let version = match req.version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };
    out.put_slice(format!("{} {target} {version}\r\n", req.method).as_bytes());
    if req.headers.get(header::HOST).is_none()
        && let Some(host) = req.host()
    {
        out.put_slice(format!("host: {host}\r\n").as_bytes());
    }
    for (name, value) in &req.headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.put_slice(&req.body);
    Reply::new(crate::wire::reply::known(200)).with_body(
        HeaderValue::from_static("text/plain; charset=utf-8"),
        out.freeze(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_split_into_fields_and_files() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ  \r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\nline one\r\nline two\r\n--XyZ--\r\nepilogue";
        let parts = multipart(body, "XyZ").expect("well-formed");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "a");
        assert_eq!(parts[0].content, b"1");
        assert_eq!(parts[1].filename.as_deref(), Some("f.txt"));
        assert_eq!(parts[1].content, b"line one\r\nline two");
        let empty = multipart(b"--b--\r\n", "b").expect("no parts");
        assert!(empty.is_empty());
    }

    #[test]
    fn malformed_multipart_is_an_error() {
        for (body, boundary) in [
            (&b"no boundary here"[..], "b"),
            (
                b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
                "b",
            ),
            (b"--b\r\nX: y\r\n\r\nv\r\n--b--", "b"),
            (
                b"--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--b--",
                "b",
            ),
            (b"--bXX", "b"),
            (b"--b--", ""),
        ] {
            assert!(multipart(body, boundary).is_err(), "{body:?}");
        }
    }

    #[test]
    fn repeated_names_become_lists() {
        let m = multi_map(
            [("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::from(v))),
        );
        assert_eq!(Value::Object(m), json!({"a": ["1", "3", "4"], "b": "2"}));
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]));
    }

    #[test]
    fn boundaries_may_be_quoted() {
        assert_eq!(
            param("multipart/form-data; boundary=\"a b\"", "boundary").as_deref(),
            Some("a b")
        );
        assert_eq!(param("text/plain", "boundary"), None);
    }
}
