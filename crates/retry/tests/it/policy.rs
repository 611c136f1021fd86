//! The tower policy, over a small service that sends `http::Request<Bytes>` with reqwest and
//! reads each answer's content in full (so a truncated body is the service's error).

use crate::support::{TestServer, backoff};
use bytes::Bytes;
use http::Method;
use statuslab_retry::tower::RetryPolicy;
use statuslab_retry::{Mode, Rules};
use std::sync::Arc;
use std::time::Duration;
use tower::retry::RetryLayer;
use tower::retry::budget::TpsBudget;
use tower::{ServiceBuilder, ServiceExt};

/// Sends `method` to `path` through the policy; the final status, or the error's text.
async fn send(
    server: &TestServer,
    policy: RetryPolicy,
    method: Method,
    path: &str,
    key: Option<&str>,
) -> Result<u16, String> {
    let client = reqwest::Client::new();
    let service = tower::service_fn(move |req: http::Request<Bytes>| {
        let client = client.clone();
        async move {
            let req = reqwest::Request::try_from(req.map(reqwest::Body::from))?;
            let res = client.execute(req).await?;
            let (status, headers) = (res.status(), res.headers().clone());
            let mut answer = http::Response::new(res.bytes().await?);
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok::<_, reqwest::Error>(answer)
        }
    });
    let content = if method == Method::POST {
        Bytes::from_static(b"order")
    } else {
        Bytes::new()
    };
    let mut req = http::Request::builder()
        .method(method)
        .uri(server.url(path));
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let req = req.body(content).expect("a request");
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(service)
        .oneshot(req)
        .await
        .map(|res| res.status().as_u16())
        .map_err(|e| e.to_string())
}

fn policy(mode: Mode) -> RetryPolicy {
    RetryPolicy::new(
        Rules::new()
            .mode(mode)
            .max_retry_after(Duration::from_secs(5)),
        backoff(),
    )
}

#[tokio::test]
async fn waits_out_retry_after_on_429() {
    let server = TestServer::start().await;
    let path = "/sequence/t429/429,200?retry_after=1";
    let got = send(&server, policy(Mode::Table), Method::GET, path, None).await;
    assert_eq!(got, Ok(200));
    let report = server.report("t429").await;
    report.assert_clean(2);
    assert_eq!(report.get("honoured_retry_after"), true, "{:#}", report.0);
    assert!(report.since_previous_ms(1) >= 1000, "{:#}", report.0);
}

#[tokio::test]
async fn table_mode_does_not_repeat_503() {
    let server = TestServer::start().await;
    let path = "/sequence/t503/503,200?retry_after=1";
    let got = send(&server, policy(Mode::Table), Method::GET, path, None).await;
    assert_eq!(got, Ok(503));
    let report = server.report("t503").await;
    report.assert_clean(1);
    assert_eq!(report.get("gave_up_after"), 1, "{:#}", report.0);
}

#[tokio::test]
async fn rfc_mode_repeats_503_after_retry_after() {
    let server = TestServer::start().await;
    let path = "/sequence/r503/503,200?retry_after=1";
    let got = send(&server, policy(Mode::Rfc), Method::GET, path, None).await;
    assert_eq!(got, Ok(200));
    let report = server.report("r503").await;
    report.assert_only_the_rfc_503_repeat();
    assert!(report.since_previous_ms(1) >= 1000, "{:#}", report.0);
}

#[tokio::test]
async fn backs_off_on_500_for_get() {
    let server = TestServer::start().await;
    let path = "/sequence/t500/500,500,200";
    let got = send(&server, policy(Mode::Table), Method::GET, path, None).await;
    assert_eq!(got, Ok(200));
    let report = server.report("t500").await;
    report.assert_clean(3);
    report.assert_backed_off_to_success();
}

#[tokio::test]
async fn gives_up_after_its_attempts() {
    let server = TestServer::start().await;
    let path = "/sequence/tmax/500,500,500,200";
    let got = send(&server, policy(Mode::Table), Method::GET, path, None).await;
    assert_eq!(got, Ok(500));
    let report = server.report("tmax").await;
    report.assert_clean(3);
    assert_eq!(report.get("gave_up_after"), 3, "{:#}", report.0);
}

#[tokio::test]
async fn post_after_500_only_with_a_key() {
    let server = TestServer::start().await;
    let got = send(
        &server,
        policy(Mode::Table),
        Method::POST,
        "/sequence/tp/500,200",
        None,
    )
    .await;
    assert_eq!(got, Ok(500));
    server.report("tp").await.assert_clean(1);

    let path = "/sequence/tpk/500,200";
    let got = send(
        &server,
        policy(Mode::Table),
        Method::POST,
        path,
        Some("order-1"),
    )
    .await;
    assert_eq!(got, Ok(200));
    let report = server.report("tpk").await;
    report.assert_clean(2);
    assert_eq!(report.idempotency_key(1), Some("order-1"));
}

/// `reset` and `truncate` break the connection: GET and a keyed POST are retried, a POST
/// without a key is not (the server may have acted on it).
async fn connection_fault(fault: &str) {
    let server = TestServer::start().await;
    let steps = format!("{fault},200");
    let path = |key: &str| format!("/sequence/{key}/{steps}");

    let got = send(&server, policy(Mode::Table), Method::GET, &path("fg"), None).await;
    assert_eq!(got, Ok(200));
    let report = server.report("fg").await;
    report.assert_clean(2);
    assert_eq!(report.steps(), [fault, "200"]);

    let got = send(
        &server,
        policy(Mode::Table),
        Method::POST,
        &path("fp"),
        None,
    )
    .await;
    assert!(got.is_err(), "{got:?}");
    server.report("fp").await.assert_clean(1);

    let got = send(
        &server,
        policy(Mode::Table),
        Method::POST,
        &path("fk"),
        Some("k-7"),
    )
    .await;
    assert_eq!(got, Ok(200));
    let report = server.report("fk").await;
    report.assert_clean(2);
    assert_eq!(report.idempotency_key(1), Some("k-7"));
}

#[tokio::test]
async fn reset_is_retried_for_repeatable_requests() {
    connection_fault("reset").await;
}

#[tokio::test]
async fn truncate_is_retried_for_repeatable_requests() {
    connection_fault("truncate").await;
}

#[tokio::test]
async fn an_empty_budget_stops_retries() {
    let server = TestServer::start().await;
    // No reserve and nothing earned from deposits: no retry is ever allowed.
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(1), 0, 0.0));
    let policy = policy(Mode::Table).budget(budget);
    let got = send(&server, policy, Method::GET, "/sequence/tb/500,200", None).await;
    assert_eq!(got, Ok(500));
    server.report("tb").await.assert_clean(1);
}
