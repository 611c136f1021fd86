//! `--store redis://host:port[/db]` (or `rediss://` for TLS), or `--store
//! redis+cluster://host:port,host:port,…` (Redis Cluster; `rediss+cluster://` for TLS): the
//! key-value layout in Redis, so any number of statuslab instances share one state.
//!
//! # One round trip per read, one per commit
//!
//! Transactions are optimistic. [`super::ops`] runs against a snapshot of the keys it reads;
//! when it reads a key the snapshot does not hold yet, the run stops, the engine fetches every
//! key the transaction wants so far (with the keys that usually go with it: a resource's
//! tombstone and its family counters, …) in one atomic step — an `MGET`, or `read.lua` where
//! it needs existence or a scan — and runs the operation again. Most operations need one
//! fetch. The commit is one Lua script (`commit.lua`, sent by `EVALSHA`, as `EVAL` on
//! `NOSCRIPT`) that checks that every value the run relied on is unchanged and writes
//! everything, or writes nothing and the operation runs again on fresh values. So each
//! transaction is serializable, and `ops` is still the one source of the semantics: a create
//! is two round trips (read, commit), a read one. The sliding-window rate limit is one
//! script of its own (`rate_limit.lua`): one round trip, never rerun, for every request on
//! the key that arrived while the one before was in flight ([`RateBatches`]). Everything goes over
//! one multiplexed async connection (tokio), never a blocking thread.
//!
//! # Family counters: out of the conflict set
//!
//! The counters every write of a family touches (`--max-keys` per family, and the bytes for
//! `--max-store-bytes`) are not compared at commit, or every two writes would conflict.
//! The run reads the family's total, the commit script adds the run's delta with `INCRBY`,
//! and checks the limit itself: if the operation saw room under the limit but the counter has
//! grown since so that this write would pass it, the transaction runs again and decides on
//! the new total. On one Redis the check is exact. Independent keys never conflict.
//!
//! # Layout
//!
//! The state is split into shards, each one hash tag: a key belongs to its *entity* (a
//! resource with its body and tombstone, a job, a sequence with its attempts, a rate-limit
//! key), and a hash of the entity picks the shard. A shard's keys are `TAG:TABLE:KEY`, each
//! table's keys of the shard are indexed in the sorted set `TAG:index:TABLE` (all scored 0,
//! so `ZRANGEBYLEX` lists them in byte order), and the shard's part of each family counter is
//! `TAG:counters:FAMILY`. Every transaction keeps to one entity, so one shard and one slot: the
//! read and the commit are valid on a cluster. Scans (listings, the sweep's pages) merge the
//! shards' indexes.
//!
//! On one Redis (`redis://`) there is one shard, tagged `{prefix}` (the layout of earlier
//! versions). On a cluster (`redis+cluster://`) there are [`CLUSTER_SHARDS`], tagged
//! `{prefix:K.J}` with `J` chosen so that the shards' slots are spread evenly over the 16384,
//! so state spreads over every master of an evenly split cluster.
//!
//! # Accounting bound on a cluster
//!
//! A commit script runs on one shard, so it can check that shard's part of a family counter
//! exactly but only *read* the others' parts (fetched with the transaction's reads). Writers
//! on other shards that commit between that read and this commit can each add their own
//! delta, so a family can pass its limit by at most what the writers concurrently in flight
//! add: one key per concurrent creating request (over every instance), and for
//! `--max-store-bytes` the bytes of those concurrent writes. Sequential writers are held to
//! the limit exactly; no write ever passes it alone. On one Redis the bound is zero. While a
//! master is down, its shards' parts count as this instance last read them (the state they
//! counted is unreachable meanwhile; a master that comes back empty has lost its shards'
//! counter parts together with the keys they counted, so the accounting stays consistent).
//!
//! # Faults
//!
//! Connections are opened with a connect timeout and answers awaited with a response
//! timeout, so an outage fails fast with [`StoreError::Unavailable`] (503 with `Retry-After`)
//! instead of hanging. A broken connection to one Redis is dropped and the next request
//! connects afresh (a read that failed on a connection that was already open is tried once
//! on a new one); a cluster connection follows the cluster's topology by itself. So when Redis
//! (or a cluster master) returns, the server recovers without a restart; meanwhile on a
//! cluster only the state on the missing master's slots answers 503 (start the cluster with
//! `cluster-require-full-coverage no`, or the whole cluster refuses). A write is acknowledged
//! only after its commit script answered; if the connection breaks while one is in flight the
//! outcome is unknown and reported as unavailable, never retried.

use super::rate::{self, RateAlgorithm};
use super::{
    AnyResult, AnyTx, AsyncEngine, Engine, Journal, Limits, RateDecision, RateQuery, StoreError,
    Table, Tx, ops,
};
use redis::{Cmd, ConnectionAddr, IntoConnectionInfo, RedisError, RedisResult, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Environment variable with the Redis password, used when the URL carries none.
pub const PASSWORD_ENV: &str = "STATUSLAB_REDIS_PASSWORD";

/// Shards of the state on a Redis Cluster (one hash tag each). A power of two that divides
/// 16384, so that each shard can take a slot of its own range.
pub const CLUSTER_SHARDS: usize = 16;

/// How long to wait for a TCP (and TLS) connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for Redis's answer.
const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// Commits of a transaction before contention is reported as unavailability.
const MAX_ATTEMPTS: u32 = 200;
/// Fetches of one run of a transaction (each adds the keys the run went on to read); a
/// bound against a runaway, far above what an operation needs (two).
const MAX_ROUNDS: u32 = 64;
/// What a run returns when it read a key that is not fetched yet (never seen outside).
const NOT_FETCHED: &str = "Redis: a key read before it was fetched";

/// A Lua script and its SHA1, for `EVALSHA` (and `EVAL` when Redis answers `NOSCRIPT`).
struct Lua {
    src: &'static str,
    sha: String,
}

impl Lua {
    fn new(src: &'static str) -> Lua {
        let sha = redis::Script::new(src).get_hash().to_owned();
        Lua { src, sha }
    }
}

static READ: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("read.lua")));
static COMMIT: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("commit.lua")));
static RATE: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("rate_limit.lua")));

/// One command to send: plain, or a script invocation.
enum Req {
    Cmd(Cmd),
    Script {
        lua: &'static Lua,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
    },
}

impl Req {
    /// The command; for a script `EVALSHA`, or `EVAL` (which also loads it) when `eval`.
    fn cmd(&self, eval: bool) -> std::borrow::Cow<'_, Cmd> {
        match self {
            Req::Cmd(c) => std::borrow::Cow::Borrowed(c),
            Req::Script { lua, keys, args } => {
                let mut c = if eval {
                    let mut c = redis::cmd("EVAL");
                    c.arg(lua.src);
                    c
                } else {
                    let mut c = redis::cmd("EVALSHA");
                    c.arg(&lua.sha);
                    c
                };
                c.arg(keys.len()).arg(keys).arg(args);
                std::borrow::Cow::Owned(c)
            }
        }
    }
}

