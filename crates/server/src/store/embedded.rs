//! The default store: redb, an embedded, crash-safe (copy-on-write B-tree, checksummed,
//! fsync on commit) key-value database in `--data-dir`. A write that returned is on disk.
//!
//! **Group commit.** One writer thread owns the write side. Every write of the store
//! ([`Engine::submit`]) is queued to it. The writer takes the first queued transaction, then
//! whatever else is queued (up to [`MAX_BATCH`] transactions, or until they have written
//! [`MAX_BATCH_BYTES`]), and runs them one after another, in queue order, in *one* redb write
//! transaction: each sees the writes of those before it. A transaction's writes are buffered in
//! a journal and applied only if it returns `Ok`, so one that fails (or panics) changes nothing
//! while the others of its batch commit. The batch then commits once, with one fsync
//! (`Durability::Immediate`), and only then is each transaction of it answered: none is
//! acknowledged before the fsync that covers it, and a failed commit fails them all. While a
//! batch commits, the next one queues up, so batches grow with the load and the commit's cost
//! (CPU and fsync) is shared. A batch smaller than the last one may wait a moment (at most
//! [`MAX_LINGER`], and half the last commit's time) for the rest of the writers to arrive.
//!
//! Rate-limit state, whose loss in a crash is harmless, goes through the same writer: a batch
//! of nothing else commits without an fsync (`Durability::None`), and the next durable commit
//! persists it too. Reads run in redb read transactions, beside the writer. The synchronous
//! [`Engine::transact`] and [`Engine::transact_volatile`] (tests and tools) commit in a redb
//! write transaction of their own, which redb orders with the writer's.
//!
//! Dropping the engine closes the queue: the writer commits what was queued, and exits.

use super::{Engine, Journal, OwnedTx, RateDecision, RateQuery, StoreError, Table, Tx};
use futures_util::future::BoxFuture;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const FILE: &str = "statuslab.redb";

/// The most transactions committed together.
pub const MAX_BATCH: usize = 256;
/// A batch takes no further transaction once those in it have written this many bytes.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// The longest a batch waits for more transactions when the queue is empty but it holds fewer
/// than the last batch did (and never more than half the last commit's time). Without it, a
/// fixed set of writers splits in two alternating batches: the first write to arrive after a
/// commit starts a batch of its own while the others are still on their way, and each commit
/// covers half of them. With it, a batch waits the moment it takes them to arrive.
pub const MAX_LINGER: Duration = Duration::from_millis(2);

fn def(table: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table.name())
}

fn engine_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

fn writer_gone() -> StoreError {
    StoreError::Engine("the store's writer thread has stopped".to_owned())
}

/// A redb database file, and the thread that writes to it.
#[derive(Debug)]
pub struct EmbeddedEngine {
    db: Arc<Database>,
    /// The writer's queue and thread (taken when the engine drops).
    writer: Option<Writer>,
    /// Batches the writer committed (or tried to), for tests and the curious.
    batches: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Writer {
    queue: mpsc::Sender<Box<dyn Queued>>,
    thread: std::thread::JoinHandle<()>,
}

impl EmbeddedEngine {
    /// Opens (or creates) the database in `dir`, and starts its writer thread.
    pub fn open(dir: &Path) -> Result<EmbeddedEngine, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Engine(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(FILE);
        let db = Database::create(&path)
            .map_err(|e| StoreError::Engine(format!("opening {}: {e}", path.display())))?;
        // Create every table up front so read paths never meet a missing one.
        let txn = db.begin_write().map_err(engine_error)?;
        for t in Table::ALL {
            txn.open_table(def(t)).map_err(engine_error)?;
        }
        txn.commit().map_err(engine_error)?;
        let db = Arc::new(db);
        let batches = Arc::new(AtomicU64::new(0));
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("statuslab-store-writer".to_owned())
            .spawn({
                let (db, batches) = (Arc::clone(&db), Arc::clone(&batches));
                move || write_loop(&db, &jobs, &batches)
            })
            .map_err(|e| StoreError::Engine(format!("starting the store's writer: {e}")))?;
        Ok(EmbeddedEngine {
            db,
            writer: Some(Writer { queue, thread }),
            batches,
        })
    }

