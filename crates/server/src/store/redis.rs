//! `--store redis://host:port[/db]` (or `rediss://` for TLS): the key-value layout in Redis, so
//! any number of statuslab instances share one state.
//!
//! Transactions are optimistic, Redis's own way: every read `WATCH`es its key before it `GET`s
//! it (one round trip, pipelined), writes are buffered, and the commit sends them in one
//! `MULTI … EXEC`. If any watched key changed in between, `EXEC` answers nil and the whole
//! transaction runs again from the start, so each one is serializable and [`super::ops`] works
//! here exactly as on the other engines. Read-only transactions watch their keys too and end
//! with an empty `MULTI`/`EXEC`, which makes what they read one consistent snapshot.
//!
//! # Layout
//!
//! Every key starts with the hash-tagged prefix (`{statuslab}` for `--redis-prefix statuslab`):
//! a value is `{statuslab}:TABLE:KEY`, and each table keeps the sorted set
//! `{statuslab}:index:TABLE` of its keys (all scored 0, so `ZRANGEBYLEX` lists them in byte
//! order, as the embedded engine does). The single hash tag puts every key in one slot, so each
//! transaction — whatever keys it touches — is valid on Redis Cluster too; the price is that
//! one instance's state is not sharded across the cluster, which a test server can afford.
//!
//! # Faults
//!
//! Connections come from a small pool, opened with a connect timeout and used with read and
//! write timeouts, so an outage fails fast with [`StoreError::Unavailable`] (503 with
//! `Retry-After`) instead of hanging. A connection that failed is dropped together with every
//! idle one, and the next transaction connects afresh: when Redis returns, the server recovers
//! by itself. A write is acknowledged only after `EXEC` returned; if the connection breaks while
//! a commit is in flight the outcome is unknown and reported as unavailable, never retried.

use super::rate::{self, RateAlgorithm};
use super::{Engine, RateDecision, RateQuery, StoreError, Table, Tx, ops};
use redis::{Connection, ConnectionAddr, IntoConnectionInfo, RedisError, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Environment variable with the Redis password, used when the URL carries none.
pub const PASSWORD_ENV: &str = "STATUSLAB_REDIS_PASSWORD";

/// How long to wait for a TCP (and TLS) connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for Redis's answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 64;
/// Runs of a transaction before contention is reported as unavailability.
const MAX_ATTEMPTS: u32 = 200;

/// A Redis server (or cluster slot) and a key prefix.
pub struct RedisEngine {
    client: redis::Client,
    /// `{prefix}`: the hash-tagged start of every key.
    ns: String,
    /// `host:port` for messages (never the URL, which may hold a password).
    addr: String,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEngine")
            .field("addr", &self.addr)
            .field("ns", &self.ns)
            .finish_non_exhaustive()
    }
}

