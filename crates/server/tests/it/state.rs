//! State on the wire: resources (201, 204, 304, 400, 404, 405, 406, 409, 410, 411, 412, 413,
//! 414, 415, 416, 417, 422, 507, 206, 301), jobs (202, 303, 410), sequences, bearer tokens
//! (401, 403), 500 from a failing store, and races between concurrent writers over real sockets.

use crate::support::{Conn, Exchange, Framing, TestServer, check, ensure, request};
use serde_json::{Value, json};
use statuslab_server::store::{
    Attempt, Conditions, DeleteOutcome, Job, JobOutcome, Lookup, NewResource, RateAlgorithm,
    RateDecision, ResourceMeta, Sequence, SequenceStep, Store, StoreError, WriteMode, WriteOutcome,
};
use statuslab_server::{Config, Scope, StoreChoice, Token};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Sends one request on a new connection and reads its responses.
async fn call(
    s: &TestServer,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Exchange {
    s.exchange(&request(method, target, &s.host(), headers, body))
        .await
}

/// `PUT /resources/{name}` with a content type.
async fn put(s: &TestServer, name: &str, ct: &str, body: &[u8]) -> Exchange {
    call(
        s,
        "PUT",
        &format!("/resources/{name}"),
        &[("Content-Type", ct)],
        body,
    )
    .await
}

/// Creates a resource and returns its ETag, failing unless the answer is 201.
async fn create(s: &TestServer, name: &str, ct: &str, body: &[u8]) -> String {
    let r = put(s, name, ct, body).await;
    assert_eq!(r.status, 201, "creating {name}:\n{}\n{}", r.head, r.text());
    r.must("etag").to_owned()
}

/// Fails unless `r` is `code` with an RFC 9457 problem body for that code; returns the detail.
#[track_caller]
fn problem(r: &Exchange, code: u16) -> String {
    assert_eq!(
        r.status,
        code,
        "want {code}, got:\n{}\n{}",
        r.head,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.must("content-type"),
        "application/problem+json",
        "{}",
        r.head
    );
    let v = r.json();
    assert_eq!(v["status"], code, "{v}");
    v["detail"].as_str().expect("a detail").to_owned()
}

/// Whether an entity tag is strong and quoted: `"…"`.
fn is_strong_etag(tag: &str) -> bool {
    tag.len() >= 2
        && tag.starts_with('"')
        && tag.ends_with('"')
        && !tag[1..tag.len() - 1].contains('"')
}

/// A multipart/byteranges body's parts: (Content-Range, data).
fn byteranges(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap_or_else(|| panic!("no boundary in {content_type:?}"))
        .trim_matches('"')
        .to_owned();
    let delimiter = format!("--{boundary}");
    let text = body.to_vec();
    let mut parts = Vec::new();
    let mut rest: &[u8] = &text;
    // Everything before the first delimiter is preamble.
    let first = crate::support::find(rest, delimiter.as_bytes()).expect("a first delimiter");
    rest = &rest[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return parts;
        }
        assert!(rest.starts_with(b"\r\n"), "a delimiter line ends in CRLF");
        rest = &rest[2..];
        let head_end = crate::support::find(rest, b"\r\n\r\n").expect("a part head");
        let head = String::from_utf8(rest[..head_end].to_vec()).expect("ASCII part head");
        rest = &rest[head_end + 4..];
        let next = crate::support::find(rest, format!("\r\n{delimiter}").as_bytes())
            .expect("a closing delimiter");
        let data = rest[..next].to_vec();
        rest = &rest[next + 2 + delimiter.len()..];
        let range = head
            .split("\r\n")
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-range")
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no Content-Range in part head {head:?}"));
        parts.push((range, data));
    }
}

/// A server on `127.0.0.1:0` over a store of the test's choosing.
struct CustomServer {
    addr: SocketAddr,
    _server: statuslab_server::testing::TestServer,
}

impl CustomServer {
    async fn start(store: Arc<dyn Store>) -> CustomServer {
        let server = statuslab_server::testing::Builder::new()
            .store(store)
            .spawn();
        CustomServer {
            addr: server.addr(),
            _server: server,
        }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }
}

/// Sends every request on its own connection at the same moment; returns the answers in order.
async fn race(addr: SocketAddr, requests: Vec<Vec<u8>>) -> Vec<Exchange> {
    let mut conns = Vec::new();
    for _ in &requests {
        conns.push(Conn::connect(addr).await);
    }
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = conns
        .into_iter()
        .zip(requests)
        .map(|(mut conn, req)| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                conn.send(&req).await;
                conn.read_exchange(false).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a racing client does not panic"));
    }
    out
}

fn embedded(dir: &tempfile::TempDir) -> impl FnOnce(&mut Config) {
    let path = dir.path().to_path_buf();
    move |c: &mut Config| c.store = StoreChoice::Embedded(path)
}

