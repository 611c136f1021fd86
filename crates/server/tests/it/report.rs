//! `GET /sequences/{key}/report`: the verdict on a client, from what real clients did —
//! urllib3's `Retry` against a loop that retries at once, repeats the table forbids, a POST
//! repeated without an `Idempotency-Key` — and the HTML time line as headless Chromium renders it.

use crate::edge::{describe, python, run, unique};
use crate::support::{TestServer, request};
use serde_json::Value;

async fn report(server: &TestServer, key: &str) -> Value {
    let r = server.get(&format!("/sequences/{key}/report"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.must("content-type"), "application/json");
    r.json()
}

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> u16 {
    let host = server.host();
    server
        .exchange(&request(method, path, &host, headers, body))
        .await
        .status
}

fn findings(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings list: {v:#}"))
        .iter()
        .map(|f| f.as_str().expect("a sentence").to_owned())
        .collect()
}

/// The test of the judge: urllib3's `Retry` waits out `Retry-After`; a loop that
/// repeats at once does not. Same scenario, same server, opposite verdicts.
#[tokio::test(flavor = "multi_thread")]
async fn the_report_tells_urllib3_retry_from_an_immediate_loop() {
    let server = TestServer::start().await;
    let (polite, eager) = (unique("urllib3"), unique("loop"));
    let out = python("retry_report.py", &[&server.url(""), &polite, &eager]).await;
    assert_eq!(out["urllib3"], 200, "{out}");
    assert_eq!(out["loop"], 200, "{out}");

    let v = report(&server, &polite).await;
    assert_eq!(v["attempts"], 3, "{v:#}");
    assert_eq!(v["honoured_retry_after"], true, "{v:#}");
    assert_eq!(v["backoff"], "constant", "{v:#}");
    assert_eq!(v["succeeded"], true);
    assert_eq!(v["gave_up"], false);
    assert_eq!(v["verdict"], "clean", "{v:#}");
    assert!(v["longest_gap_ms"].as_u64().unwrap() >= 1000, "{v:#}");

    let v = report(&server, &eager).await;
    assert_eq!(v["attempts"], 3, "{v:#}");
    assert_eq!(v["honoured_retry_after"], false, "{v:#}");
    assert_eq!(v["backoff"], "none", "{v:#}");
    assert_eq!(v["verdict"], "findings");
    let f = findings(&v);
    assert_eq!(f.len(), 2, "one finding per early repeat: {f:#?}");
    assert!(
        f.iter().all(|s| s.contains("asked to wait 1 s")
            && s.contains("the table's 429 row says")
            && s.contains("Retry-After header of the response expires")),
        "{f:#?}"
    );
}

/// Repeating unchanged after 400, 403, 404, 405 and 503 is reported with the table's words;
/// a modified repeat (another body, another query) is not.
#[tokio::test]
async fn repeats_the_table_forbids_are_findings_modified_ones_are_not() {
    let server = TestServer::start().await;
    for code in [400, 403, 404, 405, 503] {
        let key = unique(&format!("unchanged-{code}"));
        let path = format!("/sequence/{key}/{code},200");
        assert_eq!(send(&server, "PUT", &path, &[], b"{\"a\":1}").await, code);
        assert_eq!(send(&server, "PUT", &path, &[], b"{\"a\":1}").await, 200);
        let v = report(&server, &key).await;
        assert_eq!(v["repeated_unchanged"], true, "{code}: {v:#}");
        assert_eq!(v["timeline"][1]["unchanged"], true, "{code}: {v:#}");
        let f = findings(&v);
        assert!(
            f.iter()
                .any(|s| s.contains(&format!("the table's {code} row says"))
                    && s.contains("should not repeat the request without modifications")),
            "{code}: {f:#?}"
        );

        let key = unique(&format!("modified-{code}"));
        let path = format!("/sequence/{key}/{code},200");
        assert_eq!(send(&server, "PUT", &path, &[], b"{\"a\":1}").await, code);
        assert_eq!(send(&server, "PUT", &path, &[], b"{\"a\":2}").await, 200);
        let v = report(&server, &key).await;
        assert_eq!(v["repeated_unchanged"], false, "{code}: {v:#}");
        assert_eq!(v["timeline"][1]["unchanged"], false, "{code}: {v:#}");
    }
    // Bookkeeping headers (a retry counter, a request id) do not make a request another one.
    let key = unique("bookkeeping");
    let path = format!("/sequence/{key}/404,200");
    send(
        &server,
        "GET",
        &path,
        &[("X-Request-Id", "a"), ("X-Retry-Attempt", "0")],
        b"",
    )
    .await;
    send(
        &server,
        "GET",
        &path,
        &[("X-Request-Id", "b"), ("X-Retry-Attempt", "1")],
        b"",
    )
    .await;
    assert_eq!(report(&server, &key).await["repeated_unchanged"], true);
}

/// A POST repeated after a 500 or a reset needs an `Idempotency-Key`.
#[tokio::test]
async fn a_post_repeated_without_an_idempotency_key_is_a_finding() {
    let server = TestServer::start().await;
    let bare = unique("post-bare");
    for _ in 0..2 {
        send(
            &server,
            "POST",
            &format!("/sequence/{bare}/500,201"),
            &[],
            b"x",
        )
        .await;
    }
    let v = report(&server, &bare).await;
    assert_eq!(v["retried_non_idempotent_without_key"], true, "{v:#}");
    assert!(
        findings(&v)
            .iter()
            .any(|s| s.contains("without an Idempotency-Key")
                && s.contains("the table's 500 row says")),
        "{v:#}"
    );

    let keyed = unique("post-keyed");
    for _ in 0..2 {
        send(
            &server,
            "POST",
            &format!("/sequence/{keyed}/500,201"),
            &[("Idempotency-Key", "k1")],
            b"x",
        )
        .await;
    }
    let v = report(&server, &keyed).await;
    assert_eq!(v["retried_non_idempotent_without_key"], false, "{v:#}");
    assert_eq!(v["timeline"][0]["idempotency_key"], "k1");
    // One immediate repeat is not a finding; a loop of them is.
    assert_eq!(v["backoff"], "none");
    assert_eq!(v["verdict"], "clean", "{v:#}");

    let storm = unique("storm");
    for _ in 0..3 {
        send(
            &server,
            "GET",
            &format!("/sequence/{storm}/500,500,200"),
            &[],
            b"",
        )
        .await;
    }
    let f = findings(&report(&server, &storm).await);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].contains("repeated at once 2 times") && f[0].contains("the table's 500 row says"),
        "{f:#?}"
    );
}

