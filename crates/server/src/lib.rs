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
//! accept loop) → [`testing`] (a server for Rust tests, on a thread of its own). Handlers
//! return a protocol-independent [`Reply`].

mod config;
mod content;
mod ctx;
mod edge;
mod gateway;
mod metrics;
pub mod probe;
mod problem;
mod routes;
pub mod store;
pub mod testing;
mod wire;

pub use config::{AccessLog, AccessLogTo, Config, Scope, StoreChoice, TlsSource, Token, Upstream};
pub use content::negotiate::Format;
pub use content::range;
pub use routes::{App, REPRESENTATION_LEN};
pub use wire::fault::{Fault, FaultKind};
pub use wire::reply::{Body, Interim, Reply, Upgrade};
pub use wire::request::Request;
pub use wire::tls::SelfSigned;

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
    certificate: Option<wire::tls::SelfSigned>,
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
        let (tls, certificate) = match &cfg.tls {
            Some(source) => {
                let (acceptor, made) = wire::tls::acceptor(source, cfg.tls_cert_out.as_deref())
                    .map_err(std::io::Error::other)?;
                (Some(acceptor), made)
            }
            None => (None, None),
        };
        let access_log = match cfg.access_log {
            AccessLog::On => Some(routes::start_access_log(&cfg)?),
            AccessLog::Off => None,
        };
        Ok(Server {
            listener,
            app: Arc::new(App::new(cfg, store).with_access_log(access_log)),
            tls,
            certificate,
        })
    }

    /// The self-signed certificate made at start ([`TlsSource::SelfSigned`]): its PEM,
    /// SHA-256 fingerprint and where it was written.
    pub fn self_signed_certificate(&self) -> Option<&SelfSigned> {
        self.certificate.as_ref()
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
        let Server {
            listener, app, tls, ..
        } = self;
        let cfg = Arc::clone(&app.ctx.cfg);
        let limits = wire::Limits::of(&cfg);
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
                    let metrics = app.ctx.metrics.clone();
                    let task = async move {
                        if let Some(m) = &metrics {
                            m.connection(1);
                        }
                        // Handlers never panic out (dispatch turns a panic into a 500); a panic
                        // here is a bug in the connection itself: logged, counted, and reported
                        // by `run` when it returns.
                        // Built where it is awaited: bound to a variable first, the task would hold
                        // the connection's future twice (the variable and the `CatchUnwind`).
                        let closing = match AssertUnwindSafe(async move {
                            match tls {
                                None => {
                                    wire::h1::Conn::new(io, peer, app, limits, stop, Some(permit))
                                        .run()
                                        .await
                                }
                                // Boxed: the TLS state would otherwise size every plain
                                // connection's task.
                                Some(acceptor) => {
                                    let plain = Box::pin(wire::tls::serve(
                                        acceptor, io, peer, app, limits, stop,
                                    ))
                                    .await;
                                    drop(permit);
                                    plain
                                }
                            }
                        })
                        .catch_unwind()
                        .await
                        {
                            Ok(closing) => closing,
                            Err(panic) => {
                                panics.fetch_add(1, Ordering::Relaxed);
                                tracing::error!(%peer, panic = panic_message(&*panic), "a connection task panicked");
                                None
                            }
                        };
                        if let Some(m) = &metrics {
                            m.connection(-1);
                        }
                        // The connection gave its slot back when it closed; draining it takes
                        // a lingering slot instead.
                        if let Some(io) = closing {
                            linger(&lingering, io).await;
                        }
                    };
                    tracker.spawn(task);
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
        app.stop();
        stop.cancel();
        tracker.close();
        if tokio::time::timeout(cfg.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?cfg.shutdown_grace, "in-flight requests still running at the end of the grace period");
        }
        // Every line of the requests answered above reaches the access log's destination.
        app.close_access_log();
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

/// Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`, off by default; not
/// an API, hidden from the docs). Each takes arbitrary bytes, hands them to one family of the
/// server's parsers and panics only if the parsers panic or break a property they promise;
/// the properties are the ones the `props` property tests check (`scripts/fuzz.sh` runs both).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::content::{negotiate, params, range};
    use crate::routes::{on_demand_props, resources_props, sequences_props};
    use crate::wire::framing::{self, ChunkedDecoder, Framing, Limits, Role};
    use crate::wire::h1;
    use bytes::BytesMut;
    use http::{HeaderMap, HeaderName, HeaderValue};
    use std::time::Duration;

    /// The first byte (the knobs) and the rest.
    fn knobs(data: &[u8]) -> (u8, &[u8]) {
        data.split_first().map_or((0, data), |(k, rest)| (*k, rest))
    }

    /// A request head (`wire::h1`): parse, limits, split-independence, `Host` values. The
    /// first byte sets `--max-headers` and `--max-uri`.
    pub fn request_head(data: &[u8]) {
        let (k, buf) = knobs(data);
        let max_headers = usize::from(k % 16) * 8;
        let max_uri = usize::from(k / 16) * 8;
        h1::props::check_head(buf, max_headers, max_uri);
        h1::props::check_host(buf);
    }

    /// Chunked content (`wire::framing::ChunkedDecoder`), under limits the first byte picks:
    /// decoded whole, byte by byte and in two pieces, it gives the same result, the same
    /// content and stops at the same byte, never past `max_body`.
    pub fn chunked(data: &[u8]) {
        let (k, input) = knobs(data);
        let limits = Limits {
            max_body: [0, 1, 64, 10 * 1024 * 1024][usize::from(k & 3)],
            max_ext_bytes: [0, 8, 4096][usize::from((k >> 2) & 3) % 3],
            max_trailer_bytes: [0, 64, 8192][usize::from((k >> 4) & 3) % 3],
            max_trailer_fields: [0, 4, 64][usize::from(k >> 6) % 3],
        };
        let decode = |pieces: &mut dyn Iterator<Item = &[u8]>| {
            let mut decoder = ChunkedDecoder::new(limits);
            let (mut buf, mut out) = (BytesMut::new(), BytesMut::new());
            let (mut fed, mut result) = (0, Ok(false));
            for piece in pieces {
                buf.extend_from_slice(piece);
                fed += piece.len();
                result = decoder.decode(&mut buf, &mut out);
                if result != Ok(false) {
                    break;
                }
            }
            assert!(out.len() as u64 <= limits.max_body);
            (result, out, fed - buf.len())
        };
        let whole = decode(&mut std::iter::once(input));
        assert_eq!(decode(&mut input.chunks(1)), whole);
        let (a, b) = input.split_at(input.len() / 2);
        assert_eq!(decode(&mut [a, b].into_iter()), whole);
    }

    /// Message framing (`wire::framing::framing`): header fields from `name: value` lines,
    /// the role from the first byte; a length it reports is `content_length`'s.
    pub fn framing(data: &[u8]) {
        let (k, rest) = knobs(data);
        let mut headers = HeaderMap::new();
        for line in rest.split(|&b| b == b'\n') {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let value = line[colon + 1..].trim_ascii();
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(n, v);
            }
        }
        let role = match k % 4 {
            0 => Role::Request { http10: false },
            1 => Role::Request { http10: true },
            _ => Role::Response {
                status: [100, 101, 200, 204, 304, 404][usize::from(k / 4) % 6],
                head_request: k % 4 == 3,
            },
        };
        if let Ok(Framing::Length(n)) = framing::framing(&headers, role) {
            assert_eq!(framing::content_length(&headers), Ok(Some(n)));
        }
    }

    /// `Range` (`content::range::parse`) against a length from the first 8 bytes (a small
    /// one if the first byte is odd); the ranges are bounded and their parts well formed.
    pub fn range(data: &[u8]) {
        let (k, rest) = knobs(data);
        let (len, header) = if k % 2 == 1 || rest.len() < 8 {
            (u64::from(k / 2), rest)
        } else {
            let (n, header) = rest.split_at(8);
            (u64::from_le_bytes(n.try_into().expect("8 bytes")), header)
        };
        range::props::check_parse(&String::from_utf8_lossy(header), len);
    }

    /// Preconditions (`store::precondition`): the first 8 bytes are the current modification
    /// time, the next line the current `ETag`, each further line an `If-*` field (its first
    /// byte picks which).
    pub fn conditions(data: &[u8]) {
        const NAMES: [http::HeaderName; 4] = [
            http::header::IF_MATCH,
            http::header::IF_NONE_MATCH,
            http::header::IF_MODIFIED_SINCE,
            http::header::IF_UNMODIFIED_SINCE,
        ];
        if data.len() < 8 {
            return;
        }
        let (modified, rest) = data.split_at(8);
        let modified = u64::from_le_bytes(modified.try_into().expect("8 bytes"));
        let mut lines = rest.split(|&b| b == b'\n');
        let etag = String::from_utf8_lossy(lines.next().unwrap_or_default());
        let mut headers = HeaderMap::new();
        for line in lines {
            let (k, value) = knobs(line);
            if let Ok(v) = HeaderValue::from_bytes(value) {
                headers.append(NAMES[usize::from(k % 4)].clone(), v);
            }
        }
        crate::store::precondition::props::check_conditions(&headers, &etag, modified);
    }

    /// Durations and code lists: `sleep=`/`timeout=`-style durations (`content::params`),
    /// `sleep=`, `retry_after=` and `/status` code lists (`routes::on_demand`) and sequence
    /// lists (`routes::sequences`). The first byte sets the maximum duration.
    pub fn params(data: &[u8]) {
        let (k, rest) = knobs(data);
        let max = match k {
            255 => Duration::from_millis(u64::MAX),
            k => Duration::from_secs(u64::from(k)),
        };
        let s = String::from_utf8_lossy(rest);
        params::props::check_duration(&s, max);
        on_demand_props::check_delay(&s, max);
        on_demand_props::check_retry_after(&s);
        on_demand_props::check_code_lists(&s);
        sequences_props::check_codes(&s);
    }

    /// JSON merge patch (`routes::resources::merge`): the first two JSON values in the bytes
    /// are the target and the patch.
    pub fn merge_patch(data: &[u8]) {
        let mut values = serde_json::Deserializer::from_slice(data).into_iter();
        if let (Some(Ok(target)), Some(Ok(patch))) = (values.next(), values.next()) {
            resources_props::check_merge(&target, &patch);
        }
    }

    /// Request header values: the first line as `Authorization` (Basic and Bearer), as
    /// `Accept` and as a `location=` value, the second as the request's `Host`.
    pub fn header_values(data: &[u8]) {
        let mut lines = data.splitn(2, |&b| b == b'\n');
        let value = lines.next().unwrap_or_default();
        let host = String::from_utf8_lossy(lines.next().unwrap_or_default());
        let text = String::from_utf8_lossy(value);
        crate::edge::auth::props::check_authorization(&text);
        negotiate::props::check_accept(value);
        on_demand_props::check_location_stays_home(&text, &host);
    }
}
