//! 101 for real: the WebSocket handshake (RFC 6455 §4.2); the echo itself runs in the wire
//! layer ([`crate::wire::websocket`]) once the 101 is written.

use crate::problem::Problem;
use crate::wire::reply::{Reply, Upgrade, known};
use crate::wire::request::Request;
use http::header::{self, HeaderValue};
use http::{Method, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Answers an upgrade request: 101 with `Sec-WebSocket-Accept` when it is a valid WebSocket
/// handshake; 426 with `Upgrade: websocket` when it asks for no upgrade or one statuslab
/// does not speak; 400 when the handshake is malformed.
pub(crate) fn handshake(req: &Request) -> Result<Reply, Problem> {
    let upgrade = req.header(header::UPGRADE).unwrap_or("");
    let wants_ws = upgrade
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"));
    if req.version == Version::HTTP_2 {
        return Err(Problem::new(426, "101 needs an HTTP/1.1 Upgrade: HTTP/2 forbids 101 (RFC 9113 §8.6); connect with HTTP/1.1 and Upgrade: websocket")
            .with_header(header::UPGRADE, HeaderValue::from_static("websocket")));
    }
    if !wants_ws {
        let detail = if upgrade.is_empty() {
            "101 Switching Protocols needs a real protocol switch: send Upgrade: websocket with a WebSocket handshake".to_owned()
        } else {
            format!(
                "statuslab does not speak {upgrade:?}; the only protocol it switches to is websocket"
            )
        };
        return Err(upgrade_required(detail));
    }
    let connection_upgrade = req
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if req.method != Method::GET || req.version != Version::HTTP_11 || !connection_upgrade {
        return Err(upgrade_required(
            "a WebSocket handshake is a GET over HTTP/1.1 with Connection: upgrade and Upgrade: websocket",
        ));
    }
    if req.header(header::SEC_WEBSOCKET_VERSION) != Some("13") {
        return Err(upgrade_required(
            "unsupported Sec-WebSocket-Version: statuslab speaks version 13",
        )
        .with_header(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        ));
    }
    let key = req.header(header::SEC_WEBSOCKET_KEY).unwrap_or("").trim();
    use base64::Engine as _;
    let valid_key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|k| k.len() == 16);
    if !valid_key {
        return Err(Problem::new(
            400,
            "Sec-WebSocket-Key must be 16 random bytes in base64",
        ));
    }
    let accept = derive_accept_key(key.as_bytes());
    let mut reply = Reply::new(known(101));
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
    Ok(reply)
}

fn upgrade_required(detail: impl Into<std::borrow::Cow<'static, str>>) -> Problem {
    Problem::new(426, detail)
        .with_header(header::UPGRADE, HeaderValue::from_static("websocket"))
        .with_header(header::CONNECTION, HeaderValue::from_static("upgrade"))
}
