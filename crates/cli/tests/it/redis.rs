//! `--store redis://…`: three `statuslab serve` processes on one Redis behave as one server, and
//! a Redis outage gives 503s (on-demand routes keep working) until Redis is back.
//!
//! Each test starts its own `redis-server` on a free loopback port, without persistence. A
//! missing `redis-server` fails the tests: `scripts/test.sh` installs it.

use crate::live::{Served, fetch};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process, killed when dropped.
struct Redis {
    child: Option<Child>,
    port: u16,
    /// More `redis-server` arguments (TLS, a password).
    extra: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Redis {
    /// Starts `redis-server` on a free loopback port and waits until it answers PING.
    fn start() -> Redis {
        Redis::start_with(Vec::new())
    }

    /// Starts it with more arguments.
    fn start_with(extra: Vec<String>) -> Redis {
        let mut redis = Redis {
            child: None,
            port: free_port(),
            extra,
        };
        redis.restart();
        redis
    }

    /// (Re)starts the server on its port.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "redis-server is needed by the Redis tests and could not be started ({e}): \
                     run scripts/test-deps.sh (apt-get install redis-server) or scripts/test.sh"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING",
                self.port
            );
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server on port {} exited ({status})", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and waits for it to be gone.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        // `+PONG`, or `-NOAUTH …` from a server with a password: either way it is up.
        let mut first = [0u8; 1];
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut first).is_ok()
            && matches!(first[0], b'+' | b'-')
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `statuslab serve` on `redis` (with a prefix of its own, so tests never share keys).
fn serve(redis: &Redis, prefix: &str) -> Served {
    Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--no-access-log",
            "--store",
            &redis.url(),
            "--redis-prefix",
            prefix,
        ],
        &[],
    )
}

#[test]
fn three_instances_on_one_redis_behave_as_one_server() {
    let redis = Redis::start();
    let servers: Vec<Served> = (0..3).map(|_| serve(&redis, "multi")).collect();
    let [a, b, c] = [servers[0].addr, servers[1].addr, servers[2].addr];

    // Create through the first; the second sees the conflict; delete; the third sees 410.
    let r = fetch(a, "PUT", "/resources/shared", b"one");
    assert_eq!(r.status, 201, "{r:?}");
    let r = fetch(b, "GET", "/resources/shared", b"");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"one");
    let mut conn = crate::live::Conn::open(b).expect("connect");
    let r = conn
        .request("POST", "/resources", &[("slug", "shared")], b"two")
        .expect("POST /resources");
    assert_eq!(r.status, 409, "{r:?}");
    let r = fetch(c, "DELETE", "/resources/shared", b"");
    assert_eq!(
        r.status, 204,
        "DELETE is 204 No Content, as the README says: {r:?}"
    );
    assert!(r.body.is_empty(), "no content on 204: {r:?}");
    let r = fetch(c, "GET", "/resources/shared", b"");
    assert_eq!(r.status, 410, "{r:?}");
    let r = fetch(a, "GET", "/resources/shared", b"");
    assert_eq!(r.status, 410, "{r:?}");

    // A sequence advances across instances, round-robin.
    let got: Vec<u16> = [a, b, c, a]
        .iter()
        .map(|&addr| fetch(addr, "GET", "/sequence/rr/503,503,200", b"").status)
        .collect();
    assert_eq!(got, [503, 503, 200, 200]);

    // The rate limit counts requests through every instance together.
    let got: Vec<u16> = (0..15)
        .map(|i| fetch(servers[i % 3].addr, "GET", "/rate-limit/10/1m?key=all", b"").status)
        .collect();
    assert_eq!(
        got.iter().filter(|&&s| s == 200).count(),
        10,
        "exactly 10 of 15 pass: {got:?}"
    );
    assert!(got[10..].iter().all(|&s| s == 429), "{got:?}");

    // Concurrent requests through all three: still exactly the limit.
    let threads: Vec<_> = (0..30)
        .map(|i| {
            let addr = servers[i % 3].addr;
            std::thread::spawn(move || {
                fetch(addr, "GET", "/rate-limit/10/1m?key=burst", b"").status
            })
        })
        .collect();
    let got: Vec<u16> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    assert_eq!(
        got.iter().filter(|&&s| s == 200).count(),
        10,
        "exactly 10 of 30 concurrent requests pass: {got:?}"
    );

    for s in &servers {
        let log = s.log();
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[test]
fn a_redis_outage_gives_503s_and_the_server_recovers_without_a_restart() {
    let mut redis = Redis::start();
    let served = serve(&redis, "outage");
    let addr = served.addr;
    let r = fetch(addr, "PUT", "/resources/x", b"before");
    assert_eq!(r.status, 201, "{r:?}");

    redis.stop();
    for (method, target) in [
        ("GET", "/resources/x"),
        ("PUT", "/resources/y"),
        ("GET", "/sequence/s/500,200"),
        ("GET", "/rate-limit/5/1m"),
    ] {
        let started = Instant::now();
        let r = fetch(addr, method, target, b"body");
        assert_eq!(r.status, 503, "{method} {target} with Redis down: {r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{method} {target} took {:?}",
            started.elapsed()
        );
        assert!(r.header("retry-after").is_some(), "{r:?}");
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("application/problem+json")),
            "{r:?}"
        );
        let text = r.text();
        assert!(
            text.contains("unavailable") && text.contains("Redis"),
            "the problem says why: {text}"
        );
    }
    // On-demand routes do not need the store.
    assert_eq!(fetch(addr, "GET", "/status/200", b"").status, 200);
    assert_eq!(fetch(addr, "GET", "/status/418", b"").status, 418);
    assert_eq!(fetch(addr, "GET", "/codes", b"").status, 200);

    // Redis comes back (empty: it keeps nothing on disk); the same process recovers at once.
    redis.restart();
    let r = fetch(addr, "PUT", "/resources/x", b"after");
    assert_eq!(r.status, 201, "the first write after Redis returned: {r:?}");
    let r = fetch(addr, "GET", "/resources/x", b"");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"after");
    assert_eq!(
        fetch(addr, "GET", "/sequence/s/500,200", b"").status,
        500,
        "state works again"
    );
    assert!(!served.log().contains("panicked"), "{}", served.log());
}