    /// Batches the writer has committed (or tried to) so far.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::SeqCst)
    }

    /// Queues `job` to the writer.
    /// Queues `f` for the writer (`durable`: its batch is fsynced) and awaits its answer.
    fn enqueue<R, F>(&self, f: F, durable: bool) -> BoxFuture<'static, Result<R, StoreError>>
    where
        R: Send + 'static,
        F: FnMut(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = self.queue(Box::new(Pending {
            f,
            durable,
            result: None,
            reply,
        }));
        Box::pin(async move {
            queued?;
            answer.await.map_err(|_| writer_gone())?
        })
    }

    fn queue(&self, job: Box<dyn Queued>) -> Result<(), StoreError> {
        let writer = self.writer.as_ref().ok_or_else(writer_gone)?;
        writer.queue.send(job).map_err(|_| writer_gone())
    }

    /// Runs `f` in a write transaction of its own (not the writer's), committed with
    /// `durability`.
    fn commit<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
        durability: Durability,
    ) -> Result<R, StoreError> {
        // redb admits one write transaction at a time, which makes each of ours serializable.
        let mut txn = self.db.begin_write().map_err(engine_error)?;
        txn.set_durability(durability).map_err(engine_error)?;
        let result = f(&mut RedbTx { txn: &txn });
        match result {
            Ok(r) => {
                txn.commit().map_err(engine_error)?;
                Ok(r)
            }
            Err(e) => {
                let _ = txn.abort();
                Err(e)
            }
        }
    }
}

impl Drop for EmbeddedEngine {
    fn drop(&mut self) {
        if let Some(Writer { queue, thread }) = self.writer.take() {
            // Closing the queue ends the writer once it has committed what is queued; the
            // database closes when both it and this engine have let go of it.
            drop(queue);
            let _ = thread.join();
        }
    }
}

// ---- the writer ----

/// A transaction queued to the writer, with whoever waits for its answer.
trait Queued: Send {
    /// Whether its commit must be durable (not rate-limit state).
    fn durable(&self) -> bool;
    /// Runs it on `tx`; whether it succeeded (and so its writes are to be applied). A panic is
    /// caught and is a failure.
    fn run(&mut self, tx: &mut dyn Tx) -> bool;
    /// Answers it: its own error if it failed, else `commit`'s outcome.
    fn answer(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct Pending<R, F> {
    f: F,
    durable: bool,
    result: Option<Result<R, StoreError>>,
    /// Where the answer goes (an async caller).
    reply: tokio::sync::oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> Queued for Pending<R, F>
where
    R: Send + 'static,
    F: FnMut(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn run(&mut self, tx: &mut dyn Tx) -> bool {
        let f = &mut self.f;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(tx))).unwrap_or_else(|p| {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StoreError::Engine(format!(
                "a store transaction panicked: {why}"
            )))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(e)) => Err(StoreError::Engine(format!("commit failed: {e}"))),
            (Some(Ok(r)), Ok(())) => Ok(r),
            (None, Err(e)) => Err(StoreError::Engine(format!("not run: {e}"))),
            (None, Ok(())) => Err(StoreError::Engine("not run".to_owned())),
        };
        // A caller that went away (a dropped request) needs no answer.
        let _ = self.reply.send(result);
    }
}

