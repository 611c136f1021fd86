//! The probe (`statuslab_server::probe`) against statuslab itself, where every check must
//! pass, and against a deliberately unfaithful server written here, where every planted fault
//! must be reported as a failure of the right check and nothing else may fail.

use crate::support::{TestServer, request};
use statuslab_server::probe::{self, Against, CHECKS, Options, Report, Route, Verdict};
use statuslab_server::{Config, TlsSource};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The codes whose on-demand answers the statuslab runs check, one `--route` each.
const ROUTED: &[u16] = &[
    100, 101, 103, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 305, 307, 308, 400,
    401, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 422, 426, 429,
    431, 500, 501, 502, 503, 504, 505,
];

/// A statuslab server with a stored resource to probe, and a short head timeout so that
/// the stalled-head check ends quickly.
async fn statuslab(tune: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.header_timeout = Duration::from_secs(1);
        tune(c);
    })
    .await
}

async fn store_resource(server: &TestServer) {
    let body: Vec<u8> = (0..3000u32)
        .map(|i| b"statuslab probe target\n"[(i % 23) as usize])
        .collect();
    let created = server
        .exchange(&request(
            "PUT",
            "/resources/doc",
            &server.host(),
            &[("Content-Type", "text/plain")],
            &body,
        ))
        .await;
    assert_eq!(created.status, 201, "{}", created.head);
}

fn full_options(url: String) -> Options {
    let mut opts = Options::new(url);
    opts.routes = ROUTED
        .iter()
        .map(|c| Route {
            code: *c,
            path: format!("/status/{c}"),
        })
        .collect();
    opts.allow_writes = true;
    opts.framing = true;
    opts.slow = true;
    opts.slow_wait = Duration::from_secs(10);
    opts.timeout = Duration::from_secs(5);
    opts
}

/// Every check's id and verdict, for failure messages.
fn verdicts(report: &Report) -> String {
    report
        .checks
        .iter()
        .map(|c| {
            format!(
                "  {:<24} {:<12} {}\n      expected: {}\n{}",
                c.id,
                c.verdict.name(),
                c.observed,
                c.expected,
                if c.verdict == Verdict::Fail {
                    format!(
                        "      request: {}\n      response: {}\n",
                        c.request, c.response
                    )
                } else {
                    String::new()
                }
            )
        })
        .collect()
}

/// The verdict the other authority gives (the report's own where they agree).
fn other_verdict(c: &probe::Check) -> Verdict {
    c.other.as_ref().map_or(c.verdict, |o| o.verdict)
}

#[tokio::test]
async fn every_check_passes_against_statuslab_over_http1() {
    let server = statuslab(|_| {}).await;
    store_resource(&server).await;
    let opts = full_options(server.url("/resources/doc"));
    let report = probe::run(&opts).await.expect("the probe runs");
    let all = verdicts(&report);
    assert_eq!(report.summary.fail, 0, "{all}");
    assert_eq!(report.summary.skip, 0, "{all}");
    assert_eq!(report.summary.inconclusive, 0, "{all}");
    assert_eq!(
        report.checks.len(),
        CHECKS.len() + ROUTED.len(),
        "every check ran: {all}"
    );
    // By RFC 9110 alone, too.
    for c in &report.checks {
        assert_eq!(
            other_verdict(c),
            Verdict::Pass,
            "{} by the RFC: {all}",
            c.id
        );
    }
    // Nothing was left behind by the writes.
    let listed = server.get("/resources", &[]).await;
    assert_eq!(
        listed.json()["resources"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text()
    );
}

#[tokio::test]
async fn every_check_passes_against_statuslab_by_the_rfc_and_safe_by_default() {
    let server = statuslab(|_| {}).await;
    store_resource(&server).await;
    let mut opts = Options::new(server.url("/resources/doc"));
    opts.against = Against::Rfc;
    let report = probe::run(&opts).await.expect("the probe runs");
    let all = verdicts(&report);
    assert_eq!(report.summary.fail, 0, "{all}");
    assert_eq!(report.summary.inconclusive, 0, "{all}");
    // Without the flags, what needs them is skipped, saying which flag; the 405 check has
    // no 405 to judge without writes.
    let skipped: BTreeSet<&str> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Skip)
        .map(|c| c.id.as_str())
        .collect();
    let mut want: BTreeSet<&str> = CHECKS
        .iter()
        .filter(|c| c.needs != probe::Needs::Always)
        .map(|c| c.id)
        .collect();
    want.insert("method-not-allowed");
    assert_eq!(skipped, want, "{all}");
    for c in report.checks.iter().filter(|c| c.verdict == Verdict::Skip) {
        assert!(
            c.observed.contains("--") || c.observed.contains("405"),
            "{}: {}",
            c.id,
            c.observed
        );
    }
}

