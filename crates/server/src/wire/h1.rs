//! statuslab's own HTTP/1.1 connection: httparse reads heads, everything written is written
//! here, byte by byte. This is what lets statuslab send real interim 1xx responses, a 408
//! before closing a stalled connection, 505 for unknown HTTP versions, 417 for unknown
//! expectations and 413 instead of `100 Continue`, none of which a general-purpose server
//! (hyper) lets a handler do.
//!
//! Memory per connection is kept small: the read buffer starts at 1 KiB and both buffers are
//! released while a handler waits (a delayed response holds no buffer at all).

use super::fault::{self, Fault, FaultKind};
use super::framing::{self, ChunkedDecoder, Framing, Role};
use super::reply::{self, Body, Paced, Reply, Upgrade};
use super::request::Request;
use super::rewind::Rewind;
use super::{Limits, Reservation, Service};
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::InvalidUri;
use http::{Method, Uri, Version};
use rustix::net::RecvFlags;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio::time::timeout_at;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The HTTP/2 connection preface (RFC 9113 §3.4).
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Most header fields httparse is given room for; `--max-headers` may lower it.
pub(crate) const HEADER_SLOTS: usize = 100;
const FIRST_READ: usize = 1024;
/// The largest header map (in fields it holds without growing) a connection keeps between
/// requests: a browser's head fits; a map grown for a larger one is freed with its request.
const KEEP_HEADERS: usize = 24;
/// The longest target a connection memoizes the URI of ([`Conn::uri_of`]), and the longest
/// `Host` value it keeps as checked.
const MEMO_TARGET: usize = 256;
/// The longest field lines a connection keeps ([`Kept`]), and the most fields.
const KEPT_LINES: usize = 1024;
const KEPT_FIELDS: usize = 32;
/// Heads in a row with other field lines after which a connection keeps new ones: a client
/// that alternates between two sets of fields, or varies one field on every request, does
/// not pay for a copy on every request.
const KEPT_MISSES: u8 = 8;
/// Output is flushed once it grows past this, even while pipelined requests remain.
const FLUSH_AT: usize = 64 * 1024;
/// Longest chunk-size line (with its extensions) accepted in chunked content.
const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section (all its field lines) accepted after chunked content.
const MAX_TRAILER_BYTES: usize = 8192;
/// Most trailer fields accepted after chunked content.
const MAX_TRAILER_FIELDS: usize = 64;

/// A parsed request head, with the ranges of its parts in the head's bytes.
///
/// The header fields live on the heap, sized to the request: an inline array of
/// `HEADER_SLOTS` entries made this struct 5.6 KiB, and the connection's future held several
/// copies of it for as long as a request was in flight (19 KiB per held connection).
struct Head {
    method: Method,
    target: (usize, usize),
    version: Version,
    /// The header fields (none listed when `kept`).
    headers: Vec<(HeaderName, usize, usize)>,
    /// Where the field lines start (the first field's name; `len` when there are none).
    fields: usize,
    /// The field lines are the connection's kept ones ([`Kept`]).
    kept: bool,
    len: usize,
}

/// What ended a wait for request bytes.
enum Woke {
    Read(std::io::Result<usize>),
    Timer,
    Stopped,
}

/// What a request's head says of the exchange, beyond the request itself.
struct Exchange {
    /// The head's bytes, if split off the read buffer, and where in them the target is: what
    /// the request's target and header values may be slices of (see [`detach`]).
    head: Option<Bytes>,
    target: (usize, usize),
    /// How its content is framed.
    framing: Framing,
    /// It expects `100 Continue` before sending its content.
    expect_continue: bool,
    /// The client asks to close after this exchange ([`wants_close`]).
    close: bool,
}

/// Why a head could not be read.
enum HeadError {
    /// Answer with this code and detail, then close.
    Reject(u16, String),
    /// The peer went away or stayed idle: close without answering.
    Close,
}

/// What happens to the connection after a reply.
#[derive(PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
    /// Drop the connection at once, without a FIN first (a `reset` fault).
    Abort,
    /// A 101 was sent: the connection now speaks WebSocket.
    WebSocket,
}

/// A repeated target and its URI ([`Conn::uri_of`]). The URI is lent to each request that
/// names the target (moved, not cloned: a clone and its drop are two atomic operations on
/// the target's bytes) and given back when the request is done ([`Conn::give_back`]); `uri`
/// is `None` only while a request has it.
struct Memo {
    target: Bytes,
    uri: Option<Uri>,
}

/// The field lines of an earlier head on the connection (from its first field name to the
/// blank line), owned, and the header map made from them: a head that repeats them byte for
/// byte (most clients send the same fields on every request of a connection) is lent the
/// map, instead of its fields being named, sliced, checked and hashed into a map again
/// ([`Conn::keep_fields`]). `map` is `None` only while a request has it.
struct Kept {
    block: Bytes,
    map: Option<HeaderMap>,
    facts: Facts,
    /// Heads in a row since that had other lines.
    misses: u8,
}

/// What the connection itself reads in a head's fields, noted as the map is made.
#[derive(Clone, Copy, Default)]
struct Facts {
    /// `Host` fields.
    hosts: usize,
    /// Has `Content-Length` or `Transfer-Encoding`.
    framed: bool,
    /// Has `Expect`.
    expects: bool,
    /// Has `Connection`.
    connection: bool,
}

/// What follows a reply once it is queued.
enum Then {
    /// A fault answers instead (its reply, boxed off the common path).
    Fault(Box<(Reply, Fault)>),
    /// A paced body's pieces go out, then the connection goes on as said.
    Paced(Box<Paced>, Next),
    Next(Next),
}

pub(crate) struct Conn<T, S: Service> {
    io: T,
    bounds: Limits,
    peer: SocketAddr,
    app: Arc<S>,
    shutdown: CancellationToken,
    buf: BytesMut,
    out: BytesMut,
    served: u64,
    /// When the last reply was made, if it went out without waiting for the client and
    /// nothing was read since: the connection has been idle since (the start of
    /// `--idle-timeout`), and a head already buffered then (pipelined) was there at that
    /// instant (its request's start), without reading the clock again.
    settled: Option<Instant>,
    /// The last head's list of header fields, emptied: its allocation serves the next head.
    fields: Vec<(HeaderName, usize, usize)>,
    /// The last request's header map, emptied: its allocations serve the next request's
    /// (unless it grew past [`KEEP_HEADERS`]). Boxed, as `memo`: every connection's task
    /// has room for each field, a held request's too.
    spare: Option<Box<HeaderMap>>,
    /// A target this connection was sent twice in a row, and its URI, both owned (not the
    /// read buffer's): while requests keep naming it, its URI is lent to them instead of
    /// parsed (see [`Memo`]).
    memo: Option<Box<Memo>>,
    /// [`fingerprint`] of the last target parsed.
    recent: u64,
    /// The field lines of an earlier head, and their map (see [`Kept`]).
    kept: Option<Box<Kept>>,
    /// The last `Host` value found valid on this connection, owned: a client names the same
    /// host in every request, and it is checked once.
    host: Option<Box<[u8]>>,
    /// The answered requests not yet counted (see [`Service::settle`]).
    tally: S::Tally,
    /// The shutdown waiter has registered with the shutdown token (see `read_head`).
    watching: bool,
    /// A `100 Continue` already went out for the request being answered.
    continued: bool,
    /// The connection's slot under `--max-connections`, given back before the close is
    /// visible to the client (so a client that saw the close can connect again at once).
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The connection is closed by statuslab while the client may still be sending (a refused
    /// upload, a malformed head): drain before closing, so the answer is not destroyed by a
    /// reset.
    linger: bool,
}

/// What a connection runs over: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Makes the coming close a TCP reset (`SO_LINGER` 0): the `reset` fault.
    fn abort(&self);

    /// Writes what can be written at once, without a task context: `None` if the stream
    /// cannot say without one (then `flush` polls a write).
    fn write_now(&self, _buf: &[u8]) -> Option<std::io::Result<usize>> {
        None
    }

    /// Polls one read, appended to `buf` (which has spare capacity).
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<std::io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(self), cx, buf)
    }
}

thread_local! {
    /// Where a plain TCP connection's head is received before it is appended to the
    /// connection's buffer (a copy of what arrived: a head is small, and safe code cannot
    /// receive into a `BytesMut`'s spare capacity).
    static RECEIVED: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; RECEIVE_AT_ONCE].into_boxed_slice());
}

/// The most one read of a head takes in.
const RECEIVE_AT_ONCE: usize = 16 * 1024;

impl Io for TcpStream {
    fn abort(&self) {
        let _ = socket2::SockRef::from(self).set_linger(Some(std::time::Duration::ZERO));
    }

