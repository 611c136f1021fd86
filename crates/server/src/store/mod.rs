//! Everything stateful — resources, tombstones, jobs, sequences, rate-limit counters — behind
//! one async [`Store`] trait.
//!
//! The semantics are written once, in [`ops`], as short read-then-write transactions over a
//! tiny key-value interface ([`Tx`]). A backend only supplies an [`Engine`] that runs such a
//! transaction atomically (and may run it again on conflict): [`memory`] under a mutex,
//! [`embedded`] in a redb write transaction (durable when it commits; a writer thread commits
//! concurrent writes together, with one fsync), [`redis`] as an optimistic transaction shared by
//! every instance (reads fetched in one round trip, the commit one Lua script that checks them),
//! awaited through [`AsyncEngine`]. Every backend therefore
//! has exactly the same behaviour, and one conformance suite tests them all.
//!
//! Time is an input: every operation reads the store's [`clock::Clock`] (the system clock in
//! production, a [`clock::ManualClock`] in tests), never the wall clock directly.

pub mod clock;
#[cfg(test)]
mod conformance;
pub mod embedded;
pub mod memory;
pub(crate) mod metered;
mod ops;
pub mod precondition;
pub mod rate;
pub mod redis;

pub use precondition::{Conditions, EntityTag, Outcome as ConditionOutcome, TagList};
pub use rate::RateAlgorithm;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clock::Clock;

/// A store failure that is not a normal outcome.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage engine failed (I/O, corruption). Internal detail; never sent to clients.
    #[error("storage engine: {0}")]
    Engine(String),
    /// A stored value could not be decoded.
    #[error("stored value for {key:?} is unreadable: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The store cannot be reached (Redis down); retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A new key would pass `--max-keys` for its family (507 with Retry-After). Returned by
    /// [`Store::rate_limit`] for a new on-demand key; the other families answer with their
    /// own `TooManyKeys` outcome.
    #[error("the store holds its maximum number of {family} ({limit}, --max-keys)")]
    Full {
        /// The family that is full, plural (`rate-limit keys`).
        family: &'static str,
        /// `--max-keys`.
        limit: u64,
    },
}

/// Limits on what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of resource content and stored jobs (each job's record, result included)
    /// (`--max-store-bytes`); past it, writes get 413 + Retry-After.
    pub max_store_bytes: u64,
    /// Keys per family (`--max-keys`); past it, 507. The families, each with its own quota:
    /// resources (live ones and tombstones until they are swept), jobs, sequences, on-demand
    /// rate-limit keys, and the server-wide limiter's keys (which never refuse: see
    /// [`SERVER_RATE_PREFIX`]).
    pub max_keys: u64,
    /// How long a deleted resource answers 410 (`--tombstone-ttl`).
    pub tombstone_ttl: Duration,
    /// How long a job is kept after it was submitted (`--job-ttl`).
    pub job_ttl: Duration,
    /// How long an untouched sequence is kept (`--sequence-ttl`).
    pub sequence_ttl: Duration,
    /// Attempts remembered per sequence.
    pub max_attempts: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_store_bytes: 256 * 1024 * 1024,
            max_keys: 10_000,
            tombstone_ttl: Duration::from_secs(24 * 3600),
            job_ttl: Duration::from_secs(24 * 3600),
            sequence_ttl: Duration::from_secs(24 * 3600),
            max_attempts: 100,
        }
    }
}

/// Rate-limit keys starting with this belong to the server-wide limiter (`--rate-limit`).
/// They have a quota of their own, apart from the on-demand `/rate-limit` keys, so that no
/// number of other keys can make the server-wide limiter refuse a client. When that quota is
/// full too, a new server-wide client is let through without being recorded (fail open, with
/// a warning in the log) until a sweep frees keys: see `ops::rate_limit`.
pub const SERVER_RATE_PREFIX: &str = "server:";

