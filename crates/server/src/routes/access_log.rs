//! The access log: one line per answered request, with secrets in paths redacted, written off
//! the hot path. A request formats its line into a buffer of its own worker thread's shard
//! (a lock no other thread normally takes); a writer thread swaps the buffers out and writes
//! them in batches, at least every quarter second and at once when a buffer fills, and a
//! last time when the server shuts down. Past `SHARD_MAX` bytes waiting in one shard (the
//! destination cannot keep up), lines are dropped and counted, never waited for; the writer
//! reports the count in the log. Lines of different workers can reach the destination out of
//! order (by up to a flush interval); each carries its own time.
//!
//! The lines look like the rest of the log (target `statuslab::access`): the text format of
//! `tracing`'s formatter, or one JSON object per line with the same fields.

use crate::config::AccessLogTo as Destination;
use crate::wire::reply::Reply;
use crate::wire::request::Request;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Buffers, one per shard; a thread keeps to one shard.
const SHARDS: usize = 16;
/// A shard this full wakes the writer.
const SHARD_SOFT: usize = 64 * 1024;
/// A shard this full drops lines until the writer has taken it.
const SHARD_MAX: usize = 4 * 1024 * 1024;
/// The writer writes at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// A shard's buffer, on a cache line of its own.
#[repr(align(128))]
struct Shard(Mutex<Vec<u8>>);

struct Shared {
    shards: Box<[Shard]>,
    json: bool,
    dropped: AtomicU64,
    closing: AtomicBool,
    writer: std::thread::Thread,
}