    fn write_now(&self, buf: &[u8]) -> Option<std::io::Result<usize>> {
        // A raw `send(2)` (rustix), not libc's: in a threaded process libc's wrapper is a
        // cancellation point and brackets each call with two updates of the thread's
        // cancellation state. `try_io` keeps tokio's readiness as `try_write` does.
        let sent = self.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::net::send(self, buf, rustix::net::SendFlags::NOSIGNAL).map_err(Into::into)
        });
        match sent {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            wrote => Some(wrote),
        }
    }

    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<std::io::Result<usize>> {
        // A raw `recv(2)`, as `write_now` sends.
        let want = (buf.capacity() - buf.len()).min(RECEIVE_AT_ONCE);
        debug_assert!(want > 0, "the caller reserves room to read into");
        let sock = &*self;
        RECEIVED.with_borrow_mut(|received| {
            loop {
                std::task::ready!(sock.poll_read_ready(cx))?;
                let mut got = 0;
                let read = sock.try_io(tokio::io::Interest::READABLE, || {
                    got = rustix::net::recv(sock, &mut received[..want], RecvFlags::empty())?.0;
                    // Fewer bytes than asked for: the socket is drained (epoll is edge
                    // triggered). Reported as "would block" so tokio clears the readiness
                    // this read used, as its own reads do: the next read waits for the next
                    // edge rather than calling recv for an EAGAIN.
                    if got > 0 && got < want {
                        return Err(std::io::ErrorKind::WouldBlock.into());
                    }
                    Ok(())
                });
                match read {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && got == 0 => continue,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                        return Poll::Ready(Err(e));
                    }
                    _ => {
                        buf.extend_from_slice(&received[..got]);
                        return Poll::Ready(Ok(got));
                    }
                }
            }
        })
    }
}

impl Io for tokio_rustls::server::TlsStream<TcpStream> {
    fn abort(&self) {
        self.get_ref().0.abort();
    }
}

