//! Codes that arise at the server's edge, seen by real clients and raw sockets: 429 from the
//! rate limiters (with `Retry-After` and the RateLimit headers), 503 from maintenance mode and
//! load shedding, 401/403 from credentials, 408 for a thousand stalled clients, HTTP/2 and
//! HTTP/1.1 over TLS, and the retry behaviour of curl (`--retry`), Python requests (urllib3
//! `Retry`) and the Python `websockets` client, each started by the test.
//!
//! curl and python3 with `requests`, `urllib3` and `websockets` are required test dependencies
//! (scripts/test-deps.sh installs them): without them these tests fail, never skip.
//! (The raw-socket 408/417/505/missing-Host/501 cases live in protocol.rs and raw.rs.)

use crate::support::{Conn, Exchange, Response, TestServer, request};
use serde_json::Value;
use statuslab_server::{Scope, TlsSource, Token};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Longest a client process may run before the test fails instead of hanging.
const PROCESS_LIMIT: Duration = Duration::from_secs(60);

/// A sequence key no other test (or earlier run against a shared store) uses.
pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a client program asynchronously (the in-process server keeps serving), failing the
/// test if it cannot start or runs past `PROCESS_LIMIT`.
pub(crate) async fn run(program: &str, args: &[&str]) -> Output {
    tokio::time::timeout(
        PROCESS_LIMIT,
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} {args:?} did not finish within {PROCESS_LIMIT:?}"))
    .unwrap_or_else(|e| {
        panic!(
            "cannot run {program} ({e}); it is a required test dependency: run scripts/test-deps.sh"
        )
    })
}

pub(crate) fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The system curl with `--max-time`; fails the test unless curl exits with 0.
/// Returns (stdout, stderr).
async fn curl(args: &[&str]) -> (String, String) {
    let mut all = vec!["--max-time", "20"];
    all.extend_from_slice(args);
    let out = run("curl", &all).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "curl {args:?}: {}",
        describe(&out)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `tests/clients/{script}` with python3 and parses the JSON it prints. A missing
/// module (exit 3) fails with a pointer to scripts/test-deps.sh.
pub(crate) async fn python(script: &str, args: &[&str]) -> Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "clients", script]
        .iter()
        .collect();
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    let mut all = vec![path.as_str()];
    all.extend_from_slice(args);
    let out = run("python3", &all).await;
    assert_ne!(
        out.status.code(),
        Some(3),
        "{script}: a Python module is missing; install the test dependencies with scripts/test-deps.sh\n{}",
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{script}: {}", describe(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {}", describe(&out)))
}

/// `GET /sequences/{key}`: the server's record of a sequence's attempts.
async fn attempts(server: &TestServer, key: &str) -> Vec<Value> {
    let r = server.get(&format!("/sequences/{key}"), &[]).await;
    assert_eq!(r.status, 200, "/sequences/{key}:\n{}", r.head);
    r.json()["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no attempts in {}", r.text()))
        .clone()
}

/// The sequence `{first},200` was tried twice by `method`: the first answer was `first` with
/// `Retry-After: {secs}`, the retry came after those seconds (so the server judged it
/// honoured) and got 200.
async fn retried_after_retry_after(
    server: &TestServer,
    key: &str,
    method: &str,
    first: u64,
    secs: u64,
) {
    let a = attempts(server, key).await;
    let show = || serde_json::to_string_pretty(&a).unwrap_or_default();
    assert_eq!(a.len(), 2, "{key}: one attempt and one retry:\n{}", show());
    assert_eq!(a[0]["code"], first, "{key}:\n{}", show());
    assert_eq!(
        a[0]["retry_after"],
        secs,
        "{key}: Retry-After {secs} s:\n{}",
        show()
    );
    assert_eq!(a[1]["code"], 200, "{key}:\n{}", show());
    for at in &a {
        assert_eq!(
            at["method"],
            method,
            "{key}: the retry repeats the method:\n{}",
            show()
        );
    }
    assert_eq!(
        a[1]["honoured_retry_after"],
        true,
        "{key}: the client waited for Retry-After:\n{}",
        show()
    );
    let waited = a[1]["since_previous_ms"].as_u64().unwrap_or(0);
    assert!(
        waited >= secs * 1000,
        "{key}: waited {waited} ms < {secs} s:\n{}",
        show()
    );
}

