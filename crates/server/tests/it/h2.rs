//! HTTP/2 with prior knowledge (h2c) on the same port, through the h2 crate's client:
//! every code, interim 1xx via `poll_informational`, framing, HEAD and uploads.

use crate::support::{READ_TIMEOUT, TestServer, check, ensure};
use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, Method, Request, StatusCode};
use statuslab_catalog::{BodyRule, Need, Status};

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