impl<T: Io, S: Service> Conn<T, S> {
    pub(crate) fn new(
        io: T,
        peer: SocketAddr,
        app: Arc<S>,
        bounds: Limits,
        shutdown: CancellationToken,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Conn<T, S> {
        Conn {
            slot,
            io,
            bounds,
            peer,
            app,
            shutdown,
            buf: BytesMut::new(),
            out: BytesMut::new(),
            served: 0,
            settled: None,
            fields: Vec::new(),
            spare: None,
            memo: None,
            recent: 0,
            kept: None,
            host: None,
            tally: S::Tally::default(),
            watching: false,
            continued: false,
            linger: false,
        }
    }

    /// Serves requests until the client closes, an error closes the connection, or shutdown.
    /// Returns the connection when statuslab closed it while the client may still be sending:
    /// the caller then drains it briefly ([`linger`]) before dropping it.
    ///
    /// Every connection's task holds this future for the connection's whole life, sized for
    /// its largest state (a held request), so the connection's methods keep large values out
    /// of their futures: an `async fn` keeps each argument for its whole run (moved or not),
    /// and a local that was borrowed lives until its scope ends. Hence the async block here
    /// (an `async fn run(mut self)` held the connection twice), the request built by a plain
    /// function, tickets and replies lent or consumed before the first await.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would hold the connection twice"
    )]
    pub(crate) fn run(mut self) -> impl Future<Output = Option<T>> + Send {
        async move {
            // One timer and one shutdown waiter for the connection's whole life, re-armed
            // rather than made anew for every read (see `read_head`).
            let mut timer = pin!(tokio::time::sleep_until(
                tokio::time::Instant::now() + self.bounds.header_timeout
            ));
            let mut stopped = pin!(self.shutdown.clone().cancelled_owned());
            loop {
                let head = match self.read_head(timer.as_mut(), stopped.as_mut()).await {
                    Ok(Some(head)) => head,
                    Ok(None) => {
                        // The client speaks HTTP/2 with prior knowledge: hand the connection
                        // over.
                        let prefix = self.buf.split().freeze();
                        let io = Rewind::new(self.io, prefix);
                        // Boxed, as the WebSocket below: rare, and inline their state would
                        // size every connection's task.
                        Box::pin(super::h2::serve(
                            io,
                            self.peer,
                            self.app,
                            self.bounds,
                            self.shutdown,
                        ))
                        .await;
                        return None;
                    }
                    Err(HeadError::Close) => break,
                    Err(HeadError::Reject(code, detail)) => {
                        self.linger = true;
                        self.reject(code, &detail).await;
                        break;
                    }
                };
                // A head that was already buffered when the last reply went out without
                // waiting (a pipelined request) was there at that instant: one clock read per
                // read, not per request, for a pipelined batch.
                let started = self.settled.unwrap_or_else(Instant::now);
                let mut req = self.bare_request();
                let next = match self.request(head, &mut req) {
                    Ok(exchange) => self.serve_one(&mut req, exchange, started).await,
                    Err((code, detail)) => self.refuse(&req, code, &detail, started).await,
                };
                self.give_back(&mut req);
                match next {
                    Ok(Next::KeepAlive) => {}
                    Ok(Next::WebSocket) => {
                        let prefix = self.buf.split().freeze();
                        let max = self.bounds.max_ws_message;
                        let idle = self.bounds.idle_timeout;
                        Box::pin(super::websocket::echo(
                            Rewind::new(self.io, prefix),
                            max,
                            idle,
                        ))
                        .await;
                        return None;
                    }
                    Ok(Next::Abort) => return None,
                    Ok(Next::Close) | Err(_) => break,
                }
            }
            let _ = self.flush().await;
            drop(self.slot.take());
            let _ = self.io.shutdown().await;
            self.linger.then_some(self.io)
        }
    }

    /// Reads until a complete head is buffered. `Ok(None)` means the HTTP/2 preface arrived.
    ///
    /// `timer` may be armed earlier than the read's deadline, never later: when it fires
    /// early it is re-armed. A keep-alive connection's next deadline is almost always later
    /// than the one before, so the timer is left alone on most requests instead of being
    /// taken out of the timer wheel and put back.
    async fn read_head(
        &mut self,
        mut timer: Pin<&mut Sleep>,
        mut stopped: Pin<&mut WaitForCancellationFutureOwned>,
    ) -> Result<Option<Head>, HeadError> {
        let cfg = self.bounds;
        let mut deadline: Option<tokio::time::Instant> = None;
        // Where the last parse attempt and the last scan for a head's end stopped: a head
        // dribbled byte by byte is parsed again only when it may have ended (or has grown by
        // `REPARSE_EVERY`), so reading it costs linear work, not quadratic.
        let mut parsed_at: Option<usize> = None;
        let mut scanned = 0;
        loop {
            if !self.buf.is_empty() {
                if self.served == 0
                    && self.buf.len() < H2_PREFACE.len()
                    && H2_PREFACE.starts_with(&self.buf)
                {
                    // Could still be the HTTP/2 preface: read on.
                } else if self.served == 0 && self.buf.starts_with(H2_PREFACE) {
                    return Ok(None);
                } else {
                    // The first look parses at once, without scanning: a pipelined batch's
                    // later requests are not scanned once per request before them. After a
                    // partial parse, only the bytes read since are scanned for a head's end.
                    let due = match parsed_at {
                        None => true,
                        Some(at) => {
                            may_end_head(&self.buf[scanned..])
                                || self.buf.len() >= at + REPARSE_EVERY
                                || self.buf.len() >= cfg.max_head_bytes
                        }
                    };
                    scanned = self.buf.len().saturating_sub(3);
                    if due {
                        parsed_at = Some(self.buf.len());
                        let fields = std::mem::take(&mut self.fields);
                        let kept = self.kept.as_deref().filter(|k| k.map.is_some());
                        let kept = kept.map(|k| &k.block[..]);
                        if let Some(head) = parse_head(&self.buf, cfg.max_headers, fields, kept)? {
                            check_head_size(&head, cfg)?;
                            return Ok(Some(head));
                        }
                    }
                    check_request_line(&self.buf, cfg.max_uri)?;
                    if self.buf.len() >= cfg.max_head_bytes {
                        return Err(head_too_large(cfg));
                    }
                }
            }
            // Nothing more is coming until the client sees what was answered so far.
            self.flush().await.map_err(|_| HeadError::Close)?;
            let idle = self.buf.is_empty() && self.served > 0;
            let limit = if idle {
                cfg.idle_timeout
            } else {
                cfg.header_timeout
            };
            let until = *deadline.get_or_insert_with(|| {
                let from = match self.settled {
                    Some(at) if idle => at,
                    _ => Instant::now(),
                };
                tokio::time::Instant::from_std(from) + limit
            });
            if timer.deadline() > until {
                timer.as_mut().reset(until);
            }
            if self.buf.capacity() - self.buf.len() < 256 {
                let grow = self.buf.len().max(FIRST_READ);
                self.buf.reserve(grow);
            }
            let read = loop {
                // The read, the timer, and (between requests) the shutdown waiter, polled in
                // that order. The waiter is polled until it has registered with the shutdown
                // token, then only once `Service::stopping` says the server is shutting down
                // (set before the token is cancelled): polling it checks the token under a
                // lock, on every request.
                let between = self.buf.is_empty();
                let (app, watching) = (&self.app, &mut self.watching);
                let (io, buf) = (&mut self.io, &mut self.buf);
                let woke = std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = io.poll_read_into(cx, buf) {
                        return Poll::Ready(Woke::Read(r));
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Woke::Timer);
                    }
                    if between && (!*watching || app.stopping()) {
                        *watching = true;
                        if stopped.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Woke::Stopped);
                        }
                    }
                    Poll::Pending
                })
                .await;
                match woke {
                    Woke::Read(r) => break Ok(r),
                    Woke::Timer if tokio::time::Instant::now() < until => {
                        timer.as_mut().reset(until);
                    }
                    Woke::Timer => break Err(()),
                    Woke::Stopped => return Err(HeadError::Close),
                }
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return Err(HeadError::Close),
                Ok(Ok(_)) => {
                    // The head (its end, at least) arrived now, not when the connection settled.
                    self.settled = None;
                    if idle {
                        // The next request has begun: should it need another read, it has
                        // --header-timeout from then to complete (most heads come whole, so
                        // the clock is not read for it here).
                        deadline = None;
                    }
                }
                Err(_elapsed) if idle => return Err(HeadError::Close),
                Err(_elapsed) => {
                    return Err(HeadError::Reject(
                        408,
                        format!(
                            "the request head did not arrive within {} (--header-timeout)",
                            humantime::format_duration(cfg.header_timeout)
                        ),
                    ));
                }
            }
        }
    }

    /// Answers `code` with a problem body and `Connection: close`.
    async fn reject(&mut self, code: u16, detail: &str) {
        let req = self.bare_request();
        let mut reply = self.app.reject(&req, code, detail);
        reply.close = true;
        let now = Instant::now();
        reply::put_final(&mut self.out, &reply, false, true, now);
        self.log(&req, &reply, now, now);
        let _ = self.flush().await;
    }

    /// The URI of the target at `at` in the head (of `len` bytes, `taken` or still at the
    /// front of the read buffer): the memo's, lent, if it names the same target; parsed
    /// otherwise (and memoized, owned, when the target is the one parsed last: a client that
    /// repeats one URL, as a retry loop or a health check does).
    fn uri_of(
        &mut self,
        at: (usize, usize),
        len: usize,
        taken: &mut Option<Bytes>,
    ) -> Result<Uri, InvalidUri> {
        let head = match taken {
            Some(bytes) => &bytes[..],
            None => &self.buf[..len],
        };
        let target = &head[at.0..at.1];
        if let Some(memo) = &mut self.memo
            && memo.target[..] == *target
            && let Some(uri) = memo.uri.take()
        {
            return Ok(uri);
        }
        let print = fingerprint(target);
        if print == self.recent && target.len() <= MEMO_TARGET {
            let owned = Bytes::copy_from_slice(target);
            let uri = Uri::from_maybe_shared(owned.clone())?;
            self.memo = Some(Box::new(Memo {
                target: owned,
                uri: None,
            }));
            return Ok(uri);
        }
        self.recent = print;
        let bytes = taken.get_or_insert_with(|| self.buf.split_to(len).freeze());
        Uri::from_maybe_shared(bytes.slice(at.0..at.1))
    }

    /// Whether the request being served has the memo's URI ([`Conn::uri_of`]).
    fn lent(&self) -> bool {
        self.memo.as_ref().is_some_and(|memo| memo.uri.is_none())
    }

    /// Takes back what a finished request was lent: the memo's URI, the kept header map, or
    /// else its own header map emptied ([`Conn::keep_headers`]).
    fn give_back(&mut self, req: &mut Request) {
        if let Some(memo) = &mut self.memo
            && memo.uri.is_none()
        {
            memo.uri = Some(std::mem::take(&mut req.uri));
        }
        match &mut self.kept {
            Some(kept) if kept.map.is_none() => kept.map = Some(std::mem::take(&mut req.headers)),
            _ => self.keep_headers(&mut req.headers),
        }
    }

    /// Keeps a finished request's header map, emptied, for the next request (a plain request
    /// then allocates nothing for its headers), unless it grew large: an idle connection
    /// should not hold the map of the largest head it was sent.
    fn keep_headers(&mut self, headers: &mut HeaderMap) {
        if headers.capacity() <= KEEP_HEADERS {
            headers.clear();
            match &mut self.spare {
                // The spare's map (empty) goes in its place, to be dropped with the request.
                Some(spare) => std::mem::swap(&mut **spare, headers),
                None => self.spare = Some(Box::new(std::mem::take(headers))),
            }
        }
    }

    /// A stand-in request for answers given before a head could be read.
    fn bare_request(&self) -> Request {
        Request {
            method: Method::GET,
            // `/`, made without parsing it.
            uri: Uri::default(),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            peer: self.peer,
        }
    }

    /// Makes `req` (a [`Conn::bare_request`]) the request of `head`, and says what its head
    /// says of the exchange; or the code and detail it is refused with, `req` made as far as
    /// it got. (Made in place: a request is 280 bytes, and the hot path moves it as little as
    /// it can.) The head's bytes leave the read buffer either way: split off it when the
    /// request has slices of them, dropped from it when it has none (its header fields and
    /// target lent by the connection: [`Kept`], [`Memo`]).
    fn request(&mut self, head: Head, req: &mut Request) -> Result<Exchange, (u16, String)> {
        let len = head.len;
        let mut taken = None;
        let made = self.make_request(head, req, &mut taken);
        if taken.is_none() {
            bytes::Buf::advance(&mut self.buf, len);
        }
        made.map(|exchange| Exchange {
            head: taken,
            ..exchange
        })
    }

    /// [`Conn::request`]'s work; `taken`, the head once split off the read buffer (the
    /// exchange's `head` is left `None`).
    fn make_request(
        &mut self,
        head: Head,
        req: &mut Request,
        taken: &mut Option<Bytes>,
    ) -> Result<Exchange, (u16, String)> {
        let cfg = self.bounds;
        let len = head.len;
        let mut fields = head.headers;
        // The fields the connection itself reads: most heads have none but Host, and each
        // look-up in the map hashes the name.
        let mut host = (0, 0);
        let (facts, checked);
        if head.kept {
            // The same field lines as the kept ones: their map is lent, already made.
            let kept = self
                .kept
                .as_deref_mut()
                .expect("parse_head compared with it");
            req.headers = kept.map.take().expect("a kept map is lent only once");
            kept.misses = 0;
            facts = kept.facts;
            // A kept single Host was found valid when the lines were kept.
            checked = facts.hosts == 1;
        } else {
            // Split off the read buffer, not copied: the request shares the buffer's
            // allocation (which the next read reuses once the request is gone) unless it has
            // to wait for its answer, when it is given a copy of its own (`detach`).
            let bytes = taken.insert(self.buf.split_to(len).freeze());
            // The kept map, if any, trades places with the stand-in's empty one (nothing
            // dropped).
            if let Some(spare) = self.spare.as_deref_mut() {
                std::mem::swap(&mut req.headers, spare);
            }
            let headers = &mut req.headers;
            headers.reserve(fields.len());
            let mut noted = Facts::default();
            for (name, start, end) in fields.drain(..) {
                if name == header::HOST {
                    noted.hosts += 1;
                    host = (start, end);
                } else if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
                    noted.framed = true;
                } else if name == header::EXPECT {
                    noted.expects = true;
                } else if name == header::CONNECTION {
                    noted.connection = true;
                }
                let Ok(value) = HeaderValue::from_maybe_shared(bytes.slice(start..end)) else {
                    let detail = format!("the value of {name} is not a valid field value");
                    return Err((400, detail));
                };
                headers.append(name, value);
            }
            facts = noted;
            let value = &bytes[host.0..host.1];
            checked = facts.hosts == 1 && self.host.as_deref() == Some(value);
            if let Some(kept) = &mut self.kept {
                kept.misses = kept.misses.saturating_add(1);
            }
        }
        // The list's allocation serves the next head.
        self.fields = fields;
        req.method = head.method;
        req.version = head.version;
        req.uri = match self.uri_of(head.target, len, taken) {
            Ok(uri) => uri,
            Err(_) => return Err((400, "the request target is not a valid URI".to_owned())),
        };
        if !checked {
            let value = taken.as_ref().map_or(&b""[..], |b| &b[host.0..host.1]);
            if let Some(problem) = check_host(req.version, facts.hosts, value) {
                return Err((400, problem.to_owned()));
            }
            if facts.hosts == 1 && value.len() <= MEMO_TARGET {
                self.host = Some(value.into());
            }
        }
        let role = Role::Request {
            http10: req.version == Version::HTTP_10,
        };
        let framing = if facts.framed {
            match framing::framing(&req.headers, role) {
                Ok(f) => f,
                Err(e) => {
                    let code = e.status().as_u16();
                    return Err((code, e.to_string()));
                }
            }
        } else {
            Framing::None
        };
        let expect = if facts.expects {
            req.headers.get(header::EXPECT)
        } else {
            None
        };
        let expect_continue = match expect {
            None => false,
            Some(v)
                if v.as_bytes().eq_ignore_ascii_case(b"100-continue")
                    && req.headers.get_all(header::EXPECT).iter().count() == 1 =>
            {
                true
            }
            Some(v) => {
                let detail = format!(
                    "statuslab meets only the expectation 100-continue, not {:?}",
                    String::from_utf8_lossy(v.as_bytes())
                );
                return Err((417, detail));
            }
        };
        if let Framing::Length(n) = framing
            && n > cfg.max_body as u64
        {
            let detail = format!(
                "the content is {n} bytes; the limit is {} (--max-body)",
                cfg.max_body
            );
            return Err((413, detail));
        }
        let close = if facts.connection {
            wants_close(req)
        } else {
            req.version == Version::HTTP_10
        };
        if !head.kept
            && let Some(bytes) = taken
        {
            self.keep_fields(&bytes[head.fields..len], &req.headers, facts);
        }
        Ok(Exchange {
            head: None,
            target: head.target,
            framing,
            expect_continue,
            close,
        })
    }

    /// Keeps a copy of a valid head's field lines and their map (`headers`, made from them),
    /// for the requests after it that repeat them (as most clients do on a connection):
    /// from a connection's second request, when none are kept or the kept ones missed
    /// [`KEPT_MISSES`] requests in a row; not for long lines.
    fn keep_fields(&mut self, lines: &[u8], headers: &HeaderMap, facts: Facts) {
        let due = match &self.kept {
            None => self.served > 0,
            Some(kept) => kept.misses >= KEPT_MISSES,
        };
        if !due || lines.len() > KEPT_LINES || headers.len() > KEPT_FIELDS {
            return;
        }
        let block = Bytes::copy_from_slice(lines);
        let mut map = headers.clone();
        rebase(&mut map, lines, &block);
        self.kept = Some(Box::new(Kept {
            block,
            map: Some(map),
            facts,
            misses: 0,
        }));
    }

    /// Admits, reads the content of, answers and sends one request.
    async fn serve_one(
        &mut self,
        req: &mut Request,
        exchange: Exchange,
        started: Instant,
    ) -> std::io::Result<Next> {
        let Exchange {
            head,
            target,
            framing,
            expect_continue,
            close: asks_close,
        } = exchange;
        let has_body = framing != Framing::None && framing != Framing::Length(0);
        let mut ticket = {
            let admitted = match self.app.admit_now(req) {
                Some(admitted) => admitted,
                None => self.app.admit(req).await,
            };
            match admitted {
                Ok(ticket) => ticket,
                Err(mut reply) => {
                    // The content is never read, so the connection cannot be reused after it.
                    self.linger = has_body;
                    let close = has_body || asks_close;
                    return self.send(req, &mut reply, close, started, None).await;
                }
            }
        };
        if expect_continue && has_body && req.version == Version::HTTP_11 {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.continued = true;
            self.flush().await?;
        }
        // Held until the request is answered: its content stays in memory that long. (Made
        // only for requests with content: no shared counter is touched on the plain path.)
        let mut held = has_body.then(|| Reservation::new(self.app.budget()));
        if let Some(held) = &mut held {
            self.app.hold(&mut ticket);
            match self.read_body(framing, held).await {
                Ok(body) => req.body = body,
                Err(BodyError::Io) => return Ok(Next::Close),
                Err(BodyError::Reject(code, detail)) => {
                    return self.refuse(req, code, &detail, started).await;
                }
            }
        }
        // Made at once, the reply takes the head's instant as its own, unless content was
        // read since (which may have taken long).
        let made = (!has_body).then_some(started);
        let mut ticket = match self.answer_now(req, ticket, asks_close, started, made) {
            Ok(sent) => return sent.await,
            Err(ticket) => ticket,
        };
        self.app.hold(&mut ticket);
        // The handler may keep the request for long (a delayed reply): it should hold a few
        // hundred bytes of its own, not the read buffer (1 KiB and more per held request).
        if let Some(head) = head {
            let lent = self.lent();
            detach(req, &head, (!lent).then_some(target));
        }
        let sent = {
            let mut reply = self.call(req, &ticket).await;
            drop(ticket);
            self.send(req, &mut reply, asks_close, started, None)
        };
        sent.await
    }

    /// Queues the reply if the application has it at once ([`Service::handle_now`]), and
    /// says what then remains to be done; gives the ticket back otherwise. The reply lives
    /// only in this function: were it a local of `serve_one`, it would be copied into that
    /// future's state (200 bytes, per request).
    fn answer_now<'a>(
        &'a mut self,
        req: &'a Request,
        ticket: S::Ticket,
        close: bool,
        started: Instant,
        made: Option<Instant>,
    ) -> Result<impl Future<Output = std::io::Result<Next>> + Send + use<'a, T, S>, S::Ticket> {
        let mut reply = Reply::new(reply::known(200));
        if !self.app.handle_now_in(req, &ticket, &mut reply) {
            return Err(ticket);
        }
        // What admission holds (an in-flight slot) is given back before the reply goes out.
        drop(ticket);
        // `made`, when given, is the head's instant: one clock read per request on the hot
        // path (the reply's duration, a few microseconds of work, is logged as 0).
        Ok(self.send(req, &mut reply, close, started, made))
    }

    /// Runs the handler of a reply that is not ready at once; if it does not finish at its
    /// first poll (a delayed reply), the connection's buffers are released while it waits.
    async fn call(&mut self, req: &Request, ticket: &S::Ticket) -> Reply {
        // Borrows only the `app` field, so the buffers can be released below. Inline, not
        // boxed: a held request then costs one allocation (its task).
        let mut fut = pin!(self.app.handle(req, ticket));
        if let Poll::Ready(reply) =
            std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
        {
            return reply;
        }
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        if self.out.is_empty() {
            self.out = BytesMut::new();
        }
        self.fields = Vec::new();
        self.spare = None;
        self.memo = None;
        self.kept = None;
        self.host = None;
        fut.await
    }

    async fn refuse(
        &mut self,
        req: &Request,
        code: u16,
        detail: &str,
        started: Instant,
    ) -> std::io::Result<Next> {
        self.linger = true;
        let mut reply = self.app.reject(req, code, detail);
        self.send(req, &mut reply, true, started, None).await
    }

    /// Writes a reply (interim responses first), then switches protocols or closes if asked.
    /// The reply is written out before the returned future first waits, so the future holds
    /// none of it (a held request's task is sized by the largest of these futures); it is
    /// lent, not moved, as the hot path moves a reply as little as it can. `made` is when the
    /// reply was made, if the caller knows it without reading the clock.
    fn send<'a>(
        &'a mut self,
        req: &'a Request,
        reply: &mut Reply,
        close: bool,
        started: Instant,
        made: Option<Instant>,
    ) -> impl Future<Output = std::io::Result<Next>> + Send + use<'a, T, S> {
        let then = match reply.fault.take() {
            // Boxed, like `call`'s handler: a rare path that would size every request's state.
            Some(fault) => {
                let reply = std::mem::replace(reply, Reply::new(reply.status));
                Then::Fault(Box::new((reply, fault)))
            }
            None => self.put_reply(req, reply, close, started, made),
        };
        async move {
            match then {
                Then::Fault(f) => {
                    self.settled = None;
                    let (reply, fault) = *f;
                    Box::pin(self.fault(req, reply, fault, started)).await
                }
                Then::Paced(p, next) => {
                    // Its pieces take time: the idle time starts after them.
                    self.settled = None;
                    Box::pin(self.paced(&p)).await?;
                    self.after_reply(next).await
                }
                Then::Next(next) => self.after_reply(next).await,
            }
        }
    }

    /// Queues `reply` (interim responses first) and says what comes after it.
    fn put_reply(
        &mut self,
        req: &Request,
        reply: &mut Reply,
        close: bool,
        started: Instant,
        made: Option<Instant>,
    ) -> Then {
        let close = close || reply.close || self.app.stopping();
        if req.version == Version::HTTP_11 {
            for interim in &reply.interim {
                if interim.status == 100 && self.continued {
                    // The upload already got its 100 Continue; one is enough.
                    continue;
                }
                reply::put_interim(&mut self.out, interim);
            }
        }
        self.continued = false;
        if req.version == Version::HTTP_10 && !close {
            reply
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        }
        if let Body::Paced(p) = &mut reply.body
            && req.version == Version::HTTP_10
        {
            // HTTP/1.0 knows no chunked coding, nor trailers: the pieces go out under a
            // Content-Length.
            p.chunked = false;
            p.trailers.clear();
        }
        let done = made.unwrap_or_else(Instant::now);
        reply::put_final(&mut self.out, reply, req.is_head(), close, done);
        self.served += 1;
        self.settled = Some(done);
        self.log(req, reply, started, done);
        let next = if reply.upgrade == Some(Upgrade::WebSocketEcho) && reply.status.code() == 101 {
            Next::WebSocket
        } else if close {
            Next::Close
        } else {
            Next::KeepAlive
        };
        if matches!(reply.body, Body::Paced(_)) && reply.body_allowed() && !req.is_head() {
            let Body::Paced(p) = std::mem::take(&mut reply.body) else {
                unreachable!("matched above")
            };
            return Then::Paced(p, next);
        }
        Then::Next(next)
    }

    /// Flushes as `next` needs: at once before a protocol switch or a close, otherwise when
    /// no pipelined request is waiting or enough output is queued.
    async fn after_reply(&mut self, next: Next) -> std::io::Result<Next> {
        if next != Next::KeepAlive || self.buf.is_empty() || self.out.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(next)
    }

    /// Answers with a fault: the exact bytes (or silence) of `fault.kind`, then what becomes
    /// of the connection. Answers queued before (pipelined) go out first, whole.
    async fn fault(
        &mut self,
        req: &Request,
        mut reply: Reply,
        fault: Fault,
        started: Instant,
    ) -> std::io::Result<Next> {
        reply.fault = None;
        self.log(req, &reply, started, Instant::now());
        self.served += 1;
        self.continued = false;
        self.flush().await?;
        let head_only = req.is_head();
        match fault.kind {
            FaultKind::Reset => {
                self.io.abort();
                return Ok(Next::Abort);
            }
            FaultKind::Empty => return Ok(Next::Close),
            FaultKind::Stall => {
                // Read (and drop) whatever comes, answer nothing, until the client gives up
                // or the fault's bound passes.
                let mut scratch = [0u8; 1024];
                let hold = async {
                    loop {
                        match self.io.read(&mut scratch).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                };
                let _ = tokio::time::timeout(fault.duration, hold).await;
                return Ok(Next::Close);
            }
            FaultKind::Garbage => {
                self.out.extend_from_slice(&fault::garbage());
                self.flush().await?;
                return Ok(Next::Close);
            }
            FaultKind::Latency => tokio::time::sleep(fault.duration).await,
            _ => {}
        }
        let close = match fault.kind {
            FaultKind::Drip | FaultKind::SlowHeaders | FaultKind::Latency => {
                wants_close(req) || reply.close
            }
            _ => true,
        };
        let mut bytes = BytesMut::new();
        reply::put_final(&mut bytes, &reply, head_only, close, Instant::now());
        let head_len = bytes.len() - if head_only { 0 } else { reply.body.len() };
        match fault.kind {
            FaultKind::Truncate => {
                // Half the promised content (at least one byte short).
                let keep = head_len + reply.body.len() / 2;
                self.out
                    .extend_from_slice(&bytes[..keep.min(bytes.len().saturating_sub(1))]);
                self.flush().await?;
                Ok(Next::Close)
            }
            FaultKind::CloseAfterHeaders => {
                self.out.extend_from_slice(&bytes[..head_len]);
                self.flush().await?;
                Ok(Next::Close)
            }
            FaultKind::MalformedChunk => {
                let mut head = BytesMut::new();
                reply::put_status_line(&mut head, reply.status.code());
                reply::put_header(&mut head, b"content-type", b"text/plain");
                reply::put_header(&mut head, b"transfer-encoding", b"chunked");
                reply::put_header(&mut head, b"connection", b"close");
                head.extend_from_slice(b"\r\n5\r\nhello\r\nzz\r\nnot a chunk\r\n");
                self.out.extend_from_slice(&head);
                self.flush().await?;
                Ok(Next::Close)
            }
            FaultKind::Drip | FaultKind::SlowHeaders => {
                // A drip sends the head at once and trickles the content; a slow head
                // trickles the head, then sends the content at once.
                let (steady, slow): (&[u8], &[u8]) = if fault.kind == FaultKind::Drip {
                    bytes.split_at(head_len)
                } else {
                    (&[], &bytes[..head_len])
                };
                self.out.extend_from_slice(steady);
                self.flush().await?;
                let parts: Vec<_> = fault::pieces(slow.len()).collect();
                let pause = fault.duration / u32::try_from(parts.len().max(1)).unwrap_or(1);
                for part in parts {
                    tokio::time::sleep(pause).await;
                    self.out.extend_from_slice(&slow[part]);
                    self.flush().await?;
                }
                if fault.kind == FaultKind::SlowHeaders {
                    self.out.extend_from_slice(&bytes[head_len..]);
                    self.flush().await?;
                }
                Ok(if close { Next::Close } else { Next::KeepAlive })
            }
            FaultKind::Latency => {
                self.out.extend_from_slice(&bytes);
                self.flush().await?;
                Ok(if close { Next::Close } else { Next::KeepAlive })
            }
            FaultKind::SlowClose => {
                self.out.extend_from_slice(&bytes);
                self.flush().await?;
                tokio::time::sleep(fault.duration).await;
                Ok(Next::Close)
            }
            FaultKind::Reset | FaultKind::Empty | FaultKind::Stall | FaultKind::Garbage => {
                unreachable!("answered above")
            }
        }
    }

    /// Writes a paced body after its head: each piece after its pause, flushed at once, then
    /// (chunked) the last chunk and the trailers.
    async fn paced(&mut self, p: &Paced) -> std::io::Result<()> {
        self.flush().await?;
        for piece in &p.pieces {
            if !p.pause.is_zero() {
                tokio::time::sleep(p.pause).await;
            }
            reply::put_piece(&mut self.out, piece, p.chunked);
            self.flush().await?;
        }
        if p.chunked {
            reply::put_last_chunk(&mut self.out, &p.trailers);
        }
        Ok(())
    }

    /// Writes what is queued. A write that makes no progress for `--send-timeout` fails, so a
    /// client that never reads cannot hold its connection (and the queued answers) forever.
    async fn flush(&mut self) -> std::io::Result<()> {
        // Counted before the client can see them.
        self.app.settle(&mut self.tally);
        let mut done = 0;
        while done < self.out.len() {
            // Most writes complete at once: try first, and start the --send-timeout clock
            // only for a write that has to wait for the client.
            let now = match self.io.write_now(&self.out[done..]) {
                Some(wrote) => Some(wrote),
                None => self.io.write(&self.out[done..]).now_or_never(),
            };
            let wrote = match now {
                Some(wrote) => wrote?,
                None => {
                    self.settled = None;
                    // Boxed: a write that waits is rare, and its timer inline would grow every
                    // future that may flush (a reply's, moved on the hot path) by its size.
                    let wait = self.io.write(&self.out[done..]);
                    Box::pin(tokio::time::timeout(self.bounds.send_timeout, wait))
                        .await
                        .map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "the client read nothing for --send-timeout",
                            )
                        })??
                }
            };
            if wrote == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            done += wrote;
        }
        self.out.clear();
        Ok(())
    }

    /// Reads the request content, bounded by `--max-body` and `--body-timeout`.
    async fn read_body(
        &mut self,
        framing: Framing,
        held: &mut Reservation,
    ) -> Result<Bytes, BodyError> {
        let cfg = self.bounds;
        let until = tokio::time::Instant::now() + cfg.body_timeout;
        let over_budget = |budget: usize| {
            BodyError::Reject(
                503,
                format!(
                    "statuslab is buffering its maximum of {budget} bytes of request content (--max-buffered-bodies); retry after Retry-After"
                ),
            )
        };
        let budget = self.app.budget().limit();
        match framing {
            Framing::None => Ok(Bytes::new()),
            Framing::Length(n) => {
                let n = n as usize;
                if !held.grow_to(n) {
                    return Err(over_budget(budget));
                }
                while self.buf.len() < n {
                    self.fill(until, n - self.buf.len()).await?;
                }
                Ok(self.buf.split_to(n).freeze())
            }
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::new(framing::Limits {
                    max_body: cfg.max_body as u64,
                    max_ext_bytes: MAX_CHUNK_LINE,
                    max_trailer_bytes: MAX_TRAILER_BYTES,
                    max_trailer_fields: MAX_TRAILER_FIELDS,
                });
                let mut body = BytesMut::new();
                loop {
                    let decoded = decoder.decode(&mut self.buf, &mut body);
                    if !held.grow_to(body.len()) {
                        return Err(over_budget(budget));
                    }
                    match decoded {
                        Ok(true) => return Ok(body.freeze()),
                        Ok(false) => self.fill(until, 1).await?,
                        Err(e) => {
                            let detail = match e {
                                framing::FramingError::TooLarge => format!(
                                    "the chunked content exceeds {} bytes (--max-body)",
                                    cfg.max_body
                                ),
                                other => other.to_string(),
                            };
                            return Err(BodyError::Reject(e.status().as_u16(), detail));
                        }
                    }
                }
            }
            Framing::UntilClose => Err(BodyError::Reject(
                400,
                "a request's content must be delimited by Content-Length or chunked".to_owned(),
            )),
        }
    }

    async fn fill(&mut self, until: tokio::time::Instant, want: usize) -> Result<(), BodyError> {
        self.buf.reserve(want.clamp(FIRST_READ, 64 * 1024));
        match timeout_at(until, self.io.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Err(BodyError::Io),
            Ok(Ok(_)) => Ok(()),
            Err(_) => Err(BodyError::Reject(
                408,
                format!(
                    "the request content did not arrive within {} (--body-timeout)",
                    humantime::format_duration(self.bounds.body_timeout)
                ),
            )),
        }
    }

    fn log(&mut self, req: &Request, reply: &Reply, started: Instant, done: Instant) {
        self.app
            .completed(&mut self.tally, req, reply, started, done);
    }
}