/// Milliseconds since the Unix epoch, by the system clock. Stores read their own
/// [`Store::now_ms`] instead.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A stored resource's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceMeta {
    /// Its name (the last path segment).
    pub name: String,
    /// `Content-Type` it was stored with.
    pub content_type: String,
    /// Strong entity tag, including the quotes.
    pub etag: String,
    /// Last modification, seconds since the epoch (HTTP dates have one-second resolution).
    pub modified: u64,
    /// Content length.
    pub size: u64,
    /// Writes so far (1 on creation).
    pub version: u64,
}

/// A resource: metadata and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Metadata.
    pub meta: ResourceMeta,
    /// Content.
    pub body: Bytes,
}

/// What a name currently is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A stored resource.
    Found(Resource),
    /// Deleted; answers 410 until the tombstone expires.
    Gone,
    /// Never existed (or its tombstone expired).
    Missing,
}

/// Content to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResource {
    /// `Content-Type`.
    pub content_type: String,
    /// Content.
    pub body: Bytes,
}

/// How a write may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or replace (PUT).
    Upsert,
    /// Create only; an existing name is a conflict (POST).
    CreateOnly,
    /// Replace only; a missing name is not found (PATCH after the merge).
    ReplaceOnly,
}

/// The result of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new resource (201).
    Created(ResourceMeta),
    /// An existing resource replaced (200/204).
    Replaced(ResourceMeta),
    /// A precondition failed (412).
    PreconditionFailed,
    /// `CreateOnly` on an existing name (409).
    Exists,
    /// `ReplaceOnly` on a missing or deleted name (404/410).
    NotFound(Lookup),
    /// Storing it would pass `--max-store-bytes` (413 with Retry-After).
    QuotaFull {
        /// Bytes used now.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// A new key would pass `--max-keys` (507).
    TooManyKeys,
}

/// The result of a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted; the name answers 410 for the tombstone's lifetime.
    Deleted,
    /// A precondition failed (412).
    PreconditionFailed,
    /// Nothing to delete.
    NotFound(Lookup),
}

/// What a job will answer when done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// Status code of the result (200 by default).
    pub status: u16,
    /// JSON body of the result.
    pub body: serde_json::Value,
}

/// An asynchronous job (the table's 202). Its state follows from the clock, so it needs no
/// worker and survives restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Identifier.
    pub id: String,
    /// Submission time, ms since the epoch.
    pub submitted_ms: u64,
    /// How long it runs.
    pub duration_ms: u64,
    /// What it answers when done.
    pub result: JobResult,
    /// Cancelled with DELETE.
    pub cancelled: bool,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Still running.
    Running,
    /// Finished: the monitor answers 303 to the result.
    Done,
    /// Cancelled with DELETE.
    Cancelled,
}

impl Job {
    /// The state at `now_ms`.
    pub fn state(&self, now_ms: u64) -> JobState {
        if self.cancelled {
            JobState::Cancelled
        } else if now_ms >= self.submitted_ms.saturating_add(self.duration_ms) {
            JobState::Done
        } else {
            JobState::Running
        }
    }
}

/// The result of submitting a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Stored.
    Accepted,
    /// `--max-keys` jobs are stored already (507).
    TooManyKeys,
    /// Storing it would pass `--max-store-bytes` (413 with Retry-After).
    QuotaFull {
        /// Bytes used now.
        used: u64,
        /// The limit.
        limit: u64,
    },
}

/// One request a sequence answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// Method.
    pub method: String,
    /// Headers that tell retry behaviour apart (User-Agent, Idempotency-Key, …).
    pub headers: Vec<(String, String)>,
    /// Position answered (0-based).
    pub step: usize,
    /// Code answered.
    pub code: u16,
    /// `Retry-After` seconds the answer carried, if any.
    pub retry_after: Option<u64>,
    /// What makes two requests the same — method, target, content and the headers that are
    /// not per-attempt bookkeeping — as a short digest, so a report can tell a repeat made
    /// unchanged from one that was modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A sequence's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    /// The codes, in order; the last repeats.
    pub codes: Vec<u16>,
    /// Requests answered so far.
    pub served: u64,
    /// Last use, ms since the epoch.
    pub touched_ms: u64,
    /// The most recent attempts, oldest first.
    pub attempts: VecDeque<Attempt>,
}

