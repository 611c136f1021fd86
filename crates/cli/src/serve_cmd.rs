//! `statuslab serve`: raw flags (clap, `STATUSLAB_*` environment variables) become a validated
//! [`statuslab_server::Config`], then the server runs until SIGINT or SIGTERM.

use crate::Failure;
use anyhow::Context as _;
use clap::{ArgAction, Args, ValueEnum};
use statuslab_server::store::Limits;
use statuslab_server::{
    AccessLog, AccessLogTo, Config, Server, StoreChoice, TlsSource, Token, Upstream,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The text after `serve --help`'s options, as clap should print it.
///
/// clap turns every `{n}` in a help text into a line break (a template variable) and has no
/// escape for it; a reset sequence between `{` and `n` keeps `/rate-limit/{n}/{period}` whole.
/// clap strips the sequence when the output is not a terminal and it does nothing on one.
pub(crate) fn after_help() -> String {
    AFTER_HELP.replace("{n}", "{\x1b[0mn}")
}

const AFTER_HELP: &str = "\
Routes:
  /status/{codes}      any code 100-599; lists pick one: 500,503 or weighted 200:0.9,500:0.1
  /{code}              httpstat.us style, with ?sleep=MS and X-HttpStatus-* request headers
  /random/{list}       a random code from a list with ranges: 200,500-504
  /codes, /codes/{code}  the catalog as JSON;  /  a page of every code
  /websocket/echo      WebSocket echo (101);  /openapi.json  the API description
  /resources[/{name}]  stored resources: 201 409 410 304 412 206 416 415 422 411 413
  /jobs[/{id}[/result]]  asynchronous jobs: 202, then 303 to the result
  /resources, /jobs with --token: 401 without a valid token, 403 when its scope is too small
  /fault/{kind}        a connection fault: reset, empty, truncate, malformed-chunk, stall, drip, ...
  /sequence/{key}/{codes}, /sequences/{key}  per-key code sequences and their attempts
  /sequences/{key}/report  the verdict on the client's retries (JSON, or HTML with a time line)
  /basic-auth/{u}/{p}, /bearer  200, or 401 with a challenge
  /hidden-basic-auth/{u}/{p}    200, or 404
  /rate-limit/{n}/{period}  429 past n in any period (?algorithm=gcra: smoothed)
  /admin/maintenance  503 on/off
  /gateway/{upstream}/{path}  502, 504 (?timeout=), 203 (?transform=)
  httpbin drop-in: /get /post /anything /headers /delay/{n} /drip /stream/{n} /bytes/{n}
    /range/{n} /sse /redirect/{n} /redirect-to /cookies /gzip /cache /etag/{etag}
    /digest-auth/{qop}/{user}/{passwd} ... (docs/COMPATIBILITY.md; /openapi.json lists all)
Options on /status, /{code}, /random: sleep=250ms, retry_after=SECONDS|HTTP-DATE, location=/path,
  header=Name:Value (repeatable), then=CODE (final code after a 1xx), format=text|json|problem|html

Values:
  SIZE              bytes (65536) or a whole number with a unit: KiB, MiB, GiB, TiB are powers of
                    1024 (1MiB = 1048576 bytes); KB, MB, GB, TB powers of 1000 (1MB = 1000000)
  DURATION          whole numbers with a unit: ms, s, m, h or d (250ms, 30s, 5m, 24h, 1h30m); a bare
                    number is refused, except for --default-retry-after, which counts seconds
  on/off variables  STATUSLAB_PROXY=1: 1, true, yes, on / 0, false, no, off (any case; empty is off)

Examples:
  statuslab serve
  statuslab serve --listen 0.0.0.0:8080 --max-delay 30s --log-format json
  statuslab serve --config statuslab.toml   # keys as the flags: max-body = \"1MiB\"
  STATUSLAB_LISTEN=127.0.0.1:9000 statuslab serve
  curl -i localhost:8080/status/429";

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `statuslab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file of settings: its keys are these flags without their dashes (listen,
    /// max-body, token, …), its values written as after the flags ("1MiB", "30s"); flags and
    /// STATUSLAB_* variables take precedence over it.
    #[arg(long, env = "STATUSLAB_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (HTTP/1.1 and HTTP/2 with prior knowledge share it): IP:PORT
    /// (0.0.0.0:8080, [::1]:8080), HOST:PORT (localhost:8080; the name's first IPv4 address,
    /// else its first IPv6 one), or a PORT alone for 127.0.0.1:PORT.
    #[arg(long, env = "STATUSLAB_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Longest delay a request may ask for with sleep; longer asks get 400.
    #[arg(long, env = "STATUSLAB_MAX_DELAY", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub max_delay: Duration,
    /// Open connections at once; one more gets 503 with Retry-After and is closed.
    #[arg(long, env = "STATUSLAB_MAX_CONNECTIONS", default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Header fields in one request; more gets 431.
    #[arg(long, env = "STATUSLAB_MAX_HEADERS", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_headers: u16,
    /// Bytes in one request head, 1 to 16MiB; more gets 431.
    #[arg(long, env = "STATUSLAB_MAX_HEAD_BYTES", value_name = "SIZE", default_value = "64KiB", value_parser = size_in(1, 16 * MIB))]
    pub max_head_bytes: usize,
    /// Bytes in a request target, 1 to 16MiB; longer gets 414.
    #[arg(long, env = "STATUSLAB_MAX_URI", value_name = "SIZE", default_value = "8KiB", value_parser = size_in(1, 16 * MIB))]
    pub max_uri: usize,
    /// Bytes of request content, 1 to 1GiB; more gets 413 (decided from Content-Length before
    /// reading).
    #[arg(long, env = "STATUSLAB_MAX_BODY", value_name = "SIZE", default_value = "1MiB", value_parser = size_in(1, GIB))]
    pub max_body: usize,
    /// Time to send a complete request head; then 408 and the connection closes.
    #[arg(long, env = "STATUSLAB_HEADER_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time to send the request content; then 408 and the connection closes.
    #[arg(long, env = "STATUSLAB_BODY_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Idle keep-alive connections close (silently) after this.
    #[arg(long, env = "STATUSLAB_IDLE_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// On SIGINT/SIGTERM, in-flight requests get this long to finish.
    #[arg(long, env = "STATUSLAB_SHUTDOWN_GRACE", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Retry-After on 413, 429 and 503 when the request names none: seconds (120), or a
    /// duration of whole seconds (2m).
    #[arg(long, env = "STATUSLAB_DEFAULT_RETRY_AFTER", value_name = "SECONDS", default_value = "1", value_parser = parse_seconds)]
    pub default_retry_after: u32,
    /// Concurrent HTTP/2 streams per connection.
    #[arg(long, env = "STATUSLAB_MAX_H2_STREAMS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_h2_streams: u32,
    /// Largest WebSocket message echoed, 1 to 1GiB; larger closes the socket with 1009.
    #[arg(long, env = "STATUSLAB_MAX_WS_MESSAGE", value_name = "SIZE", default_value = "1MiB", value_parser = size_in(1, GIB))]
    pub max_ws_message: usize,
    /// A write to a client that makes no progress for this long closes the connection.
    #[arg(long, env = "STATUSLAB_SEND_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub send_timeout: Duration,
    /// Request content held in memory at once over all connections, 1 byte to 1TiB; past it, 503 with Retry-After.
    #[arg(long, env = "STATUSLAB_MAX_BUFFERED_BODIES", value_name = "SIZE", default_value = "256MiB", value_parser = size_in(1, TIB))]
    pub max_buffered_bodies: usize,
    /// Worker threads (default: one per core); 1 runs everything on one event loop.
    #[arg(long, env = "STATUSLAB_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
    /// Log filter: a level (off, error, warn, info, debug, trace), or comma-separated
    /// TARGET=LEVEL directives with an optional default level (info,statuslab_server=debug).
    #[arg(long, env = "STATUSLAB_LOG", value_name = "FILTER", default_value = "info", value_parser = parse_log_filter)]
    pub log_level: String,
    /// Log line format.
    #[arg(long, env = "STATUSLAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Where state lives: `embedded` (a crash-safe database in --data-dir), `memory`, or a
    /// Redis URL (`redis://host:port/db`, `rediss://…`) shared by many instances, or a Redis
    /// Cluster (`redis+cluster://host:port,host:port,…`, `rediss+cluster://…`).
    #[arg(long, env = "STATUSLAB_STORE", default_value = "embedded", value_parser = parse_store)]
    pub store: String,
    /// Prefix of every Redis key (instances sharing a prefix share state).
    #[arg(long, env = "STATUSLAB_REDIS_PREFIX", default_value = "statuslab")]
    pub redis_prefix: String,
    /// Folder of the embedded store.
    #[arg(long, env = "STATUSLAB_DATA_DIR", default_value = "./statuslab-data")]
    pub data_dir: PathBuf,
    /// Total bytes of stored resources and job results, 1 to 1TiB; past it, writes get 413 with Retry-After.
    #[arg(long, env = "STATUSLAB_MAX_STORE_BYTES", value_name = "SIZE", default_value = "256MiB", value_parser = size_in(1, TIB))]
    pub max_store_bytes: usize,
    /// Keys per family (resources and their tombstones, jobs, sequences, on-demand rate-limit keys); past it, 507.
    #[arg(long, env = "STATUSLAB_MAX_KEYS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_keys: u64,
    /// How long a deleted resource answers 410 Gone.
    #[arg(long, env = "STATUSLAB_TOMBSTONE_TTL", value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub tombstone_ttl: Duration,
    /// How long a job is kept after submission.
    #[arg(long, env = "STATUSLAB_JOB_TTL", value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub job_ttl: Duration,
    /// How long an unused sequence is kept.
    #[arg(long, env = "STATUSLAB_SEQUENCE_TTL", value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub sequence_ttl: Duration,
    /// Longest job a client may submit (422 past it).
    #[arg(long, env = "STATUSLAB_MAX_JOB_DURATION", value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub max_job_duration: Duration,
    /// A bearer token and its scope, SECRET:SCOPE with scope read, write or admin (repeatable;
    /// STATUSLAB_TOKENS takes a comma-separated list). With any token set, resources and jobs
    /// need one.
    #[arg(long = "token", env = "STATUSLAB_TOKENS", value_delimiter = ',', value_parser = parse_token, hide_env_values = true)]
    pub tokens: Vec<Token>,
    /// A file of tokens, one SECRET:SCOPE per line (# comments allowed).
    #[arg(long, env = "STATUSLAB_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Forward-proxy mode: absolute-form requests are forwarded, only to --upstream hosts and
    /// statuslab itself.
    #[arg(long, env = "STATUSLAB_PROXY", action = ArgAction::SetTrue, value_parser = parse_switch)]
    pub proxy: bool,
    /// USER:PASSWORD proxy clients must send in Proxy-Authorization (else 407).
    #[arg(long, env = "STATUSLAB_PROXY_USER", hide_env_values = true)]
    pub proxy_user: Option<String>,
    /// A gateway upstream NAME=URL (repeatable; STATUSLAB_UPSTREAMS comma-separated).
    #[arg(long = "upstream", env = "STATUSLAB_UPSTREAMS", value_delimiter = ',', value_parser = parse_upstream)]
    pub upstreams: Vec<Upstream>,
    /// A host (or host:port) httpbin's /redirect-to may send clients to besides the request's
    /// own host (repeatable; STATUSLAB_REDIRECT_ALLOW comma-separated). Others get 400.
    #[arg(long = "redirect-allow", env = "STATUSLAB_REDIRECT_ALLOW", value_name = "HOST", value_delimiter = ',', value_parser = parse_redirect_host)]
    pub redirect_allow: Vec<String>,
    /// Longest the gateway waits for an upstream when the request has no timeout (then 504).
    #[arg(long, env = "STATUSLAB_GATEWAY_MAX_WAIT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub gateway_max_wait: Duration,
    /// A server-wide rate limit per client: N/PERIOD, e.g. 100/1m: never more than N in any PERIOD (429 with Retry-After past it).
    #[arg(long, env = "STATUSLAB_RATE_LIMIT", value_name = "N/PERIOD", value_parser = parse_rate)]
    pub rate_limit: Option<(u32, Duration)>,
    /// The request header that names the client for --rate-limit (default: the client address).
    #[arg(long, env = "STATUSLAB_RATE_LIMIT_KEY")]
    pub rate_limit_key: Option<String>,
    /// Start in maintenance mode: every non-admin route answers 503 with Retry-After.
    #[arg(long, env = "STATUSLAB_MAINTENANCE", action = ArgAction::SetTrue, value_parser = parse_switch)]
    pub maintenance: bool,
    /// Requests handled at once; more get 503 with Retry-After instead of queueing.
    #[arg(long, env = "STATUSLAB_MAX_IN_FLIGHT", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_in_flight: Option<u32>,
    /// TLS certificate chain (PEM); with --tls-key, serves HTTPS with HTTP/2 by ALPN.
    #[arg(long, env = "STATUSLAB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "STATUSLAB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for localhost made at start.
    #[arg(long, env = "STATUSLAB_TLS_SELF_SIGNED", action = ArgAction::SetTrue, value_parser = parse_switch)]
    pub tls_self_signed: bool,
    /// Where --tls-self-signed writes its certificate (PEM, never the key), for clients to trust: `curl --cacert PATH` [default: DATA_DIR/tls/cert.pem, whatever the store].
    #[arg(long, env = "STATUSLAB_TLS_CERT_OUT", value_name = "PATH")]
    pub tls_cert_out: Option<PathBuf>,
    /// Do not log one line per request.
    #[arg(long, env = "STATUSLAB_NO_ACCESS_LOG", action = ArgAction::SetTrue, value_parser = parse_switch)]
    pub no_access_log: bool,
    /// Do not count requests for GET /metrics (which then answers 404).
    #[arg(long, env = "STATUSLAB_NO_METRICS", action = ArgAction::SetTrue, value_parser = parse_switch)]
    pub no_metrics: bool,
    /// Write the access log (one line per request, in --log-format) to FILE, appending; `-` is
    /// standard error. Lines are written in batches off the request path, at least every 250 ms
    /// and all of them at shutdown.
    #[arg(
        long,
        env = "STATUSLAB_ACCESS_LOG",
        value_name = "FILE",
        default_value = "-"
    )]
    pub access_log: PathBuf,
}

