//! Raw-socket tests of what ordinary clients hide: interim 1xx responses, HEAD, bodyless
//! 204/304/205, 408 closing the connection, 101/426, CORS preflights and method handling.

use crate::support::{ANY, TestServer, check, ensure, representation, request};

#[tokio::test]
async fn status_100_sends_a_real_interim_continue_then_200() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.send(&request("GET", "/status/100", &server.host(), &[], b""))
        .await;
    let first = conn.read_response(false).await;
    assert_eq!(
        first.head, "HTTP/1.1 100 Continue",
        "the interim head, exactly"
    );
    let last = conn.read_response(false).await;
    assert_eq!(last.status, 200);
    assert!(last.text().starts_with("200 "), "{}", last.text());
    // The connection stays usable after the interim + final pair.
    conn.send(&request(
        "GET",
        "/status/100?then=404",
        &server.host(),
        &[],
        b"",
    ))
    .await;
    let ex = conn.read_exchange(false).await;
    assert_eq!(ex.interim.len(), 1);
    assert_eq!(ex.interim[0].status, 100);
    assert_eq!(ex.status, 404, "?then= picks the final code");
}

#[tokio::test]
async fn status_103_sends_early_hints_with_link() {
    let server = TestServer::start().await;
    let ex = server.get("/status/103?then=201", &[]).await;
    let [hints] = ex.interim.as_slice() else {
        panic!("want one interim response, got {:?}", ex.interim)
    };
    assert_eq!(hints.status, 103);
    assert_eq!(hints.reason, "Early Hints");
    let link = hints.must("link");
    assert!(link.contains("rel=preload"), "Link: {link}");
    assert_eq!(ex.status, 201);
}

#[tokio::test]
async fn other_1xx_are_interim_then_final() {
    let server = TestServer::start().await;
    for code in [102u16, 104, 150, 199] {
        let ex = server.get(&format!("/status/{code}?then=503"), &[]).await;
        assert_eq!(ex.interim.len(), 1, "{code}");
        assert_eq!(ex.interim[0].status, code);
        assert_eq!(ex.status, 503, "final after {code}");
        assert_eq!(
            ex.header("retry-after"),
            Some("1"),
            "the final reply is dressed too"
        );
    }
    // then= must be a final code.
    let ex = server.get("/status/100?then=103", &[]).await;
    assert_eq!(ex.status, 400);
    assert!(
        ex.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("then=103")
    );
}

#[tokio::test]
async fn http10_gets_no_interim_and_closes_unless_keep_alive() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.send(b"GET /status/100 HTTP/1.0\r\n\r\n").await;
    let ex = conn.read_exchange(false).await;
    assert!(
        ex.interim.is_empty(),
        "a 1xx to an HTTP/1.0 client: {:?}",
        ex.interim
    );
    assert_eq!(ex.status, 200);
    conn.expect_eof().await;

    let mut conn = server.connect().await;
    conn.send(b"GET /status/103 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let ex = conn.read_exchange(false).await;
    assert!(ex.interim.is_empty());
    assert_eq!(ex.header("connection"), Some("keep-alive"));
    conn.send(b"GET /status/418 HTTP/1.0\r\n\r\n").await;
    let ex = conn.read_exchange(false).await;
    assert_eq!(
        ex.status, 418,
        "the kept-alive connection serves another request"
    );
    conn.expect_eof().await;
}

#[tokio::test]
async fn head_has_get_headers_and_no_body() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    for target in [
        "/status/200",
        "/status/404",
        "/status/206",
        "/codes",
        "/",
        "/codes/429",
    ] {
        conn.send(&request("GET", target, &host, &[], b"")).await;
        let get = conn.read_exchange(false).await;
        conn.send(&request("HEAD", target, &host, &[], b"")).await;
        let head = conn.read_exchange(true).await;
        assert_eq!(get.status, head.status, "{target}");
        assert_eq!(
            get.comparable_headers(),
            head.comparable_headers(),
            "HEAD {target} has GET's headers"
        );
        let cl: usize = head.must("content-length").parse().expect("a number");
        assert_eq!(
            cl,
            get.body.len(),
            "HEAD {target}: Content-Length of the GET body"
        );
        assert!(cl > 0);
    }
    // Had HEAD sent content, this response would not parse.
    conn.send(&request("GET", "/status/202", &host, &[], b""))
        .await;
    assert_eq!(conn.read_exchange(false).await.status, 202);
    assert!(conn.pending().is_empty());
}