/// The head lines of the final response in `curl -i` output (after any interim ones).
fn last_head(stdout: &str) -> Vec<&str> {
    stdout
        .split("\r\n\r\n")
        .filter(|h| h.starts_with("HTTP/"))
        .last()
        .unwrap_or_else(|| panic!("no response head in {stdout:?}"))
        .split("\r\n")
        .collect()
}

/// `curl --retry 2 --retry-delay 0 URL`: returns the final code, curl's stderr and the body it
/// saved. (The output goes to a file: curl truncates it before a retry, which /dev/null refuses.)
async fn curl_retry(url: &str, key: &str) -> (String, String, String) {
    let file: PathBuf = [env!("CARGO_TARGET_TMPDIR"), &format!("{key}.out")]
        .iter()
        .collect();
    let path = file.to_str().expect("a UTF-8 path");
    let (code, err) = curl(&[
        "--no-progress-meter",
        "--retry",
        "2",
        "--retry-delay",
        "0",
        "-o",
        path,
        "-w",
        "%{http_code}",
        url,
    ])
    .await;
    let body = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    (code, err, body)
}

#[tokio::test]
async fn curl_retry_waits_out_retry_after_on_503_and_429() {
    let server = TestServer::start().await;
    let k503 = unique("curl-503");
    let k429 = unique("curl-429");
    // Retry-After 2 s: longer than curl's own first delay (1 s), so only a curl that honours
    // Retry-After waits long enough.
    let url503 = server.url(&format!("/sequence/{k503}/503,200?retry_after=2"));
    let url429 = server.url(&format!("/sequence/{k429}/429,200?retry_after=2"));
    // curl waits `Retry-After` seconds instead of its own delay when it retries 429/503.
    let ((out503, err503, body503), (out429, err429, body429)) =
        tokio::join!(curl_retry(&url503, &k503), curl_retry(&url429, &k429));
    for (out, err, body, code) in [
        (&out503, &err503, &body503, 503),
        (&out429, &err429, &body429, 429),
    ] {
        assert_eq!(out, "200", "{code}: the retry succeeds; stderr:\n{err}");
        assert!(
            err.contains("Will retry in 2 seconds"),
            "{code}: curl announces the Retry-After wait:\n{err}"
        );
        assert!(
            body.starts_with("200 OK") && !body.contains(&code.to_string()),
            "{code}: the output holds only the final answer: {body:?}"
        );
    }
    retried_after_retry_after(&server, &k503, "GET", 503, 2).await;
    retried_after_retry_after(&server, &k429, "GET", 429, 2).await;
}

/// `--tls-self-signed` writes its certificate (PEM, no key) where `tls_cert_out` says;
/// curl trusting that file verifies the server by name and by address (the certificate's
/// SANs hold localhost and 127.0.0.1). Plain HTTP sent to the TLS port gets a plain 400
/// (problem+json, `Connection: close`) saying so, then the close.
#[tokio::test]
async fn self_signed_certificate_is_written_and_plain_http_gets_400() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let pem = dir.path().join("tls").join("cert.pem");
    let out = pem.clone();
    let server = TestServer::start_with(move |c| {
        c.tls = Some(TlsSource::SelfSigned);
        c.tls_cert_out = Some(out);
    })
    .await;
    let text = std::fs::read_to_string(&pem).expect("the certificate is written");
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "never the key");
    let port = server.addr.port();
    let cacert = pem.to_str().expect("UTF-8 path");
    let show = "%{http_code} %{ssl_verify_result}";
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{port}/status/201");
        let (out, _) = curl(&[
            "-sS",
            "--cacert",
            cacert,
            "-o",
            "/dev/null",
            "-w",
            show,
            &url,
        ])
        .await;
        assert_eq!(
            out, "201 0",
            "{url}: verified against the written certificate"
        );
    }

    let mut conn = server.connect().await;
    conn.send(format!("GET / HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n").as_bytes())
        .await;
    let r = conn.read_response(false).await;
    assert_eq!(
        (r.status, r.reason.as_str()),
        (400, "Bad Request"),
        "{}",
        r.head
    );
    assert_eq!(r.must("connection"), "close");
    assert_eq!(r.must("content-type"), "application/problem+json");
    let detail = r.json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(
        detail.contains("plain HTTP request was sent to an HTTPS port"),
        "{detail}"
    );
    conn.expect_eof().await;
    // The port still speaks TLS to the next client.
    let url = format!("https://localhost:{port}/status/200");
    let (out, _) = curl(&[
        "-sS",
        "--cacert",
        cacert,
        "-o",
        "/dev/null",
        "-w",
        show,
        &url,
    ])
    .await;
    assert_eq!(out, "200 0");
}