impl ServeArgs {
    /// The validated server configuration.
    pub fn config(&self) -> Result<Config, Failure> {
        let mut tokens = self.tokens.clone();
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("--token-file {}: {e}", path.display())))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let t = line.parse::<Token>().map_err(|e| {
                    Failure::Usage(format!(
                        "--token-file {} line {}: {e}",
                        path.display(),
                        n + 1
                    ))
                })?;
                tokens.push(t);
            }
        }
        let proxy_user = match &self.proxy_user {
            None => None,
            Some(up) => match up.split_once(':') {
                Some((u, p)) if !u.is_empty() => Some((u.to_owned(), p.to_owned())),
                _ => {
                    return Err(Failure::Usage(
                        "--proxy-user must be USER:PASSWORD".to_owned(),
                    ));
                }
            },
        };
        let rate_limit_key =
            match &self.rate_limit_key {
                None => None,
                Some(h) => Some(http::HeaderName::from_bytes(h.trim().as_bytes()).map_err(
                    |_| Failure::Usage(format!("--rate-limit-key {h:?} is not a header name")),
                )?),
            };
        // Checked here rather than with clap's conflicts_with, which also counts
        // STATUSLAB_TLS_SELF_SIGNED=0 as the flag being given.
        if self.tls_self_signed && self.tls_cert.is_some() {
            return Err(Failure::Usage(
                "--tls-self-signed cannot be used with --tls-cert: pick one".to_owned(),
            ));
        }
        if self.tls_cert_out.is_some() && !self.tls_self_signed {
            return Err(Failure::Usage(
                "--tls-cert-out names where --tls-self-signed writes its certificate: add --tls-self-signed".to_owned(),
            ));
        }
        let tls_cert_out = self.tls_self_signed.then(|| {
            self.tls_cert_out
                .clone()
                .unwrap_or_else(|| self.data_dir.join("tls").join("cert.pem"))
        });
        let tls = match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (_, _, true) => Some(TlsSource::SelfSigned),
            _ => None,
        };
        Ok(Config {
            tokens,
            proxy: self.proxy,
            proxy_user,
            upstreams: self.upstreams.clone(),
            redirect_allow: self.redirect_allow.clone(),
            gateway_max_wait: self.gateway_max_wait,
            rate_limit: self.rate_limit,
            rate_limit_key,
            maintenance: self.maintenance,
            max_in_flight: self.max_in_flight.map(|n| n as usize),
            tls,
            tls_cert_out,
            listen: self.listen,
            max_delay: self.max_delay,
            max_connections: self.max_connections as usize,
            max_headers: usize::from(self.max_headers),
            max_head_bytes: self.max_head_bytes,
            max_uri: self.max_uri,
            max_body: self.max_body,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            shutdown_grace: self.shutdown_grace,
            default_retry_after: self.default_retry_after,
            max_h2_streams: self.max_h2_streams,
            max_ws_message: self.max_ws_message,
            send_timeout: self.send_timeout,
            max_buffered_bodies: self.max_buffered_bodies,
            store: match self.store.as_str() {
                "memory" => StoreChoice::Memory,
                "embedded" => StoreChoice::Embedded(self.data_dir.clone()),
                url => StoreChoice::Redis {
                    url: url.to_owned(),
                    prefix: self.redis_prefix.clone(),
                },
            },
            limits: Limits {
                max_store_bytes: self.max_store_bytes as u64,
                max_keys: self.max_keys,
                tombstone_ttl: self.tombstone_ttl,
                job_ttl: self.job_ttl,
                sequence_ttl: self.sequence_ttl,
                ..Limits::default()
            },
            max_job_duration: self.max_job_duration,
            access_log: if self.no_access_log {
                AccessLog::Off
            } else {
                AccessLog::On
            },
            access_log_to: if self.access_log.as_os_str() == "-" {
                AccessLogTo::Stderr
            } else {
                AccessLogTo::File(self.access_log.clone())
            },
            access_log_json: self.log_format == LogFormat::Json,
            metrics: !self.no_metrics,
            ..Config::default()
        })
    }
}

