//! The store's semantics, written once over [`Tx`]: every backend runs these same functions
//! inside its own atomic transaction.

use super::precondition::{Outcome, Validators};
use super::rate::{self, RateAlgorithm};
use super::*;
use std::hash::{Hash, Hasher};

/// Resources and tombstones: a tombstone holds its name's key until a sweep removes it.
pub(super) const RESOURCE_COUNT: &str = "resources";
pub(super) const JOB_COUNT: &str = "jobs";
pub(super) const SEQUENCE_COUNT: &str = "sequences";
/// On-demand rate-limit keys (every key but the server-wide limiter's).
pub(super) const RATE_COUNT: &str = "rates";
/// The server-wide limiter's keys ([`SERVER_RATE_PREFIX`]).
pub(super) const SERVER_RATE_COUNT: &str = "server-rates";
/// Resource content plus stored job records.
pub(super) const BYTES_USED: &str = "bytes";

/// The tables whose entries expire, in the order a sweep visits them.
pub(super) const EXPIRING: [Table; 4] = [
    Table::Tombstones,
    Table::Jobs,
    Table::Sequences,
    Table::Rates,
];

fn decode<T: serde::de::DeserializeOwned>(key: &str, raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store values serialize")
}

fn get_u64(tx: &mut dyn Tx, table: Table, key: &str) -> Result<Option<u64>, StoreError> {
    match tx.get(table, key)? {
        None => Ok(None),
        Some(raw) => std::str::from_utf8(&raw)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                key: key.to_owned(),
                reason: "not a number".to_owned(),
            }),
    }
}

fn put_u64(tx: &mut dyn Tx, table: Table, key: &str, value: u64) -> Result<(), StoreError> {
    tx.put(table, key, itoa::Buffer::new().format(value).as_bytes())
}

fn counter(tx: &mut dyn Tx, name: &str) -> Result<u64, StoreError> {
    Ok(get_u64(tx, Table::Counters, name)?.unwrap_or(0))
}

fn add_counter(tx: &mut dyn Tx, name: &str, delta: i64) -> Result<(), StoreError> {
    let v = counter(tx, name)?.saturating_add_signed(delta);
    put_u64(tx, Table::Counters, name, v)
}

fn meta(tx: &mut dyn Tx, name: &str) -> Result<Option<ResourceMeta>, StoreError> {
    tx.get(Table::Resources, name)?
        .map(|raw| decode(name, &raw))
        .transpose()
}

/// Whether `name` has a live tombstone (expired ones count as absent).
fn tombstoned(tx: &mut dyn Tx, name: &str, now: u64) -> Result<bool, StoreError> {
    Ok(get_u64(tx, Table::Tombstones, name)?.is_some_and(|expires| expires > now))
}

fn absent(tx: &mut dyn Tx, name: &str, now: u64) -> Result<Lookup, StoreError> {
    Ok(if tombstoned(tx, name, now)? {
        Lookup::Gone
    } else {
        Lookup::Missing
    })
}

pub(super) fn resource(tx: &mut dyn Tx, name: &str, now: u64) -> Result<Lookup, StoreError> {
    let Some(meta) = meta(tx, name)? else {
        return absent(tx, name, now);
    };
    let body = tx.get(Table::Bodies, name)?.unwrap_or_default();
    Ok(Lookup::Found(Resource {
        meta,
        body: Bytes::from(body),
    }))
}

pub(super) fn list_resources(
    tx: &mut dyn Tx,
    limit: usize,
) -> Result<Vec<ResourceMeta>, StoreError> {
    tx.scan(Table::Resources, None, limit)?
        .iter()
        .map(|(k, v)| decode(k, v))
        .collect()
}

/// A strong entity tag that changes on every write: the version and a hash of the content.
fn etag(version: u64, new: &NewResource) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    new.content_type.hash(&mut h);
    new.body.hash(&mut h);
    format!("\"{version}-{:016x}\"", h.finish())
}

