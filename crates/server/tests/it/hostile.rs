//! Regression tests for the hostile review's findings: one focused test per finding, each
//! stating what the server must do. Every test is bounded (`within`) so a hang fails in
//! seconds instead of stalling the suite.
//!
//! The finding about a client that pipelines without ever reading (it needs a
//! `Config.send_timeout`) lives in `hostile_pending.rs`, which is not compiled until that field
//! exists.

use crate::corpus::{CANARY, End, Outcome, SMUGGLED, SMUGGLED_CODE, Segmentation, esc, send};
use crate::support::{TestServer, check, ensure, request};
use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// No test here may run longer than this.
const TEST_LIMIT: Duration = Duration::from_secs(14);
/// How long one exchange may take before it counts as a hang.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(5);

/// Runs a test body, failing it if it takes longer than `TEST_LIMIT`.
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: the test did not finish within {TEST_LIMIT:?}"))
}

/// Sends `bytes` in one write on a new connection and reads until the close or `limit`.
async fn whole(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Outcome {
    send(addr, Arc::new(bytes.to_vec()), Segmentation::Whole, limit).await
}

/// The head of a chunked POST to `/status/200`.
const CHUNKED_POST: &[u8] =
    b"POST /status/200 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Exactly one response, a 4xx, then the close.
fn refused_4xx(o: &Outcome) -> bool {
    matches!(o.statuses.as_slice(), [code] if (400..500).contains(code))
        && o.closed()
        && o.garbage.is_none()
}

/// A fresh connection is still served (the server did not fall over).
async fn still_serves(server: &TestServer) {
    let r = server.get("/status/204", &[]).await;
    assert_eq!(r.status, 204, "the server serves a new connection");
}

// ---- (a), (b): chunk sizes near 2^64 --------------------------------------------------------

/// (a) A 16-byte chunk, then the size `ffffffffffffffff`: adding it to the 16 bytes read so
/// far overflows. The answer is a 4xx (413 or 400) and the close, never a dropped connection
/// (a panicking connection task), and the server serves the next connection.
#[tokio::test]
async fn chunk_size_of_u64_max_after_a_chunk_gets_4xx_not_a_panic() {
    within("(a)", async {
        let server = TestServer::start().await;
        let body = b"10\r\n0123456789abcdef\r\nffffffffffffffff\r\n";
        let o = whole(server.addr, &cat(&[CHUNKED_POST, body]), EXCHANGE_LIMIT).await;
        assert!(
            matches!(o.statuses.as_slice(), [413] | [400]) && o.closed(),
            "want 413 or 400 and the close; got {} (no response at all means the connection task died)",
            o.show()
        );
        still_serves(&server).await;
    })
    .await;
}

/// (b) With `max_body` = 1024, a 16-byte chunk and then a size that wraps to 0 when added to
/// it (`fffffffffffffff0`), followed by 2 KiB more: refused at once (413 or 400), not read
/// past `--max-body` until the body timeout (10 s here; the answer must come within 3 s).
#[tokio::test]
async fn chunk_size_near_2_pow_64_is_refused_at_once_under_max_body() {
    within("(b)", async {
        let server = TestServer::start_with(|cfg| {
            cfg.max_body = 1024;
            cfg.body_timeout = Duration::from_secs(10);
        })
        .await;
        let bytes = cat(&[
            CHUNKED_POST,
            b"10\r\n0123456789abcdef\r\nfffffffffffffff0\r\n",
            &[b'a'; 2048],
        ]);
        let o = whole(server.addr, &bytes, Duration::from_secs(3)).await;
        assert!(
            matches!(o.statuses.as_slice(), [413] | [400]) && o.closed(),
            "want 413 or 400 and the close within 3 s; got {} (nothing and closed: the connection task died; still open: the size was believed)",
            o.show()
        );
        still_serves(&server).await;
    })
    .await;
}

// ---- (c), (d): lenient chunk-size lines and trailer terminators -----------------------------

/// (c) A chunk-size line with no size (`\r\n`, ` \r\n`, `;\r\n`, `;x\r\n`) is malformed: 400
/// and the close. Read as size 0, the next CRLF ends the trailers and the request after it
/// (`GET /status/288`) runs.
#[tokio::test]
async fn chunk_size_line_without_digits_gets_400_and_nothing_after_it_runs() {
    within("(c)", async {
        let server = TestServer::start().await;
        let lines: [&[u8]; 4] = [b"\r\n", b" \r\n", b";\r\n", b";x\r\n"];
        // Each case is followed by the canary (which closes), and the four run at once.
        let sendings = lines.map(|line| {
            let bytes = cat(&[CHUNKED_POST, line, b"\r\n", SMUGGLED, CANARY]);
            let addr = server.addr;
            tokio::spawn(async move { (esc(line), whole(addr, &bytes, EXCHANGE_LIMIT).await) })
        });
        let mut outcomes = Vec::new();
        for s in sendings {
            outcomes.push(s.await.expect("a sending"));
        }
        check(&outcomes, |(line, o)| {
            ensure(!o.statuses.contains(&SMUGGLED_CODE), || {
                format!(
                    "size line {line}: the smuggled request was answered: {}",
                    o.show()
                )
            })?;
            ensure(o.statuses == [400] && o.closed(), || {
                format!("size line {line}: want 400 and the close; got {}", o.show())
            })
        });
    })
    .await;
}

/// (d) A trailer section ended by bare LFs (`0\r\nX: a\n\n`) followed by a pipelined request:
/// 400 and the close. The request is neither swallowed as trailer lines (a decoder that
/// skips to the next CRLF) nor executed.
#[tokio::test]
async fn trailer_ended_by_bare_lf_gets_400_and_the_next_request_is_not_swallowed() {
    within("(d)", async {
        let server = TestServer::start_with(|cfg| {
            cfg.idle_timeout = Duration::from_secs(2);
        })
        .await;
        let bytes = cat(&[CHUNKED_POST, b"0\r\nX: a\n\n", SMUGGLED]);
        let o = whole(server.addr, &bytes, EXCHANGE_LIMIT).await;
        assert!(
            !o.statuses.contains(&SMUGGLED_CODE),
            "the pipelined request was executed: {}",
            o.show()
        );
        assert!(
            o.statuses == [400] && o.closed(),
            "want 400 and the close; got {} ([200] alone: the pipelined request was swallowed as trailer lines)",
            o.show()
        );
    })
    .await;
}

// ---- (e), (f): trailer and chunk-line limits ------------------------------------------------

/// (e) A trailer section of 200 lines of 60 bytes (12 KB, each line small): the limit is on
/// the section, not on each line, so this gets a 4xx.
#[tokio::test]
async fn trailer_section_of_12_kb_in_small_lines_gets_4xx() {
    within("(e)", async {
        let server = TestServer::start().await;
        let mut trailer = Vec::new();
        for i in 0..200 {
            let mut line = format!("X-T{i:04}: ").into_bytes();
            line.resize(58, b'v');
            trailer.extend_from_slice(&line);
            trailer.extend_from_slice(b"\r\n");
        }
        trailer.extend_from_slice(b"\r\n");
        assert_eq!(trailer.len(), 200 * 60 + 2);
        let bytes = cat(&[CHUNKED_POST, b"5\r\nhello\r\n0\r\n", &trailer, CANARY]);
        let o = whole(server.addr, &bytes, EXCHANGE_LIMIT).await;
        assert!(
            refused_4xx(&o),
            "want a 4xx and the close for a 12 KB trailer section; got {}",
            o.show()
        );
    })
    .await;
}

/// (f) A chunk-size line carrying 5,000 bytes of extensions gets the same answer whether it
/// arrives in one write or in 100-byte pieces.
#[tokio::test]
async fn long_chunk_extension_gets_the_same_answer_whole_or_in_pieces() {
    within("(f)", async {
        let server = TestServer::start().await;
        let mut line = b"5;".to_vec();
        line.resize(5002, b'e');
        let bytes = Arc::new(cat(&[
            CHUNKED_POST,
            &line,
            b"\r\nhello\r\n0\r\n\r\n",
            CANARY,
        ]));
        let one = send(
            server.addr,
            Arc::clone(&bytes),
            Segmentation::Whole,
            EXCHANGE_LIMIT,
        )
        .await;
        let paced = Segmentation::Paced {
            size: 100,
            pause: Duration::from_millis(2),
        };
        let pieces = send(server.addr, bytes, paced, Duration::from_secs(8)).await;
        assert_eq!(
            one.key(),
            pieces.key(),
            "the answer depends on the segmentation: whole {}, in 100-byte pieces {}",
            one.show(),
            pieces.show()
        );
        assert!(
            one.closed() && one.garbage.is_none(),
            "whole: {}",
            one.show()
        );
    })
    .await;
}

// ---- (g), (i): long targets and heads ---------------------------------------------------------

/// (g) A 70,000-byte request target gets 414 (the target is too long), even though the head
/// is also past the 64 KiB `--max-head-bytes` default.
#[tokio::test]
async fn target_of_70_000_bytes_gets_414() {
    within("(g)", async {
        let server = TestServer::start().await;
        let mut target = b"/status/200?pad=".to_vec();
        target.resize(70_000, b'a');
        let bytes = cat(&[b"GET ", &target, b" HTTP/1.1\r\nHost: x\r\n\r\n"]);
        let o = whole(server.addr, &bytes, EXCHANGE_LIMIT).await;
        assert!(
            o.statuses.first() == Some(&414),
            "want 414 for a 70,000-byte target; got {}",
            o.show()
        );
    })
    .await;
}

/// (i) A head of more than 64 KiB sent one byte per write is answered (431, the head is too
/// large) and the connection closed; only correctness is asserted, not timing, within the
/// test's bound.
#[tokio::test]
async fn head_of_64_kib_sent_byte_by_byte_is_answered() {
    within("(i)", async {
        let server = TestServer::start_with(|cfg| {
            cfg.header_timeout = Duration::from_secs(12);
        })
        .await;
        let mut bytes = b"GET /status/200 HTTP/1.1\r\nHost: x\r\n".to_vec();
        let mut i = 0;
        while bytes.len() <= 64 * 1024 {
            let mut line = format!("X-Pad-{i:02}: ").into_bytes();
            line.resize(1022, b'p');
            bytes.extend_from_slice(&line);
            bytes.extend_from_slice(b"\r\n");
            i += 1;
        }
        bytes.extend_from_slice(b"\r\n");
        let o = send(
            server.addr,
            Arc::new(bytes),
            Segmentation::ByteByByte,
            Duration::from_secs(13),
        )
        .await;
        assert!(
            o.statuses == [431] && o.closed(),
            "want 431 and the close for a head over 64 KiB sent byte by byte; got {} (408: the head was not read in time)",
            o.show()
        );
    })
    .await;
}

// ---- (h): framing and Host values that must be refused --------------------------------------

/// (h) `Transfer-Encoding: \xffgzip` plus `Transfer-Encoding: chunked` gets 400: the coding
/// that is not text is not silently dropped (which leaves `chunked` alone).
#[tokio::test]
async fn non_ascii_transfer_coding_next_to_chunked_gets_400() {
    within("(h) TE", async {
        let server = TestServer::start().await;
        let bytes = cat(&[
            b"POST /status/200 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \xffgzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"0\r\n\r\n",
            SMUGGLED,
            CANARY,
        ]);
        let o = whole(server.addr, &bytes, EXCHANGE_LIMIT).await;
        assert!(
            o.statuses == [400] && o.closed(),
            "want 400 and the close; got {}",
            o.show()
        );
    })
    .await;
}

/// (h) Host values that are no `uri-host [":" port]` get 400: a list, a space, userinfo, a
/// path.
#[tokio::test]
async fn host_values_that_are_not_a_host_get_400() {
    within("(h) Host", async {
        let server = TestServer::start().await;
        let mut outcomes = Vec::new();
        for host in ["x, y", "x y", "u@x", "x/y"] {
            let bytes = cat(&[
                format!("GET /status/200 HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
                CANARY,
            ]);
            outcomes.push((host, whole(server.addr, &bytes, EXCHANGE_LIMIT).await));
        }
        check(&outcomes, |(host, o)| {
            ensure(o.statuses.first() == Some(&400), || {
                format!("Host: {host}: want 400; got {}", o.show())
            })
        });
    })
    .await;
}

// ---- (j), (k): methods and refusing large uploads --------------------------------------------

/// (j) CONNECT is a method statuslab does not implement: 501, as the README promises.
#[tokio::test]
async fn connect_gets_501() {
    within("(j)", async {
        let server = TestServer::start().await;
        let r = server
            .exchange(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
            .await;
        assert_eq!(r.status, 501, "CONNECT:\n{}", r.head);
    })
    .await;
}

/// (k) An upload over `--max-body` (`Content-Length: 2000000`) sent together with ~100 KB of
/// its content: the client reads a complete 413, and the server then drains what the client
/// is still sending for a while (linger close, RFC 9112 §9.6) instead of closing with unread
/// content, which resets the connection: a client still sending gets `ECONNRESET`/`EPIPE`,
/// and on many stacks loses the 413 it had not read yet.
#[tokio::test]
async fn refused_large_upload_gets_a_complete_413_then_a_linger_close() {
    within("(k)", async {
        let server = TestServer::start().await;
        let mut tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        let bytes = cat(&[
            b"PUT /status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
            &vec![b'u'; 100 * 1024],
        ]);
        tcp.write_all(&bytes).await.expect("the first write");
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        let end = loop {
            match tokio::time::timeout(EXCHANGE_LIMIT, tcp.read(&mut chunk)).await {
                Ok(Ok(0)) => break End::Closed,
                Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
                Ok(Err(_)) => break End::Reset,
                Err(_) => break End::Open,
            }
        };
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 413 ") && end != End::Open,
            "want a complete 413 and the server's half-close; got {end:?} after {text:?}"
        );
        let head_end = text.find("\r\n\r\n").expect("a complete head") + 4;
        let length: usize = text[..head_end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().expect("a length"))
            })
            .expect("a Content-Length on the 413");
        assert_eq!(got.len(), head_end + length, "one complete 413: {text:?}");
        // The client goes on sending the content it declared, as clients do. A server that
        // lingers reads and discards it for a while; one that closed with unread content
        // reset the connection, and these writes fail.
        let mut sent = 0usize;
        let mut failed = None;
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match tcp.write_all(&vec![b'u'; 64 * 1024]).await {
                Ok(()) => sent += 64 * 1024,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        assert!(
            failed.is_none(),
            "the connection was reset right after the 413 (closed with unread content, no linger close): writing the rest of the upload failed after {sent} more bytes: {failed:?}"
        );
    })
    .await;
}

// ---- (m), (n): HTTP/2 ---------------------------------------------------------------------------

/// (m) An HTTP/2 prior-knowledge client that sends the preface and SETTINGS and then nothing
/// is closed after `idle_timeout` (1 s here; the close must come within 6 s).
#[tokio::test]
async fn idle_h2_connection_is_closed_after_idle_timeout() {
    within("(m)", async {
        let server = TestServer::start_with(|cfg| {
            cfg.idle_timeout = Duration::from_secs(1);
        })
        .await;
        let mut tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("preface");
        // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
        tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
            .await
            .expect("settings");
        let started = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(6), tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(_)) => {
                    // SETTINGS, its ACK, perhaps a GOAWAY: read on until the close.
                    if started.elapsed() > Duration::from_secs(6) {
                        break false;
                    }
                }
                Err(_) => break false,
            }
        };
        assert!(
            closed,
            "an idle h2 connection was still open {:?} after its last frame (idle_timeout = 1 s)",
            started.elapsed()
        );
    })
    .await;
}