#[tokio::test]
async fn bodyless_204_304_205() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    for code in [204u16, 304, 205] {
        // Ask for a body format explicitly: it must still not be sent.
        conn.send(&request(
            "GET",
            &format!("/status/{code}?format=json"),
            &host,
            &[],
            b"",
        ))
        .await;
        let r = conn.read_exchange(false).await;
        assert_eq!(r.status, code);
        assert!(!r.has("transfer-encoding"), "{code}");
        match code {
            205 => assert_eq!(
                r.header("content-length"),
                Some("0"),
                "205 says its emptiness"
            ),
            _ => assert!(
                !r.has("content-length"),
                "{code} has no Content-Length:\n{}",
                r.head
            ),
        }
        if code == 304 {
            assert!(r.must("etag").starts_with('"'), "304 keeps the validators");
            let lm = r.must("last-modified");
            assert!(httpdate::parse_http_date(lm).is_ok(), "Last-Modified {lm}");
        }
    }
    // If any of them had sent content, the next head would be garbage.
    conn.send(&request("GET", "/status/200", &host, &[], b""))
        .await;
    let r = conn.read_exchange(false).await;
    assert_eq!(r.status, 200);
    assert!(conn.pending().is_empty());
}

#[tokio::test]
async fn status_408_closes_the_connection() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    // Even a client asking to keep the connection sees it closed.
    conn.send(&request(
        "GET",
        "/status/408",
        &server.host(),
        &[("Connection", "keep-alive")],
        b"",
    ))
    .await;
    let r = conn.read_exchange(false).await;
    assert_eq!(r.status, 408);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(
        r.all("connection").len(),
        1,
        "one Connection field:\n{}",
        r.head
    );
    conn.expect_eof().await;
}

#[tokio::test]
async fn replies_that_close_say_so_even_with_connection_upgrade() {
    // 426 carries `Connection: upgrade`; when the server is about to close anyway, the same
    // field must also carry `close`, or a client would expect to reuse the connection.
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.send(&request(
        "GET",
        "/status/426",
        &server.host(),
        &[("Connection", "close")],
        b"",
    ))
    .await;
    let r = conn.read_exchange(false).await;
    assert_eq!(r.status, 426);
    let tokens = r.tokens("connection");
    assert!(
        tokens.iter().any(|t| t.eq_ignore_ascii_case("upgrade")),
        "{tokens:?}"
    );
    assert!(
        tokens.iter().any(|t| t.eq_ignore_ascii_case("close")),
        "{tokens:?}:\n{}",
        r.head
    );
    conn.expect_eof().await;
}

#[tokio::test]
async fn status_206_honours_range_and_416_names_the_length() {
    let server = TestServer::start().await;
    let repr = representation();
    let r = server.get("/status/206", &[]).await;
    assert_eq!(r.must("content-range"), "bytes 0-99/1024");
    assert_eq!(r.body, repr[..100]);
    let r = server.get("/status/206", &[("Range", "bytes=10-19")]).await;
    assert_eq!(r.must("content-range"), "bytes 10-19/1024");
    assert_eq!(r.text(), "klmnopqrst");
    assert_eq!(r.must("content-length"), "10");
    let r = server.get("/status/206", &[("Range", "bytes=-4")]).await;
    assert_eq!(r.must("content-range"), "bytes 1020-1023/1024");
    assert_eq!(r.body, repr[1020..]);

    let r = server
        .get("/status/206", &[("Range", "bytes=0-1,26-27")])
        .await;
    let ct = r.must("content-type");
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("Content-Type {ct}"));
    assert!(
        !r.has("content-range"),
        "a multipart 206 has no top-level Content-Range"
    );
    let body = r.text();
    let parts: Vec<&str> = body.split(&format!("--{boundary}")).collect();
    // preamble, two parts, the closing "--\r\n".
    assert_eq!(parts.len(), 4, "{body:?}");
    assert!(
        parts[1].contains("Content-Range: bytes 0-1/1024\r\n\r\nab\r\n"),
        "{:?}",
        parts[1]
    );
    assert!(
        parts[2].contains("Content-Range: bytes 26-27/1024\r\n\r\nab\r\n"),
        "{:?}",
        parts[2]
    );
    assert!(parts[3].starts_with("--"), "closing delimiter");

    let r = server.get("/status/416", &[("Range", "bytes=0-1")]).await;
    assert_eq!(r.status, 416, "{}", r.head);
    assert_eq!(r.reason, "Range Not Satisfiable");
    assert_eq!(r.must("content-range"), "bytes */1024");
    assert!(
        !r.body.starts_with(&repr[..2]),
        "416 carries no slice of the representation: {:?}",
        r.text()
    );
}

