//! The httpbin / go-httpbin drop-in, driven by real clients: Python requests (every endpoint,
//! every documented parameter, the JSON shapes: tests/clients/httpbin_compat.py), the system
//! curl (`-L`, `--digest`, `--compressed`, a cookie jar) and raw sockets where framing matters
//! (chunked streams and trailers, paced drips, HTTP/1.0, HEAD, keep-alive after a stream).

use crate::support::{Framing, TestServer, find, request};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Runs the system curl with `args` (bounded by `--max-time`); returns its stdout, failing on
/// a non-zero exit.
async fn curl(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "15"])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl finishes")
    .expect("the system curl runs (scripts/test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "curl {args:?}: {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn python_requests_sees_httpbins_documented_behaviour() {
    let server = TestServer::start().await;
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "clients",
        "httpbin_compat.py",
    ]
    .iter()
    .collect();
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(server.url(""))
        .kill_on_drop(true)
        .output()
        .await
        .expect("python3 runs");
    assert_ne!(
        out.status.code(),
        Some(3),
        "a Python module is missing; run scripts/test-deps.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "httpbin_compat.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let checks = seen.as_object().expect("an object");
    assert!(checks.len() >= 35, "every check ran: {}", checks.len());
    let failed: Vec<String> = checks
        .iter()
        .filter(|(_, v)| *v != "ok")
        .map(|(k, v)| format!("  {k}: {v}"))
        .collect();
    assert!(failed.is_empty(), "failed checks:\n{}", failed.join("\n"));
}

#[tokio::test]
async fn curl_follows_redirect_chains_to_get() {
    let server = TestServer::start().await;
    for path in [
        "/redirect/4",
        "/redirect/3?absolute=true",
        "/relative-redirect/3",
        "/absolute-redirect/3",
        "/redirect-to?url=/get",
        "/links/3",
    ] {
        let out = curl(&[
            "-L",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{num_redirects} %{url_effective}",
            &server.url(path),
        ])
        .await;
        let want_end = if path.starts_with("/links") {
            "/links/3/0"
        } else {
            "/get"
        };
        assert!(out.starts_with("200 "), "{path}: {out}");
        assert!(out.ends_with(want_end), "{path}: {out}");
    }
    let out = curl(&["-L", &server.url("/redirect/2")]).await;
    let echo: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(echo["url"], server.url("/get"));
}

#[tokio::test]
async fn curl_digest_authenticates_with_md5_and_sha256() {
    let server = TestServer::start().await;
    for path in [
        "/digest-auth/auth/alice/s3cret",
        "/digest-auth/auth/alice/s3cret/MD5",
        "/digest-auth/auth/alice/s3cret/SHA-256",
        "/digest-auth/auth-int/alice/s3cret/MD5",
        "/digest-auth/auth/alice/s3cret/MD5/never",
    ] {
        let out = curl(&["--digest", "-u", "alice:s3cret", &server.url(path)]).await;
        assert_eq!(out, r#"{"authenticated":true,"user":"alice"}"#, "{path}");
        let wrong = curl(&[
            "--digest",
            "-u",
            "alice:nope",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &server.url(path),
        ])
        .await;
        assert_eq!(wrong, "401", "{path}");
    }
}

#[tokio::test]
async fn curl_compressed_decodes_every_encoding() {
    let server = TestServer::start().await;
    for (path, flag) in [
        ("/gzip", "gzipped"),
        ("/deflate", "deflated"),
        ("/brotli", "brotli"),
        ("/zstd", "zstd"),
    ] {
        let head = curl(&[
            "--compressed",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &server.url(path),
        ])
        .await;
        let token = if path == "/brotli" { "br" } else { &path[1..] };
        assert!(
            head.contains(&format!("Content-Encoding: {token}\r\n")),
            "{path}: {head}"
        );
        let body = curl(&["--compressed", &server.url(path)]).await;
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: curl --compressed gave no JSON ({e}): {body}"));
        assert_eq!(json[flag], true, "{path}: {json}");
        assert_eq!(json["method"], "GET");
    }
}

#[tokio::test]
async fn curl_cookie_jar_round_trips() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let jar = dir.path().join("jar");
    let jar = jar.to_str().expect("UTF-8");
    let out = curl(&[
        "-L",
        "-c",
        jar,
        "-b",
        jar,
        &server.url("/cookies/set?flavour=oat&n=2"),
    ])
    .await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        json["cookies"],
        serde_json::json!({"flavour": "oat", "n": "2"})
    );
    let out = curl(&["-L", "-c", jar, "-b", jar, &server.url("/cookies/delete?n")]).await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["cookies"], serde_json::json!({"flavour": "oat"}));
}