#[tokio::test]
async fn curl_over_tls_http2_shows_103_then_200_and_http11_works() {
    let server = TestServer::start_with(|c| c.tls = Some(TlsSource::SelfSigned)).await;
    let port = server.addr.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = |path: &str| format!("https://localhost:{port}{path}");

    let (out, err) = curl(&[
        "-sSk",
        "--http2",
        "--resolve",
        &resolve,
        "-i",
        &url("/status/103"),
    ])
    .await;
    assert!(
        out.starts_with("HTTP/2 103"),
        "the early hints come first over h2:\n{out}\n{err}"
    );
    let first: Vec<&str> = out
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .split("\r\n")
        .collect();
    assert!(
        first
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("link:")),
        "103 carries Link:\n{out}"
    );
    assert_eq!(last_head(&out)[0].trim_end(), "HTTP/2 200", "{out}");

    let (out, _) = curl(&[
        "-sSk",
        "--http2",
        "--resolve",
        &resolve,
        "-i",
        &url("/status/503"),
    ])
    .await;
    let head = last_head(&out);
    assert_eq!(head[0].trim_end(), "HTTP/2 503", "{out}");
    assert!(
        head.iter()
            .any(|l| l.eq_ignore_ascii_case("retry-after: 1")),
        "{out}"
    );

    // ALPN offers http/1.1 too: the same server speaks HTTP/1.1 over TLS.
    let (out, err) = curl(&[
        "-sSk",
        "--http1.1",
        "--resolve",
        &resolve,
        "-i",
        &url("/status/103"),
    ])
    .await;
    assert!(
        out.starts_with("HTTP/1.1 103 Early Hints\r\n"),
        "{out}\n{err}"
    );
    assert_eq!(last_head(&out)[0], "HTTP/1.1 200 OK", "{out}");
    let (out, _) = curl(&[
        "-sSk",
        "--http1.1",
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &url("/status/418"),
    ])
    .await;
    assert_eq!(out, "1.1 418");
    let (out, _) = curl(&[
        "-sSk",
        "--http2",
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &url("/status/418"),
    ])
    .await;
    assert_eq!(out, "2 418", "ALPN chose h2");
}

#[tokio::test]
async fn python_requests_retry_honours_retry_after_on_413_429_503() {
    let server = TestServer::start().await;
    let k503 = unique("py-503");
    let k429 = unique("py-429");
    let k413 = unique("py-413");
    let base = server.url("");
    let report = python("retry_requests.py", &[&base, &k503, &k429, &k413]).await;
    let runs = report.as_array().expect("a JSON list");
    assert_eq!(runs.len(), 3, "{report}");
    for (run, first) in runs.iter().zip([503, 429, 413]) {
        assert_eq!(run["status"], 200, "{first}: the retry succeeds: {run}");
        assert_eq!(run["sequence_step"], "2/2", "{first}: {run}");
        assert_eq!(
            run["retry_history"],
            serde_json::json!([first]),
            "{first}: urllib3 retried once, after a {first}: {run}"
        );
    }
    retried_after_retry_after(&server, &k503, "GET", 503, 1).await;
    retried_after_retry_after(&server, &k429, "PUT", 429, 1).await;
    retried_after_retry_after(&server, &k413, "POST", 413, 1).await;
}

#[tokio::test]
async fn python_websockets_echoes_1000_messages_in_order() {
    let server = TestServer::start().await;
    for path in ["/websocket/echo", "/status/101"] {
        let url = format!("ws://{}{path}", server.host());
        let summary = python("ws_echo.py", &[&url, "1000"]).await;
        assert_eq!(summary["echoed"], 1000, "{path}: {summary}");
        assert!(
            summary["text"].as_u64().unwrap_or(0) > 0
                && summary["binary"].as_u64().unwrap_or(0) > 0,
            "{path}: text and binary mixed: {summary}"
        );
        assert_eq!(
            summary["close_code"], 1000,
            "{path}: a clean close: {summary}"
        );
    }
}

/// The one value of a RateLimit header.
fn one<'a>(r: &'a Response, name: &str) -> &'a str {
    let all = r.all(name);
    assert_eq!(all.len(), 1, "one {name} in:\n{}", r.head);
    all[0]
}