enum BodyError {
    Io,
    Reject(u16, String),
}

/// A head is parsed again after this many more bytes even if no end was seen (so a malformed
/// head dribbled slowly is still refused early).
const REPARSE_EVERY: usize = 1024;

/// Whether `new` (the bytes read since the last scan, plus the 3 before) may hold the end of a
/// head: an empty line, with CRLF or bare LF endings.
fn may_end_head(new: &[u8]) -> bool {
    new.windows(2).any(|w| w == b"\n\n") || new.windows(3).any(|w| w == b"\n\r\n")
}

fn head_too_large(cfg: Limits) -> HeadError {
    HeadError::Reject(
        431,
        format!(
            "the request head is larger than {} bytes (--max-head-bytes)",
            cfg.max_head_bytes
        ),
    )
}

/// The request line at the start of `buf` (after the empty lines httparse skips before it),
/// without its line ending, and whether that ending has arrived.
fn request_line(buf: &[u8]) -> (&[u8], bool) {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (
            rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]),
            true,
        ),
        None => (rest, false),
    }
}

/// A target longer than `--max-uri` is answered 414 as soon as enough of the request line has
/// arrived to tell, whether or not the head is complete or larger than `--max-head-bytes`.
/// What follows the method counts (the target and ` HTTP/1.1\r`), not the method itself, so
/// the answer is the one the complete head would get however the line was split into reads.
fn check_request_line(buf: &[u8], max_uri: usize) -> Result<(), HeadError> {
    let (line, _) = request_line(buf);
    let after_method = line
        .iter()
        .position(|&b| b == b' ')
        .map_or(0, |space| line.len() - space - 1);
    // A space and `HTTP/1.1\r` after the target.
    const VERSION: usize = 1 + 9;
    if after_method > max_uri + VERSION {
        return Err(HeadError::Reject(
            414,
            format!(
                "the request line is longer than the {max_uri}-byte limit on targets (--max-uri)"
            ),
        ));
    }
    Ok(())
}

