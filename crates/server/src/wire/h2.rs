//! HTTP/2 (h2c with prior knowledge, and h2 over TLS) on the h2 crate directly, so interim
//! responses go out through `send_informational`, which hyper's server does not expose.

use super::fault::{self, Fault, FaultKind};
use super::reply::{self, Body, Reply};
use super::request::Request;
use super::{Limits, Reservation, Service};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use h2::RecvStream;
use h2::server::SendResponse;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Version};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

/// Serves one HTTP/2 connection until the peer or shutdown ends it.
pub(crate) async fn serve<T, S>(
    io: T,
    peer: SocketAddr,
    app: Arc<S>,
    cfg: Limits,
    shutdown: CancellationToken,
) where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Service,
{
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(cfg.max_h2_streams)
        .max_header_list_size(u32::try_from(cfg.max_head_bytes).unwrap_or(u32::MAX))
        .handshake(io);
    let mut conn = match tokio::time::timeout(cfg.header_timeout, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "h2 handshake failed");
            return;
        }
        Err(_) => return,
    };
    // Streams in progress, and when the last one started or ended: a connection with no stream
    // for `--idle-timeout` is closed (GOAWAY), as an idle HTTP/1.1 connection is.
    let activity = Arc::new(Activity::new());
    let idle = tokio::time::sleep(cfg.idle_timeout);
    tokio::pin!(idle);
    let mut draining = false;
    // The connection's streams run inside its own task, not one task each; a stream answered
    // at once (see `begin`) gets no future at all: it is done before the next is accepted, and
    // the latest one's start counts as activity.
    let mut streams = FuturesUnordered::new();
    let mut answered: Option<Instant> = None;
    // Counts the streams answered at once (settled at once: the h2 crate writes each reply).
    let mut tally = S::Tally::default();
    loop {
        tokio::select! {
            Some(()) = streams.next(), if !streams.is_empty() => {}
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    let begun = match begin(req, respond, peer, &*app, &mut tally, cfg) {
                        Begun::Answered(at) => {
                            answered = Some(at);
                            continue;
                        }
                        Begun::Waits(begun) => begun,
                    };
                    let busy = Busy::enter(&activity);
                    let app = Arc::clone(&app);
                    streams.push(async move {
                        stream(*begun, app, cfg).await;
                        drop(busy);
                    });
                }
                Some(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "h2 connection error");
                    break;
                }
                None => break,
            },
            () = &mut idle => {
                if draining {
                    // The peer did not finish closing in time.
                    break;
                }
                match activity.idle_until(cfg.idle_timeout, answered) {
                    Some(until) => idle.as_mut().reset(until),
                    None => {
                        tracing::debug!(%peer, "idle HTTP/2 connection closed");
                        draining = true;
                        conn.graceful_shutdown();
                        // A peer that does not answer the GOAWAY's ping is not waited for long.
                        let drain = cfg.idle_timeout.min(cfg.header_timeout);
                        idle.as_mut().reset(tokio::time::Instant::now() + drain);
                    }
                }
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.graceful_shutdown();
            }
        }
    }
}

/// The streams of one connection: how many are open, and when the last one started or ended.
struct Activity {
    open: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<tokio::time::Instant>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            open: std::sync::atomic::AtomicUsize::new(0),
            last: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    fn touch(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = tokio::time::Instant::now();
        }
    }

    /// `None` when the connection has been idle for `limit`; else when to look again.
    /// `answered`: when the latest stream answered at once began.
    fn idle_until(
        &self,
        limit: std::time::Duration,
        answered: Option<Instant>,
    ) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        if self.open.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            return Some(now + limit);
        }
        let mut last = self.last.lock().map_or(now, |l| *l);
        if let Some(at) = answered {
            last = last.max(tokio::time::Instant::from_std(at));
        }
        let until = last + limit;
        (until > now).then_some(until)
    }
}

