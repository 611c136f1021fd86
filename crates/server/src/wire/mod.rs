//! The wire layer: every byte statuslab reads or writes on a connection.
//!
//! HTTP/1.1 is statuslab's own codec ([`h1`]: httparse for heads, [`framing`] for content,
//! [`reply`] for what goes out); HTTP/2 runs on the h2 crate ([`h2`]); [`tls`] wraps either.
//! The same framing code reads responses in [`client`], statuslab's own HTTP/1.1 client (the
//! gateway's upstream side, and the probe's client).
//!
//! The connections know nothing of routes: they talk to the application through [`Service`]
//! (admit a request from its head, handle it once its content is read, reject what cannot be
//! parsed), so this layer imports nothing above it.

pub(crate) mod client;
pub(crate) mod clock;
pub(crate) mod fault;
pub(crate) mod framing;
pub(crate) mod h1;
pub(crate) mod h2;
pub(crate) mod reply;
pub(crate) mod request;
pub(crate) mod rewind;
pub(crate) mod tls;
pub(crate) mod websocket;

use reply::Reply;
use request::Request;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The application as the connections see it.
///
/// Every request meets [`Service::admit`] once, from its head alone and before its content is
/// read, so a refused upload gets its final answer instead of `100 Continue` and is never read;
/// an admitted one is then handed to [`Service::handle`] with what admission decided.
pub(crate) trait Service: Send + Sync + 'static {
    /// What admission hands on to the handler (the route, the slot it holds, limits met).
    type Ticket: Send + Sync;

    /// Decides from the head whether the request goes on (`Ok`) or is answered now (`Err`;
    /// boxed, so that the admitted path moves a ticket, not a reply, around).
    fn admit(&self, req: &Request)
    -> impl Future<Output = Result<Self::Ticket, Box<Reply>>> + Send;

    /// [`Service::admit`] without waiting, when the decision needs nothing that waits; `None`
    /// otherwise (then `admit` decides). The hot path: no future is made for it.
    fn admit_now(&self, req: &Request) -> Option<Result<Self::Ticket, Box<Reply>>>;

    /// The admitted request is about to wait (for its content or its handler): from now until
    /// its ticket is dropped it counts as in flight. A request answered without waiting is
    /// never held: it is in flight for no time anyone could observe.
    fn hold(&self, ticket: &mut Self::Ticket);

    /// Answers an admitted request whose content has been read. The ticket is lent, not
    /// given: the caller keeps it (and what it holds) until the reply is made, and a held
    /// request's future carries no copy of it.
    fn handle(&self, req: &Request, ticket: &Self::Ticket) -> impl Future<Output = Reply> + Send;

    /// [`Service::handle`] without waiting, for an answer that is ready at once; `None`
    /// otherwise (then `handle` answers).
    fn handle_now(&self, req: &Request, ticket: &Self::Ticket) -> Option<Reply> {
        let mut reply = Reply::new(reply::known(200));
        self.handle_now_in(req, ticket, &mut reply).then_some(reply)
    }

    /// [`Service::handle_now`] in place: makes `reply` (a [`Reply::new`], whatever its code)
    /// the answer and says so, or leaves it as it was. (A reply is 200 bytes; the hot path
    /// lends one rather than moving it out through the application's layers.)
    fn handle_now_in(&self, req: &Request, ticket: &Self::Ticket, reply: &mut Reply) -> bool;

    /// The answer to a request the wire refuses before the application sees it (malformed
    /// head, limits, time-outs, too many connections): `code` with `detail` saying why.
    fn reject(&self, req: &Request, code: u16, detail: &str) -> Reply;

    /// What a connection keeps of the requests it answered until it writes their replies
    /// (counts to add to shared counters), given to [`Service::completed`].
    type Tally: Default + Send;

    /// Called once per answered request (metrics, the access log): its head was read at
    /// `started`, its reply made at `done`. What goes into `tally` counts once the tally is
    /// settled or dropped.
    fn completed(
        &self,
        tally: &mut Self::Tally,
        req: &Request,
        reply: &Reply,
        started: Instant,
        done: Instant,
    );

    /// Counts what `tally` holds. A connection settles its tally before it writes, so a
    /// client that has its reply finds its request counted.
    fn settle(&self, tally: &mut Self::Tally);

    /// The server-wide budget for buffered request content.
    fn budget(&self) -> &Arc<BodyBudget>;

    /// Whether the server is shutting down (every reply then closes its connection). True
    /// before the connections' shutdown token is cancelled: a connection waiting for its next
    /// request looks at the token only once this says so.
    fn stopping(&self) -> bool;
}

/// A server-wide bound on request content held in memory at once (`--max-buffered-bodies`):
/// 20,000 connections may each send up to `--max-body`, but not all at the same time.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    used: AtomicUsize,
    limit: usize,
}

impl BodyBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> BodyBudget {
        BodyBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// The bytes the budget allows.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

/// Bytes taken from a [`BodyBudget`], given back on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<BodyBudget>,
    held: usize,
}

impl Reservation {
    /// An empty reservation on `budget`.
    pub(crate) fn new(budget: &Arc<BodyBudget>) -> Reservation {
        Reservation {
            budget: Arc::clone(budget),
            held: 0,
        }
    }

    /// Grows the reservation to `total` bytes; `false` (and nothing taken) past the budget.
    pub(crate) fn grow_to(&mut self, total: usize) -> bool {
        let Some(more) = total.checked_sub(self.held).filter(|&m| m > 0) else {
            return true;
        };
        let before = self.budget.used.fetch_add(more, Ordering::Relaxed);
        if before.saturating_add(more) > self.budget.limit {
            self.budget.used.fetch_sub(more, Ordering::Relaxed);
            return false;
        }
        self.held = total;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// What a connection enforces, copied once per connection so the per-request path touches no
/// shared reference count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Header fields per request (431 past it).
    pub(crate) max_headers: usize,
    /// Bytes in a request head (431 past it).
    pub(crate) max_head_bytes: usize,
    /// Bytes in a request target (414 past it).
    pub(crate) max_uri: usize,
    /// Bytes of request content (413 past it).
    pub(crate) max_body: usize,
    /// Time for a complete head (408 past it).
    pub(crate) header_timeout: Duration,
    /// Time for the content (408 past it).
    pub(crate) body_timeout: Duration,
    /// Idle keep-alive connections close after this.
    pub(crate) idle_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub(crate) max_h2_streams: u32,
    /// Largest WebSocket message.
    pub(crate) max_ws_message: usize,
    /// A write that makes no progress for this long closes the connection.
    pub(crate) send_timeout: Duration,
}

impl Limits {
    /// The limits `cfg` sets.
    pub(crate) fn of(cfg: &crate::config::Config) -> Limits {
        Limits {
            max_headers: cfg.max_headers,
            max_head_bytes: cfg.max_head_bytes,
            max_uri: cfg.max_uri,
            max_body: cfg.max_body,
            header_timeout: cfg.header_timeout,
            body_timeout: cfg.body_timeout,
            idle_timeout: cfg.idle_timeout,
            max_h2_streams: cfg.max_h2_streams,
            max_ws_message: cfg.max_ws_message,
            send_timeout: cfg.send_timeout,
        }
    }
}