/// `r=` and `t=` of a `RateLimit` value such as `"server";r=2;t=20`.
fn remaining_and_reset(value: &str) -> (u64, u64) {
    let mut r = None;
    let mut t = None;
    for part in value.split(';').skip(1) {
        match part.trim().split_once('=') {
            Some(("r", v)) => r = v.parse().ok(),
            Some(("t", v)) => t = v.parse().ok(),
            _ => {}
        }
    }
    (
        r.unwrap_or_else(|| panic!("no r= in {value:?}")),
        t.unwrap_or_else(|| panic!("no t= in {value:?}")),
    )
}

fn retry_after_secs(r: &Response) -> u64 {
    r.must("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is delay-seconds:\n{}", r.head))
}

#[tokio::test]
async fn server_rate_limit_429_after_the_third_with_ratelimit_headers() {
    let server =
        TestServer::start_with(|c| c.rate_limit = Some((3, Duration::from_secs(60)))).await;
    for expect_remaining in [2, 1, 0] {
        let r = server.get("/status/200", &[]).await;
        assert_eq!(r.status, 200, "within the limit:\n{}", r.head);
        assert_eq!(one(&r, "ratelimit-policy"), "\"server\";q=3;w=60");
        let (remaining, reset) = remaining_and_reset(one(&r, "ratelimit"));
        assert_eq!(remaining, expect_remaining, "{}", r.head);
        assert!((1..=60).contains(&reset), "{}", r.head);
        assert!(
            !r.has("retry-after"),
            "a passing request needs no Retry-After"
        );
    }
    // The fourth, on any route, is refused.
    for path in ["/status/200", "/codes"] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, 429, "{path}:\n{}", r.head);
        assert_eq!(r.reason, "Too Many Requests");
        let wait = retry_after_secs(&r);
        assert!((1..=60).contains(&wait), "{path}: Retry-After {wait}");
        assert_eq!(one(&r, "ratelimit-policy"), "\"server\";q=3;w=60");
        let (remaining, reset) = remaining_and_reset(one(&r, "ratelimit"));
        assert_eq!(remaining, 0, "{}", r.head);
        assert!((1..=60).contains(&reset), "{}", r.head);
        let body = r.json();
        assert_eq!(body["status"], 429);
        assert_eq!(body["title"], "TooManyRequests", "the table's message");
        assert!(
            r.must("access-control-expose-headers")
                .contains("RateLimit"),
            "browsers may read the RateLimit headers"
        );
    }
}

/// The codes of four `GET /status/204` from the client named `client` in `X-Client`.
async fn four_codes(server: &TestServer, client: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..4 {
        let r = server.get("/status/204", &[("X-Client", client)]).await;
        out.push(r.status);
    }
    out
}

#[tokio::test]
async fn rate_limit_key_header_separates_clients() {
    let server = TestServer::start_with(|c| {
        c.rate_limit = Some((3, Duration::from_secs(60)));
        c.rate_limit_key = Some(http::HeaderName::from_static("x-client"));
    })
    .await;
    assert_eq!(four_codes(&server, "alice").await, [204, 204, 204, 429]);
    assert_eq!(
        four_codes(&server, "bob").await,
        [204, 204, 204, 429],
        "bob has his own budget"
    );
    // Without the header the client address is the key: a third budget.
    let r = server.get("/status/204", &[]).await;
    assert_eq!(r.status, 204, "{}", r.head);
    assert_eq!(remaining_and_reset(one(&r, "ratelimit")).0, 2);
    let r = server.get("/status/204", &[("x-client", "alice")]).await;
    assert_eq!(r.status, 429, "alice is still limited");
    assert!(retry_after_secs(&r) >= 1);
}

/// On-demand keys and the server-wide limiter's have separate `--max-keys` quotas: fresh
/// `?key=` values past the quota get 507 (not a made-up 429), and never make the server-wide
/// limiter refuse anyone — not even a new client once its own quota is full (it fails open).
#[tokio::test]
async fn on_demand_keys_past_max_keys_get_507_and_never_block_the_server_limiter() {
    let server = TestServer::start_with(|c| {
        c.limits.max_keys = 2;
        c.rate_limit = Some((3, Duration::from_secs(60)));
        c.rate_limit_key = Some(http::HeaderName::from_static("x-client"));
    })
    .await;
    for key in ["a", "b"] {
        let r = server
            .get(
                &format!("/rate-limit/5/1m?key={key}"),
                &[("X-Client", "c1")],
            )
            .await;
        assert_eq!(r.status, 200, "{key}:\n{}", r.head);
    }
    let r = server
        .get("/rate-limit/5/1m?key=c", &[("X-Client", "c1")])
        .await;
    assert_eq!(r.status, 507, "a new key past --max-keys:\n{}", r.head);
    assert!(retry_after_secs(&r) >= 1);
    assert!(
        r.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("--max-keys")),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // The server-wide limiter tracks c1 and c2 (its quota is then full), and lets c3 in.
    for client in ["c2", "c3"] {
        let r = server.get("/status/204", &[("X-Client", client)]).await;
        assert_eq!(r.status, 204, "{client}:\n{}", r.head);
    }
    // c1 has spent its 3 (two 200s and the 507 above): it is still limited.
    let r = server.get("/status/204", &[("X-Client", "c1")]).await;
    assert_eq!(r.status, 429, "{}", r.head);
}

