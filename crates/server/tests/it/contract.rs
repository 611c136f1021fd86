//! What the README promises of every reply, checked on every route and every early reply; and
//! the on-demand details a client relies on (caching, `Vary`, validators on 206, option
//! conflicts).

use crate::support::{TestServer, check, ensure, request};

/// A concrete path for every route of the route table (trailing-slash redirects aside).
const ROUTE_PATHS: &[&str] = &[
    "/",
    "/codes",
    "/codes/404",
    "/status/418",
    "/418",
    "/random/200,500-504",
    "/websocket/echo",
    "/openapi.json",
    "/health",
    "/metrics",
    "/healthz",
    "/readyz",
    "/resources",
    "/resources/doc",
    "/jobs",
    "/jobs/0123456789abcdef",
    "/jobs/0123456789abcdef/result",
    "/sequence/k/503,200",
    "/sequences/k",
    "/sequences/k/report",
    "/basic-auth/u/p",
    "/hidden-basic-auth/u/p",
    "/bearer",
    "/rate-limit/5/1s",
    "/admin/maintenance",
    "/gateway/self",
    "/gateway/self/",
    "/gateway/self/status/200",
];

fn cors(r: &crate::support::Response) -> Result<(), String> {
    ensure(r.header("access-control-allow-origin") == Some("*"), || {
        format!("no Access-Control-Allow-Origin: *\n{}", r.head)
    })?;
    ensure(
        r.header("access-control-expose-headers")
            .is_some_and(|v| v.contains("Retry-After") && v.contains("Sequence-Step")),
        || {
            format!(
                "Access-Control-Expose-Headers lacks Retry-After or Sequence-Step\n{}",
                r.head
            )
        },
    )
}