fn no_script(e: &RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// Where the engine connects (one per engine: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// A multiplexed async connection (cheap to clone: clones share it).
#[derive(Clone)]
enum AsyncConn {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl AsyncConn {
    async fn send(&mut self, req: &Req) -> RedisResult<Value> {
        let first = match self {
            AsyncConn::Single(c) => req.cmd(false).query_async(c).await,
            AsyncConn::Cluster(c) => req.cmd(false).query_async(c).await,
        };
        match first {
            Err(e) if no_script(&e) => match self {
                AsyncConn::Single(c) => req.cmd(true).query_async(c).await,
                AsyncConn::Cluster(c) => req.cmd(true).query_async(c).await,
            },
            r => r,
        }
    }
}

/// A blocking connection, for the synchronous [`Engine`] methods (tests, start-up checks).
enum SyncConn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl SyncConn {
    fn send(&mut self, req: &Req) -> RedisResult<Value> {
        let first = match self {
            SyncConn::Single(c) => req.cmd(false).query(c),
            SyncConn::Cluster(c) => req.cmd(false).query(&mut **c),
        };
        match first {
            Err(e) if no_script(&e) => match self {
                SyncConn::Single(c) => req.cmd(true).query(c),
                SyncConn::Cluster(c) => req.cmd(true).query(&mut **c),
            },
            r => r,
        }
    }
}

/// A Redis server or cluster, and a key prefix.
pub struct RedisEngine {
    link: Arc<Link>,
    layout: Layout,
    /// `host:port` for messages (never the URL, which may hold a password).
    addr: String,
    limits: Limits,
    /// On a cluster, each shard's part of each family counter as last read: what a shard that
    /// cannot be read (its master is down) counts as meanwhile.
    last_parts: std::sync::Mutex<HashMap<(&'static str, usize), u64>>,
    /// Sliding-window requests waiting for their key's batch (see [`RateBatches`]).
    rate_batches: Arc<RateBatches>,
}

/// The connection to Redis, shared with the tasks that run rate-limit batches.
struct Link {
    target: Target,
    /// `host:port` for messages.
    addr: String,
    /// The shared connection and its generation (so that only the failure of the current one
    /// drops it).
    conn: std::sync::Mutex<Option<(u64, AsyncConn)>>,
    generation: std::sync::atomic::AtomicU64,
    connecting: tokio::sync::Mutex<()>,
}

impl Link {
    fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    fn lock_conn(&self) -> std::sync::MutexGuard<'_, Option<(u64, AsyncConn)>> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The shared connection, its generation, and whether it was opened just now.
    async fn conn(&self) -> Result<(u64, AsyncConn, bool), StoreError> {
        if let Some((g, c)) = self.lock_conn().clone() {
            return Ok((g, c, false));
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some((g, c)) = self.lock_conn().clone() {
            return Ok((g, c, false));
        }
        let conn = match &self.target {
            Target::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(IO_TIMEOUT));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(AsyncConn::Single)
            }
            Target::Cluster(client) => client.get_async_connection().await.map(AsyncConn::Cluster),
        }
        .map_err(|e| classify(&e, &self.addr))?;
        let g = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.lock_conn() = Some((g, conn.clone()));
        Ok((g, conn, true))
    }

    /// Drops connection `g` if it is still the shared one (it failed). A cluster connection is
    /// kept: it reconnects to the nodes by itself, and the other masters still answer.
    fn forget(&self, g: u64) {
        if matches!(self.target, Target::Single(_)) {
            let mut conn = self.lock_conn();
            if conn.as_ref().is_some_and(|(cur, _)| *cur == g) {
                *conn = None;
            }
        }
    }

    /// Sends `reqs` (concurrently: they are pipelined on the one connection) and returns their
    /// answers in order. When `retry` (they only read, or may harmlessly count twice), a
    /// failure on a connection that was already open is tried once more on a new one: it may
    /// have died while idle (Redis restarted).
    async fn exchange(&self, reqs: &[Req], retry: bool) -> Result<Vec<Value>, StoreError> {
        self.exchange_some(reqs, &[], retry).await
    }

    /// Like [`RedisEngine::exchange`]; an `optional` request that fails answers `None`
    /// instead of failing the others (a cluster shard whose master is down).
    async fn exchange_some(
        &self,
        reqs: &[Req],
        optional: &[bool],
        retry: bool,
    ) -> Result<Vec<Value>, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let (g, conn, fresh) = self.conn().await?;
            let sends = reqs.iter().enumerate().map(|(i, r)| {
                let mut c = conn.clone();
                let optional = optional.get(i).copied().unwrap_or(false);
                async move {
                    match c.send(r).await {
                        Err(_) if optional => Ok(Value::Okay),
                        other => other,
                    }
                }
            });
            match futures_util::future::try_join_all(sends).await {
                Ok(values) => return Ok(values),
                Err(e) => {
                    let err = classify(&e, &self.addr);
                    if matches!(err, StoreError::Unavailable(_)) {
                        self.forget(g);
                        if retry && !fresh && tries == 1 && !self.is_cluster() {
                            continue;
                        }
                    }
                    return Err(err);
                }
            }
        }
    }
}

impl std::fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEngine")
            .field("addr", &self.addr)
            .field("shards", &self.layout.tags)
            .finish_non_exhaustive()
    }
}

impl RedisEngine {
    /// An engine for `url` whose keys start with `prefix`: `redis://[user:password@]host[:port][/db]`
    /// (or `rediss://` for TLS) for one Redis, `redis+cluster://host:port,host:port,…` (or
    /// `rediss+cluster://`) for a cluster, given by any of its nodes. The password comes from
    /// the URL, else from `STATUSLAB_REDIS_PASSWORD`. Nothing is connected yet: a Redis that is
    /// down now makes requests answer 503 until it is up, not the server fail to start.
    pub fn open(url: &str, prefix: &str) -> Result<RedisEngine, StoreError> {
        let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        RedisEngine::with_password(url, prefix, password.as_deref())
    }

    /// Like [`RedisEngine::open`], with the fallback password given.
    pub fn with_password(
        url: &str,
        prefix: &str,
        password: Option<&str>,
    ) -> Result<RedisEngine, StoreError> {
        let bad = |e: RedisError| StoreError::Engine(format!("invalid Redis URL: {e}"));
        let (urls, cluster) = split_url(url)?;
        let mut infos = Vec::with_capacity(urls.len());
        for u in &urls {
            let mut info = u.as_str().into_connection_info().map_err(bad)?;
            if info.redis_settings().password().is_none()
                && let Some(p) = password
            {
                let settings = info.redis_settings().clone().set_password(p);
                info = info.set_redis_settings(settings);
            }
            infos.push(info);
        }
        let addr = infos
            .iter()
            .map(|info| match info.addr() {
                ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
                ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} (TLS)"),
                ConnectionAddr::Unix(path) => path.display().to_string(),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        let (target, shards) = if cluster {
            let client = redis::cluster::ClusterClient::builder(infos)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(IO_TIMEOUT)
                .retries(2)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .build()
                .map_err(bad)?;
            (Target::Cluster(client), CLUSTER_SHARDS)
        } else {
            let info = infos.pop().expect("one URL");
            (Target::Single(redis::Client::open(info).map_err(bad)?), 1)
        };
        Ok(RedisEngine {
            link: Arc::new(Link {
                target,
                addr: addr.clone(),
                conn: std::sync::Mutex::new(None),
                generation: std::sync::atomic::AtomicU64::new(0),
                connecting: tokio::sync::Mutex::new(()),
            }),
            layout: Layout::new(prefix, shards),
            addr,
            limits: Limits::default(),
            last_parts: std::sync::Mutex::new(HashMap::new()),
            rate_batches: Arc::default(),
        })
    }

    /// Where the engine connects (`host:port`, comma-separated for a cluster), for logs.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether this is a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        self.link.is_cluster()
    }

