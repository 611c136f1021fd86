//! The WebSocket echo that a 101 switches a connection to (RFC 6455, on tungstenite).

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Echoes every text and binary message until the peer closes; pings are answered with pongs
/// and the close handshake completed by tungstenite. Messages over `max_message` close the
/// connection with 1009 (message too big).
///
/// A connection silent for `idle` gets a ping; silent for another `idle` after it, it is closed
/// (1001, going away), so a dead peer never holds a connection slot.
pub(crate) async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    max_message: usize,
    idle: std::time::Duration,
) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let mut pinged = false;
    loop {
        let msg = match tokio::time::timeout(idle, ws.next()).await {
            Ok(Some(msg)) => msg,
            Ok(None) => return,
            Err(_) if pinged => {
                let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away,
                    reason: "no answer to a ping".into(),
                };
                let _ = tokio::time::timeout(idle, ws.close(Some(frame))).await;
                return;
            }
            Err(_) => {
                pinged = true;
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        pinged = false;
        let msg = match msg {
            Ok(m) => m,
            Err(tokio_tungstenite::tungstenite::Error::Capacity(e)) => {
                tracing::debug!(error = %e, "websocket message over the limit");
                let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Size,
                    reason: "message too big".into(),
                };
                let _ = ws.close(Some(frame)).await;
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket ended");
                return;
            }
        };
        let reply = match msg {
            Message::Text(_) | Message::Binary(_) => msg,
            // tungstenite queues the pong and the close reply itself; flushing sends them.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                if ws.flush().await.is_err() {
                    return;
                }
                continue;
            }
            Message::Close(_) => {
                let _ = ws.flush().await;
                continue;
            }
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}