/// The answer a sequence gives to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceStep {
    /// Answer `code`, the `step`th (0-based) of the sequence.
    Answer {
        /// Position.
        step: usize,
        /// Code.
        code: u16,
    },
    /// `--max-keys` sequences exist already (507).
    TooManyKeys,
    /// The key holds a live sequence over another list of codes (409): nothing changed.
    Conflict {
        /// The list the key holds.
        codes: Vec<u16>,
    },
}

/// A rate limiter's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request passes.
    pub allowed: bool,
    /// Requests that would pass now, after this one: exact.
    pub remaining: u32,
    /// Seconds (rounded up) until the whole quota is available again: the sliding window
    /// empty, the GCRA burst refilled.
    pub reset_secs: u64,
    /// When refused: seconds (rounded up) until the next request would pass.
    pub retry_after_secs: u64,
}

/// One request against a rate limit, as an [`Engine`] decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateQuery {
    /// The key (the server-wide limiter's start with [`SERVER_RATE_PREFIX`]).
    pub key: String,
    /// Requests per period.
    pub limit: u32,
    /// The period.
    pub period: Duration,
    /// How to decide.
    pub algorithm: RateAlgorithm,
    /// Now, ms since the epoch (the store's clock).
    pub now_ms: u64,
    /// `--max-keys`, for a new key.
    pub max_keys: u64,
}