pub(super) fn write_resource(
    tx: &mut dyn Tx,
    name: &str,
    new: &NewResource,
    mode: WriteMode,
    conditions: &Conditions,
    limits: &Limits,
    now: u64,
) -> Result<WriteOutcome, StoreError> {
    let current = meta(tx, name)?;
    match (mode, &current) {
        (WriteMode::CreateOnly, Some(_)) => return Ok(WriteOutcome::Exists),
        (WriteMode::ReplaceOnly, None) => {
            return Ok(WriteOutcome::NotFound(absent(tx, name, now)?));
        }
        _ => {}
    }
    let validators = current.as_ref().map(|m| Validators {
        etag: &m.etag,
        modified: m.modified,
    });
    if conditions.evaluate(validators, false) != Outcome::Proceed {
        return Ok(WriteOutcome::PreconditionFailed);
    }
    let old_size = current.as_ref().map_or(0, |m| m.size);
    let new_size = new.body.len() as u64;
    let used = counter(tx, BYTES_USED)?;
    let after = used - old_size.min(used) + new_size;
    if new_size > old_size && after > limits.max_store_bytes {
        return Ok(WriteOutcome::QuotaFull {
            used,
            limit: limits.max_store_bytes,
        });
    }
    // A tombstone (live or expired, until swept) already holds the name's key: recreating
    // the name trades one for the other.
    let tombstone = current.is_none() && tx.get(Table::Tombstones, name)?.is_some();
    if current.is_none() && !tombstone && counter(tx, RESOURCE_COUNT)? >= limits.max_keys {
        return Ok(WriteOutcome::TooManyKeys);
    }
    let version = current.as_ref().map_or(0, |m| m.version) + 1;
    let meta = ResourceMeta {
        name: name.to_owned(),
        content_type: new.content_type.clone(),
        etag: etag(version, new),
        modified: now / 1000,
        size: new_size,
        version,
    };
    tx.put(Table::Resources, name, &encode(&meta))?;
    tx.put(Table::Bodies, name, &new.body)?;
    if tombstone {
        tx.remove(Table::Tombstones, name)?;
    }
    put_u64(tx, Table::Counters, BYTES_USED, after)?;
    Ok(match current {
        None => {
            if !tombstone {
                add_counter(tx, RESOURCE_COUNT, 1)?;
            }
            WriteOutcome::Created(meta)
        }
        Some(_) => WriteOutcome::Replaced(meta),
    })
}

pub(super) fn delete_resource(
    tx: &mut dyn Tx,
    name: &str,
    conditions: &Conditions,
    limits: &Limits,
    now: u64,
) -> Result<DeleteOutcome, StoreError> {
    let Some(current) = meta(tx, name)? else {
        return Ok(DeleteOutcome::NotFound(absent(tx, name, now)?));
    };
    let validators = Validators {
        etag: &current.etag,
        modified: current.modified,
    };
    if conditions.evaluate(Some(validators), false) != Outcome::Proceed {
        return Ok(DeleteOutcome::PreconditionFailed);
    }
    tx.delete(Table::Resources, name)?;
    tx.delete(Table::Bodies, name)?;
    let expires = now.saturating_add(limits.tombstone_ttl.as_millis() as u64);
    // The tombstone takes over the resource's key (RESOURCE_COUNT is unchanged) until a
    // sweep removes it.
    put_u64(tx, Table::Tombstones, name, expires)?;
    add_counter(tx, BYTES_USED, -(current.size as i64))?;
    Ok(DeleteOutcome::Deleted)
}

fn job_expired(job: &Job, limits: &Limits, now: u64) -> bool {
    now >= job
        .submitted_ms
        .saturating_add(limits.job_ttl.as_millis() as u64)
}

/// Moves the bytes counter from `old` to `new` bytes for one stored value.
fn resize(tx: &mut dyn Tx, old: usize, new: usize) -> Result<(), StoreError> {
    if old != new {
        add_counter(tx, BYTES_USED, new as i64 - old as i64)?;
    }
    Ok(())
}

/// Stores a job. Its record (the result, up to 1 MiB, and a little metadata) counts toward
/// `--max-store-bytes` until a sweep removes the expired job.
pub(super) fn submit_job(
    tx: &mut dyn Tx,
    job: &Job,
    limits: &Limits,
) -> Result<JobOutcome, StoreError> {
    let old = tx.get(Table::Jobs, &job.id)?;
    if old.is_none() && counter(tx, JOB_COUNT)? >= limits.max_keys {
        return Ok(JobOutcome::TooManyKeys);
    }
    let raw = encode(job);
    let old_size = old.as_ref().map_or(0, Vec::len) as u64;
    let new_size = raw.len() as u64;
    let used = counter(tx, BYTES_USED)?;
    if new_size > old_size && used - old_size.min(used) + new_size > limits.max_store_bytes {
        return Ok(JobOutcome::QuotaFull {
            used,
            limit: limits.max_store_bytes,
        });
    }
    tx.put(Table::Jobs, &job.id, &raw)?;
    resize(tx, old_size as usize, raw.len())?;
    if old.is_none() {
        add_counter(tx, JOB_COUNT, 1)?;
    }
    Ok(JobOutcome::Accepted)
}