/// The writer thread: one batch after another, until the queue is closed and empty.
fn write_loop(db: &Database, jobs: &mpsc::Receiver<Box<dyn Queued>>, batches: &AtomicU64) {
    // The size of the last batch, and how long it took to commit (see `MAX_LINGER`).
    let (mut expect, mut last_commit) = (1, Duration::ZERO);
    while let Ok(first) = jobs.recv() {
        let linger_until = Instant::now() + (last_commit / 2).min(MAX_LINGER);
        batches.fetch_add(1, Ordering::SeqCst);
        let mut txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                first.answer(Err(&engine_error(e)));
                continue;
            }
        };
        let mut done: Vec<Box<dyn Queued>> = Vec::new();
        let (mut bytes, mut durable, mut failed) = (0, false, None);
        let mut next = Some(first);
        while let Some(mut job) = next.take() {
            let mut tx = JournalTx {
                txn: &txn,
                journal: Journal::new(false),
            };
            if job.run(&mut tx) {
                let journal = tx.journal;
                bytes += journal
                    .writes
                    .iter()
                    .map(|((_, k), v)| k.len() + v.as_ref().map_or(0, Vec::len))
                    .sum::<usize>();
                if let Err(e) = apply(&txn, journal) {
                    // The transaction may hold part of it: the whole batch fails.
                    failed = Some(e);
                    done.push(job);
                    break;
                }
                durable |= job.durable();
            }
            done.push(job);
            if done.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                next = jobs.try_recv().ok();
                if next.is_none() && done.len() < expect {
                    let left = linger_until.saturating_duration_since(Instant::now());
                    if !left.is_zero() {
                        next = jobs.recv_timeout(left).ok();
                    }
                }
            }
        }
        let committing = Instant::now();
        let outcome = match failed {
            Some(e) => {
                let _ = txn.abort();
                Err(e)
            }
            None => {
                let durability = if durable {
                    Durability::Immediate
                } else {
                    Durability::None
                };
                txn.set_durability(durability)
                    .map_err(engine_error)
                    .and_then(|()| txn.commit().map_err(engine_error))
            }
        };
        last_commit = committing.elapsed();
        expect = done.len();
        for job in done {
            job.answer(outcome.as_ref().map(|_| ()));
        }
    }
}

/// Applies a succeeded transaction's journal to the batch's redb transaction.
fn apply(txn: &WriteTransaction, journal: Journal) -> Result<(), StoreError> {
    let mut writes = journal.writes.into_iter().peekable();
    while let Some(&((table, _), _)) = writes.peek() {
        let mut t = txn.open_table(def(table)).map_err(engine_error)?;
        while let Some(((_, key), value)) = writes.next_if(|((t, _), _)| *t == table) {
            match value {
                Some(v) => drop(t.insert(key.as_str(), v.as_slice()).map_err(engine_error)?),
                None => drop(t.remove(key.as_str()).map_err(engine_error)?),
            }
        }
    }
    Ok(())
}

/// One transaction of a batch: reads see the batch's redb transaction (the writes of the
/// transactions before it) and its own journal; writes go to the journal.
struct JournalTx<'a> {
    txn: &'a WriteTransaction,
    journal: Journal,
}

impl Tx for JournalTx<'_> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(w) = self.journal.pending(table, key) {
            return Ok(w.clone());
        }
        let t = self.txn.open_table(def(table)).map_err(engine_error)?;
        Ok(t.get(key)
            .map_err(engine_error)?
            .map(|v| v.value().to_vec()))
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
        self.journal.delete(table, key)
    }

    fn scan(
        &mut self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let t = self.txn.open_table(def(table)).map_err(engine_error)?;
        self.journal
            .scan_over(table, after, limit, |enough| collect(&t, after, enough))
    }
}

// ---- the engine ----

/// A transaction of the synchronous API, straight on a redb write transaction (aborted if it
/// fails).
struct RedbTx<'a> {
    txn: &'a WriteTransaction,
}

impl Tx for RedbTx<'_> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.txn.open_table(def(table)).map_err(engine_error)?;
        Ok(t.get(key)
            .map_err(engine_error)?
            .map(|v| v.value().to_vec()))
    }

    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(def(table)).map_err(engine_error)?;
        t.insert(key, value).map_err(engine_error)?;
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        let mut t = self.txn.open_table(def(table)).map_err(engine_error)?;
        Ok(t.remove(key).map_err(engine_error)?.is_some())
    }

    fn scan(
        &mut self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let t = self.txn.open_table(def(table)).map_err(engine_error)?;
        collect(&t, after, limit)
    }
}

