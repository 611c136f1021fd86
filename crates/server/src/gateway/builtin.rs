//! The built-in faulty upstreams: `broken` answers invalid HTTP, `hang` accepts and never
//! answers, `refused` has nothing listening.
//!
//! `broken` and `hang` are in-process fake upstreams on an in-memory duplex stream: a task per
//! request plays the server's side, so they need no listening socket (nothing to leak across
//! runtimes, nothing another process could reach). The gateway's client reads them exactly as
//! it reads a TCP upstream. `refused` is a real connection attempt to loopback port 0, which no
//! process can listen on, so the refusal always comes from the kernel and never reaches a live
//! listener.

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// How `broken` misbehaves, chosen by the first path segment (`/gateway/broken/{kind}`).
pub(crate) const BROKEN: &[(&str, &str, &[u8])] = &[
    ("garbage", "bytes that are not HTTP", b"NOT HTTP\r\n\r\n"),
    (
        "status",
        "a status line without a numeric code",
        b"HTTP/1.1 abc Broken\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "code",
        "a status code outside 100-599",
        b"HTTP/1.1 999 Unknown\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "header",
        "a header line without a colon",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nno colon here\r\n\r\nok",
    ),
    (
        "length",
        "fewer content bytes than Content-Length promises",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ntruncated",
    ),
    (
        "chunk",
        "a malformed chunk size",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "framing",
        "both Content-Length and Transfer-Encoding",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "switch",
        "101 Switching Protocols nobody asked for",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    ),
    ("empty", "closing without any response", b""),
];

/// In-memory pipe capacity for a fake upstream.
const PIPE: usize = 64 * 1024;
/// Bytes of request head a fake upstream reads before it answers.
const HEAD_LIMIT: usize = 64 * 1024;

/// The bytes `broken` answers to a request for `target` (its first path segment picks the
/// kind; any other path gets `garbage`).
pub(crate) fn broken_answer(target: &str) -> &'static [u8] {
    let kind = target
        .trim_start_matches('/')
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    BROKEN
        .iter()
        .find(|(name, _, _)| *name == kind)
        .map_or(BROKEN[0].2, |(_, _, bytes)| bytes)
}

/// A connection to `broken`: it reads the request head, answers invalid HTTP and closes.
pub(crate) fn broken() -> DuplexStream {
    let (client, mut server) = tokio::io::duplex(PIPE);
    tokio::spawn(async move {
        let head = read_head(&mut server).await;
        let target = head
            .split(|&b| b == b' ')
            .nth(1)
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let _ = server.write_all(broken_answer(&target)).await;
        // Half-close: the gateway sees the end of the response, and may still finish
        // writing its request.
        let _ = server.shutdown().await;
        drain(&mut server).await;
    });
    client
}

/// A connection to `hang`: it reads everything it is sent and never answers. The task ends
/// when the gateway gives up and drops its end.
pub(crate) fn hang() -> DuplexStream {
    let (client, mut server) = tokio::io::duplex(PIPE);
    tokio::spawn(async move { drain(&mut server).await });
    client
}

/// The port `refused` connects to: port 0 cannot be listened on (binding it picks another
/// port), so a connection to it is refused by the kernel, whatever else runs on the machine.
pub(crate) const REFUSED_PORT: u16 = 0;

async fn read_head(io: &mut DuplexStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HEAD_LIMIT {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    head
}

async fn drain(io: &mut DuplexStream) {
    let mut sink = [0u8; 4096];
    while let Ok(n) = io.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_path() {
        assert_eq!(broken_answer("/"), b"NOT HTTP\r\n\r\n");
        assert_eq!(broken_answer("/nope/x"), b"NOT HTTP\r\n\r\n");
        assert!(broken_answer("/chunk?x=1").ends_with(b"zz\r\nhello\r\n0\r\n\r\n"));
        assert!(broken_answer("/empty").is_empty());
    }

    #[tokio::test]
    async fn every_kind_is_refused_by_the_client() {
        let limits = crate::wire::client::ClientLimits {
            head: 4096,
            headers: 32,
            body: 1024,
        };
        for (kind, _, _) in BROKEN {
            let req = format!("GET /{kind} HTTP/1.1\r\nHost: broken\r\n\r\n");
            let got = crate::wire::client::exchange(broken(), req.as_bytes(), false, limits).await;
            assert!(
                matches!(got, Err(crate::wire::client::Failure::Invalid(_))),
                "{kind}: {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn hang_never_answers() {
        let limits = crate::wire::client::ClientLimits {
            head: 4096,
            headers: 32,
            body: 1024,
        };
        let got = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            crate::wire::client::exchange(hang(), b"GET / HTTP/1.1\r\n\r\n", false, limits),
        )
        .await;
        assert!(got.is_err());
    }

    #[tokio::test]
    async fn refused_is_refused() {
        let e = tokio::net::TcpStream::connect(("127.0.0.1", REFUSED_PORT))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