    /// Checks that Redis answers (blocking).
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.sync_conn()?;
        conn.send(&Req::Cmd(redis::cmd("PING")))
            .map(drop)
            .map_err(|e| classify(&e, &self.addr))
    }

    fn sync_conn(&self) -> Result<SyncConn, StoreError> {
        let failed = |e: RedisError| classify(&e, &self.addr);
        match &self.link.target {
            Target::Single(client) => {
                let conn = client
                    .get_connection_with_timeout(CONNECT_TIMEOUT)
                    .map_err(failed)?;
                conn.set_read_timeout(Some(IO_TIMEOUT))
                    .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)))
                    .map_err(failed)?;
                Ok(SyncConn::Single(conn))
            }
            Target::Cluster(client) => Ok(SyncConn::Cluster(Box::new(
                client.get_connection().map_err(failed)?,
            ))),
        }
    }

    fn exchange_sync(&self, conn: &mut SyncConn, reqs: &[Req]) -> Result<Vec<Value>, StoreError> {
        reqs.iter()
            .map(|r| conn.send(r).map_err(|e| classify(&e, &self.addr)))
            .collect()
    }

    /// Fetches what `plan` reads.
    async fn fetch(&self, plan: &FetchPlan) -> Result<Snapshot, StoreError> {
        let answers = self
            .link
            .exchange_some(&plan.reqs, &plan.optional, true)
            .await?;
        self.apply_fetch(plan, answers)
    }

    /// Runs a transaction on the async connection.
    async fn run<R: Send>(
        &self,
        f: &mut (dyn FnMut(&mut dyn Tx) -> Result<R, StoreError> + Send),
        read_only: bool,
    ) -> Result<R, StoreError> {
        let mut d = Driver::new(read_only);
        loop {
            match d.step(self, &mut *f)? {
                Step::Done(r) => return r,
                Step::Fetch(plan) => d.snap = self.fetch(&plan).await?,
                Step::Commit(req, value) => {
                    let answer = self
                        .link
                        .exchange(std::slice::from_ref(&req), false)
                        .await?;
                    if committed(&answer[0])? {
                        return Ok(value);
                    }
                    if let Some(pause) = d.conflicted(&self.addr)? {
                        tokio::time::sleep(pause).await;
                    }
                    d.snap = self.fetch(&self.plan_fetch(&d.wants)).await?;
                }
            }
        }
    }

    /// Runs a transaction on a connection of its own, blocking.
    fn run_sync<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
        read_only: bool,
    ) -> Result<R, StoreError> {
        let mut conn = self.sync_conn()?;
        let mut d = Driver::new(read_only);
        loop {
            match d.step(self, &mut *f)? {
                Step::Done(r) => return r,
                Step::Fetch(plan) => {
                    let answers = self.exchange_sync(&mut conn, &plan.reqs)?;
                    d.snap = self.apply_fetch(&plan, answers)?;
                }
                Step::Commit(req, value) => {
                    let answer = self.exchange_sync(&mut conn, std::slice::from_ref(&req))?;
                    if committed(&answer[0])? {
                        return Ok(value);
                    }
                    if let Some(pause) = d.conflicted(&self.addr)? {
                        std::thread::sleep(pause);
                    }
                    let plan = self.plan_fetch(&d.wants);
                    let answers = self.exchange_sync(&mut conn, &plan.reqs)?;
                    d.snap = self.apply_fetch(&plan, answers)?;
                }
            }
        }
    }

    /// The limit a family counter is held to.
    fn limit_of(&self, family: &str) -> u64 {
        if family == ops::BYTES_USED {
            self.limits.max_store_bytes
        } else {
            self.limits.max_keys
        }
    }

    /// The commands that fetch `wants`: per shard one `MGET` (values only) or one `read.lua`
    /// (existence, scans), and one `MGET` of every shard's part of the family counters.
    fn plan_fetch(&self, wants: &BTreeSet<Want>) -> FetchPlan {
        let l = &self.layout;
        let mut per: BTreeMap<usize, (Vec<Want>, Vec<ScanKey>)> = BTreeMap::new();
        let mut families = Vec::new();
        for w in wants {
            match w {
                Want::Value(t, k) | Want::Exists(t, k) => {
                    per.entry(l.shard(*t, k)).or_default().0.push(w.clone());
                }
                Want::Counter(f) => families.push(*f),
                Want::Scan(t, after, limit) => {
                    for s in l.scan_shards(*t, after.as_deref()) {
                        per.entry(s)
                            .or_default()
                            .1
                            .push((*t, after.clone(), *limit));
                    }
                }
            }
        }
        let mut plan = FetchPlan::default();
        for (shard, (points, scans)) in per {
            let values_only =
                scans.is_empty() && points.iter().all(|w| matches!(w, Want::Value(..)));
            let key = |w: &Want| match w {
                Want::Value(t, k) | Want::Exists(t, k) => l.value_key(shard, *t, k),
                _ => unreachable!("only point reads here"),
            };
            if values_only {
                let mut c = redis::cmd("MGET");
                for w in &points {
                    c.arg(key(w));
                }
                plan.reqs.push(Req::Cmd(c));
            } else {
                let mut keys: Vec<Vec<u8>> = points.iter().map(key).collect();
                let mut args: Vec<Vec<u8>> = vec![points.len().to_string().into_bytes()];
                for w in &points {
                    args.push(if matches!(w, Want::Exists(..)) {
                        b"e".to_vec()
                    } else {
                        b"v".to_vec()
                    });
                }
                for (t, after, limit) in &scans {
                    keys.push(l.index_key(shard, *t).into_bytes());
                    args.push(l.value_key(shard, *t, ""));
                    args.push(lex_min(after.as_deref()));
                    // Buffered deletes need not be allowed for: scans run read-only.
                    args.push(limit.to_string().into_bytes());
                }
                plan.reqs.push(Req::Script {
                    lua: &READ,
                    keys,
                    args,
                });
            }
            plan.parts.push(Part::Shard { points, scans });
        }
        plan.optional = vec![false; plan.reqs.len()];
        if !families.is_empty() {
            // One MGET per shard: on a cluster, a shard whose master is down then counts as
            // last read, and the others still answer.
            for s in 0..l.shards() {
                let mut c = redis::cmd("MGET");
                for f in &families {
                    c.arg(l.value_key(s, Table::Counters, f));
                }
                plan.reqs.push(Req::Cmd(c));
                plan.parts.push(Part::Counters(s, families.clone()));
                plan.optional.push(l.shards() > 1);
            }
        }
        plan
    }

    /// The snapshot the answers to `plan` make.
    fn apply_fetch(&self, plan: &FetchPlan, answers: Vec<Value>) -> Result<Snapshot, StoreError> {
        let bad = |what: &str| {
            StoreError::Engine(format!(
                "Redis at {}: unexpected answer to {what}",
                self.addr
            ))
        };
        let mut snap = Snapshot::default();
        let mut scanned: HashMap<ScanKey, Vec<(String, Vec<u8>)>> = HashMap::new();
        for (part, answer) in plan.parts.iter().zip(answers) {
            if let (Part::Counters(shard, families), Value::Okay) = (part, &answer) {
                // That shard could not be read: its parts as last read.
                let last = self
                    .last_parts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for f in families {
                    let parts = snap
                        .counters
                        .entry(*f)
                        .or_insert_with(|| vec![0; self.layout.shards()]);
                    parts[*shard] = last.get(&(*f, *shard)).copied().unwrap_or(0);
                }
                continue;
            }
            let Value::Array(items) = answer else {
                return Err(bad("a read"));
            };
            match part {
                Part::Counters(shard, families) => {
                    if items.len() != families.len() {
                        return Err(bad("the counters' MGET"));
                    }
                    let mut last = self
                        .last_parts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (f, v) in families.iter().zip(items) {
                        let n = as_u64(&v);
                        let parts = snap
                            .counters
                            .entry(*f)
                            .or_insert_with(|| vec![0; self.layout.shards()]);
                        parts[*shard] = n;
                        if self.layout.shards() > 1 {
                            last.insert((*f, *shard), n);
                        }
                    }
                }
                Part::Shard { points, scans } => {
                    if items.len() != points.len() + scans.len() {
                        return Err(bad("a shard's reads"));
                    }
                    let mut items = items.into_iter();
                    for (w, v) in points.iter().zip(items.by_ref()) {
                        match w {
                            Want::Value(t, k) => {
                                snap.values.insert((*t, k.clone()), as_bytes(v));
                            }
                            Want::Exists(t, k) => {
                                snap.exists
                                    .insert((*t, k.clone()), matches!(v, Value::Int(1)));
                            }
                            _ => {}
                        }
                    }
                    for (scan, v) in scans.iter().zip(items) {
                        let Value::Array(flat) = v else {
                            return Err(bad("a scan"));
                        };
                        let rows = scanned.entry(scan.clone()).or_default();
                        let mut flat = flat.into_iter();
                        while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                            if let (Some(k), Some(v)) = (as_bytes(k), as_bytes(v))
                                && let Ok(k) = String::from_utf8(k)
                            {
                                rows.push((k, v));
                            }
                        }
                    }
                }
            }
        }
        for (scan, mut rows) in scanned {
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            if scan.0 == Table::Counters && self.layout.shards() > 1 {
                // Each shard holds its part of a family counter: the table shows their sum.
                let mut merged: Vec<(String, Vec<u8>)> = Vec::with_capacity(rows.len());
                for (k, v) in rows {
                    match merged.last_mut() {
                        Some((last, sum))
                            if *last == k && family(Table::Counters, &k).is_some() =>
                        {
                            let total = parse_u64(sum).saturating_add(parse_u64(&v));
                            *sum = total.to_string().into_bytes();
                        }
                        _ => merged.push((k, v)),
                    }
                }
                rows = merged;
            }
            rows.truncate(scan.2);
            snap.scans.insert(scan, rows);
        }
        Ok(snap)
    }

    /// The commit script for a run's writes, or `None` when it wrote nothing (what it read
    /// came from one atomic fetch, so it is a consistent answer as it stands).
    fn plan_commit(
        &self,
        used: &BTreeSet<Want>,
        snap: &Snapshot,
        writes: &BTreeMap<(Table, String), Option<Vec<u8>>>,
    ) -> Result<Option<Req>, StoreError> {
        let l = &self.layout;
        let mut counters = Vec::new();
        let mut plain = Vec::new();
        for ((t, k), v) in writes {
            match family(*t, k) {
                Some(f) => {
                    let parts = snap.counters.get(f).ok_or_else(|| {
                        StoreError::Engine(format!("Redis: counter {f} written unread"))
                    })?;
                    let seen: u64 = parts.iter().sum();
                    let now = v.as_deref().map_or(0, parse_u64);
                    counters.push((f, parts, seen, i128::from(now) - i128::from(seen)));
                }
                None => plain.push((*t, k, v)),
            }
        }
        if plain.is_empty() && counters.iter().all(|c| c.3 == 0) {
            return Ok(None);
        }
        // The one shard every key of the transaction is in.
        let mut shards = used
            .iter()
            .filter_map(|w| match w {
                Want::Value(t, k) | Want::Exists(t, k) => Some(l.shard(*t, k)),
                _ => None,
            })
            .chain(plain.iter().map(|(t, k, _)| l.shard(*t, k)));
        let shard = shards.next().unwrap_or(0);
        if shards.any(|s| s != shard) {
            return Err(StoreError::Engine(
                "Redis: a transaction spans shards (keys of several entities)".to_owned(),
            ));
        }
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut checks: Vec<Vec<u8>> = Vec::new();
        for w in used {
            match w {
                Want::Value(t, k) => {
                    keys.push(l.value_key(shard, *t, k));
                    checks.push(
                        match snap.values.get(&(*t, k.clone())).and_then(Option::as_ref) {
                            Some(v) => {
                                let mut e = Vec::with_capacity(v.len() + 1);
                                e.push(b'v');
                                e.extend_from_slice(v);
                                e
                            }
                            None => b"n".to_vec(),
                        },
                    );
                }
                Want::Exists(t, k) => {
                    keys.push(l.value_key(shard, *t, k));
                    let there = snap.exists.get(&(*t, k.clone())).copied().unwrap_or(false);
                    checks.push(if there { b"x".to_vec() } else { b"n".to_vec() });
                }
                _ => {}
            }
        }
        let mut args: Vec<Vec<u8>> = vec![
            checks.len().to_string().into_bytes(),
            plain.len().to_string().into_bytes(),
            counters.len().to_string().into_bytes(),
        ];
        args.extend(checks);
        for (t, k, v) in &plain {
            keys.push(l.value_key(shard, *t, k));
            keys.push(l.index_key(shard, *t).into_bytes());
            args.push(k.as_bytes().to_vec());
            match v {
                Some(v) => {
                    args.push(b"s".to_vec());
                    args.push(v.clone());
                }
                None => {
                    args.push(b"d".to_vec());
                    args.push(Vec::new());
                }
            }
        }
        for (f, parts, seen, delta) in &counters {
            keys.push(l.value_key(shard, Table::Counters, f));
            let others = seen - parts.get(shard).copied().unwrap_or(0);
            args.push(f.as_bytes().to_vec());
            args.push(delta.to_string().into_bytes());
            args.push(self.limit_of(f).to_string().into_bytes());
            args.push(seen.to_string().into_bytes());
            args.push(others.to_string().into_bytes());
        }
        if !counters.is_empty() {
            keys.push(l.index_key(shard, Table::Counters).into_bytes());
        }
        Ok(Some(Req::Script {
            lua: &COMMIT,
            keys,
            args,
        }))
    }

    /// The sliding-window script's invocation for `query` (one request; a batch sets its `now`
    /// and size with [`set_batch`]); `others`: the family's keys in the other shards, if known.
    fn rate_req(&self, query: &RateQuery, others: Option<u64>) -> Req {
        let l = &self.layout;
        let family = ops::rate_family(&query.key);
        let fail_open = family == ops::SERVER_RATE_COUNT;
        let width = rate::bucket_width(query.limit, query.period_ms());
        let shard = l.shard(Table::Rates, &query.key);
        let others = match (l.shards(), others) {
            (1, _) => "0".to_owned(),
            (_, Some(n)) => n.to_string(),
            (_, None) => "?".to_owned(),
        };
        let args = [
            query.key.clone(),
            family.to_owned(),
            query.now_ms.to_string(),
            query.limit.max(1).to_string(),
            query.period_ms().to_string(),
            query.max_keys.to_string(),
            u8::from(fail_open).to_string(),
            width.to_string(),
            others,
            "1".to_owned(),
        ];
        Req::Script {
            lua: &RATE,
            keys: vec![
                l.value_key(shard, Table::Rates, &query.key),
                l.index_key(shard, Table::Rates).into_bytes(),
                l.value_key(shard, Table::Counters, family),
                l.index_key(shard, Table::Counters).into_bytes(),
            ],
            args: args.into_iter().map(String::into_bytes).collect(),
        }
    }

    /// The sum of `family`'s parts in every shard but `shard`.
    async fn others(&self, family: &'static str, shard: usize) -> Result<u64, StoreError> {
        let snap = self
            .fetch(&self.plan_fetch(&BTreeSet::from([Want::Counter(family)])))
            .await?;
        let parts = snap.counters.get(family).cloned().unwrap_or_default();
        Ok(parts
            .iter()
            .enumerate()
            .filter(|(s, _)| *s != shard)
            .map(|(_, n)| n)
            .sum())
    }

    /// One sliding-window request: with the others on its key that arrive meanwhile, in one
    /// script call (see [`RateBatches`]).
    async fn sliding_window(&self, query: &RateQuery) -> Result<RateDecision, StoreError> {
        let key = (
            query.key.clone(),
            query.limit,
            query.period_ms(),
            query.max_keys,
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiter = Waiter {
            now_ms: query.now_ms,
            answer: tx,
        };
        if let Some(template) = self
            .rate_batches
            .join(&key, waiter, || self.rate_req(query, None))
        {
            let (link, batches) = (Arc::clone(&self.link), Arc::clone(&self.rate_batches));
            tokio::spawn(batches.run(link, key, template));
        }
        let (answer, i) = rx.await.unwrap_or_else(|_| {
            Err(StoreError::Engine(format!(
                "Redis at {}: a rate-limit batch ended without an answer",
                self.addr
            )))
        })?;
        let (answer, i) = if answer.status == -2 {
            // A new key on a cluster: the limit needs the other shards' count. Rare (once per
            // key), so alone.
            let shard = self.layout.shard(Table::Rates, &query.key);
            let others = self.others(ops::rate_family(&query.key), shard).await?;
            let reply = self
                .link
                .exchange(&[self.rate_req(query, Some(others))], true)
                .await?;
            (BatchAnswer::decode(reply, &self.addr)?, 0)
        } else {
            (answer, i)
        };
        if answer.status < 0 {
            return Err(StoreError::Full {
                family: "rate-limit keys",
                limit: query.max_keys,
            });
        }
        if answer.status == 2 {
            ops::warn_server_keys_full(query.max_keys, query.now_ms);
        }
        Ok(answer.decision(i))
    }
}