#[tokio::test]
async fn redirects_auth_retry_after_upgrade() {
    let server = TestServer::start().await;
    let host = server.host();
    for code in [301u16, 302, 303, 307, 308] {
        let r = server.get(&format!("/status/{code}"), &[]).await;
        assert_eq!(r.must("location"), "/status/200", "{code}");
    }
    let r = server.get("/status/300", &[]).await;
    assert!(r.has("location"));
    assert_eq!(
        r.all("link").len(),
        3,
        "300 lists its alternatives:\n{}",
        r.head
    );
    let r = server.get("/status/305", &[]).await;
    assert_eq!(
        r.must("location"),
        format!("http://{host}/"),
        "305 names this server as proxy"
    );

    let r = server.get("/status/401", &[]).await;
    let challenges = r.all("www-authenticate");
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(challenges[0].starts_with("Basic realm="));
    assert!(challenges[1].starts_with("Bearer realm="));
    let r = server.get("/status/407", &[]).await;
    assert!(r.must("proxy-authenticate").starts_with("Basic realm="));

    let r = server
        .exchange(&request("POST", "/status/405", &host, &[], b""))
        .await;
    let allow = r.tokens("allow");
    assert!(
        !allow.contains(&"POST".to_owned()) && allow.contains(&"GET".to_owned()),
        "{allow:?}"
    );
    assert_eq!(allow.len(), ANY.len() - 1);

    for code in [413u16, 429, 503] {
        let r = server.get(&format!("/status/{code}"), &[]).await;
        assert_eq!(
            r.header("retry-after"),
            Some("1"),
            "{code} default Retry-After"
        );
        let r = server
            .get(&format!("/status/{code}?retry_after=120"), &[])
            .await;
        assert_eq!(r.header("retry-after"), Some("120"));
        let r = server
            .get(
                &format!("/status/{code}?retry_after=Wed,%2021%20Oct%202015%2007:28:00%20GMT"),
                &[],
            )
            .await;
        assert_eq!(
            r.header("retry-after"),
            Some("Wed, 21 Oct 2015 07:28:00 GMT")
        );
    }
    let r = server.get("/status/426", &[]).await;
    assert_eq!(r.header("upgrade"), Some("websocket"));
}

#[tokio::test]
async fn bodies_by_accept() {
    let server = TestServer::start().await;
    let r = server.get("/status/504", &[]).await;
    assert_eq!(r.must("content-type"), "text/plain; charset=utf-8");
    let text = r.text();
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    assert!(text.starts_with("504 ServerTimeout"), "{text:?}");

    let r = server
        .get("/status/504", &[("Accept", "application/json")])
        .await;
    assert_eq!(r.must("content-type"), "application/json");
    let v = r.json();
    assert_eq!(v["code"], 504);
    assert_eq!(v["message"], "ServerTimeout");
    assert_eq!(v["reason"], "Gateway Timeout");

    let r = server
        .get("/status/504", &[("Accept", "application/problem+json")])
        .await;
    assert_eq!(r.must("content-type"), "application/problem+json");
    let v = r.json();
    assert_eq!(v["status"], 504);
    assert_eq!(v["title"], "ServerTimeout");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or("")
            .contains("timeout parameter"),
        "{v}"
    );

    let r = server
        .get(
            "/status/504",
            &[("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")],
        )
        .await;
    assert!(r.must("content-type").starts_with("text/html"));
    assert!(
        r.text().contains("<h1>504 ServerTimeout</h1>"),
        "{}",
        r.text()
    );

    let r = server.get("/status/200", &[("Accept", "image/png")]).await;
    assert_eq!(r.status, 406, "nothing acceptable can be produced");
    assert_eq!(r.reason, "Not Acceptable");
    assert!(r.json()["detail"].as_str().unwrap_or("").contains("Accept"));
}