#[tokio::test]
async fn streams_are_chunked_with_one_chunk_per_line() {
    let server = TestServer::start().await;
    let r = server.get("/stream/3", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.framing, Framing::Chunked, "{}", r.head);
    assert!(!r.has("Content-Length"), "{}", r.head);
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["id"], 2);
    // The raw bytes: each line is its own chunk, then the last chunk.
    let mut conn = server.connect().await;
    conn.send(&request(
        "GET",
        "/stream/2",
        &server.host(),
        &[("Connection", "close")],
        b"",
    ))
    .await;
    let mut raw = Vec::new();
    loop {
        let more = conn.read_some().await;
        if more.is_empty() {
            break;
        }
        raw.extend_from_slice(&more);
    }
    let at = find(&raw, b"\r\n\r\n").expect("a head") + 4;
    let body = String::from_utf8_lossy(&raw[at..]).into_owned();
    let chunk_lines: Vec<&str> = body.split("\r\n").collect();
    let first_len = usize::from_str_radix(chunk_lines[0], 16).expect("a chunk size");
    // The line and its newline are one chunk.
    assert_eq!(first_len, chunk_lines[1].len(), "{body}");
    assert!(chunk_lines[1].ends_with('\n'), "{body}");
    assert!(body.ends_with("\n\r\n0\r\n\r\n"), "{body:?}");
}

#[tokio::test]
async fn trailers_follow_the_last_chunk_and_are_announced() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.send(&request(
        "GET",
        "/trailers?X-Checksum=abc&X-Count=2",
        &server.host(),
        &[("TE", "trailers"), ("Connection", "close")],
        b"",
    ))
    .await;
    let mut raw = Vec::new();
    loop {
        let more = conn.read_some().await;
        if more.is_empty() {
            break;
        }
        raw.extend_from_slice(&more);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(
        text.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nTrailer: x-checksum, x-count\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n0\r\nX-Checksum: abc\r\nX-Count: 2\r\n\r\n"),
        "{text}"
    );
    for bad in [
        "Content-Length=1",
        "Transfer-Encoding=x",
        "Host=h",
        "Bad%20Name=1",
    ] {
        let r = server.get(&format!("/trailers?{bad}"), &[]).await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn http10_clients_get_streams_under_a_content_length() {
    let server = TestServer::start().await;
    let r = server
        .exchange(b"GET /trailers?X-A=1 HTTP/1.0\r\n\r\n")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.framing, Framing::Length, "{}", r.head);
    assert!(
        !r.has("Transfer-Encoding") && !r.has("Trailer"),
        "{}",
        r.head
    );
    let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(json["args"]["X-A"], "1");
    let r = server.exchange(b"GET /stream/2 HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.framing, Framing::Length, "{}", r.head);
    assert_eq!(r.text().lines().count(), 2);
}

#[tokio::test]
async fn head_of_a_stream_has_no_content_and_keep_alive_survives_a_stream() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    let host = server.host();
    conn.send(&request("HEAD", "/stream/5", &host, &[], b""))
        .await;
    let head = conn.read_exchange(true).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    // Pipelined: a stream, a drip and an echo on one connection, answered in order.
    let mut three = request("GET", "/stream/2", &host, &[], b"");
    three.extend(request(
        "GET",
        "/drip?numbytes=3&duration=0&delay=0",
        &host,
        &[],
        b"",
    ));
    three.extend(request("GET", "/get?n=3", &host, &[], b""));
    conn.send(&three).await;
    let a = conn.read_exchange(false).await;
    assert_eq!(a.text().lines().count(), 2);
    let b = conn.read_exchange(false).await;
    assert_eq!(b.body, b"***");
    let c = conn.read_exchange(false).await;
    assert_eq!(c.json()["args"]["n"], "3");
}

#[tokio::test]
async fn drips_are_paced_under_a_content_length() {
    let server = TestServer::start().await;
    let started = Instant::now();
    let r = server
        .get("/drip?numbytes=4&duration=0.4&delay=0.1&code=201", &[])
        .await;
    assert!(started.elapsed() >= Duration::from_millis(480));
    assert_eq!(r.status, 201);
    assert_eq!(r.framing, Framing::Length);
    assert_eq!(r.body, b"****");
    assert_eq!(r.must("Content-Type"), "application/octet-stream");
    for bad in [
        "/drip?numbytes=x",
        "/drip?duration=-1",
        "/drip?code=99",
        "/drip?duration=61",
        "/drip?delay=61",
    ] {
        let r = server.get(bad, &[]).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.must("Content-Type"), "application/problem+json");
    }
}