/// An h2c client connection.
async fn h2_connect(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Sends a GET with `headers` over h2; the final status, or the stream's error.
async fn h2_get(
    client: &mut h2::client::SendRequest<Bytes>,
    uri: &str,
    headers: &[(String, String)],
) -> Result<u16, String> {
    let mut req = http::Request::builder().method("GET").uri(uri);
    for (n, v) in headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let req = req.body(()).expect("a request");
    let ready = client
        .clone()
        .ready()
        .await
        .map_err(|e| format!("not ready: {e}"))?;
    *client = ready;
    let (fut, _) = client
        .send_request(req, true)
        .map_err(|e| format!("send: {e}"))?;
    let resp = tokio::time::timeout(EXCHANGE_LIMIT, fut)
        .await
        .map_err(|_| format!("no response within {EXCHANGE_LIMIT:?}"))?
        .map_err(|e| format!("stream error: {e}"))?;
    Ok(resp.status().as_u16())
}

/// (n) Over HTTP/2 as over HTTP/1.1: `Expect: foo` gets 417, and more header fields than
/// `max_headers` get 431.
#[tokio::test]
async fn h2_expectation_and_header_count_are_checked_as_in_http11() {
    within("(n)", async {
        let server = TestServer::start_with(|cfg| {
            cfg.max_headers = 10;
        })
        .await;
        // The HTTP/1.1 answers, for reference.
        let h1 = server
            .exchange(&request(
                "GET",
                "/status/200",
                "x",
                &[("Expect", "foo")],
                b"",
            ))
            .await;
        assert_eq!(h1.status, 417, "HTTP/1.1 Expect: foo");
        let many: Vec<(String, String)> = (0..20)
            .map(|i| (format!("x-h-{i}"), "1".to_owned()))
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let h1 = server
            .exchange(&request("GET", "/status/200", "x", &refs, b""))
            .await;
        assert_eq!(h1.status, 431, "HTTP/1.1 with 21 fields, max_headers 10");

        let mut client = h2_connect(server.addr).await;
        let url = server.url("/status/200");
        let expect = h2_get(
            &mut client,
            &url,
            &[("expect".to_owned(), "foo".to_owned())],
        )
        .await;
        let mut client = h2_connect(server.addr).await;
        let counted = h2_get(&mut client, &url, &many).await;
        let results = [("Expect: foo", expect, 417), ("20 fields", counted, 431)];
        check(&results, |(what, got, want)| {
            ensure(got.as_ref() == Ok(want), || {
                format!("h2 {what}: want {want}, got {got:?}")
            })
        });
    })
    .await;
}

// ---- (o), (p), (q), (r): routes ---------------------------------------------------------------

/// (o) `/random/100-599` picks a code in 100–599; the range is not refused as too many codes.
#[tokio::test]
async fn random_over_the_whole_range_picks_a_code() {
    within("(o)", async {
        let server = TestServer::start().await;
        let mut got = Vec::new();
        for _ in 0..10 {
            let r = server.get("/random/100-599", &[]).await;
            // A refusal is a problem+json with a detail; a picked 400 is not.
            let detail = if r.header("content-type") == Some("application/problem+json") {
                r.json()["detail"].as_str().map(str::to_owned)
            } else {
                None
            };
            got.push((r.status, detail));
        }
        check(&got, |(status, detail)| {
            // A picked 101 is answered 426 (a 101 needs a real protocol switch), with a detail
            // that says so: the faithful answer, not a refusal of the list.
            let picked_101 = *status == 426
                && detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with("101 Switching Protocols needs"));
            ensure(
                (100..=599).contains(status) && (detail.is_none() || picked_101),
                || format!("/random/100-599 answered {status}: {detail:?}"),
            )
        });
    })
    .await;
}