#[tokio::test]
async fn options_on_every_route_gives_204_with_allow() {
    let server = TestServer::start().await;
    let host = server.host();
    let read = "GET, HEAD, OPTIONS";
    let any = ANY.join(", ");
    let cases: Vec<(&str, String)> = vec![
        ("/", read.to_owned()),
        ("/codes", read.to_owned()),
        ("/codes/404", read.to_owned()),
        ("/status/500", any.clone()),
        ("/503", any.clone()),
        ("/random/200,500-504", any.clone()),
        ("/websocket/echo", "GET, OPTIONS".to_owned()),
        ("/openapi.json", read.to_owned()),
        ("/health", read.to_owned()),
        ("/healthz", read.to_owned()),
        ("/readyz", read.to_owned()),
        ("/anything", format!("{any}, TRACE, QUERY")),
        ("/dump/request", format!("{any}, TRACE, QUERY")),
        ("*", format!("{any}, TRACE, QUERY")),
    ];
    let mut results = Vec::new();
    for (target, want) in &cases {
        let r = server
            .exchange(&request("OPTIONS", target, &host, &[], b""))
            .await;
        results.push((
            *target,
            ensure(r.status == 204, || format!("status {}", r.status))
                .and(ensure(r.header("allow") == Some(want), || {
                    format!("Allow {:?}", r.header("allow"))
                }))
                .and(ensure(!r.has("content-length"), || {
                    "Content-Length on 204".to_owned()
                }))
                .and(ensure(
                    r.header("access-control-allow-origin") == Some("*"),
                    || "no ACAO".to_owned(),
                )),
        ));
    }
    check(results, |(_, outcome)| outcome.clone());
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    let server = TestServer::start().await;
    let r = server
        .exchange(&request(
            "OPTIONS",
            "/status/429",
            &server.host(),
            &[
                ("Origin", "https://app.example"),
                ("Access-Control-Request-Method", "DELETE"),
                ("Access-Control-Request-Headers", "x-trace-id, content-type"),
            ],
            b"",
        ))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let methods = r.tokens("access-control-allow-methods");
    assert!(methods.contains(&"DELETE".to_owned()), "{methods:?}");
    let headers = r.tokens("access-control-allow-headers");
    assert!(headers.contains(&"x-trace-id".to_owned()), "{headers:?}");
    assert!(r.must("access-control-max-age").parse::<u32>().is_ok());
    assert!(r.has("allow"));
    // A plain OPTIONS is not a preflight: no preflight answers.
    let r = server
        .exchange(&request("OPTIONS", "/status/429", &server.host(), &[], b""))
        .await;
    assert!(!r.has("access-control-allow-methods"));
}

#[tokio::test]
async fn every_reply_carries_cors_headers() {
    let server = TestServer::start().await;
    let host = server.host();
    let targets: [(&str, &str); 7] = [
        ("GET", "/status/429"),
        ("GET", "/nope/nope"),
        ("POST", "/codes"),
        ("FOO", "/status/200"),
        ("GET", "/status/abc"),
        ("GET", "/"),
        ("HEAD", "/status/301"),
    ];
    let mut results = Vec::new();
    for (method, target) in targets {
        let r = server
            .exchange(&request(method, target, &host, &[], b""))
            .await;
        let exposed = r.tokens("access-control-expose-headers");
        results.push((
            format!("{method} {target} -> {}", r.status),
            ensure(r.header("access-control-allow-origin") == Some("*"), || {
                "no ACAO".to_owned()
            })
            .and(ensure(
                ["Retry-After", "Location", "Content-Range"]
                    .iter()
                    .all(|h| exposed.iter().any(|e| e == h)),
                || format!("exposed: {exposed:?}"),
            )),
        ));
    }
    check(results, |(_, outcome)| outcome.clone());
}

#[tokio::test]
async fn unknown_methods_501_disallowed_methods_405() {
    let server = TestServer::start().await;
    let host = server.host();
    for method in ["FOO", "PROPFIND", "BREW"] {
        let r = server
            .exchange(&request(method, "/status/200", &host, &[], b""))
            .await;
        assert_eq!(r.status, 501, "{method}");
        assert_eq!(r.reason, "Not Implemented");
        assert!(r.json()["detail"].as_str().unwrap_or("").contains(method));
    }
    for (method, target, allow) in [
        ("POST", "/codes", "GET, HEAD, OPTIONS"),
        ("DELETE", "/", "GET, HEAD, OPTIONS"),
        ("PUT", "/websocket/echo", "GET, OPTIONS"),
    ] {
        let r = server
            .exchange(&request(method, target, &host, &[], b""))
            .await;
        assert_eq!(r.status, 405, "{method} {target}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {target}");
    }
    // Every implemented method reaches /status/{code}.
    for method in ANY.iter().filter(|m| **m != "OPTIONS") {
        let r = server
            .exchange(&request(method, "/status/418", &host, &[], b""))
            .await;
        assert_eq!(r.status, 418, "{method}");
    }
}

