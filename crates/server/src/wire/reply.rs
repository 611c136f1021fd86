//! `Reply`: what a handler answers, independent of the protocol that carries it.
//!
//! The HTTP/1.1 writer ([`crate::wire::h1`]) turns a reply into bytes with the functions here,
//! so interim responses, framing rules and `Connection: close` are under statuslab's control;
//! the HTTP/2 writer ([`crate::wire::h2`]) maps the same reply onto h2 frames.

use super::clock;
use super::fault::Fault;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use statuslab_catalog::{BodyRule, Status};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The content of a reply.
#[derive(Debug, Clone, Default)]
pub enum Body {
    /// No content at all.
    #[default]
    Empty,
    /// Content held in memory.
    Full(Bytes),
    /// Content of this length that is not sent: the answer to a HEAD relayed from an upstream,
    /// whose `Content-Length` the reply keeps.
    Unsent(usize),
    /// Content written piece by piece, each after a pause (httpbin's drips, streams and
    /// server-sent events), possibly chunked with trailers. (Boxed: every reply moves through
    /// several functions, and an inline `Paced` would double the size of each.)
    Paced(Box<Paced>),
}

/// Content the wire layer writes piece by piece. Every piece is already in memory (bounded by
/// the handler's limits); only the pauses between them make the answer slow.
#[derive(Debug, Clone, Default)]
pub struct Paced {
    /// The pieces, in order.
    pub pieces: Vec<Bytes>,
    /// The wait before each piece.
    pub pause: std::time::Duration,
    /// On HTTP/1.1, `Transfer-Encoding: chunked` with one chunk per piece instead of a
    /// `Content-Length` (HTTP/1.0 clients always get a `Content-Length`).
    pub chunked: bool,
    /// Trailer fields after the last piece: chunked trailers on HTTP/1.1 (announced in
    /// `Trailer`), a trailing HEADERS frame on HTTP/2; HTTP/1.0 clients get none.
    pub trailers: HeaderMap,
}

impl Paced {
    /// The pieces' total length.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// Whether the pieces hold no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Body {
    /// The content's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Full(b) => b.len(),
            Body::Unsent(n) => *n,
            Body::Paced(p) => p.len(),
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An interim (1xx) response sent before the final one.
#[derive(Debug, Clone)]
pub struct Interim {
    /// A code in 100–199 other than 101 (which only a real protocol switch sends).
    pub status: u16,
    /// Its header fields (e.g. `Link` for 103 Early Hints).
    pub headers: HeaderMap,
}

/// The protocol a 101 switches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// RFC 6455 WebSocket, echoing every message.
    WebSocketEcho,
}

/// A final response, plus what the connection layer must do around it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The final status code (100–599; 1xx finals are only 101).
    pub status: Status,
    /// Header fields, without framing headers (`Content-Length`, `Transfer-Encoding`), which
    /// the protocol writer derives from the body and the code's wire rules.
    pub headers: HeaderMap,
    /// The content (dropped on the wire for HEAD and for codes that forbid content).
    pub body: Body,
    /// Interim responses to send first.
    pub interim: Vec<Interim>,
    /// Close the connection after this reply.
    pub close: bool,
    /// Switch protocols after a 101.
    pub upgrade: Option<Upgrade>,
    /// Break the answer on purpose (a retry-testing fault), as the wire layer does it.
    pub fault: Option<Fault>,
    /// The route that answered, as an index the application gives its routes (for its
    /// metrics); `usize::MAX` when none did. The wire layer never reads it.
    pub(crate) route: usize,
    /// Header fields rendered once, ahead of time (a plain on-demand answer): sent before
    /// `headers`, which then hold only what was added to this one reply.
    pub(crate) prebuilt: Option<Arc<Prebuilt>>,
}

/// A reply's fixed header fields, kept as fields, as the HTTP/1.1 lines [`put_final`] would
/// write for them and as the HTTP/2 fields of the whole reply, so a reply that is the same
/// every time costs a copy of those instead of a header map built, walked and dropped per
/// request.
#[derive(Debug)]
pub(crate) struct Prebuilt {
    headers: HeaderMap,
    h1: Bytes,
    /// The content the reply was prebuilt with.
    body: Body,
    /// What [`put_final`] writes after `Date` when the reply still is as prebuilt (`h1`, the
    /// framing, the blank line, the content) and the exchange adds nothing (not HEAD, not
    /// closing): a pipelined batch of plain answers is a copy of this per reply.
    whole: Bytes,
    /// `headers`, a `Date` to be set, and the `Content-Length` `length`, if any: a map that
    /// needs no growing, as `headers` would for these two per request.
    h2: HeaderMap,
    length: Option<usize>,
}

