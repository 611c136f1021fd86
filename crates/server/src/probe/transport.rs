//! How the probe talks to a target: HTTP/1.1 through the wire layer's strict client (so it sees
//! exact bytes: every interim response, content on bodyless codes, stray bytes after a
//! message, whether the connection closed), raw request bytes for the malformed-request checks,
//! and HTTP/2 (h2c with prior knowledge, or h2 over TLS by ALPN) on the h2 crate.
//!
//! Every exchange opens a connection of its own, so one check's damage (a desync, a GOAWAY)
//! never leaks into another's.

use crate::wire::client::{self, ClientLimits, Failure, Head};
use crate::wire::tls;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// What the probe accepts from a target: generous, but bounded.
const LIMITS: ClientLimits = ClientLimits {
    head: 256 * 1024,
    headers: 1000,
    body: 64 * 1024 * 1024,
};
/// How long the probe waits for a close after a `Connection: close` exchange.
const CLOSE_GRACE: Duration = Duration::from_millis(1000);
/// How long the probe watches a kept-alive connection for stray bytes after a message.
const STRAY_GRACE: Duration = Duration::from_millis(250);
/// Received bytes kept for the report.
const KEEP: usize = 64 * 1024;
/// Request and response text in a report: this many bytes, then an ellipsis.
pub(crate) const SHOW: usize = 2048;
/// Responses read on one raw connection (the answer, a smuggled canary's answer, one more).
const MAX_RAW_RESPONSES: usize = 3;

/// The URL under test, taken apart.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `https`: TLS (and ALPN) before HTTP.
    pub(crate) https: bool,
    /// Host name or address to connect to (IPv6 without brackets).
    pub(crate) host: String,
    /// Port to connect to.
    pub(crate) port: u16,
    /// The authority as `Host` and `:authority` carry it.
    pub(crate) authority: String,
    /// Path and query of the URL.
    pub(crate) path: String,
}

impl Target {
    /// Parses an `http://` or `https://` URL.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(format!(
                    "{url:?}: the probe speaks http:// and https://, not {other}://"
                ));
            }
            None => return Err(format!("{url:?} is not an http:// or https:// URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url:?} names no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "{url:?}: credentials in the URL are not supported; use --header 'Authorization: ...'"
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        Ok(Target {
            https,
            host,
            port,
            authority: authority.as_str().to_owned(),
            path,
        })
    }

    /// The path part of the URL, without its query.
    pub(crate) fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("/")
    }
}

/// One request the probe sends (built into bytes for HTTP/1.1, into frames for HTTP/2).
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Bytes>,
    /// Leave the connection open after the answer (no `Connection: close`), to see whether
    /// the server closes it by itself.
    pub(crate) keep_alive: bool,
    /// Send the head, then wait this long for `100 Continue` or a final answer before the
    /// content (the request must carry `Expect: 100-continue` and a body).
    pub(crate) expect_wait: Option<Duration>,
}

impl Req {
    /// `method target` with no header fields of its own.
    pub(crate) fn new(method: &str, target: &str) -> Req {
        Req {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: None,
            keep_alive: false,
            expect_wait: None,
        }
    }

    /// Adds a header field.
    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Req {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds content (and its `Content-Length`).
    pub(crate) fn body(mut self, body: impl Into<Bytes>) -> Req {
        self.body = Some(body.into());
        self
    }

    /// Keeps the connection open after the answer.
    pub(crate) fn keep_alive(mut self) -> Req {
        self.keep_alive = true;
        self
    }
}

/// What one exchange showed.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// `HTTP/1.1`, `HTTP/1.0` or `HTTP/2`.
    pub(crate) version: &'static str,
    /// Interim responses before the final one, 100 included.
    pub(crate) interim: Vec<(u16, HeaderMap)>,
    /// The final status code.
    pub(crate) status: u16,
    /// The final response's header fields.
    pub(crate) headers: HeaderMap,
    /// The content, de-chunked (HTTP/2: every DATA byte, even on a bodyless answer).
    pub(crate) body: Bytes,
    /// HTTP/1.1: bytes after the message (content a bodyless answer should not have).
    pub(crate) stray: Bytes,
    /// HTTP/1.1: the server closed the connection after the answer.
    pub(crate) closed: bool,
    /// With `expect_wait`: the final answer came before the content was sent.
    pub(crate) early: bool,
    /// With `expect_wait`: nothing came within the wait, and the content was sent anyway.
    pub(crate) waited: bool,
    /// The request as sent, for the report.
    pub(crate) request: String,
    /// The response as received, for the report.
    pub(crate) response: String,
}