/// A complete head must respect the limits however it arrived: 414 for a long target first,
/// then 431 for a large head.
fn check_head_size(head: &Head, cfg: Limits) -> Result<(), HeadError> {
    let target = head.target.1 - head.target.0;
    if target > cfg.max_uri {
        return Err(HeadError::Reject(
            414,
            format!(
                "the request target is {target} bytes; the limit is {} (--max-uri)",
                cfg.max_uri
            ),
        ));
    }
    if head.len > cfg.max_head_bytes {
        return Err(head_too_large(cfg));
    }
    Ok(())
}

/// Parses a head from `buf`; `Ok(None)` if it is incomplete.
/// `fields`: an empty list to fill with the header fields (its allocation reused), left empty
/// if the head's field lines are `kept`.
fn parse_head(
    buf: &[u8],
    max_headers: usize,
    mut fields: Vec<(HeaderName, usize, usize)>,
    kept: Option<&[u8]>,
) -> Result<Option<Head>, HeadError> {
    // Left uninitialized: httparse writes the slots it fills (zeroing all of them cost a
    // 3.2 KiB memset per request).
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_SLOTS];
    let slots = &mut slots[..max_headers.min(HEADER_SLOTS)];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::Reject(
                431,
                format!("more than {max_headers} header fields (--max-headers)"),
            ));
        }
        Err(httparse::Error::Version) => return version_error(buf).map_or(Ok(None), Err),
        Err(e) => {
            return Err(HeadError::Reject(
                400,
                format!("malformed request head: {e}"),
            ));
        }
    };
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| s.as_ptr() as usize - base;
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes())
        .map_err(|_| HeadError::Reject(400, "malformed method".to_owned()))?;
    let path = req.path.unwrap_or("");
    let target = (
        offset(path.as_bytes()),
        offset(path.as_bytes()) + path.len(),
    );
    let version = if req.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let lines = req
        .headers
        .first()
        .map_or(len, |h| offset(h.name.as_bytes()));
    fields.clear();
    let mut head = Head {
        method,
        target,
        version,
        headers: fields,
        fields: lines,
        kept: kept.is_some_and(|kept| *kept == buf[lines..len]),
        len,
    };
    if head.kept {
        return Ok(Some(head));
    }
    head.headers.reserve(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::Reject(400, format!("malformed header name {:?}", h.name)))?;
        let start = offset(h.value);
        head.headers.push((name, start, start + h.value.len()));
    }
    Ok(Some(head))
}