/// `qop` lists may arrive percent-encoded (`auth%2Cauth-int`), as OpenAPI clients send path
/// parameters; they were refused with 400.
#[tokio::test]
async fn digest_qop_lists_may_be_percent_encoded() {
    let server = TestServer::start().await;
    for path in [
        "/digest-auth/auth,auth-int/u/p",
        "/digest-auth/auth%2Cauth-int/u/p",
        "/digest-auth/auth-int%2cauth/u/p/SHA-256",
    ] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, 401, "{path}");
        let challenge = r.header("www-authenticate").unwrap_or("").to_owned();
        assert!(challenge.contains("auth-int"), "{path}: {challenge}");
    }
    assert_eq!(
        server.get("/digest-auth/auth%2Cnope/u/p", &[]).await.status,
        400
    );
}

#[tokio::test]
async fn sizes_and_delays_are_bounded_by_the_server_limits() {
    let server = TestServer::start_with(|c| {
        c.max_body = 1000;
        c.max_delay = Duration::from_secs(1);
    })
    .await;
    for (path, flag) in [
        ("/bytes/1001", "--max-body"),
        ("/stream-bytes/1001", "--max-body"),
        ("/range/1001", "--max-body"),
        ("/drip?numbytes=1001", "--max-body"),
        ("/delay/2", "--max-delay"),
        ("/sse?duration=2s", "--max-delay"),
        ("/drip?delay=1.5", "--max-delay"),
        ("/sse?delay=1500ms", "--max-delay"),
    ] {
        let r = server.get(path, &[]).await;
        assert_eq!(r.status, 400, "{path}");
        let detail = r.json()["detail"].as_str().unwrap_or("").to_owned();
        assert!(detail.contains(flag), "{path}: {detail}");
    }
    assert_eq!(server.get("/bytes/1000", &[]).await.body.len(), 1000);
    assert_eq!(server.get("/delay/0.1", &[]).await.status, 200);
}

