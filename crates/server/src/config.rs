//! The server's validated configuration: every limit has a default and a bound.

use crate::store::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The embedded, crash-safe database in a data directory (the default).
    Embedded(PathBuf),
    /// Process memory: lost on exit.
    Memory,
}

/// How request lines are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLog {
    /// One tracing event per request (target `statuslab::access`).
    #[default]
    On,
    /// No per-request events.
    Off,
}

/// Everything `statuslab serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Longest delay a request may ask for (`sleep`); longer asks get 400.
    pub max_delay: Duration,
    /// Open connections at once; the next one gets 503 and is closed.
    pub max_connections: usize,
    /// Header fields in one request head; more gets 431.
    pub max_headers: usize,
    /// Bytes in one request head (request line and header fields); more gets 431.
    pub max_head_bytes: usize,
    /// Bytes in a request target; longer gets 414.
    pub max_uri: usize,
    /// Bytes of request content read; more gets 413.
    pub max_body: usize,
    /// Time a client has to send a complete request head; then 408 and close.
    pub header_timeout: Duration,
    /// Time a client has to send the request content; then 408 and close.
    pub body_timeout: Duration,
    /// An idle keep-alive connection is closed (silently) after this.
    pub idle_timeout: Duration,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
    /// `Retry-After` seconds sent on 413, 429 and 503 when the request names none.
    pub default_retry_after: u32,
    /// HTTP/2 streams per connection.
    pub max_h2_streams: u32,
    /// Largest WebSocket message echoed; larger ones close the socket with 1009.
    pub max_ws_message: usize,
    /// Per-request logging.
    pub access_log: AccessLog,
    /// Where state lives.
    pub store: StoreChoice,
    /// Limits on stored state.
    pub limits: Limits,
    /// Longest job a client may submit.
    pub max_job_duration: Duration,
    /// `Retry-After` seconds when the store is full (the condition is temporary).
    pub store_full_retry_after: u32,
    /// How often expired tombstones, jobs, sequences and rate-limit keys are swept.
    pub sweep_interval: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_delay: Duration::from_secs(60),
            max_connections: 20_000,
            max_headers: 100,
            max_head_bytes: 64 * 1024,
            max_uri: 8 * 1024,
            max_body: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            default_retry_after: 1,
            max_h2_streams: 256,
            max_ws_message: 1024 * 1024,
            access_log: AccessLog::On,
            store: StoreChoice::Embedded(PathBuf::from("statuslab-data")),
            limits: Limits::default(),
            max_job_duration: Duration::from_secs(3600),
            store_full_retry_after: 60,
            sweep_interval: Duration::from_secs(60),
        }
    }
}
