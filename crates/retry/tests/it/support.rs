//! An in-process statuslab server on an OS-assigned port, and what the tests read back from it.

use serde_json::Value;
use statuslab_server::{AccessLog, Config, Server, StoreChoice};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// A server on `127.0.0.1:0` with its state in memory, on a thread and runtime of its own (so
/// the client's waits cannot starve it). Dropping it stops the server and checks its result.
pub(crate) struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<std::sync::mpsc::Receiver<io::Result<()>>>,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        let cfg = Config {
            listen: "127.0.0.1:0".parse().expect("an address"),
            access_log: AccessLog::Off,
            store: StoreChoice::Memory,
            ..Config::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (bound, addr) = oneshot::channel::<SocketAddr>();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-server".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a runtime for the server");
                let result = runtime.block_on(async move {
                    let server = Server::bind(cfg).await.expect("bind 127.0.0.1:0");
                    let _ = bound.send(server.local_addr());
                    server
                        .run(async move {
                            let _ = stopped.await;
                        })
                        .await
                });
                let _ = done_tx.send(result);
            })
            .expect("spawn the server thread");
        let addr = addr.await.expect("the server binds");
        TestServer {
            addr,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's judgement of the client that tried sequence `key`
    /// (`GET /sequences/{key}/report`).
    pub(crate) async fn report(&self, key: &str) -> Report {
        let url = self.url(&format!("/sequences/{key}/report"));
        let res = reqwest::get(&url).await.expect("the server answers");
        let status = res.status();
        let body = res.text().await.expect("a body");
        assert_eq!(status, 200, "GET {url}: {body}");
        Report(serde_json::from_str(&body).expect("JSON"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take()
            && let Ok(result) = done.recv_timeout(Duration::from_secs(20))
            && !std::thread::panicking()
        {
            result.expect("the server stops cleanly");
        }
    }
}

/// The server's report on a sequence: its attempts and its verdict on the client.
#[derive(Debug)]
pub(crate) struct Report(pub(crate) Value);

impl Report {
    fn timeline(&self) -> &[Value] {
        self.0["timeline"].as_array().expect("a timeline")
    }

    /// The steps the attempts met, as the server names them (`503`, `"reset"`).
    pub(crate) fn steps(&self) -> Vec<String> {
        self.timeline()
            .iter()
            .map(|a| a["code"].to_string().trim_matches('"').to_owned())
            .collect()
    }

    /// Checks that the client made `n` attempts, each repeat unchanged, and that the server's
    /// verdict is clean: it waited out every `Retry-After`, never repeated unchanged what the
    /// table says not to, never repeated a non-idempotent request without a key, and did not
    /// repeat at once.
    /// The run of `500,500,200`: it succeeded after two backed-off waits of at least the base
    /// (60 ms) and twice it. Equal jitter draws each wait from the upper half of its doubling
    /// ceiling, so two gaps may read as linear or exponential growth, never as none or
    /// constant-at-once.
    #[track_caller]
    pub(crate) fn assert_backed_off_to_success(&self) {
        let r = &self.0;
        assert!(
            matches!(
                self.get("backoff").as_str(),
                Some("exponential" | "linear" | "constant")
            ),
            "{r:#}"
        );
        assert_eq!(self.get("succeeded"), true, "{r:#}");
        assert!(self.since_previous_ms(1) >= 60, "{r:#}");
        assert!(self.since_previous_ms(2) >= 120, "{r:#}");
    }

    #[track_caller]
    pub(crate) fn assert_clean(&self, n: usize) {
        let r = &self.0;
        assert_eq!(r["attempts"], n, "report: {r:#}");
        assert_eq!(r["verdict"], "clean", "report: {r:#}");
        assert_eq!(r["findings"], Value::Array(Vec::new()), "report: {r:#}");
        assert_eq!(
            r["retried_non_idempotent_without_key"], false,
            "report: {r:#}"
        );
        assert_eq!(r["repeated_unchanged"], false, "report: {r:#}");
        assert_ne!(r["honoured_retry_after"], false, "report: {r:#}");
        for a in &self.timeline()[1..] {
            assert_eq!(a["unchanged"], true, "a repeat was modified: {r:#}");
        }
    }

    /// Checks the one departure RFC mode makes from the table: two attempts, the second after
    /// the 503's `Retry-After`, which the report (judging by the table's "should not repeat the
    /// request without modifications") finds and finds nothing else.
    #[track_caller]
    pub(crate) fn assert_only_the_rfc_503_repeat(&self) {
        let r = &self.0;
        assert_eq!(r["attempts"], 2, "report: {r:#}");
        assert_eq!(r["honoured_retry_after"], true, "report: {r:#}");
        assert_eq!(r["repeated_unchanged"], true, "report: {r:#}");
        assert_eq!(
            r["retried_non_idempotent_without_key"], false,
            "report: {r:#}"
        );
        assert_eq!(r["verdict"], "findings", "report: {r:#}");
        let findings = r["findings"].as_array().expect("findings");
        assert_eq!(findings.len(), 1, "report: {r:#}");
        let finding = findings[0].as_str().expect("a sentence");
        assert!(
            finding.contains("503")
                && finding.contains("should not repeat the request without modifications"),
            "{finding}"
        );
    }

    /// The wait before attempt `i` (0-based), in milliseconds.
    pub(crate) fn since_previous_ms(&self, i: usize) -> u64 {
        self.timeline()[i]["since_previous_ms"]
            .as_u64()
            .expect("a wait")
    }

    /// The `Idempotency-Key` attempt `i` carried.
    pub(crate) fn idempotency_key(&self, i: usize) -> Option<&str> {
        self.timeline()[i]["idempotency_key"].as_str()
    }

    /// A field of the report.
    pub(crate) fn get(&self, field: &str) -> &Value {
        &self.0[field]
    }
}

/// Short waits for the suite: a 60 ms base (the report calls gaps under 50 ms a retry at
/// once), no jitter, three attempts.
pub(crate) fn backoff() -> statuslab_retry::Backoff {
    statuslab_retry::Backoff::new(Duration::from_millis(60), Duration::from_millis(500))
        .jitter(statuslab_retry::Jitter::None)
        .max_attempts(3)
}