/// (p) Path parameters of `/basic-auth/{user}/{passwd}` are percent-decoded: `a%20b` is the
/// user `a b`.
#[tokio::test]
async fn basic_auth_path_is_percent_decoded() {
    within("(p)", async {
        let server = TestServer::start().await;
        // base64("a b:pw")
        let r = server
            .get(
                "/basic-auth/a%20b/pw",
                &[("Authorization", "Basic YSBiOnB3")],
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "{}\n{}",
            r.head,
            String::from_utf8_lossy(&r.body)
        );
    })
    .await;
}

/// (q) Through the gateway, HEAD gets the GET's `Content-Length`; and `/gateway/self/`
/// forwards the upstream's root instead of answering 404.
#[tokio::test]
async fn gateway_head_length_and_root_path() {
    within("(q)", async {
        // The gateway's `self` upstream is the port the server really bound (port 0 here).
        let server = TestServer::start().await;
        let host = server.host();
        let get = server.get("/gateway/self/status/200", &[]).await;
        assert_eq!(get.status, 200, "GET through the gateway:\n{}", get.head);
        let head = server
            .exchange(&request(
                "HEAD",
                "/gateway/self/status/200",
                &host,
                &[],
                b"",
            ))
            .await;
        let root = server.get("/gateway/self/", &[]).await;
        let direct = server.get("/", &[]).await;
        let results = [
            (
                "HEAD Content-Length",
                head.header("content-length").map(str::to_owned),
                get.header("content-length").map(str::to_owned),
            ),
            (
                "/gateway/self/ status",
                Some(root.status.to_string()),
                Some(direct.status.to_string()),
            ),
        ];
        check(&results, |(what, got, want)| {
            ensure(got == want, || {
                format!("{what}: got {got:?}, want {want:?}")
            })
        });
    })
    .await;
}

