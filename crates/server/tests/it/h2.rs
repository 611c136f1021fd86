//! HTTP/2 with prior knowledge (h2c) on the same port, through the h2 crate's client:
//! every code, interim 1xx via `poll_informational`, framing, HEAD and uploads.

use crate::support::{READ_TIMEOUT, TestServer, check, ensure};
use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, Method, Request, StatusCode};
use statuslab_catalog::{BodyRule, Need, Status};
use std::collections::BTreeSet;

/// One HTTP/2 exchange: interim responses, then the final head and its data.
#[derive(Debug)]
struct H2Reply {
    interim: Vec<(StatusCode, HeaderMap)>,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Whether the final HEADERS frame ended the stream (no DATA at all).
    ended_with_headers: bool,
}

impl H2Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Connects and completes the h2 handshake with prior knowledge.
async fn connect(server: &TestServer) -> SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (client, conn) = h2::client::handshake(tcp)
        .await
        .expect("h2 handshake (prior knowledge)");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

async fn send(
    client: &mut SendRequest<Bytes>,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> H2Reply {
    tokio::time::timeout(READ_TIMEOUT, send_inner(client, method, uri, headers, body))
        .await
        .unwrap_or_else(|_| panic!("no h2 response to {uri} within {READ_TIMEOUT:?}"))
}

async fn send_inner(
    client: &mut SendRequest<Bytes>,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> H2Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(()).expect("a request");
    let ready = client.clone().ready().await.expect("stream capacity");
    *client = ready;
    let (fut, mut stream) = client
        .send_request(req, body.is_none())
        .expect("send_request");
    if let Some(b) = body {
        stream
            .send_data(Bytes::copy_from_slice(b), true)
            .expect("send body");
    }
    collect(fut, Vec::new()).await
}

/// Sends a request with `Expect: 100-continue` (and its `Content-Length`) and holds the content
/// back until the server's first interim response, which must be a 100: a server that sends
/// no 100 (or answers at once) fails the test. Returns every interim response, the 100 first.
async fn send_after_continue(
    client: &mut SendRequest<Bytes>,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> H2Reply {
    let (mut fut, mut stream) = open_expecting_continue(client, method, uri, headers, body).await;
    let first = next_interim(&mut fut, uri).await;
    stream
        .send_data(Bytes::copy_from_slice(body), true)
        .expect("send body");
    tokio::time::timeout(READ_TIMEOUT, collect(fut, vec![first]))
        .await
        .unwrap_or_else(|_| panic!("no h2 response to {uri} within {READ_TIMEOUT:?}"))
}

/// Opens a stream with `Expect: 100-continue` and `Content-Length`, its content not yet sent.
async fn open_expecting_continue(
    client: &mut SendRequest<Bytes>,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("expect", "100-continue")
        .header("content-length", body.len().to_string());
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(()).expect("a request");
    let ready = tokio::time::timeout(READ_TIMEOUT, client.clone().ready())
        .await
        .expect("stream capacity in time")
        .expect("stream capacity");
    *client = ready;
    client.send_request(req, false).expect("send_request")
}

/// Waits for the stream's next interim response and requires it to be `100 Continue`.
async fn next_interim(fut: &mut h2::client::ResponseFuture, uri: &str) -> (StatusCode, HeaderMap) {
    let info = tokio::time::timeout(
        READ_TIMEOUT,
        std::future::poll_fn(|cx| fut.poll_informational(cx)),
    )
    .await
    .unwrap_or_else(|_| panic!("no 100 Continue for {uri} within {READ_TIMEOUT:?}"))
    .unwrap_or_else(|| panic!("{uri}: the final response came without a 100 Continue first"))
    .expect("an informational response");
    assert_eq!(
        info.status(),
        StatusCode::CONTINUE,
        "{uri}: the first interim response"
    );
    (info.status(), info.headers().clone())
}

/// Reads the rest of a stream: further interim responses (after `interim`), the final head
/// and its data.
async fn collect(
    mut fut: h2::client::ResponseFuture,
    mut interim: Vec<(StatusCode, HeaderMap)>,
) -> H2Reply {
    while let Some(info) = std::future::poll_fn(|cx| fut.poll_informational(cx)).await {
        let info = info.expect("an informational response");
        interim.push((info.status(), info.headers().clone()));
    }
    let resp = fut.await.expect("a final response");
    let (parts, mut recv) = resp.into_parts();
    let ended_with_headers = recv.is_end_stream();
    let mut body = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.expect("data");
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    H2Reply {
        interim,
        status: parts.status,
        headers: parts.headers,
        body,
        ended_with_headers,
    }
}

fn check_code(code: u16, method: &str, r: &H2Reply) -> Result<(), String> {
    let s = Status::new(code).expect("100-599");
    let got = r.status.as_u16();
    if code == 101 {
        // HTTP/2 has no 101 (RFC 9113 §8.6).
        return ensure(got == 426, || format!("101 over h2 gave {got}"));
    }
    let (final_code, rules) = if s.is_informational() {
        ensure(
            r.interim.len() == 1 && r.interim[0].0.as_u16() == code,
            || format!("interim {:?}", r.interim),
        )?;
        for rule in s.wire().headers.iter().filter(|h| h.need != Need::Optional) {
            ensure(r.interim[0].1.contains_key(rule.name), || {
                format!("interim {code} lacks {}", rule.name)
            })?;
        }
        (200, Status::new(200).expect("200"))
    } else {
        ensure(r.interim.is_empty(), || {
            format!("unexpected interim {:?}", r.interim)
        })?;
        (code, s)
    };
    ensure(got == final_code, || format!("status {got}"))?;
    ensure(r.headers.contains_key("date"), || "no date".to_owned())?;
    ensure(r.header("access-control-allow-origin") == Some("*"), || {
        "no ACAO".to_owned()
    })?;
    for rule in rules
        .wire()
        .headers
        .iter()
        .filter(|h| h.need != Need::Optional)
    {
        // Connection-specific fields are forbidden in HTTP/2 (RFC 9113 §8.2.2).
        let forbidden = rule.name == "Connection" || rule.name == "Upgrade";
        ensure(r.headers.contains_key(rule.name) != forbidden, || {
            format!(
                "{} {}",
                rule.name,
                if forbidden { "sent over h2" } else { "missing" }
            )
        })?;
    }
    let cl: Option<usize> = r.header("content-length").and_then(|v| v.parse().ok());
    match rules.wire().body {
        BodyRule::Forbidden => {
            ensure(cl.is_none(), || {
                "content-length on a bodyless code".to_owned()
            })?;
            ensure(r.body.is_empty() && r.ended_with_headers, || {
                "data frames sent".to_owned()
            })?;
        }
        BodyRule::Empty => {
            ensure(cl == Some(0), || format!("content-length {cl:?}"))?;
            ensure(r.body.is_empty(), || "content on 205".to_owned())?;
        }
        BodyRule::Allowed => {
            let cl = cl.ok_or("no content-length")?;
            if method == "HEAD" {
                ensure(r.body.is_empty() && cl > 0, || {
                    "HEAD carried data".to_owned()
                })?;
            } else {
                ensure(r.body.len() == cl && cl > 0, || {
                    format!("{} bytes, content-length {cl}", r.body.len())
                })?;
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_code_over_h2c_prior_knowledge() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    let mut results = Vec::new();
    for code in 100..=599u16 {
        for method in [Method::GET, Method::HEAD] {
            let uri = server.url(&format!("/status/{code}"));
            let r = send(&mut client, method.clone(), &uri, &[], None).await;
            results.push((
                code,
                method.to_string(),
                check_code(code, method.as_str(), &r),
            ));
        }
    }
    check(results, |(_, _, outcome)| outcome.clone());
}

#[tokio::test]
async fn interim_1xx_over_h2() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    let r = send(
        &mut client,
        Method::GET,
        &server.url("/status/103?then=404"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.interim.len(), 1, "{r:?}");
    assert_eq!(r.interim[0].0, StatusCode::EARLY_HINTS);
    let link = r.interim[0]
        .1
        .get("link")
        .expect("Link on 103")
        .to_str()
        .expect("text");
    assert!(link.contains("rel=preload"), "{link}");
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(
        &mut client,
        Method::GET,
        &server.url("/status/100"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.interim.len(), 1);
    assert_eq!(r.interim[0].0, StatusCode::CONTINUE);
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn h2_uploads_and_expect_continue() {
    let server = TestServer::start_with(|c| c.max_body = 1000).await;
    let mut client = connect(&server).await;
    let r = send(
        &mut client,
        Method::PUT,
        &server.url("/status/201"),
        &[],
        Some(&[b'x'; 500]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.header("location").is_some());
    // The content is held back until the server says 100: exactly one 100, then the 200.
    let r = send_after_continue(
        &mut client,
        Method::POST,
        &server.url("/status/200"),
        &[],
        b"hi",
    )
    .await;
    let interim: Vec<u16> = r.interim.iter().map(|(s, _)| s.as_u16()).collect();
    assert_eq!(interim, [100], "one 100 Continue before the final answer");
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &mut client,
        Method::POST,
        &server.url("/status/200"),
        &[("content-length", "2000")],
        Some(&[b'y'; 2000]),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Limits and errors leave the connection usable.
    let r = send(
        &mut client,
        Method::GET,
        &server.url("/status/429"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn h2_expect_continue_gets_100_before_the_body_is_sent() {
    let server = TestServer::start().await;
    let client = connect(&server).await;
    let mut client = client.ready().await.expect("ready");
    let req = Request::builder()
        .method(Method::PUT)
        .uri(server.url("/status/201"))
        .header("expect", "100-continue")
        .header("content-length", "5")
        .body(())
        .expect("a request");
    let (mut fut, mut stream) = client.send_request(req, false).expect("send_request");
    // The body is held back until the server says 100.
    let info = tokio::time::timeout(
        READ_TIMEOUT,
        std::future::poll_fn(|cx| fut.poll_informational(cx)),
    )
    .await
    .expect("a 100 in time")
    .expect("an informational response")
    .expect("not an error");
    assert_eq!(info.status(), StatusCode::CONTINUE);
    stream
        .send_data(Bytes::from_static(b"hello"), true)
        .expect("send body");
    let r = tokio::time::timeout(READ_TIMEOUT, collect(fut, Vec::new()))
        .await
        .expect("in time");
    assert!(r.interim.is_empty(), "a second interim: {:?}", r.interim);
    assert_eq!(r.status, StatusCode::CREATED);

    // An upload to /status/100 gets exactly one 100 (the one that asked for the content), not a
    // second one before the final answer.
    let r = send_after_continue(
        &mut client,
        Method::PUT,
        &server.url("/status/100?then=202&header=Date:Wed,%2021%20Oct%202015%2007:28:00%20GMT"),
        &[],
        b"abc",
    )
    .await;
    let interim: Vec<u16> = r.interim.iter().map(|(s, _)| s.as_u16()).collect();
    assert_eq!(interim, [100], "exactly one 100 before the 202");
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let dates: Vec<_> = r.headers.get_all("date").iter().collect();
    assert_eq!(dates, ["Wed, 21 Oct 2015 07:28:00 GMT"], "one Date over h2");
}

/// Eight codes for eight concurrent streams.
const EIGHT: [u16; 8] = [200, 201, 202, 204, 404, 418, 500, 503];

/// Served one after another, eight streams of `sleep=1s` would take at least 8 s.
const SERIAL: std::time::Duration = std::time::Duration::from_secs(8);

#[tokio::test]
async fn h2_concurrent_delayed_streams_and_routes() {
    let server = TestServer::start().await;
    let client = connect(&server).await;
    // Eight streams on one connection, each asking for a 1 s delay: served concurrently they
    // take about 1 s; one after another, at least 8 s. Half of that is a wide margin both ways.
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for code in EIGHT {
        let mut c = client.clone();
        let uri = server.url(&format!("/status/{code}?sleep=1s"));
        tasks.push(tokio::spawn(async move {
            (
                code,
                send(&mut c, Method::GET, &uri, &[], None)
                    .await
                    .status
                    .as_u16(),
            )
        }));
    }
    for t in tasks {
        let (want, got) = t.await.expect("task");
        assert_eq!(got, want);
    }
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(1),
        "each stream slept 1 s, yet all were answered after {took:?}"
    );
    assert!(
        took < SERIAL / 2,
        "8 streams of 1 s took {took:?} on one connection: not served concurrently"
    );
    let mut client = client;
    let r = send(
        &mut client,
        Method::OPTIONS,
        &server.url("/codes"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    let r = send(&mut client, Method::POST, &server.url("/codes"), &[], None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = send(
        &mut client,
        Method::GET,
        &server.url("/status/302?location=http://evil.example/"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "no open redirect over h2 either"
    );
    let r = send(
        &mut client,
        Method::GET,
        &server.url("/status/206"),
        &[("range", "bytes=26-28")],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    let r305 = send(
        &mut client,
        Method::GET,
        &server.url("/status/305"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        r305.header("location").map(str::to_owned),
        Some(format!("http://{}/", server.host())),
        "305 names this server, from :authority"
    );
    assert_eq!(r.header("content-range"), Some("bytes 26-28/1024"));
    assert_eq!(r.body, b"abc");
}

#[tokio::test]
async fn h2_targets_past_max_uri_get_414_as_on_http1() {
    let server = TestServer::start_with(|c| c.max_uri = 1024).await;
    let mut client = connect(&server).await;
    let long = format!("{}/status/200?pad={}", server.url(""), "x".repeat(2000));
    let r = send(&mut client, Method::GET, &long, &[], None).await;
    assert_eq!(r.status, 414, "{r:?}");
    let fits = format!("{}/status/200?pad={}", server.url(""), "x".repeat(900));
    let r = send(&mut client, Method::GET, &fits, &[], None).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// Server-side evidence that the streams of one connection are in flight at the same time:
/// with `--max-in-flight 8`, eight uploads each hold an in-flight slot from admission (their
/// `100 Continue` says they were admitted) until answered, so a ninth request is shed with 503
/// while they wait; then all eight, each sleeping 1 s, finish in well under the 8 s a serial
/// server would need.
#[tokio::test]
async fn h2_streams_of_one_connection_are_in_flight_together() {
    let server = TestServer::start_with(|c| c.max_in_flight = Some(EIGHT.len())).await;
    let mut client = connect(&server).await;
    let mut held = Vec::new();
    for code in EIGHT {
        let uri = server.url(&format!("/status/{code}?sleep=1s"));
        let (mut fut, stream) =
            open_expecting_continue(&mut client, Method::PUT, &uri, &[], b"x").await;
        let first = next_interim(&mut fut, &uri).await;
        held.push((code, fut, stream, first));
    }
    // All eight admitted and none answered: the server holds eight slots at once.
    let r = server.get("/status/200", &[]).await;
    assert_eq!(
        r.status, 503,
        "a ninth request while eight h2 streams are in flight:\n{}",
        r.head
    );
    assert!(r.text().contains("--max-in-flight"), "{}", r.text());
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for (code, fut, mut stream, first) in held {
        stream
            .send_data(Bytes::from_static(b"x"), true)
            .expect("send body");
        tasks.push(tokio::spawn(async move {
            let r = tokio::time::timeout(READ_TIMEOUT, collect(fut, vec![first]))
                .await
                .expect("an answer in time");
            (code, r.status.as_u16())
        }));
    }
    for t in tasks {
        let (want, got) = t.await.expect("task");
        assert_eq!(got, want);
    }
    let took = started.elapsed();
    assert!(
        took < SERIAL / 2,
        "8 admitted streams of 1 s took {took:?}: not served concurrently"
    );
    // Every slot was given back.
    assert_eq!(server.get("/status/200", &[]).await.status, 200);
}

/// Resources, jobs and sequences answer over HTTP/2 as over HTTP/1.1: 201 + ETag, 304, 204,
/// 410; 202 then 303 to the result; a sequence's 503 then 200.
#[tokio::test]
async fn stateful_routes_over_h2c() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    let doc = server.url("/resources/doc");

    let r = send(
        &mut client,
        Method::PUT,
        &doc,
        &[("content-type", "text/plain")],
        Some(b"hello"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let etag = r.header("etag").expect("an ETag on 201").to_owned();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "a strong, quoted ETag: {etag}"
    );

    let r = send(&mut client, Method::GET, &doc, &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body, b"hello");
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let r = send(
        &mut client,
        Method::GET,
        &doc,
        &[("if-none-match", &etag)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{r:?}");
    assert!(
        r.body.is_empty() && r.ended_with_headers,
        "no content on 304: {r:?}"
    );
    assert_eq!(
        r.header("etag"),
        Some(etag.as_str()),
        "304 keeps the validator"
    );

    let r = send(&mut client, Method::DELETE, &doc, &[], None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert!(r.body.is_empty() && r.ended_with_headers, "{r:?}");
    let r = send(&mut client, Method::GET, &doc, &[], None).await;
    assert_eq!(r.status, StatusCode::GONE, "{r:?}");

    // A job: 202 with a monitor, then 303 to its result once done.
    let r = send(
        &mut client,
        Method::POST,
        &server.url("/jobs"),
        &[("content-type", "application/json")],
        Some(br#"{"duration":"300ms","result":{"status":201,"body":{"x":1}}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    let monitor = r.header("location").expect("a monitor").to_owned();
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    let done = loop {
        let r = send(&mut client, Method::GET, &server.url(&monitor), &[], None).await;
        match r.status {
            StatusCode::SEE_OTHER => break r,
            StatusCode::OK => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "a 300 ms job still running after {READ_TIMEOUT:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => panic!("the monitor answered {other}: {r:?}"),
        }
    };
    let result = done.header("location").expect("303 names the result");
    assert_eq!(result, format!("{monitor}/result"));
    let r = send(&mut client, Method::GET, &server.url(result), &[], None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).expect("JSON"),
        serde_json::json!({"x":1})
    );

    // A sequence advances per request on the stream's connection too.
    let seq = server.url("/sequence/h2/503,200");
    let r = send(&mut client, Method::GET, &seq, &[], None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert_eq!(r.header("sequence-step"), Some("1/2"));
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = send(&mut client, Method::GET, &seq, &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("sequence-step"), Some("2/2"));
}

/// `--max-h2-streams 2` as the h2 client sees it: the server's SETTINGS say
/// MAX_CONCURRENT_STREAMS = 2, and a third request while two streams are open is queued by the
/// client (not sent) until one of them ends; then it is served.
#[tokio::test]
async fn max_h2_streams_is_advertised_and_a_third_request_waits() {
    let server = TestServer::start_with(|c| c.max_h2_streams = 2).await;
    let mut client = connect(&server).await;
    // One exchange: the server's SETTINGS (sent first) has been read by then.
    let r = send(
        &mut client,
        Method::GET,
        &server.url("/status/204"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        client.current_max_send_streams(),
        2,
        "SETTINGS_MAX_CONCURRENT_STREAMS as the client received it"
    );
    // Two open streams, admitted (each got its 100) and waiting for their content.
    let mut held = Vec::new();
    for code in [201u16, 202] {
        let uri = server.url(&format!("/status/{code}"));
        let (mut fut, stream) =
            open_expecting_continue(&mut client, Method::PUT, &uri, &[], b"x").await;
        let first = next_interim(&mut fut, &uri).await;
        held.push((code, fut, stream, first));
    }
    let third_req = Request::get(server.url("/status/200"))
        .body(())
        .expect("a request");
    client = tokio::time::timeout(READ_TIMEOUT, client.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    let mut third = client
        .send_request(third_req, true)
        .expect("send_request")
        .0;
    // Not answered while both streams stay open: h2 holds it back (RFC 9113 §5.1.2).
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut third).await;
    assert!(
        early.is_err(),
        "a third stream was answered while two were open under max 2: {early:?}"
    );
    for (code, fut, mut stream, first) in held {
        stream
            .send_data(Bytes::from_static(b"x"), true)
            .expect("send body");
        let r = tokio::time::timeout(READ_TIMEOUT, collect(fut, vec![first]))
            .await
            .expect("in time");
        assert_eq!(r.status.as_u16(), code);
    }
    let r = tokio::time::timeout(READ_TIMEOUT, third)
        .await
        .expect("the queued stream is served once a slot is free")
        .expect("a response");
    assert_eq!(r.status(), StatusCode::OK);
}

/// A raw HTTP/2 frame: type, flags, stream id, payload.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small frame");
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK string literal without Huffman coding (short strings only).
fn hpack_str(out: &mut Vec<u8>, s: &str) {
    out.push(
        u8::try_from(s.len())
            .ok()
            .filter(|&n| n < 127)
            .expect("short"),
    );
    out.extend_from_slice(s.as_bytes());
}

/// A request header block, literal fields without indexing: `:method` (GET or POST, static
/// entries 2 and 3), `:scheme http` (6), `:path` (name 4), `:authority` (name 1) and, for an
/// upload, `content-length` (name 28).
fn request_block(method: &str, path: &str, authority: &str, length: Option<usize>) -> Vec<u8> {
    let mut b = vec![if method == "POST" { 0x83 } else { 0x82 }, 0x86];
    b.push(0x04);
    hpack_str(&mut b, path);
    b.push(0x01);
    hpack_str(&mut b, authority);
    if let Some(n) = length {
        b.extend([0x0f, 28 - 15]);
        hpack_str(&mut b, &n.to_string());
    }
    b
}

async fn read_frame(tcp: &mut tokio::net::TcpStream) -> Frame {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 9];
    tokio::time::timeout(READ_TIMEOUT, tcp.read_exact(&mut head))
        .await
        .expect("a frame in time")
        .expect("a frame header");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    tokio::time::timeout(READ_TIMEOUT, tcp.read_exact(&mut payload))
        .await
        .expect("a payload in time")
        .expect("a frame payload");
    Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    }
}

/// `--max-h2-streams 2` on the wire, against a client that ignores the limit: the server's
/// SETTINGS carry MAX_CONCURRENT_STREAMS = 2; with streams 1 and 3 open (uploads whose content
/// has not been sent), stream 5 is refused with RST_STREAM(REFUSED_STREAM) — a stream error, so
/// the connection lives on and streams 1 and 3 are answered once their content arrives.
#[tokio::test]
async fn a_stream_past_max_h2_streams_is_refused() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|c| c.max_h2_streams = 2).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    tcp.write_all(&frame(SETTINGS, 0, 0, &[]))
        .await
        .expect("settings");
    let settings = loop {
        let f = read_frame(&mut tcp).await;
        if f.kind == SETTINGS && f.flags & ACK == 0 {
            break f;
        }
    };
    let max_streams = settings
        .payload
        .chunks_exact(6)
        .find(|p| u16::from_be_bytes([p[0], p[1]]) == 0x3)
        .map(|p| u32::from_be_bytes([p[2], p[3], p[4], p[5]]));
    assert_eq!(
        max_streams,
        Some(2),
        "SETTINGS_MAX_CONCURRENT_STREAMS in {:?}",
        settings.payload
    );
    let host = server.host();
    let mut out = frame(SETTINGS, ACK, 0, &[]);
    for stream in [1u32, 3] {
        let block = request_block("POST", "/status/200", &host, Some(1));
        out.extend(frame(HEADERS, END_HEADERS, stream, &block));
    }
    let block = request_block("GET", "/status/200", &host, None);
    out.extend(frame(HEADERS, END_HEADERS | END_STREAM, 5, &block));
    tcp.write_all(&out).await.expect("three streams");

    let refused = loop {
        let f = read_frame(&mut tcp).await;
        assert_ne!(
            f.kind, GOAWAY,
            "a connection error instead of a stream error: {f:?}"
        );
        assert!(
            !(f.stream == 5 && f.kind == HEADERS),
            "stream 5 was answered past the limit of 2"
        );
        if f.kind == RST_STREAM {
            break f;
        }
    };
    assert_eq!(refused.stream, 5, "{refused:?}");
    assert_eq!(
        refused.payload,
        7u32.to_be_bytes(),
        "RST_STREAM with REFUSED_STREAM (0x7)"
    );

    // The two open streams are still served.
    let mut out = frame(DATA, END_STREAM, 1, b"x");
    out.extend(frame(DATA, END_STREAM, 3, b"x"));
    tcp.write_all(&out).await.expect("the content");
    let mut answered = BTreeSet::new();
    let mut ended = BTreeSet::new();
    while ended.len() < 2 {
        let f = read_frame(&mut tcp).await;
        assert_ne!(f.kind, GOAWAY, "{f:?}");
        assert_ne!(f.kind, RST_STREAM, "{f:?}");
        if f.kind == HEADERS {
            // `:status 200` is static table entry 8, sent indexed.
            assert_eq!(
                f.payload.first(),
                Some(&0x88),
                "stream {}: not a 200",
                f.stream
            );
            answered.insert(f.stream);
        }
        if (f.kind == HEADERS || f.kind == DATA) && f.flags & END_STREAM != 0 {
            ended.insert(f.stream);
        }
    }
    assert_eq!(answered, BTreeSet::from([1, 3]));
}

/// Streams answered at once (a plain on-demand code gets no future of its own) still count as
/// the connection's activity: with `idle_timeout` = 1 s, a connection that asks every 300 ms for
/// 2.4 s stays open throughout, and is closed once it has been quiet for the time-out.
#[tokio::test]
async fn streams_answered_at_once_keep_the_connection_from_idling_out() {
    let server = TestServer::start_with(|cfg| {
        cfg.idle_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (mut client, conn) = h2::client::handshake(tcp)
        .await
        .expect("h2 handshake (prior knowledge)");
    let mut conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    for i in 0..8 {
        let reply = send(&mut client, Method::GET, "/status/404", &[], None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "request {i}");
        assert!(
            !conn.is_finished(),
            "the connection closed while in use (request {i}, every 300 ms, idle_timeout 1 s)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let quiet = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(6), &mut conn)
        .await
        .expect("the connection closes after idle_timeout")
        .expect("the connection task ends cleanly");
    assert!(
        quiet.elapsed() >= std::time::Duration::from_millis(500),
        "closed {:?} after the last request, before the 1 s idle time-out",
        quiet.elapsed()
    );
}

/// Streams are counted in the metrics whether answered at once or by a handler that waited,
/// each once, by the time their replies arrive.
#[tokio::test]
async fn h2_streams_are_counted_once_by_the_time_they_are_answered() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    for _ in 0..3 {
        let r = send(
            &mut client,
            Method::GET,
            &server.url("/status/404"),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 404);
    }
    let r = send(
        &mut client,
        Method::GET,
        &server.url("/status/503?sleep=10"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 503);
    let r = send(&mut client, Method::GET, &server.url("/metrics"), &[], None).await;
    let text = String::from_utf8(r.body).expect("text");
    for (code, n) in [(404, 3), (503, 1)] {
        let series = format!(
            "statuslab_http_requests_total{{route=\"/status/{{codes}}\",method=\"GET\",code=\"{code}\"}} {n}\n"
        );
        assert!(text.contains(&series), "no {series:?} in\n{text}");
    }
}