fn parse_store(s: &str) -> Result<String, String> {
    let t = s.trim();
    let redis = [
        "redis://",
        "rediss://",
        "redis+cluster://",
        "rediss+cluster://",
    ];
    if t == "embedded" || t == "memory" || redis.iter().any(|p| t.starts_with(p)) {
        Ok(t.to_owned())
    } else {
        Err(format!(
            "{s:?}: expected embedded, memory, or a redis://, rediss:// or redis+cluster:// URL"
        ))
    }
}

/// What `--log-level` takes, for its error messages.
const LOG_FILTER_FORMS: &str = "use a level (off, error, warn, info, debug, trace) or \
                                TARGET=LEVEL directives such as info,statuslab_server=debug";

/// Checks a `--log-level` filter before anything starts: tracing's `EnvFilter` must parse it,
/// and a directive without `=` must be a level. (`EnvFilter` would take a bare word such as
/// `nonsense` as a target to trace, which is never what a person meant by a level.)
fn parse_log_filter(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("the filter is empty: {LOG_FILTER_FORMS}"));
    }
    let directives: Vec<&str> = t.split(',').map(str::trim).collect();
    for &directive in &directives {
        if directive.is_empty() {
            return Err(format!("{t:?} has an empty directive: {LOG_FILTER_FORMS}"));
        }
        let bare = !directive.contains('=') && !directive.contains('[');
        if bare
            && directive
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .is_err()
        {
            return Err(format!("{directive:?} is not a level: {LOG_FILTER_FORMS}"));
        }
    }
    let filter = directives.join(",");
    tracing_subscriber::EnvFilter::builder()
        .parse(&filter)
        .map_err(|e| format!("{t:?}: {e}; {LOG_FILTER_FORMS}"))?;
    Ok(filter)
}

