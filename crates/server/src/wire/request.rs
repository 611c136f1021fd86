//! `Request`: one parsed request, whichever protocol carried it.

use bytes::Bytes;
use http::{HeaderMap, Method, Uri, Version, header};
use std::net::SocketAddr;

/// A request as handlers see it: head, complete content, and the peer's address.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The target (origin-form; absolute-form targets keep their authority).
    pub uri: Uri,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: Version,
    /// Header fields.
    pub headers: HeaderMap,
    /// The content, already read (bounded by `--max-body`).
    pub body: Bytes,
    /// The client's address.
    pub peer: SocketAddr,
}

impl Request {
    /// The path, percent-encoded as received.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// One header's value as text, if present and visible ASCII.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The authority the client addressed: the `Host` header, or the target's authority (HTTP/2
    /// `:authority`, absolute-form).
    pub fn host(&self) -> Option<&str> {
        self.uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| self.header(header::HOST))
    }

    /// Whether this is a HEAD request (the reply keeps its headers and drops its content).
    pub fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }
}
