//! The store's semantics, written once over [`Tx`]: every backend runs these same functions
//! inside its own atomic transaction.

use super::precondition::{Outcome, Validators};
use super::*;
use std::hash::{Hash, Hasher};

pub(super) const RESOURCE_COUNT: &str = "resources";
pub(super) const JOB_COUNT: &str = "jobs";
pub(super) const SEQUENCE_COUNT: &str = "sequences";
/// On-demand rate-limit keys (every key but the server-wide limiter's).
pub(super) const RATE_COUNT: &str = "rates";
/// The server-wide limiter's keys ([`SERVER_RATE_PREFIX`]).
pub(super) const SERVER_RATE_COUNT: &str = "server-rates";
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
    if current.is_none() && counter(tx, RESOURCE_COUNT)? >= limits.max_keys {
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
    tx.delete(Table::Tombstones, name)?;
    put_u64(tx, Table::Counters, BYTES_USED, after)?;
    Ok(match current {
        None => {
            add_counter(tx, RESOURCE_COUNT, 1)?;
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
    put_u64(tx, Table::Tombstones, name, expires)?;
    add_counter(tx, RESOURCE_COUNT, -1)?;
    add_counter(tx, BYTES_USED, -(current.size as i64))?;
    Ok(DeleteOutcome::Deleted)
}

fn job_expired(job: &Job, limits: &Limits, now: u64) -> bool {
    now >= job
        .submitted_ms
        .saturating_add(limits.job_ttl.as_millis() as u64)
}

pub(super) fn submit_job(
    tx: &mut dyn Tx,
    job: &Job,
    limits: &Limits,
) -> Result<JobOutcome, StoreError> {
    if counter(tx, JOB_COUNT)? >= limits.max_keys {
        return Ok(JobOutcome::TooManyKeys);
    }
    if tx.get(Table::Jobs, &job.id)?.is_none() {
        add_counter(tx, JOB_COUNT, 1)?;
    }
    tx.put(Table::Jobs, &job.id, &encode(job))?;
    Ok(JobOutcome::Accepted)
}

pub(super) fn job(
    tx: &mut dyn Tx,
    id: &str,
    limits: &Limits,
    now: u64,
) -> Result<Option<Job>, StoreError> {
    let job: Option<Job> = tx
        .get(Table::Jobs, id)?
        .map(|raw| decode(id, &raw))
        .transpose()?;
    Ok(job.filter(|j| !job_expired(j, limits, now)))
}

pub(super) fn cancel_job(
    tx: &mut dyn Tx,
    id: &str,
    limits: &Limits,
    now: u64,
) -> Result<bool, StoreError> {
    let Some(mut j) = job(tx, id, limits, now)? else {
        return Ok(false);
    };
    if j.state(now) != JobState::Running {
        // A finished or already cancelled job stays as it is.
        return Ok(true);
    }
    j.cancelled = true;
    tx.put(Table::Jobs, id, &encode(&j))?;
    Ok(true)
}

fn sequence_expired(s: &Sequence, limits: &Limits, now: u64) -> bool {
    now >= s
        .touched_ms
        .saturating_add(limits.sequence_ttl.as_millis() as u64)
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
    let stored: Option<Sequence> = tx
        .get(Table::Sequences, key)?
        .map(|raw| decode(key, &raw))
        .transpose()?;
    let existed = stored.is_some();
    let mut seq = match stored {
        Some(s) if s.codes == codes && !sequence_expired(&s, limits, now) => s,
        _ => {
            if !existed && counter(tx, SEQUENCE_COUNT)? >= limits.max_keys {
                return Ok(SequenceStep::TooManyKeys);
            }
            Sequence {
                codes: codes.to_vec(),
                served: 0,
                touched_ms: now,
                attempts: VecDeque::new(),
            }
        }
    };
    let step = usize::try_from(seq.served)
        .unwrap_or(usize::MAX)
        .min(codes.len() - 1);
    let code = codes[step];
    seq.served += 1;
    seq.touched_ms = now;
    attempt.step = step;
    attempt.code = code;
    attempt.at_ms = now;
    seq.attempts.push_back(attempt);
    while seq.attempts.len() > limits.max_attempts {
        seq.attempts.pop_front();
    }
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
    let s: Option<Sequence> = tx
        .get(Table::Sequences, key)?
        .map(|raw| decode(key, &raw))
        .transpose()?;
    Ok(s.filter(|s| !sequence_expired(s, limits, now)))
}

/// Removes the sequence (an expired or unreadable one too, freeing its key); `true` only if
/// it was live, as [`sequence`] would have found it.
pub(super) fn reset_sequence(
    tx: &mut dyn Tx,
    key: &str,
    limits: &Limits,
    now: u64,
) -> Result<bool, StoreError> {
    let live = tx
        .get(Table::Sequences, key)?
        .and_then(|raw| decode::<Sequence>(key, &raw).ok())
        .is_some_and(|s| !sequence_expired(&s, limits, now));
    if tx.delete(Table::Sequences, key)? {
        add_counter(tx, SEQUENCE_COUNT, -1)?;
    }
    Ok(live)
}

/// The counter of the family a rate-limit key belongs to.
fn rate_family(key: &str) -> &'static str {
    if key.starts_with(SERVER_RATE_PREFIX) {
        SERVER_RATE_COUNT
    } else {
        RATE_COUNT
    }
}

/// When the server-wide limiter last warned that its keys are full (ms on the store clock),
/// so that the warning comes at most once a minute, not once a request.
static SERVER_FULL_WARNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn warn_server_keys_full(limits: &Limits, now: u64) {
    use std::sync::atomic::Ordering;
    let last = SERVER_FULL_WARNED.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= 60_000)
        && SERVER_FULL_WARNED
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            max_keys = limits.max_keys,
            "the server-wide rate limiter tracks --max-keys clients already: new clients pass \
             unlimited until a sweep frees the keys of idle ones"
        );
    }
}