/// The report of a sequence no one tried is a 404; a bad key a 400; HTML on request, with
/// one mark per attempt and one shaded window per `Retry-After`.
#[tokio::test]
async fn the_report_is_negotiated_and_checked() {
    let server = TestServer::start().await;
    let r = server.get("/sequences/never-tried/report", &[]).await;
    assert_eq!(r.status, 404, "{}", r.head);
    let r = server.get("/sequences/bad%20key/report", &[]).await;
    assert_eq!(r.status, 400, "{}", r.head);

    let key = unique("html");
    let path = format!("/sequence/{key}/429,reset,200?retry_after=1");
    assert_eq!(send(&server, "GET", &path, &[], b"").await, 429);
    let host = server.host();
    let mut conn = server.connect().await;
    conn.send(&request("GET", &path, &host, &[], b"")).await;
    conn.expect_eof().await;
    assert_eq!(send(&server, "GET", &path, &[], b"").await, 200);

    for (target, accept) in [
        (format!("/sequences/{key}/report"), "text/html"),
        (
            format!("/sequences/{key}/report?format=html"),
            "application/json",
        ),
    ] {
        let r = server.get(&target, &[("Accept", accept)]).await;
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.must("content-type"), "text/html; charset=utf-8");
        assert!(
            r.tokens("vary")
                .iter()
                .any(|t| t.eq_ignore_ascii_case("accept")),
            "{}",
            r.head
        );
        let page = r.text();
        assert_eq!(page.matches("<circle").count(), 3, "{page}");
        assert_eq!(page.matches("class=\"retry-after\"").count(), 1, "{page}");
        assert!(page.contains(">reset<"), "{page}");
        assert!(
            !page.contains("src=") && !page.contains("href=\"http"),
            "no external assets"
        );
    }
    let v = report(&server, &key).await;
    assert_eq!(v["timeline"][1]["code"], "reset");
    assert_eq!(v["timeline"][1]["outcome"], "fault");
    assert_eq!(v["codes"], serde_json::json!([429, "reset", 200]));
    let r = server
        .get(&format!("/sequences/{key}/report?format=text"), &[])
        .await;
    assert_eq!(r.status, 400, "{}", r.head);
    let r = server
        .get(
            &format!("/sequences/{key}/report"),
            &[("Accept", "text/plain")],
        )
        .await;
    assert_eq!(r.status, 406, "{}", r.head);
}

/// Headless Chromium renders the page: the SVG time line is in the DOM with its marks.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_renders_the_time_line() {
    let server = TestServer::start().await;
    let key = unique("chromium");
    let path = format!("/sequence/{key}/503,429,200?retry_after=1");
    for _ in 0..3 {
        send(&server, "GET", &path, &[], b"").await;
    }
    let url = server.url(&format!("/sequences/{key}/report"));
    let profile = tempfile::tempdir().expect("a profile directory");
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    let out = run(
        "chromium",
        &[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            &profile_arg,
            "--dump-dom",
            &url,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<svg") && dom.contains("id=\"timeline\""),
        "{dom}"
    );
    assert_eq!(dom.matches("<circle").count(), 3, "{dom}");
    assert_eq!(dom.matches("class=\"retry-after\"").count(), 2, "{dom}");
    assert!(dom.contains("id=\"verdict\">findings<"), "{dom}");
}