impl RateQuery {
    /// The period in whole milliseconds, at least 1.
    pub fn period_ms(&self) -> u64 {
        u64::try_from(self.period.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// The state every statuslab instance shares.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// A short name for logs and `/health` (`memory`, `embedded`, `redis`).
    fn kind(&self) -> &'static str;
    /// The store's time, ms since the epoch: what its operations take as "now". Whoever
    /// interprets what the store returns against the time (a job's [`Job::state`], its
    /// `submitted_ms`) reads it here, so that a store on a [`clock::ManualClock`] is
    /// consistent end to end. The system clock unless the store says otherwise.
    fn now_ms(&self) -> u64 {
        now_ms()
    }
    /// Reads a resource.
    async fn resource(&self, name: &str) -> Result<Lookup, StoreError>;
    /// Lists resources (names ascending, at most `limit`).
    async fn list_resources(&self, limit: usize) -> Result<Vec<ResourceMeta>, StoreError>;
    /// Writes a resource if `conditions` hold (evaluated atomically with the write).
    async fn write_resource(
        &self,
        name: &str,
        new: NewResource,
        mode: WriteMode,
        conditions: Conditions,
    ) -> Result<WriteOutcome, StoreError>;
    /// Deletes a resource if `conditions` hold, leaving a tombstone.
    async fn delete_resource(
        &self,
        name: &str,
        conditions: Conditions,
    ) -> Result<DeleteOutcome, StoreError>;
    /// Stores a new job.
    async fn submit_job(&self, job: Job) -> Result<JobOutcome, StoreError>;
    /// Reads a job.
    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Cancels a job; `false` if there is none.
    async fn cancel_job(&self, id: &str) -> Result<bool, StoreError>;
    /// Answers the next request of sequence `key` over `codes` and records the attempt. A
    /// key holding a live sequence over another list is a [`SequenceStep::Conflict`] (reset
    /// it first); an expired one starts over.
    async fn sequence_step(
        &self,
        key: &str,
        codes: Vec<u16>,
        attempt: Attempt,
    ) -> Result<SequenceStep, StoreError>;
    /// Reads a sequence.
    async fn sequence(&self, key: &str) -> Result<Option<Sequence>, StoreError>;
    /// Forgets a sequence; `false` if there was none.
    async fn reset_sequence(&self, key: &str) -> Result<bool, StoreError>;
    /// Counts one request against `limit` per `period` for `key` with the default algorithm,
    /// the sliding window: see [`Store::rate_limit_with`].
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        period: Duration,
    ) -> Result<RateDecision, StoreError> {
        self.rate_limit_with(key, limit, period, RateAlgorithm::default())
            .await
    }
    /// Counts one request against `limit` per `period` for `key`, decided by `algorithm` (see
    /// [`rate`]). A new key past `--max-keys` is [`StoreError::Full`], except for the
    /// server-wide limiter's keys ([`SERVER_RATE_PREFIX`]), which are let through.
    async fn rate_limit_with(
        &self,
        key: &str,
        limit: u32,
        period: Duration,
        algorithm: RateAlgorithm,
    ) -> Result<RateDecision, StoreError>;
    /// Removes expired tombstones, jobs, sequences and rate-limit keys; returns how many.
    async fn sweep(&self) -> Result<u64, StoreError>;
    /// Whether maintenance mode is on (shared by every instance on the store).
    async fn maintenance(&self) -> Result<bool, StoreError>;
    /// Switches maintenance mode.
    async fn set_maintenance(&self, on: bool) -> Result<(), StoreError>;
}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;

/// Tables of the key-value layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// name → `ResourceMeta` (JSON).
    Resources,
    /// name → content bytes.
    Bodies,
    /// name → tombstone expiry (ms, decimal).
    Tombstones,
    /// id → `Job` (JSON).
    Jobs,
    /// key → `Sequence` (JSON).
    Sequences,
    /// key → a rate limit's state: a sliding window (`S…`, see [`rate`]) or a GCRA
    /// theoretical arrival time (µs since the epoch, decimal).
    Rates,
    /// counter name → value (decimal).
    Counters,
    /// `{sequence key}\0{attempt number, 20 digits}` → `Attempt` (JSON): a sequence's recent
    /// attempts, one record each, so that a step writes one attempt, not all of them.
    Attempts,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 8] = [
        Table::Resources,
        Table::Bodies,
        Table::Tombstones,
        Table::Jobs,
        Table::Sequences,
        Table::Rates,
        Table::Counters,
        Table::Attempts,
    ];

    /// The table's name in a backend.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Resources => "resources",
            Table::Bodies => "bodies",
            Table::Tombstones => "tombstones",
            Table::Jobs => "jobs",
            Table::Sequences => "sequences",
            Table::Rates => "rates",
            Table::Counters => "counters",
            Table::Attempts => "attempts",
        }
    }
}