/// Over HTTP/2, the HTTP/1.1-only checks (and 101, which HTTP/2 lacks) are skipped; the
/// rest pass.
fn assert_h2_report(report: &Report) {
    let all = verdicts(report);
    assert_eq!(report.protocol, "HTTP/2");
    assert_eq!(report.summary.fail, 0, "{all}");
    assert_eq!(report.summary.inconclusive, 0, "{all}");
    let skipped: BTreeSet<&str> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Skip)
        .map(|c| c.id.as_str())
        .collect();
    let mut want: BTreeSet<&str> = CHECKS
        .iter()
        .filter(|c| c.http1_only)
        .map(|c| c.id)
        .collect();
    want.insert("route-101");
    assert_eq!(skipped, want, "{all}");
}

#[tokio::test]
async fn every_check_passes_against_statuslab_over_h2c() {
    let server = statuslab(|_| {}).await;
    store_resource(&server).await;
    let mut opts = full_options(server.url("/resources/doc"));
    opts.http2 = true;
    let report = probe::run(&opts).await.expect("the probe runs");
    assert_h2_report(&report);
}

#[tokio::test]
async fn every_check_passes_against_statuslab_over_tls_h1_and_h2() {
    let server = statuslab(|c| c.tls = Some(TlsSource::SelfSigned)).await;
    // An on-demand 200 is the target: storing a resource would need a TLS client here.
    let url = format!("https://localhost:{}/status/200", server.addr.port());

    // Without --insecure, a self-signed certificate makes the target unreachable.
    let refused = probe::run(&Options::new(url.clone())).await;
    assert!(
        matches!(&refused, Err(probe::Error::Unreachable(why)) if why.contains("certificate")),
        "{refused:?}"
    );

    let mut opts = full_options(url);
    opts.insecure = true;
    opts.only = vec![
        "route-*".into(),
        "get".into(),
        "head".into(),
        "options".into(),
    ];
    let report = probe::run(&opts).await.expect("the probe runs over TLS");
    let all = verdicts(&report);
    assert_eq!(report.summary.fail, 0, "{all}");
    opts.http2 = true;
    let report = probe::run(&opts).await.expect("the probe runs over h2");
    let all = verdicts(&report);
    assert_eq!(report.summary.fail, 0, "{all}");
    assert_eq!(
        report.check("route-101").map(|c| c.verdict),
        Some(Verdict::Skip),
        "{all}"
    );
}

