//! Query options and routes: sleep (capped by --max-delay), location (never an open
//! redirect), header= (validated), httpstat.us `/{code}` with its request headers,
//! `/random`, weighted lists, bad codes, `/codes` and `/`.

use crate::support::{TestServer, check, ensure, request};
use std::time::{Duration, Instant};

/// The problem `detail` of a 400, failing if the reply is not one.
#[track_caller]
fn problem_detail(r: &crate::support::Exchange) -> String {
    assert_eq!(
        r.status,
        400,
        "want 400, got:\n{}\n{}",
        r.head,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.must("content-type"), "application/problem+json");
    let v = r.json();
    assert_eq!(v["status"], 400);
    v["detail"].as_str().expect("a detail").to_owned()
}

#[tokio::test]
async fn sleep_delays_the_reply() {
    let server = TestServer::start().await;
    for target in [
        "/status/200?sleep=150",
        "/status/200?sleep=150ms",
        "/200?sleep=150",
        "/random/200?sleep=150ms",
    ] {
        let started = Instant::now();
        let r = server.get(target, &[]).await;
        assert_eq!(r.status, 200, "{target}");
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{target} did not wait"
        );
    }
    let started = Instant::now();
    let r = server.get("/202", &[("X-HttpStatus-Sleep", "150")]).await;
    assert_eq!(r.status, 202);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "X-HttpStatus-Sleep ignored"
    );
}

#[tokio::test]
async fn sleep_past_max_delay_is_refused_naming_the_cap() {
    let server = TestServer::start_with(|c| c.max_delay = Duration::from_secs(1)).await;
    for target in [
        "/status/200?sleep=2s",
        "/status/200?sleep=1001",
        "/200?sleep=5000",
    ] {
        let detail = problem_detail(&server.get(target, &[]).await);
        assert!(
            detail.contains("1s") && detail.contains("--max-delay"),
            "{target}: {detail}"
        );
    }
    let detail = problem_detail(&server.get("/200", &[("X-HttpStatus-Sleep", "3s")]).await);
    assert!(detail.contains("--max-delay"), "{detail}");
    let detail = problem_detail(&server.get("/status/200?sleep=soon", &[]).await);
    assert!(detail.contains("soon"), "{detail}");
    // Below the cap is fine.
    assert_eq!(server.get("/status/200?sleep=1ms", &[]).await.status, 200);
}

#[tokio::test]
async fn location_is_relative_or_same_host_never_an_open_redirect() {
    let server = TestServer::start().await;
    let host = server.host();
    let same_host = format!("http://{host}/elsewhere");
    let ok: Vec<(String, String)> = vec![
        ("/there".into(), "/there".into()),
        ("there?x=1".into(), "there?x=1".into()),
        (
            format!("http%3A%2F%2F{host}%2Felsewhere"),
            same_host.clone(),
        ),
    ];
    for (asked, want) in &ok {
        let r = server
            .get(&format!("/status/302?location={asked}"), &[])
            .await;
        assert_eq!(r.status, 302, "location={asked}");
        assert_eq!(
            r.header("location"),
            Some(want.as_str()),
            "location={asked}"
        );
    }
    let hostile = [
        "//evil.example",
        "//evil.example/path",
        "http://evil.example/",
        "https://evil.example/",
        "HTTP://EVIL.EXAMPLE/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "data:text/html,hi",
        "http:evil.example",
        "///evil.example",
        "/\r\nSet-Cookie:x=1",
    ];
    let mut results = Vec::new();
    for bad in hostile {
        // Percent-encode the value so the server sees it exactly.
        let encoded: String = bad
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let r = server
            .get(&format!("/status/301?location={encoded}"), &[])
            .await;
        results.push((
            bad,
            ensure(r.status == 400, || {
                format!("status {} Location {:?}", r.status, r.header("location"))
            })
            .and(ensure(!r.has("location"), || {
                "a Location was sent".to_owned()
            }))
            .and(ensure(!r.has("set-cookie"), || {
                "header injection".to_owned()
            })),
        ));
    }
    // The authority of another host, dressed as ours.
    let sneaky = format!("http://{host}@evil.example/");
    let r = server
        .get(
            &format!(
                "/status/302?location={}",
                sneaky
                    .replace(':', "%3A")
                    .replace('/', "%2F")
                    .replace('@', "%40")
            ),
            &[],
        )
        .await;
    results.push((
        "userinfo",
        ensure(r.status == 400, || format!("status {}", r.status)),
    ));
    check(results, |(_, outcome)| outcome.clone());
    let detail = problem_detail(&server.get("/status/302?location=//evil.example", &[]).await);
    assert!(detail.contains("open redirect"), "{detail}");
}