/// Sliding-window requests on one rate-limit key batched: the first starts a task that sends
/// the key's script with every request waiting for it (`n` of them, at the latest of their
/// `now`s), answers each its share, and goes on while more have arrived meanwhile; the queue
/// ends with the task. A batch of n decides as n requests at that `now` one after another
/// (`rate_limit.lua`), so a hot key costs Redis one script call per round trip, not one per
/// request, and every request still waits at most for the call in flight and its own.
/// Requests that arrive at once are concurrent: in which order a batch admits them is free.
#[derive(Default)]
struct RateBatches {
    queues: std::sync::Mutex<HashMap<BatchKey, Vec<Waiter>>>,
}

/// What a batch's requests share: the key, the limit, the period (ms), `--max-keys`.
type BatchKey = (String, u32, u64, u64);

/// A request waiting for its batch: its `now`, and where its answer (with its place in the
/// batch) goes.
struct Waiter {
    now_ms: u64,
    answer: tokio::sync::oneshot::Sender<Result<(BatchAnswer, usize), StoreError>>,
}

impl RateBatches {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BatchKey, Vec<Waiter>>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `waiter` on `key`; if no task serves the key, returns the script invocation
    /// (`template()`) a new task must run.
    fn join(&self, key: &BatchKey, waiter: Waiter, template: impl FnOnce() -> Req) -> Option<Req> {
        let mut queues = self.lock();
        if let Some(queue) = queues.get_mut(key) {
            queue.push(waiter);
            return None;
        }
        queues.insert(key.clone(), vec![waiter]);
        Some(template())
    }

