//! What every test module shares: an in-process server on an OS-assigned port, and a raw-socket
//! HTTP/1.1 client that shows what ordinary clients hide (interim responses, exact framing,
//! whether the server closed the connection).

use statuslab_server::{Config, testing};
use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single read may wait before the test fails instead of hanging.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The deterministic representation behind 206 and 416: byte `i` is `b'a' + i % 26`.
pub(crate) fn representation() -> Vec<u8> {
    (0..statuslab_server::REPRESENTATION_LEN)
        .map(|i| b'a' + (i % 26) as u8)
        .collect()
}

/// The methods of the routes that answer any method (`/status/{codes}`, `/{code}`, …), in the
/// order `Allow` lists them: every method statuslab implements but TRACE and QUERY, which only
/// the echoes (`/anything`, `/dump/request`) implement.
pub(crate) const ANY: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Runs `f` on every case and fails once, listing every case that failed.
#[track_caller]
pub(crate) fn check<T: Debug>(
    cases: impl IntoIterator<Item = T>,
    f: impl Fn(&T) -> Result<(), String>,
) {
    let mut failures = Vec::new();
    let mut n = 0usize;
    for case in cases {
        n += 1;
        if let Err(why) = f(&case) {
            failures.push(format!("  {case:?}: {why}"));
        }
    }
    assert!(n > 0, "check() was given no cases");
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Fails with `why` unless `cond` holds; for building `Result<(), String>` checks.
pub(crate) fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why()) }
}

/// A server on `127.0.0.1:0`, running on a thread and runtime of its own (so a busy test
/// runtime cannot starve it, nor it the test): [`statuslab_server::testing`], the same server
/// the crate offers to other projects' tests. When the test drops it, the server is stopped and
/// its result checked: a server that returns an error — a background task or a connection task
/// panicked — fails the test.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    inner: testing::TestServer,
}

impl TestServer {
    /// A server with the default configuration (but an OS-assigned port).
    pub(crate) async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose configuration `tune` adjusts (from the test defaults: `127.0.0.1:0`, no
    /// access log, each test's state in memory, so no data directory is shared between tests
    /// running in parallel).
    pub(crate) async fn start_with(tune: impl FnOnce(&mut Config)) -> TestServer {
        let inner = testing::Builder::new().config(tune).spawn();
        let addr = inner.addr();
        assert_ne!(addr.port(), 0, "the OS assigns a port");
        TestServer { addr, inner }
    }

    /// `127.0.0.1:PORT`, as a `Host` header names the server.
    pub(crate) fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        self.inner.url(path)
    }

    /// A new raw connection.
    pub(crate) async fn connect(&self) -> Conn {
        Conn::connect(self.addr).await
    }

    /// Sends `request` on a new connection and reads the response (interim ones included).
    pub(crate) async fn exchange(&self, request: &[u8]) -> Exchange {
        let mut conn = self.connect().await;
        conn.send(request).await;
        conn.read_exchange(is_head(request)).await
    }

    /// `GET {target}` over HTTP/1.1 with `Host` and the given extra header fields.
    pub(crate) async fn get(&self, target: &str, headers: &[(&str, &str)]) -> Exchange {
        self.exchange(&request("GET", target, &self.host(), headers, b""))
            .await
    }

    /// Tells the server to shut down (stop accepting, finish what is in flight).
    pub(crate) fn shutdown(&mut self) {
        self.inner.shutdown();
    }

    /// Waits for `Server::run` to return, failing the test if it takes longer than `limit`.
    pub(crate) async fn stopped(&mut self, limit: Duration) -> io::Result<()> {
        self.inner
            .stopped(limit)
            .await
            .expect("Server::run returns after shutdown, once")
    }
}

/// Whether a raw request is a HEAD request (its response has no content).
fn is_head(request: &[u8]) -> bool {
    request.starts_with(b"HEAD ")
}

/// An HTTP/1.1 request head with `Host` (when `host` is not empty), the extra fields and,
/// when `body` is not empty, `Content-Length` and the body.
pub(crate) fn request(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    if !host.is_empty() {
        out.push_str(&format!("Host: {host}\r\n"));
    }
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// How a response's content was delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No content by rule: HEAD, 1xx, 204, 304.
    None,
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Read until the server closed the connection.
    UntilClose,
}

/// One response as it appeared on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// `HTTP/1.1`.
    pub(crate) version: String,
    pub(crate) status: u16,
    /// The reason phrase, exactly as sent (may be empty).
    pub(crate) reason: String,
    /// Header fields in order, names as sent.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) framing: Framing,
    /// The head's bytes, for failure messages.
    pub(crate) head: String,
}

impl Response {
    /// The first value of `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `name` is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The value of `name`, failing with the head when it is missing.
    #[track_caller]
    pub(crate) fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} in:\n{}", self.head))
    }

    /// Comma-separated list tokens of every `name` field, trimmed.
    pub(crate) fn tokens(&self, name: &str) -> Vec<String> {
        self.all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The content as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("the body is UTF-8")
    }

    /// The content as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body is not JSON ({e}):\n{}\n{}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Header fields as sorted `(lower-case name, value)` pairs, without `Date`.
    pub(crate) fn comparable_headers(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .filter(|(n, _)| n != "date")
            .collect();
        v.sort();
        v
    }
}

