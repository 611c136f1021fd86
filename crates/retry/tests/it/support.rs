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

    /// What the server recorded of sequence `key`: its attempts (`GET /sequences/{key}`) and,
    /// where the server judges them, its report (`GET /sequences/{key}/report`).
    pub(crate) async fn record(&self, key: &str) -> Record {
        let client = reqwest::Client::new();
        let get = |path: String| {
            let client = client.clone();
            async move {
                let res = client.get(&path).send().await.expect("the server answers");
                let status = res.status();
                let body = res.text().await.expect("a body");
                (status, body)
            }
        };
        let (status, body) = get(self.url(&format!("/sequences/{key}"))).await;
        assert_eq!(status, 200, "GET /sequences/{key}: {body}");
        let state: Value = serde_json::from_str(&body).expect("JSON");
        let (status, body) = get(self.url(&format!("/sequences/{key}/report"))).await;
        let report = (status == 200).then(|| serde_json::from_str(&body).expect("JSON"));
        Record { state, report }
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

/// A sequence's attempts as the server recorded them, and its judgement where it gives one.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) state: Value,
    pub(crate) report: Option<Value>,
}

impl Record {
    fn attempts(&self) -> &[Value] {
        self.state["attempts"].as_array().expect("attempts")
    }

    /// The steps the attempts met, as the server names them (`503`, `"reset"`).
    pub(crate) fn steps(&self) -> Vec<String> {
        self.attempts()
            .iter()
            .map(|a| a["code"].to_string().trim_matches('"').to_owned())
            .collect()
    }

    /// Checks that the client made `n` attempts, each one unchanged (same method and recorded
    /// headers), that every wait after a `Retry-After` honoured it, and, once the server judges
    /// sequences, that its verdict is clean with the same count.
    #[track_caller]
    pub(crate) fn assert_clean(&self, n: usize) {
        let attempts = self.attempts();
        assert_eq!(attempts.len(), n, "attempts: {:#}", self.state);
        for pair in attempts.windows(2) {
            assert_eq!(pair[0]["method"], pair[1]["method"], "{:#}", self.state);
            assert_eq!(pair[0]["headers"], pair[1]["headers"], "{:#}", self.state);
        }
        for a in attempts {
            assert_ne!(
                a["honoured_retry_after"],
                Value::Bool(false),
                "an attempt came before the Retry-After it was given: {:#}",
                self.state
            );
        }
        if let Some(report) = &self.report {
            assert_eq!(report["attempts"], n, "report: {report:#}");
            assert_eq!(report["verdict"], "clean", "report: {report:#}");
            assert_eq!(
                report["retried_non_idempotent_without_key"], false,
                "report: {report:#}"
            );
        }
    }

    /// The wait before attempt `i` (0-based), in milliseconds.
    pub(crate) fn since_previous_ms(&self, i: usize) -> u64 {
        self.attempts()[i]["since_previous_ms"]
            .as_u64()
            .expect("a wait")
    }

    /// The `Idempotency-Key` attempt `i` carried.
    pub(crate) fn idempotency_key(&self, i: usize) -> Option<&str> {
        self.attempts()[i]["headers"]["idempotency-key"].as_str()
    }
}

/// Short waits for the suite: a 20 ms base, no jitter, three attempts.
pub(crate) fn backoff() -> statuslab_retry::Backoff {
    statuslab_retry::Backoff::new(Duration::from_millis(20), Duration::from_millis(200))
        .jitter(statuslab_retry::Jitter::None)
        .max_attempts(3)
}