    /// The task of `key`: sends its waiting requests as one batch until none are waiting.
    async fn run(self: Arc<Self>, link: Arc<Link>, key: BatchKey, mut req: Req) {
        // The queue ends when the task finds it empty, under the same lock that `join` takes,
        // so a request never joins a queue that no task serves. Should the task end otherwise
        // (a panic), the guard ends the queue: requests still in it learn so (their sender
        // drops) and later ones start a new task.
        struct Unfinished<'a>(&'a RateBatches, &'a BatchKey);
        impl Drop for Unfinished<'_> {
            fn drop(&mut self) {
                self.0.lock().remove(self.1);
            }
        }
        let guard = Unfinished(&self, &key);
        loop {
            let batch = {
                let mut queues = self.lock();
                match queues.get_mut(&key) {
                    Some(queue) if !queue.is_empty() => std::mem::take(queue),
                    _ => {
                        queues.remove(&key);
                        drop(queues);
                        std::mem::forget(guard);
                        return;
                    }
                }
            };
            let now = batch.iter().map(|w| w.now_ms).max().unwrap_or(0);
            set_batch(&mut req, now, batch.len());
            let answer = match link.exchange(std::slice::from_ref(&req), true).await {
                Ok(reply) => BatchAnswer::decode(reply, &link.addr),
                Err(e) => Err(e),
            };
            for (i, w) in batch.into_iter().enumerate() {
                // A request that stopped waiting (its client left) needs no answer.
                let _ = w.answer.send(answer.clone().map(|a| (a, i)));
            }
        }
    }
}

/// Sets a sliding-window invocation's `now` (ARGV 3) and batch size (ARGV 10).
fn set_batch(req: &mut Req, now_ms: u64, n: usize) {
    if let Req::Script { args, .. } = req {
        args[2] = now_ms.to_string().into_bytes();
        args[9] = n.to_string().into_bytes();
    }
}