/// httparse refuses any version but 1.0 and 1.1. A well-formed request line naming another
/// version (`HTTP/1.2`, `HTTP/2.0`, `HTTP/3.0`) gets 505; anything else is malformed (400).
/// `None` while the line has not ended and may still be well-formed (httparse refuses `HTTP/2`
/// before the rest of `HTTP/2.0` arrives): the answer must not depend on how the line was
/// split into reads.
fn version_error(buf: &[u8]) -> Option<HeadError> {
    const SHAPE: &[u8; 8] = b"HTTP/#.#";
    let fits = |v: &[u8]| {
        v.len() <= SHAPE.len()
            && v.iter().zip(SHAPE).all(|(&b, &s)| match s {
                b'#' => b.is_ascii_digit(),
                s => b == s,
            })
    };
    let (line, complete) = request_line(buf);
    let mut parts = line.split(|&b| b == b' ');
    if let (Some(_), Some(_), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    {
        if complete && v.len() == SHAPE.len() && fits(v) {
            let v = String::from_utf8_lossy(v);
            return Some(HeadError::Reject(
                505,
                format!(
                    "{v} is not supported: statuslab speaks HTTP/1.0 and HTTP/1.1 here, and HTTP/2 with prior knowledge"
                ),
            ));
        }
        // The line's `\r` may have arrived without its `\n`.
        let v = v
            .strip_suffix(b"\r")
            .filter(|v| v.len() == SHAPE.len())
            .unwrap_or(v);
        if !complete && fits(v) {
            return None;
        }
    }
    Some(HeadError::Reject(400, "malformed request line".to_owned()))
}

/// A cheap summary of a target (its length and last 8 bytes), to notice a repeated one. Two
/// targets with one fingerprint may differ: the memo it leads to is used only for a target
/// equal to the memo's.
fn fingerprint(target: &[u8]) -> u64 {
    let tail = &target[target.len().saturating_sub(8)..];
    let mut word = [0; 8];
    word[..tail.len()].copy_from_slice(tail);
    u64::from_le_bytes(word) ^ (target.len() as u64).rotate_left(48)
}

/// HTTP/1.1 requests need exactly one `Host` (RFC 9112 §3.2), and its value must be an
/// authority (`uri-host [ ":" port ]`, RFC 9110 §7.2): no user information, lists, spaces or
/// paths, which proxies and caches in front of statuslab would read differently.
/// (For a request of `version` with `hosts` Host fields, the last one `value`.)
fn check_host(version: Version, hosts: usize, value: &[u8]) -> Option<&'static str> {
    match hosts {
        0 if version == Version::HTTP_11 => {
            Some("an HTTP/1.1 request must carry a Host header (RFC 9112 §3.2)")
        }
        0 => None,
        1 if !valid_host(value) => {
            Some("the Host header is not a valid host[:port] (RFC 9110 §7.2)")
        }
        1 => None,
        _ => Some("the request carries more than one Host header (RFC 9112 §3.2)"),
    }
}

/// Whether `v` is empty or a host with an optional port.
fn valid_host(v: &[u8]) -> bool {
    match v.first() {
        None => true,
        Some(b'[') => valid_host_general(v),
        Some(_) => {
            // A name or an IPv4 address, in one pass: the host's characters, then at most a
            // port.
            let n = v.iter().take_while(|&&b| is_host_char(b)).count();
            match &v[n..] {
                _ if n == 0 => false,
                [] => true,
                [b':', port @ ..] => valid_port(port),
                _ => false,
            }
        }
    }
}

/// Whether `b` may appear in a reg-name (RFC 3986 §3.2.2: unreserved, pct-encoded and
/// sub-delims; an IPv4 address is one too).
fn is_host_char(b: u8) -> bool {
    HOST_CHARS[usize::from(b)]
}

/// [`is_host_char`] of every byte.
static HOST_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b';'
                    | b'='
            );
        b += 1;
    }
    table
};

/// port = *DIGIT (RFC 3986 §3.2.3), and a TCP port fits in 16 bits.
fn valid_port(port: &[u8]) -> bool {
    let mut n: u32 = 0;
    port.iter().all(|&b| {
        n = n * 10 + u32::from(b.wrapping_sub(b'0'));
        b.is_ascii_digit() && n <= u32::from(u16::MAX)
    })
}