// ---------------------------------------------------------------------------------------------
// Resources: create, replace, read
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn put_creates_201_then_replaces_204_and_get_head_carry_validators() {
    let s = TestServer::start().await;
    let created = put(&s, "doc", "application/json", br#"{"a":1}"#).await;
    assert_eq!(created.status, 201, "{}", created.head);
    assert_eq!(created.must("location"), "/resources/doc");
    let tag1 = created.must("etag").to_owned();
    assert!(is_strong_etag(&tag1), "ETag {tag1:?}");
    let lm = created.must("last-modified");
    assert!(
        httpdate::parse_http_date(lm).is_ok(),
        "Last-Modified {lm:?}"
    );
    let meta = created.json();
    assert_eq!(meta["name"], "doc", "{meta}");
    assert_eq!(meta["size"], 7, "{meta}");
    assert_eq!(meta["etag"], tag1.as_str(), "{meta}");

    let replaced = put(&s, "doc", "application/json", br#"{"a":2}"#).await;
    assert_eq!(replaced.status, 204, "{}", replaced.head);
    assert_eq!(replaced.framing, Framing::None);
    assert!(!replaced.has("content-length"), "{}", replaced.head);
    let tag2 = replaced.must("etag").to_owned();
    assert!(is_strong_etag(&tag2), "ETag {tag2:?}");
    assert_ne!(tag1, tag2, "a replacement has a new ETag");
    assert!(replaced.has("last-modified"), "{}", replaced.head);

    let got = call(&s, "GET", "/resources/doc", &[], b"").await;
    assert_eq!(got.status, 200, "{}", got.head);
    assert_eq!(got.body, br#"{"a":2}"#);
    assert_eq!(got.must("content-type"), "application/json");
    assert_eq!(got.must("etag"), tag2);
    assert!(httpdate::parse_http_date(got.must("last-modified")).is_ok());
    assert_eq!(got.must("accept-ranges"), "bytes");
    assert_eq!(got.must("content-length"), "7");

    let head = call(&s, "HEAD", "/resources/doc", &[], b"").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no content");
    assert_eq!(
        head.comparable_headers(),
        got.comparable_headers(),
        "HEAD carries GET's header fields"
    );
}

#[tokio::test]
async fn if_none_match_star_creates_only_once() {
    let s = TestServer::start().await;
    let first = call(
        &s,
        "PUT",
        "/resources/once",
        &[("If-None-Match", "*"), ("Content-Type", "text/plain")],
        b"first",
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.head);
    let tag = first.must("etag").to_owned();
    let again = call(
        &s,
        "PUT",
        "/resources/once",
        &[("If-None-Match", "*"), ("Content-Type", "text/plain")],
        b"second",
    )
    .await;
    problem(&again, 412);
    let now = call(&s, "GET", "/resources/once", &[], b"").await;
    assert_eq!(now.body, b"first", "the refused write changed nothing");
    assert_eq!(now.must("etag"), tag);
}

#[tokio::test]
async fn post_with_slug_creates_201_then_409_and_without_slug_generates_a_name() {
    let s = TestServer::start().await;
    let made = call(
        &s,
        "POST",
        "/resources",
        &[("Slug", "note"), ("Content-Type", "text/plain")],
        b"hello",
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.head);
    assert_eq!(made.must("location"), "/resources/note");
    assert!(is_strong_etag(made.must("etag")));
    assert!(made.has("last-modified"));

    let conflict = call(
        &s,
        "POST",
        "/resources",
        &[("Slug", "note"), ("Content-Type", "text/plain")],
        b"other",
    )
    .await;
    let detail = problem(&conflict, 409);
    assert!(detail.contains("note"), "{detail}");
    assert_eq!(conflict.must("location"), "/resources/note");
    let kept = call(&s, "GET", "/resources/note", &[], b"").await;
    assert_eq!(kept.body, b"hello", "the conflicting POST changed nothing");

    let generated = call(
        &s,
        "POST",
        "/resources",
        &[("Content-Type", "text/plain")],
        b"anonymous",
    )
    .await;
    assert_eq!(generated.status, 201, "{}", generated.head);
    let loc = generated.must("location").to_owned();
    let name = loc
        .strip_prefix("/resources/")
        .unwrap_or_else(|| panic!("Location {loc:?}"));
    assert!(
        !name.is_empty() && name != "note",
        "generated name {name:?}"
    );
    let fetched = call(&s, "GET", &loc, &[], b"").await;
    assert_eq!(fetched.status, 200, "{}", fetched.head);
    assert_eq!(fetched.body, b"anonymous");

    // The collection lists both.
    let list = call(&s, "GET", "/resources", &[], b"").await;
    assert_eq!(list.status, 200);
    let names: BTreeSet<String> = list.json()["resources"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(names.contains("note") && names.contains(name), "{names:?}");
}

#[tokio::test]
async fn conditional_get_answers_304_without_content() {
    let s = TestServer::start().await;
    let tag = create(&s, "c", "text/plain", b"cached").await;
    let full = call(&s, "GET", "/resources/c", &[], b"").await;
    let lm = full.must("last-modified").to_owned();

    // On one connection: a 304 must not leave stray bytes that break the next exchange.
    let mut conn = s.connect().await;
    for (name, value) in [
        ("If-None-Match", tag.clone()),
        ("If-None-Match", format!("\"nope\", {tag}")),
        ("If-None-Match", format!("W/{tag}")),
        ("If-None-Match", "*".to_owned()),
        ("If-Modified-Since", lm.clone()),
    ] {
        conn.send(&request(
            "GET",
            "/resources/c",
            &s.host(),
            &[(name, &value)],
            b"",
        ))
        .await;
        let r = conn.read_exchange(false).await;
        assert_eq!(r.status, 304, "{name}: {value}\n{}", r.head);
        assert_eq!(r.framing, Framing::None);
        assert!(r.body.is_empty());
        assert_eq!(r.must("etag"), tag, "304 keeps the ETag");
        assert!(r.has("last-modified"), "{}", r.head);
        assert!(conn.pending().is_empty(), "no content after a 304");
    }
    for (name, value) in [
        ("If-None-Match", "\"other\"".to_owned()),
        (
            "If-Modified-Since",
            "Sat, 01 Jan 2000 00:00:00 GMT".to_owned(),
        ),
    ] {
        conn.send(&request(
            "GET",
            "/resources/c",
            &s.host(),
            &[(name, &value)],
            b"",
        ))
        .await;
        let r = conn.read_exchange(false).await;
        assert_eq!(r.status, 200, "{name}: {value}\n{}", r.head);
        assert_eq!(r.body, b"cached");
    }
    let both = call(
        &s,
        "GET",
        "/resources/c",
        &[("If-None-Match", "\"other\""), ("If-Modified-Since", &lm)],
        b"",
    )
    .await;
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    assert_eq!(
        both.status, 200,
        "If-Modified-Since is ignored with If-None-Match"
    );
    let head = call(&s, "HEAD", "/resources/c", &[("If-None-Match", &tag)], b"").await;
    assert_eq!(head.status, 304, "{}", head.head);
}

#[tokio::test]
async fn failing_if_match_or_if_unmodified_since_is_412_on_every_method() {
    let s = TestServer::start().await;
    let tag = create(&s, "p", "application/json", br#"{"v":1}"#).await;
    let old = "Sat, 01 Jan 2000 00:00:00 GMT";
    // A weak tag never satisfies If-Match, not even the current one (strong comparison).
    let weak = format!("W/{tag}");
    let mut cases = Vec::new();
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        for cond in [
            ("If-Match", "\"stale\""),
            ("If-Match", "W/\"stale\""),
            ("If-Match", weak.as_str()),
            ("If-Unmodified-Since", old),
        ] {
            cases.push((method, cond));
        }
    }
    for (method, (name, value)) in cases {
        let ct = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let r = call(
            &s,
            method,
            "/resources/p",
            &[(name, value), ("Content-Type", ct)],
            br#"{"v":2}"#,
        )
        .await;
        assert_eq!(
            r.status,
            412,
            "{method} with {name}: {value}:\n{}\n{}",
            r.head,
            r.text()
        );
        problem(&r, 412);
    }
    let unchanged = call(&s, "GET", "/resources/p", &[], b"").await;
    assert_eq!(unchanged.status, 200);
    assert_eq!(
        unchanged.body, br#"{"v":1}"#,
        "no refused write took effect"
    );
    assert_eq!(unchanged.must("etag"), tag);

    // Holding preconditions let every method through.
    let lm = unchanged.must("last-modified").to_owned();
    let ok = call(&s, "GET", "/resources/p", &[("If-Match", &tag)], b"").await;
    assert_eq!(ok.status, 200);
    let ok = call(
        &s,
        "GET",
        "/resources/p",
        &[("If-Unmodified-Since", &lm)],
        b"",
    )
    .await;
    assert_eq!(ok.status, 200);
    let patched = call(
        &s,
        "PATCH",
        "/resources/p",
        &[
            ("If-Match", &tag),
            ("Content-Type", "application/merge-patch+json"),
        ],
        br#"{"w":2}"#,
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.head);
    let tag2 = patched.must("etag").to_owned();
    let replaced = call(
        &s,
        "PUT",
        "/resources/p",
        &[("If-Match", &tag2), ("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(replaced.status, 204);
    let stale_delete = call(&s, "DELETE", "/resources/p", &[("If-Match", &tag2)], b"").await;
    problem(&stale_delete, 412);
    let tag3 = replaced.must("etag").to_owned();
    let deleted = call(&s, "DELETE", "/resources/p", &[("If-Match", &tag3)], b"").await;
    assert_eq!(deleted.status, 204);

    // If-Match on a name that does not exist: a PUT would create, so the precondition fails.
    let r = call(
        &s,
        "PUT",
        "/resources/fresh",
        &[("If-Match", "*"), ("Content-Type", "text/plain")],
        b"x",
    )
    .await;
    problem(&r, 412);
    problem(&call(&s, "GET", "/resources/fresh", &[], b"").await, 404);
}

#[tokio::test]
async fn malformed_entity_tags_are_400() {
    let s = TestServer::start().await;
    create(&s, "t", "text/plain", b"x").await;
    for value in ["unquoted", "\"a\"b\""] {
        let r = call(&s, "GET", "/resources/t", &[("If-Match", value)], b"").await;
        problem(&r, 400);
    }
}

// ---------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ranges_206_multipart_if_range_and_416() {
    let s = TestServer::start().await;
    let data = b"0123456789abcdefghij"; // 20 bytes
    let tag = create(&s, "r", "text/plain", data).await;
    let lm = call(&s, "GET", "/resources/r", &[], b"")
        .await
        .must("last-modified")
        .to_owned();

    let cases: &[(&str, &str, &[u8])] = &[
        ("bytes=0-3", "bytes 0-3/20", b"0123"),
        ("bytes=-5", "bytes 15-19/20", b"fghij"),
        ("bytes=18-", "bytes 18-19/20", b"ij"),
        ("bytes=10-99", "bytes 10-19/20", b"abcdefghij"),
    ];
    for (range, want_cr, want_body) in cases {
        let r = call(&s, "GET", "/resources/r", &[("Range", range)], b"").await;
        assert_eq!(r.status, 206, "{range}: {}", r.head);
        assert_eq!(r.must("content-range"), *want_cr, "{range}");
        assert_eq!(r.body, *want_body, "{range}");
        assert_eq!(r.must("content-type"), "text/plain");
        assert_eq!(r.must("etag"), tag);
    }

    let multi = call(
        &s,
        "GET",
        "/resources/r",
        &[("Range", "bytes=0-1,5-6,-2")],
        b"",
    )
    .await;
    assert_eq!(multi.status, 206, "{}", multi.head);
    assert!(
        !multi.has("content-range"),
        "multipart carries ranges in its parts"
    );
    let ct = multi.must("content-type").to_owned();
    assert!(ct.starts_with("multipart/byteranges"), "{ct}");
    let parts = byteranges(&ct, &multi.body);
    assert_eq!(
        parts,
        vec![
            ("bytes 0-1/20".to_owned(), b"01".to_vec()),
            ("bytes 5-6/20".to_owned(), b"56".to_vec()),
            ("bytes 18-19/20".to_owned(), b"ij".to_vec()),
        ]
    );

    // If-Range: a stale validator gets the whole representation; the current one the range.
    for (if_range, want) in [
        ("\"stale\"".to_owned(), 200u16),
        (format!("W/{tag}"), 200),
        ("Sat, 01 Jan 2000 00:00:00 GMT".to_owned(), 200),
        (tag.clone(), 206),
        (lm.clone(), 206),
    ] {
        let r = call(
            &s,
            "GET",
            "/resources/r",
            &[("Range", "bytes=0-3"), ("If-Range", &if_range)],
            b"",
        )
        .await;
        assert_eq!(r.status, want, "If-Range: {if_range}\n{}", r.head);
        let want_body: &[u8] = if want == 200 { data } else { b"0123" };
        assert_eq!(r.body, want_body, "If-Range: {if_range}");
    }

    for range in ["bytes=20-30", "bytes=100-", "bytes=-0"] {
        let r = call(&s, "GET", "/resources/r", &[("Range", range)], b"").await;
        assert_eq!(r.status, 416, "{range}: {}", r.head);
        assert_eq!(r.must("content-range"), "bytes */20", "{range}");
    }

    // A malformed or foreign-unit Range is ignored (RFC 9110 §14.2).
    for range in ["items=0-3", "bytes=x-y"] {
        let r = call(&s, "GET", "/resources/r", &[("Range", range)], b"").await;
        assert_eq!(r.status, 200, "{range}: {}", r.head);
        assert_eq!(r.body, data);
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn merge_patch_200_and_its_refusals_415_400_422() {
    let s = TestServer::start().await;
    let tag = create(&s, "j", "application/json", br#"{"a":1,"b":{"c":2,"d":3}}"#).await;
    let patched = call(
        &s,
        "PATCH",
        "/resources/j",
        &[("Content-Type", "application/merge-patch+json")],
        br#"{"b":{"c":null,"e":4},"f":"x"}"#,
    )
    .await;
    assert_eq!(patched.status, 200, "{}\n{}", patched.head, patched.text());
    assert_eq!(
        patched.json(),
        json!({"a":1,"b":{"d":3,"e":4},"f":"x"}),
        "the merged document"
    );
    assert_eq!(patched.must("content-type"), "application/json");
    let tag2 = patched.must("etag").to_owned();
    assert_ne!(tag, tag2);
    let got = call(&s, "GET", "/resources/j", &[], b"").await;
    assert_eq!(got.json(), json!({"a":1,"b":{"d":3,"e":4},"f":"x"}));
    assert_eq!(got.must("etag"), tag2);

    for ct in [
        "application/json-patch+json",
        "application/json",
        "text/plain",
    ] {
        let r = call(
            &s,
            "PATCH",
            "/resources/j",
            &[("Content-Type", ct)],
            br#"{"a":2}"#,
        )
        .await;
        problem(&r, 415);
        assert_eq!(
            r.must("accept-patch"),
            "application/merge-patch+json",
            "{ct}"
        );
    }

    let bad = call(
        &s,
        "PATCH",
        "/resources/j",
        &[("Content-Type", "application/merge-patch+json")],
        b"{\"a\":",
    )
    .await;
    problem(&bad, 400);

    create(&s, "plain", "text/plain", b"not json").await;
    let r = call(
        &s,
        "PATCH",
        "/resources/plain",
        &[("Content-Type", "application/merge-patch+json")],
        br#"{"a":1}"#,
    )
    .await;
    problem(&r, 422);
    // JSON bytes stored under a non-JSON type are not a JSON document either.
    create(&s, "jsonish", "text/plain", br#"{"a":1}"#).await;
    let r = call(
        &s,
        "PATCH",
        "/resources/jsonish",
        &[("Content-Type", "application/merge-patch+json")],
        br#"{"a":2}"#,
    )
    .await;
    problem(&r, 422);

    let after = call(&s, "GET", "/resources/j", &[], b"").await;
    assert_eq!(after.must("etag"), tag2, "refused patches changed nothing");

    let missing = call(
        &s,
        "PATCH",
        "/resources/none",
        &[("Content-Type", "application/merge-patch+json")],
        b"{}",
    )
    .await;
    problem(&missing, 404);
}

// ---------------------------------------------------------------------------------------------
// DELETE, tombstones, canonical URLs, names, methods
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_204_then_410_and_never_existing_is_404() {
    let s = TestServer::start().await;
    create(&s, "d", "text/plain", b"bye").await;
    let del = call(&s, "DELETE", "/resources/d", &[], b"").await;
    assert_eq!(del.status, 204, "{}", del.head);
    assert_eq!(del.framing, Framing::None);
    problem(&call(&s, "GET", "/resources/d", &[], b"").await, 410);
    let head = call(&s, "HEAD", "/resources/d", &[], b"").await;
    assert_eq!(head.status, 410);
    problem(&call(&s, "DELETE", "/resources/d", &[], b"").await, 410);
    problem(&call(&s, "GET", "/resources/never", &[], b"").await, 404);
    problem(&call(&s, "DELETE", "/resources/never", &[], b"").await, 404);
    // A deleted name can be created again.
    create(&s, "d", "text/plain", b"back").await;
    let again = call(&s, "GET", "/resources/d", &[], b"").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, b"back");
}

#[tokio::test]
async fn trailing_slash_is_301_to_the_canonical_url() {
    let s = TestServer::start().await;
    for (target, location) in [
        ("/resources/x/", "/resources/x"),
        ("/resources/x/?a=1", "/resources/x?a=1"),
        ("/resources/", "/resources"),
        ("/jobs/abc/", "/jobs/abc"),
    ] {
        let r = call(&s, "GET", target, &[], b"").await;
        assert_eq!(r.status, 301, "{target}: {}", r.head);
        assert_eq!(r.must("location"), location, "{target}");
    }
}

#[tokio::test]
async fn invalid_names_are_400() {
    let s = TestServer::start().await;
    let long = "x".repeat(129);
    // (method, target, Slug)
    let mut cases: Vec<(&str, String, Option<&str>)> = Vec::new();
    for name in ["a%20b", "..", ".", "%C3%A9", "a%2Fb", long.as_str(), "a*b"] {
        for method in ["GET", "PUT", "DELETE"] {
            cases.push((method, format!("/resources/{name}"), None));
        }
    }
    for slug in ["a/b", "..", ".", "a b", long.as_str(), "%C3%A9"] {
        cases.push(("POST", "/resources".to_owned(), Some(slug)));
    }
    let mut results = Vec::new();
    for (method, target, slug) in cases {
        let h: Vec<(&str, &str)> = slug.iter().map(|v| ("Slug", *v)).collect();
        let r = call(&s, method, &target, &h, b"x").await;
        results.push(((method, target, slug), r));
    }
    check(results, |((_, _, _), r)| {
        ensure(r.status == 400, || format!("status {}", r.status))?;
        ensure(
            r.header("content-type") == Some("application/problem+json"),
            || r.head.clone(),
        )
    });
    // Nothing was stored under any of them.
    let list = call(&s, "GET", "/resources", &[], b"").await;
    assert_eq!(list.json()["resources"], json!([]));
    // The longest valid name works.
    let ok = "y".repeat(128);
    create(&s, &ok, "text/plain", b"x").await;
}

#[tokio::test]
async fn wrong_method_405_with_allow_and_options_204_with_allow() {
    let s = TestServer::start().await;
    let allow_item: BTreeSet<String> = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .iter()
        .map(|m| (*m).to_owned())
        .collect();
    let allow_coll: BTreeSet<String> = ["GET", "HEAD", "POST", "OPTIONS"]
        .iter()
        .map(|m| (*m).to_owned())
        .collect();
    let allow_jobs: BTreeSet<String> = ["POST", "OPTIONS"]
        .iter()
        .map(|m| (*m).to_owned())
        .collect();
    for (method, target, body, allow) in [
        ("POST", "/resources/x", &b""[..], &allow_item),
        ("POST", "/resources/x", &b"data"[..], &allow_item),
        ("PUT", "/resources", &b"data"[..], &allow_coll),
        ("DELETE", "/resources", &b""[..], &allow_coll),
        ("GET", "/jobs", &b""[..], &allow_jobs),
    ] {
        let r = call(&s, method, target, &[], body).await;
        problem(&r, 405);
        let got: BTreeSet<String> = r.tokens("allow").into_iter().collect();
        assert_eq!(&got, allow, "{method} {target}");
    }
    for (target, allow) in [("/resources/x", &allow_item), ("/resources", &allow_coll)] {
        let r = call(&s, "OPTIONS", target, &[], b"").await;
        assert_eq!(r.status, 204, "{target}: {}", r.head);
        assert_eq!(r.framing, Framing::None);
        assert!(!r.has("content-length"), "{}", r.head);
        let got: BTreeSet<String> = r.tokens("allow").into_iter().collect();
        assert_eq!(&got, allow, "OPTIONS {target}");
    }
    // Neither refused request created anything.
    problem(&call(&s, "GET", "/resources/x", &[], b"").await, 404);
}

#[tokio::test]
async fn accept_that_excludes_the_stored_type_is_406() {
    let s = TestServer::start().await;
    create(&s, "n", "text/plain", b"words").await;
    for accept in [
        "application/json",
        "image/*",
        "text/plain;q=0, application/json",
        "text/html",
    ] {
        let r = call(&s, "GET", "/resources/n", &[("Accept", accept)], b"").await;
        assert_eq!(r.status, 406, "Accept: {accept}\n{}", r.head);
    }
    for accept in [
        "text/plain",
        "text/*",
        "*/*",
        "application/json, text/plain;q=0.1",
    ] {
        let r = call(&s, "GET", "/resources/n", &[("Accept", accept)], b"").await;
        assert_eq!(r.status, 200, "Accept: {accept}\n{}", r.head);
        assert_eq!(r.body, b"words");
    }
}

// ---------------------------------------------------------------------------------------------
// Framing and limits: 411, 413 (instead of 100), 100, 417, 414, 413 quota, 507
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn chunked_upload_is_411_and_the_content_is_not_read() {
    let s = TestServer::start().await;
    for (method, target) in [
        ("PUT", "/resources/x"),
        ("POST", "/resources"),
        ("POST", "/jobs"),
    ] {
        let mut conn = s.connect().await;
        conn.send(
            format!(
                "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                s.host()
            )
            .as_bytes(),
        )
        .await;
        // No chunk was sent: the server answers from the head alone.
        let ex = conn.read_exchange(false).await;
        assert!(ex.interim.is_empty(), "{:?}", ex.interim);
        problem(&ex, 411);
        assert_eq!(ex.must("connection"), "close");
        conn.expect_eof().await;
    }
    problem(&call(&s, "GET", "/resources/x", &[], b"").await, 404);
}

#[tokio::test]
async fn content_over_max_body_is_413_instead_of_100_continue() {
    let s = TestServer::start_with(|c| c.max_body = 16).await;
    let host = s.host();

    // Without Expect: answered from the head; the content is never read.
    let mut conn = s.connect().await;
    conn.send(
        format!("PUT /resources/big HTTP/1.1\r\nHost: {host}\r\nContent-Length: 17\r\n\r\n")
            .as_bytes(),
    )
    .await;
    let r = conn.read_exchange(false).await;
    assert!(r.interim.is_empty());
    let detail = problem(&r, 413);
    assert!(detail.contains("16"), "{detail}");
    assert_eq!(r.must("connection"), "close");
    conn.expect_eof().await;

    // With Expect: 100-continue, the 413 comes instead of the 100.
    let mut conn = s.connect().await;
    conn.send(
        format!(
            "PUT /resources/big HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let first = conn.read_response(false).await;
    assert!(
        first.head.starts_with("HTTP/1.1 413 "),
        "the first line is the 413, not an interim 100:\n{}",
        first.head
    );
    assert_eq!(first.must("connection"), "close");
    conn.expect_eof().await;

    // Any refusal decided from the head comes instead of the 100: here 405.
    let mut conn = s.connect().await;
    conn.send(
        format!(
            "PUT /resources HTTP/1.1\r\nHost: {host}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let first = conn.read_response(false).await;
    assert!(
        first.head.starts_with("HTTP/1.1 405 "),
        "405, not an interim 100:\n{}",
        first.head
    );
    conn.expect_eof().await;

    // Exactly at the limit is fine.
    let ok = put(&s, "big", "text/plain", &[b'x'; 16]).await;
    assert_eq!(ok.status, 201, "{}", ok.head);
    problem(
        &call(&s, "POST", "/resources", &[("Slug", "b2")], &[b'y'; 17]).await,
        413,
    );
    problem(&call(&s, "GET", "/resources/b2", &[], b"").await, 404);
}

#[tokio::test]
async fn expect_100_continue_gets_the_interim_100_then_201() {
    let s = TestServer::start().await;
    let host = s.host();
    let mut conn = s.connect().await;
    conn.send(
        format!(
            "PUT /resources/up HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    // The server asks for the content before it is sent.
    let cont = conn.read_response(false).await;
    assert_eq!(cont.head, "HTTP/1.1 100 Continue");
    conn.send(b"hello").await;
    let done = conn.read_exchange(false).await;
    assert!(done.interim.is_empty(), "one 100 only: {:?}", done.interim);
    assert_eq!(done.status, 201, "{}", done.head);
    assert_eq!(done.must("location"), "/resources/up");
    // The connection carries on.
    conn.send(&request("GET", "/resources/up", &host, &[], b""))
        .await;
    let got = conn.read_exchange(false).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"hello");
}

#[tokio::test]
async fn an_unknown_expectation_is_417() {
    let s = TestServer::start().await;
    let host = s.host();
    let mut conn = s.connect().await;
    conn.send(
        format!(
            "PUT /resources/e HTTP/1.1\r\nHost: {host}\r\nExpect: foo\r\nContent-Length: 3\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let r = conn.read_exchange(false).await;
    assert!(r.interim.is_empty(), "no 100 for an unmet expectation");
    let detail = problem(&r, 417);
    assert!(detail.contains("foo"), "{detail}");
    problem(&call(&s, "GET", "/resources/e", &[], b"").await, 404);
}

#[tokio::test]
async fn a_uri_over_max_uri_is_414() {
    let s = TestServer::start_with(|c| c.max_uri = 64).await;
    let target = format!("/resources/{}", "x".repeat(100));
    let r = call(&s, "GET", &target, &[], b"").await;
    let detail = problem(&r, 414);
    assert!(detail.contains("64"), "{detail}");
    // Just under the limit is an ordinary request.
    let short = format!("/resources/{}", "x".repeat(64 - "/resources/".len()));
    problem(&call(&s, "GET", &short, &[], b"").await, 404);
}

#[tokio::test]
async fn a_full_store_is_413_with_retry_after() {
    let s = TestServer::start_with(|c| c.limits.max_store_bytes = 10).await;
    create(&s, "a", "text/plain", b"12345678").await;
    let full = put(&s, "b", "text/plain", b"12345678").await;
    let detail = problem(&full, 413);
    assert!(detail.contains("10"), "{detail}");
    let ra = full.must("retry-after");
    assert!(ra.parse::<u32>().is_ok_and(|n| n > 0), "Retry-After {ra:?}");
    problem(&call(&s, "GET", "/resources/b", &[], b"").await, 404);
    let post = call(
        &s,
        "POST",
        "/resources",
        &[("Slug", "c"), ("Content-Type", "text/plain")],
        b"12345678",
    )
    .await;
    problem(&post, 413);
    assert!(post.has("retry-after"));
    // Replacing counts the old size as freed.
    assert_eq!(put(&s, "a", "text/plain", b"0123456789").await.status, 204);
    // Deleting frees the space.
    assert_eq!(
        call(&s, "DELETE", "/resources/a", &[], b"").await.status,
        204
    );
    create(&s, "b", "text/plain", b"12345678").await;
}

#[tokio::test]
async fn too_many_keys_is_507() {
    let s = TestServer::start_with(|c| c.limits.max_keys = 2).await;
    create(&s, "k1", "text/plain", b"1").await;
    create(&s, "k2", "text/plain", b"2").await;
    problem(&put(&s, "k3", "text/plain", b"3").await, 507);
    problem(
        &call(&s, "POST", "/resources", &[("Slug", "k4")], b"4").await,
        507,
    );
    problem(&call(&s, "GET", "/resources/k3", &[], b"").await, 404);
    // Existing keys can still be replaced.
    assert_eq!(put(&s, "k1", "text/plain", b"one").await.status, 204);
    // A delete leaves a tombstone (410), which holds the key until it expires and is swept;
    // the deleted name itself can be created again.
    assert_eq!(
        call(&s, "DELETE", "/resources/k2", &[], b"").await.status,
        204
    );
    problem(&put(&s, "k3", "text/plain", b"3").await, 507);
    create(&s, "k2", "text/plain", b"2").await;
}

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

/// Submits a job; returns the 202 reply and the monitor path.
async fn submit(s: &TestServer, body: &Value) -> (Exchange, String) {
    let r = call(
        s,
        "POST",
        "/jobs",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 202, "{}\n{}", r.head, r.text());
    let monitor = r.must("location").to_owned();
    (r, monitor)
}

/// A job description is a JSON object: serde would have filled the struct from an array
/// (`[null, null]` was accepted with 202), which the OpenAPI document does not allow.
#[tokio::test]
async fn job_descriptions_are_objects() {
    let s = TestServer::start().await;
    for body in [
        "[null, null]",
        "[2000]",
        "\"2s\"",
        "7",
        r#"{"result": [201, null]}"#,
    ] {
        let r = call(
            &s,
            "POST",
            "/jobs",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
    }
    let r = call(
        &s,
        "POST",
        "/jobs",
        &[("Content-Type", "application/json")],
        br#"{"duration": null, "result": null}"#,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = call(
        &s,
        "POST",
        "/jobs",
        &[("Content-Type", "application/json")],
        b"[",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn job_is_202_then_running_then_303_to_its_result() {
    let s = TestServer::start().await;
    let (accepted, monitor) = submit(
        &s,
        &json!({"duration":"800ms","result":{"status":201,"body":{"x":1}}}),
    )
    .await;
    // The job was stored before the 202 was sent.
    let accepted_at = Instant::now();
    let id = accepted.json()["id"].as_str().expect("an id").to_owned();
    assert_eq!(monitor, format!("/jobs/{id}"));
    let ra = accepted.must("retry-after");
    assert!(
        ra.parse::<u32>().is_ok_and(|n| n >= 1),
        "Retry-After {ra:?}"
    );

    let running = call(&s, "GET", &monitor, &[], b"").await;
    assert_eq!(running.status, 200, "{}", running.head);
    assert_eq!(running.json()["state"], "running", "{}", running.text());
    assert!(running.must("retry-after").parse::<u32>().is_ok());
    let early = call(&s, "GET", &format!("{monitor}/result"), &[], b"").await;
    problem(&early, 404);

    let wait = Duration::from_millis(820).saturating_sub(accepted_at.elapsed());
    tokio::time::sleep(wait).await;
    let done = call(&s, "GET", &monitor, &[], b"").await;
    assert_eq!(done.status, 303, "{}\n{}", done.head, done.text());
    let result_path = format!("/jobs/{id}/result");
    assert_eq!(done.must("location"), result_path);

    let result = call(&s, "GET", &result_path, &[], b"").await;
    assert_eq!(result.status, 201, "{}", result.head);
    assert_eq!(result.must("content-type"), "application/json");
    assert_eq!(result.json(), json!({"x":1}));
}

/// A job runs by the store's clock, end to end: on a manual clock, it reads "running" for
/// exactly its duration whatever the wall clock does, then 303.
#[tokio::test]
async fn a_job_runs_by_the_store_clock() {
    use statuslab_server::store::clock::ManualClock;
    use statuslab_server::store::{KvStore, Limits, memory::MemoryEngine};
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let store = KvStore::with_clock(MemoryEngine::new(), Limits::default(), clock.clone());
    let s = CustomServer::start(Arc::new(store)).await;
    let get = |path: String| {
        let host = s.host();
        async move {
            let mut conn = Conn::connect(s.addr).await;
            conn.send(&request("GET", &path, &host, &[], b"")).await;
            conn.read_exchange(false).await
        }
    };
    let mut conn = Conn::connect(s.addr).await;
    conn.send(&request(
        "POST",
        "/jobs",
        &s.host(),
        &[("Content-Type", "application/json")],
        br#"{"duration":"800ms"}"#,
    ))
    .await;
    let accepted = conn.read_exchange(false).await;
    assert_eq!(accepted.status, 202, "{}", accepted.head);
    let monitor = accepted.must("location").to_owned();
    clock.advance(Duration::from_millis(799));
    let running = get(monitor.clone()).await;
    assert_eq!(running.status, 200, "{}", running.head);
    assert_eq!(running.json()["state"], "running", "{}", running.text());
    assert_eq!(running.json()["remaining_ms"], 1, "{}", running.text());
    clock.advance(Duration::from_millis(1));
    let done = get(monitor.clone()).await;
    assert_eq!(done.status, 303, "{}\n{}", done.head, done.text());
    assert_eq!(get(format!("{monitor}/result")).await.status, 200);
    // Expired by the store's clock (--job-ttl, 24 h): gone.
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(get(monitor).await.status, 404);
}

/// A job's result counts toward --max-store-bytes: one that does not fit is 413 with
/// Retry-After, and stores nothing.
#[tokio::test]
async fn a_job_past_max_store_bytes_is_413() {
    let s = TestServer::start_with(|c| c.limits.max_store_bytes = 1000).await;
    let big = json!({"duration": "1s", "result": {"body": {"data": "x".repeat(1000)}}});
    let r = call(
        &s,
        "POST",
        "/jobs",
        &[("Content-Type", "application/json")],
        big.to_string().as_bytes(),
    )
    .await;
    let detail = problem(&r, 413);
    assert!(detail.contains("--max-store-bytes"), "{detail}");
    assert!(r.must("retry-after").parse::<u32>().is_ok());
    // A small one fits, and then takes its share from resources.
    submit(
        &s,
        &json!({"duration": "1s", "result": {"body": {"data": "x".repeat(800)}}}),
    )
    .await;
    problem(&put(&s, "r", "text/plain", &[b'x'; 200]).await, 413);
}

#[tokio::test]
async fn cancelled_job_shows_cancelled_and_its_result_is_410() {
    let s = TestServer::start().await;
    let (_, monitor) = submit(&s, &json!({"duration":"30s"})).await;
    let del = call(&s, "DELETE", &monitor, &[], b"").await;
    assert_eq!(del.status, 204, "{}", del.head);
    let status = call(&s, "GET", &monitor, &[], b"").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["state"], "cancelled", "{}", status.text());
    assert!(!status.has("retry-after"), "nothing to wait for");
    problem(
        &call(&s, "GET", &format!("{monitor}/result"), &[], b"").await,
        410,
    );
    problem(
        &call(&s, "DELETE", "/jobs/0000000000000000", &[], b"").await,
        404,
    );
}

#[tokio::test]
async fn job_submissions_are_validated_415_400_422() {
    let s = TestServer::start_with(|c| c.max_job_duration = Duration::from_secs(10)).await;
    let cases: Vec<(&str, &str, u16)> = vec![
        ("text/plain", r#"{"duration":"1s"}"#, 415),
        ("application/x-www-form-urlencoded", "duration=1s", 415),
        ("application/json", r#"{"duration":"#, 400),
        ("application/json", "not json", 400),
        ("application/json", r#"{"duration":-5}"#, 422),
        ("application/json", r#"{"duration":"-1s"}"#, 422),
        ("application/json", r#"{"duration":"soon"}"#, 422),
        ("application/json", r#"{"duration":1.5}"#, 422),
        ("application/json", r#"{"duration":true}"#, 422),
        ("application/json", r#"{"duration":"11s"}"#, 422),
        ("application/json", r#"{"duration":11000}"#, 422),
        ("application/json", r#"{"result":{"status":99}}"#, 422),
        ("application/json", r#"{"result":{"status":600}}"#, 422),
        ("application/json", r#"{"result":{"status":"201"}}"#, 422),
        ("application/json", r#"{"nope":1}"#, 422),
        (
            "application/json",
            r#"{"result":{"status":201,"extra":1}}"#,
            422,
        ),
        ("application/json", "[1,2]", 422),
    ];
    let mut results = Vec::new();
    for (ct, body, want) in cases {
        let r = call(
            &s,
            "POST",
            "/jobs",
            &[("Content-Type", ct)],
            body.as_bytes(),
        )
        .await;
        results.push(((ct, body, want), r));
    }
    check(results, |((_, _, want), r)| {
        ensure(r.status == *want, || {
            format!("status {} ({})", r.status, String::from_utf8_lossy(&r.body))
        })?;
        ensure(
            r.header("content-type") == Some("application/problem+json"),
            || r.head.clone(),
        )
    });
    // The limits themselves are accepted.
    submit(&s, &json!({"duration":"10s","result":{"status":599}})).await;
    submit(&s, &json!({"duration":0,"result":{"status":200}})).await;
    problem(
        &call(&s, "GET", "/jobs/0123456789abcdef", &[], b"").await,
        404,
    );
    problem(
        &call(&s, "GET", "/jobs/0123456789abcdef/result", &[], b"").await,
        404,
    );
}

/// JSON makes no difference between `201` and `201.0` or `2.01e2`, nor does the document's
/// `integer`: a whole duration or result status written so is accepted (it was 422, an answer
/// to data the document allows); a fraction is still 422.
#[tokio::test]
async fn job_numbers_may_be_whole_numbers_written_as_decimals() {
    let s = TestServer::start().await;
    let (accepted, monitor) =
        submit(&s, &json!({"duration": 0.0, "result": {"status": 201.0}})).await;
    assert_eq!(accepted.json()["duration_ms"], 0, "{}", accepted.text());
    let result = call(&s, "GET", &format!("{monitor}/result"), &[], b"").await;
    assert_eq!(result.status, 201, "{}", result.text());
    let (accepted, _) = submit(&s, &json!({"duration": 13179.0})).await;
    assert_eq!(accepted.json()["duration_ms"], 13179);
    let r = call(
        &s,
        "POST",
        "/jobs",
        &[("Content-Type", "application/json")],
        br#"{"duration": 2e3, "result": {"status": 2.01e2}}"#,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["duration_ms"], 2000);
    for body in [
        r#"{"result":{"status":201.5}}"#,
        r#"{"duration":1e300}"#,
        r#"{"duration":-0.5}"#,
    ] {
        let r = call(
            &s,
            "POST",
            "/jobs",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
    }
}

#[tokio::test]
async fn jobs_and_resources_survive_a_restart_on_the_embedded_store() {
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    let mut first = TestServer::start_with(embedded(&dir)).await;
    let (_, running) = submit(&first, &json!({"duration":"60s"})).await;
    let (_, finished) = submit(
        &first,
        &json!({"duration":0,"result":{"status":201,"body":{"kept":true}}}),
    )
    .await;
    let tag = create(&first, "durable", "text/plain", b"on disk").await;
    first.shutdown();
    first
        .stopped(Duration::from_secs(10))
        .await
        .expect("the first server stops cleanly");
    drop(first);

    let second = TestServer::start_with(embedded(&dir)).await;
    let r = call(&second, "GET", &running, &[], b"").await;
    assert_eq!(r.status, 200, "{}\n{}", r.head, r.text());
    assert_eq!(r.json()["state"], "running");
    let r = call(&second, "GET", &finished, &[], b"").await;
    assert_eq!(r.status, 303, "{}", r.head);
    let result = call(&second, "GET", r.must("location"), &[], b"").await;
    assert_eq!(result.status, 201);
    assert_eq!(result.json(), json!({"kept":true}));
    let got = call(&second, "GET", "/resources/durable", &[], b"").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"on disk");
    assert_eq!(got.must("etag"), tag);
}

// ---------------------------------------------------------------------------------------------
// Sequences
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sequence_answers_in_order_and_records_attempts() {
    let s = TestServer::start().await;
    let step = |agent: &'static str| {
        let s = &s;
        async move {
            call(
                s,
                "GET",
                "/sequence/k/503,503,200",
                &[("User-Agent", agent), ("Idempotency-Key", "idem-1")],
                b"",
            )
            .await
        }
    };
    let a1 = step("client/1").await;
    let a2 = step("client/2").await; // at once: does not honour Retry-After
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let a3 = step("client/3").await; // after Retry-After
    let a4 = step("client/4").await;
    for (r, code, position) in [
        (&a1, 503u16, "1/3"),
        (&a2, 503, "2/3"),
        (&a3, 200, "3/3"),
        (&a4, 200, "3/3"),
    ] {
        assert_eq!(r.status, code, "{}", r.head);
        assert_eq!(r.must("sequence-step"), position, "{}", r.head);
    }
    for r in [&a1, &a2] {
        assert_eq!(r.must("retry-after"), "1", "503 in full dress");
        assert!(!r.body.is_empty());
    }
    assert!(!a3.has("retry-after"));

    let state = call(&s, "GET", "/sequences/k", &[], b"").await;
    assert_eq!(state.status, 200, "{}", state.head);
    let v = state.json();
    assert_eq!(v["codes"], json!([503, 503, 200]), "{v}");
    assert_eq!(v["served"], 4, "{v}");
    let attempts = v["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 4, "{v}");
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["method"], "GET", "{a}");
        assert_eq!(
            a["headers"]["user-agent"],
            format!("client/{}", i + 1),
            "{a}"
        );
        assert_eq!(a["headers"]["idempotency-key"], "idem-1", "{a}");
    }
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["code"]).collect();
    assert_eq!(codes, [&json!(503), &json!(503), &json!(200), &json!(200)]);
    assert!(attempts[0]["since_previous_ms"].is_null(), "{v}");
    assert!(attempts[0]["honoured_retry_after"].is_null(), "{v}");
    assert!(attempts[1]["since_previous_ms"].is_u64(), "{v}");
    assert_eq!(
        attempts[1]["honoured_retry_after"], false,
        "retried at once: {v}"
    );
    assert!(
        attempts[2]["since_previous_ms"]
            .as_u64()
            .is_some_and(|ms| ms >= 1000),
        "{v}"
    );
    assert_eq!(attempts[2]["honoured_retry_after"], true, "waited: {v}");
    assert!(
        attempts[3]["honoured_retry_after"].is_null(),
        "a 200 asks for no wait: {v}"
    );
}

#[tokio::test]
async fn sequence_reset_restart_and_bad_input() {
    let s = TestServer::start().await;
    assert_eq!(
        call(&s, "GET", "/sequence/r/500,200", &[], b"")
            .await
            .status,
        500
    );
    // A different list for the same key is a conflict, not a silent restart: the detail
    // names the list the key holds and how to reset it, and nothing changes.
    let other = call(&s, "GET", "/sequence/r/404,reset,202", &[], b"").await;
    let detail = problem(&other, 409);
    for part in ["\"r\"", "500,200", "404,reset,202", "DELETE /sequences/r"] {
        assert!(detail.contains(part), "{part}: {detail}");
    }
    let state = call(&s, "GET", "/sequences/r", &[], b"").await.json();
    assert_eq!(state["codes"], json!([500, 200]), "{state}");
    assert_eq!(state["served"], 1, "{state}");
    assert_eq!(
        call(&s, "POST", "/sequence/r/500,200", &[], b"")
            .await
            .status,
        200,
        "the same list goes on"
    );
    let state = call(&s, "GET", "/sequences/r", &[], b"").await.json();
    assert_eq!(state["served"], 2, "{state}");
    assert_eq!(state["attempts"][1]["method"], "POST", "{state}");

    let del = call(&s, "DELETE", "/sequences/r", &[], b"").await;
    assert_eq!(del.status, 204, "{}", del.head);
    problem(&call(&s, "GET", "/sequences/r", &[], b"").await, 404);
    problem(&call(&s, "DELETE", "/sequences/r", &[], b"").await, 404);
    // After a reset the sequence starts at its first code.
    let again = call(&s, "GET", "/sequence/r/404,201,202", &[], b"").await;
    assert_eq!(again.status, 404);
    assert_eq!(again.must("sequence-step"), "1/3");

    let mut results = Vec::new();
    for target in [
        "/sequence/b/503,abc",
        "/sequence/b/99",
        "/sequence/b/600",
        "/sequence/b/,",
        "/sequence/b/200,,200",
        "/sequence/b/-1",
        "/sequence/a%20b/200",
        "/sequence/../200",
        "/sequences/a%20b",
    ] {
        results.push((target, call(&s, "GET", target, &[], b"").await));
    }
    check(results, |(_, r)| {
        ensure(r.status == 400, || {
            format!("status {}: {}", r.status, r.head)
        })
    });
    problem(&call(&s, "GET", "/sequences/b", &[], b"").await, 404);
}

// ---------------------------------------------------------------------------------------------
// Races over real sockets
// ---------------------------------------------------------------------------------------------

/// 20 PUTs with the same `If-Match`: exactly one replaces, 19 get 412.
async fn if_match_race(s: &TestServer) {
    let tag = create(s, "race", "text/plain", b"v0").await;
    let requests = (0..20)
        .map(|i| {
            request(
                "PUT",
                "/resources/race",
                &s.host(),
                &[("If-Match", &tag), ("Content-Type", "text/plain")],
                format!("writer {i}").as_bytes(),
            )
        })
        .collect();
    let answers = race(s.addr, requests).await;
    let winners: Vec<usize> = (0..20).filter(|i| answers[*i].status == 204).collect();
    let losers = answers.iter().filter(|r| r.status == 412).count();
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer wins: {:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(losers, 19, "every other writer gets 412");
    let winner = winners[0];
    let now = call(s, "GET", "/resources/race", &[], b"").await;
    assert_eq!(
        now.text(),
        format!("writer {winner}"),
        "the winner's content is stored"
    );
    assert_eq!(now.must("etag"), answers[winner].must("etag"));
}

/// 20 POSTs with the same `Slug`: one 201, 19 × 409.
async fn slug_race(s: &TestServer) {
    let requests = (0..20)
        .map(|i| {
            request(
                "POST",
                "/resources",
                &s.host(),
                &[("Slug", "one-name"), ("Content-Type", "text/plain")],
                format!("creator {i}").as_bytes(),
            )
        })
        .collect();
    let answers = race(s.addr, requests).await;
    let created: Vec<usize> = (0..20).filter(|i| answers[*i].status == 201).collect();
    let conflicts = answers.iter().filter(|r| r.status == 409).count();
    assert_eq!(
        created.len(),
        1,
        "exactly one creator wins: {:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(conflicts, 19, "every other creator gets 409");
    let now = call(s, "GET", "/resources/one-name", &[], b"").await;
    assert_eq!(now.text(), format!("creator {}", created[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_if_match_puts_one_wins_on_memory() {
    if_match_race(&TestServer::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_if_match_puts_one_wins_on_embedded() {
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    if_match_race(&TestServer::start_with(embedded(&dir)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_slug_posts_one_creates_on_memory() {
    slug_race(&TestServer::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_slug_posts_one_creates_on_embedded() {
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    slug_race(&TestServer::start_with(embedded(&dir)).await).await;
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bearer_tokens_401_403_and_success() {
    let s = TestServer::start_with(|c| {
        c.tokens = vec![
            Token {
                secret: "reader-secret".to_owned(),
                scope: Scope::Read,
            },
            Token {
                secret: "writer-secret".to_owned(),
                scope: Scope::Write,
            },
        ];
    })
    .await;
    let read = ("Authorization", "Bearer reader-secret");
    let write = ("Authorization", "Bearer writer-secret");

    for (headers, what) in [
        (vec![], "no token"),
        (vec![("Authorization", "Bearer wrong")], "a wrong token"),
        (vec![("Authorization", "Basic dTpw")], "another scheme"),
    ] {
        let r = call(&s, "GET", "/resources/x", &headers, b"").await;
        problem(&r, 401);
        let challenge = r.must("www-authenticate");
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
        assert!(challenge.contains("error="), "{what}: {challenge}");
        let r = call(&s, "POST", "/jobs", &headers, b"").await;
        problem(&r, 401);
    }

    let denied = call(
        &s,
        "PUT",
        "/resources/x",
        &[read, ("Content-Type", "text/plain")],
        b"x",
    )
    .await;
    problem(&denied, 403);
    assert!(
        denied
            .must("www-authenticate")
            .contains("insufficient_scope"),
        "{}",
        denied.head
    );
    problem(&call(&s, "DELETE", "/resources/x", &[read], b"").await, 403);
    problem(&call(&s, "POST", "/jobs", &[read], b"").await, 403);

    let made = call(
        &s,
        "PUT",
        "/resources/x",
        &[write, ("Content-Type", "text/plain")],
        b"x",
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.head);
    let got = call(&s, "GET", "/resources/x", &[read], b"").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"x");
    let wrong = call(
        &s,
        "PUT",
        "/resources/x",
        &[
            ("Authorization", "Bearer writer-secretX"),
            ("Content-Type", "text/plain"),
        ],
        b"y",
    )
    .await;
    problem(&wrong, 401);
    // Routes without state stay open.
    assert_eq!(call(&s, "GET", "/status/200", &[], b"").await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// 500: a store that fails
// ---------------------------------------------------------------------------------------------

/// The engine's message: internal detail that must never reach a client.
const ENGINE_SECRET: &str = "sector 7 of /dev/sdz melted";
/// A panic message: internal detail too.
const PANIC_SECRET: &str = "invariant broken in bucket 42";

/// A store whose state operations fail with an engine error; reading the resource named
/// `panic` panics instead.
#[derive(Debug)]
struct FailingStore;

fn broken<T>() -> Result<T, StoreError> {
    Err(StoreError::Engine(ENGINE_SECRET.to_owned()))
}

#[async_trait::async_trait]
impl Store for FailingStore {
    fn kind(&self) -> &'static str {
        "failing"
    }
    async fn resource(&self, name: &str) -> Result<Lookup, StoreError> {
        if name == "panic" {
            panic!("{PANIC_SECRET}");
        }
        broken()
    }
    async fn list_resources(&self, _limit: usize) -> Result<Vec<ResourceMeta>, StoreError> {
        broken()
    }
    async fn write_resource(
        &self,
        _name: &str,
        _new: NewResource,
        _mode: WriteMode,
        _conditions: Conditions,
    ) -> Result<WriteOutcome, StoreError> {
        broken()
    }
    async fn delete_resource(
        &self,
        _name: &str,
        _conditions: Conditions,
    ) -> Result<DeleteOutcome, StoreError> {
        broken()
    }
    async fn submit_job(&self, _job: Job) -> Result<JobOutcome, StoreError> {
        broken()
    }
    async fn job(&self, _id: &str) -> Result<Option<Job>, StoreError> {
        broken()
    }
    async fn cancel_job(&self, _id: &str) -> Result<bool, StoreError> {
        broken()
    }
    async fn sequence_step(
        &self,
        _key: &str,
        _codes: Vec<u16>,
        _attempt: Attempt,
    ) -> Result<SequenceStep, StoreError> {
        broken()
    }
    async fn sequence(&self, _key: &str) -> Result<Option<Sequence>, StoreError> {
        broken()
    }
    async fn reset_sequence(&self, _key: &str) -> Result<bool, StoreError> {
        broken()
    }
    async fn rate_limit_with(
        &self,
        _key: &str,
        _limit: u32,
        _period: Duration,
        _algorithm: RateAlgorithm,
    ) -> Result<RateDecision, StoreError> {
        broken()
    }
    async fn sweep(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn maintenance(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn set_maintenance(&self, _on: bool) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Checks a 500: problem+json whose detail names the `X-Error-Id` and nothing internal.
#[track_caller]
fn internal_error(r: &crate::support::Response) -> String {
    assert_eq!(
        r.status,
        500,
        "{}\n{}",
        r.head,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.must("content-type"), "application/problem+json");
    let id = r.must("x-error-id").to_owned();
    assert!(!id.is_empty());
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let v = r.json();
    let detail = v["detail"].as_str().expect("a detail");
    assert!(
        detail.contains(&id),
        "the detail names the error id {id}: {detail}"
    );
    for secret in [ENGINE_SECRET, PANIC_SECRET, "storage engine", "panic"] {
        assert!(!text.contains(secret), "{secret:?} leaked: {text}");
        assert!(!r.head.contains(secret), "{secret:?} leaked: {}", r.head);
    }
    id
}

#[tokio::test]
async fn a_failing_store_gives_500_with_an_error_id_and_the_server_keeps_serving() {
    let s = CustomServer::start(Arc::new(FailingStore)).await;
    let host = s.host();
    let mut conn = Conn::connect(s.addr).await;
    let mut ids = BTreeSet::new();
    for req in [
        request("GET", "/resources/x", &host, &[], b""),
        request(
            "PUT",
            "/resources/x",
            &host,
            &[("Content-Type", "text/plain")],
            b"x",
        ),
        request("POST", "/resources", &host, &[("Slug", "y")], b"y"),
        request("DELETE", "/resources/x", &host, &[], b""),
        request("GET", "/resources", &host, &[], b""),
        request(
            "POST",
            "/jobs",
            &host,
            &[("Content-Type", "application/json")],
            b"{}",
        ),
        request("GET", "/jobs/abc", &host, &[], b""),
        request("GET", "/sequence/k/503,200", &host, &[], b""),
        request("GET", "/sequences/k", &host, &[], b""),
    ] {
        conn.send(&req).await;
        let r = conn.read_exchange(false).await;
        ids.insert(internal_error(&r));
        assert_ne!(r.header("connection"), Some("close"), "{}", r.head);
    }
    assert_eq!(ids.len(), 9, "every failure has its own error id: {ids:?}");
    // The same connection still serves, and so does the server.
    conn.send(&request("GET", "/status/200", &host, &[], b""))
        .await;
    assert_eq!(conn.read_exchange(false).await.status, 200);
    let mut fresh = Conn::connect(s.addr).await;
    fresh
        .send(&request("GET", "/status/200", &host, &[], b""))
        .await;
    assert_eq!(fresh.read_exchange(false).await.status, 200);
}

#[tokio::test]
async fn a_panicking_store_method_gives_500_and_the_server_keeps_serving() {
    let s = CustomServer::start(Arc::new(FailingStore)).await;
    let host = s.host();
    let mut conn = Conn::connect(s.addr).await;
    conn.send(&request("GET", "/resources/panic", &host, &[], b""))
        .await;
    let first = conn.read_exchange(false).await;
    let id = internal_error(&first);
    // Again on the same connection: the panic did not take the connection down.
    conn.send(&request("HEAD", "/resources/panic", &host, &[], b""))
        .await;
    let second = conn.read_exchange(true).await;
    assert_eq!(second.status, 500, "{}", second.head);
    assert_ne!(second.must("x-error-id"), id);
    conn.send(&request("GET", "/status/200", &host, &[], b""))
        .await;
    assert_eq!(conn.read_exchange(false).await.status, 200);
    let mut fresh = Conn::connect(s.addr).await;
    fresh
        .send(&request("GET", "/health", &host, &[], b""))
        .await;
    assert_eq!(fresh.read_exchange(false).await.status, 200);
}

/// Refusals that depend on who calls or what is sent (401, 403, 415, 503) come instead of the
/// `100 Continue` too: the content of a refused upload is never read.
#[tokio::test]
async fn refusals_from_the_head_come_instead_of_100_continue() {
    let s = TestServer::start_with(|c| {
        c.tokens = vec!["rd:read".parse().unwrap(), "wr:write".parse().unwrap()];
    })
    .await;
    let host = s.host();
    let cases = [
        ("PUT /resources/a", "", "text/plain", 401),
        (
            "PUT /resources/a",
            "Authorization: Bearer rd\r\n",
            "text/plain",
            403,
        ),
        (
            "PATCH /resources/a",
            "Authorization: Bearer wr\r\n",
            "text/plain",
            415,
        ),
        (
            "POST /jobs",
            "Authorization: Bearer wr\r\n",
            "text/plain",
            415,
        ),
    ];
    for (line, auth, ct, code) in cases {
        let mut conn = s.connect().await;
        let head = format!(
            "{line} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: {ct}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        );
        conn.send(head.as_bytes()).await;
        let first = conn.read_response(false).await;
        assert!(
            first.head.starts_with(&format!("HTTP/1.1 {code} ")),
            "{line} with {auth:?}: the first answer is {code}, not an interim 100:\n{}",
            first.head
        );
        conn.expect_eof().await;
    }
}