#[tokio::test]
async fn header_option_adds_validated_headers() {
    let server = TestServer::start().await;
    let r = server
        .get(
            "/status/200?header=X-One:1&header=X-Two:%20two%20words&header=X-One:again",
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.all("x-one"), ["1", "again"], "repeatable");
    assert_eq!(r.header("x-two"), Some("two words"));

    for bad in [
        "Content-Length:5",
        "content-length:0",
        "Transfer-Encoding:chunked",
        "Connection:keep-alive",
        "X-Bad%20Name:x",
        "X-Split:a%0d%0aSet-Cookie:%20x=1",
        "no-colon",
    ] {
        let r = server.get(&format!("/status/200?header={bad}"), &[]).await;
        let detail = problem_detail(&r);
        assert!(!r.has("set-cookie"), "header injection via {bad}");
        assert!(detail.contains("header"), "{bad}: {detail}");
    }
    let detail = problem_detail(&server.get("/status/200?header=Content-Length:5", &[]).await);
    assert!(detail.contains("framing"), "{detail}");
}

#[tokio::test]
async fn httpstat_us_code_route_and_request_headers() {
    let server = TestServer::start().await;
    let r = server
        .get(
            "/429",
            &[
                ("X-HttpStatus-Response-Foo", "bar"),
                ("X-HttpStatus-Response-X-Trace", "t1"),
            ],
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.header("retry-after"),
        Some("1"),
        "/{{code}} is dressed too"
    );
    assert_eq!(r.header("foo"), Some("bar"));
    assert_eq!(r.header("x-trace"), Some("t1"));
    assert!(!r.has("x-httpstatus-response-foo"));
    let r = server
        .get("/200", &[("X-HttpStatus-Response-Content-Length", "3")])
        .await;
    problem_detail(&r);
    // Not three digits: no such route.
    assert_eq!(server.get("/12", &[]).await.status, 404);
    assert_eq!(server.get("/1234", &[]).await.status, 404);
    assert_eq!(server.get("/abc", &[]).await.status, 404);
    let detail = problem_detail(&server.get("/099", &[]).await);
    assert!(detail.contains("99"), "{detail}");
}

#[tokio::test]
async fn random_lists_and_weights() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut conn = server.connect().await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        conn.send(&request("GET", "/random/200,500-504", &host, &[], b""))
            .await;
        let r = conn.read_exchange(false).await;
        assert!(
            r.status == 200 || (500..=504).contains(&r.status),
            "{}",
            r.status
        );
        seen.insert(r.status);
    }
    assert!(seen.len() >= 3, "60 picks from 6 codes gave only {seen:?}");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        conn.send(&request("GET", "/status/500,503", &host, &[], b""))
            .await;
        let r = conn.read_exchange(false).await;
        assert!(r.status == 500 || r.status == 503, "{}", r.status);
        seen.insert(r.status);
    }
    assert_eq!(seen.len(), 2, "a uniform pick of two codes over 40 tries");
    let mut weighted = std::collections::BTreeSet::new();
    for _ in 0..40 {
        conn.send(&request("GET", "/status/200:0.9,500:0.1", &host, &[], b""))
            .await;
        weighted.insert(conn.read_exchange(false).await.status);
        // A zero weight is never picked.
        conn.send(&request("GET", "/status/200:0,418:1", &host, &[], b""))
            .await;
        assert_eq!(conn.read_exchange(false).await.status, 418);
    }
    assert!(weighted.is_subset(&[200, 500].into()), "{weighted:?}");
    assert!(weighted.contains(&200));
    // Percent-encoded separators work too (clients encode ':' and ',').
    conn.send(&request(
        "GET",
        "/status/200%3A0%2C451%3A1",
        &host,
        &[],
        b"",
    ))
    .await;
    assert_eq!(conn.read_exchange(false).await.status, 451);
}

#[tokio::test]
async fn bad_codes_get_400_saying_what_was_wrong() {
    let server = TestServer::start().await;
    let cases = [
        ("/status/99", "99"),
        ("/status/600", "600"),
        ("/status/abc", "abc"),
        ("/status/1000", "1000"),
        ("/status/200,600", "600"),
        ("/status/200:x", "x"),
        ("/status/200:0,500:0", "weights"),
        ("/random/504-500", "504"),
        ("/random/200,xyz", "xyz"),
    ];
    let mut results = Vec::new();
    for (target, mention) in cases {
        let r = server.get(target, &[]).await;
        let outcome = if r.status != 400 {
            Err(format!("status {}", r.status))
        } else if r.header("content-type") != Some("application/problem+json") {
            Err(format!("content-type {:?}", r.header("content-type")))
        } else {
            let detail = r.json()["detail"].as_str().unwrap_or("").to_owned();
            ensure(detail.contains(mention), || {
                format!("detail {detail:?} does not mention {mention:?}")
            })
        };
        results.push((target, outcome));
    }
    check(results, |(_, outcome)| outcome.clone());
}