/// `rate_limit.lua`'s answer for a batch.
#[derive(Debug, Clone, Copy)]
struct BatchAnswer {
    /// 1 decided, 2 every request passed unrecorded, -1 a new key past `--max-keys`, -2 the
    /// other shards' count is needed.
    status: i64,
    /// The first `admitted` requests pass.
    admitted: u64,
    /// What the first passing request has left; the i-th, `remaining - i`.
    remaining: u64,
    reset_secs: u64,
    refused_reset_secs: u64,
    refused_retry_secs: u64,
}

impl BatchAnswer {
    fn decode(mut reply: Vec<Value>, addr: &str) -> Result<BatchAnswer, StoreError> {
        let (status, admitted, remaining, reset_secs, refused_reset_secs, refused_retry_secs) =
            redis::from_redis_value(reply.remove(0)).map_err(|e| {
                StoreError::Engine(format!("Redis at {addr}: rate-limit script: {e}"))
            })?;
        Ok(BatchAnswer {
            status,
            admitted,
            remaining,
            reset_secs,
            refused_reset_secs,
            refused_retry_secs,
        })
    }

    /// The decision for the `i`-th request of the batch.
    fn decision(&self, i: usize) -> RateDecision {
        let i = i as u64;
        if self.status == 2 {
            // Nothing recorded: each request saw the same empty window.
            return self.passed(self.remaining);
        }
        if i < self.admitted {
            return self.passed(self.remaining - i);
        }
        RateDecision {
            allowed: false,
            remaining: 0,
            reset_secs: self.refused_reset_secs,
            retry_after_secs: self.refused_retry_secs,
        }
    }

    fn passed(&self, remaining: u64) -> RateDecision {
        RateDecision {
            allowed: true,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_secs: self.reset_secs,
            retry_after_secs: 0,
        }
    }
}

fn committed(v: &Value) -> Result<bool, StoreError> {
    match v {
        Value::Int(n) => Ok(*n == 1),
        other => Err(StoreError::Engine(format!(
            "Redis: unexpected answer to a commit: {other:?}"
        ))),
    }
}

fn as_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn as_u64(v: &Value) -> u64 {
    match v {
        Value::BulkString(b) => parse_u64(b),
        Value::Int(n) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

fn parse_u64(raw: &[u8]) -> u64 {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

/// `redis://…` or `redis+cluster://a,b,…`: the node URLs and whether it is a cluster.
fn split_url(url: &str) -> Result<(Vec<String>, bool), StoreError> {
    for (scheme, plain) in [
        ("redis+cluster://", "redis://"),
        ("rediss+cluster://", "rediss://"),
    ] {
        if let Some(rest) = url.strip_prefix(scheme) {
            // Credentials, if any, are in front of the first node and apply to all.
            let (cred, nodes) = match rest.rsplit_once('@') {
                Some((c, n)) => (format!("{c}@"), n),
                None => (String::new(), rest),
            };
            let urls: Vec<String> = nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| format!("{plain}{cred}{n}"))
                .collect();
            if urls.is_empty() {
                return Err(StoreError::Engine(format!(
                    "invalid Redis URL: {scheme} needs at least one host:port"
                )));
            }
            return Ok((urls, true));
        }
    }
    Ok((vec![url.to_owned()], false))
}

impl Engine for RedisEngine {
    const KIND: &'static str = "redis";
    const BLOCKING: bool = true;

    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.run_sync(f, false)
    }

    fn read<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.run_sync(f, true)
    }

    fn set_limits(&mut self, limits: &Limits) {
        self.limits = *limits;
    }

    fn asynchronous(&self) -> Option<&dyn AsyncEngine> {
        Some(self)
    }

    fn shard(&self, table: Table, key: &str) -> usize {
        self.layout.shard(table, key)
    }
}

#[async_trait::async_trait]
impl AsyncEngine for RedisEngine {
    async fn transact_any(&self, f: &mut AnyTx, read_only: bool) -> AnyResult {
        self.run(f, read_only).await
    }

    /// The sliding window runs as one Lua script (`rate_limit.lua`): one round trip per
    /// request, atomic, never rerun on conflict (a new key on a cluster takes one more, for
    /// the other shards' count of its family). GCRA runs as any other transaction.
    async fn rate_limit(&self, query: &RateQuery) -> Result<RateDecision, StoreError> {
        if query.algorithm == RateAlgorithm::SlidingWindow {
            return self.sliding_window(query).await;
        }
        self.run(&mut |tx| ops::rate_limit(tx, query), false).await
    }

    /// One fetch of the table's indexes (one `read.lua` per shard), outside any transaction:
    /// nothing a writer does can make it fail or run again.
    async fn peek(
        &self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let scan = (table, after.map(str::to_owned), limit);
        let plan = self.plan_fetch(&BTreeSet::from([Want::Scan(scan.0, scan.1.clone(), limit)]));
        let mut snap = self.fetch(&plan).await?;
        Ok(snap.scans.remove(&scan).unwrap_or_default())
    }
}

/// A scan: table, after (exclusive), at most how many.
type ScanKey = (Table, Option<String>, usize);

/// Something a transaction reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Want {
    /// A value.
    Value(Table, String),
    /// Only whether a key exists.
    Exists(Table, String),
    /// A family counter's total (every shard's part).
    Counter(&'static str),
    /// Entries of a table's index (read-only transactions).
    Scan(Table, Option<String>, usize),
}

/// What one fetch read.
#[derive(Debug, Default)]
struct Snapshot {
    values: HashMap<(Table, String), Option<Vec<u8>>>,
    exists: HashMap<(Table, String), bool>,
    /// Per family, each shard's part.
    counters: HashMap<&'static str, Vec<u64>>,
    scans: HashMap<ScanKey, Vec<(String, Vec<u8>)>>,
}

/// The commands of one fetch and how to read their answers.
#[derive(Default)]
struct FetchPlan {
    reqs: Vec<Req>,
    parts: Vec<Part>,
    /// Requests whose failure is tolerated (see [`RedisEngine::exchange_some`]).
    optional: Vec<bool>,
}

enum Part {
    /// One shard's point reads and scans.
    Shard {
        points: Vec<Want>,
        scans: Vec<ScanKey>,
    },
    /// One shard's part of these family counters.
    Counters(usize, Vec<&'static str>),
}

/// A transaction's progress: what it wants read, what was read, how often it conflicted.
struct Driver {
    wants: BTreeSet<Want>,
    snap: Snapshot,
    read_only: bool,
    rounds: u32,
    attempts: u32,
}

enum Step<R> {
    Fetch(FetchPlan),
    Commit(Req, R),
    Done(Result<R, StoreError>),
}

impl Driver {
    fn new(read_only: bool) -> Driver {
        Driver {
            wants: BTreeSet::new(),
            snap: Snapshot::default(),
            read_only,
            rounds: 0,
            attempts: 0,
        }
    }