/// The live job `id` and its stored size.
fn live_job(
    tx: &mut dyn Tx,
    id: &str,
    limits: &Limits,
    now: u64,
) -> Result<Option<(Job, usize)>, StoreError> {
    let Some(raw) = tx.get(Table::Jobs, id)? else {
        return Ok(None);
    };
    let job: Job = decode(id, &raw)?;
    Ok((!job_expired(&job, limits, now)).then_some((job, raw.len())))
}

pub(super) fn job(
    tx: &mut dyn Tx,
    id: &str,
    limits: &Limits,
    now: u64,
) -> Result<Option<Job>, StoreError> {
    Ok(live_job(tx, id, limits, now)?.map(|(j, _)| j))
}

pub(super) fn cancel_job(
    tx: &mut dyn Tx,
    id: &str,
    limits: &Limits,
    now: u64,
) -> Result<bool, StoreError> {
    let Some((mut j, size)) = live_job(tx, id, limits, now)? else {
        return Ok(false);
    };
    if j.state(now) != JobState::Running {
        // A finished or already cancelled job stays as it is.
        return Ok(true);
    }
    j.cancelled = true;
    let raw = encode(&j);
    tx.put(Table::Jobs, id, &raw)?;
    resize(tx, size, raw.len())?;
    Ok(true)
}

/// A sequence as stored: everything but its attempts, which are records of their own in
/// [`Table::Attempts`], so that a step writes this small value and one attempt — not every
/// recorded attempt again.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Head {
    codes: Vec<u16>,
    /// Requests answered in this run; attempt `n` (0-based) is stored under `n`.
    pub(super) served: u64,
    touched_ms: u64,
    /// The oldest attempt still stored. `None` in values written before attempts were
    /// stored apart: those kept theirs inline (ignored now), so none is stored apart.
    #[serde(default)]
    first: Option<u64>,
}

impl Head {
    /// The stored attempts are `first()..served`.
    pub(super) fn first(&self) -> u64 {
        self.first.unwrap_or(self.served).min(self.served)
    }

    fn expired(&self, limits: &Limits, now: u64) -> bool {
        now >= self
            .touched_ms
            .saturating_add(limits.sequence_ttl.as_millis() as u64)
    }
}

/// Where attempt `n` of sequence `key` is stored: after `key` and a NUL (which sorts before
/// every other character, so one sequence's attempts are contiguous), zero-padded to sort in
/// order.
pub(super) fn attempt_key(key: &str, n: u64) -> String {
    format!("{key}\0{n:020}")
}

fn head(tx: &mut dyn Tx, key: &str) -> Result<Option<Head>, StoreError> {
    tx.get(Table::Sequences, key)?
        .map(|raw| decode(key, &raw))
        .transpose()
}

/// Removes every stored attempt of `head`.
fn drop_attempts(tx: &mut dyn Tx, key: &str, head: &Head) -> Result<(), StoreError> {
    for n in head.first()..head.served {
        tx.remove(Table::Attempts, &attempt_key(key, n))?;
    }
    Ok(())
}

pub(super) fn sequence_step(
    tx: &mut dyn Tx,
    key: &str,
    codes: &[u16],
    mut attempt: Attempt,
    limits: &Limits,
    now: u64,
) -> Result<SequenceStep, StoreError> {
    if codes.is_empty() {
        return Err(StoreError::Engine(
            "a sequence needs at least one code".to_owned(),
        ));
    }
    let stored = head(tx, key)?;
    let existed = stored.is_some();
    let mut seq = match stored {
        Some(s) if !s.expired(limits, now) && s.codes != codes => {
            return Ok(SequenceStep::Conflict { codes: s.codes });
        }
        Some(s) if !s.expired(limits, now) => s,
        old => {
            if !existed && counter(tx, SEQUENCE_COUNT)? >= limits.max_keys {
                return Ok(SequenceStep::TooManyKeys);
            }
            if let Some(old) = &old {
                drop_attempts(tx, key, old)?;
            }
            Head {
                codes: codes.to_vec(),
                served: 0,
                touched_ms: now,
                first: Some(0),
            }
        }
    };
    let step = usize::try_from(seq.served)
        .unwrap_or(usize::MAX)
        .min(codes.len() - 1);
    let code = codes[step];
    attempt.step = step;
    attempt.code = code;
    attempt.at_ms = now;
    let mut first = seq.first();
    let n = seq.served;
    seq.served += 1;
    seq.touched_ms = now;
    let keep = limits.max_attempts as u64;
    if keep > 0 {
        tx.put(Table::Attempts, &attempt_key(key, n), &encode(&attempt))?;
    } else {
        first = seq.served;
    }
    // Normally one: the attempt that fell out of the window.
    while seq.served - first > keep {
        tx.remove(Table::Attempts, &attempt_key(key, first))?;
        first += 1;
    }
    seq.first = Some(first);
    tx.put(Table::Sequences, key, &encode(&seq))?;
    if !existed {
        add_counter(tx, SEQUENCE_COUNT, 1)?;
    }
    Ok(SequenceStep::Answer { step, code })
}