/// `rediss://`: TLS to Redis (rustls, trusting `SSL_CERT_FILE`), the password from
/// `STATUSLAB_REDIS_PASSWORD` or the URL; a wrong password is a 503 that says so.
#[test]
fn rediss_with_a_password_from_the_environment_or_the_url() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("self-signed certificate");
    let cert = dir.path().join("redis.crt");
    let key = dir.path().join("redis.key");
    std::fs::write(&cert, certified.cert.pem()).expect("write certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let tls_port = free_port();
    let path = |p: &std::path::Path| p.to_str().expect("UTF-8 temp path").to_owned();
    let redis = Redis::start_with(vec![
        "--tls-port".into(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        path(&cert),
        "--tls-key-file".into(),
        path(&key),
        "--tls-ca-cert-file".into(),
        path(&cert),
        "--tls-auth-clients".into(),
        "no".into(),
        "--requirepass".into(),
        "sekret".into(),
    ]);
    let cert = path(&cert);
    let url = format!("rediss://localhost:{tls_port}");
    let start = |url: &str, password: Option<&str>| {
        let mut envs = vec![("SSL_CERT_FILE", cert.as_str())];
        if let Some(p) = password {
            envs.push(("STATUSLAB_REDIS_PASSWORD", p));
        }
        Served::start(
            &["--listen", "127.0.0.1:0", "--no-access-log", "--store", url],
            &envs,
        )
    };

    let from_env = start(&url, Some("sekret"));
    let r = fetch(from_env.addr, "PUT", "/resources/tls", b"secure");
    assert_eq!(r.status, 201, "{r:?}\n{}", from_env.log());
    let from_url = start(&format!("rediss://:sekret@localhost:{tls_port}"), None);
    let r = fetch(from_url.addr, "GET", "/resources/tls", b"");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"secure");

    let wrong = start(&url, Some("wrong"));
    let r = fetch(wrong.addr, "GET", "/resources/tls", b"");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.text().contains("uthentication"), "{}", r.text());
    assert!(!r.text().contains("wrong"), "the password is never shown");
    drop(redis);
}