/// Parses the value of an on/off flag's variable (`STATUSLAB_PROXY=1`); on the command line the
/// flag alone means on. Empty is off, like an unset variable.
fn parse_switch(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!(
            "{s:?} is neither on nor off: use 1, true, yes or on; 0, false, no or off"
        )),
    }
}

/// The forms `--listen` accepts, for its error messages.
const LISTEN_FORMS: &str = "expected IP:PORT (127.0.0.1:8080, [::1]:8080), HOST:PORT \
                            (localhost:8080) or a PORT alone (8080 for 127.0.0.1:8080)";

/// Parses `--listen`: a socket address, a bare port (on 127.0.0.1), or HOST:PORT with the host
/// resolved (its first IPv4 address, else its first IPv6 one).
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    let t = s.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = |p: &str| -> Result<u16, String> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{s:?}: the port {p:?} is not a number; {LISTEN_FORMS}"
            ));
        }
        p.parse()
            .map_err(|_| format!("{s:?}: the port {p} is not in 0-65535"))
    };
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port(t)?)));
    }
    let Some((host, p)) = t.rsplit_once(':') else {
        return Err(format!("{s:?}: no port; {LISTEN_FORMS}"));
    };
    let host_name = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && host.bytes().any(|b| b.is_ascii_alphabetic());
    if !host_name {
        // An IP address with a bad port, an IPv6 address without brackets, or no host at all.
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            port(p)?;
        }
        return Err(format!("{s:?}: {LISTEN_FORMS}"));
    }
    let port = port(p)?;
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{s:?}: cannot resolve {host:?} ({e}); {LISTEN_FORMS}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{s:?}: {host:?} has no address; {LISTEN_FORMS}"))
}

