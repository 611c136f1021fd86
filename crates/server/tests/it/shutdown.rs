//! Graceful shutdown: stop accepting, let in-flight requests finish, close idle connections.

use crate::support::{Conn, TestServer, request};
use std::io::ErrorKind;
use std::time::Duration;
use tokio::net::TcpStream;

/// Waits until connecting to `addr` is refused (the listener is gone), failing after 5 s.
async fn refused(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
        let Ok(attempt) = attempt else {
            // The SYN went unanswered (a full backlog that nobody accepts from).
            panic!("connecting neither succeeded nor was refused: the listener is still open");
        };
        match attempt {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
            Err(e) if e.kind() != ErrorKind::ConnectionReset => {
                panic!("connect failed other than refused: {e}")
            }
            // Accepted by the kernel's backlog just before the listener closed (or reset as it
            // closed): try again.
            _ => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "new connections are still accepted"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn in_flight_request_completes_and_new_connections_are_refused() {
    let mut server = TestServer::start().await;
    let host = server.host();
    // An idle keep-alive connection, served once.
    let mut idle = server.connect().await;
    idle.send(&request("GET", "/status/200", &host, &[], b""))
        .await;
    assert_eq!(idle.read_exchange(false).await.status, 200);
    // A delayed request that is provably in flight: the server has read its head (it said
    // 100 Continue) when shutdown is triggered, and cannot have answered it yet: its content
    // is sent only once the listener is gone.
    let mut in_flight = server.connect().await;
    in_flight
        .send(
            format!(
                "POST /status/202?sleep=500ms HTTP/1.1\r\nHost: {host}\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(in_flight.read_response(false).await.status, 100);
    server.shutdown();
    refused(server.addr).await;
    in_flight.send(b"x").await;
    // The idle connection is closed without an answer.
    idle.expect_eof().await;
    // The request in flight still gets its full answer, and the connection then closes.
    let r = in_flight.read_exchange(false).await;
    assert_eq!(r.status, 202);
    assert_eq!(
        r.header("connection"),
        Some("close"),
        "answered after shutdown began: no reuse of a closing server"
    );
    in_flight.expect_eof().await;
    server
        .stopped(Duration::from_secs(5))
        .await
        .expect("run returns Ok");
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_h2_streams() {
    let mut server = TestServer::start().await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let driver = tokio::spawn(conn);
    let mut client = client.ready().await.expect("ready");
    let req = http::Request::put(server.url("/status/418?sleep=500ms"))
        .header("expect", "100-continue")
        .body(())
        .expect("a request");
    let (mut fut, mut body) = client.send_request(req, false).expect("send");
    // The server has accepted the stream once it says 100; then shut down.
    let info = tokio::time::timeout(
        Duration::from_secs(10),
        std::future::poll_fn(|cx| fut.poll_informational(cx)),
    )
    .await
    .expect("a 100 in time")
    .expect("an informational response")
    .expect("not an error");
    assert_eq!(info.status().as_u16(), 100);
    // Shut down first, then send the content: the stream cannot have been answered before.
    server.shutdown();
    refused(server.addr).await;
    body.send_data(bytes::Bytes::from_static(b"x"), true)
        .expect("send body");
    let resp = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("in time")
        .expect("the stream in flight is answered");
    assert_eq!(resp.status().as_u16(), 418);
    // The server then ends the connection (GOAWAY) and stops.
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the h2 connection ends")
        .expect("no panic")
        .expect("a graceful end");
    server
        .stopped(Duration::from_secs(5))
        .await
        .expect("run returns Ok");
}

#[tokio::test]
async fn grace_period_bounds_the_wait() {
    let grace = Duration::from_millis(200);
    let mut server = TestServer::start_with(|c| c.shutdown_grace = grace).await;
    let mut slow: Conn = server.connect().await;
    // Provably in flight: the server said 100 Continue (it read the head and admitted the
    // request) and then got the content of a request that sleeps 30 s.
    slow.send(&request(
        "POST",
        "/status/200?sleep=30s",
        &server.host(),
        &[("Expect", "100-continue"), ("Content-Length", "1")],
        b"",
    ))
    .await;
    let r = slow.read_response(false).await;
    assert_eq!(r.status, 100, "{}", r.head);
    slow.send(b"x").await;
    let began = std::time::Instant::now();
    server.shutdown();
    // run returns after the grace period even though the request is still sleeping: not
    // before the grace (it waited for the request), and long before the 30 s sleep ends.
    server
        .stopped(Duration::from_secs(5))
        .await
        .expect("run returns Ok");
    let waited = began.elapsed();
    assert!(
        waited >= grace,
        "run returned {waited:?} after shutdown, before the {grace:?} grace period"
    );
    // The request never got an answer: it was still in flight when the server gave up on it.
    slow.expect_eof().await;
}
