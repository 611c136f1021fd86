//! A running `statuslab serve` child process (killed when dropped, even when a test fails) and a
//! minimal HTTP/1.1 client over a plain `TcpStream`, for the process-level tests.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the server prints on stderr once it is bound (then `http://ADDR` or `https://ADDR`).
const LISTENING: &str = "statuslab listening on ";

/// The URL a stderr line announces: the text line, or the JSON event with `--log-format json`.
pub(crate) fn listening_url(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix(LISTENING) {
        return Some(rest.trim().to_owned());
    }
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    (event["message"] == "statuslab listening")
        .then(|| event["url"].as_str().map(str::to_owned))
        .flatten()
}
/// How long a server may take to start (a store recovering after a kill included).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Read and write timeout of every client socket, so that no test hangs.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The built `statuslab` executable.
pub(crate) fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("statuslab")
}

/// A command for the built binary that ignores any `STATUSLAB_*` variable of the environment
/// the tests run in, so that only what a test sets applies.
pub(crate) fn command() -> Command {
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STATUSLAB_") {
            cmd.env_remove(key);
        }
    }
    // A panic would print its backtrace, which the tests look for.
    cmd.env("RUST_BACKTRACE", "1");
    cmd
}

/// A `statuslab serve` process; dropping it kills it (SIGKILL) and reaps it.
pub(crate) struct Served {
    child: Child,
    /// The address the server reported on stderr.
    pub(crate) addr: SocketAddr,
    /// `http` or `https`, as the server reported it.
    pub(crate) scheme: String,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Served {
    /// Starts `statuslab serve ARGS` with the environment variables `envs` and waits until it
    /// reports its address. `args` should listen on port 0.
    #[track_caller]
    pub(crate) fn start(args: &[&str], envs: &[(&str, &str)]) -> Served {
        let mut cmd = command();
        cmd.arg("serve")
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary().display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let reader = {
            let log = Arc::clone(&log);
            // Keeps draining stderr for the life of the process so that it never blocks on a
            // full pipe.
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = listening_url(&line)
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(url);
                    }
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        let mut served = Served {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            scheme: String::new(),
            log,
            reader: Some(reader),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => {
                let (scheme, text) = url
                    .split_once("://")
                    .unwrap_or_else(|| panic!("a URL in {LISTENING}{url}"));
                served.scheme = scheme.to_owned();
                served.addr = text
                    .parse()
                    .unwrap_or_else(|e| panic!("address {text:?} in {LISTENING}{url}: {e}"));
            }
            Err(_) => {
                let status = served.child.try_wait().ok().flatten();
                panic!(
                    "statuslab serve {args:?} did not report its address (exit {status:?}); stderr:\n{}",
                    served.log()
                );
            }
        }
        served
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stderr so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Its whole stderr, once it has exited.
    pub(crate) fn final_log(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }

    /// SIGKILL (on Unix `Child::kill` is SIGKILL), then reaps the process.
    pub(crate) fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL statuslab");
        let status = self.child.wait().expect("reap statuslab");
        assert!(!status.success(), "a killed server exited 0: {status:?}");
    }

    /// Sends SIGTERM with the system's `kill`.
    pub(crate) fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (`TERM`, `INT`) with the system's `kill`.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("run kill -{name}: {e}"));
        assert!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.pid()
        );
    }

    /// Waits up to `within` for the process to exit; `None` if it is still running.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A complete HTTP/1.1 response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive HTTP/1.1 connection, requests written by hand.
pub(crate) struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
    /// The status of the last response whose status line arrived, complete or not.
    pub(crate) last_status: Option<u16>,
}

impl Conn {
    /// Connects to `addr`, with [`IO_TIMEOUT`] on reads and writes.
    pub(crate) fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            host: addr.to_string(),
            last_status: None,
        })
    }

    /// Writes one request: `Host`, then `headers`, then `Content-Length` when there is a body
    /// or the method carries one.
    pub(crate) fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut msg = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            msg.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
            msg.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        msg.push_str("\r\n");
        let mut bytes = msg.into_bytes();
        bytes.extend_from_slice(body);
        let stream = self.stream.get_mut();
        stream.write_all(&bytes)?;
        stream.flush()
    }

    /// Reads the next final response (interim 1xx responses are skipped).
    pub(crate) fn receive(&mut self, head_request: bool) -> io::Result<Response> {
        loop {
            self.last_status = None;
            let line = self.line()?;
            let mut parts = line.splitn(3, ' ');
            let version = parts.next().unwrap_or_default();
            let status: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .filter(|_| version.starts_with("HTTP/1."))
                .ok_or_else(|| invalid(format!("status line {line:?}")))?;
            self.last_status = Some(status);
            let mut headers = Vec::new();
            loop {
                let line = self.line()?;
                if line.is_empty() {
                    break;
                }
                let (name, value) = line
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("header line {line:?}")))?;
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let mut response = Response {
                status,
                headers,
                body: Vec::new(),
            };
            if head_request || matches!(status, 101..=199 | 204 | 304) {
                return Ok(response);
            }
            let chunked = response
                .header("transfer-encoding")
                .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
            if chunked {
                response.body = self.chunked()?;
            } else if let Some(len) = response.header("content-length") {
                let len: usize = len
                    .parse()
                    .map_err(|_| invalid(format!("Content-Length {len:?}")))?;
                let mut body = vec![0; len];
                self.stream.read_exact(&mut body)?;
                response.body = body;
            } else {
                self.stream.read_to_end(&mut response.body)?;
            }
            return Ok(response);
        }
    }

    /// Sends a request and reads its response.
    pub(crate) fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.send(method, target, headers, body)?;
        self.receive(method == "HEAD")
    }

    /// Whether the server has closed the connection (a read sees end of stream).
    pub(crate) fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed",
            ));
        }
        if !line.ends_with("\r\n") {
            return Err(invalid(format!("line without CRLF: {line:?}")));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(format!("chunk size {line:?}")))?;
            if size == 0 {
                // Trailer section, up to the empty line.
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.stream.read_exact(&mut body[start..])?;
            if !self.line()?.is_empty() {
                return Err(invalid("chunk without CRLF".to_owned()));
            }
        }
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("invalid {what}"))
}

/// One request on a fresh connection, panicking on I/O errors.
#[track_caller]
pub(crate) fn fetch(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Response {
    let mut conn = Conn::open(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.request(method, target, &[], body)
        .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}