fn parse_token(s: &str) -> Result<Token, String> {
    s.parse()
}

fn parse_upstream(s: &str) -> Result<Upstream, String> {
    s.parse()
}

/// Parses a --redirect-allow host: a host name or address, optionally with a port.
fn parse_redirect_host(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{s:?} is not a host: expected a name or address, optionally with :PORT (e.g. example.com or 127.0.0.1:9000)"
        ))
    }
}

/// Parses N/PERIOD (`100/1m`, `10/1s`).
fn parse_rate(s: &str) -> Result<(u32, Duration), String> {
    let (n, period) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected N/PERIOD such as 100/1m"))?;
    let n: u32 = n
        .trim()
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?}: N must be a whole number > 0"))?;
    let period = parse_duration(period.trim())?;
    if period.is_zero() {
        return Err(format!("{s:?}: the period must be longer than 0"));
    }
    Ok((n, period))
}

/// The units durations take, for messages.
const DURATION_UNITS: &str = "a whole number with a unit: ms, s, m, h or d \
                              (250ms, 30s, 5m, 24h, 7d; combined: 1h30m)";

/// Parses a duration: whole numbers with a unit each, `ms`, `s`, `m`, `h` or `d`, one or
/// several (`1h30m`, `1m 30s`). A bare number is refused: its unit would be a guess.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{t:?} has no unit: write {t}s for seconds, or use ms, m, h or d"
        ));
    }
    let not_a_duration = || format!("{s:?} is not a duration: use {DURATION_UNITS}");
    let too_long = || format!("{s:?} is too long a duration");
    if t.is_empty() {
        return Err(not_a_duration());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(not_a_duration());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let (unit, after) = rest.split_at(letters);
        let secs_per = match unit {
            "ms" => {
                total = total
                    .checked_add(Duration::from_millis(n))
                    .ok_or_else(too_long)?;
                rest = after.trim_start();
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "" => return Err(not_a_duration()),
            _ => {
                return Err(format!(
                    "{s:?}: unknown unit {unit:?}; use {DURATION_UNITS}"
                ));
            }
        };
        let secs = n.checked_mul(secs_per).ok_or_else(too_long)?;
        total = total
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(too_long)?;
        rest = after.trim_start();
    }
    Ok(total)
}