impl Prebuilt {
    /// Renders the `headers` (which must hold no framing field and no `Date`) and `body` of a
    /// reply with code `status`.
    pub(crate) fn new(status: Status, headers: HeaderMap, body: Body) -> Prebuilt {
        let mut out = BytesMut::new();
        for (name, value) in &headers {
            put_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
        let h1 = out.split().freeze();
        let mut bare = Reply::new(status);
        bare.body = body;
        out.put_slice(&h1);
        put_rest(&mut out, &bare, false, false);
        let length = bare.has_content_length().then(|| bare.content_length());
        let mut h2 = headers.clone();
        h2.insert(header::DATE, HeaderValue::from_static(""));
        if let Some(n) = length {
            h2.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        Prebuilt {
            headers,
            h1,
            body: bare.body,
            whole: out.freeze(),
            h2,
            length,
        }
    }

    /// The content, for each reply made from this one.
    pub(crate) fn body(&self) -> &Body {
        &self.body
    }

    /// Everything after `Date`, if `reply` (made from this one) is still as prebuilt and the
    /// exchange adds nothing to it.
    fn whole(&self, reply: &Reply, head_only: bool, close: bool) -> Option<&[u8]> {
        let same_body = match (&reply.body, &self.body) {
            (Body::Empty, Body::Empty) => true,
            (Body::Full(a), Body::Full(b)) => a.as_ptr() == b.as_ptr() && a.len() == b.len(),
            _ => false,
        };
        (same_body && !head_only && !close && reply.headers.is_empty()).then_some(&self.whole[..])
    }

    /// The fields.
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The HTTP/2 fields of the reply, `Date` to be set, if its content length is `length`.
    pub(crate) fn h2(&self, length: Option<usize>) -> Option<&HeaderMap> {
        (self.length == length).then_some(&self.h2)
    }
}

impl Reply {
    /// A reply with no headers and no content.
    pub fn new(status: Status) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            body: Body::Empty,
            interim: Vec::new(),
            close: false,
            upgrade: None,
            fault: None,
            route: usize::MAX,
            prebuilt: None,
        }
    }

    /// A reply with a JSON body.
    pub(crate) fn json(code: u16, body: impl Into<Bytes>) -> Reply {
        Reply::new(known(code)).with_body(HeaderValue::from_static("application/json"), body)
    }

    /// Sets the content and its type.
    pub fn with_body(mut self, content_type: HeaderValue, body: impl Into<Bytes>) -> Reply {
        self.headers.insert(header::CONTENT_TYPE, content_type);
        self.body = Body::Full(body.into());
        self
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.append(name, value);
        self
    }

    /// Whether the wire may carry this reply's content, per the code's rules (RFC 9110 §6.4.1).
    pub fn body_allowed(&self) -> bool {
        self.status.wire().body.allows_body()
    }

    /// Whether the head carries `Content-Length` (never on 1xx and 204, RFC 9110 §8.6; not on
    /// 304, whose length would describe the selected representation).
    pub fn has_content_length(&self) -> bool {
        let code = self.status.code();
        !(code < 200 || code == 204 || code == 304 || self.is_chunked())
    }

    /// Whether the content goes out chunked (a chunked [`Paced`] body a code allows).
    pub fn is_chunked(&self) -> bool {
        matches!(&self.body, Body::Paced(p) if p.chunked) && self.body_allowed()
    }

    /// The content length written in the head: 0 for 205, the body's length otherwise.
    pub fn content_length(&self) -> usize {
        match self.status.wire().body {
            BodyRule::Allowed => self.body.len(),
            BodyRule::Empty | BodyRule::Forbidden => 0,
        }
    }
}

/// A code statuslab itself uses, known to be in 100–599.
pub(crate) fn known(code: u16) -> Status {
    Status::new(code).expect("status codes used by the server are in 100-599")
}