pub(super) fn sequence(
    tx: &mut dyn Tx,
    key: &str,
    limits: &Limits,
    now: u64,
) -> Result<Option<Sequence>, StoreError> {
    let Some(head) = head(tx, key)? else {
        return Ok(None);
    };
    if head.expired(limits, now) {
        return Ok(None);
    }
    let start = head
        .first()
        .max(head.served.saturating_sub(limits.max_attempts as u64));
    let mut attempts = VecDeque::new();
    if start < head.served {
        let after = match start {
            0 => format!("{key}\0"),
            n => attempt_key(key, n - 1),
        };
        let want = usize::try_from(head.served - start).unwrap_or(usize::MAX);
        for (k, raw) in tx.scan(Table::Attempts, Some(&after), want)? {
            let n = k
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix('\0'))
                .and_then(|digits| digits.parse::<u64>().ok());
            if n.is_some_and(|n| (start..head.served).contains(&n)) {
                attempts.push_back(decode(&k, &raw)?);
            }
        }
    }
    Ok(Some(Sequence {
        codes: head.codes,
        served: head.served,
        touched_ms: head.touched_ms,
        attempts,
    }))
}

/// Removes the sequence (an expired or unreadable one too, freeing its key); `true` only if
/// it was live, as [`sequence`] would have found it.
pub(super) fn reset_sequence(
    tx: &mut dyn Tx,
    key: &str,
    limits: &Limits,
    now: u64,
) -> Result<bool, StoreError> {
    let Some(raw) = tx.get(Table::Sequences, key)? else {
        return Ok(false);
    };
    let stored = decode::<Head>(key, &raw).ok();
    let live = stored.as_ref().is_some_and(|h| !h.expired(limits, now));
    if let Some(h) = &stored {
        drop_attempts(tx, key, h)?;
    }
    tx.remove(Table::Sequences, key)?;
    add_counter(tx, SEQUENCE_COUNT, -1)?;
    Ok(live)
}

/// The counter of the family a rate-limit key belongs to.
pub(super) fn rate_family(key: &str) -> &'static str {
    if key.starts_with(SERVER_RATE_PREFIX) {
        SERVER_RATE_COUNT
    } else {
        RATE_COUNT
    }
}

/// When the server-wide limiter last warned that its keys are full (ms on the store clock),
/// so that the warning comes at most once a minute, not once a request.
static SERVER_FULL_WARNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(super) fn warn_server_keys_full(max_keys: u64, now: u64) {
    use std::sync::atomic::Ordering;
    let last = SERVER_FULL_WARNED.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= 60_000)
        && SERVER_FULL_WARNED
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            max_keys,
            "the server-wide rate limiter tracks --max-keys clients already: new clients pass \
             unlimited until a sweep frees the keys of idle ones"
        );
    }
}

/// One request against a rate limit, by the query's algorithm (see [`super::rate`]), written
/// back only when it passes (a refusal changes nothing).
///
/// Keys come in two families with separate `--max-keys` quotas: the server-wide limiter's
/// ([`SERVER_RATE_PREFIX`]) and every other (on-demand) key, so that neither can fill the
/// other's. A new on-demand key past the quota is [`StoreError::Full`] (507), never a made-up
/// refusal. A new server-wide key past the quota **fails open**: it passes, unrecorded, and
/// a warning is logged. Refusing would let any client lock every new client out for as long
/// as the keys live, and evicting another client's state would have to scan for a victim on
/// the hot path; failing open gives a new client no more than it gets anyway — every new key
/// starts with an empty window — and clients already tracked stay limited. A sweep frees the
/// keys of idle clients (a key expires once its last admitted request left the window).
pub(super) fn rate_limit(tx: &mut dyn Tx, q: &RateQuery) -> Result<RateDecision, StoreError> {
    let stored = tx.get(Table::Rates, &q.key)?;
    let family = rate_family(&q.key);
    let mut record = true;
    if stored.is_none() && counter(tx, family)? >= q.max_keys {
        if family != SERVER_RATE_COUNT {
            return Err(StoreError::Full {
                family: "rate-limit keys",
                limit: q.max_keys,
            });
        }
        warn_server_keys_full(q.max_keys, q.now_ms);
        record = false;
    }
    let (decision, value) = match q.algorithm {
        RateAlgorithm::SlidingWindow => {
            rate::sliding_window(stored.as_deref(), q.limit, q.period_ms(), q.now_ms)
        }
        RateAlgorithm::Gcra => {
            let period_us = u64::try_from(q.period.as_micros()).unwrap_or(u64::MAX);
            rate::gcra(stored.as_deref(), q.limit, period_us, q.now_ms)
        }
    };
    if let (true, Some(value)) = (record, value) {
        tx.put(Table::Rates, &q.key, &value)?;
        if stored.is_none() {
            add_counter(tx, family, 1)?;
        }
    }
    Ok(decision)
}