/// Parses `--default-retry-after`: a number of seconds, or a duration of whole seconds.
fn parse_seconds(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let secs = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>()
            .map_err(|_| format!("{s:?} is too large"))?
    } else {
        let d = parse_duration(t).map_err(|_| {
            format!("{s:?} is not a number of seconds (120) or a duration (2m, 1h30m)")
        })?;
        if d.subsec_nanos() != 0 {
            return Err(format!("{s:?}: Retry-After is in whole seconds"));
        }
        d.as_secs()
    };
    u32::try_from(secs).map_err(|_| format!("{s:?} is too large: at most {} seconds", u32::MAX))
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// The units `--max-*` sizes take, for messages.
const SIZE_UNITS: &str = "bytes, or a number with KiB, MiB, GiB, TiB (powers of 1024) or \
                          KB, MB, GB, TB (powers of 1000), e.g. 65536, 64KiB, 1MB";

/// Parses a size: bytes, or a whole number with a unit. `KiB`, `MiB`, `GiB` and `TiB` are
/// powers of 1024; `KB`, `MB`, `GB` and `TB` powers of 1000 (any case). A bare `k`, `m`, `g`
/// or `t` is refused as ambiguous.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("{s:?} is not a size: use {SIZE_UNITS}"));
    }
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        "tib" => TIB,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "m" | "g" | "t" => {
            let u = unit.to_ascii_uppercase();
            return Err(format!(
                "{s:?}: {unit:?} is ambiguous: write {num}{u}iB for powers of 1024 or {num}{u}B for powers of 1000"
            ));
        }
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use {SIZE_UNITS}")),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// A size as a person would write it: the largest binary unit that divides it.
fn show_size(n: u64) -> String {
    for (unit, name) in [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{}{name}", n / unit);
        }
    }
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// A value parser for a size flag that takes `min..=max` bytes.
fn size_in(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let n = parse_size(s)?;
        if !(min..=max).contains(&n) {
            return Err(format!(
                "{} is outside the accepted range, {} to {}",
                show_size(n),
                show_size(min),
                show_size(max)
            ));
        }
        usize::try_from(n).map_err(|_| format!("{s:?} is too large for this machine"))
    }
}