/// [`valid_host`] for any value, an IPv6 literal included.
fn valid_host_general(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    if v.iter()
        .any(|&b| !b.is_ascii_graphic() || matches!(b, b',' | b'@' | b'/' | b'\\' | b'?' | b'#'))
    {
        return false;
    }
    let (host, port) = match v.iter().rposition(|&b| b == b':') {
        // `[::1]` alone: the colons are inside the IPv6 literal.
        Some(i) if !v[i..].contains(&b']') => (&v[..i], &v[i + 1..]),
        _ => (v, &b""[..]),
    };
    let host_ok = match host {
        [b'[', inner @ .., b']'] => {
            std::str::from_utf8(inner).is_ok_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        _ => !host.is_empty() && host.iter().all(|&b| is_host_char(b)),
    };
    valid_port(port) && host_ok
}

/// Gives `req` a copy of `head` (the bytes its target and header values were made from,
/// slices of the connection's read buffer) and re-slices them from it, so that a request kept
/// while its handler waits holds no part of the read buffer. The URI is re-sliced from
/// `target`, if given (not for a URI that owns its bytes: the memo's).
fn detach(req: &mut Request, head: &Bytes, target: Option<(usize, usize)>) {
    let copy = Bytes::copy_from_slice(head);
    rebase(&mut req.headers, head, &copy);
    if let Some((start, end)) = target
        && let Ok(uri) = Uri::from_maybe_shared(copy.slice(start..end))
    {
        req.uri = uri;
    }
}

/// Makes each value of `headers` that is a slice of `from` the same slice of `copy` (a copy of
/// `from`); other values are left as they are.
fn rebase(headers: &mut HeaderMap, from: &[u8], copy: &Bytes) {
    let base = from.as_ptr() as usize;
    for value in headers.values_mut() {
        let bytes = value.as_bytes();
        let start = (bytes.as_ptr() as usize).wrapping_sub(base);
        if bytes.is_empty() || start > copy.len() || copy.len() - start < bytes.len() {
            continue;
        }
        if let Ok(mine) = HeaderValue::from_maybe_shared(copy.slice(start..start + bytes.len())) {
            *value = mine;
        }
    }
}

/// Whether the client asked to close after this exchange (RFC 9112 §9.3).
fn wants_close(req: &Request) -> bool {
    let tokens = || {
        req.headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
    };
    if tokens().any(|t| t.eq_ignore_ascii_case("close")) {
        return true;
    }
    req.version == Version::HTTP_10 && !tokens().any(|t| t.eq_ignore_ascii_case("keep-alive"))
}

/// Writes a 503 to a connection over `--max-connections` and half-closes it; the caller
/// lingers on the returned connection.
pub(crate) async fn overloaded<S: Service>(
    io: TcpStream,
    peer: SocketAddr,
    app: Arc<S>,
) -> TcpStream {
    refuse_unread(
        io,
        peer,
        app,
        503,
        "too many open connections (--max-connections); retry after Retry-After",
    )
    .await
}

/// Answers plain HTTP sent to the TLS port with 400 (in plain HTTP, which the client can
/// read; `Connection: close`) instead of a TLS alert it would show as garbage, then closes.
/// The request is not read: the caller drains it.
pub(crate) async fn plain_http_on_tls<S: Service>(
    io: TcpStream,
    peer: SocketAddr,
    app: Arc<S>,
) -> TcpStream {
    refuse_unread(
        io,
        peer,
        app,
        400,
        "the plain HTTP request was sent to an HTTPS port: this port speaks TLS; use https://",
    )
    .await
}

/// Writes the application's refusal (`code`, `detail`) to a connection whose request was
/// never read, with `Connection: close`, and half-closes it (waiting at most a second).
async fn refuse_unread<S: Service>(
    mut io: TcpStream,
    peer: SocketAddr,
    app: Arc<S>,
    code: u16,
    detail: &str,
) -> TcpStream {
    let req = Request {
        method: Method::GET,
        uri: Uri::from_static("/"),
        version: Version::HTTP_11,
        headers: HeaderMap::new(),
        body: Bytes::new(),
        peer,
    };
    let reply = app.reject(&req, code, detail);
    let mut out = BytesMut::new();
    reply::put_final(&mut out, &reply, false, true, Instant::now());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), io.write_all(&out)).await;
    let _ = io.shutdown().await;
    io
}