/// The access log's writer: lines in, batches out.
pub(crate) struct AccessLog {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl AccessLog {
    /// Opens the destination and starts the writer thread.
    pub(crate) fn start(to: &Destination, json: bool) -> std::io::Result<AccessLog> {
        let sink: Box<dyn std::io::Write + Send> = match to {
            Destination::Stderr => Box::new(std::io::stderr()),
            Destination::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("opening the access log {}: {e}", path.display()),
                        )
                    })?,
            ),
        };
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Shared>>();
        let handle = std::thread::Builder::new()
            .name("statuslab-access-log".to_owned())
            .spawn(move || {
                if let Ok(shared) = rx.recv() {
                    write_batches(&shared, sink);
                }
            })?;
        let shared = Arc::new(Shared {
            shards: (0..SHARDS)
                .map(|_| Shard(Mutex::new(Vec::with_capacity(SHARD_SOFT))))
                .collect(),
            json,
            dropped: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            writer: handle.thread().clone(),
        });
        tx.send(Arc::clone(&shared))
            .map_err(|_| std::io::Error::other("the access-log writer did not start"))?;
        Ok(AccessLog {
            shared,
            thread: Mutex::new(Some(handle)),
        })
    }

    /// Lines dropped so far because the destination could not keep up.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Logs one answered request, whose head was read at `started` and whose reply was made
    /// at `done` (the same instant for a reply made at once). Never blocks on the destination.
    pub(crate) fn log(&self, req: &Request, reply: &Reply, started: Instant, done: Instant) {
        let micros = done.saturating_duration_since(started).as_micros() as u64;
        let shard = &self.shared.shards[shard_index()];
        let mut buf = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
        if buf.len() >= SHARD_MAX {
            drop(buf);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = buf.len();
        let line = Line {
            req,
            code: reply.status.code(),
            bytes: reply.body.len(),
            micros,
            at: done,
        };
        if self.shared.json {
            line.json(&mut buf);
        } else {
            line.text(&mut buf);
        }
        let woke = before < SHARD_SOFT && buf.len() >= SHARD_SOFT;
        drop(buf);
        if woke {
            self.shared.writer.unpark();
        }
    }

    /// Writes every line logged so far and stops the writer. Later lines are dropped.
    pub(crate) fn close(&self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.writer.unpark();
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// This thread's shard: threads take shards in turn, so each worker has one to itself.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// The writer thread: takes each shard's lines, writes them, until the log is closed.
fn write_batches(shared: &Shared, mut sink: Box<dyn std::io::Write + Send>) {
    let mut spare: Vec<u8> = Vec::with_capacity(SHARD_SOFT);
    let mut reported = 0;
    let mut failed = false;
    loop {
        // Read before taking the buffers: lines logged before `close` are in them.
        let closing = shared.closing.load(Ordering::Acquire);
        for shard in shared.shards.iter() {
            {
                let mut buf = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
                if buf.is_empty() {
                    continue;
                }
                std::mem::swap(&mut *buf, &mut spare);
            }
            if let Err(e) = sink.write_all(&spare)
                && !failed
            {
                tracing::error!(error = %e, "cannot write the access log");
                failed = true;
            }
            spare.clear();
            if spare.capacity() > SHARD_MAX {
                spare.shrink_to(SHARD_SOFT);
            }
        }
        let _ = sink.flush();
        let dropped = shared.dropped.load(Ordering::Relaxed);
        if dropped > reported {
            tracing::warn!(
                dropped = dropped - reported,
                total = dropped,
                "access-log lines dropped: the destination did not keep up"
            );
            reported = dropped;
        }
        if closing {
            return;
        }
        std::thread::park_timeout(FLUSH_EVERY);
    }
}

/// One request's line.
struct Line<'a> {
    req: &'a Request,
    code: u16,
    bytes: usize,
    micros: u64,
    /// When the reply was made: the line's timestamp.
    at: Instant,
}

impl Line<'_> {
    /// `2026-11-30T11:40:12.123456Z  INFO statuslab::access: peer=… method=GET path="/x" …`
    fn text(&self, out: &mut Vec<u8>) {
        timestamp(out, self.at);
        out.extend_from_slice(b"  INFO statuslab::access: peer=");
        peer(out, self.req.peer);
        out.extend_from_slice(b" method=");
        out.extend_from_slice(self.req.method.as_str().as_bytes());
        out.extend_from_slice(b" path=\"");
        escaped(out, &loggable_path(self.req.uri.path()));
        out.extend_from_slice(b"\" version=");
        out.extend_from_slice(version(self.req.version).as_bytes());
        self.numbers(out, b" status=", b" bytes=", b" micros=");
        out.push(b'\n');
    }

    /// The same fields as one JSON object.
    fn json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        timestamp(out, self.at);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"peer\":\"");
        peer(out, self.req.peer);
        out.extend_from_slice(b"\",\"method\":\"");
        escaped(out, self.req.method.as_str());
        out.extend_from_slice(b"\",\"path\":\"");
        escaped(out, &loggable_path(self.req.uri.path()));
        out.extend_from_slice(b"\",\"version\":\"");
        out.extend_from_slice(version(self.req.version).as_bytes());
        out.push(b'"');
        self.numbers(out, b",\"status\":", b",\"bytes\":", b",\"micros\":");
        out.extend_from_slice(b",\"target\":\"statuslab::access\"}\n");
    }

    /// The status, byte count and duration, each after its label.
    fn numbers(&self, out: &mut Vec<u8>, status: &[u8], bytes: &[u8], micros: &[u8]) {
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(status);
        out.extend_from_slice(n.format(self.code).as_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(n.format(self.bytes).as_bytes());
        out.extend_from_slice(micros);
        out.extend_from_slice(n.format(self.micros).as_bytes());
    }
}

/// The version as `tracing` prints it (`HTTP/1.1`).
fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_11 => "HTTP/1.1",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// The client's address, as `SocketAddr` displays it.
fn peer(out: &mut Vec<u8>, addr: std::net::SocketAddr) {
    match addr {
        std::net::SocketAddr::V4(v4) => {
            let mut n = itoa::Buffer::new();
            for (i, octet) in v4.ip().octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(n.format(*octet).as_bytes());
            }
            out.push(b':');
            out.extend_from_slice(n.format(v4.port()).as_bytes());
        }
        v6 => {
            let _ = write!(Utf8(out), "{v6}");
        }
    }
}