/// One open stream, counted while it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: &Arc<Activity>) -> Busy {
        activity
            .open
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        activity.touch();
        Busy(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How far a stream got without waiting.
enum Begun<S: Service> {
    /// Answered and sent, at the instant given (the stream began then).
    Answered(Instant),
    /// To be continued in a future of its own (boxed: the connection's state stays small).
    Waits(Box<Waiting<S>>),
}

struct Waiting<S: Service> {
    req: Request,
    recv: RecvStream,
    respond: SendResponse<Bytes>,
    started: Instant,
    /// Admission's answer, if it came at once; a reply made at once that cannot be sent whole
    /// at once (a fault, a paced body) waits here as a refusal does.
    admitted: Option<Result<S::Ticket, Box<Reply>>>,
}

/// Begins a stream: the wire's own refusals, admission and the handler, as far as each goes
/// without waiting. A stream whose reply is ready at once and goes out whole (a refusal, or a
/// request without content whose handler answers at once: a plain on-demand code) is answered
/// here, with one clock reading and no future; any other goes on in [`stream`].
fn begin<S: Service>(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    peer: SocketAddr,
    app: &S,
    tally: &mut S::Tally,
    cfg: Limits,
) -> Begun<S> {
    let started = Instant::now();
    let (req, recv, refused) = request_of(req, peer, cfg);
    let admitted = match refused {
        Some((code, detail)) => Some(Err(Box::new(app.reject(&req, code, &detail)))),
        None => app.admit_now(&req),
    };
    let (admitted, made) = match admitted {
        Some(Err(reply)) => (None, Some(*reply)),
        Some(Ok(ticket)) if recv.is_end_stream() => {
            let made = app.handle_now(&req, &ticket);
            (Some(Ok(ticket)), made)
        }
        admitted => (admitted, None),
    };
    match made {
        Some(reply) if reply.fault.is_none() && !matches!(reply.body, Body::Paced(_)) => {
            drop(admitted);
            app.completed(tally, &req, &reply, started, started);
            app.settle(tally);
            let _ = send(&mut respond, &req, reply, false, started);
            Begun::Answered(started)
        }
        made => Begun::Waits(Box::new(Waiting {
            req,
            recv,
            respond,
            started,
            admitted: match made {
                Some(reply) => Some(Err(Box::new(reply))),
                None => admitted,
            },
        })),
    }
}

/// The stream's request, and what the wire's limits refuse of it: the same rules as on
/// HTTP/1.1, in the same order (target length, header count, expectation, length).
fn request_of(
    req: http::Request<RecvStream>,
    peer: SocketAddr,
    cfg: Limits,
) -> (Request, RecvStream, Option<(u16, String)>) {
    let (parts, recv) = req.into_parts();
    let req = Request {
        method: parts.method,
        uri: parts.uri,
        version: Version::HTTP_2,
        headers: parts.headers,
        body: Bytes::new(),
        peer,
    };
    let declared: Option<u64> = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.parse().ok());
    let mut expects = req.headers.get_all(header::EXPECT).iter();
    let expectation = match (expects.next(), expects.next()) {
        (None, _) => None,
        (Some(v), None) if v.as_bytes().eq_ignore_ascii_case(b"100-continue") => None,
        (Some(v), _) => Some(String::from_utf8_lossy(v.as_bytes()).into_owned()),
    };
    let target = req.uri.path_and_query().map_or(0, |p| p.as_str().len());
    let refused = if target > cfg.max_uri {
        Some((
            414,
            format!(
                "the request target is {target} bytes; the limit is {} (--max-uri)",
                cfg.max_uri
            ),
        ))
    } else if req.headers.len() > cfg.max_headers {
        Some((
            431,
            format!(
                "more than {} header fields (--max-headers)",
                cfg.max_headers
            ),
        ))
    } else if let Some(v) = expectation {
        Some((
            417,
            format!("statuslab meets only the expectation 100-continue, not {v:?}"),
        ))
    } else if declared.is_some_and(|n| n > cfg.max_body as u64) {
        Some((
            413,
            format!(
                "the content is larger than {} bytes (--max-body)",
                cfg.max_body
            ),
        ))
    } else {
        None
    };
    (req, recv, refused)
}