/// How long, and how many bytes, a closing connection keeps reading what the client still
/// sends (nginx's `lingering_time` idea, much shorter).
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// After statuslab half-closed a connection, reads and drops what the client still sends, for
/// a bounded time and amount: closing a socket with unread bytes makes the kernel send a
/// reset, which can destroy the answer (413, 400, 503) before the client reads it.
pub(crate) async fn linger<T: AsyncRead + Unpin>(mut io: T) {
    let drain = async {
        // On the heap: inline, the buffer would size every connection's task, lingering or not.
        let mut scratch = vec![0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match io.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Properties of the head parser, shared by the property tests below and the `request_head`
/// fuzz target (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// A head as `read_head` would take it, comparable.
    type Parsed = (
        Method,
        (usize, usize),
        Version,
        Vec<(HeaderName, usize, usize)>,
        usize,
    );

    /// What `read_head` decides from the bytes buffered so far: a head that passes the target
    /// limit, a refusal, or `None` (read on).
    fn decide(buf: &[u8], max_headers: usize, max_uri: usize) -> Option<Result<Parsed, u16>> {
        match parse_head(buf, max_headers, Vec::new(), None) {
            Ok(Some(head)) if head.target.1 - head.target.0 > max_uri => Some(Err(414)),
            Ok(Some(h)) => Some(Ok((h.method, h.target, h.version, h.headers, h.len))),
            Err(HeadError::Reject(code, _)) => Some(Err(code)),
            Err(HeadError::Close) => panic!("parsing a head never asks to close"),
            Ok(None) => match check_request_line(buf, max_uri) {
                Ok(()) => None,
                Err(HeadError::Reject(code, _)) => Some(Err(code)),
                Err(HeadError::Close) => panic!("the 414 check never asks to close"),
            },
        }
    }

    /// Where `check_head` cuts a buffer: everywhere in a short one, a spread of points (and
    /// the last bytes) in a long one.
    fn cuts(len: usize) -> impl Iterator<Item = usize> {
        let step = (len / 128).max(1);
        (0..len).step_by(step).chain(len.saturating_sub(16)..len)
    }

    /// For any bytes: no panic; a head is refused only with 400, 414, 431 or 505; an accepted
    /// head's target and fields lie inside it, as text and header values a `Request` can hold;
    /// and the answer does not depend on how the bytes were split into reads: a prefix that
    /// is already a head stays that head, a prefix refused for its syntax is refused with the
    /// same code however it goes on, and a prefix refused as too long is never the start of
    /// an accepted head.
    pub(crate) fn check_head(buf: &[u8], max_headers: usize, max_uri: usize) {
        let whole = decide(buf, max_headers, max_uri);
        match &whole {
            Some(Ok((_, target, _, headers, len))) => {
                assert!(*len <= buf.len());
                assert!(target.0 < target.1 && target.1 <= *len);
                assert!(std::str::from_utf8(&buf[target.0..target.1]).is_ok());
                assert!(headers.len() <= max_headers.min(HEADER_SLOTS));
                for (_, start, end) in headers {
                    assert!(start <= end && *end <= *len);
                    assert!(HeaderValue::from_bytes(&buf[*start..*end]).is_ok());
                }
            }
            Some(Err(code)) => assert!(matches!(code, 400 | 414 | 431 | 505), "{code}"),
            None => {}
        }
        for k in cuts(buf.len()) {
            match decide(&buf[..k], max_headers, max_uri) {
                None => {}
                Some(Ok(head)) => assert_eq!(whole, Some(Ok(head)), "cut at {k}"),
                Some(Err(414)) => assert!(
                    matches!(whole, Some(Err(_))),
                    "refused with 414 when cut at {k}, accepted whole"
                ),
                Some(Err(code)) => assert_eq!(whole, Some(Err(code)), "cut at {k}"),
            }
        }
    }

    /// For any `Host` value: what `valid_host` accepts is visible ASCII without user
    /// information, lists, paths, queries or fragments.
    pub(crate) fn check_host(v: &[u8]) {
        if valid_host(v) {
            assert!(v.iter().all(u8::is_ascii_graphic));
            assert!(!v.iter().any(|b| b",@/\\?#".contains(b)));
        }
    }

    #[cfg(test)]
    use proptest::collection::vec;
    #[cfg(test)]
    use proptest::prelude::*;

    #[cfg(test)]
    fn eol() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("\r\n"), Just("\n")]
    }

    #[cfg(test)]
    proptest! {
        #[test]
        fn any_bytes_are_a_head_an_answer_or_incomplete(
            buf in prop_oneof![
                vec(any::<u8>(), 0..200),
                vec(prop::sample::select(b"GET /HTP1.02\r\n: Hostx\t@".to_vec()), 0..200),
            ],
            max_headers in 0usize..=HEADER_SLOTS,
            max_uri in 0usize..64,
        ) {
            check_head(&buf, max_headers, max_uri);
        }

        /// A rendered head parses back to its parts, whole or in pieces, with the limits
        /// applied: 431 past `max_headers`, 414 past `max_uri`.
        #[test]
        fn rendered_heads_round_trip(
            method in prop_oneof!["[A-Z]{1,12}", "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}"],
            target in "/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,40}",
            http10 in any::<bool>(),
            fields in vec(("[A-Za-z0-9-]{1,16}", "([!-~]([ !-~]{0,30}[!-~])?)?", eol()), 0..10),
            end in eol(),
            max_headers in 0usize..12,
            slack in -3i64..4,
            next in vec(any::<u8>(), 0..16),
        ) {
            let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
            let mut head = format!("{method} {target} {version}{end}");
            for (name, value, eol) in &fields {
                head.push_str(&format!("{name}: {value}{eol}"));
            }
            head.push_str(end);
            let max_uri = usize::try_from(target.len() as i64 + slack).unwrap_or(0);
            let mut buf = head.clone().into_bytes();
            buf.extend_from_slice(&next);
            check_head(&buf, max_headers, max_uri);
            match decide(&buf, max_headers, max_uri) {
                _ if fields.len() > max_headers => {
                    prop_assert_eq!(decide(&buf, max_headers, max_uri), Some(Err(431)));
                }
                _ if target.len() > max_uri => {
                    prop_assert_eq!(decide(&buf, max_headers, max_uri), Some(Err(414)));
                }
                Some(Ok((m, (t0, t1), v, headers, len))) => {
                    prop_assert_eq!(m.as_str(), method.as_str());
                    prop_assert_eq!(&buf[t0..t1], target.as_bytes());
                    prop_assert_eq!(v, if http10 { Version::HTTP_10 } else { Version::HTTP_11 });
                    prop_assert_eq!(len, head.len());
                    prop_assert_eq!(headers.len(), fields.len());
                    for ((name, start, end), (want, value, _)) in headers.iter().zip(&fields) {
                        prop_assert_eq!(name.as_str(), want.to_ascii_lowercase());
                        prop_assert_eq!(&buf[*start..*end], value.as_bytes());
                    }
                }
                other => prop_assert!(false, "{:?}", other.map(|r| r.map(|_| ()))),
            }
        }

        /// A request line naming another HTTP version gets 505, however its line ends and
        /// however it is split; anything else in the version's place gets 400.
        #[test]
        fn other_versions_get_505(
            major in 0u8..10,
            minor in 0u8..10,
            junk in prop_oneof![
                Just(""), Just("x"), Just("0"), Just(" "), Just("/"),
            ],
            prefix in prop_oneof![Just("HTTP/"), Just("HTTP/"), Just("http/"), Just("HTTPS/"), Just("")],
            blank in prop_oneof![Just(""), Just("\r\n"), Just("\n")],
            end in eol(),
        ) {
            let version = format!("{prefix}{major}.{minor}{junk}");
            let buf = format!("{blank}GET /status/200 {version}{end}Host: x{end}{end}");
            check_head(buf.as_bytes(), HEADER_SLOTS, 1024);
            let got = decide(buf.as_bytes(), HEADER_SLOTS, 1024);
            if prefix == "HTTP/" && junk.is_empty() {
                if (major, minor) == (1, 0) || (major, minor) == (1, 1) {
                    prop_assert!(matches!(got, Some(Ok(_))));
                } else {
                    prop_assert_eq!(got, Some(Err(505)));
                }
            } else {
                prop_assert_eq!(got, Some(Err(400)));
            }
        }

        /// A target longer than `max_uri` (with room for the version after it) is refused with
        /// 414 before the head ends, whatever the method.
        #[test]
        fn long_targets_get_414_before_the_head_ends(
            method in "[A-Z]{1,20}",
            len in 1usize..300,
            max_uri in 0usize..200,
        ) {
            let line = format!("{method} /{}", "a".repeat(len - 1));
            let refused = check_request_line(line.as_bytes(), max_uri).is_err();
            prop_assert_eq!(refused, len > max_uri + 10);
        }

        #[test]
        fn hosts_and_ports(
            host in prop_oneof!["[a-z0-9]([a-z0-9.-]{0,20})", "\\[::[0-9]{1,4}\\]", "[0-9]{1,3}(\\.[0-9]{1,3}){3}"],
            port in proptest::option::of(0u32..100_000),
        ) {
            let v = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            };
            check_host(v.as_bytes());
            prop_assert_eq!(valid_host(v.as_bytes()), port.is_none_or(|p| p <= 65_535), "{}", v);
        }

        /// User information, lists, paths, queries, fragments and spaces are never a valid
        /// `Host`.
        #[test]
        fn hosts_with_more_are_refused(
            host in "[a-z0-9.:-]{0,12}",
            sep in prop::sample::select(vec!['@', ',', '/', '\\', '?', '#', ' ', '\t']),
            rest in "[a-z0-9.:@/-]{0,12}",
        ) {
            let v = format!("{host}{sep}{rest}");
            prop_assert!(!valid_host(v.as_bytes()), "{}", v);
        }

        #[test]
        fn any_host_bytes(v in vec(any::<u8>(), 0..40)) {
            check_host(&v);
            prop_assert_eq!(valid_host(&v), valid_host_general(&v));
        }

        /// The one-pass check of names and IPv4 addresses decides as the general one.
        #[test]
        fn the_quick_host_check_agrees(v in "[a-z0-9.:\\[\\]@%~ -]{0,16}") {
            prop_assert_eq!(valid_host(v.as_bytes()), valid_host_general(v.as_bytes()), "{}", v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `parse_head` answers: `Some(0)` for a head, a refusal's code, `None` to read on.
    fn answer(buf: &[u8]) -> Option<u16> {
        match parse_head(buf, HEADER_SLOTS, Vec::new(), None) {
            Ok(Some(_)) => Some(0),
            Ok(None) => None,
            Err(HeadError::Reject(code, _)) => Some(code),
            Err(HeadError::Close) => Some(1),
        }
    }

    /// A head is found to repeat the kept field lines only when its lines are the same bytes,
    /// whatever its request line; its fields are then not listed.
    #[test]
    fn kept_field_lines_are_matched_byte_for_byte() {
        let lines = b"Host: a.test\r\nX-A: 1\r\n\r\n";
        let parse = |head: &[u8]| {
            parse_head(head, HEADER_SLOTS, Vec::new(), Some(lines))
                .map_err(|_| ())
                .expect("a valid head")
                .expect("a whole head")
        };
        let same = parse(b"POST /x?y HTTP/1.0\r\nHost: a.test\r\nX-A: 1\r\n\r\n");
        assert!(same.kept && same.headers.is_empty());
        assert_eq!(same.fields, "POST /x?y HTTP/1.0\r\n".len());
        for other in [
            &b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: 2\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nhost: a.test\r\nX-A: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\nX-B: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a.test\nX-A: 1\n\n",
        ] {
            let head = parse(other);
            assert!(!head.kept, "{:?}", String::from_utf8_lossy(other));
            assert!(!head.headers.is_empty());
        }
    }

    /// Found by the `props` properties: answers that depended on how the head was split.
    #[test]
    fn split_heads_get_the_whole_heads_answer() {
        // A method longer than 7 bytes counted against the target: a dribbled line got 414.
        let head = format!("PROPFIND /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(99));
        props::check_head(head.as_bytes(), HEADER_SLOTS, 100);
        let line_and_cr = head.find('\n').expect("a line");
        assert!(check_request_line(&head.as_bytes()[..line_and_cr], 100).is_ok());
        // httparse refuses `HTTP/2` before `.0` arrives: that was 400, the whole line 505.
        assert_eq!(answer(b"GET / HTTP/2"), None);
        assert_eq!(answer(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), Some(505));
        // Empty lines before the request line, and bare LF endings, kept 505 from the line.
        assert_eq!(answer(b"\r\nGET / HTTP/1.2\nHost: x\n\n"), Some(505));
        assert_eq!(answer(b"GET / HTTP/1.1x\r\n\r\n"), Some(400));
    }

    /// Found by `props::hosts_and_ports`: `Authority::port` hides a port past 65535.
    #[test]
    fn host_ports_past_u16_are_refused() {
        assert!(!valid_host(b"a:65536"));
        assert!(valid_host(b"a:65535"));
        assert!(valid_host(b"[::1]:8080"));
        assert!(!valid_host(b"[::1]:80800"));
    }

    /// A detached request is equal to the one made from the read buffer, and none of its
    /// target or header values lies in that buffer any more.
    #[test]
    fn a_detached_request_holds_none_of_the_read_buffer() {
        let head = Bytes::from_static(
            b"GET /status/200?sleep=5 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\nX-E:\r\n\r\n",
        );
        let mut headers = HeaderMap::new();
        for (name, at) in [("host", 40), ("x-a", 48), ("x-a", 56)] {
            let value = HeaderValue::from_maybe_shared(head.slice(at..at + 1)).unwrap();
            headers.append(HeaderName::from_static(name), value);
        }
        headers.append("x-e", HeaderValue::from_static(""));
        let mut req = Request {
            method: Method::GET,
            uri: Uri::from_maybe_shared(head.slice(4..23)).unwrap(),
            version: Version::HTTP_11,
            headers,
            body: Bytes::new(),
            peer: SocketAddr::from(([127, 0, 0, 1], 9)),
        };
        let made = req.clone();
        detach(&mut req, &head, Some((4, 23)));
        assert_eq!(req.uri, made.uri);
        assert_eq!(req.headers, made.headers);
        let within = |p: *const u8| head.as_ptr_range().contains(&p);
        assert!(!within(req.uri.path().as_ptr()));
        assert!(req.headers.values().all(|v| !within(v.as_bytes().as_ptr())));
        assert_eq!(req.header("x-a"), Some("1"));
    }
}