/// One atomic read-then-write transaction over the key-value layout.
pub trait Tx {
    /// Reads a value.
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes a value.
    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes a value; whether it was there.
    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError>;
    /// Removes a value without telling whether it was there (an engine may then skip reading
    /// it first).
    fn remove(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        self.delete(table, key).map(drop)
    }
    /// Up to `limit` entries with keys after `after` (exclusive), ascending.
    fn scan(
        &mut self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// A write transaction that can be handed to another thread ([`Engine::submit`]).
pub type OwnedTx<R> = Box<dyn FnMut(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static>;

/// Runs transactions atomically: all of a transaction's writes happen or none do, and no other
/// transaction sees or changes its keys in between.
pub trait Engine: Send + Sync + std::fmt::Debug + 'static {
    /// The backend's name.
    const KIND: &'static str;
    /// Whether transactions block on I/O (and so run on the blocking pool).
    const BLOCKING: bool;
    /// Runs `f` in one transaction and commits it (durably, for a persistent engine). `f`
    /// may be run more than once if the engine retries on conflict.
    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError>;
    /// Runs `f` on a consistent snapshot; writes fail with [`StoreError::Engine`].
    fn read<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError>;
    /// Like [`Engine::transact`] (just as atomic), for state whose loss in a crash is harmless
    /// (rate-limit counters): a persistent engine may commit it without waiting for the disk.
    fn transact_volatile<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.transact(f)
    }
    /// Runs `f` as [`Engine::transact`] does, for an async caller: by default on the blocking
    /// pool (an engine that blocks) or at once. An engine may instead queue it to a writer of
    /// its own that commits many transactions together (embedded: group commit).
    fn submit<R: Send + 'static>(
        self: Arc<Self>,
        mut f: OwnedTx<R>,
    ) -> futures_util::future::BoxFuture<'static, Result<R, StoreError>> {
        Box::pin(on_engine(self, move |e| e.transact(&mut f)))
    }
    /// [`Engine::rate_limit`] for an async caller, as [`Engine::submit`] is [`Engine::transact`].
    fn submit_rate_limit(
        self: Arc<Self>,
        query: RateQuery,
    ) -> futures_util::future::BoxFuture<'static, Result<RateDecision, StoreError>> {
        Box::pin(on_engine(self, move |e| e.rate_limit(&query)))
    }
    /// Decides one rate-limit request and records it (see [`ops::rate_limit`]): by default in
    /// a [`Engine::transact_volatile`] transaction. An engine may decide it another way that
    /// has the same outcome and stores the same values (Redis: one Lua script).
    fn rate_limit(&self, query: &RateQuery) -> Result<RateDecision, StoreError> {
        self.transact_volatile(&mut |tx| ops::rate_limit(tx, query))
    }
    /// Up to `limit` entries of `table` with keys after `after`, ascending, read outside any
    /// transaction: each entry was current at some moment during the call, but together they
    /// need not be one snapshot, and reading them never conflicts with a writer. For finding
    /// candidates (the sweep's expired entries) that a transaction then checks again.
    fn peek(
        &self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(&mut |tx| tx.scan(table, after, limit))
    }
    /// Learns the limits the store holds its operations to (called once, before any
    /// transaction): an engine that checks them itself when it commits (Redis) needs them.
    fn set_limits(&mut self, _limits: &Limits) {}
    /// The engine's own async path, if it has one (Redis): [`KvStore`] then awaits it instead
    /// of calling the methods above.
    fn asynchronous(&self) -> Option<&dyn AsyncEngine> {
        None
    }
    /// Which part of the engine holds `key` of `table`: a write transaction must keep to the
    /// keys of one part (a Redis Cluster shard), so a sweep batches keys by it. One part (0)
    /// unless the engine says otherwise.
    fn shard(&self, _table: Table, _key: &str) -> usize {
        0
    }
}

/// A transaction's result with its type erased, for [`AsyncEngine`].
pub type AnyResult = Result<Box<dyn std::any::Any + Send>, StoreError>;

/// A transaction with its result type erased, for [`AsyncEngine`].
pub type AnyTx = dyn for<'t> FnMut(&'t mut (dyn Tx + 't)) -> AnyResult + Send;

/// What an engine with an async path ([`Engine::asynchronous`]) runs: the same transactions,
/// awaited on the runtime instead of blocking a thread.
#[async_trait::async_trait]
pub trait AsyncEngine: Send + Sync {
    /// Like [`Engine::transact`] (or [`Engine::read`] when `read_only`).
    async fn transact_any(&self, f: &mut AnyTx, read_only: bool) -> AnyResult;
    /// Like [`Engine::rate_limit`].
    async fn rate_limit(&self, query: &RateQuery) -> Result<RateDecision, StoreError>;
    /// Like [`Engine::peek`].
    async fn peek(
        &self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// Runs `go` with `engine`: on the blocking pool for an engine that does I/O, else at once.
async fn on_engine<E: Engine + ?Sized, R: Send + 'static>(
    engine: Arc<E>,
    go: impl FnOnce(&E) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    if E::BLOCKING {
        tokio::task::spawn_blocking(move || go(&engine))
            .await
            .map_err(|e| StoreError::Engine(format!("store task failed: {e}")))?
    } else {
        go(&engine)
    }
}

/// How a [`KvStore`] runs a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
}

/// The buffered writes of a transaction (`None`: a deletion), applied only when it commits, so a
/// failed transaction changes nothing. Shared by the engines that buffer (memory, Redis).
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub(crate) writes: std::collections::BTreeMap<(Table, String), Option<Vec<u8>>>,
    read_only: bool,
}