/// The rest of a stream that [`begin`] could not finish: what waits (admission that asks the
/// store, the content, a handler that takes time), then the reply and its fault or pacing.
async fn stream<S: Service>(begun: Waiting<S>, app: Arc<S>, cfg: Limits) {
    let Waiting {
        mut req,
        mut recv,
        mut respond,
        started,
        admitted,
    } = begun;
    let max_body = cfg.max_body;
    let admitted = match admitted {
        Some(admitted) => admitted,
        None => app.admit(&req).await,
    };
    let mut continued = false;
    let reply = match admitted {
        Err(reply) => *reply,
        Ok(mut ticket) => {
            app.hold(&mut ticket);
            if !recv.is_end_stream()
                && req
                    .headers
                    .get(header::EXPECT)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
            {
                continued = respond
                    .send_informational(
                        http::Response::builder()
                            .status(100)
                            .body(())
                            .expect("valid 100"),
                    )
                    .is_ok();
            }
            let mut held = Reservation::new(app.budget());
            match read_body(&mut recv, max_body, cfg.body_timeout, &mut held).await {
                Ok(body) => {
                    req.body = body;
                    match app.handle_now(&req, &ticket) {
                        Some(reply) => reply,
                        None => app.handle(&req, &ticket).await,
                    }
                }
                Err(BodyError::TooLarge) => app.reject(
                    &req,
                    413,
                    &format!("the content is larger than {max_body} bytes (--max-body)"),
                ),
                Err(BodyError::TimedOut) => app.reject(
                    &req,
                    408,
                    "the request content did not arrive in time (--body-timeout)",
                ),
                Err(BodyError::OverBudget) => app.reject(
                    &req,
                    503,
                    &format!(
                        "statuslab is buffering its maximum of {} bytes of request content (--max-buffered-bodies); retry after Retry-After",
                        app.budget().limit()
                    ),
                ),
                Err(BodyError::Reset) => return,
            }
        }
    };
    let done = Instant::now();
    app.completed(&mut S::Tally::default(), &req, &reply, started, done);
    match reply.fault {
        Some(fault) => faulty(respond, &req, reply, fault, continued).await,
        None => {
            let paced = match &reply.body {
                Body::Paced(p) if reply.body_allowed() && !req.is_head() => Some(p.clone()),
                _ => None,
            };
            if let (Ok(Some(stream)), Some(p)) =
                (send(&mut respond, &req, reply, continued, done), paced)
            {
                let _ = send_paced(stream, *p).await;
            }
        }
    }
}

/// The pieces of a paced body as DATA frames, each after its pause, then the trailers (a
/// HEADERS frame) or the end of the stream.
async fn send_paced(mut stream: h2::SendStream<Bytes>, p: reply::Paced) -> Result<(), h2::Error> {
    for piece in p.pieces {
        if !p.pause.is_zero() {
            tokio::time::sleep(p.pause).await;
        }
        if !piece.is_empty() {
            stream.send_data(piece, false)?;
        }
    }
    if p.trailers.is_empty() {
        stream.send_data(Bytes::new(), true)
    } else {
        stream.send_trailers(p.trailers)
    }
}

enum BodyError {
    OverBudget,
    TooLarge,
    TimedOut,
    Reset,
}