#[tokio::test]
async fn websocket_101_needs_a_real_upgrade() {
    let server = TestServer::start().await;
    let host = server.host();
    for target in ["/status/101", "/websocket/echo"] {
        let r = server.get(target, &[]).await;
        assert_eq!(r.status, 426, "{target} without Upgrade");
        assert_eq!(r.header("upgrade"), Some("websocket"));
        let r = server
            .get(target, &[("Connection", "Upgrade"), ("Upgrade", "h2c")])
            .await;
        assert_eq!(
            r.status, 426,
            "{target} with an upgrade statuslab does not speak"
        );
        assert!(r.json()["detail"].as_str().unwrap_or("").contains("h2c"));
    }
    // The RFC 6455 §1.3 sample handshake gets the sample answer.
    let mut conn = server.connect().await;
    conn.send(&request(
        "GET",
        "/status/101",
        &host,
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    ))
    .await;
    let r = conn.read_response(false).await;
    assert_eq!(
        r.head.lines().next(),
        Some("HTTP/1.1 101 Switching Protocols")
    );
    assert_eq!(
        r.must("sec-websocket-accept"),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(r.must("upgrade"), "websocket");
    assert!(!r.has("content-length"), "101 has no Content-Length");
    // A masked text frame "hi" comes back unmasked.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend(b"hi".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    conn.send(&frame).await;
    let mut echoed = Vec::new();
    while echoed.len() < 4 {
        let bytes = conn.read_some().await;
        assert!(!bytes.is_empty(), "the echo closed early");
        echoed.extend(bytes);
    }
    assert_eq!(echoed, [0x81, 2, b'h', b'i']);
}

/// A head read takes at most 16 KiB at a time, and a read that fills its window leaves the
/// socket marked readable (only a short read means it is drained): a 40 KiB head in one
/// write, then 64 pipelined requests (~70 KiB) in one write, are all answered, in order, on
/// one connection.
#[tokio::test]
async fn heads_and_pipelined_bursts_larger_than_one_read_are_all_answered() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let big = "b".repeat(40 * 1024);
    conn.send(&request(
        "GET",
        "/status/202",
        &host,
        &[("X-Big", &big)],
        b"",
    ))
    .await;
    assert_eq!(
        conn.read_response(false).await.status,
        202,
        "the 40 KiB head"
    );

    let pad = "p".repeat(1000);
    let mut burst = Vec::new();
    let codes: Vec<u16> = (0..64).map(|i| 200 + (i % 7)).collect();
    for code in &codes {
        burst.extend(request(
            "GET",
            &format!("/status/{code}"),
            &host,
            &[("X-Pad", &pad)],
            b"",
        ));
    }
    assert!(burst.len() > 64 * 1024, "{} bytes", burst.len());
    conn.send(&burst).await;
    for (i, code) in codes.iter().enumerate() {
        let got = conn.read_response(false).await.status;
        assert_eq!(got, *code, "pipelined request {i}");
    }
    // The connection still reads what comes after the burst.
    conn.send(&request("GET", "/status/418", &host, &[], b""))
        .await;
    assert_eq!(conn.read_response(false).await.status, 418);
}

/// A connection reuses one request's header map for the next: each request on it sees its
/// own fields only, after a head with many fields (past what a connection keeps) as after a
/// plain one.
#[tokio::test]
async fn each_request_on_a_connection_sees_only_its_own_fields() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let many: Vec<(String, String)> = (0..40)
        .map(|i| (format!("X-Many-{i}"), i.to_string()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (&**n, &**v)).collect();
    let heads: [&[(&str, &str)]; 4] = [
        &[("X-First", "1")],
        &[("X-Second", "2")],
        &many,
        &[("X-Fourth", "4")],
    ];
    for (i, fields) in heads.iter().enumerate() {
        conn.send(&request("GET", "/headers", &host, fields, b""))
            .await;
        let resp = conn.read_response(false).await;
        assert_eq!(resp.status, 200, "request {i}");
        let echoed: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
        let names: Vec<String> = echoed["headers"]
            .as_object()
            .expect("an object of fields")
            .keys()
            .map(|k| k.to_ascii_lowercase())
            .filter(|k| k.starts_with("x-"))
            .collect();
        let mut want: Vec<String> = fields.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        let mut got = names.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "request {i} echoed {names:?}");
    }
}