/// `fmt::Write` into a byte buffer.
struct Utf8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Text inside double quotes, JSON-escaped (which also reads right in the text format).
fn escaped(out: &mut Vec<u8>, s: &str) {
    if !s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let mut w = Utf8(out);
    for c in s.chars() {
        match c {
            '"' => w.0.extend_from_slice(b"\\\""),
            '\\' => w.0.extend_from_slice(b"\\\\"),
            c if c.is_control() => {
                let _ = write!(w, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = w.write_char(c);
            }
        }
    }
}

thread_local! {
    /// The second the prefix below is for, and `YYYY-MM-DDTHH:MM:SS.` of it.
    static SECOND: std::cell::RefCell<(u64, [u8; 20])> = const { std::cell::RefCell::new((u64::MAX, [0; 20])) };
}

/// The instant `at`, as RFC 3339 UTC with microseconds (as `tracing`'s formatter writes it).
/// The date and time of day are formatted once a second per thread; only the microseconds
/// each time.
fn timestamp(out: &mut Vec<u8>, at: Instant) {
    let now = crate::wire::clock::wall(at)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cell| {
        let mut second = cell.borrow_mut();
        if second.0 != secs {
            let (y, m, d) = civil(secs / 86_400);
            let rem = secs % 86_400;
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.",
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            );
            if let Ok(prefix) = <[u8; 20]>::try_from(text.as_bytes()) {
                *second = (secs, prefix);
            }
        }
        out.extend_from_slice(&second.1);
    });
    let micros = now.subsec_micros();
    let mut digits = [b'0'; 6];
    let mut n = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b'Z');
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil(days: u64) -> (u64, u64, u64) {
    // Howard Hinnant's days-to-civil, for days on or after the epoch.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, Method, Uri, Version};

    fn request(path: &str) -> Request {
        Request {
            method: Method::GET,
            uri: path.parse::<Uri>().unwrap(),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            peer: "127.0.0.1:5555".parse().unwrap(),
        }
    }

    #[test]
    fn dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(59), (1970, 3, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(20_787), (2026, 11, 30));
    }

    #[test]
    fn json_lines_parse_and_redact() {
        let mut out = Vec::new();
        let req = request("/basic-auth/u/secret");
        Line {
            req: &req,
            code: 401,
            bytes: 12,
            micros: 7,
            at: Instant::now(),
        }
        .json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["target"], "statuslab::access");
        assert_eq!(v["path"], "/basic-auth/u/<redacted>");
        assert_eq!(v["status"], 401);
        assert_eq!(v["version"], "HTTP/1.1");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(out.ends_with(b"}\n"));
    }

    #[test]
    fn text_lines_look_like_the_rest_of_the_log() {
        let mut out = Vec::new();
        let req = request("/status/404");
        Line {
            req: &req,
            code: 404,
            bytes: 0,
            micros: 3,
            at: Instant::now(),
        }
        .text(&mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.ends_with(
                "  INFO statuslab::access: peer=127.0.0.1:5555 method=GET path=\"/status/404\" version=HTTP/1.1 status=404 bytes=0 micros=3\n"
            ),
            "{line}"
        );
    }

    #[test]
    fn every_line_reaches_the_file_by_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::start(&Destination::File(path.clone()), true).unwrap();
        let req = request("/status/200");
        let reply = Reply::new(crate::wire::reply::known(200));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (log, req, reply) = (&log, &req, &reply);
                move || {
                    for _ in 0..5_000 {
                        log.log(req, reply, Instant::now(), Instant::now());
                    }
                }
            })
            .collect();
        std::thread::scope(|s| {
            for t in threads {
                s.spawn(t);
            }
        });
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count() as u64 + log.dropped(), 20_000);
        assert_eq!(log.dropped(), 0);
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
    }
}