async fn read_body(
    recv: &mut RecvStream,
    max: usize,
    limit: std::time::Duration,
    held: &mut Reservation,
) -> Result<Bytes, BodyError> {
    let mut body = BytesMut::new();
    let read = async {
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(|_| BodyError::Reset)?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            if body.len() + chunk.len() > max {
                return Err(BodyError::TooLarge);
            }
            if !held.grow_to(body.len() + chunk.len()) {
                return Err(BodyError::OverBudget);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| BodyError::TimedOut)??;
    Ok(body.freeze())
}

/// A fault on HTTP/2, where a stream fails on its own: a reset stream (`RST_STREAM`) for the
/// kinds that break a connection on HTTP/1.1, content cut short and then reset, a stream held
/// open without an answer, content sent in pieces over time. A head cannot be trickled in
/// HPACK, so `slow-headers` is a delay before it.
async fn faulty(
    mut respond: SendResponse<Bytes>,
    req: &Request,
    mut reply: Reply,
    fault: Fault,
    continued: bool,
) {
    reply.fault = None;
    match fault.kind {
        FaultKind::Reset | FaultKind::Empty | FaultKind::Garbage | FaultKind::MalformedChunk => {
            respond.send_reset(h2::Reason::INTERNAL_ERROR);
        }
        FaultKind::Stall => {
            tokio::time::sleep(fault.duration).await;
            respond.send_reset(h2::Reason::CANCEL);
        }
        FaultKind::SlowHeaders | FaultKind::Latency => {
            tokio::time::sleep(fault.duration).await;
            let _ = send(&mut respond, req, reply, continued, Instant::now());
        }
        FaultKind::SlowClose => {
            let _ = send(&mut respond, req, reply, continued, Instant::now());
        }
        FaultKind::Truncate | FaultKind::CloseAfterHeaders | FaultKind::Drip => {
            let body = match std::mem::take(&mut reply.body) {
                Body::Full(b) if !req.is_head() => b,
                _ => Bytes::new(),
            };
            let mut head = http::Response::new(());
            *head.status_mut() = reply.status.into();
            *head.headers_mut() = std::mem::take(&mut reply.headers);
            head.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            let Ok(mut stream) = respond.send_response(head, body.is_empty()) else {
                return;
            };
            match fault.kind {
                FaultKind::Drip => {
                    let parts: Vec<_> = fault::pieces(body.len()).collect();
                    let pause = fault.duration / u32::try_from(parts.len().max(1)).unwrap_or(1);
                    let last = parts.len().saturating_sub(1);
                    for (i, part) in parts.into_iter().enumerate() {
                        tokio::time::sleep(pause).await;
                        if stream.send_data(body.slice(part), i == last).is_err() {
                            return;
                        }
                    }
                }
                FaultKind::Truncate => {
                    let _ = stream.send_data(body.slice(..body.len() / 2), false);
                    stream.send_reset(h2::Reason::INTERNAL_ERROR);
                }
                _ => stream.send_reset(h2::Reason::INTERNAL_ERROR),
            }
        }
    }
}

/// Header fields HTTP/2 forbids (RFC 9113 §8.2.2).
fn connection_specific(name: &http::HeaderName) -> bool {
    matches!(
        *name,
        header::CONNECTION | header::UPGRADE | header::TRANSFER_ENCODING | header::TE
    ) || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// The final response's header fields: the reply's, less connection-specific ones, with
/// `Date` (made `at`, unless the reply has its own) and `Content-Length` where the reply has
/// one. A plain on-demand answer's come prebuilt, Date's place and the length included.
pub(crate) fn fields(reply: &Reply, at: Instant) -> HeaderMap {
    let mut length = reply.has_content_length().then(|| reply.content_length());
    let mut headers = match &reply.prebuilt {
        Some(p) => match p.h2(length) {
            Some(whole) => {
                length = None;
                whole.clone()
            }
            None => p.headers().clone(),
        },
        None => HeaderMap::new(),
    };
    if reply.headers.contains_key(header::DATE) {
        // A Date the request asked for (`header=Date:...`) replaces the clock's.
        headers.remove(header::DATE);
    } else {
        headers.insert(header::DATE, reply::date_value(at));
    }
    for (name, value) in &reply.headers {
        if !connection_specific(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(n) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    headers
}

/// Sends the reply, interim responses first (but not a second 100 when the upload already
/// got one: `continued`). A paced body is left to the caller: its open stream is returned.
/// `at`: when the reply was made (its `Date`).
fn send(
    respond: &mut SendResponse<Bytes>,
    req: &Request,
    reply: Reply,
    continued: bool,
    at: Instant,
) -> Result<Option<h2::SendStream<Bytes>>, h2::Error> {
    for interim in &reply.interim {
        if interim.status == 100 && continued {
            continue;
        }
        let mut head = http::Response::new(());
        *head.status_mut() = http::StatusCode::from_u16(interim.status).expect("1xx is valid");
        *head.headers_mut() = interim.headers.clone();
        respond.send_informational(head)?;
    }
    let mut head = http::Response::new(());
    *head.status_mut() = reply.status.into();
    *head.headers_mut() = fields(&reply, at);
    let body = match &reply.body {
        Body::Full(b) if reply.body_allowed() && !req.is_head() && !b.is_empty() => Some(b.clone()),
        _ => None,
    };
    let paced = matches!(reply.body, Body::Paced(_)) && reply.body_allowed() && !req.is_head();
    let mut stream = respond.send_response(head, body.is_none() && !paced)?;
    if let Some(b) = body {
        stream.send_data(b, true)?;
    }
    Ok(paced.then_some(stream))
}