/// A connection memoizes the URI of a target it is sent repeatedly: every request is
/// answered for its own target, repeated or not, including targets alike in length and
/// ending (answered at once, as `/status/418`, or by a handler, as `/anything`).
#[tokio::test]
async fn repeated_and_alike_targets_are_each_answered_for_themselves() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let (a, b) = ("/status/418", "/xtatus/418");
    let expect = |target: &str| if target == a { 418 } else { 404 };
    for (i, target) in [a, b, a, a, a, b, b, a, b, a].iter().enumerate() {
        conn.send(&request("GET", target, &host, &[], b"")).await;
        let resp = conn.read_response(false).await;
        assert_eq!(resp.status, expect(target), "request {i} for {target}");
    }
    let (a, b) = ("/anything/aa-12345678", "/anything/bb-12345678");
    for (i, target) in [a, b, a, a, b, b, "/anything/aa-12345678?q=1", a]
        .iter()
        .enumerate()
    {
        conn.send(&request("GET", target, &host, &[], b"")).await;
        let resp = conn.read_response(false).await;
        assert_eq!(resp.status, 200, "request {i}");
        let echoed: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
        let url = echoed["url"].as_str().expect("a url");
        assert!(
            url.ends_with(target),
            "request {i} for {target} echoed {url}"
        );
    }
}

/// A connection checks the `Host` of each request, though it keeps the last one found valid:
/// after valid requests, a value that extends the kept one, or a second `Host`, is refused.
#[tokio::test]
async fn hosts_are_checked_on_every_request_of_a_connection() {
    let server = TestServer::start().await;
    let host = server.host();
    let extended = [
        format!("{host}/x"),
        format!("{host}@evil"),
        format!("{host}:1"),
    ];
    for (i, bad) in extended.iter().map(Some).chain([None]).enumerate() {
        let mut conn = server.connect().await;
        for _ in 0..3 {
            conn.send(&request("GET", "/status/418", &host, &[], b""))
                .await;
            assert_eq!(conn.read_response(false).await.status, 418, "case {i}");
        }
        let head = match bad {
            Some(bad) => request("GET", "/status/418", bad, &[], b""),
            None => request("GET", "/status/418", &host, &[("Host", &host)], b""),
        };
        conn.send(&head).await;
        assert_eq!(
            conn.read_response(false).await.status,
            400,
            "case {i}: {bad:?}"
        );
    }
}

/// The fields a `/headers` or `/anything` reply echoes, names lowercased, `x-` ones only.
fn echoed_x_fields(resp: &crate::support::Response) -> Vec<(String, String)> {
    let echoed: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
    let mut fields: Vec<(String, String)> = echoed["headers"]
        .as_object()
        .expect("an object of fields")
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned()))
        .filter(|(k, _)| k.starts_with("x-"))
        .collect();
    fields.sort();
    fields
}

