//! 101 for real: the WebSocket handshake (RFC 6455 §4.2) and an echo over the switched connection.

use crate::app::{App, status};
use crate::reply::{Reply, Upgrade};
use crate::request::Request;
use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderValue};
use http::{Method, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Answers an upgrade request: 101 with `Sec-WebSocket-Accept` when it is a valid WebSocket
/// handshake; 426 with `Upgrade: websocket` when it asks for no upgrade or one statuslab
/// does not speak; 400 when the handshake is malformed.
pub(crate) fn handshake(app: &App, req: &Request) -> Reply {
    let upgrade = req.header(header::UPGRADE).unwrap_or("");
    let wants_ws = upgrade
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"));
    if req.version == Version::HTTP_2 {
        let mut r = app.error(req, 426, "101 needs an HTTP/1.1 Upgrade: HTTP/2 forbids 101 (RFC 9113 §8.6); connect with HTTP/1.1 and Upgrade: websocket");
        r.headers
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return r;
    }
    if !wants_ws {
        let detail = if upgrade.is_empty() {
            "101 Switching Protocols needs a real protocol switch: send Upgrade: websocket with a WebSocket handshake".to_owned()
        } else {
            format!(
                "statuslab does not speak {upgrade:?}; the only protocol it switches to is websocket"
            )
        };
        return upgrade_required(app, req, &detail);
    }
    let connection_upgrade = req
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if req.method != Method::GET || req.version != Version::HTTP_11 || !connection_upgrade {
        return upgrade_required(
            app,
            req,
            "a WebSocket handshake is a GET over HTTP/1.1 with Connection: upgrade and Upgrade: websocket",
        );
    }
    if req.header(header::SEC_WEBSOCKET_VERSION) != Some("13") {
        let mut r = upgrade_required(
            app,
            req,
            "unsupported Sec-WebSocket-Version: statuslab speaks version 13",
        );
        r.headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let key = req.header(header::SEC_WEBSOCKET_KEY).unwrap_or("").trim();
    use base64::Engine as _;
    let valid_key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|k| k.len() == 16);
    if !valid_key {
        return app.error(
            req,
            400,
            "Sec-WebSocket-Key must be 16 random bytes in base64",
        );
    }
    let accept = derive_accept_key(key.as_bytes());
    let mut reply = Reply::new(status(101));
    reply
        .headers
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    reply
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    reply.headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a header value"),
    );
    reply.upgrade = Some(Upgrade::WebSocketEcho);
    reply
}

fn upgrade_required(app: &App, req: &Request, detail: &str) -> Reply {
    let mut r = app.error(req, 426, detail);
    r.headers
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    r.headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    r
}

/// Echoes every text and binary message until the peer closes; pings are answered with pongs
/// and the close handshake completed by tungstenite. Messages over `max_message` close the
/// connection with 1009 (message too big).
pub(crate) async fn echo<S: AsyncRead + AsyncWrite + Unpin>(io: S, max_message: usize) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    while let Some(msg) = ws.next().await {
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