impl Seen {
    /// A header's value as text (the first, if repeated).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a header, joined by `, `.
    pub(crate) fn header_all(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// Why an exchange produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// No connection (or no TLS / HTTP/2 session) could be opened.
    Connect,
    /// Nothing (or nothing complete) came within the time allowed.
    TimedOut,
    /// The server closed the connection without answering.
    Closed,
    /// What came was not valid HTTP.
    Invalid,
    /// HTTP/2: the server reset the stream or the connection.
    Reset,
    /// The request could not be sent as asked (the HTTP/2 library refused it).
    NotSent,
}

/// An exchange that ended without a complete answer.
#[derive(Debug, Clone)]
pub(crate) struct Failed {
    pub(crate) stop: Stop,
    pub(crate) why: String,
    /// With `expect_wait`: nothing came within the wait.
    pub(crate) waited: bool,
    pub(crate) request: String,
    pub(crate) response: String,
}

/// The outcome of one exchange.
#[derive(Debug, Clone)]
pub(crate) enum Got {
    Seen(Box<Seen>),
    Failed(Box<Failed>),
}

/// One response on a raw connection.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The minor version of the status line's HTTP/1.x.
    pub(crate) minor: u8,
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
}

/// How a raw connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The server closed the connection.
    Closed,
    /// The connection stayed open and quiet for the grace period after the last response.
    Open,
    /// No (complete) first response within the time allowed.
    TimedOut,
    /// The bytes were not valid HTTP.
    Invalid(String),
    /// No connection.
    Connect(String),
}

/// What a raw connection showed: every response, in order, and how it ended.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub(crate) responses: Vec<Message>,
    pub(crate) ended: Ended,
    pub(crate) request: String,
    pub(crate) response: String,
}

/// What a connection runs over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// What a tapped connection has received so far.
#[derive(Debug, Default)]
struct Tapped {
    seen: Vec<u8>,
    eof: bool,
}

/// A connection that keeps what it receives (for the report) and notices the end of stream;
/// the record is shared, so it stays readable however the connection is split.
struct Tap {
    io: Box<dyn Io>,
    record: Arc<Mutex<Tapped>>,
}

impl Tap {
    fn new(io: Box<dyn Io>) -> (Tap, Arc<Mutex<Tapped>>) {
        let record = Arc::new(Mutex::new(Tapped::default()));
        (
            Tap {
                io,
                record: Arc::clone(&record),
            },
            record,
        )
    }
}

/// The received bytes, as text for the report.
fn received(record: &Mutex<Tapped>) -> String {
    record
        .lock()
        .map_or_else(|_| String::new(), |r| show(&r.seen, SHOW))
}

fn at_eof(record: &Mutex<Tapped>) -> bool {
    record.lock().is_ok_and(|r| r.eof)
}