/// A connection keeps the field lines of a head, and lends their map to the heads that
/// repeat them byte for byte: each request still gets its own target, method and version,
/// its content, and the checks its fields call for (Host on HTTP/1.1), whether its lines are
/// the kept ones, others, or alternate; one by one and pipelined.
#[tokio::test]
async fn repeated_field_lines_serve_each_request_as_its_own() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let (a, b) = ([("X-A", "1")], [("X-B", "2")]);
    let want = |fields: &[(&str, &str)]| -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
            .collect()
    };
    // Kept from the second head on; then other lines, alternating, and back.
    let order: [(&str, &[(&str, &str)]); 12] = [
        ("/headers", &a),
        ("/headers", &a),
        ("/anything/one", &a),
        ("/headers", &a),
        ("/headers", &b),
        ("/anything/two", &a),
        ("/headers", &b),
        ("/headers", &a),
        ("/headers", &b),
        ("/headers", &b),
        ("/headers", &b),
        ("/anything/three", &a),
    ];
    for (i, (target, fields)) in order.iter().enumerate() {
        conn.send(&request("GET", target, &host, fields, b"")).await;
        let resp = conn.read_response(false).await;
        assert_eq!(resp.status, 200, "request {i}");
        assert_eq!(echoed_x_fields(&resp), want(fields), "request {i}");
        if target.starts_with("/anything") {
            let echoed: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
            assert!(echoed["url"].as_str().is_some_and(|u| u.ends_with(target)));
        }
    }
    // Pipelined: one write of alike heads, each with its own content.
    let mut batch = Vec::new();
    for word in ["alpha", "bravo", "delta"] {
        batch.extend(request("POST", "/anything", &host, &a, word.as_bytes()));
    }
    for _ in 0..2 {
        conn.send(&batch).await;
        for word in ["alpha", "bravo", "delta"] {
            let resp = conn.read_response(false).await;
            assert_eq!(resp.status, 200);
            let echoed: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
            assert_eq!(echoed["data"], word);
            assert_eq!(echoed_x_fields(&resp), want(&a));
        }
    }
    // A held reply between kept heads: the connection lets go of what it kept, and goes on.
    conn.send(&request("GET", "/status/200?sleep=100", &host, &a, b""))
        .await;
    assert_eq!(conn.read_response(false).await.status, 200);
    for _ in 0..3 {
        conn.send(&request("GET", "/headers", &host, &a, b"")).await;
        let resp = conn.read_response(false).await;
        assert_eq!(echoed_x_fields(&resp), want(&a));
    }

    // Lines without Host, kept while HTTP/1.0 may leave it out: HTTP/1.1 with the same lines
    // still needs one.
    let mut conn = server.connect().await;
    let lines = "Connection: keep-alive\r\nX-A: 1\r\n\r\n";
    for i in 0..3 {
        conn.send(format!("GET /status/418 HTTP/1.0\r\n{lines}").as_bytes())
            .await;
        assert_eq!(conn.read_response(false).await.status, 418, "HTTP/1.0 {i}");
    }
    conn.send(format!("GET /status/418 HTTP/1.1\r\n{lines}").as_bytes())
        .await;
    assert_eq!(conn.read_response(false).await.status, 400);

    // An HTTP/1.0 head's kept lines with `Connection: keep-alive` keep the connection open;
    // the same lines on HTTP/1.1 too, and without it, HTTP/1.0 closes.
    let mut conn = server.connect().await;
    let lines = format!("Host: {host}\r\nConnection: keep-alive\r\n\r\n");
    for version in ["1.0", "1.0", "1.0", "1.1", "1.0"] {
        conn.send(format!("GET /status/418 HTTP/{version}\r\n{lines}").as_bytes())
            .await;
        assert_eq!(
            conn.read_response(false).await.status,
            418,
            "HTTP/{version}"
        );
    }
    conn.send(format!("GET /status/418 HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await;
    assert_eq!(conn.read_response(false).await.status, 418);
    conn.expect_eof().await;
}

/// The `Date` of the reply to `resp`, and the time `before` floored to its second: a reply
/// made at or after `before` is dated no earlier.
fn dated_since(resp: &crate::support::Response, before: std::time::SystemTime) -> bool {
    let date = resp
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("date"))
        .map(|(_, v)| httpdate::parse_http_date(v).expect("an IMF-fixdate"))
        .expect("a Date");
    let secs = before
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    date >= std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// A reply made at once is dated when it is made: after content that took seconds to
/// arrive, and after a held reply pipelined before it (not when the head arrived).
#[tokio::test]
async fn replies_are_dated_when_made_after_slow_content_or_a_held_reply() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let mut head = request("GET", "/status/200", &host, &[], b"hello");
    head.truncate(head.len() - 5);
    conn.send(&head).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let sent = std::time::SystemTime::now();
    conn.send(b"hello").await;
    let resp = conn.read_response(false).await;
    assert_eq!(resp.status, 200);
    assert!(
        dated_since(&resp, sent),
        "dated before its content came: {}",
        resp.head
    );

    let mut both = request("GET", "/status/200?sleep=2200", &host, &[], b"");
    both.extend(request("GET", "/status/204", &host, &[], b""));
    let asked = std::time::SystemTime::now();
    conn.send(&both).await;
    assert_eq!(conn.read_response(false).await.status, 200);
    let resp = conn.read_response(false).await;
    assert_eq!(resp.status, 204);
    let held_until = asked + std::time::Duration::from_millis(2_200);
    assert!(
        dated_since(&resp, held_until),
        "dated before the held reply: {}",
        resp.head
    );
}