/// (r) A stored resource of an active type (`text/html`) is served with
/// `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`, so statuslab
/// never serves a script on its own origin.
#[tokio::test]
async fn stored_html_is_sandboxed() {
    within("(r)", async {
        let server = TestServer::start().await;
        let host = server.host();
        let put = server
            .exchange(&request(
                "PUT",
                "/resources/x",
                &host,
                &[("Content-Type", "text/html")],
                b"<script>alert(document.cookie)</script>",
            ))
            .await;
        assert!(
            put.status == 201 || put.status == 204,
            "PUT:\n{}",
            put.head
        );
        let r = server.get("/resources/x", &[]).await;
        assert_eq!(r.status, 200, "GET:\n{}", r.head);
        let nosniff = r.header("x-content-type-options");
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(
            nosniff.is_some_and(|v| v.eq_ignore_ascii_case("nosniff"))
                && csp.split(';').any(|d| d.trim().eq_ignore_ascii_case("sandbox")
                    || d.trim().to_ascii_lowercase().starts_with("sandbox ")),
            "want X-Content-Type-Options: nosniff and Content-Security-Policy: sandbox on stored HTML:\n{}",
            r.head
        );
    })
    .await;
}

// ---- connections and memory ------------------------------------------------------------------

/// A WebSocket peer that goes silent gets a ping after `idle_timeout`, and the close (1001,
/// going away) when it stays silent: a dead peer never holds its connection. The peer here is
/// a raw socket that completes the handshake and then never sends a byte (no pong).
#[tokio::test]
async fn silent_websocket_peer_is_pinged_then_closed() {
    within("websocket idle", async {
        let server = TestServer::start_with(|cfg| {
            cfg.idle_timeout = Duration::from_millis(500);
        })
        .await;
        let mut tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        let handshake = format!(
            "GET /websocket/echo HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.host()
        );
        tcp.write_all(handshake.as_bytes()).await.expect("handshake");
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => panic!("the silent peer was not closed: {}", esc(&got)),
            }
        }
        let end = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a 101 head")
            + 4;
        assert!(got.starts_with(b"HTTP/1.1 101"), "{}", esc(&got));
        let frames = &got[end..];
        // A ping (FIN + opcode 9, empty), then a close (FIN + opcode 8) with code 1001.
        assert!(frames.starts_with(&[0x89, 0x00]), "a ping first: {}", esc(frames));
        let close = &frames[2..];
        assert_eq!(close.first(), Some(&0x88), "then a close: {}", esc(frames));
        assert_eq!(&close[2..4], &1001u16.to_be_bytes(), "going away: {}", esc(frames));
    })
    .await;
}