/// GCRA (the generic cell rate algorithm): one stored number per key, the theoretical arrival
/// time (TAT), in microseconds so that the emission interval (`period / limit`) stays exact at
/// high rates. A request passes if it arrives no earlier than `TAT - (limit - 1) × interval`;
/// each pass moves the TAT one interval on. So `limit` requests pass at once, and then one per
/// interval.
///
/// Keys come in two families with separate `--max-keys` quotas: the server-wide limiter's
/// ([`SERVER_RATE_PREFIX`]) and every other (on-demand) key, so that neither can fill the
/// other's. A new on-demand key past the quota is [`StoreError::Full`] (507), never a made-up
/// refusal. A new server-wide key past the quota **fails open**: it passes, unrecorded, and
/// a warning is logged. Refusing would let any client lock every new client out for as long
/// as the keys live (the bug this replaces), and evicting another client's state would have
/// to scan for a victim on the hot path; failing open gives a new client no more than it
/// gets anyway — every new key starts with a full burst — and clients already tracked stay
/// limited. A sweep frees the keys of idle clients (a key expires once its client has been
/// idle for a period).
pub(super) fn rate_limit(
    tx: &mut dyn Tx,
    key: &str,
    limit: u32,
    period: Duration,
    limits: &Limits,
    now_ms: u64,
) -> Result<RateDecision, StoreError> {
    let limit = limit.max(1);
    let now = now_ms.saturating_mul(1000);
    let period_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX).max(1);
    let interval = (period_us / u64::from(limit)).max(1);
    let stored = get_u64(tx, Table::Rates, key)?;
    let family = rate_family(key);
    let mut record = true;
    if stored.is_none() && counter(tx, family)? >= limits.max_keys {
        if family != SERVER_RATE_COUNT {
            return Err(StoreError::Full {
                family: "rate-limit keys",
                limit: limits.max_keys,
            });
        }
        warn_server_keys_full(limits, now_ms);
        record = false;
    }
    let tat = stored.unwrap_or(now).max(now);
    // The burst tolerance lets exactly `limit` requests through at once.
    let allow_at = tat.saturating_sub(interval.saturating_mul(u64::from(limit - 1)));
    if now < allow_at {
        return Ok(RateDecision {
            allowed: false,
            remaining: 0,
            reset_secs: secs_ceil(tat - now),
            retry_after_secs: secs_ceil(allow_at - now).max(1),
        });
    }
    let new_tat = tat.saturating_add(interval);
    if record {
        put_u64(tx, Table::Rates, key, new_tat)?;
        if stored.is_none() {
            add_counter(tx, family, 1)?;
        }
    }
    let used = (new_tat - now).div_ceil(interval);
    Ok(RateDecision {
        allowed: true,
        remaining: u32::try_from(u64::from(limit).saturating_sub(used)).unwrap_or(0),
        reset_secs: secs_ceil(new_tat - now),
        retry_after_secs: 0,
    })
}

/// Microseconds to whole seconds, rounded up.
fn secs_ceil(us: u64) -> u64 {
    us.div_ceil(1_000_000)
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
        Table::Sequences => {
            decode::<Sequence>(key, raw).map_or(true, |s| sequence_expired(&s, limits, now))
        }
        // A key whose TAT has passed holds no state a fresh key would not have.
        Table::Rates => parse_u64(raw).unwrap_or(0) <= now.saturating_mul(1000),
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
        // Not counted: no bound.
        Table::Tombstones => u64::MAX,
        Table::Jobs => count(JOB_COUNT),
        Table::Sequences => count(SEQUENCE_COUNT),
        Table::Rates => count(RATE_COUNT).saturating_add(count(SERVER_RATE_COUNT)),
        _ => 0,
    }
}

/// One batch of a sweep: removes those of `keys` (in `table`) that are still there and still
/// expired at `now`, and moves the counters; returns how many it removed. The counters are
/// read last, which keeps the window in which a concurrent new key conflicts with the batch
/// short.
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
            // Tombstones hold no key of a family.
            Table::Tombstones => continue,
            Table::Jobs => JOB_COUNT,
            Table::Sequences => SEQUENCE_COUNT,
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
