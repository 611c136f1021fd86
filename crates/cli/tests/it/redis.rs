//! `--store redis://…`: three `statuslab serve` processes on one Redis behave as one server (state,
//! maintenance mode, the store limits, the server-wide rate limit and the TTL sweep are shared),
//! and a Redis outage gives 503s (on-demand routes keep working) until Redis is back. The same
//! through `--store redis+cluster://…` on a three-master Redis Cluster, one master of which dies
//! and returns.
//!
//! Each test starts its own `redis-server` on a free loopback port, without persistence. A
//! missing `redis-server` fails the tests, never skips them: `scripts/test.sh` installs it (and,
//! with `STATUSLAB_REQUIRE_REDIS` set, as CI does, refuses to run without it).

use crate::live::{Conn, Served, fetch};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process, killed when dropped.
pub(crate) struct Redis {
    child: Option<Child>,
    pub(crate) port: u16,
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
    pub(crate) fn start() -> Redis {
        Redis::start_with(Vec::new())
    }

    /// Starts it with more arguments.
    pub(crate) fn start_with(extra: Vec<String>) -> Redis {
        Redis::start_on(free_port(), extra)
    }

    /// Starts it on `port` with more arguments.
    fn start_on(port: u16, extra: Vec<String>) -> Redis {
        let mut redis = Redis {
            child: None,
            port,
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
            .unwrap_or_else(|e| panic!("{}", missing_redis(&e)));
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

    pub(crate) fn url(&self) -> String {
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
    behave_as_one_server(&servers);
}

/// Resources, sequences and rate limits through three instances are one server's.
fn behave_as_one_server(servers: &[Served]) {
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

    for s in servers {
        let log = s.log();
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// A Redis Cluster of three masters (no replicas) on free loopback ports, in a folder of its
/// own, with `cluster-require-full-coverage no` (a master down leaves the others serving);
/// killed when dropped.
struct Cluster {
    nodes: Vec<Redis>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("a folder for the cluster");
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                let port = cluster_port();
                Redis::start_on(
                    port,
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &format!("nodes-{port}.conf"),
                        "--dir",
                        &dir.path().display().to_string(),
                        "--cluster-require-full-coverage",
                        "no",
                        "--cluster-node-timeout",
                        "1000",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                )
            })
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .arg("--cluster-yes")
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Cluster { nodes, _dir: dir };
        cluster.await_ok();
        cluster
    }

    /// Waits until every node says the cluster is ok.
    fn await_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self
            .nodes
            .iter()
            .all(|n| cluster_info(n.port).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}

/// A free port whose cluster bus port (10000 higher) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn cluster_info(port: u16) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `--store redis+cluster://…`: three instances on a three-master cluster behave as one server;
/// a master killed mid-test makes the state it held answer 503 with `Retry-After` while the rest
/// keeps working, and once it is back (same port and folder) everything works again, without a
/// restart of statuslab.
#[test]
fn three_instances_on_a_redis_cluster_behave_as_one_and_survive_a_master() {
    let mut cluster = Cluster::start();
    let url = cluster.url();
    let servers: Vec<Served> = (0..3)
        .map(|_| {
            Served::start(
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--no-access-log",
                    "--store",
                    &url,
                    "--redis-prefix",
                    "multi",
                ],
                &[],
            )
        })
        .collect();
    behave_as_one_server(&servers);
    let [a, b] = [servers[0].addr, servers[1].addr];

    let names: Vec<String> = (0..48).map(|i| format!("spread-{i}")).collect();
    for n in &names {
        let r = fetch(a, "PUT", &format!("/resources/{n}"), n.as_bytes());
        assert_eq!(r.status, 201, "{r:?}");
    }
    cluster.nodes[1].stop();
    let (mut lost, mut kept) = (Vec::new(), Vec::new());
    for n in &names {
        let started = Instant::now();
        let r = fetch(b, "GET", &format!("/resources/{n}"), b"");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "GET {n} took {:?}",
            started.elapsed()
        );
        match r.status {
            200 => {
                assert_eq!(r.body, n.as_bytes());
                kept.push(n.clone());
            }
            503 => {
                assert!(r.header("retry-after").is_some(), "{r:?}");
                lost.push(n.clone());
            }
            other => panic!("GET {n} with a master down: {other} {r:?}"),
        }
    }
    assert!(
        !lost.is_empty(),
        "some state was on the master that is down"
    );
    assert!(!kept.is_empty(), "the other masters' state still answers");
    // Writes to the live shards work; on-demand routes never needed the store.
    let r = fetch(a, "PUT", &format!("/resources/{}", kept[0]), b"again");
    assert_eq!(r.status, 204, "a replace: {r:?}\n{}", servers[0].log());
    assert_eq!(fetch(a, "GET", "/status/200", b"").status, 200);

    // The master comes back on its port and folder (empty: it keeps nothing on disk but its
    // cluster configuration); the same processes recover.
    cluster.nodes[1].restart();
    cluster.await_ok();
    for n in &lost {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = fetch(b, "PUT", &format!("/resources/{n}"), b"back");
            if r.status == 201 {
                break;
            }
            assert_eq!(r.status, 503, "PUT {n} after the master returned: {r:?}");
            assert!(Instant::now() < deadline, "PUT {n} still 503");
            std::thread::sleep(Duration::from_millis(100));
        }
        let r = fetch(a, "GET", &format!("/resources/{n}"), b"");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, b"back");
    }
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
    assert_eq!(fetch(addr, "GET", "/readyz", b"").status, 200, "ready");

    redis.stop();
    // Not ready while Redis is down, though alive.
    let r = fetch(addr, "GET", "/readyz", b"");
    assert_eq!(r.status, 503, "/readyz with Redis down: {r:?}");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert_eq!(fetch(addr, "GET", "/healthz", b"").status, 200, "alive");
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
    assert_eq!(
        fetch(addr, "GET", "/readyz", b"").status,
        200,
        "ready again"
    );
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