/// "Every reply carries `Access-Control-Allow-Origin: *`": the early protocol replies too.
#[tokio::test]
async fn early_protocol_replies_carry_cors_headers() {
    let server = TestServer::start_with(|c| {
        c.max_body = 16;
        c.max_uri = 64;
        c.max_headers = 8;
    })
    .await;
    let host = server.host();
    let many: Vec<(String, String)> = (0..10).map(|i| (format!("X-{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let long = format!("/status/200?{}", "x".repeat(100));
    let cases: Vec<(u16, Vec<u8>)> = vec![
        (
            411,
            format!("POST /resources HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                .into_bytes(),
        ),
        (413, request("POST", "/status/200", &host, &[], &[b'x'; 64])),
        (414, request("GET", &long, &host, &[], b"")),
        (
            415,
            request(
                "PATCH",
                "/resources/doc",
                &host,
                &[("Content-Type", "text/plain")],
                b"x",
            ),
        ),
        (417, request("GET", "/status/200", &host, &[("Expect", "foo")], b"")),
        (431, request("GET", "/status/200", &host, &many, b"")),
        (505, b"GET /status/200 HTTP/1.2\r\nHost: x\r\n\r\n".to_vec()),
        (400, b"GET /status/200 HTTP/1.1\r\n\r\n".to_vec()),
        (501, request("PROPFIND", "/status/200", &host, &[], b"")),
        (405, request("TRACE", "/status/200", &host, &[], b"")),
    ];
    let mut results = Vec::new();
    for (want, bytes) in cases {
        let r = server.exchange(&bytes).await;
        results.push((want, r.last.clone()));
    }
    check(&results, |(want, r)| {
        ensure(r.status == *want, || {
            format!("got {}, want {want}", r.status)
        })?;
        cors(r)
    });
}

/// "A method statuslab does not implement gets 501" and every reply carries CORS headers, on
/// every route.
#[tokio::test]
async fn every_route_501_for_unknown_methods_with_cors() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut results = Vec::new();
    for path in ROUTE_PATHS {
        for method in ["PROPFIND", "BREW", "LINK"] {
            let r = server
                .exchange(&request(method, path, &host, &[], b""))
                .await;
            results.push((format!("{method} {path}"), r.last.clone()));
        }
    }
    check(&results, |(what, r)| {
        ensure(r.status == 501, || format!("{what}: got {}", r.status))?;
        cors(r)
    });
}

/// TRACE and QUERY are implemented by the echoes only: there they answer as any other method
/// (the echo names the method); every other route answers them 405 with its `Allow`, which
/// lists neither (RFC 9110 §15.5.6), and CORS headers. They were 501 on every route, a method
/// statuslab implements for no resource.
#[tokio::test]
async fn trace_and_query_are_echoed_and_elsewhere_405_with_allow() {
    let server = TestServer::start().await;
    let host = server.host();
    let mut results = Vec::new();
    for path in ROUTE_PATHS {
        for method in ["TRACE", "QUERY"] {
            let r = server
                .exchange(&request(method, path, &host, &[], b""))
                .await;
            results.push((format!("{method} {path}"), r.last.clone()));
        }
    }
    check(&results, |(what, r)| {
        ensure(r.status == 405, || format!("{what}: got {}", r.status))?;
        let allow = r.tokens("allow");
        ensure(
            allow.iter().any(|m| m == "OPTIONS")
                && !allow.iter().any(|m| m == "TRACE" || m == "QUERY"),
            || format!("{what}: Allow {allow:?}"),
        )?;
        cors(r)
    });
    for path in ["/anything", "/anything/x/y?a=1", "/dump/request"] {
        for method in ["TRACE", "QUERY"] {
            let body: &[u8] = if method == "QUERY" { b"q=1" } else { b"" };
            let r = server
                .exchange(&request(method, path, &host, &[], body))
                .await
                .last;
            assert_eq!(r.status, 200, "{method} {path}\n{}", r.head);
            if path.starts_with("/anything") {
                assert_eq!(r.json()["method"], method, "{path}");
                assert_eq!(r.json()["data"], *String::from_utf8_lossy(body), "{path}");
            } else {
                assert!(
                    r.text().starts_with(&format!("{method} /dump/request ")),
                    "{}",
                    r.text()
                );
                assert!(
                    r.text()
                        .ends_with(&String::from_utf8_lossy(body).into_owned())
                );
            }
        }
    }
}

/// "In maintenance every other route answers 503 with `Retry-After`": every route but
/// `/health`, `/healthz`, `/readyz` and `/admin/*`, whatever the method.
#[tokio::test]
async fn maintenance_answers_503_on_every_other_route() {
    let server = TestServer::start_with(|c| c.maintenance = true).await;
    let host = server.host();
    let mut results = Vec::new();
    for path in ROUTE_PATHS {
        let r = server
            .exchange(&request("GET", path, &host, &[], b""))
            .await;
        results.push((*path, r.last.clone()));
    }
    check(&results, |(path, r)| {
        let exempt = matches!(*path, "/health" | "/healthz" | "/readyz" | "/metrics")
            || path.starts_with("/admin/");
        if exempt {
            ensure(r.status != 503, || format!("{path} is exempt, got 503"))
        } else {
            ensure(r.status == 503, || format!("{path}: got {}", r.status))?;
            ensure(r.header("retry-after").is_some(), || {
                format!("{path}: no Retry-After")
            })?;
            cors(r)
        }
    });
}

/// On-demand answers are fixtures: `Cache-Control: no-store` unless `?cache=N` asks for
/// caching; a body chosen by `Accept` says `Vary: Accept`, one chosen by `format=` does not.
#[tokio::test]
async fn on_demand_caching_and_vary() {
    let server = TestServer::start().await;
    let plain = server.get("/status/200", &[]).await;
    assert_eq!(plain.header("cache-control"), Some("no-store"));
    assert_eq!(plain.header("vary"), Some("Accept"));
    let cached = server.get("/status/301?cache=60", &[]).await;
    assert_eq!(cached.header("cache-control"), Some("max-age=60"));
    let fixed = server.get("/status/200?format=json", &[]).await;
    assert_eq!(fixed.header("vary"), None);
    let error = server.get("/status/abc", &[]).await;
    assert_eq!(error.status, 400);
    assert_eq!(error.header("vary"), Some("Accept"));
    assert_eq!(server.get("/status/200?cache=never", &[]).await.status, 400);
}

/// The on-demand 206 honours the validators it sends, answers an unsatisfiable `Range` with
/// 416, and ignores a malformed one (the default slice, bytes 0-99).
#[tokio::test]
async fn on_demand_206_validators_and_ranges() {
    let server = TestServer::start().await;
    let first = server.get("/status/206", &[]).await;
    assert_eq!(first.status, 206);
    assert_eq!(first.header("content-range"), Some("bytes 0-99/1024"));
    let etag = first.must("etag").to_owned();
    let modified = first.must("last-modified").to_owned();
    let again = server.get("/status/206", &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304, "{}", again.head);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert!(again.body.is_empty());
    let since = server
        .get("/status/206", &[("If-Modified-Since", &modified)])
        .await;
    assert_eq!(since.status, 304);
    let unsatisfiable = server.get("/status/206", &[("Range", "bytes=5000-")]).await;
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(unsatisfiable.header("content-range"), Some("bytes */1024"));
    let malformed = server.get("/status/206", &[("Range", "pages=1-2")]).await;
    assert_eq!(malformed.status, 206);
    assert_eq!(malformed.header("content-range"), Some("bytes 0-99/1024"));
}

/// Options that cannot both hold are refused, not silently dropped.
#[tokio::test]
async fn conflicting_on_demand_options_get_400() {
    let server = TestServer::start().await;
    let then = server.get("/status/404?then=200", &[]).await;
    assert_eq!(then.status, 400);
    assert!(
        then.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("then=")
    );
    assert_eq!(server.get("/status/103?then=204", &[]).await.status, 204);
    // A sequence without a 1xx step refuses then= before it takes a step.
    let seq = server.get("/sequence/t/503,200?then=204", &[]).await;
    assert_eq!(seq.status, 400, "{}", seq.head);
    assert!(
        seq.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("then=")
    );
    assert_eq!(
        server.get("/sequences/t", &[]).await.status,
        404,
        "no step taken"
    );
    let seq = server.get("/sequence/t/103,200?then=204", &[]).await;
    assert_eq!((seq.status, seq.must("sequence-step")), (204, "1/2"));
    let both = server
        .get("/status/302?location=/a&header=Location:/b", &[])
        .await;
    assert_eq!(both.status, 400);
}

/// The 413 for content over `--max-body` is a fixed limit: no `Retry-After`, and its body
/// does not tell the client to wait for one.
#[tokio::test]
async fn max_body_413_says_not_to_repeat() {
    let server = TestServer::start_with(|c| c.max_body = 8).await;
    let r = server
        .exchange(&request(
            "POST",
            "/status/200",
            &server.host(),
            &[],
            b"0123456789",
        ))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.header("retry-after"), None);
    let next = r.json()["advice"].as_str().unwrap_or("").to_owned();
    assert!(next.contains("do not repeat"), "{next}");
}

/// A full store's 413 and a full family's 507 carry `--default-retry-after`.
#[tokio::test]
async fn store_full_replies_use_the_default_retry_after() {
    let server = TestServer::start_with(|c| {
        c.default_retry_after = 7;
        c.limits.max_store_bytes = 4;
        c.limits.max_keys = 1;
    })
    .await;
    let host = server.host();
    let full = server
        .exchange(&request("PUT", "/resources/a", &host, &[], b"too big"))
        .await;
    assert_eq!(full.status, 413, "{}", full.head);
    assert_eq!(full.header("retry-after"), Some("7"));
    let first = server
        .exchange(&request("PUT", "/resources/a", &host, &[], b"ok"))
        .await;
    assert_eq!(first.status, 201);
    let second = server
        .exchange(&request("PUT", "/resources/b", &host, &[], b"ok"))
        .await;
    assert_eq!(second.status, 507);
    assert_eq!(second.header("retry-after"), Some("7"));
}

/// A finished job cannot be cancelled: 409, and the monitor still leads to its result.
#[tokio::test]
async fn deleting_a_finished_job_is_a_conflict() {
    let server = TestServer::start().await;
    let host = server.host();
    let submitted = server
        .exchange(&request(
            "POST",
            "/jobs",
            &host,
            &[("Content-Type", "application/json")],
            br#"{"duration":0}"#,
        ))
        .await;
    assert_eq!(submitted.status, 202);
    let monitor = submitted.must("location").to_owned();
    let deleted = server
        .exchange(&request("DELETE", &monitor, &host, &[], b""))
        .await;
    assert_eq!(deleted.status, 409, "{}", deleted.head);
    assert!(deleted.must("location").ends_with("/result"));
    assert_eq!(server.get(&monitor, &[]).await.status, 303);
}

/// `PUT /admin/maintenance` honours its body: `{"maintenance": false}` switches it off, and a
/// body it cannot read is refused rather than taken as "on".
#[tokio::test]
async fn maintenance_put_honours_its_body() {
    let server = TestServer::start_with(|c| {
        c.tokens = vec![statuslab_server::Token {
            secret: "root".to_owned(),
            scope: statuslab_server::Scope::Admin,
        }];
    })
    .await;
    let host = server.host();
    let auth = [("Authorization", "Bearer root")];
    let put = |body: &'static [u8]| request("PUT", "/admin/maintenance", &host, &auth, body);
    assert_eq!(
        server
            .exchange(&put(br#"{"maintenance": true}"#))
            .await
            .status,
        204
    );
    assert_eq!(server.get("/status/200", &[]).await.status, 503);
    assert_eq!(
        server
            .exchange(&put(br#"{"maintenance": false}"#))
            .await
            .status,
        204
    );
    assert_eq!(server.get("/status/200", &[]).await.status, 200);
    assert_eq!(server.exchange(&put(b"on please")).await.status, 400);
    assert_eq!(
        server
            .exchange(&put(br#"{"maintenance": "yes"}"#))
            .await
            .status,
        422
    );
    assert_eq!(
        server.get("/status/200", &[]).await.status,
        200,
        "refused bodies change nothing"
    );
    assert_eq!(server.exchange(&put(b"")).await.status, 204, "no body: on");
    assert_eq!(server.get("/status/200", &[]).await.status, 503);
}

/// The bounds /openapi.json states are the ones this server enforces: `--max-delay`,
/// `--max-body` and `--max-job-duration` fill the schemas marked for them, and a value at the
/// stated maximum passes while one past it gets 400.
#[tokio::test]
async fn openapi_bounds_follow_the_configuration() {
    let server = TestServer::start_with(|c| {
        c.max_delay = std::time::Duration::from_millis(300);
        c.max_body = 1000;
        c.max_job_duration = std::time::Duration::from_secs(5);
    })
    .await;
    let doc = server.get("/openapi.json", &[]).await.json();
    let sleep = doc["paths"]["/status/{codes}"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "sleep"))
        .expect("/status documents sleep");
    assert_eq!(sleep["schema"]["maximum"], 300);
    let delay = &doc["paths"]["/delay/{n}"]["parameters"][0]["schema"];
    assert_eq!(delay["maximum"], 0.3);
    assert_eq!(
        doc["paths"]["/bytes/{n}"]["parameters"][0]["schema"]["maximum"],
        1000
    );
    let job = &doc["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        ["properties"]["duration"]["anyOf"][0];
    assert_eq!(job["maximum"], 5000);
    assert_eq!(server.get("/status/200?sleep=300", &[]).await.status, 200);
    assert_eq!(server.get("/status/200?sleep=301", &[]).await.status, 400);
    assert_eq!(server.get("/bytes/1000", &[]).await.status, 200);
    assert_eq!(server.get("/bytes/1001", &[]).await.status, 400);
}