impl Journal {
    pub(crate) fn new(read_only: bool) -> Journal {
        Journal {
            writes: Default::default(),
            read_only,
        }
    }

    /// A write this transaction made to `key`, if any (`Some(None)`: deleted).
    pub(crate) fn pending(&self, table: Table, key: &str) -> Option<&Option<Vec<u8>>> {
        self.writes.get(&(table, key.to_owned()))
    }

    pub(crate) fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.record(table, key, Some(value.to_vec()))
    }

    /// A scan of `table` as this transaction sees it: the stored entries after `after` with
    /// this journal's writes over them, at most `limit`. `stored(n)` gives the first `n` stored
    /// entries after `after`; buffered deletes hide at most as many stored keys as the journal
    /// holds in the range, so that many more than `limit` are enough: a scan costs its page,
    /// not the rest of the table.
    pub(crate) fn scan_over(
        &self,
        table: Table,
        after: Option<&str>,
        limit: usize,
        stored: impl FnOnce(usize) -> Result<Vec<(String, Vec<u8>)>, StoreError>,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let lower = match after {
            Some(a) => std::ops::Bound::Excluded((table, a.to_owned())),
            None => std::ops::Bound::Included((table, String::new())),
        };
        let pending: Vec<_> = self
            .writes
            .range((lower, std::ops::Bound::Unbounded))
            .take_while(|((t, _), _)| *t == table)
            .collect();
        let mut merged: std::collections::BTreeMap<String, Vec<u8>> =
            stored(limit.saturating_add(pending.len()))?
                .into_iter()
                .collect();
        for ((_, k), v) in pending {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    pub(crate) fn delete(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        self.record(table, key, None)
    }

    fn record(
        &mut self,
        table: Table,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        if self.read_only {
            return Err(read_only());
        }
        self.writes.insert((table, key.to_owned()), value);
        Ok(())
    }
}

/// Refusal of a write inside a read-only transaction (a programming error, reported not panicked).
pub(crate) fn read_only() -> StoreError {
    StoreError::Engine("write in a read-only transaction".to_owned())
}

/// Entries a sweep examines per transaction: small, so that a batch commits quickly even while
/// other requests keep writing (on Redis, a long transaction would keep conflicting with them).
const SWEEP_BATCH: usize = 128;

/// A [`Store`] over any [`Engine`].
#[derive(Debug)]
pub struct KvStore<E: Engine> {
    engine: Arc<E>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    sweep_batch: usize,
    /// Per expiring table, where the next sweep resumes (after a pass was cut short).
    sweep_from: std::sync::Mutex<std::collections::BTreeMap<Table, String>>,
}

impl<E: Engine> KvStore<E> {
    /// A store over `engine`, on the system clock.
    pub fn new(engine: E, limits: Limits) -> KvStore<E> {
        KvStore::with_clock(engine, limits, Arc::new(clock::SystemClock))
    }

    /// A store over `engine` whose operations all read `clock` (a [`clock::ManualClock`] in
    /// tests).
    pub fn with_clock(mut engine: E, limits: Limits, clock: Arc<dyn Clock>) -> KvStore<E> {
        engine.set_limits(&limits);
        KvStore {
            engine: Arc::new(engine),
            limits,
            clock,
            sweep_batch: SWEEP_BATCH,
            sweep_from: Default::default(),
        }
    }

    /// Where the next sweep of `table` starts: after this key, or from the start.
    fn sweep_cursor(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<Table, String>> {
        self.sweep_from
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sweeps in batches of `n` entries (tests use tiny ones, to cross batch boundaries).
    #[cfg(test)]
    pub(crate) fn with_sweep_batch(mut self, n: usize) -> KvStore<E> {
        self.sweep_batch = n.max(1);
        self
    }

    /// Runs a read-write transaction (as the engine's [`Engine::submit`] does).
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.exec(f, Mode::Write).await
    }

    /// Runs a read-only transaction.
    async fn view<R: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.exec(f, Mode::Read).await
    }

    async fn exec<R: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
        mode: Mode,
    ) -> Result<R, StoreError> {
        if let Some(a) = self.engine.asynchronous() {
            let mut erased = move |tx: &mut dyn Tx| -> AnyResult {
                f(tx).map(|r| Box::new(r) as Box<dyn std::any::Any + Send>)
            };
            let out = a.transact_any(&mut erased, mode == Mode::Read).await?;
            return out
                .downcast::<R>()
                .map(|r| *r)
                .map_err(|_| StoreError::Engine("a transaction's result changed type".to_owned()));
        }
        match mode {
            Mode::Read => self.on_engine(move |engine| engine.read(&mut f)).await,
            Mode::Write => Arc::clone(&self.engine).submit(Box::new(f)).await,
        }
    }

    /// [`Engine::peek`], on the engine's async path if it has one.
    async fn peek(
        &self,
        table: Table,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if let Some(a) = self.engine.asynchronous() {
            return a.peek(table, after.as_deref(), limit).await;
        }
        self.on_engine(move |e| e.peek(table, after.as_deref(), limit))
            .await
    }

    /// Runs `go` with the engine (on the blocking pool for engines that do I/O).
    async fn on_engine<R: Send + 'static>(
        &self,
        go: impl FnOnce(&E) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        on_engine(Arc::clone(&self.engine), go).await
    }
}

