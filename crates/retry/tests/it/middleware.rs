//! The reqwest middleware, in a `reqwest_middleware::ClientWithMiddleware`.

use crate::support::{TestServer, backoff};
use http::Method;
use reqwest_middleware::ClientBuilder;
use statuslab_retry::reqwest::RetryMiddleware;
use statuslab_retry::{Mode, Rules};
use std::time::Duration;

/// Sends `method` to `path` through the middleware (reading each answer's content, so a
/// truncated body counts as a connection failure); the final status, or the error's text.
async fn send(
    server: &TestServer,
    mode: Mode,
    method: Method,
    path: &str,
    key: Option<&str>,
) -> Result<u16, String> {
    let rules = Rules::new()
        .mode(mode)
        .max_retry_after(Duration::from_secs(5));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(rules, backoff()).read_content(true))
        .build();
    let mut req = client.request(method.clone(), server.url(path));
    if method == Method::POST {
        req = req.body("order");
    }
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    // The content was read by the middleware: the caller reads it from memory.
    res.bytes().await.map_err(|e| e.to_string())?;
    Ok(status)
}

#[tokio::test]
async fn waits_out_retry_after_on_429() {
    let server = TestServer::start().await;
    let got = send(
        &server,
        Mode::Table,
        Method::GET,
        "/sequence/m429/429,200?retry_after=1",
        None,
    )
    .await;
    assert_eq!(got, Ok(200));
    let report = server.report("m429").await;
    report.assert_clean(2);
    assert_eq!(report.get("honoured_retry_after"), true, "{:#}", report.0);
    assert!(report.since_previous_ms(1) >= 1000, "{:#}", report.0);
}

#[tokio::test]
async fn table_mode_does_not_repeat_503() {
    let server = TestServer::start().await;
    let got = send(
        &server,
        Mode::Table,
        Method::GET,
        "/sequence/m503/503,200?retry_after=1",
        None,
    )
    .await;
    assert_eq!(got, Ok(503));
    let report = server.report("m503").await;
    report.assert_clean(1);
    assert_eq!(report.get("gave_up_after"), 1, "{:#}", report.0);
}

#[tokio::test]
async fn rfc_mode_repeats_503_after_retry_after() {
    let server = TestServer::start().await;
    let got = send(
        &server,
        Mode::Rfc,
        Method::GET,
        "/sequence/n503/503,200?retry_after=1",
        None,
    )
    .await;
    assert_eq!(got, Ok(200));
    let report = server.report("n503").await;
    report.assert_only_the_rfc_503_repeat();
    assert!(report.since_previous_ms(1) >= 1000, "{:#}", report.0);
}

#[tokio::test]
async fn backs_off_on_500_for_get() {
    let server = TestServer::start().await;
    let got = send(
        &server,
        Mode::Table,
        Method::GET,
        "/sequence/m500/500,500,200",
        None,
    )
    .await;
    assert_eq!(got, Ok(200));
    let report = server.report("m500").await;
    report.assert_clean(3);
    report.assert_backed_off_to_success();
}

#[tokio::test]
async fn post_after_500_only_with_a_key() {
    let server = TestServer::start().await;
    let got = send(
        &server,
        Mode::Table,
        Method::POST,
        "/sequence/mp/500,200",
        None,
    )
    .await;
    assert_eq!(got, Ok(500));
    server.report("mp").await.assert_clean(1);

    let got = send(
        &server,
        Mode::Table,
        Method::POST,
        "/sequence/mpk/500,200",
        Some("order-2"),
    )
    .await;
    assert_eq!(got, Ok(200));
    let report = server.report("mpk").await;
    report.assert_clean(2);
    assert_eq!(report.idempotency_key(1), Some("order-2"));
}

/// `reset` and `truncate` break the connection: GET and a keyed POST are retried, a POST
/// without a key is not.
async fn connection_fault(fault: &str) {
    let server = TestServer::start().await;
    let path = |key: &str| format!("/sequence/{key}/{fault},200");

    let got = send(&server, Mode::Table, Method::GET, &path("gg"), None).await;
    assert_eq!(got, Ok(200));
    let report = server.report("gg").await;
    report.assert_clean(2);
    assert_eq!(report.steps(), [fault, "200"]);

    let got = send(&server, Mode::Table, Method::POST, &path("gp"), None).await;
    assert!(got.is_err(), "{got:?}");
    server.report("gp").await.assert_clean(1);

    let got = send(&server, Mode::Table, Method::POST, &path("gk"), Some("k-8")).await;
    assert_eq!(got, Ok(200));
    let report = server.report("gk").await;
    report.assert_clean(2);
    assert_eq!(report.idempotency_key(1), Some("k-8"));
}

#[tokio::test]
async fn reset_is_retried_for_repeatable_requests() {
    connection_fault("reset").await;
}

#[tokio::test]
async fn truncate_is_retried_for_repeatable_requests() {
    connection_fault("truncate").await;
}

/// Without `read_content`, the response streams to the caller: a truncated body is the
/// caller's error, and the middleware does not repeat a request whose head arrived.
#[tokio::test]
async fn streamed_content_is_left_to_the_caller() {
    let server = TestServer::start().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(Rules::new(), backoff()))
        .build();
    let res = client
        .get(server.url("/sequence/gs/truncate,200"))
        .send()
        .await
        .expect("the head arrives");
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.is_err());
    server.report("gs").await.assert_clean(1);
}

/// The defaults (100 ms base, equal jitter, three attempts) never repeat at once: the report
/// sees a backoff, not a retry storm.
#[tokio::test]
async fn the_defaults_are_clean() {
    let server = TestServer::start().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::default())
        .build();
    let res = client
        .get(server.url("/sequence/md/500,500,200"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), 200);
    let report = server.report("md").await;
    report.assert_clean(3);
    assert!(report.since_previous_ms(1) >= 50, "{:#}", report.0);
}
