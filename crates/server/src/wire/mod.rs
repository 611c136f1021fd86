//! The wire layer: every byte statuslab reads or writes on a connection.
//!
//! HTTP/1.1 is statuslab's own codec ([`h1`]: httparse for heads, [`framing`] for content,
//! [`reply`] for what goes out); HTTP/2 runs on the h2 crate ([`h2`]); [`tls`] wraps either.
//! The same framing code reads the gateway's upstream responses.
//!
//! The connections know nothing of routes: they talk to the application through [`Service`]
//! (admit a request from its head, handle it once its content is read, reject what cannot be
//! parsed), so this layer imports nothing above it.

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
use std::time::{Duration, Instant};

/// The application as the connections see it.
///
/// Every request meets [`Service::admit`] once, from its head alone and before its content is
/// read, so a refused upload gets its final answer instead of `100 Continue` and is never read;
/// an admitted one is then handed to [`Service::handle`] with what admission decided.
pub(crate) trait Service: Send + Sync + 'static {
    /// What admission hands on to the handler (the route, the slot it holds, limits met).
    type Ticket: Send;

    /// Decides from the head whether the request goes on (`Ok`) or is answered now (`Err`).
    fn admit(&self, req: &Request) -> impl Future<Output = Result<Self::Ticket, Reply>> + Send;

    /// Answers an admitted request whose content has been read.
    fn handle(&self, req: &Request, ticket: Self::Ticket) -> impl Future<Output = Reply> + Send;

    /// The answer to a request the wire refuses before the application sees it (malformed
    /// head, limits, time-outs, too many connections): `code` with `detail` saying why.
    fn reject(&self, req: &Request, code: u16, detail: &str) -> Reply;

    /// Called once per answered request (the access log).
    fn completed(&self, req: &Request, reply: &Reply, started: Instant);
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
}
