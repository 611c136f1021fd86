//! statuslab's server: every HTTP status code, on demand and in full dress.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use statuslab_server::{Config, Server};
//! let server = Server::bind(Config::default()).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Layers, each importing only those below it: `wire` (HTTP/1.1 codec, HTTP/2, TLS, framing)
//! → `store` → `ctx` and `problem` (what handlers share) → `edge` (auth, maintenance, rate
//! limits, shedding), `gateway` and [`probe`] (checks other servers; it uses only the wire
//! layer and the catalog) → `routes` (the route table, admission, handlers) → this file (the
//! accept loop). Handlers return a protocol-independent [`Reply`].

mod config;
mod content;
mod ctx;
mod edge;
mod gateway;
pub mod probe;
mod problem;
mod routes;
pub mod store;
mod wire;

pub use config::{AccessLog, Config, Scope, StoreChoice, TlsSource, Token, Upstream};
pub use content::negotiate::Format;
pub use content::range;
pub use routes::{App, REPRESENTATION_LEN};
pub use wire::fault::{Fault, FaultKind};
pub use wire::reply::{Body, Interim, Reply, Upgrade};
pub use wire::request::Request;

use futures_util::FutureExt as _;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use store::SharedStore;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Server {
    /// Opens the configured store and binds the listening socket.
    pub async fn bind(cfg: Config) -> std::io::Result<Server> {
        let store = open_store(&cfg).map_err(std::io::Error::other)?;
        Server::with_store(cfg, store).await
    }

    /// Binds with a store of the caller's choosing.
    pub async fn with_store(cfg: Config, store: SharedStore) -> std::io::Result<Server> {
        let listener = listen(cfg.listen)?;
        // With port 0 the real address is known only now; the gateway's `self` needs it.
        let cfg = Config {
            listen: listener.local_addr()?,
            ..cfg
        };
        let tls = match &cfg.tls {
            Some(source) => Some(wire::tls::acceptor(source).map_err(std::io::Error::other)?),
            None => None,
        };
        Ok(Server {
            listener,
            app: Arc::new(App::new(cfg, store)),
            tls,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes; then stops accepting, lets in-flight requests
    /// finish for up to `--shutdown-grace`, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let Server { listener, app, tls } = self;
        let cfg = Arc::clone(&app.ctx.cfg);
        let limits = wire_limits(&cfg);
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(cfg.max_connections));
        let lingering = Arc::new(Semaphore::new(MAX_LINGERING));
        tracing::info!(listen = %listener.local_addr()?, store = app.ctx.store.kind(), "statuslab serving");
        let panics = Arc::new(AtomicUsize::new(0));
        let sweeper = tokio::spawn(sweep(Arc::clone(&app)));
        let background = Arc::clone(&app);
        let follower =
            tokio::spawn(async move { edge::maintenance::follow(&background.ctx).await });
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (io, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = io.set_nodelay(true);
            let app = Arc::clone(&app);
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => {
                    // A child token per connection: its per-read shutdown checks lock only
                    // this connection's node, never one shared by all connections.
                    let stop = stop.child_token();
                    let tls = tls.clone();
                    let panics = Arc::clone(&panics);
                    let lingering = Arc::clone(&lingering);
                    tracker.spawn(async move {
                        let conn = async move {
                            match tls {
                                None => {
                                    wire::h1::Conn::new(io, peer, app, limits, stop, Some(permit))
                                        .run()
                                        .await
                                }
                                // Boxed: the TLS state would otherwise size every plain
                                // connection's task.
                                Some(acceptor) => {
                                    Box::pin(wire::tls::serve(
                                        acceptor, io, peer, app, limits, stop,
                                    ))
                                    .await;
                                    drop(permit);
                                    None
                                }
                            }
                        };
                        // Handlers never panic out (dispatch turns a panic into a 500); a panic
                        // here is a bug in the connection itself: logged, counted, and reported
                        // by `run` when it returns.
                        let closing = match AssertUnwindSafe(conn).catch_unwind().await {
                            Ok(closing) => closing,
                            Err(panic) => {
                                panics.fetch_add(1, Ordering::Relaxed);
                                tracing::error!(%peer, panic = panic_message(&*panic), "a connection task panicked");
                                None
                            }
                        };
                        // The connection gave its slot back when it closed; draining it takes
                        // a lingering slot instead.
                        if let Some(io) = closing {
                            linger(&lingering, io).await;
                        }
                    });
                }
                Err(_) => {
                    let lingering = Arc::clone(&lingering);
                    tracker.spawn(async move {
                        let io = wire::h1::overloaded(io, peer, app).await;
                        linger(&lingering, io).await;
                    });
                }
            }
        }
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        let background = [
            ("the expiry sweeper", finish(sweeper).await),
            ("the maintenance follower", finish(follower).await),
        ];
        drop(listener);
        stop.cancel();
        tracker.close();
        if tokio::time::timeout(cfg.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?cfg.shutdown_grace, "in-flight requests still running at the end of the grace period");
        }
        for (task, result) in background {
            if let Err(panic) = result {
                return Err(std::io::Error::other(format!("{task} panicked: {panic}")));
            }
        }
        match panics.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(std::io::Error::other(format!(
                "{n} connection task(s) panicked (see the log)"
            ))),
        }
    }
}