/// Header fields a request may not ask statuslab to set (they would break framing).
pub(crate) fn is_framing_header(name: &HeaderName) -> bool {
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

/// Writes an HTTP/1.1 status line, e.g. `HTTP/1.1 404 Not Found`, with the RFC reason phrase.
pub(crate) fn put_status_line(out: &mut BytesMut, code: u16) {
    match STATUS_LINES.get(usize::from(code).wrapping_sub(100)) {
        Some(line) => out.put_slice(line),
        None => out.put_slice(&status_line(code)),
    }
}

/// The status line of every code 100–599, rendered once (the hot path copies it).
static STATUS_LINES: std::sync::LazyLock<Vec<Vec<u8>>> =
    std::sync::LazyLock::new(|| (100..=599).map(status_line).collect());

fn status_line(code: u16) -> Vec<u8> {
    let reason = Status::new(code).map_or("", Status::wire_reason);
    format!("HTTP/1.1 {code} {reason}\r\n").into_bytes()
}

/// Writes the `Date` field: the date of the instant `at`, formatted at most once a second.
fn put_date(out: &mut BytesMut, at: Instant) {
    with_date(at, |date| {
        out.put_slice(b"Date: ");
        out.put_slice(date);
        out.put_slice(b"\r\n");
    });
}

/// Names whose conventional spelling is not plain title case.
const SPELLINGS: &[(&str, &str)] = &[
    ("www-authenticate", "WWW-Authenticate"),
    ("etag", "ETag"),
    ("te", "TE"),
    ("ratelimit", "RateLimit"),
    ("ratelimit-policy", "RateLimit-Policy"),
    ("sec-websocket-accept", "Sec-WebSocket-Accept"),
    ("sec-websocket-version", "Sec-WebSocket-Version"),
    ("sec-websocket-protocol", "Sec-WebSocket-Protocol"),
    ("sec-websocket-extensions", "Sec-WebSocket-Extensions"),
];

/// Writes a header name as it is conventionally spelled (`Retry-After`, `WWW-Authenticate`):
/// names are case-insensitive, but people grep `curl -i` output for the familiar spelling.
fn put_name(out: &mut BytesMut, name: &[u8]) {
    if let Some((_, spelled)) = SPELLINGS.iter().find(|(lower, _)| lower.as_bytes() == name) {
        out.put_slice(spelled.as_bytes());
        return;
    }
    // Copied in one go, then title-cased in place: a `put_u8` per byte checked capacity
    // byte by byte, and showed in profiles of the plain request path.
    let start = out.len();
    out.put_slice(name);
    let mut upper = true;
    for b in &mut out[start..] {
        if upper {
            b.make_ascii_uppercase();
        }
        upper = *b == b'-';
    }
}

/// Writes one header field line.
pub(crate) fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    put_name(out, name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Writes the HTTP/1.1 head of an interim response.
pub(crate) fn put_interim(out: &mut BytesMut, interim: &Interim) {
    put_status_line(out, interim.status);
    for (name, value) in &interim.headers {
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// Writes the HTTP/1.1 head (and, unless `head_only`, the content) of a final reply made at
/// `at` (its `Date`).
pub(crate) fn put_final(
    out: &mut BytesMut,
    reply: &Reply,
    head_only: bool,
    close: bool,
    at: Instant,
) {
    put_status_line(out, reply.status.code());
    if let Some(p) = &reply.prebuilt {
        // Date first, as below; a prebuilt reply never holds one.
        put_date(out, at);
        if let Some(whole) = p.whole(reply, head_only, close) {
            out.put_slice(whole);
            return;
        }
        out.put_slice(&p.h1);
    } else if !reply.headers.contains_key(header::DATE) {
        // A Date the request asked for (`header=Date:...`) replaces the clock's: Date is a
        // singleton field (RFC 9110 §6.6.1), never sent twice.
        put_date(out, at);
    }
    put_rest(out, reply, head_only, close);
}

/// What [`put_final`] writes after the status line, `Date` and the prebuilt fields: the
/// reply's own fields, the framing, the blank line and the content.
fn put_rest(out: &mut BytesMut, reply: &Reply, head_only: bool, close: bool) {
    let mut said_close = false;
    for (name, value) in &reply.headers {
        if close && !said_close && *name == header::CONNECTION {
            // The reply names connection options (`upgrade` on 426); the connection is
            // closing anyway, so the same field must say so too.
            said_close = true;
            let closes = value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            if !closes {
                let mut joined = value.as_bytes().to_vec();
                joined.extend_from_slice(b", close");
                put_header(out, b"connection", &joined);
                continue;
            }
        }
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if reply.has_content_length() {
        // Spelled out: the framing fields' names need no spelling look-up.
        out.put_slice(b"Content-Length: ");
        out.put_slice(
            itoa::Buffer::new()
                .format(reply.content_length())
                .as_bytes(),
        );
        out.put_slice(b"\r\n");
    }
    if reply.is_chunked() {
        out.put_slice(b"Transfer-Encoding: chunked\r\n");
        if let Body::Paced(p) = &reply.body
            && !p.trailers.is_empty()
        {
            let names: Vec<&str> = p.trailers.keys().map(HeaderName::as_str).collect();
            put_header(out, b"trailer", names.join(", ").as_bytes());
        }
    }
    if close && !said_close {
        out.put_slice(b"Connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    if !head_only
        && reply.body_allowed()
        && let Body::Full(b) = &reply.body
    {
        out.put_slice(b);
    }
}

/// Writes one piece of a paced body: as a chunk when `chunked`, else as it is.
pub(crate) fn put_piece(out: &mut BytesMut, piece: &[u8], chunked: bool) {
    if piece.is_empty() {
        // An empty chunk would end the content.
        return;
    }
    if chunked {
        out.put_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.put_slice(piece);
        out.put_slice(b"\r\n");
    } else {
        out.put_slice(piece);
    }
}

/// Writes the last chunk and the trailer section (RFC 9112 §7.1.2).
pub(crate) fn put_last_chunk(out: &mut BytesMut, trailers: &HeaderMap) {
    out.put_slice(b"0\r\n");
    for (name, value) in trailers {
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// The IMF-fixdate of one second of the wall clock, as a header value, and the monotonic
/// instants that second spans on this thread.
struct Dated {
    from: Instant,
    until: Instant,
    value: HeaderValue,
}

thread_local! {
    static DATE: RefCell<Option<Dated>> = const { RefCell::new(None) };
}

/// Runs `f` with the IMF-fixdate (RFC 9110 §5.6.7) of the instant `at`, reformatted at most once
/// a second per thread, so the hot path neither allocates nor shares a lock for it (nor reads
/// the clock: see [`clock`]). An instant within the second last formatted costs two
/// comparisons: the wall clock is consulted only when a reply falls outside it.
pub(crate) fn with_date<R>(at: Instant, f: impl FnOnce(&[u8]) -> R) -> R {
    dated(at, |d| f(d.value.as_bytes()))
}

/// The date of the instant `at` as a header value (for HTTP/2 replies): shared, not copied.
pub(crate) fn date_value(at: Instant) -> HeaderValue {
    dated(at, |d| d.value.clone())
}

/// Runs `f` with the [`Dated`] second `at` falls in (see [`with_date`]).
fn dated<R>(at: Instant, f: impl FnOnce(&Dated) -> R) -> R {
    DATE.with(|cell| {
        let mut dated = cell.borrow_mut();
        let d = match &mut *dated {
            Some(d) if d.from <= at && at < d.until => d,
            stale => {
                let now = clock::wall(at);
                // How far into its second `at` is.
                let nanos = now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let into = Duration::from_nanos(nanos.into());
                let text = httpdate::fmt_http_date(now);
                stale.insert(Dated {
                    from: at.checked_sub(into).unwrap_or(at),
                    until: at + (Duration::from_secs(1) - into),
                    value: HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("")),
                })
            }
        };
        f(d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instant is dated with the second of the wall clock it falls in, whether it is
    /// within the second last formatted, past it, or before it (an earlier request answered
    /// later).
    #[test]
    fn dates_are_the_second_each_instant_falls_in() {
        let date = |at: Instant| {
            with_date(at, |d| {
                httpdate::parse_http_date(std::str::from_utf8(d).expect("ASCII")).expect("a date")
            })
        };
        let at = Instant::now();
        let first = date(at);
        let mut last = first;
        for ms in (0..3_200).step_by(20) {
            let then = at + Duration::from_millis(ms);
            let (dated, wall) = (date(then), clock::wall(then));
            let behind = wall
                .duration_since(dated)
                .expect("not dated ahead of its time");
            assert!(
                behind < Duration::from_millis(1_001),
                "{ms} ms: {behind:?} behind"
            );
            assert!(dated >= last, "{ms} ms: dated before the instant before it");
            last = dated;
        }
        assert!(last.duration_since(first).expect("later") >= Duration::from_secs(3));
        assert_eq!(date(at), first, "an earlier instant keeps its own second");
    }

    #[test]
    fn chunked_paced_bodies_announce_their_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", HeaderValue::from_static("7"));
        let mut reply = Reply::new(known(200));
        reply.body = Body::Paced(Box::new(Paced {
            pieces: vec![Bytes::from_static(b"abc"), Bytes::new()],
            chunked: true,
            trailers: trailers.clone(),
            ..Paced::default()
        }));
        let mut out = BytesMut::new();
        put_final(&mut out, &reply, false, false, Instant::now());
        let head = String::from_utf8(out.to_vec()).expect("ASCII");
        assert!(head.contains("Transfer-Encoding: chunked\r\nTrailer: x-sum\r\n"));
        assert!(!head.contains("Content-Length"));
        assert!(head.ends_with("\r\n\r\n"));
        let mut body = BytesMut::new();
        put_piece(&mut body, b"abc", true);
        put_piece(&mut body, b"", true);
        put_last_chunk(&mut body, &trailers);
        assert_eq!(&body[..], b"3\r\nabc\r\n0\r\nX-Sum: 7\r\n\r\n");
    }

    #[test]
    fn header_names_are_spelled_conventionally() {
        let mut out = BytesMut::new();
        put_header(&mut out, b"retry-after", b"1");
        put_header(&mut out, b"www-authenticate", b"Basic");
        put_header(&mut out, b"x-a-b", b"v");
        put_header(&mut out, b"content-length", b"0");
        assert_eq!(
            &out[..],
            b"Retry-After: 1\r\nWWW-Authenticate: Basic\r\nX-A-B: v\r\nContent-Length: 0\r\n"
        );
    }
}
