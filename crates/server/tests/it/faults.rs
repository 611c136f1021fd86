//! Connection faults on demand (`/fault/{kind}`, fault steps in sequences and weighted lists):
//! the exact bytes on a raw socket, and what real clients (curl, Python requests) make of them.

use crate::support::TestServer;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a raw client saw: the bytes before the end, and how the connection ended.
#[derive(Debug)]
struct Seen {
    bytes: Vec<u8>,
    /// `Ok(())` for a clean close (FIN), the error kind otherwise (`ConnectionReset`), or
    /// `TimedOut` when nothing ended it within the read limit.
    end: Result<(), std::io::ErrorKind>,
    /// When each read returned data, from the request's send.
    arrivals: Vec<Duration>,
    elapsed: Duration,
}

impl Seen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

async fn raw(server: &TestServer, target: &str, limit: Duration) -> Seen {
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let req = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n\r\n", server.host());
    tcp.write_all(req.as_bytes()).await.expect("send");
    let started = Instant::now();
    let mut bytes = Vec::new();
    let mut arrivals = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        match tokio::time::timeout(limit, tcp.read(&mut buf)).await {
            Err(_) => break Err(std::io::ErrorKind::TimedOut),
            Ok(Ok(0)) => break Ok(()),
            Ok(Ok(n)) => {
                bytes.extend_from_slice(&buf[..n]);
                arrivals.push(started.elapsed());
            }
            Ok(Err(e)) => break Err(e.kind()),
        }
    };
    Seen {
        bytes,
        end,
        arrivals,
        elapsed: started.elapsed(),
    }
}

fn head_and_body(bytes: &[u8]) -> (String, &[u8]) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    (
        String::from_utf8_lossy(&bytes[..end]).into_owned(),
        &bytes[end..],
    )
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn reset_is_a_tcp_reset_before_any_byte() {
    let server = TestServer::start().await;
    let seen = raw(&server, "/fault/reset", Duration::from_secs(5)).await;
    assert!(seen.bytes.is_empty(), "{}", seen.text());
    assert_eq!(seen.end, Err(std::io::ErrorKind::ConnectionReset));
}

#[tokio::test]
async fn empty_closes_without_a_byte() {
    let server = TestServer::start().await;
    let seen = raw(&server, "/fault/empty", Duration::from_secs(5)).await;
    assert!(seen.bytes.is_empty(), "{}", seen.text());
    assert_eq!(seen.end, Ok(()));
}