pub(crate) fn serve(args: ServeArgs) -> Result<(), Failure> {
    init_tracing(&args)?;
    let mut config = args.config()?;
    // `--log-level warn` (or a filter that leaves out statuslab::access) silences it too.
    if !tracing::enabled!(target: "statuslab::access", tracing::Level::INFO) {
        config.access_log = AccessLog::Off;
    }
    // One worker: a single-threaded runtime, an event loop as nginx's worker is (no
    // work-stealing queues, no atomic hand-offs between threads on every wake-up).
    let mut rt = match args.workers.map(usize::from) {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = n {
                rt.worker_threads(n);
            }
            rt
        }
    };
    rt.enable_all();
    let rt = rt.build().context("starting the runtime")?;
    // Room for every connection the server admits, so connection bursts never wait on the
    // kernel growing the descriptor table.
    statuslab_server::prepare_fd_table(config.max_connections.saturating_add(64));
    rt.block_on(async {
        let server = Server::bind(config).await.with_context(|| {
            format!(
                "starting the server on {} with the {} store",
                args.listen, args.store
            )
        })?;
        let scheme = if args.tls_cert.is_some() || args.tls_self_signed {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://{}", server.local_addr());
        match args.log_format {
            // One JSON object per line, like every other line of a JSON log.
            LogFormat::Json => {
                tracing::info!(target: "statuslab", url = %url, "statuslab listening")
            }
            LogFormat::Text => eprintln!("statuslab listening on {url}"),
        }
        // The accept loop runs on a worker thread, not on the thread that blocks on this future.
        tokio::spawn(server.run(shutdown_signal()))
            .await
            .context("the server task failed")?
            .context("serving")
    })?;
    Ok(())
}