#[tokio::test]
async fn other_options() {
    let server = TestServer::start().await;
    for (format, ct) in [
        ("text", "text/plain; charset=utf-8"),
        ("json", "application/json"),
        ("problem", "application/problem+json"),
        ("html", "text/html; charset=utf-8"),
    ] {
        let r = server
            .get(
                &format!("/status/418?format={format}"),
                &[("Accept", "image/png")],
            )
            .await;
        assert_eq!(r.status, 418, "format= overrides Accept");
        assert_eq!(r.header("content-type"), Some(ct));
    }
    problem_detail(&server.get("/status/418?format=xml", &[]).await);
    problem_detail(&server.get("/status/429?retry_after=tomorrow", &[]).await);
    problem_detail(
        &server
            .get("/status/429?retry_after=999999999999", &[])
            .await,
    );
    // Location on a code that does not call for one is still sent when asked.
    let r = server.get("/status/201?location=/things/1", &[]).await;
    assert_eq!(r.header("location"), Some("/things/1"));
}

#[tokio::test]
async fn catalog_routes_and_index_page() {
    let server = TestServer::start().await;
    let r = server.get("/codes", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.must("content-type"), "application/json");
    let all = r.json();
    let codes: Vec<u64> = all
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| e["code"].as_u64().expect("a code"))
        .collect();
    for row in statuslab_catalog::table() {
        assert!(
            codes.contains(&u64::from(row.code)),
            "/codes lacks table row {}",
            row.code
        );
    }
    assert!(codes.contains(&200), "/codes has 200 too");
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "ascending");

    let r = server.get("/codes/504", &[]).await;
    let v = r.json();
    assert_eq!(v["code"], 504);
    assert_eq!(v["message"], "ServerTimeout");
    assert_eq!(v["reason"], "Gateway Timeout");
    let r = server.get("/codes/299", &[]).await;
    assert_eq!(r.status, 200, "any code in 100-599 has an entry");
    assert_eq!(server.get("/codes/600", &[]).await.status, 404);

    let r = server.get("/", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.must("content-type").starts_with("text/html"));
    let page = r.text();
    for code in [100, 206, 429, 504] {
        assert!(
            page.contains(&format!("href=\"/status/{code}\"")),
            "no try-it link for {code}"
        );
    }
    // Its one inline script runs by hash, never by 'unsafe-inline' (tests/it/page.rs drives it).
    assert!(!r.must("content-security-policy").contains("unsafe"));
    assert!(page.contains("ServerTimeout"));
}

#[tokio::test]
async fn added_headers_cannot_redirect_elsewhere() {
    let server = TestServer::start().await;
    for target in [
        "/status/302?header=Location:http://evil.example/",
        "/status/302?header=Location://evil.example",
        "/status/201?header=Content-Location:https://evil.example/x",
        "/status/200?header=Refresh:0;url=http://evil.example/",
    ] {
        let r = server.get(target, &[]).await;
        let detail = problem_detail(&r);
        assert!(
            !r.has("location") && !r.has("refresh"),
            "{target}:\n{}",
            r.head
        );
        assert!(detail.contains("redirect"), "{target}: {detail}");
    }
    let r = server
        .get(
            "/302",
            &[("X-HttpStatus-Response-Location", "http://evil.example/")],
        )
        .await;
    problem_detail(&r);
    // Same-host values are fine, and replace the dressed Location rather than doubling it.
    let r = server.get("/status/302?header=Location:/mine", &[]).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.all("location"), ["/mine"]);
}

#[tokio::test]
async fn added_singleton_headers_replace_rather_than_duplicate() {
    let server = TestServer::start().await;
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    let r = server
        .get(
            "/status/200?header=Date:Wed,%2021%20Oct%202015%2007:28:00%20GMT&header=Content-Type:application/xml",
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.all("date"), [date], "one Date field:\n{}", r.head);
    assert_eq!(
        r.all("content-type"),
        ["application/xml"],
        "one Content-Type:\n{}",
        r.head
    );
    let r = server
        .get(
            "/status/429",
            &[("X-HttpStatus-Response-Retry-After", "30")],
        )
        .await;
    assert_eq!(r.all("retry-after"), ["30"], "one Retry-After:\n{}", r.head);
}