impl RedisEngine {
    /// An engine for `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS)
    /// whose keys start with `prefix`. The password comes from the URL, else from
    /// `STATUSLAB_REDIS_PASSWORD`. Nothing is connected yet: a Redis that is down now makes
    /// requests answer 503 until it is up, not the server fail to start.
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
        let mut info = url.into_connection_info().map_err(bad)?;
        if info.redis_settings().password().is_none()
            && let Some(p) = password
        {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let addr = match info.addr() {
            ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} (TLS)"),
            ConnectionAddr::Unix(path) => path.display().to_string(),
            other => format!("{other:?}"),
        };
        let client = redis::Client::open(info).map_err(bad)?;
        Ok(RedisEngine {
            client,
            ns: namespace(prefix),
            addr,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Where the engine connects (`host:port`), for logs.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Checks that Redis answers.
    pub fn ping(&self) -> Result<(), StoreError> {
        let (mut conn, _) = self.connection(false)?;
        match redis::cmd("PING").query::<String>(&mut conn) {
            Ok(_) => {
                self.give_back(conn);
                Ok(())
            }
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// A pooled connection (or a new one when `fresh` or none is idle), and whether it was
    /// reused from the pool.
    fn connection(&self, fresh: bool) -> Result<(Connection, bool), StoreError> {
        if !fresh && let Some(c) = self.lock_idle().pop() {
            return Ok((c, true));
        }
        let conn = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| self.failed(&e))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| self.failed(&e))?;
        Ok((conn, false))
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.lock_idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Maps a Redis error; a broken connection also empties the pool (its siblings are most
    /// likely broken too, and reconnecting is cheap).
    fn failed(&self, e: &RedisError) -> StoreError {
        let err = classify(e, &self.addr);
        if matches!(err, StoreError::Unavailable(_)) {
            self.lock_idle().clear();
        }
        err
    }

    fn run<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
        read_only: bool,
    ) -> Result<R, StoreError> {
        let mut fresh = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (mut conn, reused) = self.connection(fresh)?;
            let mut tx = RedisTx {
                conn: &mut conn,
                ns: &self.ns,
                journal: super::Journal::new(read_only),
                broken: None,
                sent: false,
            };
            let result = f(&mut tx);
            let RedisTx {
                journal: super::Journal { writes, .. },
                mut broken,
                sent,
                ..
            } = tx;
            if broken.is_none() && !sent && reused && result.is_ok() {
                // Nothing was read, so a pooled connection that died while idle would only
                // show up in the commit, whose outcome would then be unknown: check it first.
                broken = redis::cmd("PING").exec(&mut conn).err();
            }
            if let Some(e) = broken {
                let err = self.failed(&e);
                // Only reads were sent, so running again on a new connection is safe: a pooled
                // connection may simply have died while idle (Redis restarted).
                if reused && !fresh && matches!(err, StoreError::Unavailable(_)) {
                    fresh = true;
                    continue;
                }
                return Err(err);
            }
            let value = match result {
                Ok(v) => v,
                Err(e) => {
                    match redis::cmd("UNWATCH").exec(&mut conn) {
                        Ok(()) => self.give_back(conn),
                        Err(u) => drop(self.failed(&u)),
                    }
                    return Err(e);
                }
            };
            match commit(&mut conn, &self.ns, &writes) {
                Ok(true) => {
                    self.give_back(conn);
                    return Ok(value);
                }
                Ok(false) => {
                    // A watched key changed: run again, backing off a little under contention.
                    self.give_back(conn);
                    if attempt >= MAX_ATTEMPTS {
                        return Err(StoreError::Unavailable(format!(
                            "Redis at {}: a transaction kept conflicting with others ({attempt} attempts)",
                            self.addr
                        )));
                    }
                    if attempt > 2 {
                        let cap = u64::from(attempt.min(20));
                        std::thread::sleep(Duration::from_micros(fastrand::u64(0..=cap * 500)));
                    }
                }
                Err(e) => return Err(self.failed(&e)),
            }
        }
    }
}

impl Engine for RedisEngine {
    const KIND: &'static str = "redis";
    const BLOCKING: bool = true;

    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.run(f, false)
    }

    fn read<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.run(f, true)
    }

    /// The sliding window runs as one Lua script (`rate_limit.lua`, sent by `EVALSHA`, loaded
    /// again on `NOSCRIPT`): one round trip per request, atomic, never rerun on conflict.
    /// GCRA runs as any other transaction.
    fn rate_limit(&self, query: &RateQuery) -> Result<RateDecision, StoreError> {
        if query.algorithm != RateAlgorithm::SlidingWindow {
            return self.transact_volatile(&mut |tx| ops::rate_limit(tx, query));
        }
        static SCRIPT: std::sync::LazyLock<redis::Script> =
            std::sync::LazyLock::new(|| redis::Script::new(include_str!("rate_limit.lua")));
        let family = ops::rate_family(&query.key);
        let fail_open = family == ops::SERVER_RATE_COUNT;
        let width = rate::bucket_width(query.limit, query.period_ms());
        let mut invocation = SCRIPT.prepare_invoke();
        invocation
            .key(value_key(&self.ns, Table::Rates, &query.key))
            .key(index_key(&self.ns, Table::Rates))
            .key(value_key(&self.ns, Table::Counters, family))
            .key(index_key(&self.ns, Table::Counters))
            .arg(&query.key)
            .arg(family)
            .arg(query.now_ms)
            .arg(query.limit.max(1))
            .arg(query.period_ms())
            .arg(query.max_keys)
            .arg(u8::from(fail_open))
            .arg(width);
        let (mut conn, reused) = self.connection(false)?;
        let answer = match invocation.invoke::<(i64, u64, u64, u64)>(&mut conn) {
            Err(e) if reused && matches!(classify(&e, &self.addr), StoreError::Unavailable(_)) => {
                // A pooled connection may have died while idle (Redis restarted). The script
                // either ran whole or not at all; a request counted twice after a lost answer
                // is the rare, harmless side of that.
                drop(self.failed(&e));
                let (mut conn, _) = self.connection(true)?;
                let r = invocation.invoke(&mut conn);
                r.map(|a| (a, conn))
            }
            r => r.map(|a| (a, conn)),
        };
        let ((status, remaining, reset_secs, retry_after_secs), conn) =
            answer.map_err(|e| self.failed(&e))?;
        self.give_back(conn);
        if status < 0 {
            return Err(StoreError::Full {
                family: "rate-limit keys",
                limit: query.max_keys,
            });
        }
        if status == 2 {
            ops::warn_server_keys_full(query.max_keys, query.now_ms);
        }
        Ok(RateDecision {
            allowed: status > 0,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_secs,
            retry_after_secs,
        })
    }