/// Request content buffered at once over all connections is bounded by
/// `max_buffered_bodies`: past it, 503 with `Retry-After`, however large `--max-body` is.
#[tokio::test]
async fn buffered_bodies_over_the_budget_get_503() {
    within("body budget", async {
        let server = TestServer::start_with(|cfg| {
            cfg.max_body = 1024 * 1024;
            cfg.max_buffered_bodies = 64 * 1024;
        })
        .await;
        let host = server.host();
        let body = vec![b'x'; 100 * 1024];
        let r = server
            .exchange(&request("POST", "/status/200", &host, &[], &body))
            .await;
        assert_eq!(r.status, 503, "{}", r.head);
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap_or("")
                .contains("--max-buffered-bodies")
        );
        // Within the budget, the same route takes content.
        let small = vec![b'x'; 10 * 1024];
        let r = server
            .exchange(&request("POST", "/status/200", &host, &[], &small))
            .await;
        assert_eq!(r.status, 200, "{}", r.head);
    })
    .await;
}

/// Proxied requests meet the same admission as direct ones: in maintenance mode an
/// absolute-form request through the proxy gets the 503 too.
#[tokio::test]
async fn proxied_requests_meet_maintenance() {
    within("proxy admission", async {
        let server = TestServer::start_with(|cfg| {
            cfg.proxy = true;
            cfg.maintenance = true;
        })
        .await;
        let target = format!("http://{}/status/200", server.host());
        let r = server
            .exchange(&request("GET", &target, &server.host(), &[], b""))
            .await;
        assert_eq!(r.status, 503, "{}", r.head);
        assert!(r.header("retry-after").is_some());
    })
    .await;
}