/// `duration` and `delay` of `/sse` and `/drip` are each bounded by `--max-delay` (a bound each
/// parameter's schema states), not together; defaults past it are cut to it. A pair that
/// together passed the bound was refused with 400, and so was a request without parameters
/// under a `--max-delay` shorter than the default duration.
#[tokio::test]
async fn sse_and_drip_bound_duration_and_delay_each() {
    let server = TestServer::start_with(|c| c.max_delay = Duration::from_millis(300)).await;
    let started = Instant::now();
    let sse = server.get("/sse?count=2&duration=0.2&delay=0.2", &[]).await;
    assert_eq!(sse.status, 200, "{}", sse.head);
    assert_eq!(sse.text().matches("event: ping").count(), 2);
    let drip = server
        .get("/drip?numbytes=2&duration=200ms&delay=200ms", &[])
        .await;
    assert_eq!(drip.status, 200, "{}", drip.head);
    assert_eq!(drip.body, b"**");
    assert!(started.elapsed() >= Duration::from_millis(700));
    // The defaults (5 s for /sse, 2 s and 2 s for /drip) are cut to --max-delay.
    let started = Instant::now();
    let sse = server.get("/sse?count=1", &[]).await;
    assert_eq!(sse.status, 200, "{}", sse.head);
    let drip = server.get("/drip?numbytes=1", &[]).await;
    assert_eq!(drip.status, 200, "{}", drip.head);
    assert!(started.elapsed() < Duration::from_secs(2));
    // Past the bound by less than a nanosecond is past it (as the document's `maximum` says).
    for bad in [
        "/sse?duration=0.4",
        "/sse?delay=400ms",
        "/drip?duration=0.4",
        "/sse?delay=0.30000000000000004",
        "/drip?delay=0.30000000000000004",
        "/delay/0.30000000000000004",
    ] {
        assert_eq!(server.get(bad, &[]).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn redirect_to_other_hosts_needs_the_allow_list() {
    let server = TestServer::start_with(|c| {
        c.redirect_allow = vec![
            "allowed.example".to_owned(),
            "pinned.example:8443".to_owned(),
        ];
    })
    .await;
    for (url, code) in [
        ("https://allowed.example/x", 302),
        ("http://allowed.example:9000/x", 302),
        ("https://pinned.example:8443/", 302),
        ("https://pinned.example/", 400),
        ("https://evil.example/", 400),
        ("//evil.example/", 400),
        ("javascript:alert(1)", 400),
        ("https://allowed.example@evil.example/", 400),
    ] {
        let r = server
            .get(&format!("/redirect-to?url={url}&status_code=302"), &[])
            .await;
        assert_eq!(r.status, code, "{url}");
        if code == 302 {
            assert_eq!(r.must("Location"), url);
        } else {
            assert!(r.text().contains("--redirect-allow"), "{url}: {}", r.text());
        }
    }
}

/// A target outside ASCII is sent percent-encoded (UTF-8) in Location, as browsers do: a
/// Location value is ASCII, and the document's `url` pattern admits such targets. Non-ASCII
/// spaces and controls are still refused.
#[tokio::test]
async fn redirect_to_percent_encodes_non_ascii() {
    let server = TestServer::start().await;
    for (url, location) in [
        ("%C3%A9", "%C3%A9"),
        ("/caf%C3%A9?q=%F0%9F%98%80", "/caf%C3%A9?q=%F0%9F%98%80"),
        ("/already%25C3%25A9", "/already%C3%A9"),
    ] {
        let r = server.get(&format!("/redirect-to?url={url}"), &[]).await;
        assert_eq!(r.status, 302, "{url}");
        assert_eq!(r.must("Location"), location, "{url}");
    }
    for url in ["/a%C2%A0b", "/a%C2%85b"] {
        let r = server.get(&format!("/redirect-to?url={url}"), &[]).await;
        assert_eq!(r.status, 400, "{url}");
    }
}

#[tokio::test]
async fn echo_shapes_on_the_wire() {
    let server = TestServer::start().await;
    let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n2\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n\r\nfile!\r\n--XX--\r\n";
    let r = server
        .exchange(&request(
            "POST",
            "/anything/deep/path?q=1",
            &server.host(),
            &[("Content-Type", "multipart/form-data; boundary=XX")],
            body,
        ))
        .await;
    let j = r.json();
    assert_eq!(j["form"], serde_json::json!({"a": ["1", "2"]}));
    assert_eq!(j["files"], serde_json::json!({"f": "file!"}));
    assert_eq!(j["method"], "POST");
    assert_eq!(j["url"], server.url("/anything/deep/path?q=1"));
    let bad = server
        .exchange(&request(
            "POST",
            "/post",
            &server.host(),
            &[("Content-Type", "multipart/form-data; boundary=XX")],
            b"--XX\r\nno header end",
        ))
        .await;
    assert_eq!(bad.status, 400);
    let no_boundary = server
        .exchange(&request(
            "POST",
            "/post",
            &server.host(),
            &[("Content-Type", "multipart/form-data")],
            b"x",
        ))
        .await;
    assert_eq!(no_boundary.status, 400);
    // Every echo route answers OPTIONS with its methods, and other methods with 405.
    let r = server
        .exchange(&request("OPTIONS", "/post", &server.host(), &[], b""))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.must("Allow"), "POST, OPTIONS");
    let r = server
        .exchange(&request("DELETE", "/get", &server.host(), &[], b""))
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.must("Allow"), "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn range_multipart_byteranges_are_exact() {
    let server = TestServer::start().await;
    let r = server
        .get("/range/52", &[("Range", "bytes=0-2,26-28")])
        .await;
    assert_eq!(r.status, 206);
    let ct = r.must("Content-Type").to_owned();
    let boundary = ct.split("boundary=").nth(1).expect("a boundary");
    let text = r.text();
    assert_eq!(
        text.matches(&format!("--{boundary}\r\n")).count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("Content-Range: bytes 0-2/52\r\n\r\nabc\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Content-Range: bytes 26-28/52\r\n\r\nabc\r\n"),
        "{text}"
    );
    assert!(text.ends_with(&format!("--{boundary}--\r\n")), "{text}");
}

#[tokio::test]
async fn http2_carries_streams_as_data_frames_and_trailers_as_headers() {
    let server = TestServer::start().await;
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.expect("ready");
    let uri = server.url("/trailers?X-Sum=9");
    let req = http::Request::get(uri.as_str())
        .body(())
        .expect("a request");
    let (fut, _) = client.send_request(req, true).expect("send");
    let resp = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("in time")
        .expect("a response");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("data");
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let json: serde_json::Value = serde_json::from_slice(&data).expect("JSON");
    assert_eq!(json["args"]["X-Sum"], "9");
    let trailers = body.trailers().await.expect("trailers").expect("some");
    assert_eq!(trailers.get("x-sum").map(|v| v.as_bytes()), Some(&b"9"[..]));
    let mut client = client.ready().await.expect("ready");
    let uri = server.url("/sse?count=2&duration=100ms");
    let req = http::Request::get(uri.as_str())
        .body(())
        .expect("a request");
    let (fut, _) = client.send_request(req, true).expect("send");
    let resp = fut.await.expect("a response");
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"text/event-stream"[..])
    );
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        text.extend_from_slice(&chunk.expect("data"));
    }
    assert_eq!(
        String::from_utf8_lossy(&text)
            .matches("event: ping\n")
            .count(),
        2
    );
}