    /// `ZRANGEBYLEX` on the table's index, then `MGET` of the values, neither watched: no
    /// transaction, so nothing a writer does can make it fail or run again. A key removed
    /// between the two commands is left out.
    fn peek(
        &self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (mut conn, _) = self.connection(false)?;
        let keys: Vec<String> = match redis::cmd("ZRANGEBYLEX")
            .arg(index_key(&self.ns, table))
            .arg(lex_min(after))
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query(&mut conn)
        {
            Ok(k) => k,
            Err(e) => return Err(self.failed(&e)),
        };
        if keys.is_empty() {
            self.give_back(conn);
            return Ok(Vec::new());
        }
        let value_keys: Vec<Vec<u8>> = keys.iter().map(|k| value_key(&self.ns, table, k)).collect();
        let values: Vec<Option<Vec<u8>>> =
            match redis::cmd("MGET").arg(&value_keys).query(&mut conn) {
                Ok(v) => v,
                Err(e) => return Err(self.failed(&e)),
            };
        self.give_back(conn);
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k, v?)))
            .collect())
    }
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

fn value_key(ns: &str, table: Table, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + table.name().len() + key.len() + 2);
    k.extend_from_slice(ns.as_bytes());
    k.push(b':');
    k.extend_from_slice(table.name().as_bytes());
    k.push(b':');
    k.extend_from_slice(key.as_bytes());
    k
}

fn index_key(ns: &str, table: Table) -> String {
    format!("{ns}:index:{}", table.name())
}

/// Whether an error means Redis cannot be used right now (503) rather than a fault (500).
fn classify(e: &RedisError, addr: &str) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    let transient = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || matches!(
            e.kind(),
            ErrorKind::AuthenticationFailed
                | ErrorKind::Io
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::NoPerm
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

/// Sends the buffered writes in one `MULTI … EXEC`; `false` if a watched key changed (nothing
/// was written). With no writes it still runs the empty `EXEC`, which checks that everything
/// read is still current (and clears the watches).
fn commit(
    conn: &mut Connection,
    ns: &str,
    writes: &BTreeMap<(Table, String), Option<Vec<u8>>>,
) -> Result<bool, RedisError> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for ((table, key), value) in writes {
        let vk = value_key(ns, *table, key);
        let ik = index_key(ns, *table);
        match value {
            Some(v) => {
                pipe.cmd("SET").arg(&vk).arg(v.as_slice()).ignore();
                pipe.cmd("ZADD").arg(&ik).arg(0).arg(key).ignore();
            }
            None => {
                pipe.cmd("DEL").arg(&vk).ignore();
                pipe.cmd("ZREM").arg(&ik).arg(key).ignore();
            }
        }
    }
    let reply: Value = pipe.query(conn)?;
    Ok(!matches!(reply, Value::Nil))
}

/// One run of a transaction on one connection.
struct RedisTx<'a> {
    conn: &'a mut Connection,
    ns: &'a str,
    journal: super::Journal,
    /// The first Redis error: the connection is not reused, and the run's result is replaced
    /// by the error.
    broken: Option<RedisError>,
    /// Whether anything was sent to Redis yet.
    sent: bool,
}

