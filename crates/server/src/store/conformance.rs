//! The store conformance suite: every backend runs the same tests.
//!
//! [`conformance_tests!`] expands to a module of `#[tokio::test]`s, each taking a fresh store
//! from an async factory that is given the [`Limits`] the test needs (small ones where a test
//! runs into them). It is instantiated below for every engine; a new engine adds one line.
//! Tests that only make sense for one engine (durability across a reopen) sit outside it.
//!
//! Time is an input here, not a race: every fixture's store runs on a [`ManualClock`] that
//! the tests move on explicitly ([`Fixture::advance`]), so no test sleeps or depends on how
//! fast the machine is; expiry, jobs and rate limits are checked to the millisecond.

use super::clock::ManualClock;
use super::embedded::EmbeddedEngine;
use super::memory::MemoryEngine;
use super::redis::RedisEngine;
use super::*;
use http::{HeaderMap, HeaderValue};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// A store under test, and whatever must outlive it (the embedded engine's directory).
/// Fields drop in order: the store closes before its directory is removed.
pub(super) struct Fixture {
    store: Arc<dyn Store>,
    inspect: Arc<dyn Inspect>,
    clock: Arc<ManualClock>,
    /// Whether `--max-keys` and `--max-store-bytes` hold exactly under concurrent writers too:
    /// every engine but Redis Cluster, which may pass them by what the writers concurrently
    /// in flight add (see `redis.rs`, "Accounting bound on a cluster").
    exact_limits: bool,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    fn shared(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Moves the store's clock on.
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// What the store holds, checked for consistency: every counter equals what it counts.
    #[track_caller]
    fn census(&self) -> Census {
        let c = self.inspect.census();
        c.assert_consistent();
        c
    }
}

/// A store's raw content, read from its engine past the [`Store`] interface.
trait Inspect: Send + Sync {
    fn census(&self) -> Census;
}

/// Entries per table, the counters, and what the counters should be.
#[derive(Debug, Default)]
struct Census {
    /// Entries per table.
    entries: BTreeMap<Table, u64>,
    /// Stored counters.
    counters: BTreeMap<String, u64>,
    /// What each counter should be, from the entries.
    expected: BTreeMap<String, u64>,
    /// Attempt records that belong to no stored attempt of a stored sequence.
    stray_attempts: Vec<String>,
}

impl Census {
    fn entries(&self, table: Table) -> u64 {
        self.entries.get(&table).copied().unwrap_or(0)
    }