/// Why the Redis tests cannot run: they fail (never skip) without `redis-server`, and say so
/// loudly when `STATUSLAB_REQUIRE_REDIS` (set by scripts/test.sh and CI) demands them.
fn missing_redis(e: &std::io::Error) -> String {
    let required = std::env::var_os("STATUSLAB_REQUIRE_REDIS").is_some_and(|v| !v.is_empty());
    format!(
        "redis-server is needed by the Redis tests and could not be started ({e}){}: run \
         scripts/test-deps.sh (apt-get install redis-server) or scripts/test.sh",
        if required {
            "; STATUSLAB_REQUIRE_REDIS is set, so these tests must run"
        } else {
            ""
        }
    )
}

/// One command to Redis over RESP, its reply's first line (`:1`, `+OK`, `-ERR …`).
fn redis_command(redis: &Redis, args: &[&str]) -> String {
    use std::io::{BufRead, BufReader};
    let mut s = TcpStream::connect(("127.0.0.1", redis.port)).expect("connect to redis-server");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut msg = format!("*{}\r\n", args.len());
    for a in args {
        msg.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(msg.as_bytes()).expect("write to redis-server");
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .expect("read from redis-server");
    line.trim_end().to_owned()
}

/// `statuslab serve` on `redis` with a prefix and more flags.
fn serve_with(redis: &Redis, prefix: &str, extra: &[&str]) -> Served {
    let url = redis.url();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--no-access-log",
        "--store",
        url.as_str(),
        "--redis-prefix",
        prefix,
    ];
    args.extend_from_slice(extra);
    Served::start(&args, &[])
}

