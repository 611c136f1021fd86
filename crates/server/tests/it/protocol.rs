//! HTTP/1.x protocol behaviour the codec owns: versions, Host, Expect, content framing,
//! pipelining, persistence, limits and timeouts.

use crate::support::{TestServer, request};
use std::time::Duration;

#[tokio::test]
async fn unsupported_versions_get_505_and_close() {
    let server = TestServer::start().await;
    for version in ["HTTP/1.2", "HTTP/2.0", "HTTP/3.0", "HTTP/0.9"] {
        let mut conn = server.connect().await;
        conn.send(format!("GET /status/200 {version}\r\nHost: x\r\n\r\n").as_bytes())
            .await;
        let r = conn.read_exchange(false).await;
        assert_eq!(r.status, 505, "{version}");
        assert_eq!(r.reason, "HTTP Version Not Supported");
        assert!(r.json()["detail"].as_str().unwrap_or("").contains(version));
        assert_eq!(r.header("connection"), Some("close"));
        conn.expect_eof().await;
    }
    // A request line that is not HTTP at all is malformed, not a version problem.
    let mut conn = server.connect().await;
    conn.send(b"GET /status/200 FTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(conn.read_exchange(false).await.status, 400);
}

#[tokio::test]
async fn host_is_required_once_in_http11() {
    let server = TestServer::start().await;
    let r = server.exchange(b"GET /status/200 HTTP/1.1\r\n\r\n").await;
    assert_eq!(r.status, 400, "HTTP/1.1 without Host");
    assert!(r.json()["detail"].as_str().unwrap_or("").contains("Host"));
    let r = server
        .exchange(b"GET /status/200 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        .await;
    assert_eq!(r.status, 400, "two Host fields");
    let r = server.exchange(b"GET /status/200 HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200, "HTTP/1.0 needs no Host");
}

#[tokio::test]
async fn unknown_expectation_gets_417() {
    let server = TestServer::start().await;
    let r = server
        .exchange(&request(
            "POST",
            "/status/200",
            &server.host(),
            &[("Expect", "foo")],
            b"x",
        ))
        .await;
    assert_eq!(r.status, 417);
    assert_eq!(r.reason, "Expectation Failed");
    assert!(r.interim.is_empty());
    assert!(r.json()["detail"].as_str().unwrap_or("").contains("foo"));
}

#[tokio::test]
async fn expect_continue_gets_100_before_the_body_is_sent() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let body = b"0123456789".repeat(100);
    let head = format!(
        "PUT /status/201 HTTP/1.1\r\nHost: {host}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send(head.as_bytes()).await;
    // Nothing of the body has been sent: the server must speak first.
    let interim = conn.read_response(false).await;
    assert_eq!(interim.head, "HTTP/1.1 100 Continue");
    conn.send(&body).await;
    let r = conn.read_exchange(false).await;
    assert_eq!(r.status, 201);
    assert!(r.interim.is_empty(), "only one 100");
    // The body was consumed exactly: the connection is still in step.
    conn.send(&request("GET", "/status/204", &host, &[], b""))
        .await;
    assert_eq!(conn.read_exchange(false).await.status, 204);
}

#[tokio::test]
async fn expect_continue_over_max_body_gets_413_and_never_100() {
    let server = TestServer::start_with(|c| c.max_body = 1000).await;
    let mut conn = server.connect().await;
    conn.send(
        format!(
            "POST /status/200 HTTP/1.1\r\nHost: {}\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n",
            server.host()
        )
        .as_bytes(),
    )
    .await;
    let r = conn.read_response(false).await;
    assert_eq!(r.status, 413, "no 100 first:\n{}", r.head);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("--max-body")
    );
    assert_eq!(r.header("connection"), Some("close"));
    conn.expect_eof().await;

    // A refusal decided from the head alone (405 here) is not preceded by 100 either.
    let mut conn = server.connect().await;
    conn.send(
        format!(
            "POST /codes HTTP/1.1\r\nHost: {}\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
            server.host()
        )
        .as_bytes(),
    )
    .await;
    let r = conn.read_response(false).await;
    assert_eq!(r.status, 405, "no 100 before a refusal:\n{}", r.head);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    // Without Expect, an over-long Content-Length is refused too.
    let r = server
        .exchange(&request(
            "POST",
            "/status/200",
            &server.host(),
            &[],
            &[b'x'; 1001],
        ))
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn expect_continue_from_http10_is_ignored() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.send(b"POST /status/200 HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
        .await;
    let r = conn.read_exchange(false).await;
    assert!(r.interim.is_empty(), "no 1xx to HTTP/1.0");
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn chunked_uploads_are_accepted() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let req = format!(
        "POST /status/201 HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    );
    conn.send(req.as_bytes()).await;
    assert_eq!(conn.read_exchange(false).await.status, 201);
    // The whole chunked body, trailers included, was consumed.
    conn.send(&request("GET", "/status/202", &host, &[], b""))
        .await;
    assert_eq!(conn.read_exchange(false).await.status, 202);

    let r = server
        .exchange(
            format!("POST /status/201 HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 400, "malformed chunk size");
    let r = server
        .exchange(
            format!(
                "POST /status/201 HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(
        r.status, 400,
        "Transfer-Encoding with Content-Length is ambiguous"
    );
}

#[tokio::test]
async fn chunked_upload_over_max_body_gets_413() {
    let server = TestServer::start_with(|c| c.max_body = 16).await;
    let r = server
        .exchange(
            format!(
                "POST /status/200 HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{}\r\n0\r\n\r\n",
                server.host(),
                "x".repeat(32)
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let codes = [201u16, 404, 100, 503, 204, 302, 200];
    let mut batch = Vec::new();
    // The first one is delayed: the others must still wait their turn.
    batch.extend(request("GET", "/status/201?sleep=100ms", &host, &[], b""));
    for code in &codes[1..] {
        batch.extend(request("GET", &format!("/status/{code}"), &host, &[], b""));
    }
    conn.send(&batch).await;
    for code in codes {
        let r = conn.read_exchange(false).await;
        if code == 100 {
            assert_eq!(r.interim.len(), 1);
            assert_eq!(r.status, 200);
        } else {
            assert_eq!(r.status, code, "responses out of order");
        }
    }
    assert!(conn.pending().is_empty());
}

#[tokio::test]
async fn connection_close_and_keep_alive() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    for _ in 0..3 {
        conn.send(&request("GET", "/status/200", &host, &[], b""))
            .await;
        let r = conn.read_exchange(false).await;
        assert_eq!(r.status, 200);
        assert!(!r.has("connection"), "HTTP/1.1 persists by default");
    }
    conn.send(&request(
        "GET",
        "/status/200",
        &host,
        &[("Connection", "close")],
        b"",
    ))
    .await;
    let r = conn.read_exchange(false).await;
    assert_eq!(r.header("connection"), Some("close"));
    conn.expect_eof().await;
}

#[tokio::test]
async fn slow_client_gets_408_then_eof() {
    let server = TestServer::start_with(|c| c.header_timeout = Duration::from_millis(300)).await;
    let mut conn = server.connect().await;
    conn.send(
        format!(
            "GET /status/200 HTTP/1.1\r\nHost: {}\r\nX-Half",
            server.host()
        )
        .as_bytes(),
    )
    .await;
    // Nothing more is sent: after --header-timeout the server answers 408 and closes.
    let r = conn.read_exchange(false).await;
    assert_eq!(r.status, 408);
    assert_eq!(r.reason, "Request Timeout");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("--header-timeout")
    );
    conn.expect_eof().await;
}

#[tokio::test]
async fn slow_body_gets_408_then_eof() {
    let server = TestServer::start_with(|c| c.body_timeout = Duration::from_millis(300)).await;
    let mut conn = server.connect().await;
    conn.send(&request(
        "POST",
        "/status/200",
        &server.host(),
        &[("Content-Length", "10")],
        b"",
    ))
    .await;
    conn.send(b"abc").await;
    let r = conn.read_exchange(false).await;
    assert_eq!(r.status, 408);
    assert_eq!(r.header("connection"), Some("close"));
    conn.expect_eof().await;
}

#[tokio::test]
async fn idle_connection_closes_silently() {
    let server = TestServer::start_with(|c| c.idle_timeout = Duration::from_millis(300)).await;
    let mut conn = server.connect().await;
    conn.send(&request("GET", "/status/200", &server.host(), &[], b""))
        .await;
    assert_eq!(conn.read_exchange(false).await.status, 200);
    // Between requests nothing was asked: closing needs no 408.
    conn.expect_eof().await;
}

#[tokio::test]
async fn limits_on_uri_headers_and_connections() {
    let server = TestServer::start_with(|c| {
        c.max_uri = 100;
        c.max_headers = 10;
        c.max_head_bytes = 2048;
    })
    .await;
    let host = server.host();
    let long = format!("/status/200?pad={}", "x".repeat(100));
    let r = server
        .exchange(&request("GET", &long, &host, &[], b""))
        .await;
    assert_eq!(r.status, 414);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("--max-uri")
    );

    let many: Vec<(String, String)> = (0..12)
        .map(|i| (format!("X-H{i}"), "v".to_owned()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let r = server
        .exchange(&request("GET", "/status/200", &host, &many, b""))
        .await;
    assert_eq!(r.status, 431, "more than --max-headers");

    let big = "y".repeat(3000);
    let r = server
        .exchange(&request(
            "GET",
            "/status/200",
            &host,
            &[("X-Big", &big)],
            b"",
        ))
        .await;
    assert_eq!(r.status, 431, "a head over --max-head-bytes");

    // One connection at a time: the second gets 503 with Retry-After and is closed. A server
    // of its own, so that no connection above can still hold the one slot (the server frees
    // it only once it has read the client's close).
    drop(server);
    let server = TestServer::start_with(|c| c.max_connections = 1).await;
    let host = server.host();
    let mut first = server.connect().await;
    first
        .send(&request("GET", "/status/200", &host, &[], b""))
        .await;
    assert_eq!(first.read_exchange(false).await.status, 200);
    let mut second = server.connect().await;
    let r = second.read_exchange(false).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("--max-connections")
    );
    second.expect_eof().await;
    drop(first);
}

#[tokio::test]
async fn malformed_heads_get_400() {
    let server = TestServer::start().await;
    for raw in [
        &b"GET /status/200 HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n"[..],
        b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x01\x02\x03 / HTTP/1.1\r\n\r\n",
        b"GET /status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    ] {
        let mut conn = server.connect().await;
        conn.send(raw).await;
        let r = conn.read_exchange(false).await;
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(raw));
        conn.expect_eof().await;
    }
}

#[tokio::test]
async fn upload_to_status_100_gets_one_100() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.send(
        format!(
            "PUT /status/100?then=201 HTTP/1.1\r\nHost: {}\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            server.host()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(conn.read_response(false).await.status, 100);
    conn.send(b"abc").await;
    let r = conn.read_exchange(false).await;
    assert!(
        r.interim.is_empty(),
        "a second 100 Continue: {:?}",
        r.interim
    );
    assert_eq!(r.status, 201);
}
