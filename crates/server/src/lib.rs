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
//! The connection layer is statuslab's own for HTTP/1.1 ([`h1`], on httparse) and the h2 crate
//! for HTTP/2 ([`h2c`]); handlers return a protocol-independent [`Reply`].

mod app;
mod auth;
mod bodies;
mod catalog_routes;
mod config;
mod gateway;
mod guard;
mod h1;
mod h2c;
mod jobs;
mod negotiate;
pub mod range;
mod reply;
mod request;
mod resources;
mod rewind;
mod sequences;
mod status;
pub mod store;
mod tls;
mod websocket;

pub use app::App;
pub use config::{AccessLog, Config, Scope, StoreChoice, TlsSource, Token, Upstream};
pub use negotiate::Format;
pub use reply::{Body, Interim, Reply, Upgrade};
pub use request::Request;
pub use status::REPRESENTATION_LEN;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
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
            Some(source) => Some(tls::acceptor(source).map_err(std::io::Error::other)?),
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
        let cfg = Arc::clone(&app.cfg);
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(cfg.max_connections));
        tracing::info!(listen = %listener.local_addr()?, store = app.store.kind(), "statuslab serving");
        let sweeper = tokio::spawn(sweep(Arc::clone(&app)));
        let follower = tokio::spawn(guard::follow_maintenance(Arc::clone(&app)));
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
                    tracker.spawn(async move {
                        match tls {
                            None => h1::Conn::new(io, peer, app, stop).run().await,
                            // Boxed: the TLS state would otherwise size every plain connection's task.
                            Some(acceptor) => {
                                Box::pin(serve_tls(acceptor, io, peer, app, stop)).await
                            }
                        }
                        drop(permit);
                    });
                }
                Err(_) => {
                    tracker.spawn(h1::overloaded(io, app));
                }
            }
        }
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        sweeper.abort();
        follower.abort();
        drop(listener);
        stop.cancel();
        tracker.close();
        if tokio::time::timeout(cfg.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?cfg.shutdown_grace, "in-flight requests still running at the end of the grace period");
        }
        Ok(())
    }
}

/// Runs the TLS handshake (bounded by `--header-timeout`), then HTTP/2 or HTTP/1.1 as ALPN chose.
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    io: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    stop: CancellationToken,
) {
    let stream = match tokio::time::timeout(app.cfg.header_timeout, acceptor.accept(io)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    if tls::is_h2(&stream) {
        h2c::serve(stream, peer, app, stop).await;
    } else {
        h1::Conn::new(stream, peer, app, stop).run().await;
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
    let mut tick = tokio::time::interval(app.cfg.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match app.store.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "swept expired state"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired state failed"),
        }
    }
}

/// The path as logged: httpbin's `/basic-auth/{user}/{passwd}` carries a password in the path,
/// which never reaches the log.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/basic-auth/", "/hidden-basic-auth/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let user = rest.split('/').next().unwrap_or("");
            return format!("{prefix}{user}/<redacted>").into();
        }
    }
    path.into()
}

/// One access-log event per request.
pub(crate) fn log_request(req: &Request, reply: &Reply, started: Instant) {
    tracing::info!(
        target: "statuslab::access",
        peer = %req.peer,
        method = %req.method,
        path = &*loggable_path(req.uri.path()),
        version = ?req.version,
        status = reply.status.code(),
        bytes = reply.body.len(),
        micros = started.elapsed().as_micros() as u64,
    );
}
