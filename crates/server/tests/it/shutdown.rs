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
    // 100 Continue) before the body is sent and shutdown is triggered.
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
    in_flight.send(b"x").await;
    server.shutdown();
    refused(server.addr).await;
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
    body.send_data(bytes::Bytes::from_static(b"x"), true)
        .expect("send body");
    server.shutdown();
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
    let mut server =
        TestServer::start_with(|c| c.shutdown_grace = Duration::from_millis(200)).await;
    let mut slow: Conn = server.connect().await;
    slow.send(&request(
        "GET",
        "/status/200?sleep=30s",
        &server.host(),
        &[],
        b"",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.shutdown();
    // run returns after the grace period even though a request is still sleeping.
    server
        .stopped(Duration::from_secs(5))
        .await
        .expect("run returns Ok");
}