#[tokio::test]
async fn usage_errors_and_unreachable_targets() {
    let cases = [
        Options::new("ftp://example.com/"),
        Options::new("not a url"),
        Options {
            only: vec!["no-such-check".into()],
            ..Options::new("http://127.0.0.1:9/")
        },
        Options {
            headers: vec![("Bad Name".into(), "v".into())],
            ..Options::new("http://127.0.0.1:9/")
        },
        Options {
            concurrency: 0,
            ..Options::new("http://127.0.0.1:9/")
        },
    ];
    for opts in cases {
        let got = probe::run(&opts).await;
        assert!(
            matches!(got, Err(probe::Error::Usage(_))),
            "{opts:?}: {got:?}"
        );
    }
    // A port nothing listens on.
    let free = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let got = probe::run(&Options::new(format!("http://{addr}/"))).await;
    assert!(matches!(got, Err(probe::Error::Unreachable(_))), "{got:?}");
    assert!("401=/private".parse::<Route>().is_ok());
    for bad in ["401", "99=/x", "600=/x", "401=private", "401=/a b"] {
        assert!(bad.parse::<Route>().is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// A deliberately unfaithful server: right about everything the probe checks, except one
// planted fault per endpoint.
// ---------------------------------------------------------------------------------------

const REP_LEN: usize = 1000;
const ETAG: &str = "\"v1\"";
const SCRATCH_TAG: &str = "\"s1\"";
const LAST_MODIFIED: &str = "Wed, 01 Jan 2025 00:00:00 GMT";

fn representation() -> Vec<u8> {
    (0..REP_LEN).map(|i| b'A' + (i % 26) as u8).collect()
}

/// Each planted fault, the endpoint that carries it, and the check that must report it.
const PLANTED: &[(&str, &str)] = &[
    ("options", "OPTIONS /doc: 204 without Allow"),
    ("head", "HEAD /doc: the content after the head"),
    (
        "expect-continue",
        "Expect: 100-continue ignored: waits for the content",
    ),
    ("range-unsatisfiable", "416 without Content-Range"),
    (
        "framing-cl-conflict",
        "two Content-Lengths: takes the first, keeps the connection",
    ),
    ("stalled-head", "a stalled head: a silent close, no 408"),
    ("route-100", "/e100: an interim 100 with Content-Length"),
    ("route-204", "/e204: 204 with content"),
    ("route-301", "/e301: 301 without Location"),
    ("route-304", "/e304: 304 with content"),
    ("route-401", "/e401: 401 without WWW-Authenticate"),
    ("route-405", "/e405: 405 without Allow"),
    ("route-429", "/e429: 429 without Retry-After"),
    ("route-503", "/e503: Retry-After: soon"),
];

/// Faults RFC 9110 does not call faults: the table asks for them, the RFC allows them.
const TABLE_ONLY: &[&str] = &["stalled-head", "route-429"];

/// What the unfaithful server remembers: the scratch resources (`None`: deleted).
type Store = Arc<Mutex<HashMap<String, Option<Vec<u8>>>>>;

async fn unfaithful() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let store: Store = Arc::default();
    tokio::spawn(async move {
        while let Ok((io, _)) = listener.accept().await {
            tokio::spawn(connection(io, Arc::clone(&store)));
        }
    });
    addr
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(code: u16) -> &'static str {
    statuslab_catalog::Status::new(code)
        .map(|s| s.reason())
        .unwrap_or("Unknown")
}

/// A response's bytes: status line, the fields, `Content-Length` (unless `no_length`), the
/// content (unless `head_only`).
fn response(
    code: u16,
    fields: &[(&str, String)],
    body: &[u8],
    head_only: bool,
    no_length: bool,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    for (n, v) in fields {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if !no_length {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// Answers, then closes the way a careful server does: FIN first, then drain what the
/// client is still sending, so the answer is not destroyed by a reset.
async fn refuse(mut io: TcpStream, code: u16) {
    let body = format!("{code}\n");
    let _ = io
        .write_all(&response(
            code,
            &[("Connection", "close".into())],
            body.as_bytes(),
            false,
            false,
        ))
        .await;
    let _ = io.shutdown().await;
    let mut sink = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(n) = io.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

struct Request {
    method: String,
    target: String,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

async fn connection(mut io: TcpStream, store: Store) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        // The head, within a second (else: the planted stalled-head fault, a silent close).
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let line = find(&buf, b"\r\n").unwrap_or(buf.len());
            if line > 8192 {
                return refuse(io, 414).await;
            }
            if buf.len() > 32 * 1024 {
                return refuse(io, 431).await;
            }
            match tokio::time::timeout(Duration::from_secs(1), io.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end - 4]).into_owned();
        buf.drain(..end);
        let mut lines = head.split("\r\n");
        let parts: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
        let [method, target, version] = parts[..] else {
            return refuse(io, 400).await;
        };
        if target.len() > 8192 {
            return refuse(io, 414).await;
        }
        match version {
            "HTTP/1.1" | "HTTP/1.0" => {}
            v if v.starts_with("HTTP/1.") => return refuse(io, 505).await,
            _ => return refuse(io, 400).await,
        }
        let mut fields = Vec::new();
        for line in lines {
            let Some((n, v)) = line.split_once(':') else {
                return refuse(io, 400).await;
            };
            fields.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        if fields.len() > 100 {
            return refuse(io, 431).await;
        }
        let mut req = Request {
            method: method.to_owned(),
            target: target.to_owned(),
            fields,
            body: Vec::new(),
        };
        if version == "HTTP/1.1" && req.field("host").is_none() {
            return refuse(io, 400).await;
        }
        let lengths: Vec<&str> = req
            .fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.as_str())
            .collect();
        let chunked = req.field("transfer-encoding").is_some();
        if chunked && !lengths.is_empty() {
            return refuse(io, 400).await;
        }
        let expect = req.field("expect").map(str::to_ascii_lowercase);
        let unmet = expect.as_deref().is_some_and(|e| e != "100-continue");
        // Planted fault (expect-continue): no 100 Continue, the content is just read.
        if unmet {
            // Answered from the head; the probe sends no content with it.
        } else if chunked {
            match read_chunked(&mut io, &mut buf).await {
                Some(body) => req.body = body,
                None => return refuse(io, 400).await,
            }
        } else if let Some(first) = lengths.first() {
            // Planted fault (framing-cl-conflict): the first of several lengths wins.
            let Ok(n) = first.parse::<usize>() else {
                return refuse(io, 400).await;
            };
            while buf.len() < n {
                match io.read(&mut chunk).await {
                    Ok(k) if k > 0 => buf.extend_from_slice(&chunk[..k]),
                    _ => return,
                }
            }
            req.body = buf.drain(..n).collect();
        }
        let close = req
            .field("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let out = if unmet {
            response(417, &[], b"417\n", false, false)
        } else {
            answer(&req, &store)
        };
        if io.write_all(&out).await.is_err() {
            return;
        }
        if close {
            let _ = io.shutdown().await;
            return;
        }
    }
}

/// Strict chunked decoding: 1–16 hex digits per size; `None` for anything else.
async fn read_chunked(io: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            let n = io.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
            buf.extend_from_slice(&chunk[..n]);
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        if line.is_empty() || line.len() > 16 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let size = usize::from_str_radix(&line, 16).ok()?;
        buf.drain(..line_end + 2);
        while buf.len() < size + 2 {
            let n = io.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
            buf.extend_from_slice(&chunk[..n]);
        }
        if &buf[size..size + 2] != b"\r\n" {
            return None;
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
        if size == 0 {
            return Some(body);
        }
    }
}

fn date(s: &str) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(s).ok()
}

fn answer(req: &Request, store: &Store) -> Vec<u8> {
    const KNOWN: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
    ];
    let head = req.method == "HEAD";
    let text = |code: u16| format!("{code}\n").into_bytes();
    if !KNOWN.contains(&req.method.as_str()) {
        return response(501, &[], &text(501), head, false);
    }
    let path = req.path();
    match path {
        "/doc" => resource(req),
        // Planted faults, one per route.
        "/e100" => {
            let mut out = b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n".to_vec();
            out.extend(response(200, &[], b"ok\n", head, false));
            out
        }
        "/e204" => response(204, &[], b"hello", head, false),
        "/e301" => response(301, &[], &text(301), head, false),
        "/e304" => response(304, &[("ETag", ETAG.into())], b"hello", head, false),
        "/e401" => response(401, &[], &text(401), head, false),
        "/e405" => response(405, &[], &text(405), head, false),
        "/e429" => response(429, &[], &text(429), head, false),
        "/e503" => response(
            503,
            &[("Retry-After", "soon".into())],
            &text(503),
            head,
            false,
        ),
        // Faithful routes, for contrast.
        "/ok201" => response(201, &[("Location", "/doc".into())], &text(201), head, false),
        "/ok416" => response(
            416,
            &[("Content-Range", format!("bytes */{REP_LEN}"))],
            &text(416),
            head,
            false,
        ),
        p if p.starts_with("/doc-statuslab-probe-") => scratch(req, store),
        _ => response(404, &[], &text(404), head, false),
    }
}

fn resource(req: &Request) -> Vec<u8> {
    let head = req.method == "HEAD";
    let rep = representation();
    let validators = vec![
        ("ETag", ETAG.to_owned()),
        ("Last-Modified", LAST_MODIFIED.to_owned()),
    ];
    match req.method.as_str() {
        // Planted fault (options): no Allow.
        "OPTIONS" => return response(204, &[], b"", false, true),
        "GET" | "HEAD" => {}
        _ => {
            return response(
                405,
                &[("Allow", "GET, HEAD, OPTIONS".into())],
                b"405\n",
                head,
                false,
            );
        }
    }
    let modified = date(LAST_MODIFIED).expect("a date");
    if let Some(m) = req.field("if-match")
        && m != "*"
        && !m.split(',').any(|t| t.trim() == ETAG)
    {
        return response(412, &[], b"412\n", head, false);
    }
    if let Some(since) = req.field("if-unmodified-since").and_then(date)
        && modified > since
    {
        return response(412, &[], b"412\n", head, false);
    }
    if let Some(none) = req.field("if-none-match") {
        if none == "*" || none.split(',').any(|t| t.trim() == ETAG) {
            return response(304, &validators, b"", true, true);
        }
    } else if let Some(since) = req.field("if-modified-since").and_then(date)
        && modified <= since
    {
        return response(304, &validators, b"", true, true);
    }
    let mut full = validators.clone();
    full.push(("Content-Type", "text/plain".into()));
    full.push(("Accept-Ranges", "bytes".into()));
    let if_range_ok = req
        .field("if-range")
        .is_none_or(|v| v == ETAG || v == LAST_MODIFIED);
    if req.method == "GET"
        && if_range_ok
        && let Some(spec) = req.field("range").and_then(|r| r.strip_prefix("bytes="))
    {
        let len = REP_LEN as u64;
        let mut ranges = Vec::new();
        for item in spec.split(',') {
            let (a, b) = item.trim().split_once('-').unwrap_or(("", ""));
            let (first, last) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
                (Some(a), Some(b)) => (a, b.min(len - 1)),
                (Some(a), None) => (a, len - 1),
                (None, Some(n)) => (len.saturating_sub(n), len - 1),
                (None, None) => continue,
            };
            if first < len && first <= last {
                ranges.push((first as usize, last as usize));
            }
        }
        match ranges.len() {
            // Planted fault (range-unsatisfiable): no Content-Range.
            0 => return response(416, &[], b"416\n", false, false),
            1 => {
                let (a, b) = ranges[0];
                let mut fields = validators.clone();
                fields.push(("Content-Range", format!("bytes {a}-{b}/{REP_LEN}")));
                return response(206, &fields, &rep[a..=b], false, false);
            }
            _ => {
                let mut body = Vec::new();
                for (a, b) in &ranges {
                    body.extend_from_slice(
                        format!(
                            "--PROBE\r\nContent-Type: text/plain\r\nContent-Range: bytes {a}-{b}/{REP_LEN}\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    body.extend_from_slice(&rep[*a..=*b]);
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(b"--PROBE--\r\n");
                let mut fields = validators.clone();
                fields.push((
                    "Content-Type",
                    "multipart/byteranges; boundary=PROBE".into(),
                ));
                return response(206, &fields, &body, false, false);
            }
        }
    }
    // Planted fault (head): HEAD gets the content too.
    response(200, &full, &rep, false, false)
}

fn scratch(req: &Request, store: &Store) -> Vec<u8> {
    let mut store = store.lock().expect("the store");
    let path = req.path().to_owned();
    let exists = matches!(store.get(&path), Some(Some(_)));
    match req.method.as_str() {
        "PUT" => {
            if req.field("if-none-match") == Some("*") && exists {
                return response(412, &[], b"412\n", false, false);
            }
            if let Some(m) = req.field("if-match")
                && (!exists || m != SCRATCH_TAG)
            {
                return response(412, &[], b"412\n", false, false);
            }
            store.insert(path.clone(), Some(req.body.clone()));
            if exists {
                response(204, &[("ETag", SCRATCH_TAG.into())], b"", false, true)
            } else {
                response(
                    201,
                    &[("Location", path), ("ETag", SCRATCH_TAG.into())],
                    b"created\n",
                    false,
                    false,
                )
            }
        }
        "DELETE" if exists => {
            store.insert(path, None);
            response(204, &[], b"", false, true)
        }
        "GET" | "HEAD" | "DELETE" => match store.get(&path) {
            Some(Some(body)) => response(200, &[], body, req.method == "HEAD", false),
            Some(None) => response(410, &[], b"410\n", false, false),
            None => response(404, &[], b"404\n", false, false),
        },
        _ => response(
            405,
            &[("Allow", "GET, HEAD, PUT, DELETE".into())],
            b"405\n",
            false,
            false,
        ),
    }
}

#[tokio::test]
async fn every_planted_fault_is_reported_by_its_check_and_nothing_else_fails() {
    let addr = unfaithful().await;
    let mut opts = Options::new(format!("http://{addr}/doc"));
    opts.routes = [
        (100, "/e100"),
        (204, "/e204"),
        (301, "/e301"),
        (304, "/e304"),
        (401, "/e401"),
        (405, "/e405"),
        (429, "/e429"),
        (503, "/e503"),
        (201, "/ok201"),
        (416, "/ok416"),
    ]
    .iter()
    .map(|(code, path)| Route {
        code: *code,
        path: (*path).to_owned(),
    })
    .collect();
    opts.allow_writes = true;
    opts.framing = true;
    opts.slow = true;
    opts.slow_wait = Duration::from_secs(10);
    opts.timeout = Duration::from_secs(5);
    let report = probe::run(&opts).await.expect("the probe runs");
    let all = verdicts(&report);

    let failed: BTreeSet<&str> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.id.as_str())
        .collect();
    let planted: BTreeSet<&str> = PLANTED.iter().map(|(id, _)| *id).collect();
    assert_eq!(failed, planted, "{all}");
    // Nothing undecided; the one skip is the 405 check, which has no Allow to choose from.
    assert_eq!(report.summary.inconclusive, 0, "{all}");
    let skipped: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Skip)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(skipped, ["method-not-allowed"], "{all}");

    // By RFC 9110 alone, the faults only the table calls faults pass.
    let rfc_failed: BTreeSet<&str> = report
        .checks
        .iter()
        .filter(|c| other_verdict(c) == Verdict::Fail)
        .map(|c| c.id.as_str())
        .collect();
    let rfc_planted: BTreeSet<&str> = planted
        .iter()
        .copied()
        .filter(|id| !TABLE_ONLY.contains(id))
        .collect();
    assert_eq!(rfc_failed, rfc_planted, "{all}");

    // Each failure says what was wrong.
    let says: BTreeMap<&str, &str> = [
        ("options", "no Allow"),
        ("head", "bytes of content after the head"),
        ("expect-continue", "without 100 Continue"),
        ("range-unsatisfiable", "no Content-Range"),
        ("framing-cl-conflict", "desync"),
        ("stalled-head", "silent close"),
        ("route-100", "Content-Length: 0 on the interim 100"),
        ("route-204", "5 bytes of content"),
        ("route-301", "no Location"),
        ("route-304", "5 bytes of content"),
        ("route-401", "no WWW-Authenticate"),
        ("route-405", "no Allow"),
        ("route-429", "no Retry-After"),
        ("route-503", "\"soon\""),
    ]
    .into_iter()
    .collect();
    for (id, words) in says {
        let c = report.check(id).expect("the check ran");
        assert!(
            c.observed.contains(words),
            "{id}: {words:?} not in {:?}",
            c.observed
        );
        assert!(!c.request.is_empty() && !c.expected.is_empty(), "{id}");
    }
}