fn init_tracing(args: &ServeArgs) -> Result<(), Failure> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|e| Failure::Usage(format!("--log-level {:?}: {e}", args.log_level)))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init in the same process (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let ok = |s: &str, want: &str| {
            assert_eq!(parse_listen(s), Ok(want.parse().unwrap()), "{s}");
        };
        ok("127.0.0.1:8080", "127.0.0.1:8080");
        ok("0.0.0.0:80", "0.0.0.0:80");
        ok("[::1]:8080", "[::1]:8080");
        ok("8080", "127.0.0.1:8080");
        ok("0", "127.0.0.1:0");
        ok(" 9000 ", "127.0.0.1:9000");
        ok("localhost:8080", "127.0.0.1:8080");
        ok("LOCALHOST:0", "127.0.0.1:0");
        for bad in [
            "",
            "nonsense",
            "127.0.0.1",
            "localhost",
            ":8080",
            "::1:8080",
            "127.0.0.1:99999",
            "99999",
            "localhost:http",
            "127.0.0.1:-1",
            "local host:80",
        ] {
            let e = parse_listen(bad).expect_err(bad);
            assert!(
                e.contains("IP:PORT") || e.contains("0-65535"),
                "{bad:?}: {e}"
            );
        }
        assert!(parse_listen("99999").unwrap_err().contains("0-65535"));
        assert!(
            parse_listen("127.0.0.1:99999")
                .unwrap_err()
                .contains("0-65535")
        );
    }

    #[test]
    fn log_filters() {
        for good in [
            "info",
            "DEBUG",
            "off",
            "3",
            "warn,statuslab_server=debug",
            "statuslab_server=trace",
            "info, h2=warn",
            "statuslab_server[request]=debug",
        ] {
            assert!(
                parse_log_filter(good).is_ok(),
                "{good}: {:?}",
                parse_log_filter(good)
            );
        }
        for bad in [
            "nonsense",
            "",
            "  ",
            "[[[",
            "loud",
            "info,,debug",
            "statuslab_server=loud",
            "info,verbose",
        ] {
            let e = parse_log_filter(bad).expect_err(bad);
            assert!(e.contains("TARGET=LEVEL"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn durations() {
        let ok = |s: &str, ms: u64| {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
        };
        ok("250ms", 250);
        ok("30s", 30_000);
        ok("5m", 300_000);
        ok("24h", 86_400_000);
        ok("7d", 604_800_000);
        ok("1h30m", 5_400_000);
        ok("1m 30s", 90_000);
        ok(" 10s ", 10_000);
        ok("10 s", 10_000);
        ok("0s", 0);
        ok("1s500ms", 1_500);
        for (bad, says) in [
            ("forever", "ms, s, m, h or d"),
            ("", "ms, s, m, h or d"),
            ("30", "write 30s for seconds"),
            ("1M", "unknown unit \"M\""),
            ("1y", "unknown unit \"y\""),
            ("2months", "unknown unit \"months\""),
            ("30sec", "ms, s, m, h or d"),
            ("1.5s", "ms, s, m, h or d"),
            ("-1s", "ms, s, m, h or d"),
            ("s", "ms, s, m, h or d"),
            ("99999999999999999999s", "too long"),
            ("999999999999999999d", "too long"),
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(!e.contains("months, years"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_seconds("1"), Ok(1));
        assert_eq!(parse_seconds("0"), Ok(0));
        assert_eq!(parse_seconds("120"), Ok(120));
        assert_eq!(parse_seconds("2m"), Ok(120));
        assert_eq!(parse_seconds("1h30m"), Ok(5_400));
        assert!(
            parse_seconds("soon")
                .unwrap_err()
                .contains("number of seconds")
        );
        assert!(
            parse_seconds("1500ms")
                .unwrap_err()
                .contains("whole seconds")
        );
        assert!(
            parse_seconds("99999999999")
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1mib"), Ok(1 << 20));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("0"), Ok(0));
        for (bad, says) in [
            ("lots", "KiB, MiB"),
            ("", "powers of 1000"),
            ("5 parsecs", "unknown unit \"parsecs\""),
            (
                "1m",
                "write 1MiB for powers of 1024 or 1MB for powers of 1000",
            ),
            ("64k", "64KiB"),
            ("1.5MiB", "unknown unit"),
            ("-1", "not a size"),
            ("99999999999999999999GiB", "too large"),
            ("99999999999TiB", "too large"),
        ] {
            let e = parse_size(bad).expect_err(bad);
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn size_ranges() {
        let body = size_in(1, GIB);
        assert_eq!(body("1"), Ok(1));
        assert_eq!(body("1GiB"), Ok(1 << 30));
        assert_eq!(body("1GB"), Ok(1_000_000_000));
        let e = body("0").unwrap_err();
        assert_eq!(e, "0 bytes is outside the accepted range, 1 byte to 1GiB");
        let e = body("2GiB").unwrap_err();
        assert_eq!(e, "2GiB is outside the accepted range, 1 byte to 1GiB");
        assert_eq!(show_size(1_000_000), "1000000 bytes");
        assert_eq!(show_size(64 * KIB), "64KiB");
    }
}