fn nothing_received(record: &Mutex<Tapped>) -> bool {
    record.lock().is_ok_and(|r| r.seen.is_empty())
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled
            && let Ok(mut record) = this.record.lock()
        {
            let new = &buf.filled()[before..];
            if new.is_empty() {
                record.eof = true;
            } else {
                let room = KEEP.saturating_sub(record.seen.len());
                record.seen.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        polled
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Bytes as readable text: CRLF as a line break, other control and non-ASCII bytes escaped
/// (so a bare LF or a stray CR in a head shows; after the first head, where content begins,
/// a LF is a line break too), cut after `max` bytes.
pub(crate) fn show(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let content = shown
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(usize::MAX, |p| p + 4);
    let mut out = String::with_capacity(shown.len() + 16);
    let mut i = 0;
    while i < shown.len() {
        let b = shown[i];
        match b {
            b'\r' if shown.get(i + 1) == Some(&b'\n') => {
                out.push('\n');
                i += 2;
                continue;
            }
            b'\n' if i >= content => out.push('\n'),
            b'\t' | 0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
        i += 1;
    }
    if bytes.len() > max {
        out.push_str(&format!("… ({} more bytes)", bytes.len() - max));
    }
    out
}

/// The wire layer's words are the gateway's ("the upstream", `--max-body`); the probe's
/// reader wants the server's.
fn reword(why: &str) -> String {
    why.replace("the upstream", "the server")
        .replace("The upstream", "The server")
        .replace(" (--max-body)", "")
        .replace(" (--max-head-bytes)", "")
        .replace(" (--max-headers)", "")
}

/// The probe's client for one target.
pub(crate) struct Client {
    pub(crate) target: Target,
    pub(crate) http2: bool,
    tls: Option<tokio_rustls::TlsConnector>,
    /// Time for one whole exchange.
    pub(crate) timeout: Duration,
    /// Header fields every request carries (`--header`).
    extra: Vec<(String, String)>,
}

impl Client {
    /// A client for `target`; `extra` header fields go on every request.
    pub(crate) fn new(
        target: Target,
        http2: bool,
        insecure: bool,
        timeout: Duration,
        extra: Vec<(String, String)>,
    ) -> Result<Client, String> {
        let tls = if target.https {
            let alpn: &[&[u8]] = if http2 { &[b"h2"] } else { &[b"http/1.1"] };
            Some(tls::connector(alpn, insecure)?)
        } else {
            None
        };
        Ok(Client {
            target,
            http2,
            tls,
            timeout,
            extra,
        })
    }

    /// The `Host` requests carry: the URL's authority, or the user's (`--header 'Host: …'`).
    pub(crate) fn host(&self) -> &str {
        self.extra
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map_or(self.target.authority.as_str(), |(_, v)| v.as_str())
    }

    /// Opens a connection (TLS included); for `http2`, checks that ALPN chose h2.
    /// [`Self::connect`], bounded by the exchange's deadline.
    async fn connect_until(&self, until: Instant, http2: bool) -> Result<Box<dyn Io>, String> {
        timeout_at(until, self.connect(http2))
            .await
            .unwrap_or_else(|_| Err("no connection within the timeout".into()))
    }

    async fn connect(&self, http2: bool) -> Result<Box<dyn Io>, String> {
        let addr = (self.target.host.as_str(), self.target.port);
        let tcp = TcpStream::connect(addr).await.map_err(|e| {
            format!(
                "cannot connect to {}:{}: {e}",
                self.target.host, self.target.port
            )
        })?;
        let _ = tcp.set_nodelay(true);
        let Some(connector) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = rustls_pki_types::ServerName::try_from(self.target.host.clone())
            .map_err(|e| format!("{:?} is not a TLS server name: {e}", self.target.host))?;
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {} failed: {e}", self.target.authority))?;
        if http2 && !tls::client_is_h2(&stream) {
            return Err(format!(
                "{} did not choose h2 by ALPN: it does not speak HTTP/2 over TLS",
                self.target.authority
            ));
        }
        Ok(Box::new(stream))
    }

    /// Checks that the target can be reached at all: a connection (TLS included) and, for
    /// HTTP/2, a completed handshake.
    pub(crate) async fn reachable(&self) -> Result<(), String> {
        let until = Instant::now() + self.timeout;
        let io = timeout_at(until, self.connect(self.http2))
            .await
            .map_err(|_| {
                format!(
                    "cannot connect to {} within {}",
                    self.target.authority,
                    humantime::format_duration(self.timeout)
                )
            })??;
        if self.http2 {
            let (_send, conn) = timeout_at(until, h2::client::handshake(io))
                .await
                .map_err(|_| "the HTTP/2 handshake did not complete in time".to_owned())?
                .map_err(|e| format!("the HTTP/2 handshake failed: {e}"))?;
            drop(conn);
        }
        Ok(())
    }

    /// Sends `req` over HTTP/2 or HTTP/1.1 (as the probe was told) and reads the answer.
    pub(crate) async fn send(&self, req: &Req) -> Got {
        if self.http2 {
            self.send_h2(req).await
        } else {
            self.send_h1(req).await
        }
    }

    /// The HTTP/1.1 bytes of `req`: request line, `Host`, the probe's and the user's fields,
    /// `Content-Length`, `Connection: close` unless kept alive; then the content.
    fn h1_bytes(&self, req: &Req) -> (Vec<u8>, Vec<u8>) {
        let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
        head.push_str(&format!("Host: {}\r\n", self.host()));
        head.push_str(concat!(
            "User-Agent: statuslab-probe/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
        for (name, value) in self
            .extra
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in &req.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = &req.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        if !req.keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let body = req.body.as_ref().map(|b| b.to_vec()).unwrap_or_default();
        (head.into_bytes(), body)
    }

    /// Raw bytes with the probe's own fields (`Host` unless `host` is false, the user's):
    /// `first_line` then those fields, then `rest` (the rest of the head and anything after it).
    pub(crate) fn raw_bytes(&self, first_line: &str, host: bool, rest: &str) -> Vec<u8> {
        let mut out = format!("{first_line}\r\n");
        if host {
            out.push_str(&format!("Host: {}\r\n", self.host()));
        }
        out.push_str(concat!(
            "User-Agent: statuslab-probe/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
        for (name, value) in self
            .extra
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
        {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(rest);
        out.into_bytes()
    }

    async fn send_h1(&self, req: &Req) -> Got {
        let (head, body) = self.h1_bytes(req);
        let mut sent = head.clone();
        sent.extend_from_slice(&body);
        let request = show(&sent, SHOW);
        let until = Instant::now() + self.timeout;
        let failed = |stop: Stop, why: String, waited: bool, response: String| {
            Got::Failed(Box::new(Failed {
                stop,
                why,
                waited,
                request: request.clone(),
                response,
            }))
        };
        let io = match self.connect_until(until, false).await {
            Ok(io) => io,
            Err(why) => return failed(Stop::Connect, why, false, String::new()),
        };
        let (tap, record) = Tap::new(io);
        let (mut rd, mut wr) = tokio::io::split(tap);
        let mut buf = BytesMut::with_capacity(8192);
        let mut interim = Vec::new();
        let mut early = false;
        let mut waited = false;
        let head_request = req.method.eq_ignore_ascii_case("HEAD");
        let mut final_head: Option<Head> = None;
        if let Some(wait) = req.expect_wait {
            // The head alone, then 100 Continue (or a final answer) before the content.
            let _ = wr.write_all(&head).await;
            let _ = wr.flush().await;
            let wait_until = (Instant::now() + wait).min(until);
            loop {
                match timeout_at(
                    wait_until,
                    client::read_head(&mut rd, &mut buf, LIMITS, interim.is_empty()),
                )
                .await
                {
                    Ok(Ok(h)) if h.status == 100 => {
                        interim.push((h.status, h.headers));
                        let _ = wr.write_all(&body).await;
                        let _ = wr.flush().await;
                        break;
                    }
                    Ok(Ok(h)) if (102..200).contains(&h.status) => {
                        interim.push((h.status, h.headers));
                    }
                    Ok(Ok(h)) => {
                        early = true;
                        final_head = Some(h);
                        break;
                    }
                    Ok(Err(f)) => {
                        let stop = stop_of(&f, &record);
                        return failed(stop, failure_text(&f), false, received(&record));
                    }
                    Err(_) => {
                        waited = true;
                        let _ = wr.write_all(&body).await;
                        let _ = wr.flush().await;
                        break;
                    }
                }
            }
        } else {
            // The server may answer (and stop reading) before the request is all written: read
            // while writing, and give up the rest of the write once the answer is in.
            let mut all = head;
            all.extend_from_slice(&body);
            let mut write = pin!(async {
                let _ = wr.write_all(&all).await;
                let _ = wr.flush().await;
            });
            let mut written = false;
            let read = async {
                let mut interim = Vec::new();
                loop {
                    match client::read_head(&mut rd, &mut buf, LIMITS, interim.is_empty()).await {
                        Ok(h) if (100..200).contains(&h.status) && h.status != 101 => {
                            interim.push((h.status, h.headers));
                        }
                        Ok(h) => return Ok((interim, h)),
                        Err(f) => return Err(f),
                    }
                }
            };
            let result = {
                let mut read = pin!(timeout_at(until, read));
                loop {
                    tokio::select! {
                        () = &mut write, if !written => written = true,
                        r = &mut read => break r,
                    }
                }
            };
            if !written {
                let _ = tokio::time::timeout(Duration::from_millis(200), write).await;
            }
            match result {
                Ok(Ok((i, h))) => {
                    interim = i;
                    final_head = Some(h);
                }
                Ok(Err(f)) => {
                    let stop = stop_of(&f, &record);
                    return failed(stop, failure_text(&f), false, received(&record));
                }
                Err(_) => {
                    return failed(
                        Stop::TimedOut,
                        format!(
                            "no complete answer within {}",
                            humantime::format_duration(self.timeout)
                        ),
                        false,
                        received(&record),
                    );
                }
            }
        }
        let head = match final_head {
            Some(h) => h,
            None => loop {
                match timeout_at(
                    until,
                    client::read_head(&mut rd, &mut buf, LIMITS, interim.is_empty()),
                )
                .await
                {
                    Ok(Ok(h)) if (100..200).contains(&h.status) && h.status != 101 => {
                        interim.push((h.status, h.headers));
                    }
                    Ok(Ok(h)) => break h,
                    Ok(Err(f)) => {
                        let stop = stop_of(&f, &record);
                        return failed(stop, failure_text(&f), waited, received(&record));
                    }
                    Err(_) => {
                        let why = if waited {
                            format!(
                                "no 100 Continue and no final answer within {}, and none after the content was sent either",
                                humantime::format_duration(req.expect_wait.unwrap_or_default())
                            )
                        } else {
                            format!(
                                "no complete answer within {}",
                                humantime::format_duration(self.timeout)
                            )
                        };
                        return failed(Stop::TimedOut, why, waited, received(&record));
                    }
                }
            },
        };
        if head.status == 101 {
            // The connection now speaks another protocol: what follows is not HTTP.
            return Got::Seen(Box::new(Seen {
                version: version(head.minor),
                interim,
                status: head.status,
                headers: head.headers,
                body: Bytes::new(),
                stray: Bytes::new(),
                closed: false,
                early,
                waited,
                request,
                response: received(&record),
            }));
        }
        let body = match timeout_at(
            until,
            client::read_content(&mut rd, &mut buf, &head, head_request, LIMITS),
        )
        .await
        {
            Ok(Ok(b)) => b,
            Ok(Err(f)) => {
                return failed(Stop::Invalid, failure_text(&f), waited, received(&record));
            }
            Err(_) => {
                return failed(
                    Stop::TimedOut,
                    format!(
                        "the content did not arrive within {}",
                        humantime::format_duration(self.timeout)
                    ),
                    waited,
                    received(&record),
                );
            }
        };
        // An early final answer leaves the connection unusable (the content was never sent).
        let grace = if req.keep_alive || early {
            STRAY_GRACE
        } else {
            CLOSE_GRACE
        };
        let (stray, closed) = after(&mut rd, &record, &mut buf, grace.min(self.timeout)).await;
        Got::Seen(Box::new(Seen {
            version: version(head.minor),
            interim,
            status: head.status,
            headers: head.headers,
            body,
            stray,
            closed,
            early,
            waited,
            request,
            response: received(&record),
        }))
    }

    /// Writes raw `bytes` on a new HTTP/1.1 connection, then reads every response that comes:
    /// the first within `first_wait`, each further one (and the close) within `grace` of the
    /// previous. Bodies are read by the responses' framing (`head_request`: none).
    pub(crate) async fn raw(
        &self,
        bytes: &[u8],
        first_wait: Duration,
        grace: Duration,
        head_request: bool,
    ) -> Raw {
        let request = show(bytes, SHOW);
        let until = Instant::now() + self.timeout;
        let io = match timeout_at(until, self.connect(false)).await {
            Ok(Ok(io)) => io,
            Ok(Err(why)) => {
                return Raw {
                    responses: Vec::new(),
                    ended: Ended::Connect(why),
                    request,
                    response: String::new(),
                };
            }
            Err(_) => {
                return Raw {
                    responses: Vec::new(),
                    ended: Ended::Connect("no connection within the timeout".into()),
                    request,
                    response: String::new(),
                };
            }
        };
        let (tap, record) = Tap::new(io);
        let (mut rd, mut wr) = tokio::io::split(tap);
        let mut write = pin!(async {
            let _ = wr.write_all(bytes).await;
            let _ = wr.flush().await;
        });
        let mut buf = BytesMut::with_capacity(8192);
        let mut written = false;
        let read = async {
            let mut responses: Vec<Message> = Vec::new();
            let mut deadline = Instant::now() + first_wait;
            let ended = loop {
                if responses.len() >= MAX_RAW_RESPONSES {
                    break Ended::Open;
                }
                let first = responses.is_empty();
                let got = timeout_at(deadline, async {
                    let head = loop {
                        let h = client::read_head(&mut rd, &mut buf, LIMITS, true).await?;
                        if !(100..200).contains(&h.status) || h.status == 101 {
                            break h;
                        }
                    };
                    if head.status != 101 {
                        client::read_content(&mut rd, &mut buf, &head, head_request, LIMITS)
                            .await?;
                    }
                    Ok::<Head, Failure>(head)
                })
                .await;
                match got {
                    Ok(Ok(head)) => {
                        let switched = head.status == 101;
                        responses.push(Message {
                            minor: head.minor,
                            status: head.status,
                            headers: head.headers,
                        });
                        if switched {
                            break Ended::Open;
                        }
                        deadline = Instant::now() + grace;
                    }
                    Ok(Err(f)) if client::closed_silently(&f) => break Ended::Closed,
                    Ok(Err(f)) => break Ended::Invalid(failure_text(&f)),
                    Err(_) if first => break Ended::TimedOut,
                    Err(_) => break Ended::Open,
                }
            };
            (responses, ended)
        };
        let (responses, ended) = {
            let mut read = pin!(read);
            loop {
                tokio::select! {
                    () = &mut write, if !written => written = true,
                    r = &mut read => break r,
                }
            }
        };
        Raw {
            responses,
            ended,
            request,
            response: received(&record),
        }
    }

    async fn send_h2(&self, req: &Req) -> Got {
        let until = Instant::now() + self.timeout;
        let request_text = self.h2_text(req);
        let failed = |stop: Stop, why: String, waited: bool, response: String| {
            Got::Failed(Box::new(Failed {
                stop,
                why,
                waited,
                request: request_text.clone(),
                response,
            }))
        };
        let io = match self.connect_until(until, true).await {
            Ok(io) => io,
            Err(why) => return failed(Stop::Connect, why, false, String::new()),
        };
        let (send, conn) = match timeout_at(
            until,
            h2::client::Builder::new()
                .max_header_list_size(LIMITS.head as u32)
                .handshake::<_, Bytes>(io),
        )
        .await
        {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                return failed(
                    Stop::Connect,
                    format!("the HTTP/2 handshake failed: {e}"),
                    false,
                    String::new(),
                );
            }
            Err(_) => {
                return failed(
                    Stop::Connect,
                    "the HTTP/2 handshake did not complete in time".into(),
                    false,
                    String::new(),
                );
            }
        };
        let driver = Abort(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let got = timeout_at(until, self.h2_exchange(send, req)).await;
        drop(driver);
        match got {
            Ok(Ok(mut seen)) => {
                seen.request = request_text;
                Got::Seen(Box::new(seen))
            }
            Ok(Err((stop, why, waited, response))) => failed(stop, why, waited, response),
            Err(_) => failed(
                Stop::TimedOut,
                format!(
                    "no complete answer within {}",
                    humantime::format_duration(self.timeout)
                ),
                false,
                String::new(),
            ),
        }
    }

    fn h2_text(&self, req: &Req) -> String {
        let mut text = format!(
            ":method: {}\n:scheme: {}\n:authority: {}\n:path: {}\n",
            req.method,
            if self.target.https { "https" } else { "http" },
            self.host(),
            req.target
        );
        for (name, value) in self.h2_fields(req) {
            text.push_str(&format!("{name}: {value}\n"));
        }
        if let Some(body) = &req.body {
            text.push_str(&format!("content-length: {}\n\n", body.len()));
            text.push_str(&show(body, 256));
        }
        show(text.as_bytes(), SHOW).replace("\\x0a", "\n")
    }

    /// The fields an HTTP/2 request carries: the user's and the request's, without the
    /// connection-specific ones HTTP/2 forbids (RFC 9113 §8.2.2) and without `Host`.
    fn h2_fields<'a>(&'a self, req: &'a Req) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.extra
            .iter()
            .chain(req.headers.iter())
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .filter(|(n, _)| {
                !matches!(
                    n.to_ascii_lowercase().as_str(),
                    "host"
                        | "connection"
                        | "keep-alive"
                        | "proxy-connection"
                        | "transfer-encoding"
                        | "upgrade"
                        | "te"
                )
            })
    }

    async fn h2_exchange(
        &self,
        send: h2::client::SendRequest<Bytes>,
        req: &Req,
    ) -> Result<Seen, (Stop, String, bool, String)> {
        let reset = |e: h2::Error| (Stop::Reset, format!("HTTP/2: {e}"), false, String::new());
        let mut send = send.ready().await.map_err(reset)?;
        let method = http::Method::from_bytes(req.method.as_bytes()).map_err(|e| {
            (
                Stop::NotSent,
                format!("bad method: {e}"),
                false,
                String::new(),
            )
        })?;
        let uri = format!(
            "{}://{}{}",
            if self.target.https { "https" } else { "http" },
            self.host(),
            req.target
        );
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .version(http::Version::HTTP_2)
            .header(
                header::USER_AGENT,
                concat!("statuslab-probe/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in self.h2_fields(req) {
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.header(header::CONTENT_LENGTH, body.len());
        }
        let request = builder.body(()).map_err(|e| {
            (
                Stop::NotSent,
                format!("the request cannot be expressed in HTTP/2: {e}"),
                false,
                String::new(),
            )
        })?;
        let (mut response, mut stream) =
            send.send_request(request, req.body.is_none())
                .map_err(|e| {
                    (
                        Stop::NotSent,
                        format!("the h2 library refused to send the request: {e}"),
                        false,
                        String::new(),
                    )
                })?;
        let mut interim = Vec::new();
        let mut early = false;
        let mut waited = false;
        if let Some(wait) = req.expect_wait {
            let got = tokio::time::timeout(
                wait,
                std::future::poll_fn(|cx| response.poll_informational(cx)),
            )
            .await;
            match got {
                Ok(Some(Ok(head))) => {
                    interim.push((head.status().as_u16(), head.headers().clone()));
                }
                Ok(Some(Err(e))) => return Err(reset(e)),
                Ok(None) => early = true,
                Err(_) => waited = true,
            }
        }
        if !early && let Some(body) = &req.body {
            let _ = stream.send_data(body.clone(), true);
        }
        loop {
            match std::future::poll_fn(|cx| response.poll_informational(cx)).await {
                Some(Ok(head)) => interim.push((head.status().as_u16(), head.headers().clone())),
                Some(Err(e)) => {
                    return Err((Stop::Reset, format!("HTTP/2: {e}"), waited, String::new()));
                }
                None => break,
            }
        }
        let response = response
            .await
            .map_err(|e| (Stop::Reset, format!("HTTP/2: {e}"), waited, String::new()))?;
        let (parts, mut recv) = response.into_parts();
        let mut body = BytesMut::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(|e| {
                (
                    Stop::Reset,
                    format!("HTTP/2, while reading the content: {e}"),
                    waited,
                    String::new(),
                )
            })?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            if body.len() + chunk.len() > LIMITS.body {
                return Err((
                    Stop::Invalid,
                    format!("the content is larger than {} bytes", LIMITS.body),
                    waited,
                    String::new(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let mut text = String::new();
        for (code, headers) in &interim {
            text.push_str(&format!(":status: {code}\n"));
            for (n, v) in headers {
                text.push_str(&format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())));
            }
            text.push('\n');
        }
        text.push_str(&format!(":status: {}\n", parts.status.as_u16()));
        for (n, v) in &parts.headers {
            text.push_str(&format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        text.push('\n');
        let mut response_text = show(text.as_bytes(), SHOW).replace("\\x0a", "\n");
        response_text.push_str(&show(&body, 512));
        Ok(Seen {
            version: "HTTP/2",
            interim,
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.freeze(),
            stray: Bytes::new(),
            closed: false,
            early,
            waited,
            request: String::new(),
            response: response_text,
        })
    }
}

/// Aborts a spawned task when dropped.
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn version(minor: u8) -> &'static str {
    if minor == 0 { "HTTP/1.0" } else { "HTTP/1.1" }
}

fn stop_of(f: &Failure, record: &Mutex<Tapped>) -> Stop {
    if client::closed_silently(f) || (at_eof(record) && nothing_received(record)) {
        Stop::Closed
    } else {
        Stop::Invalid
    }
}

fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Connect(why) | Failure::Invalid(why) => reword(why),
    }
}

/// What follows a message: bytes already buffered plus whatever arrives within `grace`, and
/// whether the server closed the connection.
async fn after<R: AsyncRead + Unpin>(
    rd: &mut R,
    record: &Mutex<Tapped>,
    buf: &mut BytesMut,
    grace: Duration,
) -> (Bytes, bool) {
    let until = Instant::now() + grace;
    let mut stray = buf.split();
    loop {
        if at_eof(record) {
            return (stray.freeze(), true);
        }
        if stray.len() >= KEEP {
            return (stray.freeze(), false);
        }
        let mut chunk = [0u8; 4096];
        match timeout_at(until, rd.read(&mut chunk)).await {
            Ok(Ok(0)) => return (stray.freeze(), true),
            Ok(Ok(n)) => stray.extend_from_slice(&chunk[..n]),
            // A reset after the answer is a close, as far as the next request is concerned.
            Ok(Err(_)) => return (stray.freeze(), true),
            Err(_) => return (stray.freeze(), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("https://example.com/a/b?c=d").expect("parses");
        assert_eq!(
            (
                t.https,
                t.host.as_str(),
                t.port,
                t.authority.as_str(),
                t.path.as_str()
            ),
            (true, "example.com", 443, "example.com", "/a/b?c=d")
        );
        assert_eq!(t.path_only(), "/a/b");
        let t = Target::parse("http://[::1]:8080").expect("parses");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8080, "/")
        );
        assert_eq!(t.authority, "[::1]:8080");
        for bad in [
            "ftp://x/",
            "example.com/a",
            "http://user:pw@x/",
            "not a url",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shown_bytes() {
        assert_eq!(
            show(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 100),
            "GET / HTTP/1.1\nA: b\n\n"
        );
        // A bare LF, a lone CR and binary bytes stay visible.
        assert_eq!(show(b"a\nb\rc\x00\xff", 100), "a\\x0ab\\x0dc\\x00\\xff");
        // After the head, a LF is a line break.
        assert_eq!(show(b"H: v\n\r\n\r\nx\ny", 100), "H: v\\x0a\n\nx\ny");
        assert_eq!(show(b"abcdef", 3), "abc… (3 more bytes)");
    }
}