#[tokio::test]
async fn on_demand_rate_limit_admits_exactly_n_per_key() {
    let server = TestServer::start().await;
    let mut codes = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..6 {
        let r = server.get("/rate-limit/3/1m?key=k", &[]).await;
        assert_eq!(one(&r, "ratelimit-policy"), "\"on-demand\";q=3;w=60");
        let (left, reset) = remaining_and_reset(one(&r, "ratelimit"));
        assert!((1..=60).contains(&reset), "t={reset}:\n{}", r.head);
        if r.status == 429 {
            let wait = retry_after_secs(&r);
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
        } else {
            assert!(!r.has("retry-after"), "{}", r.head);
        }
        codes.push(r.status);
        remaining.push(left);
    }
    assert_eq!(codes, [200, 200, 200, 429, 429, 429]);
    // The countdown: n-1, n-2, … 0 as requests pass, and 0 on every refusal.
    assert_eq!(remaining, [2, 1, 0, 0, 0, 0], "r= of each answer");
    let r = server.get("/rate-limit/3/1m?key=other", &[]).await;
    assert_eq!(r.status, 200, "another key has its own budget");
    assert_eq!(remaining_and_reset(one(&r, "ratelimit")).0, 2);
}

/// The default is exact to the URL (a sliding window: the 4th of `3/10s` waits for the
/// first to leave the window, 10 s); `?algorithm=gcra` is the smoothed limiter (the 4th waits
/// one emission interval, 3.33 s); `?algorithm=sliding-window` names the default; another
/// name is 400. The exact timing is tested on a manual clock in the store's conformance suite.
#[tokio::test]
async fn on_demand_rate_limit_algorithms_tell_their_truth() {
    let server = TestServer::start().await;
    let codes = |r: &[Exchange]| r.iter().map(|r| r.status).collect::<Vec<_>>();
    let mut window = Vec::new();
    for path in [
        "/rate-limit/3/10s?key=w",
        "/rate-limit/3/10s?key=w&algorithm=sliding-window",
        "/rate-limit/3/10s?key=w",
        "/rate-limit/3/10s?key=w&algorithm=sliding-window",
    ] {
        window.push(server.get(path, &[]).await);
    }
    assert_eq!(
        codes(&window),
        [200, 200, 200, 429],
        "one window, named or not"
    );
    let refused = &window[3];
    assert!(
        (9..=10).contains(&retry_after_secs(refused)),
        "{}",
        refused.head
    );
    assert_eq!(one(refused, "ratelimit-policy"), "\"on-demand\";q=3;w=10");
    assert_eq!(remaining_and_reset(one(refused, "ratelimit")).0, 0);
    let detail = refused.json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("sliding window"), "{detail}");

    let mut gcra = Vec::new();
    for _ in 0..4 {
        gcra.push(
            server
                .get("/rate-limit/3/10s?key=w&algorithm=gcra", &[])
                .await,
        );
    }
    assert_eq!(
        codes(&gcra),
        [200, 200, 200, 429],
        "GCRA keeps state of its own"
    );
    assert!(
        (3..=4).contains(&retry_after_secs(&gcra[3])),
        "{}",
        gcra[3].head
    );
    let detail = gcra[3].json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("GCRA"), "{detail}");

    let r = server
        .get("/rate-limit/3/10s?algorithm=token-bucket", &[])
        .await;
    assert_eq!(r.status, 400, "{}", r.head);
    let detail = r.json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("sliding-window, gcra"), "{detail}");
}

const ADMIN: &str = "admin-secret";
const READER: &str = "read-secret";

fn tokens() -> Vec<Token> {
    vec![
        Token {
            secret: ADMIN.to_owned(),
            scope: Scope::Admin,
        },
        Token {
            secret: READER.to_owned(),
            scope: Scope::Read,
        },
    ]
}

async fn send(server: &TestServer, method: &str, path: &str, token: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    server
        .exchange(&request(method, path, &server.host(), &headers, b""))
        .await
        .last
}

