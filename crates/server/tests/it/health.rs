//! `/healthz` (the process answers) and `/readyz` (the store answers): 200 when all is well,
//! exempt from maintenance, the server-wide rate limit and shedding, and `/readyz` 503 with
//! `Retry-After` when the store is down.

use crate::support::TestServer;
use statuslab_server::StoreChoice;
use std::time::{Duration, Instant};

#[tokio::test]
async fn healthz_and_readyz_answer_200_with_a_working_store() {
    let server = TestServer::start().await;
    let r = server.get("/healthz", &[]).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
    let r = server.get("/readyz", &[]).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.json(),
        serde_json::json!({"status": "ok", "store": "memory"})
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
}

/// A load balancer sees the instance as it is: in maintenance, over the rate limit or with
/// every in-flight slot taken, both checks still answer.
#[tokio::test]
async fn health_checks_are_exempt_from_maintenance_and_rate_limits() {
    let server = TestServer::start_with(|c| {
        c.maintenance = true;
        c.rate_limit = Some((1, Duration::from_secs(60)));
    })
    .await;
    assert_eq!(server.get("/status/200", &[]).await.status, 503);
    for _ in 0..3 {
        for path in ["/healthz", "/readyz"] {
            let r = server.get(path, &[]).await;
            assert_eq!(r.status, 200, "{path}:\n{}", r.head);
        }
    }
}

/// Redis down (nothing listens on its port): `/readyz` says 503 with `Retry-After` and a
/// problem that names the store, quickly; `/healthz` still says the process is up.
#[tokio::test]
async fn readyz_is_503_with_retry_after_when_redis_is_down() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let server = TestServer::start_with(|c| {
        c.store = StoreChoice::Redis {
            url: format!("redis://{closed}"),
            prefix: "readyz".to_owned(),
        };
        c.default_retry_after = 7;
    })
    .await;
    let started = Instant::now();
    let r = server.get("/readyz", &[]).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r.status, 503, "{}", r.head);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let detail = r.json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("redis store does not answer"), "{detail}");
    let r = server.get("/healthz", &[]).await;
    assert_eq!(r.status, 200, "the process is up:\n{}", r.head);
}