#[async_trait::async_trait]
impl<E: Engine> Store for KvStore<E> {
    fn kind(&self) -> &'static str {
        E::KIND
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    async fn resource(&self, name: &str) -> Result<Lookup, StoreError> {
        let (name, now) = (name.to_owned(), self.now_ms());
        self.view(move |tx| ops::resource(tx, &name, now)).await
    }

    async fn list_resources(&self, limit: usize) -> Result<Vec<ResourceMeta>, StoreError> {
        self.view(move |tx| ops::list_resources(tx, limit)).await
    }

    async fn write_resource(
        &self,
        name: &str,
        new: NewResource,
        mode: WriteMode,
        conditions: Conditions,
    ) -> Result<WriteOutcome, StoreError> {
        let (name, limits, now) = (name.to_owned(), self.limits, self.now_ms());
        self.run(move |tx| ops::write_resource(tx, &name, &new, mode, &conditions, &limits, now))
            .await
    }

    async fn delete_resource(
        &self,
        name: &str,
        conditions: Conditions,
    ) -> Result<DeleteOutcome, StoreError> {
        let (name, limits, now) = (name.to_owned(), self.limits, self.now_ms());
        self.run(move |tx| ops::delete_resource(tx, &name, &conditions, &limits, now))
            .await
    }

    async fn submit_job(&self, job: Job) -> Result<JobOutcome, StoreError> {
        let limits = self.limits;
        self.run(move |tx| ops::submit_job(tx, &job, &limits)).await
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let (id, limits, now) = (id.to_owned(), self.limits, self.now_ms());
        self.view(move |tx| ops::job(tx, &id, &limits, now)).await
    }

    async fn cancel_job(&self, id: &str) -> Result<bool, StoreError> {
        let (id, limits, now) = (id.to_owned(), self.limits, self.now_ms());
        self.run(move |tx| ops::cancel_job(tx, &id, &limits, now))
            .await
    }

    async fn sequence_step(
        &self,
        key: &str,
        codes: Vec<u16>,
        attempt: Attempt,
    ) -> Result<SequenceStep, StoreError> {
        let (key, limits, now) = (key.to_owned(), self.limits, self.now_ms());
        self.run(move |tx| ops::sequence_step(tx, &key, &codes, attempt.clone(), &limits, now))
            .await
    }