#[tokio::test]
async fn maintenance_mode_503_and_admin_switch() {
    let server = TestServer::start_with(|c| {
        c.maintenance = true;
        c.tokens = tokens();
    })
    .await;
    let r = server.get("/status/200", &[]).await;
    assert_eq!(r.status, 503, "in maintenance:\n{}", r.head);
    assert_eq!(r.reason, "Service Unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("maintenance"),
        "{}",
        r.text()
    );
    // The advice agrees with the detail and Retry-After: repeat later, not "do not repeat".
    let advice = r.json()["advice"].as_str().unwrap_or("").to_owned();
    assert!(advice.contains("after Retry-After"), "{advice}");
    assert!(!advice.to_lowercase().contains("not repeat"), "{advice}");
    let r = server
        .get("/status/200", &[("Accept", "application/json")])
        .await;
    assert_eq!(r.status, 503);
    assert!(
        r.json()["next_step"]
            .as_str()
            .is_some_and(|a| a.contains("after Retry-After")),
        "{}",
        r.text()
    );
    let r = server.get("/health", &[]).await;
    assert_eq!(r.status, 200, "/health still answers:\n{}", r.head);
    let r = send(&server, "GET", "/admin/maintenance", Some(READER)).await;
    assert_eq!(
        r.status, 200,
        "/admin/maintenance still answers:\n{}",
        r.head
    );
    assert_eq!(r.json()["maintenance"], true);

    // Switching needs an admin token: none gets 401, a read token 403.
    for method in ["PUT", "DELETE"] {
        let r = send(&server, method, "/admin/maintenance", None).await;
        assert_eq!(r.status, 401, "{method} without a token:\n{}", r.head);
        assert!(
            r.must("www-authenticate").starts_with("Bearer"),
            "{}",
            r.head
        );
        let r = send(&server, method, "/admin/maintenance", Some("wrong")).await;
        assert_eq!(r.status, 401, "{method} with an unknown token");
        let r = send(&server, method, "/admin/maintenance", Some(READER)).await;
        assert_eq!(r.status, 403, "{method} with a read token:\n{}", r.head);
        assert!(
            r.must("www-authenticate").contains("insufficient_scope"),
            "{}",
            r.head
        );
    }
    assert_eq!(server.get("/status/200", &[]).await.status, 503, "still on");

    let r = send(&server, "DELETE", "/admin/maintenance", Some(ADMIN)).await;
    assert_eq!(r.status, 204, "an admin switches it off:\n{}", r.head);
    let r = server.get("/status/200", &[]).await;
    assert_eq!(r.status, 200, "off:\n{}", r.head);
    let r = send(&server, "GET", "/admin/maintenance", Some(ADMIN)).await;
    assert_eq!(r.json()["maintenance"], false);

    let r = send(&server, "PUT", "/admin/maintenance", Some(ADMIN)).await;
    assert_eq!(r.status, 204, "an admin switches it on:\n{}", r.head);
    for path in ["/status/200", "/", "/sequence/m/200"] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, 503, "{path} in maintenance again:\n{}", r.head);
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    // The switch outlives the store follower's refreshes (it reads the store every second):
    // every answer over 2.5 s, two refreshes and more, is still 503.
    let watched = std::time::Instant::now();
    while watched.elapsed() < Duration::from_millis(2500) {
        let r = server.get("/status/200", &[]).await;
        assert_eq!(
            r.status,
            503,
            "maintenance switched itself off after {:?}:\n{}",
            watched.elapsed(),
            r.head
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.get("/health", &[]).await.status, 200);
}

#[tokio::test]
async fn load_shedding_503_while_two_requests_are_held() {
    let server = TestServer::start_with(|c| c.max_in_flight = Some(2)).await;
    let host = server.host();
    // Two uploads hold both in-flight slots: a slot is taken at admission, and the 100 Continue
    // (sent only to an admitted request) says each has one. Their content is not sent yet, so
    // neither can finish while the third request is tried.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = server.connect().await;
        conn.send(&request(
            "POST",
            "/status/200?sleep=500ms",
            &host,
            &[("Expect", "100-continue"), ("Content-Length", "1")],
            b"",
        ))
        .await;
        let r = conn.read_response(false).await;
        assert_eq!(r.status, 100, "admitted:\n{}", r.head);
        held.push(conn);
    }
    let r = server.get("/status/200", &[]).await;
    assert_eq!(
        r.status, 503,
        "a third request while two are in flight:\n{}",
        r.head
    );
    assert_eq!(r.reason, "Service Unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("--max-in-flight"),
        "{}",
        r.text()
    );
    // The held ones are still waiting for their replies.
    for conn in &mut held {
        let early = tokio::time::timeout(Duration::ZERO, conn.read_some()).await;
        assert!(early.is_err(), "the held request was answered: {early:?}");
    }
    for conn in &mut held {
        conn.send(b"x").await;
    }
    for mut conn in held {
        assert_eq!(
            conn.read_exchange(false).await.status,
            200,
            "held ones finish"
        );
    }
    // The slots are free again.
    assert_eq!(server.get("/status/200", &[]).await.status, 200);
}