    /// Runs `f` once on the snapshot: what to do next.
    fn step<R>(
        &mut self,
        engine: &RedisEngine,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<Step<R>, StoreError> {
        let mut tx = RedisTx {
            snap: &self.snap,
            journal: Journal::new(self.read_only),
            read_only: self.read_only,
            missed: Vec::new(),
            used: BTreeSet::new(),
        };
        let result = f(&mut tx);
        let RedisTx {
            journal,
            missed,
            used,
            ..
        } = tx;
        if !missed.is_empty() {
            // Whatever the run answered, it answered without all it wanted to read.
            self.rounds += 1;
            if self.rounds > MAX_ROUNDS {
                return Err(StoreError::Engine(
                    "Redis: a transaction kept reading new keys".to_owned(),
                ));
            }
            self.wants.extend(missed);
            return Ok(Step::Fetch(engine.plan_fetch(&self.wants)));
        }
        let value = match result {
            Ok(v) => v,
            Err(e) => return Ok(Step::Done(Err(e))),
        };
        if self.read_only {
            return Ok(Step::Done(Ok(value)));
        }
        Ok(
            match engine.plan_commit(&used, &self.snap, &journal.writes)? {
                Some(req) => Step::Commit(req, value),
                None => Step::Done(Ok(value)),
            },
        )
    }

    /// A commit found something changed: how long to pause before running again, or an
    /// error once it kept conflicting.
    fn conflicted(&mut self, addr: &str) -> Result<Option<Duration>, StoreError> {
        self.attempts += 1;
        if self.attempts >= MAX_ATTEMPTS {
            return Err(StoreError::Unavailable(format!(
                "Redis at {addr}: a transaction kept conflicting with others ({} attempts)",
                self.attempts
            )));
        }
        Ok((self.attempts > 2).then(|| {
            let cap = u64::from(self.attempts.min(20));
            Duration::from_micros(fastrand::u64(0..=cap * 500))
        }))
    }
}

/// One run of a transaction on a snapshot.
struct RedisTx<'a> {
    snap: &'a Snapshot,
    journal: Journal,
    read_only: bool,
    /// Reads the snapshot could not answer (the run's result is then discarded).
    missed: Vec<Want>,
    /// Reads the run relied on: checked unchanged at commit (counters excepted).
    used: BTreeSet<Want>,
}

impl RedisTx<'_> {
    /// Records a read to fetch, with the keys that usually go with it, and stops the run.
    fn miss(&mut self, want: Want) -> StoreError {
        if let Want::Value(t, k) = &want {
            let ro = self.read_only;
            let v = |t: Table| Want::Value(t, k.clone());
            let c = Want::Counter;
            match t {
                Table::Resources | Table::Bodies | Table::Tombstones => {
                    self.missed
                        .extend([v(Table::Resources), v(Table::Tombstones)]);
                    if ro {
                        self.missed.push(v(Table::Bodies));
                    } else {
                        self.missed
                            .extend([c(ops::RESOURCE_COUNT), c(ops::BYTES_USED)]);
                    }
                }
                Table::Jobs if !ro => self.missed.extend([c(ops::JOB_COUNT), c(ops::BYTES_USED)]),
                Table::Sequences if !ro => self.missed.push(c(ops::SEQUENCE_COUNT)),
                Table::Rates if !ro => self.missed.push(c(ops::rate_family(k))),
                _ => {}
            }
        }
        self.missed.push(want);
        StoreError::Engine(NOT_FETCHED.to_owned())
    }
}

impl Tx for RedisTx<'_> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(w) = self.journal.pending(table, key) {
            return Ok(w.clone());
        }
        if let Some(f) = family(table, key) {
            return match self.snap.counters.get(f) {
                Some(parts) => {
                    self.used.insert(Want::Counter(f));
                    Ok(Some(parts.iter().sum::<u64>().to_string().into_bytes()))
                }
                None => Err(self.miss(Want::Counter(f))),
            };
        }
        let want = Want::Value(table, key.to_owned());
        match self.snap.values.get(&(table, key.to_owned())) {
            Some(v) => {
                let v = v.clone();
                self.used.insert(want);
                Ok(v)
            }
            None => Err(self.miss(want)),
        }
    }

    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        if let Some(f) = family(table, key)
            && !self.snap.counters.contains_key(f)
        {
            // A family counter's write becomes a delta against what was read.
            return Err(self.miss(Want::Counter(f)));
        }
        self.journal.put(table, key, value)
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        let existed = match self.journal.pending(table, key) {
            Some(w) => w.is_some(),
            None => {
                let k = (table, key.to_owned());
                if let Some(v) = self.snap.values.get(&k) {
                    let there = v.is_some();
                    self.used.insert(Want::Value(table, key.to_owned()));
                    there
                } else if let Some(there) = self.snap.exists.get(&k).copied() {
                    self.used.insert(Want::Exists(table, key.to_owned()));
                    there
                } else {
                    return Err(self.miss(Want::Exists(table, key.to_owned())));
                }
            }
        };
        self.journal.delete(table, key)?;
        Ok(existed)
    }

    fn remove(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        // Blind: nothing to read.
        self.journal.delete(table, key)
    }

    fn scan(
        &mut self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if !self.read_only {
            return Err(StoreError::Engine(
                "Redis: scans run in read-only transactions only".to_owned(),
            ));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let scan = (table, after.map(str::to_owned), limit);
        match self.snap.scans.get(&scan) {
            Some(rows) => Ok(rows.clone()),
            None => Err(self.miss(Want::Scan(scan.0, scan.1, limit))),
        }
    }
}

/// The family counters (the values of `ops`'s `*_COUNT` and `BYTES_USED` keys in
/// [`Table::Counters`]): sharded, and kept out of the conflict set.
const FAMILIES: [&str; 6] = [
    ops::RESOURCE_COUNT,
    ops::JOB_COUNT,
    ops::SEQUENCE_COUNT,
    ops::RATE_COUNT,
    ops::SERVER_RATE_COUNT,
    ops::BYTES_USED,
];

fn family(table: Table, key: &str) -> Option<&'static str> {
    if table != Table::Counters {
        return None;
    }
    FAMILIES.iter().find(|f| **f == key).copied()
}

/// Where keys live: one hash tag per shard.
#[derive(Debug)]
struct Layout {
    /// Each shard's hash tag, braces included.
    tags: Vec<String>,
}

impl Layout {
    fn new(prefix: &str, shards: usize) -> Layout {
        if shards <= 1 || (prefix.contains('{') && prefix.contains('}')) {
            return Layout {
                tags: vec![namespace(prefix)],
            };
        }
        let span = 16384 / shards;
        let tags = (0..shards)
            .map(|k| {
                (0u32..)
                    .map(|j| format!("{prefix}:{k}.{j}"))
                    .find(|t| usize::from(slot(t.as_bytes())) / span == k)
                    .map(|t| format!("{{{t}}}"))
                    .expect("some tag hashes into every range")
            })
            .collect();
        Layout { tags }
    }

    fn shards(&self) -> usize {
        self.tags.len()
    }

    /// The shard of `key` in `table`: its entity's.
    fn shard(&self, table: Table, key: &str) -> usize {
        if self.tags.len() == 1 {
            return 0;
        }
        let (kind, entity): (u8, &str) = match table {
            Table::Resources | Table::Bodies | Table::Tombstones => (b'r', key),
            Table::Jobs => (b'j', key),
            Table::Sequences => (b's', key),
            // `{sequence key}\0{number}`: the sequence's.
            Table::Attempts => (b's', key.rsplit_once('\0').map_or(key, |(k, _)| k)),
            Table::Rates => (b'q', key),
            Table::Counters => (b'c', key),
        };
        // FNV-1a: the same on every instance and every build.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in std::iter::once(kind).chain(entity.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h % self.tags.len() as u64) as usize
    }