impl Engine for EmbeddedEngine {
    const KIND: &'static str = "embedded";
    const BLOCKING: bool = true;

    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.commit(f, Durability::Immediate)
    }

    fn transact_volatile<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        // Rate-limit state: no fsync; the next durable commit persists it along with its own.
        self.commit(f, Durability::None)
    }

    fn submit<R: Send + 'static>(
        self: Arc<Self>,
        f: OwnedTx<R>,
    ) -> BoxFuture<'static, Result<R, StoreError>> {
        self.enqueue(f, true)
    }

    fn submit_rate_limit(
        self: Arc<Self>,
        query: RateQuery,
    ) -> BoxFuture<'static, Result<RateDecision, StoreError>> {
        // Through the writer, in a batch with other writes; no fsync of its own.
        self.enqueue(
            move |tx: &mut dyn Tx| super::ops::rate_limit(tx, &query),
            false,
        )
    }

    fn read<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = self.db.begin_read().map_err(engine_error)?;
        f(&mut RedbReadTx { txn: &txn })
    }
}

struct RedbReadTx<'a> {
    txn: &'a ReadTransaction,
}

impl Tx for RedbReadTx<'_> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.txn.open_table(def(table)).map_err(engine_error)?;
        Ok(t.get(key)
            .map_err(engine_error)?
            .map(|v| v.value().to_vec()))
    }

    fn put(&mut self, _: Table, _: &str, _: &[u8]) -> Result<(), StoreError> {
        Err(super::read_only())
    }

    fn delete(&mut self, _: Table, _: &str) -> Result<bool, StoreError> {
        Err(super::read_only())
    }

    fn scan(
        &mut self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let t = self.txn.open_table(def(table)).map_err(engine_error)?;
        collect(&t, after, limit)
    }
}