    async fn sequence(&self, key: &str) -> Result<Option<Sequence>, StoreError> {
        let (key, limits, now) = (key.to_owned(), self.limits, self.now_ms());
        self.view(move |tx| ops::sequence(tx, &key, &limits, now))
            .await
    }

    async fn reset_sequence(&self, key: &str) -> Result<bool, StoreError> {
        let (key, limits, now) = (key.to_owned(), self.limits, self.now_ms());
        self.run(move |tx| ops::reset_sequence(tx, &key, &limits, now))
            .await
    }

    async fn rate_limit_with(
        &self,
        key: &str,
        limit: u32,
        period: Duration,
        algorithm: RateAlgorithm,
    ) -> Result<RateDecision, StoreError> {
        let query = RateQuery {
            key: key.to_owned(),
            limit,
            period,
            algorithm,
            now_ms: self.now_ms(),
            max_keys: self.limits.max_keys,
        };
        if let Some(a) = self.engine.asynchronous() {
            return a.rate_limit(&query).await;
        }
        Arc::clone(&self.engine).submit_rate_limit(query).await
    }

    async fn maintenance(&self) -> Result<bool, StoreError> {
        self.view(ops::maintenance).await
    }

    async fn set_maintenance(&self, on: bool) -> Result<(), StoreError> {
        self.run(move |tx| ops::set_maintenance(tx, on)).await
    }

    /// Pages through each expiring table with [`Engine::peek`] (no transaction, so no
    /// conflict with writers), and removes the entries that look expired in one small
    /// transaction per page, which checks each again before removing it and moves the
    /// counters with it. A page commits (or conflicts and reruns) on its own, so a busy store
    /// delays a sweep by a few reruns of one small batch, never starves it.
    ///
    /// A pass over a table examines at most twice the entries its counters say it held at the
    /// start, plus one batch: writers adding keys ahead of the cursor cannot keep a sweep going
    /// forever. A pass cut short that way leaves its cursor for the next sweep to resume from.
    async fn sweep(&self) -> Result<u64, StoreError> {
        let (limits, now, batch) = (self.limits, self.now_ms(), self.sweep_batch);
        let counters = self.peek(Table::Counters, None, 1024).await?;
        let mut removed = 0;
        for table in ops::EXPIRING {
            let mut budget = ops::sweep_bound(table, &counters)
                .saturating_mul(2)
                .saturating_add(batch as u64);
            let mut after = self.sweep_cursor().get(&table).cloned();
            loop {
                if !E::BLOCKING {
                    // Nothing above waits on I/O: let the runtime's other tasks run.
                    tokio::task::yield_now().await;
                }
                let want = batch.min(usize::try_from(budget).unwrap_or(usize::MAX));
                let from = after.clone();
                let page = self.peek(table, from, want).await?;
                budget -= page.len() as u64;
                // One transaction per part of the engine (one for most engines).
                let mut expired: std::collections::BTreeMap<usize, Vec<String>> =
                    Default::default();
                for (k, v) in &page {
                    if ops::expired(table, k, v, &limits, now) {
                        let part = self.engine.shard(table, k);
                        expired.entry(part).or_default().push(k.clone());
                    }
                }
                for keys in expired.into_values() {
                    removed += self
                        .run(move |tx| ops::sweep_keys(tx, table, &keys, &limits, now))
                        .await?;
                }
                if page.len() < want {
                    // The end of the table: the next sweep starts from the beginning.
                    self.sweep_cursor().remove(&table);
                    break;
                }
                after = page.into_iter().next_back().map(|(k, _)| k);
                if budget == 0 {
                    if let Some(key) = after {
                        self.sweep_cursor().insert(table, key);
                    }
                    break;
                }
            }
        }
        Ok(removed)
    }
}