    /// The shards a scan of `table` after `after` visits: a sequence's attempts are all in the
    /// sequence's shard (what `ops::sequence` scans for), any other scan visits every shard.
    fn scan_shards(&self, table: Table, after: Option<&str>) -> Vec<usize> {
        match (table, after) {
            (Table::Attempts, Some(a)) if a.contains('\0') => vec![self.shard(table, a)],
            _ => (0..self.shards()).collect(),
        }
    }

    fn value_key(&self, shard: usize, table: Table, key: &str) -> Vec<u8> {
        let tag = &self.tags[shard];
        let mut k = Vec::with_capacity(tag.len() + table.name().len() + key.len() + 2);
        k.extend_from_slice(tag.as_bytes());
        k.push(b':');
        k.extend_from_slice(table.name().as_bytes());
        k.push(b':');
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn index_key(&self, shard: usize, table: Table) -> String {
        format!("{}:index:{}", self.tags[shard], table.name())
    }
}

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag, or of the whole key.
fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % 16384
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The `ZRANGEBYLEX` lower bound for keys after `after` (exclusive), or from the start.
fn lex_min(after: Option<&str>) -> Vec<u8> {
    match after {
        Some(a) => {
            let mut m = Vec::with_capacity(a.len() + 1);
            m.push(b'(');
            m.extend_from_slice(a.as_bytes());
            m
        }
        None => b"-".to_vec(),
    }
}

/// The hash-tagged key prefix: `{prefix}`, unless the prefix already holds a hash tag.
fn namespace(prefix: &str) -> String {
    if prefix.contains('{') && prefix.contains('}') {
        prefix.to_owned()
    } else {
        format!("{{{prefix}}}")
    }
}

/// Whether an error means Redis cannot be used right now (503) rather than a fault (500).
fn classify(e: &RedisError, addr: &str) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    let transient = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::AuthenticationFailed
                | ErrorKind::Io
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::NoPerm
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                )
        );
    if transient {
        let why = if e.is_connection_refusal() {
            "connection refused".to_owned()
        } else if e.is_timeout() {
            "timed out".to_owned()
        } else {
            e.to_string()
        };
        StoreError::Unavailable(format!("Redis at {addr}: {why}"))
    } else {
        StoreError::Engine(format!("Redis at {addr}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_redis_keeps_every_key_under_one_hash_tag() {
        assert_eq!(namespace("statuslab"), "{statuslab}");
        assert_eq!(namespace("app:{x}"), "app:{x}");
        let l = Layout::new("statuslab", 1);
        assert_eq!(l.shard(Table::Resources, "a"), 0);
        assert_eq!(
            l.value_key(0, Table::Resources, "a:b"),
            b"{statuslab}:resources:a:b"
        );
        assert_eq!(l.index_key(0, Table::Jobs), "{statuslab}:index:jobs");
        // A prefix with a hash tag of its own keeps everything in its slot, even on a cluster.
        assert_eq!(Layout::new("app:{x}", CLUSTER_SHARDS).shards(), 1);
    }

    #[test]
    fn cluster_shards_spread_evenly_over_the_slots_and_keep_entities_together() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        let l = Layout::new("statuslab", CLUSTER_SHARDS);
        assert_eq!(l.shards(), CLUSTER_SHARDS);
        let span = 16384 / CLUSTER_SHARDS;
        for (k, tag) in l.tags.iter().enumerate() {
            assert_eq!(usize::from(slot(tag.as_bytes())) / span, k, "{tag}");
            // Every key of the shard is in the tag's slot.
            let key = l.value_key(k, Table::Attempts, "x}{y\u{0}1");
            assert_eq!(slot(&key), slot(tag.as_bytes()));
        }
        // A resource's keys, a sequence's attempts: one shard each.
        let s = l.shard(Table::Resources, "r");
        assert_eq!(l.shard(Table::Bodies, "r"), s);
        assert_eq!(l.shard(Table::Tombstones, "r"), s);
        let q = l.shard(Table::Sequences, "a\0b");
        assert_eq!(l.shard(Table::Attempts, &ops::attempt_key("a\0b", 7)), q);
        assert_eq!(l.scan_shards(Table::Attempts, Some("a\0b\0")), vec![q]);
        assert_eq!(l.scan_shards(Table::Resources, None).len(), CLUSTER_SHARDS);
        // Many names use every shard.
        let used: BTreeSet<usize> = (0..1000)
            .map(|i| l.shard(Table::Resources, &format!("n{i}")))
            .collect();
        assert_eq!(used.len(), CLUSTER_SHARDS);
    }

    #[test]
    fn cluster_urls_name_every_node() {
        let (urls, cluster) = split_url("redis+cluster://:pw@a:1,b:2").unwrap();
        assert!(cluster);
        assert_eq!(urls, ["redis://:pw@a:1", "redis://:pw@b:2"]);
        let (urls, cluster) = split_url("rediss+cluster://a:1").unwrap();
        assert!(cluster);
        assert_eq!(urls, ["rediss://a:1"]);
        assert_eq!(
            split_url("redis://a:1/2").unwrap(),
            (vec!["redis://a:1/2".to_owned()], false)
        );
        assert!(split_url("redis+cluster://").is_err());
        let e = RedisEngine::with_password("redis+cluster://127.0.0.1:1,127.0.0.1:2", "p", None)
            .unwrap();
        assert!(e.is_cluster());
        assert_eq!(e.addr(), "127.0.0.1:1,127.0.0.1:2");
    }

    #[test]
    fn password_comes_from_the_url_first() {
        let e =
            RedisEngine::with_password("redis://:secret@127.0.0.1:1/2", "p", Some("env")).unwrap();
        let Target::Single(client) = &e.link.target else {
            panic!("one Redis")
        };
        let info = client.get_connection_info();
        assert_eq!(info.redis_settings().password(), Some("secret"));
        assert_eq!(info.redis_settings().db(), 2);
        let e = RedisEngine::with_password("redis://127.0.0.1:1", "p", Some("env")).unwrap();
        let Target::Single(client) = &e.link.target else {
            panic!("one Redis")
        };
        let info = client.get_connection_info();
        assert_eq!(info.redis_settings().password(), Some("env"));
        assert_eq!(e.addr(), "127.0.0.1:1");
        assert!(!format!("{e:?}").contains("env"));
    }

    #[test]
    fn an_unreachable_redis_is_unavailable_and_fast() {
        // Port 1 on loopback: nothing listens there.
        let e = RedisEngine::with_password("redis://127.0.0.1:1", "p", None).unwrap();
        let started = std::time::Instant::now();
        let err = e
            .transact(&mut |tx: &mut dyn Tx| tx.get(Table::Counters, "x"))
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_unavailable_and_fast_on_the_async_path() {
        let e = RedisEngine::with_password("redis://127.0.0.1:1", "p", None).unwrap();
        let started = std::time::Instant::now();
        let err = e
            .run(&mut |tx: &mut dyn Tx| tx.get(Table::Counters, "x"), false)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_bad_url_is_refused() {
        assert!(RedisEngine::with_password("http://x", "p", None).is_err());
    }
}