/// `PUT /resources/doc` with a text body and, when given, a bearer token.
async fn put_doc(server: &TestServer, token: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "text/plain")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    server
        .exchange(&request(
            "PUT",
            "/resources/doc",
            &server.host(),
            &headers,
            b"hi",
        ))
        .await
        .last
}

#[tokio::test]
async fn httpbin_auth_routes_401_403_404() {
    let server = TestServer::start_with(|c| c.tokens = tokens()).await;
    let right = ("Authorization", "Basic dTpw"); // u:p
    let wrong = ("Authorization", "Basic dTp3cm9uZw=="); // u:wrong

    let r = server.get("/basic-auth/u/p", &[right]).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.json()["authenticated"], true);
    assert_eq!(r.json()["user"], "u");
    for (why, headers) in [("wrong", vec![wrong]), ("none", vec![])] {
        let r = server.get("/basic-auth/u/p", &headers).await;
        assert_eq!(r.status, 401, "{why}:\n{}", r.head);
        assert!(
            r.must("www-authenticate").starts_with("Basic realm="),
            "{}",
            r.head
        );
    }
    let r = server.get("/hidden-basic-auth/u/p", &[right]).await;
    assert_eq!(r.status, 200, "{}", r.head);
    for (why, headers) in [("wrong", vec![wrong]), ("none", vec![])] {
        let r = server.get("/hidden-basic-auth/u/p", &headers).await;
        assert_eq!(r.status, 404, "hidden, {why}:\n{}", r.head);
        assert!(!r.has("www-authenticate"), "no challenge gives it away");
    }

    let r = server
        .get("/bearer", &[("Authorization", "Bearer abc")])
        .await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.json()["token"], "abc");
    for headers in [vec![], vec![right]] {
        let r = server.get("/bearer", &headers).await;
        assert_eq!(r.status, 401, "{headers:?}:\n{}", r.head);
        assert!(
            r.must("www-authenticate").starts_with("Bearer"),
            "{}",
            r.head
        );
    }

    // Server tokens on resources: none is 401, a read token that writes is 403.
    let r = put_doc(&server, None).await;
    assert_eq!(r.status, 401, "{}", r.head);
    assert!(r.must("www-authenticate").contains("invalid_token"));
    let r = put_doc(&server, Some(READER)).await;
    assert_eq!(r.status, 403, "{}", r.head);
    assert!(r.must("www-authenticate").contains("insufficient_scope"));
    let r = put_doc(&server, Some(ADMIN)).await;
    assert_eq!(r.status, 201, "an admin token may write:\n{}", r.head);
    let r = send(&server, "GET", "/resources/doc", Some(READER)).await;
    assert_eq!(r.status, 200, "a read token may read");
}

/// The soft and hard limits on open files (`None` for unlimited), from /proc (no `unsafe`
/// needed to read them).
fn open_files_limits() -> Option<(Option<u64>, Option<u64>)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line.split_whitespace().skip(3);
    let parse = |v: &str| -> Option<Option<u64>> {
        if v == "unlimited" {
            Some(None)
        } else {
            v.parse().ok().map(Some)
        }
    };
    Some((parse(fields.next()?)?, parse(fields.next()?)?))
}