/// Polls `target` on `addr` until it answers `want`, for up to `within`; the time it took.
#[track_caller]
fn await_status(addr: std::net::SocketAddr, target: &str, want: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = fetch(addr, "GET", target, b"").status;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{addr}{target} still answers {got}, not {want}, after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One request for [`concurrently`]: address, method, target, headers, content.
type Call = (
    std::net::SocketAddr,
    &'static str,
    String,
    Vec<(&'static str, String)>,
    Vec<u8>,
);

/// Runs `requests` at once (one thread each) and returns their statuses in order.
fn concurrently(requests: Vec<Call>) -> Vec<u16> {
    let threads: Vec<_> = requests
        .into_iter()
        .map(|(addr, method, target, headers, body)| {
            std::thread::spawn(move || {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let mut conn = Conn::open(addr).expect("connect");
                conn.request(method, &target, &headers, &body)
                    .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
                    .status
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect()
}

/// Maintenance switched on through one instance reaches the others within their one-second
/// refresh (and `/health` stays exempt); switched off through another, it ends everywhere.
#[test]
fn maintenance_switched_on_one_instance_reaches_every_instance() {
    let redis = Redis::start();
    let token = ["--token", "maint-admin:admin"];
    let servers: Vec<Served> = (0..3)
        .map(|_| serve_with(&redis, "maint", &token))
        .collect();
    let [a, b, c] = [servers[0].addr, servers[1].addr, servers[2].addr];
    let auth = [("Authorization", "Bearer maint-admin")];
    for addr in [a, b, c] {
        assert_eq!(fetch(addr, "GET", "/status/200", b"").status, 200);
    }

    let r = Conn::open(a)
        .expect("connect")
        .request("PUT", "/admin/maintenance", &auth, b"")
        .expect("PUT /admin/maintenance");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        fetch(a, "GET", "/status/200", b"").status,
        503,
        "at once where switched"
    );
    // The store has it at once, whichever instance is asked.
    let r = Conn::open(b)
        .expect("connect")
        .request("GET", "/admin/maintenance", &auth, b"")
        .expect("GET /admin/maintenance");
    assert_eq!(crate::json(&r.text())["maintenance"], true, "{r:?}");
    // The others follow within their refresh (each second; 5 s allows a busy machine).
    for addr in [b, c] {
        let took = await_status(addr, "/status/200", 503, Duration::from_secs(5));
        eprintln!("maintenance on reached {addr} after {took:?}");
        let r = fetch(addr, "GET", "/status/200", b"");
        assert!(r.header("retry-after").is_some(), "{r:?}");
        assert_eq!(
            fetch(addr, "GET", "/health", b"").status,
            200,
            "/health is exempt"
        );
    }

    let r = Conn::open(c)
        .expect("connect")
        .request("DELETE", "/admin/maintenance", &auth, b"")
        .expect("DELETE /admin/maintenance");
    assert_eq!(r.status, 204, "{r:?}");
    for addr in [c, a, b] {
        let took = await_status(addr, "/status/200", 200, Duration::from_secs(5));
        eprintln!("maintenance off reached {addr} after {took:?}");
    }
}

/// `--max-keys` and `--max-store-bytes` hold over all instances together: concurrent creates
/// through three instances fill the store exactly to the limit, and no instance lets one more in.
#[test]
fn store_limits_hold_over_the_union_of_instances() {
    let redis = Redis::start();
    let limits = ["--max-keys", "5", "--max-store-bytes", "1000"];
    let servers: Vec<Served> = (0..3)
        .map(|_| serve_with(&redis, "limits", &limits))
        .collect();
    let addr = |i: usize| servers[i % 3].addr;

    // Keys: 12 concurrent creates of 10 bytes; exactly 5 fit.
    let got = concurrently(
        (0..12)
            .map(|i| {
                (
                    addr(i),
                    "PUT",
                    format!("/resources/k{i}"),
                    vec![],
                    vec![b'k'; 10],
                )
            })
            .collect(),
    );
    assert_eq!(got.iter().filter(|&&s| s == 201).count(), 5, "{got:?}");
    assert!(got.iter().all(|&s| s == 201 || s == 507), "{got:?}");
    for i in 0..3 {
        let r = fetch(addr(i), "PUT", &format!("/resources/more{i}"), b"x");
        assert_eq!(r.status, 507, "a sixth key through instance {i}: {r:?}");
    }
    // Sequences count separately, to the same limit, over all instances too.
    let got = concurrently(
        (0..9)
            .map(|i| {
                (
                    addr(i),
                    "GET",
                    format!("/sequence/q{i}/200"),
                    vec![],
                    vec![],
                )
            })
            .collect(),
    );
    assert_eq!(got.iter().filter(|&&s| s == 200).count(), 5, "{got:?}");
    assert!(got.iter().all(|&s| s == 200 || s == 507), "{got:?}");
    // A delete through one instance leaves a tombstone (410 on every instance) that keeps its
    // key until --tombstone-ttl: a new name still finds the family full, while a deleted name
    // can be created again through another instance.
    let created: Vec<usize> = (0..12)
        .filter(|i| fetch(addr(0), "GET", &format!("/resources/k{i}"), b"").status == 200)
        .collect();
    assert_eq!(created.len(), 5, "{created:?}");
    for (n, i) in created.iter().enumerate() {
        let r = fetch(addr(n + 1), "DELETE", &format!("/resources/k{i}"), b"");
        assert_eq!(r.status, 204, "{r:?}");
    }
    let r = fetch(addr(2), "GET", &format!("/resources/k{}", created[0]), b"");
    assert_eq!(r.status, 410, "{r:?}");
    let r = fetch(addr(0), "PUT", "/resources/fresh", b"x");
    assert_eq!(r.status, 507, "tombstones hold their keys: {r:?}");
    let r = fetch(addr(1), "PUT", &format!("/resources/k{}", created[0]), b"x");
    assert_eq!(r.status, 201, "a deleted name is created again: {r:?}");

    // Bytes, on instances of their own (keys are not the limit here): 10 concurrent creates
    // of 300 bytes against 1000; exactly 3 fit.
    let limits = ["--max-keys", "100", "--max-store-bytes", "1000"];
    let servers: Vec<Served> = (0..3)
        .map(|_| serve_with(&redis, "limits-bytes", &limits))
        .collect();
    let addr = |i: usize| servers[i % 3].addr;
    let got = concurrently(
        (0..10)
            .map(|i| {
                (
                    addr(i),
                    "PUT",
                    format!("/resources/b{i}"),
                    vec![],
                    vec![b'b'; 300],
                )
            })
            .collect(),
    );
    assert_eq!(got.iter().filter(|&&s| s == 201).count(), 3, "{got:?}");
    assert!(got.iter().all(|&s| s == 201 || s == 413), "{got:?}");
    // 100 bytes are left: 100 fit through one instance, then 1 more byte fits through none.
    let r = fetch(addr(1), "PUT", "/resources/last", &[b'l'; 100]);
    assert_eq!(r.status, 201, "the last 100 bytes: {r:?}");
    for i in 0..3 {
        let r = fetch(addr(i), "PUT", &format!("/resources/over{i}"), b"x");
        assert_eq!(r.status, 413, "one byte over through instance {i}: {r:?}");
        assert!(r.header("retry-after").is_some(), "{r:?}");
    }
}

/// `--rate-limit N/PERIOD` is one budget per client over every instance: of 36 concurrent
/// requests through three instances exactly N pass; another client key has its own budget.
#[test]
fn server_wide_rate_limit_admits_exactly_n_over_all_instances() {
    let redis = Redis::start();
    let flags = ["--rate-limit", "12/1h", "--rate-limit-key", "X-Client"];
    let servers: Vec<Served> = (0..3)
        .map(|_| serve_with(&redis, "server-rate", &flags))
        .collect();
    let got = concurrently(
        (0..36)
            .map(|i| {
                let headers = vec![("X-Client", "alpha".to_owned())];
                (
                    servers[i % 3].addr,
                    "GET",
                    "/status/200".to_owned(),
                    headers,
                    vec![],
                )
            })
            .collect(),
    );
    assert_eq!(
        got.iter().filter(|&&s| s == 200).count(),
        12,
        "exactly 12 of 36 pass: {got:?}"
    );
    assert!(got.iter().all(|&s| s == 200 || s == 429), "{got:?}");
    for s in &servers {
        let r = Conn::open(s.addr)
            .expect("connect")
            .request("GET", "/status/200", &[("X-Client", "alpha")], b"")
            .expect("GET");
        assert_eq!(r.status, 429, "{r:?}");
        assert!(r.header("retry-after").is_some(), "{r:?}");
        let r = Conn::open(s.addr)
            .expect("connect")
            .request(
                "GET",
                "/status/200",
                &[("X-Client", format!("beta-{}", s.addr.port()).as_str())],
                b"",
            )
            .expect("GET");
        assert_eq!(r.status, 200, "another client's budget: {r:?}");
    }
}

/// Short `--sequence-ttl` and `--tombstone-ttl`: expired sequences still hold their keys until
/// a sweep (any instance's) removes them; then new sequences fit again, and the expired
/// tombstone's Redis key is gone.
#[test]
fn the_ttl_sweep_frees_keys_so_new_ones_fit() {
    let redis = Redis::start();
    let flags = [
        "--max-keys",
        "3",
        "--sequence-ttl",
        "1s",
        "--tombstone-ttl",
        "1s",
    ];
    let a = serve_with(&redis, "ttl", &flags);
    let b = serve_with(&redis, "ttl", &flags);
    for (i, addr) in [a.addr, b.addr, a.addr].into_iter().enumerate() {
        let r = fetch(addr, "GET", &format!("/sequence/s{i}/200"), b"");
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(fetch(b.addr, "GET", "/sequence/s3/200", b"").status, 507);
    assert_eq!(fetch(a.addr, "PUT", "/resources/gone", b"x").status, 201);
    assert_eq!(fetch(b.addr, "DELETE", "/resources/gone", b"").status, 204);
    assert_eq!(fetch(a.addr, "GET", "/resources/gone", b"").status, 410);
    let tombstone = "{ttl}:tombstones:gone";
    assert_eq!(redis_command(&redis, &["EXISTS", tombstone]), ":1");

    std::thread::sleep(Duration::from_millis(1500));
    // Expired: the tombstone no longer answers 410, but until a sweep the expired sequences
    // still count (the instances' own sweeps ran at their start, the next is a minute away).
    assert_eq!(fetch(a.addr, "GET", "/resources/gone", b"").status, 404);
    assert_eq!(redis_command(&redis, &["EXISTS", tombstone]), ":1");
    assert_eq!(fetch(a.addr, "GET", "/sequence/s3/200", b"").status, 507);

    // A new instance sweeps at start, for all of them.
    let c = serve_with(&redis, "ttl", &flags);
    let took = await_status(b.addr, "/sequence/s3/200", 200, Duration::from_secs(10));
    eprintln!("keys freed {took:?} after the third instance started");
    for (i, addr) in [(4, a.addr), (5, c.addr)] {
        let r = fetch(addr, "GET", &format!("/sequence/s{i}/200"), b"");
        assert_eq!(r.status, 200, "s{i} fits again: {r:?}");
    }
    assert_eq!(
        fetch(b.addr, "GET", "/sequence/s6/200", b"").status,
        507,
        "three new keys fill the store again"
    );
    assert_eq!(redis_command(&redis, &["EXISTS", tombstone]), ":0");
}
