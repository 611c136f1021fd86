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
    /// Redis (`redis://` or `rediss://` URL, or `redis+cluster://host:port,…` for a Redis
    /// Cluster): state shared by every instance.
    Redis {
        /// Connection URL; a password may come from the URL or `STATUSLAB_REDIS_PASSWORD`.
        url: String,
        /// Key prefix (`--redis-prefix`).
        prefix: String,
    },
}

/// Whether request lines are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLog {
    /// One line per request (target `statuslab::access`), written in batches off the hot path.
    #[default]
    On,
    /// No per-request lines.
    Off,
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccessLogTo {
    /// Standard error, beside the rest of the log.
    #[default]
    Stderr,
    /// A file, appended to (created if missing).
    File(PathBuf),
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
    /// A write to a client that makes no progress for this long closes the connection.
    pub send_timeout: Duration,
    /// Request content buffered at once, over all connections; past it, 503 + `Retry-After`.
    pub max_buffered_bodies: usize,
    /// Per-request logging.
    pub access_log: AccessLog,
    /// Where access-log lines go (`--access-log`).
    pub access_log_to: AccessLogTo,
    /// Access-log lines as JSON objects (with `--log-format json`) rather than text.
    pub access_log_json: bool,
    /// Count requests, connections and store operations for `GET /metrics`.
    pub metrics: bool,
    /// Where state lives.
    pub store: StoreChoice,
    /// Limits on stored state.
    pub limits: Limits,
    /// Longest job a client may submit.
    pub max_job_duration: Duration,
    /// How often expired tombstones, jobs, sequences and rate-limit keys are swept.
    pub sweep_interval: Duration,
    /// Bearer tokens; when any is set, resources and jobs need one.
    pub tokens: Vec<Token>,
    /// Forward-proxy mode: absolute-form requests are forwarded (only to known upstreams).
    pub proxy: bool,
    /// `user:password` a proxy client must present in `Proxy-Authorization` (Basic).
    pub proxy_user: Option<(String, String)>,
    /// Named upstreams for `/gateway/{name}/…` and the proxy.
    pub upstreams: Vec<Upstream>,
    /// Longest a gateway request waits for an upstream without a `timeout` parameter (then 504).
    pub gateway_max_wait: Duration,
    /// A server-wide rate limit per client key: requests per period.
    pub rate_limit: Option<(u32, Duration)>,
    /// The request header naming the client key (default: the client address).
    pub rate_limit_key: Option<http::HeaderName>,
    /// Start in maintenance mode (every non-admin route answers 503).
    pub maintenance: bool,
    /// Requests handled at once; more get 503 with Retry-After instead of queueing.
    pub max_in_flight: Option<usize>,
    /// TLS: certificate and key, or a self-signed certificate made at start.
    pub tls: Option<TlsSource>,
    /// Where a self-signed certificate ([`TlsSource::SelfSigned`]) is written as PEM (the
    /// certificate only, never the key), so that clients can trust it (`curl --cacert`).
    pub tls_cert_out: Option<PathBuf>,
    /// Hosts (`host` or `host:port`) httpbin's `/redirect-to` may send clients to besides the
    /// request's own host: statuslab is never an open redirector.
    pub redirect_allow: Vec<String>,
}

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read resources and jobs.
    Read,
    /// Also create, change and delete them.
    Write,
    /// Also switch maintenance mode.
    Admin,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?}: expected read, write or admin"
            )),
        }
    }
}

/// A bearer token and its scope.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The secret a client sends as `Authorization: Bearer SECRET`.
    pub secret: String,
    /// What it may do.
    pub scope: Scope,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach logs.
        f.debug_struct("Token")
            .field("secret", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

impl std::str::FromStr for Token {
    type Err = String;
    /// Parses `SECRET:SCOPE`.
    fn from_str(s: &str) -> Result<Token, String> {
        let (secret, scope) = s
            .trim()
            .rsplit_once(':')
            .ok_or("expected SECRET:SCOPE, e.g. s3cret:write")?;
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token is visible ASCII without spaces".to_owned());
        }
        Ok(Token {
            secret: secret.to_owned(),
            scope: scope.parse()?,
        })
    }
}

/// A named upstream for the gateway and the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The name in `/gateway/{name}/…`.
    pub name: String,
    /// Base URL (`http://host:port`).
    pub url: http::Uri,
}

impl std::str::FromStr for Upstream {
    type Err = String;
    /// Parses `NAME=URL`.
    fn from_str(s: &str) -> Result<Upstream, String> {
        let (name, url) = s
            .split_once('=')
            .ok_or("expected NAME=URL, e.g. api=http://127.0.0.1:9000")?;
        let url: http::Uri = url
            .trim()
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if url.scheme_str() != Some("http") || url.host().is_none() {
            return Err(format!("{url} must be an http:// URL with a host"));
        }
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "upstream name {name:?}: use letters, digits, - and _"
            ));
        }
        Ok(Upstream {
            name: name.to_owned(),
            url,
        })
    }
}

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A self-signed certificate for localhost, made at start.
    SelfSigned,
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
            send_timeout: Duration::from_secs(60),
            max_buffered_bodies: 256 * 1024 * 1024,
            access_log: AccessLog::On,
            access_log_to: AccessLogTo::Stderr,
            access_log_json: false,
            metrics: true,
            store: StoreChoice::Embedded(PathBuf::from("statuslab-data")),
            limits: Limits::default(),
            max_job_duration: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(60),
            tokens: Vec::new(),
            proxy: false,
            proxy_user: None,
            upstreams: Vec::new(),
            gateway_max_wait: Duration::from_secs(30),
            rate_limit: None,
            rate_limit_key: None,
            maintenance: false,
            max_in_flight: None,
            tls: None,
            tls_cert_out: None,
            redirect_allow: Vec::new(),
        }
    }
}