#[tokio::test]
async fn truncate_promises_more_than_it_sends() {
    let server = TestServer::start().await;
    let seen = raw(&server, "/fault/truncate", Duration::from_secs(5)).await;
    let (head, body) = head_and_body(&seen.bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let promised = content_length(&head);
    assert!(
        promised > 0 && body.len() < promised,
        "{} of {promised}",
        body.len()
    );
    assert_eq!(seen.end, Ok(()));
}

#[tokio::test]
async fn close_after_headers_sends_no_content() {
    let server = TestServer::start().await;
    let seen = raw(
        &server,
        "/fault/close-after-headers?code=503",
        Duration::from_secs(5),
    )
    .await;
    let (head, body) = head_and_body(&seen.bytes);
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(content_length(&head) > 0);
    assert!(body.is_empty());
    assert_eq!(seen.end, Ok(()));
}

#[tokio::test]
async fn malformed_chunk_has_an_invalid_chunk_size() {
    let server = TestServer::start().await;
    let seen = raw(&server, "/fault/malformed-chunk", Duration::from_secs(5)).await;
    let (head, body) = head_and_body(&seen.bytes);
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert_eq!(body, b"5\r\nhello\r\nzz\r\nnot a chunk\r\n");
    assert_eq!(seen.end, Ok(()));
}

#[tokio::test]
async fn garbage_is_not_http() {
    let server = TestServer::start().await;
    let seen = raw(&server, "/fault/garbage", Duration::from_secs(5)).await;
    assert!(seen.bytes.len() >= 64);
    assert!(!seen.bytes.starts_with(b"HTTP/"));
    assert_eq!(seen.end, Ok(()));
}

#[tokio::test]
async fn stall_answers_nothing_until_its_bound() {
    let server = TestServer::start().await;
    let quiet = raw(&server, "/fault/stall", Duration::from_millis(800)).await;
    assert!(quiet.bytes.is_empty());
    assert_eq!(quiet.end, Err(std::io::ErrorKind::TimedOut), "still held");
    let bounded = raw(
        &server,
        "/fault/stall?duration=300ms",
        Duration::from_secs(5),
    )
    .await;
    assert!(bounded.bytes.is_empty());
    assert_eq!(bounded.end, Ok(()), "closed after its duration");
}

#[tokio::test]
async fn drip_sends_the_content_in_pieces_over_its_duration() {
    let server = TestServer::start().await;
    let seen = raw(&server, "/fault/drip?duration=1s", Duration::from_secs(5)).await;
    let (head, body) = head_and_body(&seen.bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(
        body.len(),
        content_length(&head),
        "the whole content arrives"
    );
    assert!(seen.arrivals.len() >= 3, "in pieces: {:?}", seen.arrivals);
    assert!(
        seen.elapsed >= Duration::from_millis(700),
        "spread over the duration: {:?}",
        seen.elapsed
    );
}

#[tokio::test]
async fn slow_headers_trickle_the_head() {
    let server = TestServer::start().await;
    let seen = raw(
        &server,
        "/fault/slow-headers?duration=600ms",
        Duration::from_secs(5),
    )
    .await;
    let (head, body) = head_and_body(&seen.bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(body.len(), content_length(&head));
    assert!(seen.arrivals.len() >= 3, "{:?}", seen.arrivals);
}

#[tokio::test]
async fn latency_answers_after_a_delay_from_the_jitter_range() {
    let server = TestServer::start().await;
    let seen = raw(
        &server,
        "/fault/latency?jitter=300ms-400ms",
        Duration::from_secs(5),
    )
    .await;
    let (head, _) = head_and_body(&seen.bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        seen.arrivals[0] >= Duration::from_millis(300),
        "{:?}",
        seen.arrivals
    );
}

#[tokio::test]
async fn slow_close_answers_then_holds_the_connection() {
    let server = TestServer::start().await;
    let seen = raw(
        &server,
        "/fault/slow-close?duration=700ms",
        Duration::from_secs(5),
    )
    .await;
    let (head, body) = head_and_body(&seen.bytes);
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert_eq!(body.len(), content_length(&head));
    assert_eq!(seen.end, Ok(()));
    assert!(seen.elapsed >= seen.arrivals[0] + Duration::from_millis(500));
}

#[tokio::test]
async fn faults_are_steps_of_sequences_and_weighted_lists() {
    let server = TestServer::start().await;
    let path = "/sequence/fk/503,reset,200";
    let first = raw(&server, path, Duration::from_secs(5)).await;
    assert!(
        first.text().starts_with("HTTP/1.1 503 "),
        "{}",
        first.text()
    );
    let second = raw(&server, path, Duration::from_secs(5)).await;
    assert!(second.bytes.is_empty());
    assert_eq!(second.end, Err(std::io::ErrorKind::ConnectionReset));
    let third = raw(&server, path, Duration::from_secs(5)).await;
    assert!(third.text().starts_with("HTTP/1.1 200 "));
    let state = server.get("/sequences/fk", &[]).await.json();
    assert_eq!(state["codes"], serde_json::json!([503, "reset", 200]));
    assert_eq!(state["attempts"][1]["code"], "reset");
    let weighted = raw(&server, "/status/200:0,empty:1", Duration::from_secs(5)).await;
    assert!(weighted.bytes.is_empty());
    assert_eq!(weighted.end, Ok(()));
    assert_eq!(server.get("/fault/nope", &[]).await.status, 404);
    assert_eq!(server.get("/sequence/x/503,bogus", &[]).await.status, 400);
}

/// curl's documented exit codes for each broken answer.
#[tokio::test]
async fn curl_sees_each_fault_as_documented() {
    let server = TestServer::start().await;
    let cases = [
        ("reset", 56),
        ("empty", 52),
        ("truncate", 18),
        ("malformed-chunk", 56),
        ("close-after-headers", 18),
        ("stall", 28),
        ("drip?duration=300ms", 0),
        ("latency?jitter=100ms", 0),
    ];
    let mut wrong = Vec::new();
    for (kind, want) in cases {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--max-time", "2"])
            .arg(server.url(&format!("/fault/{kind}")))
            .kill_on_drop(true)
            .output()
            .await
            .expect("curl is installed (scripts/test-deps.sh)");
        let code = out.status.code();
        if code != Some(want) {
            wrong.push(format!(
                "{kind}: curl exited {code:?}, want {want}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Python requests: each fault surfaces as the exception its kind of breakage causes.
#[tokio::test]
async fn python_requests_sees_each_fault() {
    let server = TestServer::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/faults.py");
    let kinds = [
        "reset",
        "empty",
        "truncate",
        "malformed-chunk",
        "close-after-headers",
        "stall",
        "drip",
    ];
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(server.url(""))
        .args(kinds)
        .kill_on_drop(true)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "faults.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let want = serde_json::json!({
        "reset": "ConnectionError",
        "empty": "ConnectionError",
        "truncate": "ChunkedEncodingError",
        "malformed-chunk": "ChunkedEncodingError",
        "close-after-headers": "ChunkedEncodingError",
        "stall": "ReadTimeout",
    });
    for (kind, class) in want.as_object().expect("an object") {
        assert_eq!(&seen[kind], class, "{kind}: {seen}");
    }
    assert!(
        seen["drip"].as_str().unwrap_or("").starts_with("ok 200"),
        "{seen}"
    );
}

/// On HTTP/2 a fault breaks the stream, not the connection: `reset` is `RST_STREAM`, and the
/// next stream on the same connection is served.
#[tokio::test]
async fn h2_reset_breaks_only_its_stream() {
    let server = TestServer::start().await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (mut client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(conn);
    let get = |path: &str| {
        http::Request::get(format!("http://{}{path}", server.host()))
            .body(())
            .expect("a request")
    };
    let (broken, _) = client
        .send_request(get("/fault/reset"), true)
        .expect("send");
    let err = broken.await.expect_err("the stream is reset");
    assert_eq!(err.reason(), Some(h2::Reason::INTERNAL_ERROR), "{err}");
    let mut client = client.ready().await.expect("the connection lives on");
    let (fine, _) = client.send_request(get("/status/204"), true).expect("send");
    assert_eq!(fine.await.expect("an answer").status(), 204);
}
