//! 101 for real: a tokio-tungstenite client against `/websocket/echo` and `/status/101` —
//! text, binary, ping/pong, the close handshake, oversize messages (1009) and 426 refusals.

use crate::support::{READ_TIMEOUT, TestServer};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

async fn open(server: &TestServer, path: &str) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let url = format!("ws://{}{path}", server.host());
    let (ws, resp) = tokio::time::timeout(READ_TIMEOUT, tokio_tungstenite::client_async(url, tcp))
        .await
        .expect("handshake in time")
        .expect("the WebSocket handshake succeeds");
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// The next message, failing the test after `READ_TIMEOUT`.
async fn next(ws: &mut WebSocketStream<TcpStream>) -> Option<Message> {
    tokio::time::timeout(READ_TIMEOUT, ws.next())
        .await
        .expect("a message in time")
        .map(|m| m.expect("a valid message"))
}

#[tokio::test]
async fn echo_text_binary_ping_and_close() {
    let server = TestServer::start().await;
    for path in ["/websocket/echo", "/status/101"] {
        let mut ws = open(&server, path).await;
        ws.send(Message::text("hello, table")).await.expect("send");
        assert_eq!(
            next(&mut ws).await,
            Some(Message::text("hello, table")),
            "{path}"
        );
        let blob: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        ws.send(Message::binary(blob.clone())).await.expect("send");
        assert_eq!(
            next(&mut ws).await,
            Some(Message::binary(blob)),
            "{path}: a 64-bit length frame"
        );
        ws.send(Message::Ping(Bytes::from_static(b"are you there")))
            .await
            .expect("ping");
        assert_eq!(
            next(&mut ws).await,
            Some(Message::Pong(Bytes::from_static(b"are you there"))),
            "{path}: ping answered with pong"
        );
        // The close handshake: the server echoes our close frame, then the stream ends.
        ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .expect("close");
        match next(&mut ws).await {
            Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("{path}: want the server's close frame, got {other:?}"),
        }
        assert!(
            next(&mut ws).await.is_none(),
            "{path}: the stream ends after the close handshake"
        );
    }
}

#[tokio::test]
async fn oversize_message_closes_with_1009() {
    let server = TestServer::start_with(|c| c.max_ws_message = 1024).await;
    let mut ws = open(&server, "/websocket/echo").await;
    ws.send(Message::text("x".repeat(1000)))
        .await
        .expect("send");
    assert_eq!(
        next(&mut ws).await,
        Some(Message::text("x".repeat(1000))),
        "under the limit"
    );
    ws.send(Message::binary(vec![7u8; 4096]))
        .await
        .expect("send");
    match next(&mut ws).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(
                frame.code,
                CloseCode::Size,
                "1009 message too big: {frame:?}"
            )
        }
        other => panic!("want a 1009 close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn without_upgrade_426() {
    let server = TestServer::start().await;
    for path in ["/websocket/echo", "/status/101"] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, 426, "{path}");
        assert_eq!(r.reason, "Upgrade Required");
        assert_eq!(r.header("upgrade"), Some("websocket"));
        // A handshake with the wrong version says which one statuslab speaks.
        let r = server
            .get(
                path,
                &[
                    ("Connection", "Upgrade"),
                    ("Upgrade", "websocket"),
                    ("Sec-WebSocket-Version", "8"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ],
            )
            .await;
        assert_eq!(r.status, 426, "{path}");
        assert_eq!(r.header("sec-websocket-version"), Some("13"));
        // A malformed key is a bad request.
        let r = server
            .get(
                path,
                &[
                    ("Connection", "Upgrade"),
                    ("Upgrade", "websocket"),
                    ("Sec-WebSocket-Version", "13"),
                    ("Sec-WebSocket-Key", "short"),
                ],
            )
            .await;
        assert_eq!(r.status, 400, "{path}");
    }
}