impl RedisTx<'_> {
    fn check<T>(&mut self, r: Result<T, RedisError>) -> Result<T, StoreError> {
        self.sent = true;
        r.map_err(|e| {
            let err = classify(&e, "redis");
            self.broken.get_or_insert(e);
            err
        })
    }
}

impl Tx for RedisTx<'_> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(w) = self.journal.pending(table, key) {
            return Ok(w.clone());
        }
        let k = value_key(self.ns, table, key);
        let r = redis::pipe()
            .cmd("WATCH")
            .arg(&k)
            .ignore()
            .cmd("GET")
            .arg(&k)
            .query::<(Option<Vec<u8>>,)>(self.conn);
        Ok(self.check(r)?.0)
    }

    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.journal.put(table, key, value)
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        let existed = self.get(table, key)?.is_some();
        self.journal.delete(table, key)?;
        Ok(existed)
    }

    fn remove(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        // Blind: no round trip (and no WATCH) to learn what is not asked.
        self.journal.delete(table, key)
    }

    fn scan(
        &mut self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let above = |k: &str| after.is_none_or(|a| k > a);
        let buffered: Vec<(String, Option<Vec<u8>>)> = self
            .journal
            .writes
            .iter()
            .filter(|((t, k), _)| *t == table && above(k))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        // Buffered deletes may hide up to that many stored keys, so fetch as many more: the
        // first `limit` live keys are then all among those fetched.
        let want = limit.saturating_add(buffered.len());
        let min = lex_min(after);
        let r = redis::pipe()
            .cmd("WATCH")
            .arg(index_key(self.ns, table))
            .ignore()
            .cmd("ZRANGEBYLEX")
            .arg(index_key(self.ns, table))
            .arg(min)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(want)
            .query::<(Vec<String>,)>(self.conn);
        let stored = self.check(r)?.0;
        let mut keys: Vec<&str> = stored.iter().map(String::as_str).collect();
        keys.extend(buffered.iter().map(|(k, _)| k.as_str()));
        keys.sort_unstable();
        keys.dedup();
        // Pick the first `limit` live keys; those not written here are read from Redis.
        let mut chosen: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        let mut live = 0;
        for k in keys {
            if live >= limit {
                break;
            }
            match buffered.iter().find(|(b, _)| b == k) {
                Some((_, Some(v))) => {
                    chosen.push((k.to_owned(), Some(v.clone())));
                    live += 1;
                }
                Some((_, None)) => {}
                None => {
                    chosen.push((k.to_owned(), None));
                    live += 1;
                }
            }
        }
        let fetch: Vec<Vec<u8>> = chosen
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| value_key(self.ns, table, k))
            .collect();
        let mut fetched = if fetch.is_empty() {
            Vec::new()
        } else {
            let r = redis::pipe()
                .cmd("WATCH")
                .arg(&fetch)
                .ignore()
                .cmd("MGET")
                .arg(&fetch)
                .query::<(Vec<Option<Vec<u8>>>,)>(self.conn);
            self.check(r)?.0
        }
        .into_iter();
        let mut out = Vec::with_capacity(chosen.len());
        for (k, v) in chosen {
            let v = match v {
                Some(v) => Some(v),
                None => fetched.next().flatten(),
            };
            // An indexed key without a value cannot happen (both change in one EXEC); skip it.
            if let Some(v) = v {
                out.push((k, v));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        assert_eq!(namespace("statuslab"), "{statuslab}");
        assert_eq!(namespace("app:{x}"), "app:{x}");
        assert_eq!(
            value_key("{statuslab}", Table::Resources, "a:b"),
            b"{statuslab}:resources:a:b"
        );
        assert_eq!(
            index_key("{statuslab}", Table::Jobs),
            "{statuslab}:index:jobs"
        );
    }

    #[test]
    fn password_comes_from_the_url_first() {
        let e =
            RedisEngine::with_password("redis://:secret@127.0.0.1:1/2", "p", Some("env")).unwrap();
        let info = e.client.get_connection_info();
        assert_eq!(info.redis_settings().password(), Some("secret"));
        assert_eq!(info.redis_settings().db(), 2);
        let e = RedisEngine::with_password("redis://127.0.0.1:1", "p", Some("env")).unwrap();
        let info = e.client.get_connection_info();
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

    #[test]
    fn a_bad_url_is_refused() {
        assert!(RedisEngine::with_password("http://x", "p", None).is_err());
    }
}