/// Closed connections drained at once; past this, a closed connection is dropped at once.
const MAX_LINGERING: usize = 1024;

/// Drains a connection statuslab closed, if a lingering slot is free.
async fn linger<T: tokio::io::AsyncRead + Unpin>(slots: &Semaphore, io: T) {
    if let Ok(_slot) = slots.try_acquire() {
        wire::h1::linger(io).await;
    }
}

/// Stops a background task that runs until shutdown; `Err` with its message if it panicked
/// before.
async fn finish(task: tokio::task::JoinHandle<()>) -> Result<(), String> {
    if !task.is_finished() {
        task.abort();
    }
    match task.await {
        Err(e) if e.is_panic() => Err(panic_message(&*e.into_panic())),
        _ => Ok(()),
    }
}

/// The text of a panic's payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// What the connections enforce, from the configuration.
fn wire_limits(cfg: &Config) -> wire::Limits {
    wire::Limits {
        max_headers: cfg.max_headers,
        max_head_bytes: cfg.max_head_bytes,
        max_uri: cfg.max_uri,
        max_body: cfg.max_body,
        header_timeout: cfg.header_timeout,
        body_timeout: cfg.body_timeout,
        idle_timeout: cfg.idle_timeout,
        max_h2_streams: cfg.max_h2_streams,
        max_ws_message: cfg.max_ws_message,
        send_timeout: cfg.send_timeout,
    }
}

/// Binds with a deep accept queue (tokio's default backlog of 128 overflows when thousands of
/// clients connect at once, and the kernel then retransmits their SYNs).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Grows the process's file-descriptor table to hold `n` more descriptors, once, at start.
///
/// Linux doubles the table as descriptors are opened, and in a multi-threaded process each
/// doubling stalls `accept` for milliseconds; growing it up front keeps that pause out of the
/// first burst of connections. Opening `/dev/null` until `n` are open (or the limit is hit) and
/// closing them again is enough: the table never shrinks.
pub fn prepare_fd_table(n: usize) {
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(_) => break,
        }
    }
}

/// Opens the store `cfg` names.
pub fn open_store(cfg: &Config) -> Result<SharedStore, store::StoreError> {
    Ok(match &cfg.store {
        StoreChoice::Memory => Arc::new(store::KvStore::new(
            store::memory::MemoryEngine::new(),
            cfg.limits,
        )),
        StoreChoice::Embedded(dir) => Arc::new(store::KvStore::new(
            store::embedded::EmbeddedEngine::open(dir)?,
            cfg.limits,
        )),
        StoreChoice::Redis { url, prefix } => {
            let engine = store::redis::RedisEngine::open(url, prefix)?;
            // Start even if Redis is down: stateful routes answer 503 until it is back.
            match engine.ping() {
                Ok(()) => tracing::info!(redis = engine.addr(), prefix = %prefix, "Redis store"),
                Err(e) => tracing::warn!(error = %e, "Redis is not reachable yet"),
            }
            Arc::new(store::KvStore::new(engine, cfg.limits))
        }
    })
}

/// Removes expired state now and then.
async fn sweep(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.ctx.cfg.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match app.ctx.store.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "swept expired state"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired state failed"),
        }
    }
}
