//! A statuslab server to test HTTP clients against, from Rust tests.
//!
//! [`spawn`] starts a server on `127.0.0.1:0` (a port the OS picks) with its state in memory,
//! on a thread and a Tokio runtime of its own, so it works the same from a plain `#[test]`
//! and from `#[tokio::test]` (a busy test runtime cannot starve it, nor it the test). Dropping
//! the handle stops the server. [`Builder`] sets other options.
//!
//! ```
//! use std::io::{Read, Write};
//!
//! let server = statuslab_server::testing::spawn();
//! let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
//! conn.write_all(b"GET /status/429 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
//!     .unwrap();
//! let mut answer = String::new();
//! conn.read_to_string(&mut answer).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
//! assert!(answer.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"));
//! assert_eq!(server.url("/status/503"), format!("{}/status/503", server.base_url()));
//! ```
//!
//! With options (any [`Config`] field):
//!
//! ```
//! use std::time::Duration;
//! use statuslab_server::testing::Builder;
//!
//! let server = Builder::new()
//!     .config(|c| {
//!         c.max_delay = Duration::from_secs(5);
//!         c.default_retry_after = 3;
//!     })
//!     .spawn();
//! assert!(server.base_url().starts_with("http://127.0.0.1:"));
//! ```

use crate::store::SharedStore;
use crate::{AccessLog, Config, Server, StoreChoice};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long dropping a [`TestServer`] waits for the server to stop.
const DROP_WAIT: Duration = Duration::from_secs(3);

/// A running server with the defaults of [`Builder::new`]. Panics if it cannot start (no
/// loopback interface, no threads left); [`Builder::try_spawn`] returns the error instead.
pub fn spawn() -> TestServer {
    Builder::new().spawn()
}

/// Options for a [`TestServer`].
#[derive(Debug)]
pub struct Builder {
    cfg: Config,
    store: Option<SharedStore>,
    workers: usize,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// The test defaults: `127.0.0.1:0`, the memory store (no data directory shared between
    /// tests running in parallel), no access log, two worker threads; the rest as
    /// [`Config::default`], the same defaults as `statuslab serve`.
    pub fn new() -> Builder {
        Builder {
            cfg: Config {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                access_log: AccessLog::Off,
                store: StoreChoice::Memory,
                ..Config::default()
            },
            store: None,
            workers: 2,
        }
    }

    /// Adjusts the configuration (limits, tokens, upstreams, maintenance mode, the store, …).
    pub fn config(mut self, tune: impl FnOnce(&mut Config)) -> Builder {
        tune(&mut self.cfg);
        self
    }

    /// A store of the caller's choosing instead of the configured one: a
    /// [`KvStore`](crate::store::KvStore) on a [`ManualClock`](crate::store::clock::ManualClock)
    /// tests expiry without sleeping; a store of the test's own can fail on purpose.
    pub fn store(mut self, store: SharedStore) -> Builder {
        self.store = Some(store);
        self
    }

    /// Worker threads of the server's runtime (at least one).
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = n.max(1);
        self
    }

    /// Starts the server and returns once it listens. Panics if it cannot start.
    pub fn spawn(self) -> TestServer {
        self.try_spawn()
            .unwrap_or_else(|e| panic!("starting a statuslab test server: {e}"))
    }

    /// Starts the server and returns once it listens, or the reason it could not start (the
    /// address in use, a store that cannot be opened).
    pub fn try_spawn(self) -> io::Result<TestServer> {
        let Builder {
            cfg,
            store,
            workers,
        } = self;
        let (stop, stopped) = oneshot::channel::<()>();
        let (bound_tx, bound) = mpsc::channel::<io::Result<SocketAddr>>();
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("statuslab-test-server".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name("statuslab-test-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                        return;
                    }
                };
                let result = runtime.block_on(async move {
                    // Bound on port 0 and kept: the listener is never released and rebound.
                    let bound = match store {
                        Some(store) => Server::with_store(cfg, store).await,
                        None => Server::bind(cfg).await,
                    };
                    let server = match bound {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = bound_tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    let _ = bound_tx.send(Ok(server.local_addr()));
                    server
                        .run(async move {
                            let _ = stopped.await;
                        })
                        .await
                });
                let _ = done_tx.send(result);
            })?;
        let addr = bound
            .recv()
            .map_err(|_| io::Error::other("the server's thread ended before it listened"))??;
        Ok(TestServer {
            addr,
            stop: Some(stop),
            done: Some(done),
        })
    }
}

/// A server running on a thread of its own. Dropping it stops the server (no new
/// connections; in-flight requests get up to three seconds) and, when the server failed — a
/// connection task panicked — panics, so the test that used it fails.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<mpsc::Receiver<io::Result<()>>>,
}

impl TestServer {
    /// The address it listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Tells the server to stop accepting and to finish what is in flight; returns at once.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server and waits up to `limit` for it: `Some` with what the server returned
    /// (an error if a connection task panicked), `None` if it is still running then (or was
    /// waited for before). Blocks the calling thread; from async code, see [`TestServer::stopped`].
    pub fn stop(&mut self, limit: Duration) -> Option<io::Result<()>> {
        self.shutdown();
        let done = self.done.take()?;
        outcome(done.recv_timeout(limit))
    }

    /// [`TestServer::stop`] without blocking the caller's runtime (the wait runs on Tokio's
    /// blocking pool), for tests whose own tasks must go on while the server drains.
    pub async fn stopped(&mut self, limit: Duration) -> Option<io::Result<()>> {
        self.shutdown();
        let done = self.done.take()?;
        match tokio::task::spawn_blocking(move || done.recv_timeout(limit)).await {
            Ok(received) => outcome(received),
            Err(e) => Some(Err(io::Error::other(e))),
        }
    }
}

/// What waiting for the server's thread gave.
fn outcome(received: Result<io::Result<()>, mpsc::RecvTimeoutError>) -> Option<io::Result<()>> {
    match received {
        Ok(result) => Some(result),
        Err(mpsc::RecvTimeoutError::Timeout) => None,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Some(Err(io::Error::other("the server's thread panicked")))
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
        if std::thread::panicking() {
            return;
        }
        // A server still running after the wait is left to finish on its own, unchecked.
        if let Some(Err(e)) = self.stop(DROP_WAIT) {
            panic!("the statuslab test server failed: {e}");
        }
    }
}