    #[track_caller]
    fn assert_consistent(&self) {
        let stored: BTreeMap<&str, u64> = self
            .expected
            .keys()
            .map(|k| (k.as_str(), self.counters.get(k).copied().unwrap_or(0)))
            .collect();
        let expected: BTreeMap<&str, u64> = self
            .expected
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(stored, expected, "counters against entries: {self:?}");
        assert!(
            self.stray_attempts.is_empty(),
            "attempts left behind: {:?}",
            self.stray_attempts
        );
    }
}

impl<E: Engine> Inspect for KvStore<E> {
    fn census(&self) -> Census {
        const ALL: usize = 1_000_000;
        self.engine
            .read(&mut |tx| {
                let mut c = Census::default();
                let mut tables = BTreeMap::new();
                for t in Table::ALL {
                    let rows = tx.scan(t, None, ALL)?;
                    c.entries.insert(t, rows.len() as u64);
                    tables.insert(t, rows);
                }
                for (k, v) in &tables[&Table::Counters] {
                    if let Ok(n) = std::str::from_utf8(v).unwrap_or("").parse() {
                        c.counters.insert(k.clone(), n);
                    }
                }
                let n = |t: Table| tables[&t].len() as u64;
                let server = tables[&Table::Rates]
                    .iter()
                    .filter(|(k, _)| k.starts_with(SERVER_RATE_PREFIX))
                    .count() as u64;
                let bytes: usize = tables[&Table::Bodies]
                    .iter()
                    .chain(&tables[&Table::Jobs])
                    .map(|(_, v)| v.len())
                    .sum();
                for (name, value) in [
                    (
                        ops::RESOURCE_COUNT,
                        n(Table::Resources) + n(Table::Tombstones),
                    ),
                    (ops::JOB_COUNT, n(Table::Jobs)),
                    (ops::SEQUENCE_COUNT, n(Table::Sequences)),
                    (ops::RATE_COUNT, n(Table::Rates) - server),
                    (ops::SERVER_RATE_COUNT, server),
                    (ops::BYTES_USED, bytes as u64),
                ] {
                    c.expected.insert(name.to_owned(), value);
                }
                let mut wanted = std::collections::BTreeSet::new();
                for (k, v) in &tables[&Table::Sequences] {
                    let head: ops::Head = serde_json::from_slice(v).expect("sequence head");
                    for i in head.first()..head.served {
                        wanted.insert(ops::attempt_key(k, i));
                    }
                }
                c.stray_attempts = tables[&Table::Attempts]
                    .iter()
                    .filter(|(k, _)| !wanted.contains(k))
                    .map(|(k, _)| k.escape_debug().to_string())
                    .collect();
                Ok(c)
            })
            .expect("census")
    }
}

/// Where every fixture's clock starts: a fixed instant (2025-06-15T14:13:20.250Z), so runs are
/// reproducible; the quarter second checks that second-resolution dates truncate.
const START_MS: u64 = 1_750_000_000_250;

/// Entries per sweep transaction in the fixtures: tiny, so that every sweep test crosses
/// batch boundaries.
const TEST_SWEEP_BATCH: usize = 3;

/// A store over `engine` on a fresh manual clock.
fn fixture<E: Engine>(engine: E, limits: Limits, dir: Option<tempfile::TempDir>) -> Fixture {
    let clock = Arc::new(ManualClock::new(START_MS));
    let store = Arc::new(
        KvStore::with_clock(engine, limits, clock.clone()).with_sweep_batch(TEST_SWEEP_BATCH),
    );
    Fixture {
        store: store.clone(),
        inspect: store,
        clock,
        exact_limits: true,
        _dir: dir,
    }
}

impl std::ops::Deref for Fixture {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

/// Factory: a [`KvStore`] over a fresh [`MemoryEngine`].
async fn memory_store(limits: Limits) -> Fixture {
    fixture(MemoryEngine::new(), limits, None)
}

/// Factory: a [`KvStore`] over a fresh [`EmbeddedEngine`] in its own temporary directory.
async fn embedded_store(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine = EmbeddedEngine::open(dir.path()).expect("open redb");
    fixture(engine, limits, Some(dir))
}

/// Factory: a [`KvStore`] over a [`RedisEngine`] with a namespace of its own, on the test
/// process's Redis (see [`test_redis`]).
async fn redis_store(limits: Limits) -> Fixture {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!("t{}-{n}", std::process::id());
    let engine = RedisEngine::with_password(test_redis(), &prefix, None).expect("Redis URL");
    fixture(engine, limits, None)
}

/// Factory: a [`KvStore`] over a [`RedisEngine`] on the test process's Redis Cluster (see
/// [`test_redis_cluster`]), with a namespace of its own: its state spread over the cluster's
/// shards.
async fn redis_cluster_store(limits: Limits) -> Fixture {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!("c{}-{n}", std::process::id());
    let engine =
        RedisEngine::with_password(test_redis_cluster(), &prefix, None).expect("Redis URL");
    assert!(engine.is_cluster());
    Fixture {
        exact_limits: false,
        ..fixture(engine, limits, None)
    }
}

/// The `redis+cluster://` URL of a Redis Cluster of three masters (no replicas) started once
/// for this test process on free loopback ports, without persistence, in a temporary folder;
/// stopped with the process as [`test_redis`]'s Redis is.
pub(crate) fn test_redis_cluster() -> &'static str {
    use std::process::{Command, Stdio};
    static CLUSTER: std::sync::OnceLock<(String, std::process::ChildStdin)> =
        std::sync::OnceLock::new();
    &CLUSTER
        .get_or_init(|| {
            let dir = tempfile::tempdir()
                .expect("a folder for the cluster")
                .keep();
            // Free ports whose cluster bus ports (10000 higher) are free too.
            let ports: Vec<u16> = (0..3)
                .map(|_| {
                    loop {
                        let port = std::net::TcpListener::bind("127.0.0.1:0")
                            .and_then(|l| l.local_addr())
                            .expect("a free port")
                            .port();
                        if port < 55_000
                            && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
                        {
                            break port;
                        }
                    }
                })
                .collect();
            let mut args = vec![
                "-c".to_owned(),
                "d=$1; shift; for p in \"$@\"; do redis-server --port $p --bind 127.0.0.1 \
                 --cluster-enabled yes --cluster-config-file nodes-$p.conf --dir \"$d\" \
                 --cluster-require-full-coverage no --save '' --appendonly no \
                 --daemonize no & pids=\"$pids $!\"; done; read _; kill $pids; wait"
                    .to_owned(),
                "sh".to_owned(),
                dir.display().to_string(),
            ];
            args.extend(ports.iter().map(u16::to_string));
            #[allow(clippy::zombie_processes)]
            let mut child = Command::new("sh")
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("sh");
            let stdin = child.stdin.take().expect("watchdog stdin");
            let cli = |port: u16, args: &[&str]| {
                Command::new("redis-cli")
                    .args(["-p", &port.to_string()])
                    .args(args)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let wait = |what: &str, ok: &dyn Fn() -> bool| {
                while !ok() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the test Redis Cluster: {what}"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            };
            wait("a node did not answer", &|| {
                ports.iter().all(|p| cli(*p, &["ping"]).trim() == "PONG")
            });
            let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            let created = Command::new("redis-cli")
                .arg("--cluster")
                .arg("create")
                .args(&nodes)
                .arg("--cluster-yes")
                .output()
                .expect("redis-cli --cluster create");
            assert!(
                created.status.success(),
                "redis-cli --cluster create: {}",
                String::from_utf8_lossy(&created.stdout)
            );
            wait("the cluster did not become ok", &|| {
                ports
                    .iter()
                    .all(|p| cli(*p, &["cluster", "info"]).contains("cluster_state:ok"))
            });
            (format!("redis+cluster://{}", nodes.join(",")), stdin)
        })
        .0
}

/// The URL of a `redis-server` started once for this test process, on a free loopback port,
/// without persistence. It runs under a `sh` watchdog that holds our end of a pipe as its
/// standard input: when this process exits (however it ends), the pipe closes and the
/// watchdog stops Redis. A missing `redis-server` fails the tests: `scripts/test.sh` installs
/// it, and CI (`STATUSLAB_REQUIRE_REDIS=1`) must never skip them.
fn test_redis() -> &'static str {
    use std::process::{Command, Stdio};
    // The watchdog is never waited for: it ends with this process, taking Redis with it.
    static REDIS: std::sync::OnceLock<(String, std::process::ChildStdin)> =
        std::sync::OnceLock::new();
    &REDIS
        .get_or_init(|| {
            if let Err(e) = Command::new("redis-server").arg("--version").output() {
                panic!(
                    "redis-server is needed by the Redis store tests and could not be run ({e}): \
                     run scripts/test-deps.sh (apt-get install redis-server) or scripts/test.sh"
                );
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            #[allow(clippy::zombie_processes)]
            let mut child = Command::new("sh")
                .args([
                    "-c",
                    "redis-server \"$@\" & p=$!; read _; kill $p; wait $p",
                    "sh",
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("sh");
            let stdin = child.stdin.take().expect("watchdog stdin");
            let url = format!("redis://127.0.0.1:{port}");
            let probe = RedisEngine::with_password(&url, "probe", None).expect("Redis URL");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while let Err(e) = probe.ping() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("redis-server on port {port} exited at once ({status})");
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "redis-server on port {port} did not answer: {e}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            (url, stdin)
        })
        .0
}

// ---- helpers shared by every instantiation ----

const TEXT: &str = "text/plain";

fn new(body: &str) -> NewResource {
    NewResource {
        content_type: TEXT.to_owned(),
        body: Bytes::from(body.to_owned()),
    }
}

fn sized(n: usize) -> NewResource {
    NewResource {
        content_type: "application/octet-stream".to_owned(),
        body: Bytes::from(vec![b'x'; n]),
    }
}

fn none() -> Conditions {
    Conditions::default()
}

/// Conditions parsed from request headers, as the server builds them.
fn conds(pairs: &[(&'static str, &str)]) -> Conditions {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(*name, HeaderValue::from_str(value).expect("header value"));
    }
    Conditions::from_headers(&h).expect("well-formed conditions")
}

fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

async fn upsert(s: &dyn Store, name: &str, body: NewResource) -> WriteOutcome {
    s.write_resource(name, body, WriteMode::Upsert, none())
        .await
        .expect("write")
}

#[track_caller]
fn created(o: WriteOutcome) -> ResourceMeta {
    match o {
        WriteOutcome::Created(m) => m,
        other => panic!("expected Created, got {other:?}"),
    }
}

#[track_caller]
fn replaced(o: WriteOutcome) -> ResourceMeta {
    match o {
        WriteOutcome::Replaced(m) => m,
        other => panic!("expected Replaced, got {other:?}"),
    }
}

async fn found(s: &dyn Store, name: &str) -> Resource {
    match s.resource(name).await.expect("read") {
        Lookup::Found(r) => r,
        other => panic!("expected {name:?} to be found, got {other:?}"),
    }
}

/// A job submitted now, by the store's clock.
fn job(s: &dyn Store, id: &str, duration_ms: u64) -> Job {
    job_at(s.now_ms(), id, duration_ms)
}

fn job_at(submitted_ms: u64, id: &str, duration_ms: u64) -> Job {
    Job {
        id: id.to_owned(),
        submitted_ms,
        duration_ms,
        result: JobResult {
            status: 201,
            body: serde_json::json!({ "id": id, "ok": true }),
        },
        cancelled: false,
    }
}

fn attempt(method: &str, n: usize) -> Attempt {
    Attempt {
        at_ms: 0,
        method: method.to_owned(),
        headers: vec![
            ("user-agent".to_owned(), "conformance".to_owned()),
            ("x-n".to_owned(), n.to_string()),
        ],
        step: usize::MAX,
        code: 0,
        retry_after: Some(7),
        fingerprint: Some(format!("{method}{n}")),
    }
}

async fn step(s: &dyn Store, key: &str, codes: &[u16], n: usize) -> SequenceStep {
    s.sequence_step(key, codes.to_vec(), attempt("GET", n))
        .await
        .expect("sequence step")
}

fn answer(step: usize, code: u16) -> SequenceStep {
    SequenceStep::Answer { step, code }
}

const SECOND: Duration = Duration::from_secs(1);

const MS: Duration = Duration::from_millis(1);

/// The lifetimes of the expiry tests: the manual clock makes any length as quick to wait out,
/// so they are realistic rather than short.
const TTL: Duration = Duration::from_secs(600);

fn short_ttls() -> Limits {
    Limits {
        tombstone_ttl: TTL,
        job_ttl: TTL,
        sequence_ttl: TTL,
        ..Limits::default()
    }
}

/// The store's time as a `SystemTime`.
fn store_time(s: &dyn Store) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(s.now_ms())
}

macro_rules! conformance_tests {
    ($module:ident, $factory:expr) => {
        mod $module {
            use super::*;

            /// A fresh, empty store with `limits`.
            async fn store(limits: Limits) -> Fixture {
                ($factory)(limits).await
            }

            // ---- resources: modes ----

            #[tokio::test]
            async fn upsert_of_a_new_name_creates_version_1() {
                let s = store(Limits::default()).await;
                let meta = created(upsert(&*s, "a", new("hello")).await);
                assert_eq!(meta.name, "a");
                assert_eq!(meta.content_type, TEXT);
                assert_eq!(meta.size, 5);
                assert_eq!(meta.version, 1);
                assert_eq!(
                    meta.modified,
                    START_MS / 1000,
                    "modified is the store clock's time, in whole seconds"
                );
                assert!(
                    meta.etag.len() > 2 && meta.etag.starts_with('"') && meta.etag.ends_with('"'),
                    "etag {:?}",
                    meta.etag
                );
                let tag = EntityTag::parse(&meta.etag).expect("etag parses");
                assert!(!tag.weak, "etag must be strong");
                let r = found(&*s, "a").await;
                assert_eq!(r.meta, meta);
                assert_eq!(&r.body[..], b"hello");
            }

            #[tokio::test]
            async fn upsert_of_an_existing_name_replaces_with_a_new_etag() {
                let s = store(Limits::default()).await;
                let v1 = created(upsert(&*s, "a", new("same")).await);
                let v2 = replaced(upsert(&*s, "a", new("same")).await);
                assert_eq!(v2.version, 2);
                assert_ne!(
                    v2.etag, v1.etag,
                    "identical content must still get a new etag"
                );
                let v3 = replaced(
                    s.write_resource(
                        "a",
                        NewResource {
                            content_type: "application/json".to_owned(),
                            body: Bytes::from_static(b"{}"),
                        },
                        WriteMode::Upsert,
                        none(),
                    )
                    .await
                    .unwrap(),
                );
                assert_eq!(
                    (v3.version, v3.size, v3.content_type.as_str()),
                    (3, 2, "application/json")
                );
                assert!(v3.etag != v1.etag && v3.etag != v2.etag);
                let r = found(&*s, "a").await;
                assert_eq!(r.meta, v3);
                assert_eq!(&r.body[..], b"{}");
            }

            #[tokio::test]
            async fn create_only_creates_once_then_exists() {
                let s = store(Limits::default()).await;
                let meta = created(
                    s.write_resource("a", new("first"), WriteMode::CreateOnly, none())
                        .await
                        .unwrap(),
                );
                assert_eq!(
                    s.write_resource("a", new("second"), WriteMode::CreateOnly, none())
                        .await
                        .unwrap(),
                    WriteOutcome::Exists
                );
                let r = found(&*s, "a").await;
                assert_eq!(r.meta, meta, "a refused create changes nothing");
                assert_eq!(&r.body[..], b"first");
            }

            #[tokio::test]
            async fn replace_only_needs_an_existing_resource() {
                let s = store(Limits::default()).await;
                assert_eq!(
                    s.write_resource("a", new("x"), WriteMode::ReplaceOnly, none())
                        .await
                        .unwrap(),
                    WriteOutcome::NotFound(Lookup::Missing)
                );
                assert_eq!(
                    s.resource("a").await.unwrap(),
                    Lookup::Missing,
                    "a refused replace creates nothing"
                );
                created(upsert(&*s, "a", new("x")).await);
                let m = replaced(
                    s.write_resource("a", new("y"), WriteMode::ReplaceOnly, none())
                        .await
                        .unwrap(),
                );
                assert_eq!(m.version, 2);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                assert_eq!(
                    s.write_resource("a", new("z"), WriteMode::ReplaceOnly, none())
                        .await
                        .unwrap(),
                    WriteOutcome::NotFound(Lookup::Gone)
                );
                assert_eq!(s.resource("a").await.unwrap(), Lookup::Gone);
            }

            // ---- resources: conditions ----

            #[tokio::test]
            async fn if_none_match_star_fails_on_existing_and_creates_new() {
                let s = store(Limits::default()).await;
                let star = conds(&[("if-none-match", "*")]);
                let meta = created(
                    s.write_resource("a", new("1"), WriteMode::Upsert, star.clone())
                        .await
                        .unwrap(),
                );
                assert_eq!(
                    s.write_resource("a", new("2"), WriteMode::Upsert, star)
                        .await
                        .unwrap(),
                    WriteOutcome::PreconditionFailed
                );
                let r = found(&*s, "a").await;
                assert_eq!(
                    (r.meta, &r.body[..]),
                    (meta, &b"1"[..]),
                    "a failed precondition changes nothing"
                );
            }

            #[tokio::test]
            async fn if_match_current_etag_proceeds() {
                let s = store(Limits::default()).await;
                let v1 = created(upsert(&*s, "a", new("1")).await);
                let v2 = replaced(
                    s.write_resource(
                        "a",
                        new("2"),
                        WriteMode::Upsert,
                        conds(&[("if-match", &v1.etag)]),
                    )
                    .await
                    .unwrap(),
                );
                assert_eq!(v2.version, 2);
                // One of several listed tags is enough.
                let list = format!("\"nope\", {}", v2.etag);
                let v3 = replaced(
                    s.write_resource(
                        "a",
                        new("3"),
                        WriteMode::ReplaceOnly,
                        conds(&[("if-match", &list)]),
                    )
                    .await
                    .unwrap(),
                );
                assert_eq!(v3.version, 3);
                replaced(
                    s.write_resource(
                        "a",
                        new("4"),
                        WriteMode::Upsert,
                        conds(&[("if-match", "*")]),
                    )
                    .await
                    .unwrap(),
                );
            }

            #[tokio::test]
            async fn if_match_stale_etag_fails() {
                let s = store(Limits::default()).await;
                let v1 = created(upsert(&*s, "a", new("1")).await);
                let v2 = replaced(upsert(&*s, "a", new("2")).await);
                assert_eq!(
                    s.write_resource(
                        "a",
                        new("3"),
                        WriteMode::Upsert,
                        conds(&[("if-match", &v1.etag)])
                    )
                    .await
                    .unwrap(),
                    WriteOutcome::PreconditionFailed
                );
                // A weak tag never matches for If-Match (strong comparison).
                let weak = format!("W/{}", v2.etag);
                assert_eq!(
                    s.write_resource(
                        "a",
                        new("3"),
                        WriteMode::Upsert,
                        conds(&[("if-match", &weak)])
                    )
                    .await
                    .unwrap(),
                    WriteOutcome::PreconditionFailed
                );
                assert_eq!(found(&*s, "a").await.meta, v2);
            }

            #[tokio::test]
            async fn if_match_on_a_missing_name_fails_and_creates_nothing() {
                let s = store(Limits::default()).await;
                for tag in ["*", "\"1-0000000000000000\""] {
                    assert_eq!(
                        s.write_resource(
                            "a",
                            new("1"),
                            WriteMode::Upsert,
                            conds(&[("if-match", tag)])
                        )
                        .await
                        .unwrap(),
                        WriteOutcome::PreconditionFailed,
                        "If-Match: {tag}"
                    );
                }
                assert_eq!(s.resource("a").await.unwrap(), Lookup::Missing);
                assert!(s.list_resources(10).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn if_unmodified_since_in_the_past_fails() {
                let s = store(Limits::default()).await;
                let v1 = created(upsert(&*s, "a", new("1")).await);
                let past = http_date(store_time(&*s) - Duration::from_secs(3600));
                assert_eq!(
                    s.write_resource(
                        "a",
                        new("2"),
                        WriteMode::Upsert,
                        conds(&[("if-unmodified-since", &past)])
                    )
                    .await
                    .unwrap(),
                    WriteOutcome::PreconditionFailed
                );
                assert_eq!(
                    s.delete_resource("a", conds(&[("if-unmodified-since", &past)]))
                        .await
                        .unwrap(),
                    DeleteOutcome::PreconditionFailed
                );
                assert_eq!(found(&*s, "a").await.meta, v1);
                let future = http_date(store_time(&*s) + Duration::from_secs(3600));
                replaced(
                    s.write_resource(
                        "a",
                        new("2"),
                        WriteMode::Upsert,
                        conds(&[("if-unmodified-since", &future)]),
                    )
                    .await
                    .unwrap(),
                );
            }

            // ---- resources: delete and tombstones ----

            #[tokio::test]
            async fn delete_leaves_a_tombstone() {
                let s = store(Limits::default()).await;
                assert_eq!(
                    s.delete_resource("never", none()).await.unwrap(),
                    DeleteOutcome::NotFound(Lookup::Missing)
                );
                assert_eq!(s.resource("never").await.unwrap(), Lookup::Missing);
                created(upsert(&*s, "a", new("1")).await);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                assert_eq!(s.resource("a").await.unwrap(), Lookup::Gone);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::NotFound(Lookup::Gone)
                );
                assert!(
                    s.list_resources(10).await.unwrap().is_empty(),
                    "deleted resources are not listed"
                );
            }

            #[tokio::test]
            async fn delete_honours_conditions() {
                let s = store(Limits::default()).await;
                let v1 = created(upsert(&*s, "a", new("1")).await);
                let v2 = replaced(upsert(&*s, "a", new("2")).await);
                assert_eq!(
                    s.delete_resource("a", conds(&[("if-match", &v1.etag)]))
                        .await
                        .unwrap(),
                    DeleteOutcome::PreconditionFailed
                );
                assert_eq!(found(&*s, "a").await.meta, v2);
                assert_eq!(
                    s.delete_resource("a", conds(&[("if-match", &v2.etag)]))
                        .await
                        .unwrap(),
                    DeleteOutcome::Deleted
                );
                assert_eq!(s.resource("a").await.unwrap(), Lookup::Gone);
            }

            #[tokio::test]
            async fn tombstone_expires_after_its_ttl() {
                let s = store(short_ttls()).await;
                created(upsert(&*s, "a", new("1")).await);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                assert_eq!(s.resource("a").await.unwrap(), Lookup::Gone);
                s.advance(TTL - MS);
                assert_eq!(
                    s.resource("a").await.unwrap(),
                    Lookup::Gone,
                    "a tombstone lives for exactly its TTL"
                );
                s.advance(MS);
                assert_eq!(s.resource("a").await.unwrap(), Lookup::Missing);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::NotFound(Lookup::Missing)
                );
                assert_eq!(
                    s.write_resource("a", new("2"), WriteMode::ReplaceOnly, none())
                        .await
                        .unwrap(),
                    WriteOutcome::NotFound(Lookup::Missing)
                );
            }

            #[tokio::test]
            async fn recreating_a_deleted_name_clears_its_tombstone() {
                let s = store(short_ttls()).await;
                created(upsert(&*s, "a", new("1")).await);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                let again = created(
                    s.write_resource("a", new("2"), WriteMode::CreateOnly, none())
                        .await
                        .unwrap(),
                );
                assert_eq!(again.version, 1, "a new resource starts over");
                assert_eq!(&found(&*s, "a").await.body[..], b"2");
                // No tombstone is left behind for a sweep to find.
                s.advance(TTL);
                assert_eq!(s.sweep().await.unwrap(), 0);
                assert_eq!(found(&*s, "a").await.meta, again);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                assert_eq!(s.resource("a").await.unwrap(), Lookup::Gone);
            }

            // ---- limits ----

            #[tokio::test]
            async fn writes_past_max_store_bytes_are_refused() {
                let s = store(Limits {
                    max_store_bytes: 100,
                    ..Limits::default()
                })
                .await;
                created(upsert(&*s, "a", sized(60)).await);
                assert_eq!(
                    upsert(&*s, "b", sized(41)).await,
                    WriteOutcome::QuotaFull {
                        used: 60,
                        limit: 100
                    }
                );
                assert_eq!(
                    s.resource("b").await.unwrap(),
                    Lookup::Missing,
                    "a refused write stores nothing"
                );
                created(upsert(&*s, "b", sized(40)).await);
                assert_eq!(
                    upsert(&*s, "c", sized(1)).await,
                    WriteOutcome::QuotaFull {
                        used: 100,
                        limit: 100
                    }
                );
                // Growing an existing resource past the limit is refused too, and changes nothing.
                let a = found(&*s, "a").await.meta;
                assert_eq!(
                    upsert(&*s, "a", sized(61)).await,
                    WriteOutcome::QuotaFull {
                        used: 100,
                        limit: 100
                    }
                );
                assert_eq!(found(&*s, "a").await.meta, a);
                // A single body larger than the whole store never fits.
                assert!(matches!(
                    upsert(&*s, "big", sized(101)).await,
                    WriteOutcome::QuotaFull { .. }
                ));
            }

            #[tokio::test]
            async fn replacing_with_a_smaller_body_is_allowed_when_full() {
                let s = store(Limits {
                    max_store_bytes: 100,
                    ..Limits::default()
                })
                .await;
                created(upsert(&*s, "a", sized(50)).await);
                created(upsert(&*s, "b", sized(50)).await);
                assert!(matches!(
                    upsert(&*s, "c", sized(1)).await,
                    WriteOutcome::QuotaFull {
                        used: 100,
                        limit: 100
                    }
                ));
                assert_eq!(
                    replaced(upsert(&*s, "a", sized(50)).await).size,
                    50,
                    "same size fits"
                );
                assert_eq!(replaced(upsert(&*s, "a", sized(20)).await).size, 20);
                // The 30 bytes freed are usable.
                created(upsert(&*s, "c", sized(30)).await);
                assert_eq!(
                    upsert(&*s, "d", sized(1)).await,
                    WriteOutcome::QuotaFull {
                        used: 100,
                        limit: 100
                    }
                );
            }

            #[tokio::test]
            async fn delete_frees_bytes() {
                let s = store(Limits {
                    max_store_bytes: 100,
                    ..Limits::default()
                })
                .await;
                created(upsert(&*s, "a", sized(70)).await);
                assert_eq!(
                    upsert(&*s, "b", sized(70)).await,
                    WriteOutcome::QuotaFull {
                        used: 70,
                        limit: 100
                    }
                );
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                created(upsert(&*s, "b", sized(70)).await);
                created(upsert(&*s, "c", sized(30)).await);
                assert_eq!(
                    upsert(&*s, "d", sized(1)).await,
                    WriteOutcome::QuotaFull {
                        used: 100,
                        limit: 100
                    }
                );
            }

            #[tokio::test]
            async fn max_keys_limits_resources() {
                let s = store(Limits {
                    max_keys: 3,
                    ..Limits::default()
                })
                .await;
                for name in ["a", "b", "c"] {
                    created(upsert(&*s, name, new(name)).await);
                }
                assert_eq!(upsert(&*s, "d", new("d")).await, WriteOutcome::TooManyKeys);
                assert_eq!(
                    s.write_resource("d", new("d"), WriteMode::CreateOnly, none())
                        .await
                        .unwrap(),
                    WriteOutcome::TooManyKeys
                );
                assert_eq!(s.resource("d").await.unwrap(), Lookup::Missing);
                // Replacing an existing key is no new key.
                replaced(upsert(&*s, "a", new("a2")).await);
                // Deleting leaves a tombstone, which holds the key until it expires and is
                // swept (see tombstones_count_toward_max_keys_until_they_expire).
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                assert_eq!(upsert(&*s, "d", new("d")).await, WriteOutcome::TooManyKeys);
                s.advance(Limits::default().tombstone_ttl);
                assert_eq!(s.sweep().await.unwrap(), 1);
                created(upsert(&*s, "d", new("d")).await);
                assert_eq!(upsert(&*s, "e", new("e")).await, WriteOutcome::TooManyKeys);
                assert_eq!(
                    upsert(&*s, "a", new("a")).await,
                    WriteOutcome::TooManyKeys,
                    "a name whose tombstone was swept is a new key"
                );
            }

            #[tokio::test]
            async fn max_keys_limits_jobs() {
                let s = store(Limits {
                    max_keys: 3,
                    ..Limits::default()
                })
                .await;
                for id in ["j1", "j2", "j3"] {
                    assert_eq!(
                        s.submit_job(job(&*s, id, 60_000)).await.unwrap(),
                        JobOutcome::Accepted
                    );
                }
                assert_eq!(
                    s.submit_job(job(&*s, "j4", 60_000)).await.unwrap(),
                    JobOutcome::TooManyKeys
                );
                assert_eq!(s.job("j4").await.unwrap(), None);
                assert!(s.job("j1").await.unwrap().is_some());
            }

            #[tokio::test]
            async fn max_keys_limits_sequences() {
                let s = store(Limits {
                    max_keys: 3,
                    ..Limits::default()
                })
                .await;
                for key in ["s1", "s2", "s3"] {
                    assert_eq!(step(&*s, key, &[503, 200], 0).await, answer(0, 503));
                }
                assert_eq!(
                    step(&*s, "s4", &[503, 200], 0).await,
                    SequenceStep::TooManyKeys
                );
                assert_eq!(s.sequence("s4").await.unwrap(), None);
                // Existing sequences go on; another list for one of them is a conflict, not
                // a 507.
                assert_eq!(step(&*s, "s1", &[503, 200], 1).await, answer(1, 200));
                assert_eq!(
                    step(&*s, "s2", &[429, 200], 1).await,
                    SequenceStep::Conflict { codes: vec![503, 200] }
                );
                // A reset frees a key.
                assert!(s.reset_sequence("s3").await.unwrap());
                assert_eq!(step(&*s, "s4", &[503, 200], 0).await, answer(0, 503));
                assert_eq!(
                    step(&*s, "s5", &[503, 200], 0).await,
                    SequenceStep::TooManyKeys
                );
            }

            #[tokio::test]
            async fn max_keys_limits_rate_keys() {
                let s = store(Limits {
                    max_keys: 2,
                    ..Limits::default()
                })
                .await;
                assert!(s.rate_limit("k1", 5, SECOND).await.unwrap().allowed);
                assert!(s.rate_limit("k2", 5, SECOND).await.unwrap().allowed);
                // A new key past the quota is an error of its own (507), not a made-up 429.
                for _ in 0..2 {
                    match s.rate_limit("k3", 5, SECOND).await {
                        Err(StoreError::Full { family, limit }) => {
                            assert_eq!((family, limit), ("rate-limit keys", 2));
                        }
                        other => panic!("expected Full, got {other:?}"),
                    }
                }
                // Known keys are still counted.
                assert_eq!(s.rate_limit("k1", 5, SECOND).await.unwrap().remaining, 3);
            }

            // ---- listing ----

            #[tokio::test]
            async fn list_resources_is_ascending_and_limited() {
                let s = store(Limits::default()).await;
                let mut metas = BTreeMap::new();
                for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
                    metas.insert(name, created(upsert(&*s, name, new(name)).await));
                }
                assert_eq!(
                    s.delete_resource("echo", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                metas.remove("echo");
                let all = s.list_resources(100).await.unwrap();
                assert_eq!(all, metas.values().cloned().collect::<Vec<_>>());
                let names: Vec<_> = s
                    .list_resources(2)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| m.name)
                    .collect();
                assert_eq!(names, ["alpha", "bravo"]);
                assert!(s.list_resources(0).await.unwrap().is_empty());
            }

            // ---- jobs ----

            #[tokio::test]
            async fn job_runs_then_is_done() {
                let s = store(Limits::default()).await;
                let j = job(&*s, "j1", 300);
                assert_eq!(s.submit_job(j.clone()).await.unwrap(), JobOutcome::Accepted);
                let read = s.job("j1").await.unwrap().expect("job stored");
                assert_eq!(read, j);
                assert_eq!(read.state(s.now_ms()), JobState::Running);
                s.advance(Duration::from_millis(299));
                let read = s.job("j1").await.unwrap().expect("job still stored");
                assert_eq!(
                    read.state(s.now_ms()),
                    JobState::Running,
                    "a 300 ms job still runs at 299 ms"
                );
                s.advance(MS);
                let read = s.job("j1").await.unwrap().expect("job still stored");
                assert_eq!(read.state(s.now_ms()), JobState::Done);
                assert!(s.cancel_job("j1").await.unwrap());
                assert!(
                    !s.job("j1").await.unwrap().unwrap().cancelled,
                    "a job done by the store's clock is no more cancelled"
                );
                assert_eq!(read.result, j.result);
                assert_eq!(s.job("other").await.unwrap(), None);
            }

            #[tokio::test]
            async fn cancel_job() {
                let s = store(Limits::default()).await;
                assert_eq!(
                    s.submit_job(job(&*s, "j1", 60_000)).await.unwrap(),
                    JobOutcome::Accepted
                );
                assert!(s.cancel_job("j1").await.unwrap());
                let read = s.job("j1").await.unwrap().expect("cancelled jobs are kept");
                assert!(read.cancelled);
                assert_eq!(read.state(s.now_ms()), JobState::Cancelled);
                assert!(!s.cancel_job("unknown").await.unwrap());
                assert_eq!(
                    s.job("unknown").await.unwrap(),
                    None,
                    "cancelling an unknown job creates nothing"
                );
            }

            #[tokio::test]
            async fn job_expires_after_job_ttl() {
                let s = store(short_ttls()).await;
                assert_eq!(
                    s.submit_job(job(&*s, "j1", 0)).await.unwrap(),
                    JobOutcome::Accepted
                );
                assert!(s.job("j1").await.unwrap().is_some());
                s.advance(TTL - MS);
                assert!(s.job("j1").await.unwrap().is_some(), "kept for its TTL");
                s.advance(MS);
                assert_eq!(s.job("j1").await.unwrap(), None);
                assert!(!s.cancel_job("j1").await.unwrap());
            }

            // ---- sequences ----

            #[tokio::test]
            async fn sequence_answers_in_order_and_repeats_the_last() {
                let s = store(Limits::default()).await;
                let codes = [503, 503, 200];
                let steps = [
                    answer(0, 503),
                    answer(1, 503),
                    answer(2, 200),
                    answer(2, 200),
                    answer(2, 200),
                ];
                // One request a second: each attempt records the store's time.
                for (n, want) in steps.iter().enumerate() {
                    if n > 0 {
                        s.advance(SECOND);
                    }
                    assert_eq!(step(&*s, "k", &codes, n).await, *want, "request {n}");
                }
                let seq = s.sequence("k").await.unwrap().expect("sequence stored");
                assert_eq!(seq.codes, codes);
                assert_eq!(seq.served, 5);
                assert_eq!(seq.touched_ms, START_MS + 4000);
                assert_eq!(seq.attempts.len(), 5);
                for (n, a) in seq.attempts.iter().enumerate() {
                    let SequenceStep::Answer { step, code } = steps[n] else {
                        unreachable!()
                    };
                    assert_eq!((a.step, a.code), (step, code), "attempt {n}");
                    assert_eq!(a.method, "GET");
                    assert_eq!(a.headers, attempt("GET", n).headers);
                    assert_eq!(a.retry_after, Some(7));
                    assert_eq!(a.at_ms, START_MS + 1000 * n as u64, "attempt {n}");
                }
                assert_eq!(s.sequence("other").await.unwrap(), None);
            }

            #[tokio::test]
            async fn sequence_records_the_method() {
                let s = store(Limits::default()).await;
                s.sequence_step("k", vec![500, 200], attempt("POST", 0))
                    .await
                    .unwrap();
                s.sequence_step("k", vec![500, 200], attempt("PUT", 1))
                    .await
                    .unwrap();
                let methods: Vec<_> = s
                    .sequence("k")
                    .await
                    .unwrap()
                    .unwrap()
                    .attempts
                    .into_iter()
                    .map(|a| a.method)
                    .collect();
                assert_eq!(methods, ["POST", "PUT"]);
            }

            #[tokio::test]
            async fn sequence_attempts_are_capped_dropping_the_oldest() {
                let s = store(Limits {
                    max_attempts: 3,
                    ..Limits::default()
                })
                .await;
                let codes = [500, 501, 502, 503, 504, 200];
                for n in 0..5 {
                    assert_eq!(step(&*s, "k", &codes, n).await, answer(n, codes[n]));
                }
                let seq = s.sequence("k").await.unwrap().unwrap();
                assert_eq!(seq.served, 5);
                let kept: Vec<_> = seq
                    .attempts
                    .iter()
                    .map(|a| (a.step, a.code, a.headers[1].1.clone()))
                    .collect();
                assert_eq!(
                    kept,
                    [
                        (2, 502, "2".to_owned()),
                        (3, 503, "3".to_owned()),
                        (4, 504, "4".to_owned())
                    ]
                );
            }

            #[tokio::test]
            async fn sequence_with_other_codes_is_a_conflict_until_reset() {
                let s = store(Limits::default()).await;
                assert_eq!(step(&*s, "k", &[503, 503, 200], 0).await, answer(0, 503));
                assert_eq!(step(&*s, "k", &[503, 503, 200], 1).await, answer(1, 503));
                let conflict = SequenceStep::Conflict { codes: vec![503, 503, 200] };
                assert_eq!(step(&*s, "k", &[429, 200], 2).await, conflict);
                // Nothing changed: the sequence goes on where it was.
                let seq = s.sequence("k").await.unwrap().unwrap();
                assert_eq!((seq.codes, seq.served, seq.attempts.len()), (vec![503, 503, 200], 2, 2));
                assert_eq!(step(&*s, "k", &[503, 503, 200], 3).await, answer(2, 200));
                // Reset, the other list starts, without the old list's attempts.
                assert!(s.reset_sequence("k").await.unwrap());
                assert_eq!(step(&*s, "k", &[429, 200], 4).await, answer(0, 429));
                assert_eq!(step(&*s, "k", &[429, 200], 5).await, answer(1, 200));
                let seq = s.sequence("k").await.unwrap().unwrap();
                assert_eq!(seq.codes, [429, 200]);
                assert_eq!(seq.served, 2);
                assert_eq!(
                    seq.attempts.iter().map(|a| a.step).collect::<Vec<_>>(),
                    [0, 1],
                    "the old list's attempts are gone"
                );
                // An expired sequence is no conflict: another list starts over.
                s.advance(Limits::default().sequence_ttl);
                assert_eq!(step(&*s, "k", &[418], 6).await, answer(0, 418));
                s.census();
            }

            #[tokio::test]
            async fn sequence_keys_are_independent() {
                let s = store(Limits::default()).await;
                assert_eq!(step(&*s, "a", &[503, 200], 0).await, answer(0, 503));
                assert_eq!(step(&*s, "b", &[503, 200], 0).await, answer(0, 503));
                assert_eq!(step(&*s, "a", &[503, 200], 1).await, answer(1, 200));
                assert_eq!(s.sequence("b").await.unwrap().unwrap().served, 1);
            }

            #[tokio::test]
            async fn reset_sequence_forgets_it() {
                let s = store(Limits::default()).await;
                step(&*s, "k", &[503, 200], 0).await;
                assert!(s.reset_sequence("k").await.unwrap());
                assert_eq!(s.sequence("k").await.unwrap(), None);
                assert!(!s.reset_sequence("k").await.unwrap());
                assert!(!s.reset_sequence("unknown").await.unwrap());
                assert_eq!(
                    step(&*s, "k", &[503, 200], 1).await,
                    answer(0, 503),
                    "a reset sequence starts over"
                );
            }

            #[tokio::test]
            async fn sequence_expires_after_sequence_ttl() {
                let s = store(short_ttls()).await;
                step(&*s, "k", &[503, 200], 0).await;
                assert!(s.sequence("k").await.unwrap().is_some());
                s.advance(TTL - MS);
                assert!(
                    s.sequence("k").await.unwrap().is_some(),
                    "kept for its TTL"
                );
                s.advance(MS);
                assert_eq!(s.sequence("k").await.unwrap(), None);
                assert_eq!(
                    step(&*s, "k", &[503, 200], 1).await,
                    answer(0, 503),
                    "an expired sequence starts over"
                );
                assert_eq!(s.sequence("k").await.unwrap().unwrap().attempts.len(), 1);
            }

            #[tokio::test]
            async fn reset_of_an_expired_sequence_finds_none_and_frees_its_key() {
                let s = store(Limits {
                    max_keys: 1,
                    ..short_ttls()
                })
                .await;
                step(&*s, "k", &[503, 200], 0).await;
                s.advance(TTL);
                assert_eq!(s.sequence("k").await.unwrap(), None);
                assert!(
                    !s.reset_sequence("k").await.unwrap(),
                    "an expired sequence is no more there to reset than to read"
                );
                assert_eq!(
                    step(&*s, "other", &[503, 200], 0).await,
                    answer(0, 503),
                    "the key was freed"
                );
            }

            // ---- rate limiting ----

            #[tokio::test]
            async fn rate_limit_admits_exactly_the_limit() {
                let s = store(Limits::default()).await;
                for want in [2, 1, 0] {
                    let d = s.rate_limit("k", 3, SECOND).await.unwrap();
                    assert!(d.allowed, "{d:?}");
                    assert_eq!(d.remaining, want, "{d:?}");
                    assert_eq!(d.retry_after_secs, 0);
                    assert!((1..=1).contains(&d.reset_secs), "{d:?}");
                }
                for _ in 0..3 {
                    let d = s.rate_limit("k", 3, SECOND).await.unwrap();
                    assert!(!d.allowed, "{d:?}");
                    assert_eq!(d.remaining, 0);
                    assert!(d.retry_after_secs >= 1, "{d:?}");
                }
            }

            #[tokio::test]
            async fn gcra_admits_one_more_after_an_interval() {
                let s = store(Limits::default()).await;
                let gcra = || s.rate_limit_with("k", 3, SECOND, RateAlgorithm::Gcra);
                for _ in 0..3 {
                    assert!(gcra().await.unwrap().allowed);
                }
                assert!(!gcra().await.unwrap().allowed);
                // One emission interval is 333.333 ms.
                s.advance(Duration::from_millis(333));
                let d = gcra().await.unwrap();
                assert!(!d.allowed, "not before a whole interval: {d:?}");
                s.advance(MS);
                let d = gcra().await.unwrap();
                assert!(d.allowed, "{d:?}");
                assert_eq!(d.remaining, 0);
                assert!(!gcra().await.unwrap().allowed, "only one more");
            }

            /// The default is exact to the URL: 3 per 10 s admits 3 at once, refuses the
            /// 4th with `Retry-After: 10` (when the oldest leaves the window) and admits
            /// again at 10 s exactly, not one millisecond before.
            #[tokio::test]
            async fn sliding_window_is_exact() {
                let s = store(Limits::default()).await;
                let ten = Duration::from_secs(10);
                for want in [2, 1, 0] {
                    let d = s.rate_limit("k", 3, ten).await.unwrap();
                    assert_eq!((d.allowed, d.remaining, d.reset_secs), (true, want, 10));
                }
                let d = s.rate_limit("k", 3, ten).await.unwrap();
                assert_eq!((d.allowed, d.remaining, d.retry_after_secs), (false, 0, 10));
                s.advance(Duration::from_millis(9_999));
                let d = s.rate_limit("k", 3, ten).await.unwrap();
                assert_eq!((d.allowed, d.retry_after_secs), (false, 1), "{d:?}");
                s.advance(MS);
                let d = s.rate_limit("k", 3, ten).await.unwrap();
                assert_eq!((d.allowed, d.remaining, d.reset_secs), (true, 2, 10), "{d:?}");
                // Admitted at 0, 0, 0, 10 s: the 10 s window from 5 s on holds one, so a
                // burst at 14.999 s gets two more, and the next waits until 20 s.
                s.advance(Duration::from_millis(4_999));
                for want in [1, 0] {
                    let d = s.rate_limit("k", 3, ten).await.unwrap();
                    assert!(d.allowed && d.remaining == want, "{d:?}");
                }
                let d = s.rate_limit("k", 3, ten).await.unwrap();
                assert_eq!((d.allowed, d.retry_after_secs), (false, 6), "{d:?}");
            }

            /// A burst at the end of one window and another at the start of the next never
            /// put more than `n` requests in any window of the period, whatever the arrival
            /// times: random arrivals (fixed seeds) on each engine, checked against the
            /// bound, against an exact count where the window keeps a log, and decision for
            /// decision against [`rate::sliding_window`] (which Redis's Lua script mirrors).
            #[tokio::test]
            async fn sliding_window_never_admits_more_than_n_in_any_window() {
                let cases: &[(u32, u64)] =
                    &[(1, 1_000), (3, 10_000), (5, 1_000), (64, 2_000), (65, 1_000), (300, 10_000)];
                for (seed, &(limit, period)) in cases.iter().enumerate() {
                    let s = store(Limits::default()).await;
                    let mut rng = fastrand::Rng::with_seed(seed as u64 + 7);
                    let key = format!("k{limit}");
                    let mut now = START_MS;
                    let mut model: Option<Vec<u8>> = None;
                    let mut admitted: Vec<u64> = Vec::new();
                    let requests = (4 * limit as usize).clamp(200, 1_200);
                    for _ in 0..requests {
                        now += match rng.u8(0..6) {
                            0 | 1 => 0,
                            2 => rng.u64(0..period / 10 + 1),
                            3 => period - 1,
                            4 => rng.u64(0..3),
                            _ => rng.u64(0..2 * period),
                        };
                        s.clock.set_ms(now);
                        let what = format!("{limit} per {period} ms at +{} ms", now - START_MS);
                        let d = s
                            .rate_limit(&key, limit, Duration::from_millis(period))
                            .await
                            .unwrap();
                        let (want, value) =
                            rate::sliding_window(model.as_deref(), limit, period, now);
                        assert_eq!(d, want, "{what}");
                        let before = admitted.iter().filter(|&&t| t + period > now).count();
                        if limit <= rate::LOG_MAX {
                            // Exact: refused if and only if the window is full.
                            assert_eq!(d.allowed, before < limit as usize, "{what}");
                            if d.allowed {
                                assert_eq!(d.remaining as usize, limit as usize - before - 1);
                            }
                        } else if !d.allowed {
                            // Early by at most one bucket.
                            let width = rate::bucket_width(limit, period);
                            let late = admitted.iter().filter(|&&t| t + period + width > now);
                            assert!(late.count() >= limit as usize, "{what}: {d:?}");
                        }
                        if d.allowed {
                            admitted.push(now);
                            model = value;
                        } else {
                            // Retry-After is the truth: refused just before, passes then.
                            let at = now + d.retry_after_secs * 1000;
                            assert!(rate::sliding_window(model.as_deref(), limit, period, at).0.allowed);
                            let before = at - 1000;
                            if before > now {
                                assert!(
                                    !rate::sliding_window(model.as_deref(), limit, period, before).0.allowed,
                                    "{what}: {d:?}"
                                );
                            }
                        }
                    }
                    // The bound: any `limit + 1` admissions span at least a period.
                    for w in admitted.windows(limit as usize + 1) {
                        assert!(w[limit as usize] - w[0] >= period, "{limit} per {period}: {w:?}");
                    }
                    assert!(admitted.len() > limit as usize, "the case reaches its limit");
                    s.census();
                }
            }

            /// Requests that arrive at once on one key (on Redis, one script call for the lot)
            /// decide as the same requests one after another: as many pass as the window has
            /// room for, each with its own `remaining`, the rest are refused with the same
            /// `Retry-After`, and the window holds them all afterwards. A log and buckets.
            #[tokio::test]
            async fn a_burst_at_once_decides_as_one_request_after_another() {
                let key_of = |d: &RateDecision| {
                    (d.allowed, d.remaining, d.reset_secs, d.retry_after_secs)
                };
                for (limit, period, before) in [(5u32, 1_000u64, 2usize), (100, 10_000, 30)] {
                    let s = store(Limits::default()).await;
                    let key = format!("burst{limit}");
                    let span = Duration::from_millis(period);
                    let mut model: Option<Vec<u8>> = None;
                    let mut now = START_MS;
                    let one = async |model: &mut Option<Vec<u8>>, now: u64| {
                        s.clock.set_ms(now);
                        let d = s.rate_limit(&key, limit, span).await.unwrap();
                        let (want, value) = rate::sliding_window(model.as_deref(), limit, period, now);
                        assert_eq!(d, want, "{limit} per {period} ms at +{} ms", now - START_MS);
                        if value.is_some() {
                            *model = value;
                        }
                    };
                    for _ in 0..before {
                        now += 7;
                        one(&mut model, now).await;
                    }
                    now += 3;
                    s.clock.set_ms(now);
                    let burst = 3 * limit as usize;
                    let mut got: Vec<RateDecision> = futures_util::future::join_all(
                        (0..burst).map(|_| s.rate_limit(&key, limit, span)),
                    )
                    .await
                    .into_iter()
                    .map(Result::unwrap)
                    .collect();
                    let mut want = Vec::new();
                    for _ in 0..burst {
                        let (d, value) = rate::sliding_window(model.as_deref(), limit, period, now);
                        if value.is_some() {
                            model = value;
                        }
                        want.push(d);
                    }
                    got.sort_by_key(key_of);
                    want.sort_by_key(key_of);
                    assert_eq!(got, want, "a burst of {burst} on {limit} per {period} ms");
                    assert_eq!(
                        got.iter().filter(|d| d.allowed).count(),
                        limit as usize - before,
                        "the room the window had"
                    );
                    for step in [1, period / 2, period] {
                        now += step;
                        one(&mut model, now).await;
                    }
                    s.census();
                }
            }

            /// A window's key expires once its newest admitted request has left the window;
            /// GCRA's once its TAT has passed.
            #[tokio::test]
            async fn rate_keys_expire_when_their_state_is_empty() {
                let s = store(Limits::default()).await;
                let ten = Duration::from_secs(10);
                assert!(s.rate_limit("w", 2, ten).await.unwrap().allowed);
                assert!(s.rate_limit("big", 1000, ten).await.unwrap().allowed);
                assert!(s.rate_limit_with("g", 2, ten, RateAlgorithm::Gcra).await.unwrap().allowed);
                s.advance(Duration::from_secs(5));
                assert!(s.rate_limit("w", 2, ten).await.unwrap().allowed);
                s.advance(Duration::from_secs(5));
                // g: TAT 5 s. big: its 157 ms bucket holds the start and counts until
                // 10.018 s (buckets are aligned to the epoch, not to the first request).
                assert_eq!(s.sweep().await.unwrap(), 1);
                s.advance(Duration::from_millis(17));
                assert_eq!(s.sweep().await.unwrap(), 0);
                s.advance(MS);
                assert_eq!(s.sweep().await.unwrap(), 1);
                s.advance(Duration::from_millis(4_981));
                assert_eq!(s.sweep().await.unwrap(), 0);
                s.advance(MS);
                assert_eq!(s.sweep().await.unwrap(), 1);
                s.census();
            }

            #[tokio::test]
            async fn rate_limit_keys_are_independent() {
                let s = store(Limits::default()).await;
                for _ in 0..3 {
                    assert!(s.rate_limit("a", 3, SECOND).await.unwrap().allowed);
                }
                assert!(!s.rate_limit("a", 3, SECOND).await.unwrap().allowed);
                for want in [2, 1, 0] {
                    let d = s.rate_limit("b", 3, SECOND).await.unwrap();
                    assert!(d.allowed && d.remaining == want, "{d:?}");
                }
            }

            // ---- sweep ----

            #[tokio::test]
            async fn sweep_keeps_live_entries() {
                let s = store(Limits::default()).await;
                created(upsert(&*s, "kept", new("1")).await);
                created(upsert(&*s, "gone", new("1")).await);
                assert_eq!(
                    s.delete_resource("gone", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                s.submit_job(job(&*s, "j", 0)).await.unwrap();
                step(&*s, "seq", &[503, 200], 0).await;
                assert_eq!(
                    s.rate_limit("rate", 3, Duration::from_secs(60))
                        .await
                        .unwrap()
                        .remaining,
                    2
                );
                assert_eq!(s.sweep().await.unwrap(), 0);
                assert_eq!(found(&*s, "kept").await.meta.version, 1);
                assert_eq!(s.resource("gone").await.unwrap(), Lookup::Gone);
                assert!(s.job("j").await.unwrap().is_some());
                assert_eq!(step(&*s, "seq", &[503, 200], 1).await, answer(1, 200));
                assert_eq!(
                    s.rate_limit("rate", 3, Duration::from_secs(60))
                        .await
                        .unwrap()
                        .remaining,
                    1
                );
            }

            #[tokio::test]
            async fn sweep_removes_expired_entries_and_frees_their_keys() {
                let limits = Limits {
                    max_keys: 3,
                    ..short_ttls()
                };
                let s = store(limits).await;
                created(upsert(&*s, "kept", new("1")).await);
                created(upsert(&*s, "gone", new("1")).await);
                assert_eq!(
                    s.delete_resource("gone", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                for n in 0..3 {
                    assert_eq!(
                        s.submit_job(job(&*s, &format!("j{n}"), 0)).await.unwrap(),
                        JobOutcome::Accepted
                    );
                    assert_eq!(
                        step(&*s, &format!("s{n}"), &[503, 200], n).await,
                        answer(0, 503)
                    );
                    assert!(
                        s.rate_limit(&format!("r{n}"), 1, TTL)
                            .await
                            .unwrap()
                            .allowed
                    );
                }
                s.advance(TTL - MS);
                assert_eq!(s.sweep().await.unwrap(), 0, "nothing has expired yet");
                s.advance(MS);
                // 1 tombstone + 3 jobs + 3 sequences + 3 rate keys.
                assert_eq!(s.sweep().await.unwrap(), 10);
                assert_eq!(s.sweep().await.unwrap(), 0, "nothing left to sweep");
                assert_eq!(s.resource("gone").await.unwrap(), Lookup::Missing);
                assert_eq!(
                    found(&*s, "kept").await.meta.version,
                    1,
                    "resources never expire"
                );
                // The counters went down with the keys: each family takes max_keys new keys again.
                for n in 3..6 {
                    assert_eq!(
                        s.submit_job(job(&*s, &format!("j{n}"), 60_000)).await.unwrap(),
                        JobOutcome::Accepted,
                        "job {n}"
                    );
                    assert_eq!(
                        step(&*s, &format!("s{n}"), &[503, 200], n).await,
                        answer(0, 503),
                        "sequence {n}"
                    );
                    assert!(
                        s.rate_limit(&format!("r{n}"), 1, Duration::from_secs(60))
                            .await
                            .unwrap()
                            .allowed,
                        "rate key {n}"
                    );
                }
                assert_eq!(
                    s.submit_job(job(&*s, "j6", 60_000)).await.unwrap(),
                    JobOutcome::TooManyKeys
                );
                assert_eq!(
                    step(&*s, "s6", &[503, 200], 6).await,
                    SequenceStep::TooManyKeys
                );
                assert!(
                    matches!(
                        s.rate_limit("r6", 1, Duration::from_secs(60)).await,
                        Err(StoreError::Full { .. })
                    ),
                    "rate keys are full again"
                );
                // …and the resource count was not disturbed: "kept" + 2 more.
                created(upsert(&*s, "x", new("1")).await);
                created(upsert(&*s, "y", new("1")).await);
                assert_eq!(upsert(&*s, "z", new("1")).await, WriteOutcome::TooManyKeys);
            }

            #[tokio::test]
            async fn sweep_removes_every_expired_tombstone() {
                // More tombstones than fit in one sweep batch: every batch is swept.
                let names = ["a", "b", "c", "d", "e", "f", "g"];
                let s = store(Limits {
                    max_keys: names.len() as u64,
                    ..short_ttls()
                })
                .await;
                for name in names {
                    created(upsert(&*s, name, new(name)).await);
                    assert_eq!(
                        s.delete_resource(name, none()).await.unwrap(),
                        DeleteOutcome::Deleted
                    );
                }
                s.advance(TTL);
                assert_eq!(s.sweep().await.unwrap(), 7);
                assert_eq!(s.sweep().await.unwrap(), 0);
                for name in ["n1", "n2", "n3", "n4", "n5", "n6", "n7"] {
                    created(upsert(&*s, name, new(name)).await);
                }
            }

            #[tokio::test]
            async fn sweep_after_reset_and_cancel_keeps_counts_right() {
                let limits = Limits {
                    max_keys: 2,
                    ..short_ttls()
                };
                let s = store(limits).await;
                step(&*s, "s1", &[200], 0).await;
                step(&*s, "s2", &[200], 0).await;
                assert!(s.reset_sequence("s1").await.unwrap());
                s.submit_job(job(&*s, "j1", 0)).await.unwrap();
                assert!(s.cancel_job("j1").await.unwrap());
                s.advance(TTL);
                // s2 and j1 (the reset s1 is already gone).
                assert_eq!(s.sweep().await.unwrap(), 2);
                for key in ["a", "b"] {
                    assert_eq!(step(&*s, key, &[200], 0).await, answer(0, 200));
                    assert_eq!(
                        s.submit_job(job(&*s, key, 60_000)).await.unwrap(),
                        JobOutcome::Accepted
                    );
                }
                assert_eq!(step(&*s, "c", &[200], 0).await, SequenceStep::TooManyKeys);
                assert_eq!(
                    s.submit_job(job(&*s, "c", 60_000)).await.unwrap(),
                    JobOutcome::TooManyKeys
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sweep_frees_expired_keys_while_others_write() {
                use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
                const OLD: usize = 20;
                let hour = Duration::from_secs(3600);
                let s = store(Limits {
                    max_keys: 100_000,
                    ..short_ttls()
                })
                .await;
                // Expired state in every family (sorting before the writers' keys, which a
                // pass may not reach: see a_sweep_pass_is_bounded_and_the_next_resumes).
                for n in 0..OLD {
                    let k = format!("a-old{n:02}");
                    created(upsert(&*s, &k, new("x")).await);
                    assert_eq!(
                        s.delete_resource(&k, none()).await.unwrap(),
                        DeleteOutcome::Deleted
                    );
                    s.submit_job(job(&*s, &k, 0)).await.unwrap();
                    assert_eq!(step(&*s, &k, &[200], n).await, answer(0, 200));
                    assert!(s.rate_limit(&k, 1, TTL).await.unwrap().allowed);
                }
                s.advance(TTL);
                // Writers add new keys to every family (and keep touching a live one) as fast
                // as they can, all through the sweep.
                let stop = Arc::new(AtomicBool::new(false));
                let progress = Arc::new(AtomicU64::new(0));
                let writers: Vec<_> = (0..4)
                    .map(|w| {
                        let (st, stop, progress) =
                            (s.shared(), Arc::clone(&stop), Arc::clone(&progress));
                        tokio::spawn(async move {
                            let mut made = 0u64;
                            while !stop.load(Ordering::SeqCst) {
                                let k = format!("w{w}-{made}");
                                assert!(st.rate_limit(&k, 5, hour).await.unwrap().allowed);
                                let server = format!("{SERVER_RATE_PREFIX}{k}");
                                assert!(st.rate_limit(&server, 5, hour).await.unwrap().allowed);
                                assert_eq!(
                                    st.submit_job(job(&*st, &k, 60_000)).await.unwrap(),
                                    JobOutcome::Accepted
                                );
                                assert_eq!(
                                    st.sequence_step(&k, vec![200], attempt("GET", 0))
                                        .await
                                        .unwrap(),
                                    answer(0, 200)
                                );
                                created(
                                    st.write_resource(&k, new("y"), WriteMode::Upsert, none())
                                        .await
                                        .unwrap(),
                                );
                                st.rate_limit("hot", u32::MAX, SECOND).await.unwrap();
                                made += 1;
                                progress.fetch_add(1, Ordering::SeqCst);
                                // The memory engine never waits: let the scheduler in.
                                tokio::task::yield_now().await;
                            }
                            made
                        })
                    })
                    .collect();
                // Wait (for a condition, not a time) until every writer is under way.
                while progress.load(Ordering::SeqCst) < 8 {
                    tokio::task::yield_now().await;
                }
                let removed = s.sweep().await.expect("a sweep is never starved by writers");
                stop.store(true, Ordering::SeqCst);
                let mut made = 0;
                for w in writers {
                    made += w.await.expect("writer");
                }
                assert!(made >= 8);
                // Every expired entry went, nothing else did.
                assert_eq!(removed, 4 * OLD as u64);
                assert_eq!(s.sweep().await.unwrap(), 0);
                let census = s.census();
                assert_eq!(census.entries(Table::Tombstones), 0);
                assert_eq!(census.entries(Table::Jobs), made);
                assert_eq!(census.entries(Table::Sequences), made);
                assert_eq!(census.entries(Table::Resources), made);
                assert_eq!(census.entries(Table::Rates), 2 * made + 1);
                for n in 0..OLD {
                    let k = format!("a-old{n:02}");
                    assert_eq!(s.resource(&k).await.unwrap(), Lookup::Missing);
                    assert_eq!(s.job(&k).await.unwrap(), None);
                }
            }

            // ---- quotas: families apart, nothing unaccounted ----

            #[tokio::test]
            async fn server_rate_keys_have_a_quota_of_their_own() {
                let s = store(Limits {
                    max_keys: 2,
                    ..Limits::default()
                })
                .await;
                let minute = Duration::from_secs(60);
                let full = |r: Result<RateDecision, StoreError>| {
                    matches!(r, Err(StoreError::Full { family: "rate-limit keys", limit: 2 }))
                };
                // Fresh on-demand keys fill their own family...
                for k in ["on-demand:a", "on-demand:b"] {
                    assert!(s.rate_limit(k, 1, minute).await.unwrap().allowed);
                }
                assert!(full(s.rate_limit("on-demand:c", 1, minute).await));
                // ...and the server-wide limiter still takes new clients, and limits them.
                for k in ["server:10.0.0.1", "server:10.0.0.2"] {
                    let d = s.rate_limit(k, 2, minute).await.unwrap();
                    assert!(d.allowed && d.remaining == 1, "{k}: {d:?}");
                }
                // With its own family full too, a new client passes, unrecorded (fail open):
                // never refused because of other clients' keys.
                for _ in 0..3 {
                    let d = s.rate_limit("server:10.0.0.3", 2, minute).await.unwrap();
                    assert!(d.allowed && d.remaining == 1, "{d:?}");
                }
                // Clients already tracked stay limited; the on-demand family is still full.
                assert!(s.rate_limit("server:10.0.0.1", 2, minute).await.unwrap().allowed);
                assert!(!s.rate_limit("server:10.0.0.1", 2, minute).await.unwrap().allowed);
                assert!(full(s.rate_limit("on-demand:c", 1, minute).await));
                s.census();
                // Once idle keys are swept, the new client is tracked (and limited) too.
                s.advance(minute);
                assert_eq!(s.sweep().await.unwrap(), 4);
                for _ in 0..2 {
                    assert!(s.rate_limit("server:10.0.0.3", 2, minute).await.unwrap().allowed);
                }
                assert!(!s.rate_limit("server:10.0.0.3", 2, minute).await.unwrap().allowed);
                assert!(s.rate_limit("on-demand:c", 1, minute).await.unwrap().allowed);
                s.census();
            }

            #[tokio::test]
            async fn job_results_count_toward_max_store_bytes() {
                let big = |s: &dyn Store, id: &str| Job {
                    result: JobResult {
                        status: 200,
                        body: serde_json::json!({ "data": "x".repeat(1000) }),
                    },
                    ..job(s, id, 60_000)
                };
                let probe = store(Limits::default()).await;
                let size = serde_json::to_vec(&big(&*probe, "j1")).unwrap().len() as u64;
                assert!(size > 1000);
                let limit = size + 100;
                let s = store(Limits {
                    max_store_bytes: limit,
                    ..short_ttls()
                })
                .await;
                assert_eq!(s.submit_job(big(&*s, "j1")).await.unwrap(), JobOutcome::Accepted);
                // The job's bytes leave room for 100 bytes of resources, no more...
                assert_eq!(
                    upsert(&*s, "a", sized(101)).await,
                    WriteOutcome::QuotaFull { used: size, limit }
                );
                created(upsert(&*s, "a", sized(100)).await);
                // ...and no room for another job.
                assert_eq!(
                    s.submit_job(big(&*s, "j2")).await.unwrap(),
                    JobOutcome::QuotaFull {
                        used: size + 100,
                        limit
                    }
                );
                assert_eq!(s.job("j2").await.unwrap(), None, "a refused job is not stored");
                s.census();
                // Expired and swept, a job gives its bytes back.
                s.advance(TTL);
                assert_eq!(s.sweep().await.unwrap(), 1);
                assert_eq!(s.submit_job(big(&*s, "j2")).await.unwrap(), JobOutcome::Accepted);
                // Cancelling rewrites the record ("cancelled":true is a byte shorter).
                assert!(s.cancel_job("j2").await.unwrap());
                created(upsert(&*s, "b", sized(1)).await);
                assert_eq!(
                    upsert(&*s, "c", sized(1)).await,
                    WriteOutcome::QuotaFull { used: limit, limit }
                );
                s.census();
            }

            #[tokio::test]
            async fn tombstones_count_toward_max_keys_until_they_expire() {
                let s = store(Limits {
                    max_keys: 2,
                    ..short_ttls()
                })
                .await;
                created(upsert(&*s, "a", new("a")).await);
                created(upsert(&*s, "b", new("b")).await);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                assert_eq!(
                    upsert(&*s, "c", new("c")).await,
                    WriteOutcome::TooManyKeys,
                    "a's tombstone holds its key"
                );
                // Recreating the deleted name trades its tombstone for the resource.
                created(upsert(&*s, "a", new("a2")).await);
                assert_eq!(upsert(&*s, "c", new("c")).await, WriteOutcome::TooManyKeys);
                assert_eq!(
                    s.delete_resource("a", none()).await.unwrap(),
                    DeleteOutcome::Deleted
                );
                s.census();
                s.advance(TTL - MS);
                assert_eq!(s.sweep().await.unwrap(), 0);
                assert_eq!(upsert(&*s, "c", new("c")).await, WriteOutcome::TooManyKeys);
                s.advance(MS);
                assert_eq!(s.sweep().await.unwrap(), 1);
                created(upsert(&*s, "c", new("c")).await);
                assert_eq!(upsert(&*s, "d", new("d")).await, WriteOutcome::TooManyKeys);
                s.census();
            }

            #[tokio::test]
            async fn sequence_attempts_go_with_their_sequence() {
                let s = store(Limits {
                    max_attempts: 3,
                    ..short_ttls()
                })
                .await;
                for n in 0..5 {
                    step(&*s, "k", &[503, 200], n).await;
                }
                assert_eq!(s.census().entries(Table::Attempts), 3, "only the last 3 kept");
                // Another list of codes is a conflict that changes nothing, not a silent
                // restart; a reset takes the attempts with it, and the other list starts.
                assert_eq!(
                    step(&*s, "k", &[429, 200], 5).await,
                    SequenceStep::Conflict { codes: vec![503, 200] }
                );
                let seq = s.sequence("k").await.unwrap().unwrap();
                assert_eq!((seq.codes, seq.served), (vec![503, 200], 5));
                assert_eq!(s.census().entries(Table::Attempts), 3);
                assert!(s.reset_sequence("k").await.unwrap());
                assert_eq!(s.census().entries(Table::Attempts), 0);
                assert_eq!(step(&*s, "k", &[429, 200], 5).await, answer(0, 429));
                let seq = s.sequence("k").await.unwrap().unwrap();
                assert_eq!(seq.attempts.len(), 1);
                assert_eq!(seq.attempts[0].headers, attempt("GET", 5).headers);
                assert!(s.reset_sequence("k").await.unwrap());
                assert_eq!(s.census().entries(Table::Attempts), 0);
                // Expired: restarted without the old attempts, or swept with them.
                step(&*s, "k", &[503, 200], 6).await;
                step(&*s, "k", &[503, 200], 7).await;
                step(&*s, "gone", &[503, 200], 8).await;
                s.advance(TTL);
                step(&*s, "k", &[503, 200], 9).await;
                let seq = s.sequence("k").await.unwrap().unwrap();
                assert_eq!(
                    (seq.served, seq.attempts.len(), seq.attempts[0].code),
                    (1, 1, 503)
                );
                assert_eq!(s.sweep().await.unwrap(), 1, "\"gone\"");
                assert_eq!(s.census().entries(Table::Attempts), 1);
            }

            // ---- concurrency: every operation is one atomic transaction ----

            /// Runs `n` copies of `op` at once on a multi-thread runtime, released together.
            async fn race<T, F, Fut>(s: &Fixture, n: usize, op: F) -> Vec<T>
            where
                T: Send + 'static,
                F: Fn(Arc<dyn Store>, usize) -> Fut,
                Fut: std::future::Future<Output = T> + Send + 'static,
            {
                let barrier = Arc::new(tokio::sync::Barrier::new(n));
                let tasks: Vec<_> = (0..n)
                    .map(|i| {
                        let fut = op(s.shared(), i);
                        let barrier = Arc::clone(&barrier);
                        tokio::spawn(async move {
                            barrier.wait().await;
                            fut.await
                        })
                    })
                    .collect();
                let mut out = Vec::with_capacity(n);
                for t in tasks {
                    out.push(t.await.expect("task"));
                }
                out
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_if_match_writes_have_one_winner() {
                let s = store(Limits::default()).await;
                let v1 = created(upsert(&*s, "a", new("v1")).await);
                let cond = conds(&[("if-match", &v1.etag)]);
                let outcomes = race(&s, 20, |st, i| {
                    let cond = cond.clone();
                    async move {
                        st.write_resource("a", new(&format!("w{i}")), WriteMode::Upsert, cond)
                            .await
                            .unwrap()
                    }
                })
                .await;
                let winners: Vec<_> = outcomes
                    .iter()
                    .filter_map(|o| {
                        if let WriteOutcome::Replaced(m) = o {
                            Some(m.clone())
                        } else {
                            None
                        }
                    })
                    .collect();
                let failed = outcomes
                    .iter()
                    .filter(|o| **o == WriteOutcome::PreconditionFailed)
                    .count();
                assert_eq!((winners.len(), failed), (1, 19), "{outcomes:?}");
                let r = found(&*s, "a").await;
                assert_eq!(r.meta, winners[0]);
                assert_eq!(r.meta.version, 2);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_create_only_has_one_winner() {
                let s = store(Limits::default()).await;
                let outcomes = race(&s, 20, |st, i| async move {
                    st.write_resource(
                        "a",
                        new(&format!("w{i}")),
                        WriteMode::CreateOnly,
                        Conditions::default(),
                    )
                    .await
                    .unwrap()
                })
                .await;
                let created = outcomes
                    .iter()
                    .filter(|o| matches!(o, WriteOutcome::Created(_)))
                    .count();
                let exists = outcomes
                    .iter()
                    .filter(|o| **o == WriteOutcome::Exists)
                    .count();
                assert_eq!((created, exists), (1, 19), "{outcomes:?}");
                assert_eq!(s.list_resources(100).await.unwrap().len(), 1);
                assert_eq!(found(&*s, "a").await.meta.version, 1);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_creates_respect_max_keys_and_quota() {
                let s = store(Limits {
                    max_keys: 5,
                    max_store_bytes: 1000,
                    ..Limits::default()
                })
                .await;
                let outcomes = race(&s, 20, |st, i| async move {
                    st.write_resource(
                        &format!("r{i:02}"),
                        sized(10),
                        WriteMode::Upsert,
                        Conditions::default(),
                    )
                    .await
                    .unwrap()
                })
                .await;
                let created = outcomes
                    .iter()
                    .filter(|o| matches!(o, WriteOutcome::Created(_)))
                    .count();
                let refused = outcomes
                    .iter()
                    .filter(|o| **o == WriteOutcome::TooManyKeys)
                    .count();
                if s.exact_limits {
                    assert_eq!(created, 5, "{outcomes:?}");
                    assert_eq!(refused, 15);
                } else {
                    // The documented bound: never fewer than the limit, at most one more per
                    // concurrent writer; every other write refused, the counters consistent,
                    // and once full, a write alone is refused.
                    assert!((5..=20).contains(&created), "{outcomes:?}");
                    assert_eq!(created + refused, 20, "{outcomes:?}");
                    s.census();
                    assert_eq!(upsert(&*s, "late", sized(10)).await, WriteOutcome::TooManyKeys);
                }
                assert_eq!(s.list_resources(100).await.unwrap().len(), created);

                let s = store(Limits {
                    max_store_bytes: 100,
                    ..Limits::default()
                })
                .await;
                let outcomes = race(&s, 20, |st, i| async move {
                    st.write_resource(
                        &format!("r{i:02}"),
                        sized(30),
                        WriteMode::Upsert,
                        Conditions::default(),
                    )
                    .await
                    .unwrap()
                })
                .await;
                let created = outcomes
                    .iter()
                    .filter(|o| matches!(o, WriteOutcome::Created(_)))
                    .count();
                let refused = outcomes
                    .iter()
                    .filter(|o| matches!(o, WriteOutcome::QuotaFull { .. }))
                    .count();
                if s.exact_limits {
                    assert_eq!(created, 3, "{outcomes:?}");
                    assert_eq!(refused, 17);
                } else {
                    assert!((3..=20).contains(&created), "{outcomes:?}");
                    assert_eq!(created + refused, 20, "{outcomes:?}");
                    s.census();
                    assert!(matches!(
                        upsert(&*s, "late", sized(30)).await,
                        WriteOutcome::QuotaFull { .. }
                    ));
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_sequence_steps_are_each_answered_once() {
                let s = store(Limits::default()).await;
                let codes: Vec<u16> = (500..520).collect();
                let outcomes = race(&s, 20, |st, i| {
                    let codes = codes.clone();
                    async move {
                        st.sequence_step("k", codes, attempt("GET", i))
                            .await
                            .unwrap()
                    }
                })
                .await;
                let mut steps: Vec<usize> = outcomes
                    .iter()
                    .map(|o| match o {
                        SequenceStep::Answer { step, code } => {
                            assert_eq!(*code, codes[*step]);
                            *step
                        }
                        other => panic!("{other:?}"),
                    })
                    .collect();
                steps.sort_unstable();
                assert_eq!(steps, (0..20).collect::<Vec<_>>());
                assert_eq!(s.sequence("k").await.unwrap().unwrap().served, 20);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_rate_limit_admits_exactly_the_limit() {
                let s = store(Limits::default()).await;
                let decisions = race(&s, 20, |st, _| async move {
                    st.rate_limit("k", 5, Duration::from_secs(60))
                        .await
                        .unwrap()
                })
                .await;
                assert_eq!(
                    decisions.iter().filter(|d| d.allowed).count(),
                    5,
                    "{decisions:?}"
                );
                let mut remaining: Vec<u32> = decisions
                    .iter()
                    .filter(|d| d.allowed)
                    .map(|d| d.remaining)
                    .collect();
                remaining.sort_unstable();
                assert_eq!(remaining, [0, 1, 2, 3, 4]);
            }
        }
    };
}

conformance_tests!(memory, memory_store);
conformance_tests!(embedded, embedded_store);
conformance_tests!(redis, redis_store);
conformance_tests!(redis_cluster, redis_cluster_store);

// ---- engine-specific ----

/// The embedded store is durable: everything written is there after a reopen, counters too.
#[tokio::test]
async fn embedded_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("data");
    let clock = Arc::new(ManualClock::new(START_MS));
    let open =
        |limits| KvStore::with_clock(EmbeddedEngine::open(&path).unwrap(), limits, clock.clone());
    // The job's record, once cancelled, takes `job_bytes` of the store.
    let cancelled = Job {
        cancelled: true,
        ..job_at(START_MS, "j", 60_000)
    };
    let job_bytes = serde_json::to_vec(&cancelled).unwrap().len() as u64;
    let limits = Limits {
        max_keys: 4,
        max_store_bytes: 100 + job_bytes,
        ..Limits::default()
    };
    let (a, b) = {
        let s = open(limits);
        let a = created(upsert(&s, "a", sized(40)).await);
        created(upsert(&s, "b", new("hello")).await);
        let b = replaced(upsert(&s, "b", new("hello, world")).await);
        created(upsert(&s, "c", new("c")).await);
        assert_eq!(
            s.delete_resource("c", none()).await.unwrap(),
            DeleteOutcome::Deleted
        );
        assert_eq!(
            s.submit_job(job(&s, "j", 60_000)).await.unwrap(),
            JobOutcome::Accepted
        );
        assert!(s.cancel_job("j").await.unwrap());
        assert_eq!(step(&s, "seq", &[503, 503, 200], 0).await, answer(0, 503));
        assert_eq!(step(&s, "seq", &[503, 503, 200], 1).await, answer(1, 503));
        for _ in 0..3 {
            assert!(
                s.rate_limit("rate", 3, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .allowed
            );
        }
        (a, b)
    };
    let s = open(limits);
    let ra = found(&s, "a").await;
    assert_eq!((ra.meta, ra.body), (a, Bytes::from(vec![b'x'; 40])));
    let rb = found(&s, "b").await;
    assert_eq!((rb.meta, &rb.body[..]), (b, &b"hello, world"[..]));
    assert_eq!(s.resource("c").await.unwrap(), Lookup::Gone);
    assert_eq!(s.list_resources(10).await.unwrap().len(), 2);
    let j = s.job("j").await.unwrap().expect("job survives");
    assert!(j.cancelled);
    let seq = s.sequence("seq").await.unwrap().expect("sequence survives");
    assert_eq!((seq.served, seq.attempts.len()), (2, 2));
    assert_eq!(step(&s, "seq", &[503, 503, 200], 2).await, answer(2, 200));
    assert!(
        !s.rate_limit("rate", 3, Duration::from_secs(60))
            .await
            .unwrap()
            .allowed,
        "rate state survives"
    );
    // Counters survive: 52 bytes of resources and the job's of 100 + the job's, 3 of 4 keys
    // (two resources and a tombstone).
    assert_eq!(
        upsert(&s, "d", sized(49)).await,
        WriteOutcome::QuotaFull {
            used: 52 + job_bytes,
            limit: 100 + job_bytes
        }
    );
    created(upsert(&s, "d", sized(48)).await);
    assert_eq!(upsert(&s, "e", sized(0)).await, WriteOutcome::TooManyKeys);
}

/// Redis runs the sliding window as a script sent by `EVALSHA`: when Redis forgot it (a
/// restart, `SCRIPT FLUSH`), it is loaded again and the request still counts once.
#[tokio::test]
async fn redis_rate_limit_loads_its_script_again_after_a_flush() {
    let s = redis_store(Limits::default()).await;
    let minute = Duration::from_secs(60);
    assert_eq!(s.rate_limit("k", 3, minute).await.unwrap().remaining, 2);
    let mut conn = ::redis::Client::open(test_redis())
        .unwrap()
        .get_connection()
        .unwrap();
    ::redis::cmd("SCRIPT").arg("FLUSH").exec(&mut conn).unwrap();
    assert_eq!(s.rate_limit("k", 3, minute).await.unwrap().remaining, 1);
    assert_eq!(s.rate_limit("k", 3, minute).await.unwrap().remaining, 0);
    assert!(!s.rate_limit("k", 3, minute).await.unwrap().allowed);
    s.census();
}

/// A memory engine that counts the bytes each transaction writes (keys and values).
#[derive(Debug, Default)]
struct Metered {
    inner: MemoryEngine,
    written: std::sync::atomic::AtomicU64,
}

struct MeteredTx<'a> {
    inner: &'a mut dyn Tx,
    written: &'a std::sync::atomic::AtomicU64,
}

impl Tx for MeteredTx<'_> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let n = (key.len() + value.len()) as u64;
        self.written
            .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        self.inner.put(table, key, value)
    }
    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        self.inner.delete(table, key)
    }
    fn scan(
        &mut self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan(table, after, limit)
    }
}

impl Engine for Metered {
    const KIND: &'static str = "metered";
    const BLOCKING: bool = false;

    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.inner.transact(&mut |tx| {
            f(&mut MeteredTx {
                inner: tx,
                written: &self.written,
            })
        })
    }

    fn read<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.inner.read(f)
    }
}

/// A sequence step writes the same few bytes — its head and one attempt — however many
/// attempts the sequence has recorded, not the whole growing record.
#[tokio::test]
async fn a_sequence_step_writes_the_same_bytes_however_long_the_sequence() {
    let s = KvStore::new(Metered::default(), Limits::default());
    let written = || s.engine.written.load(std::sync::atomic::Ordering::SeqCst);
    // The largest attempt a request can record: 8 headers of 256 characters.
    let big = Attempt {
        headers: (0..8)
            .map(|i| (format!("header-{i}"), "v".repeat(256)))
            .collect(),
        ..attempt("GET", 0)
    };
    let one_attempt = serde_json::to_vec(&big).unwrap().len() as u64;
    let max = Limits::default().max_attempts;
    let mut per_step = Vec::new();
    for _ in 0..max + 50 {
        let before = written();
        let answer = s
            .sequence_step("k", vec![503, 200], big.clone())
            .await
            .unwrap();
        assert!(matches!(answer, SequenceStep::Answer { .. }));
        per_step.push(written() - before);
    }
    for (n, bytes) in per_step.iter().enumerate().skip(1) {
        assert!(
            *bytes < one_attempt + 200,
            "step {n} wrote {bytes} bytes; one attempt is {one_attempt}"
        );
    }
    let seq = s.sequence("k").await.unwrap().unwrap();
    assert_eq!(seq.served, max as u64 + 50);
    assert_eq!(seq.attempts.len(), max);
    assert!(seq.attempts.iter().all(|a| a.headers == big.headers));
}

/// A sweep's pass over a table is bounded by what the counters said the table held (twice
/// that, plus a batch), so that writers adding keys ahead of it cannot keep it going forever;
/// the next sweep resumes where a cut-short pass stopped. Here the counter undercounts (as
/// keys written without one would), so the passes are cut short.
#[tokio::test]
async fn a_sweep_pass_is_bounded_and_the_next_resumes() {
    let clock = Arc::new(ManualClock::new(START_MS));
    let s = KvStore::with_clock(MemoryEngine::new(), Limits::default(), clock.clone())
        .with_sweep_batch(3);
    for n in 0..10 {
        assert!(
            s.rate_limit(&format!("k{n}"), 1, SECOND)
                .await
                .unwrap()
                .allowed
        );
    }
    s.engine
        .transact(&mut |tx| tx.put(Table::Counters, ops::RATE_COUNT, b"1"))
        .unwrap();
    clock.advance(SECOND);
    // 2 x 1 + 3 entries; then 2 x 0 + 3 (the counter saturated at 0); then the last 2.
    let sweeps = [
        s.sweep().await.unwrap(),
        s.sweep().await.unwrap(),
        s.sweep().await.unwrap(),
        s.sweep().await.unwrap(),
    ];
    assert_eq!(sweeps, [5, 3, 2, 0]);
    let left = s
        .engine
        .read(&mut |tx| tx.scan(Table::Rates, None, 100))
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// GCRA at a fixed clock, for rates a wall clock cannot test: exactly `limit` requests pass
/// at once (the rest are refused) while `remaining` counts down to 0, a whole burst passes
/// again after a period, and the sustained rate is `limit` per period.
#[test]
fn gcra_admits_exactly_the_limit_at_any_rate() {
    let gcra = |limit, period, now_ms| RateQuery {
        key: "k".to_owned(),
        limit,
        period,
        algorithm: RateAlgorithm::Gcra,
        now_ms,
        max_keys: Limits::default().max_keys,
    };
    let cases: &[(u32, u64)] = &[
        (1, 1000),
        (3, 1000),
        (7, 1000),
        (10, 1000),
        (400, 1000),
        (2000, 1000),
        (3, 10),
        (60, 60_000),
        (1, 1),
    ];
    let t0: u64 = 1_000_000_000;
    for &(limit, period_ms) in cases {
        let what = format!("limit {limit} per {period_ms} ms");
        let period = Duration::from_millis(period_ms);
        let engine = MemoryEngine::new();
        let at = |now: u64| {
            engine
                .transact(&mut |tx| ops::rate_limit(tx, &gcra(limit, period, now)))
                .expect("rate limit")
        };
        let mut passed = 0;
        for _ in 0..(limit * 2 + 3) {
            let d = at(t0);
            if d.allowed {
                passed += 1;
                assert!(passed <= limit, "{what}: request {passed} passed at once");
                assert_eq!(d.remaining, limit - passed, "{what}: {d:?}");
            } else {
                assert_eq!(d.remaining, 0, "{what}: {d:?}");
                assert!(d.retry_after_secs >= 1, "{what}: {d:?}");
            }
        }
        assert_eq!(passed, limit, "{what}: burst");
        let burst = (0..limit * 2 + 3)
            .filter(|_| at(t0 + period_ms).allowed)
            .count();
        assert_eq!(burst, limit as usize, "{what}: burst after a period");

        // Sustained: asking as fast as allowed, every millisecond for two periods, gets the
        // initial burst and then `limit` per period.
        let engine = MemoryEngine::new();
        let at = |now: u64| {
            engine
                .transact(&mut |tx| ops::rate_limit(tx, &gcra(limit, period, now)))
                .expect("rate limit")
        };
        let mut total = 0u64;
        for t in t0..=t0 + 2 * period_ms {
            let mut guard = 0;
            while at(t).allowed {
                total += 1;
                guard += 1;
                assert!(guard <= limit, "{what}: unbounded at {t}");
            }
        }
        assert_eq!(
            total,
            3 * u64::from(limit),
            "{what}: sustained over two periods"
        );
    }
}