/// Whether this is a CI run (`CI` set to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Makes sure this process may hold `need` descriptors: when the soft limit is lower, raises
/// it to the hard limit with util-linux's `prlimit` on this very process (as `ulimit -n` in
/// scripts/test.sh does for the shell; no libc or `unsafe` needed). Returns the soft limit
/// afterwards (`None`: unlimited), or why it is unknown.
fn ensure_open_files(need: u64) -> Result<Option<u64>, String> {
    let Some((soft, hard)) = open_files_limits() else {
        return Err("the open-files limit cannot be read from /proc/self/limits".to_owned());
    };
    let Some(soft) = soft else {
        return Ok(None);
    };
    if soft >= need {
        return Ok(Some(soft));
    }
    let target = hard.map_or_else(|| "unlimited".to_owned(), |h| h.to_string());
    let raised = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={target}:{target}"))
        .status();
    match raised {
        Ok(status) if status.success() => {
            let _ = writeln!(
                std::io::stderr(),
                "raised the open-files soft limit from {soft} to {target} (the hard limit) with prlimit"
            );
        }
        Ok(status) => eprintln!("prlimit could not raise the open-files limit ({status})"),
        Err(e) => eprintln!("prlimit could not be run to raise the open-files limit: {e}"),
    }
    match open_files_limits() {
        Some((soft, _)) => Ok(soft),
        None => Err("the open-files limit cannot be read from /proc/self/limits".to_owned()),
    }
}

#[tokio::test]
async fn a_thousand_stalled_clients_get_408_and_normal_requests_are_served() {
    // Each stalled connection costs two descriptors in this process (client and server end),
    // and tests running alongside hold some too. scripts/test.sh (and so .ci/run) raise the
    // soft limit; the test raises it itself when the hard limit allows. Below what it needs, a
    // CI run fails; a local run says loudly that it checks only 400 connections.
    let wanted = 1000u64;
    let need = 2 * wanted + 200;
    let too_low = match ensure_open_files(need) {
        Ok(Some(l)) if l < need => Some(format!(
            "the open-files soft limit is {l}, below the {need} needed for {wanted} stalled \
             connections, and the hard limit does not allow more (ulimit -Hn); run the tests \
             through scripts/test.sh, or raise the limit (ulimit -n {need})"
        )),
        Ok(_) => None,
        Err(why) => Some(why),
    };
    let slow_count = match too_low {
        Some(why) => {
            assert!(!in_ci(), "CI is set: {why}");
            // Straight to stderr, past the test harness's capture: the run's output says so.
            let _ = writeln!(
                std::io::stderr(),
                "REDUCED TEST a_thousand_stalled_clients_get_408_and_normal_requests_are_served: \
                 {why}. Checking only 400 stalled connections (with CI set, this fails instead)."
            );
            400
        }
        None => wanted,
    } as usize;
    let header_timeout = Duration::from_secs(4);
    let server = TestServer::start_with(|c| c.header_timeout = header_timeout).await;
    let host = server.host();
    let partial = format!("GET /status/200 HTTP/1.1\r\nHost: {host}\r\nX-Stalled");
    let normal = request("GET", "/status/200", &host, &[], b"");
    let mut served = 0;
    let mut slow: Vec<Conn> = Vec::with_capacity(slow_count);
    for i in 0..slow_count {
        let mut conn = server.connect().await;
        conn.send(partial.as_bytes()).await;
        slow.push(conn);
        if i % 100 == 99 {
            // A normal client, while the stalled ones wait.
            let r = server.exchange(&normal).await;
            assert_eq!(
                r.status,
                200,
                "with {} stalled connections:\n{}",
                i + 1,
                r.head
            );
            served += 1;
        }
    }
    // With all of them open: normal requests, on new connections and on one kept alive.
    let mut keep = server.connect().await;
    for _ in 0..10 {
        let r = server.exchange(&normal).await;
        assert_eq!(r.status, 200, "{}", r.head);
        keep.send(&normal).await;
        assert_eq!(keep.read_exchange(false).await.status, 200);
        served += 2;
    }
    // Those were served while the stalled connections were still waiting (nothing sent yet).
    let mut answered_early = 0;
    for conn in &mut slow {
        if tokio::time::timeout(Duration::ZERO, conn.read_some())
            .await
            .is_ok()
        {
            answered_early += 1;
        }
    }
    assert_eq!(
        answered_early, 0,
        "{served} normal requests were served while {slow_count} stalled connections were open"
    );
    // Then every stalled one gets its 408 and is closed.
    let mut not_408 = Vec::new();
    for (i, conn) in slow.iter_mut().enumerate() {
        let r = conn.read_exchange(false).await;
        if r.status != 408 || r.header("connection") != Some("close") {
            not_408.push(format!("#{i}: {}", r.head));
            continue;
        }
        conn.expect_eof().await;
    }
    assert!(
        not_408.is_empty(),
        "{} of {slow_count} stalled connections did not get 408 + close:\n{}",
        not_408.len(),
        not_408.join("\n")
    );
    // And the server still serves.
    let r = server.exchange(&normal).await;
    assert_eq!(r.status, 200);
}