/// The responses to one request: interim (1xx) ones, then the final one.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) interim: Vec<Response>,
    pub(crate) last: Response,
}

impl std::ops::Deref for Exchange {
    type Target = Response;
    fn deref(&self) -> &Response {
        &self.last
    }
}

/// A raw client connection.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> Conn {
        let stream = tokio::time::timeout(READ_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes bytes as they are.
    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// Bytes received but not yet parsed.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Reads more bytes; `false` at EOF.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no response within {READ_TIMEOUT:?}; received so far: {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            })
            .unwrap_or(0); // a reset counts as the end of the stream
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads one response head and its content; `head_request` says the request was HEAD.
    /// Panics (failing the test) on anything that is not strict HTTP/1.1 framing.
    pub(crate) async fn read_response(&mut self, head_request: bool) -> Response {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                panic!(
                    "the connection closed before a complete response head; received: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head_bytes: Vec<u8> = self.buf.drain(..end + 4).collect();
        let head = String::from_utf8(head_bytes[..end].to_vec())
            .unwrap_or_else(|_| panic!("the response head is not UTF-8: {head_bytes:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let (version, status, reason) = parse_status_line(status_line)
            .unwrap_or_else(|| panic!("malformed status line {status_line:?} in:\n{head}"));
        let mut headers = Vec::new();
        for line in lines {
            assert!(
                !line.contains('\r') && !line.contains('\n'),
                "bare CR or LF in a header line {line:?} of:\n{head}"
            );
            assert!(
                !line.starts_with([' ', '\t']),
                "obsolete line folding in:\n{head}"
            );
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line without a colon {line:?} in:\n{head}"));
            assert!(
                !name.is_empty() && name.bytes().all(is_tchar),
                "bad header name {name:?} in:\n{head}"
            );
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut resp = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            framing: Framing::None,
            head,
        };
        if head_request || status < 200 || status == 204 || status == 304 {
            return resp;
        }
        if let Some(te) = resp.header("transfer-encoding") {
            assert!(
                te.eq_ignore_ascii_case("chunked"),
                "unexpected Transfer-Encoding {te:?}"
            );
            resp.framing = Framing::Chunked;
            resp.body = self.read_chunked().await;
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl
                .parse()
                .unwrap_or_else(|_| panic!("bad Content-Length {cl:?} in:\n{}", resp.head));
            resp.framing = Framing::Length;
            while self.buf.len() < n {
                if !self.fill().await {
                    panic!(
                        "the connection closed after {} of {n} content bytes:\n{}",
                        self.buf.len(),
                        resp.head
                    );
                }
            }
            resp.body = self.buf.drain(..n).collect();
        } else {
            resp.framing = Framing::UntilClose;
            while self.fill().await {}
            resp.body = std::mem::take(&mut self.buf);
        }
        resp
    }

    async fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                assert!(self.fill().await, "EOF inside chunked content");
            };
            let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            self.buf.drain(..line_end + 2);
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let end = loop {
                        if let Some(i) = find(&self.buf, b"\r\n") {
                            break i;
                        }
                        assert!(self.fill().await, "EOF inside the trailer section");
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        return body;
                    }
                }
            }
            while self.buf.len() < size + 2 {
                assert!(self.fill().await, "EOF inside a chunk");
            }
            body.extend_from_slice(&self.buf[..size]);
            assert_eq!(
                &self.buf[size..size + 2],
                b"\r\n",
                "chunk not followed by CRLF"
            );
            self.buf.drain(..size + 2);
        }
    }

    /// Reads interim responses (1xx other than 101) and then the final one.
    pub(crate) async fn read_exchange(&mut self, head_request: bool) -> Exchange {
        let mut interim = Vec::new();
        loop {
            let resp = self.read_response(head_request).await;
            if resp.status < 200 && resp.status != 101 {
                interim.push(resp);
                assert!(interim.len() <= 10, "more than 10 interim responses");
                continue;
            }
            return Exchange {
                interim,
                last: resp,
            };
        }
    }

    /// Asserts the server closes the connection without sending anything more.
    pub(crate) async fn expect_eof(&mut self) {
        let more = self.fill().await;
        assert!(
            !more && self.buf.is_empty(),
            "expected the server to close the connection; it sent {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Returns what is buffered, or else waits for the next bytes (empty at EOF).
    pub(crate) async fn read_some(&mut self) -> Vec<u8> {
        if self.buf.is_empty() {
            self.fill().await;
        }
        std::mem::take(&mut self.buf)
    }
}

/// Parses `HTTP/1.1 SP 3DIGIT SP reason`; the second SP is required even with no reason.
fn parse_status_line(line: &str) -> Option<(String, u16, String)> {
    let (version, rest) = line.split_once(' ')?;
    let (code, reason) = rest.split_once(' ')?;
    if !(version == "HTTP/1.1" || version == "HTTP/1.0") {
        return None;
    }
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((version.to_owned(), code.parse().ok()?, reason.to_owned()))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
