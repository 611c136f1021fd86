//! The gateway and the proxy over real sockets: an in-process statuslab, raw HTTP/1.1 from the
//! test, statuslab itself or a scripted TCP server as the upstream, and the system curl.

use super::*;
use crate::config::{AccessLog, Config, StoreChoice};
use base64::Engine as _;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---- units -------------------------------------------------------------------------------

fn request(headers: &[(&str, &str)]) -> Request {
    let mut map = HeaderMap::new();
    for (n, v) in headers {
        map.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    Request {
        method: Method::GET,
        uri: "/gateway/x/y".parse().unwrap(),
        version: Version::HTTP_11,
        headers: map,
        body: bytes::Bytes::new(),
        peer: "192.0.2.7:5555".parse().unwrap(),
    }
}

#[test]
fn hop_by_hop_fields_are_stripped() {
    let req = request(&[
        ("host", "gw.example"),
        ("connection", "keep-alive, X-Secret"),
        ("x-secret", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-authorization", "Basic dTpw"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "x"),
        ("upgrade", "websocket"),
        ("content-length", "0"),
        ("expect", "100-continue"),
        ("authorization", "Bearer end-to-end"),
        ("x-forwarded-for", "10.0.0.1"),
        ("via", "1.1 edge"),
        ("accept-encoding", "gzip"),
    ]);
    let h = outbound_headers(&req, false);
    for gone in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        "expect",
    ] {
        assert!(!h.contains_key(gone), "{gone} was forwarded");
    }
    assert_eq!(h["authorization"], "Bearer end-to-end");
    assert_eq!(h["accept-encoding"], "gzip");
    assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
    let via: Vec<_> = h.get_all("via").iter().collect();
    assert_eq!(via, ["1.1 edge", "1.1 statuslab"]);
    assert_eq!(
        h["forwarded"],
        "for=192.0.2.7;proto=http;host=\"gw.example\""
    );
    let h = outbound_headers(&req, true);
    assert!(!h.contains_key("accept-encoding"));
}

#[test]
fn request_bytes_frame_the_content() {
    let mut h = HeaderMap::new();
    h.insert("x-a", HeaderValue::from_static("1"));
    let out = request_bytes(&Method::POST, "/p?q=1", "up:81", &h, b"abc");
    assert_eq!(
        &out[..],
        b"POST /p?q=1 HTTP/1.1\r\nHost: up:81\r\nX-A: 1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    );
    let out = request_bytes(&Method::GET, "/", "up", &HeaderMap::new(), b"");
    assert_eq!(
        &out[..],
        b"GET / HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn query_parameters() {
    let max = Duration::from_secs(30);
    let p = params(Some("a=1&timeout=500ms&b=%20x&transform=minify"), max).unwrap();
    assert_eq!(p.timeout, Some(Duration::from_millis(500)));
    assert_eq!(p.transforms, vec![Transform::Minify]);
    assert_eq!(p.rest, "a=1&b=%20x");
    assert_eq!(
        params(Some("timeout=250"), max).unwrap().timeout,
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        params(Some("timeout=2s"), max).unwrap().timeout,
        Some(Duration::from_secs(2))
    );
    assert!(
        params(Some("timeout=31s"), max)
            .unwrap_err()
            .contains("--gateway-max-wait")
    );
    assert!(params(Some("timeout=0"), max).is_err());
    assert!(params(Some("timeout=soon"), max).is_err());
    assert!(params(Some("timeout=1s&timeout=2s"), max).is_err());
    assert!(params(Some("transform=rot13"), max).is_err());
    assert_eq!(params(None, max).unwrap().rest, "");
}

#[test]
fn dot_segments() {
    assert!(has_dot_segment("a/../b"));
    assert!(has_dot_segment(".."));
    assert!(has_dot_segment("a/%2e%2E/b"));
    assert!(has_dot_segment("a/..%2fb"));
    assert!(has_dot_segment("./x"));
    assert!(!has_dot_segment("a/..b/c.d/...x"));
    assert!(!has_dot_segment(""));
}

#[test]
fn loops_are_counted_in_via() {
    let req = request(&[("via", "1.1 statuslab, 1.0 other"), ("via", "2 Statuslab")]);
    assert_eq!(hops(&req), 2);
}

// ---- over the wire -----------------------------------------------------------------------

/// A loopback address that was free a moment ago. The gateway's `self` needs statuslab's own
/// port, which a server bound to port 0 does not have in its configuration.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn config() -> Config {
    Config {
        listen: free_addr(),
        store: StoreChoice::Memory,
        access_log: AccessLog::Off,
        proxy: true,
        proxy_user: Some(("u".to_owned(), "p".to_owned())),
        gateway_max_wait: Duration::from_secs(5),
        ..Config::default()
    }
}

async fn start(cfg: Config) -> SocketAddr {
    let server = crate::Server::bind(cfg).await.expect("bind");
    let addr = server.local_addr();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

fn upstream(name: &str, url: String) -> Upstream {
    Upstream {
        name: name.to_owned(),
        url: url.parse().unwrap(),
    }
}

#[derive(Debug)]
struct Answer {
    code: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn detail(&self) -> String {
        self.json()["detail"].as_str().unwrap_or("").to_owned()
    }
}

/// Sends raw bytes (the request says `Connection: close`) and reads the whole answer.
async fn exchange(addr: SocketAddr, raw: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got))
        .await
        .expect("an answer in time")
        .unwrap();
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut slots);
    let n = match r.parse(&got).unwrap() {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => panic!("partial: {:?}", String::from_utf8_lossy(&got)),
    };
    Answer {
        code: r.code.unwrap(),
        headers: r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: got[n..].to_vec(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

async fn proxied(proxy: SocketAddr, url: &str, auth: Option<&str>) -> Answer {
    let host = url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("x");
    let auth = auth.map_or(String::new(), |a| {
        format!("Proxy-Authorization: {}\r\n", basic(a))
    });
    exchange(
        proxy,
        &format!("GET {url} HTTP/1.1\r\nHost: {host}\r\n{auth}Proxy-Connection: keep-alive\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// A one-shot upstream: records the request head it receives and answers `answer`.
async fn scripted(answer: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the gateway closed early");
            head.extend_from_slice(&chunk[..n]);
        }
        s.write_all(answer).await.unwrap();
        s.shutdown().await.unwrap();
        String::from_utf8(head).unwrap()
    });
    (addr, task)
}

#[tokio::test]
async fn self_passes_the_code_through() {
    let addr = start(config()).await;
    let a = get(addr, "/gateway/self/status/418").await;
    assert_eq!(a.code, 418);
    assert_eq!(a.header("via"), Some("1.1 statuslab"));
    assert!(
        a.body.starts_with(b"418 "),
        "{:?}",
        String::from_utf8_lossy(&a.body)
    );
    let a = get(addr, "/gateway/self/status/503?retry_after=7").await;
    assert_eq!((a.code, a.header("retry-after")), (503, Some("7")));
    // A passed-through 407 keeps its challenge.
    let a = get(addr, "/gateway/self/status/407").await;
    assert_eq!(a.code, 407);
    assert!(a.header("proxy-authenticate").is_some());
    // The bare name forwards to the upstream's root.
    assert_eq!(get(addr, "/gateway/self").await.code, 200);
}

#[tokio::test]
async fn configured_upstream_end_to_end() {
    let (up, seen) = scripted(
        b"HTTP/1.1 201 Created\r\nConnection: close, X-Hop\r\nX-Hop: h\r\nX-End: e\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let mut cfg = config();
    cfg.upstreams = vec![upstream("api", format!("http://{up}/base/"))];
    let addr = start(cfg).await;
    let a = exchange(
        addr,
        &format!(
            "GET /gateway/api/x/y?a=1&timeout=3s&b=2 HTTP/1.1\r\nHost: {addr}\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nTE: trailers\r\nX-Keep: k\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(a.code, 201);
    assert_eq!(a.body, b"hello");
    assert_eq!(a.header("content-length"), Some("5"));
    assert_eq!(a.header("x-end"), Some("e"));
    assert_eq!(a.header("x-hop"), None);
    assert_eq!(a.header("keep-alive"), None);
    assert_eq!(a.header("transfer-encoding"), None);
    assert_eq!(a.header("via"), Some("1.1 statuslab"));
    let head = seen.await.unwrap();
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], "GET /base/x/y?a=1&b=2 HTTP/1.1");
    assert!(lines.contains(&format!("Host: {up}").as_str()), "{head}");
    assert!(lines.contains(&"X-Keep: k"), "{head}");
    assert!(lines.contains(&"Via: 1.1 statuslab"), "{head}");
    assert!(
        lines.contains(&"X-Forwarded-For: 10.0.0.1, 127.0.0.1"),
        "{head}"
    );
    assert!(
        lines.contains(&format!("Forwarded: for=127.0.0.1;proto=http;host=\"{addr}\"").as_str()),
        "{head}"
    );
    assert!(lines.contains(&"Connection: close"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("x-secret") && !lower.contains("\r\nte:"),
        "{head}"
    );
}

#[tokio::test]
async fn broken_upstreams_give_502() {
    let addr = start(config()).await;
    for (path, says) in [
        ("/gateway/broken", "\"NOT HTTP\""),
        ("/gateway/broken/status", "malformed status code"),
        ("/gateway/broken/code", "outside 100-599"),
        ("/gateway/broken/length", "9 of the 100"),
        ("/gateway/broken/chunk", "chunk-size"),
        ("/gateway/broken/framing", "ambiguous"),
        ("/gateway/broken/switch", "101"),
        ("/gateway/broken/empty", "without sending a response"),
    ] {
        let a = get(addr, path).await;
        assert_eq!(a.code, 502, "{path}");
        assert_eq!(a.header("content-type"), Some("application/problem+json"));
        let detail = a.detail();
        assert!(
            detail.contains("upstream broken sent an invalid response"),
            "{detail}"
        );
        assert!(detail.contains(says), "{path}: {detail}");
    }
}

#[tokio::test]
async fn refused_gives_502() {
    let addr = start(config()).await;
    let a = get(addr, "/gateway/refused/x").await;
    assert_eq!(a.code, 502);
    assert!(
        a.detail().contains("could not connect to upstream refused"),
        "{}",
        a.detail()
    );
}

#[tokio::test]
async fn hang_with_a_timeout_parameter_gives_504_quickly() {
    let addr = start(config()).await;
    let started = Instant::now();
    let a = get(addr, "/gateway/hang/x?timeout=200ms").await;
    assert_eq!(a.code, 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(a.detail().contains("timeout=200ms"), "{}", a.detail());
}

#[tokio::test]
async fn hang_without_a_timeout_waits_the_maximum() {
    let mut cfg = config();
    cfg.gateway_max_wait = Duration::from_millis(300);
    let addr = start(cfg).await;
    let started = Instant::now();
    let a = get(addr, "/gateway/hang").await;
    assert_eq!(a.code, 504);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(a.detail().contains("--gateway-max-wait"), "{}", a.detail());
    // A timeout over the maximum is the client's mistake.
    let a = get(addr, "/gateway/hang?timeout=5s").await;
    assert_eq!(a.code, 400);
    assert!(a.detail().contains("exceeds"), "{}", a.detail());
}

#[tokio::test]
async fn unknown_upstream_is_404_listing_the_names() {
    let mut cfg = config();
    cfg.upstreams = vec![upstream("api", "http://127.0.0.1:9".to_owned())];
    let addr = start(cfg).await;
    let a = get(addr, "/gateway/nope/x").await;
    assert_eq!(a.code, 404);
    assert!(
        a.detail().contains("api, broken, refused, hang, self"),
        "{}",
        a.detail()
    );
    assert_eq!(get(addr, "/gateway/self/a/../b").await.code, 400);
}

#[tokio::test]
async fn transforms_give_203() {
    let addr = start(config()).await;
    let plain = get(addr, "/openapi.json").await;
    assert!(plain.body.contains(&b'\n'));
    let a = get(addr, "/gateway/self/openapi.json?transform=minify").await;
    assert_eq!(a.code, 203);
    assert_eq!(a.header("content-type"), plain.header("content-type"));
    assert!(!a.body.contains(&b'\n') && a.body.len() < plain.body.len());
    assert_eq!(a.json(), plain.json());

    let a = get(
        addr,
        "/gateway/self/codes/418?transform=fields:message,code",
    )
    .await;
    assert_eq!(a.code, 203);
    let teapot = get(addr, "/codes/418").await.json();
    assert_eq!(
        String::from_utf8(a.body.clone()).unwrap(),
        serde_json::json!({ "code": 418, "message": teapot["message"] }).to_string()
    );

    // Only a 200 is transformed; other codes pass through as they are.
    let a = get(addr, "/gateway/self/status/404?transform=minify").await;
    assert_eq!(a.code, 404);
    // Content that cannot be transformed is the upstream's fault.
    let a = get(
        addr,
        "/gateway/self/status/200?format=text&transform=minify",
    )
    .await;
    assert_eq!(a.code, 502);
    assert!(a.detail().contains("transform=minify"), "{}", a.detail());
    let a = get(
        addr,
        "/gateway/self/status/200?format=text&transform=uppercase",
    )
    .await;
    assert_eq!(a.code, 203);
    assert!(
        a.body.starts_with(b"200 OK"),
        "{:?}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(get(addr, "/gateway/self/x?transform=rot13").await.code, 400);
}

#[tokio::test]
async fn forwarding_loops_end_in_508() {
    let addr = start(config()).await;
    let path = format!("{}/status/200", "/gateway/self".repeat(MAX_HOPS + 1));
    assert_eq!(get(addr, &path).await.code, 508);
    let path = format!("{}/status/200", "/gateway/self".repeat(MAX_HOPS));
    assert_eq!(get(addr, &path).await.code, 200);
}

#[tokio::test]
async fn proxy_demands_credentials() {
    let addr = start(config()).await;
    let url = format!("http://{addr}/status/200");
    let a = proxied(addr, &url, None).await;
    assert_eq!(a.code, 407);
    assert_eq!(
        a.header("proxy-authenticate"),
        Some("Basic realm=\"statuslab proxy\", charset=\"UTF-8\"")
    );
    assert!(a.detail().contains("--proxy-user"));
    let a = proxied(addr, &url, Some("u:wrong")).await;
    assert_eq!(a.code, 407);
    assert!(a.header("proxy-authenticate").is_some());
    let a = proxied(addr, &url, Some("u:p")).await;
    assert_eq!(a.code, 200);
    assert_eq!(a.header("via"), Some("1.1 statuslab"));
    // Max-Forwards: 0 makes the proxy answer OPTIONS itself.
    let a = exchange(
        addr,
        &format!(
            "OPTIONS http://self/ HTTP/1.1\r\nHost: self\r\nMax-Forwards: 0\r\nProxy-Authorization: {}\r\nConnection: close\r\n\r\n",
            basic("u:p")
        ),
    )
    .await;
    assert_eq!(a.code, 204);
    assert!(a.header("allow").is_some_and(|v| v.contains("PATCH")));
    // Built-in upstreams by name.
    assert_eq!(proxied(addr, "http://broken/", Some("u:p")).await.code, 502);
    assert_eq!(
        proxied(addr, "http://self/status/418", Some("u:p"))
            .await
            .code,
        418
    );
}

#[tokio::test]
async fn proxy_is_never_open() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = elsewhere.local_addr().unwrap();
    let mut cfg = config();
    cfg.proxy_user = None;
    let addr = start(cfg).await;
    for url in [
        "http://example.com/".to_owned(),
        format!("http://{other}/"),
        "http://localhost:22/".to_owned(),
    ] {
        let a = proxied(addr, &url, None).await;
        assert_eq!(a.code, 403, "{url}");
        assert!(a.detail().contains("nothing was sent"), "{}", a.detail());
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), elsewhere.accept()).await;
    assert!(
        nothing.is_err(),
        "the proxy connected to a host it may not reach"
    );
    // Without --proxy-user the proxy needs no credentials, but is still closed.
    assert_eq!(
        proxied(addr, &format!("http://{addr}/status/204"), None)
            .await
            .code,
        204
    );
}

#[tokio::test]
async fn proxy_forwards_to_configured_upstreams_in_origin_form() {
    let (up, seen) = scripted(b"HTTP/1.0 200 OK\r\nX-Up: 1\r\n\r\nuntil close").await;
    let mut cfg = config();
    cfg.upstreams = vec![upstream("api", format!("http://{up}"))];
    let addr = start(cfg).await;
    let a = proxied(addr, &format!("http://{up}/p?q=1"), Some("u:p")).await;
    assert_eq!((a.code, &a.body[..]), (200, &b"until close"[..]));
    assert_eq!(a.header("via"), Some("1.0 statuslab"));
    assert_eq!(a.header("x-up"), Some("1"));
    let head = seen.await.unwrap();
    assert!(head.starts_with("GET /p?q=1 HTTP/1.1\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("proxy-authorization") && !lower.contains("proxy-connection"),
        "{head}"
    );
}

#[tokio::test]
async fn curl_through_the_proxy() {
    let addr = start(config()).await;
    let run = move |auth: bool| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new("curl");
            cmd.args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ]);
            cmd.args(["-x", &format!("http://{addr}")]);
            if auth {
                cmd.args(["--proxy-user", "u:p"]);
            }
            cmd.arg(format!("http://{addr}/status/200"));
            let out = cmd
                .output()
                .expect("the system curl is needed for this test");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
    };
    assert_eq!(run(true).await.unwrap(), "200");
    assert_eq!(run(false).await.unwrap(), "407");
}
