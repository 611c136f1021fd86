//! `GET /metrics`: Prometheus counters after known requests, and the OpenMetrics variant.

use crate::support::{TestServer, request};

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_known_requests() {
    let server =
        TestServer::start_with(|c| c.rate_limit = Some((1, std::time::Duration::from_secs(3600))))
            .await;
    let host = server.host();
    for _ in 0..3 {
        server.get("/status/404", &[]).await;
    }
    let r = server
        .exchange(&request("POST", "/status/201", &host, &[], b"x"))
        .await;
    assert_eq!(r.status, 429, "the server limit is 1 per hour: {}", r.head);
    let r = server.get("/metrics", &[]).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.must("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text();
    let get404 =
        "statuslab_http_requests_total{route=\"/status/{codes}\",method=\"GET\",code=\"404\"}";
    // The first request passed the limiter; the other two were refused with 429.
    assert_eq!(value(&text, get404), Some(1.0), "{text}");
    let refused =
        "statuslab_http_requests_total{route=\"/status/{codes}\",method=\"GET\",code=\"429\"}";
    assert_eq!(value(&text, refused), Some(2.0), "{text}");
    let post =
        "statuslab_http_requests_total{route=\"/status/{codes}\",method=\"POST\",code=\"429\"}";
    assert_eq!(value(&text, post), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            "statuslab_rate_limited_requests_total{limiter=\"server\"}"
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "statuslab_http_request_duration_seconds_count{route=\"/status/{codes}\"}"
        ),
        Some(4.0),
        "{text}"
    );
    assert!(
        value(&text, "statuslab_connections_open").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        value(&text, "statuslab_store_operations_total{engine=\"memory\"}").unwrap() >= 4.0,
        "every rate-limit decision is a store operation: {text}"
    );
    assert_eq!(
        value(&text, "statuslab_store_errors_total{engine=\"memory\"}"),
        Some(0.0)
    );
    assert_eq!(value(&text, "statuslab_shed_requests_total"), Some(0.0));
    // /metrics itself is exempt from the limiter.
    let r = server.get("/metrics", &[]).await;
    assert_eq!(r.status, 200, "{}", r.head);
    let text = r.text();
    assert_eq!(
        value(
            &text,
            "statuslab_http_requests_total{route=\"/metrics\",method=\"GET\",code=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // An unknown path is counted as unmatched (refused by the limiter before routing).
    server.get("/no/such/route", &[]).await;
    let text = server.get("/metrics", &[]).await.text();
    assert!(
        text.contains("route=\"unmatched\",method=\"GET\",code=\"429\"} 1"),
        "{text}"
    );

    let r = server
        .get(
            "/metrics",
            &[("Accept", "application/openmetrics-text; version=1.0.0")],
        )
        .await;
    assert!(
        r.must("content-type")
            .starts_with("application/openmetrics-text"),
        "{}",
        r.head
    );
    assert!(r.text().ends_with("# EOF\n"));
}

#[tokio::test]
async fn no_metrics_means_404() {
    let server = TestServer::start_with(|c| c.metrics = false).await;
    assert_eq!(server.get("/metrics", &[]).await.status, 404);
}

/// A connection adds a run of alike requests to the counters together, before it writes
/// their replies: a client that has its replies finds them counted, pipelined or one at a
/// time, while the connection stays open.
#[tokio::test]
async fn replies_received_are_counted_while_their_connection_stays_open() {
    let server = TestServer::start().await;
    let host = server.host();
    let series = |code: u16| {
        format!(
            "statuslab_http_requests_total{{route=\"/status/{{codes}}\",method=\"GET\",code=\"{code}\"}}"
        )
    };
    let mut conn = server.connect().await;
    let mut burst = Vec::new();
    let codes = [404, 404, 404, 404, 404, 500, 500, 500, 404, 404];
    for code in codes {
        burst.extend(request("GET", &format!("/status/{code}"), &host, &[], b""));
    }
    conn.send(&burst).await;
    for code in codes {
        assert_eq!(conn.read_response(false).await.status, code);
    }
    for _ in 0..3 {
        conn.send(&request("GET", "/status/418", &host, &[], b""))
            .await;
        assert_eq!(conn.read_response(false).await.status, 418);
    }
    let text = server.get("/metrics", &[]).await.text();
    assert_eq!(value(&text, &series(404)), Some(7.0), "{text}");
    assert_eq!(value(&text, &series(500)), Some(3.0), "{text}");
    assert_eq!(value(&text, &series(418)), Some(3.0), "{text}");
    assert_eq!(
        value(
            &text,
            "statuslab_http_request_duration_seconds_count{route=\"/status/{codes}\"}"
        ),
        Some(13.0),
        "{text}"
    );
    // The connection's own scrape counts what it answered before.
    conn.send(&request("GET", "/metrics", &host, &[], b""))
        .await;
    let text = String::from_utf8(conn.read_response(false).await.body).unwrap();
    assert_eq!(value(&text, &series(418)), Some(3.0), "{text}");
}

/// A request counts as in flight while it waits for its content or its handler (a scrape
/// counts itself), and no longer once answered.
#[tokio::test]
async fn requests_waiting_are_in_flight() {
    let server = TestServer::start().await;
    let host = server.host();
    let in_flight = async || {
        let text = server.get("/metrics", &[]).await.text();
        value(&text, "statuslab_requests_in_flight")
    };
    assert_eq!(in_flight().await, Some(1.0));
    let mut held = server.connect().await;
    held.send(&request("GET", "/status/200?sleep=1500", &host, &[], b""))
        .await;
    let mut upload = server.connect().await;
    let mut head = request("POST", "/status/201", &host, &[], b"hello");
    head.truncate(head.len() - 5);
    upload.send(&head).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(in_flight().await, Some(3.0));
    upload.send(b"hello").await;
    assert_eq!(upload.read_response(false).await.status, 201);
    assert_eq!(held.read_response(false).await.status, 200);
    for _ in 0..5 {
        held.send(&request("GET", "/status/404", &host, &[], b""))
            .await;
        assert_eq!(held.read_response(false).await.status, 404);
    }
    assert_eq!(in_flight().await, Some(1.0));
}