/// Up to `limit` entries after `after`, from any readable table.
fn collect(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let iter = match after {
        Some(a) => t.range::<&str>((Bound::Excluded(a), Bound::Unbounded)),
        None => t.range::<&str>(..),
    }
    .map_err(engine_error)?;
    let mut out = Vec::new();
    for entry in iter.take(limit) {
        let (k, v) = entry.map_err(engine_error)?;
        out.push((k.value().to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answer<R> = BoxFuture<'static, Result<R, StoreError>>;

    fn open(dir: &Path) -> Arc<EmbeddedEngine> {
        Arc::new(EmbeddedEngine::open(dir).expect("open redb"))
    }

    fn submit<R: Send + 'static>(
        engine: &Arc<EmbeddedEngine>,
        f: impl FnMut(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
    ) -> Answer<R> {
        Arc::clone(engine).submit(Box::new(f))
    }

    fn get(engine: &EmbeddedEngine, key: &str) -> Option<String> {
        engine
            .read(&mut |tx| tx.get(Table::Resources, key))
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }

    /// Queues a transaction that holds the writer (inside a batch) until the returned sender
    /// is used, and returns once the writer runs it: what is queued meanwhile joins its batch.
    fn hold_writer(engine: &Arc<EmbeddedEngine>) -> (Answer<()>, mpsc::Sender<()>) {
        let (started, wait_started) = mpsc::channel();
        let (release, wait_release) = mpsc::channel::<()>();
        let held = submit(engine, move |tx| {
            let _ = started.send(());
            let _ = wait_release.recv_timeout(Duration::from_secs(30));
            tx.put(Table::Resources, "held", b"h")
        });
        wait_started
            .recv_timeout(Duration::from_secs(30))
            .expect("the writer runs the holding transaction");
        (held, release)
    }

    /// In one batch, a transaction that fails or panics changes nothing, and the others
    /// commit; each is answered with its own outcome.
    #[tokio::test]
    async fn a_failed_transaction_in_a_batch_changes_nothing_and_the_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let before = engine.batches();
        let (held, release) = hold_writer(&engine);
        let ok1 = submit(&engine, |tx| tx.put(Table::Resources, "a", b"1"));
        let failed = submit(&engine, |tx| {
            tx.put(Table::Resources, "b", b"2")?;
            tx.remove(Table::Resources, "a")?;
            Err::<(), _>(StoreError::Engine("refused".to_owned()))
        });
        let panicked = submit::<()>(&engine, |tx| {
            tx.put(Table::Resources, "c", b"3")?;
            panic!("on purpose")
        });
        let ok2 = submit(&engine, |tx| {
            // Sees the first transaction's write, and nothing of the failed ones.
            let seen = (
                tx.get(Table::Resources, "a")?,
                tx.get(Table::Resources, "b")?,
                tx.get(Table::Resources, "c")?,
            );
            tx.put(Table::Resources, "d", b"4")?;
            Ok(seen)
        });
        release.send(()).unwrap();
        held.await.unwrap();
        ok1.await.unwrap();
        let e = failed.await.unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        let e = panicked.await.unwrap_err();
        assert!(e.to_string().contains("on purpose"), "{e}");
        assert_eq!(ok2.await.unwrap(), (Some(b"1".to_vec()), None, None));
        assert_eq!(engine.batches() - before, 1, "all in one batch");
        assert_eq!(get(&engine, "a").as_deref(), Some("1"));
        assert_eq!(get(&engine, "b"), None);
        assert_eq!(get(&engine, "c"), None);
        assert_eq!(get(&engine, "d").as_deref(), Some("4"));
        assert_eq!(get(&engine, "held").as_deref(), Some("h"));
        // The writer survived the panic.
        submit(&engine, |tx| tx.put(Table::Resources, "e", b"5"))
            .await
            .unwrap();
        assert_eq!(get(&engine, "e").as_deref(), Some("5"));
    }

    /// The transactions of one batch run in queue order, each seeing the writes (and
    /// deletions, in scans too) of those before it.
    #[tokio::test]
    async fn a_batch_runs_in_queue_order_and_each_sees_the_earlier_writes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        engine
            .transact(&mut |tx| {
                tx.put(Table::Jobs, "k1", b"stored")?;
                tx.put(Table::Jobs, "k3", b"stored")
            })
            .unwrap();
        let before = engine.batches();
        let (held, release) = hold_writer(&engine);
        let steps: Vec<Answer<String>> = (0..10)
            .map(|n| {
                submit(&engine, move |tx| {
                    let mut v = tx
                        .get(Table::Counters, "x")?
                        .map(|v| String::from_utf8(v).unwrap())
                        .unwrap_or_default();
                    v.push_str(&n.to_string());
                    tx.put(Table::Counters, "x", v.as_bytes())?;
                    Ok(v)
                })
            })
            .collect();
        let scan = submit(&engine, |tx| {
            tx.remove(Table::Jobs, "k1")?;
            tx.put(Table::Jobs, "k2", b"new")?;
            let keys = |tx: &mut dyn Tx| -> Result<Vec<String>, StoreError> {
                Ok(tx
                    .scan(Table::Jobs, None, 10)?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect())
            };
            keys(tx)
        });
        let scan_after = submit(&engine, |tx| {
            Ok(tx
                .scan(Table::Jobs, Some("k2"), 10)?
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>())
        });
        release.send(()).unwrap();
        held.await.unwrap();
        let mut want = String::new();
        for (n, step) in steps.into_iter().enumerate() {
            want.push_str(&n.to_string());
            assert_eq!(step.await.unwrap(), want);
        }
        assert_eq!(scan.await.unwrap(), ["k2", "k3"]);
        assert_eq!(scan_after.await.unwrap(), ["k3"]);
        assert_eq!(engine.batches() - before, 1, "all in one batch");
        let x = engine.read(&mut |tx| tx.get(Table::Counters, "x")).unwrap();
        assert_eq!(x.as_deref(), Some(&b"0123456789"[..]));
    }

    /// Many concurrent writers are all acknowledged, share batches, and every acknowledged
    /// write is in the database once it is reopened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_are_all_acknowledged_and_durable() {
        const WRITERS: usize = 64;
        const EACH: usize = 20;
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    for n in 0..EACH {
                        let key = format!("w{w}-{n}");
                        submit(&engine, move |tx| {
                            tx.put(Table::Resources, &key, key.as_bytes())
                        })
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let batches = engine.batches();
        // Writers waiting at once share a batch (a commit takes long enough for that).
        assert!(
            batches >= 1 && batches < (WRITERS * EACH) as u64,
            "{batches} batches"
        );
        eprintln!("{} writes in {batches} batches", WRITERS * EACH);
        drop(Arc::into_inner(engine).expect("the only reference"));
        let engine = open(dir.path());
        for w in 0..WRITERS {
            for n in 0..EACH {
                let key = format!("w{w}-{n}");
                assert_eq!(get(&engine, &key).as_deref(), Some(key.as_str()));
            }
        }
    }

    /// Rate limits go through the writer (in the batches of other writes, or in batches of
    /// their own, committed without an fsync), are seen by the next read, and are on disk
    /// once the engine has been dropped (redb makes them durable when it closes).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limits_go_through_the_writer_and_survive_closing() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let query = |key: &str| RateQuery {
            key: key.to_owned(),
            limit: 3,
            period: Duration::from_secs(3600),
            algorithm: super::super::RateAlgorithm::default(),
            now_ms: 1_750_000_000_000,
            max_keys: 100,
        };
        let before = engine.batches();
        let (held, release) = hold_writer(&engine);
        let mixed = [
            Arc::clone(&engine).submit_rate_limit(query("a")),
            Arc::clone(&engine).submit_rate_limit(query("a")),
        ];
        let write = submit(&engine, |tx| tx.put(Table::Resources, "w", b"w"));
        release.send(()).unwrap();
        held.await.unwrap();
        let mut remaining = Vec::new();
        for m in mixed {
            remaining.push(m.await.unwrap().remaining);
        }
        write.await.unwrap();
        assert_eq!(remaining, [2, 1]);
        assert_eq!(engine.batches() - before, 1, "all in one batch");
        // Alone: a batch of rate limits only.
        let alone = Arc::clone(&engine)
            .submit_rate_limit(query("b"))
            .await
            .unwrap();
        assert_eq!(alone.remaining, 2);
        let stored = |engine: &EmbeddedEngine| {
            engine
                .read(&mut |tx| Ok((tx.get(Table::Rates, "a")?, tx.get(Table::Rates, "b")?)))
                .unwrap()
        };
        let (a, b) = stored(&engine);
        assert!(a.is_some() && b.is_some());
        drop(Arc::into_inner(engine).expect("the only reference"));
        let engine = open(dir.path());
        assert_eq!(stored(&engine), (a, b));
        let again = Arc::clone(&engine)
            .submit_rate_limit(query("b"))
            .await
            .unwrap();
        assert_eq!(again.remaining, 1);
    }

    /// Dropping the engine lets the writer commit what was queued, then closes the database
    /// (so it can be opened again at once).
    #[tokio::test]
    async fn dropping_the_engine_commits_what_was_queued() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let (held, release) = hold_writer(&engine);
        let queued = submit(&engine, |tx| tx.put(Table::Resources, "late", b"l"));
        let dropper = std::thread::spawn(move || drop(Arc::into_inner(engine).unwrap()));
        std::thread::sleep(Duration::from_millis(50));
        release.send(()).unwrap();
        dropper.join().unwrap();
        held.await.unwrap();
        queued.await.unwrap();
        let engine = open(dir.path());
        assert_eq!(get(&engine, "late").as_deref(), Some("l"));
        assert_eq!(get(&engine, "held").as_deref(), Some("h"));
    }
}