fn parse_u64(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// Whether the entry `key` = `raw` of an [`EXPIRING`] table has expired at `now` (an
/// unreadable one counts as expired, so that a sweep frees its key).
pub(super) fn expired(table: Table, key: &str, raw: &[u8], limits: &Limits, now: u64) -> bool {
    match table {
        Table::Tombstones => parse_u64(raw).unwrap_or(0) <= now,
        Table::Jobs => decode::<Job>(key, raw).map_or(true, |j| job_expired(&j, limits, now)),
        Table::Sequences => decode::<Head>(key, raw).map_or(true, |h| h.expired(limits, now)),
        // A key whose window is empty, or whose TAT has passed, holds no state a fresh key
        // would not have.
        Table::Rates => match rate::window_expires(raw) {
            Some(expires) => expires <= now,
            None => rate::gcra_expires_us(raw).unwrap_or(0) <= now.saturating_mul(1000),
        },
        _ => false,
    }
}

/// How many entries `table` held, by the counters (`counters`: the Counters table): what
/// bounds a sweep's pass over it.
pub(super) fn sweep_bound(table: Table, counters: &[(String, Vec<u8>)]) -> u64 {
    let count = |name: &str| {
        counters
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| parse_u64(v))
            .unwrap_or(0)
    };
    match table {
        // Resources and tombstones share their count: an upper bound for tombstones.
        Table::Tombstones => count(RESOURCE_COUNT),
        Table::Jobs => count(JOB_COUNT),
        Table::Sequences => count(SEQUENCE_COUNT),
        Table::Rates => count(RATE_COUNT).saturating_add(count(SERVER_RATE_COUNT)),
        _ => 0,
    }
}

/// One batch of a sweep: removes those of `keys` (in `table`) that are still there and still
/// expired at `now`, with whatever they hold (a job's bytes, a sequence's attempts), and
/// moves the counters; returns how many it removed. The counters are read last, which keeps
/// the window in which a concurrent new key conflicts with the batch short.
pub(super) fn sweep_keys(
    tx: &mut dyn Tx,
    table: Table,
    keys: &[String],
    limits: &Limits,
    now: u64,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    let mut deltas: std::collections::BTreeMap<&'static str, i64> = Default::default();
    for key in keys {
        let Some(raw) = tx.get(table, key)? else {
            continue;
        };
        if !expired(table, key, &raw, limits, now) {
            continue;
        }
        tx.remove(table, key)?;
        removed += 1;
        let family = match table {
            Table::Tombstones => RESOURCE_COUNT,
            Table::Jobs => {
                *deltas.entry(BYTES_USED).or_default() -= raw.len() as i64;
                JOB_COUNT
            }
            Table::Sequences => {
                if let Ok(h) = decode::<Head>(key, &raw) {
                    drop_attempts(tx, key, &h)?;
                }
                SEQUENCE_COUNT
            }
            Table::Rates => rate_family(key),
            other => {
                return Err(StoreError::Engine(format!(
                    "{} entries do not expire",
                    other.name()
                )));
            }
        };
        *deltas.entry(family).or_default() -= 1;
    }
    for (name, delta) in deltas {
        add_counter(tx, name, delta)?;
    }
    Ok(removed)
}

const MAINTENANCE: &str = "maintenance";

pub(super) fn maintenance(tx: &mut dyn Tx) -> Result<bool, StoreError> {
    Ok(get_u64(tx, Table::Counters, MAINTENANCE)? == Some(1))
}

pub(super) fn set_maintenance(tx: &mut dyn Tx, on: bool) -> Result<(), StoreError> {
    put_u64(tx, Table::Counters, MAINTENANCE, u64::from(on))
}
