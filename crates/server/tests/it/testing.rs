//! `statuslab_server::testing`: the embeddable test server works from a plain `#[test]` and from
//! `#[tokio::test]`, takes options, and stops when dropped.

use statuslab_server::testing::{self, Builder};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `GET target` on its own connection with the standard library alone: the status line.
fn status_line(addr: SocketAddr, target: &str) -> String {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    write!(
        conn,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("read");
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn spawn_from_a_plain_test_and_stop_on_drop() {
    let server = testing::spawn();
    let addr = server.addr();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    assert_eq!(server.base_url(), format!("http://{addr}"));
    assert_eq!(server.url("/codes"), format!("http://{addr}/codes"));
    assert_eq!(status_line(addr, "/status/404"), "HTTP/1.1 404 Not Found");
    // The memory store: state works without a data directory.
    assert_eq!(
        status_line(addr, "/sequence/k/503,200"),
        "HTTP/1.1 503 Service Unavailable"
    );
    assert_eq!(status_line(addr, "/sequence/k/503,200"), "HTTP/1.1 200 OK");
    drop(server);
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener closed with the server"
    );
}

#[tokio::test]
async fn spawn_from_a_tokio_test_on_its_single_thread() {
    let server = testing::spawn();
    let addr = server.addr();
    // A blocking client on the runtime's only thread: the server, on its own thread, answers.
    let line = tokio::task::spawn_blocking(move || status_line(addr, "/status/503"))
        .await
        .expect("the client");
    assert_eq!(line, "HTTP/1.1 503 Service Unavailable");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let mut server = server;
    let result = server.stopped(Duration::from_secs(5)).await;
    assert!(matches!(result, Some(Ok(()))), "{result:?}");
}

#[test]
fn the_builder_takes_any_config_option() {
    let server = Builder::new()
        .workers(1)
        .config(|c| c.maintenance = true)
        .spawn();
    assert_eq!(
        status_line(server.addr(), "/status/200"),
        "HTTP/1.1 503 Service Unavailable"
    );
    assert_eq!(status_line(server.addr(), "/healthz"), "HTTP/1.1 200 OK");
}

#[test]
fn a_server_that_cannot_start_is_an_error_not_a_hang() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("an address");
    let err = Builder::new()
        .config(|c| c.listen = addr)
        .try_spawn()
        .expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
}
