//! The default store: redb, an embedded, crash-safe (copy-on-write B-tree, checksummed,
//! fsync on commit) key-value database in `--data-dir`. A write that returned is on disk.
//!
//! **Group commit.** Each write commits at once without an fsync (`Durability::None`), then
//! waits for a durable commit that covers it: redb makes every earlier non-durable commit
//! durable with the next `Durability::Immediate` one. One waiting writer at a time makes that
//! durable commit (an empty transaction, one fsync); the writers whose commits it covers
//! return without an fsync of their own. Concurrent writers thus share fsyncs, and none is
//! acknowledged before the fsync that covers its write.

use super::{Engine, StoreError, Table, Tx};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

const FILE: &str = "statuslab.redb";

fn def(table: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table.name())
}

fn engine_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

/// A redb database file.
#[derive(Debug)]
pub struct EmbeddedEngine {
    db: Database,
    /// Non-durable write commits so far (numbered from 1 in the order they returned).
    committed: AtomicU64,
    /// The highest commit number known to be on disk; held while making a durable commit.
    durable: Mutex<u64>,
}

impl EmbeddedEngine {
    /// Opens (or creates) the database in `dir`.
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
        Ok(EmbeddedEngine {
            db,
            committed: AtomicU64::new(0),
            durable: Mutex::new(0),
        })
    }

    /// Returns once commit number `mine` is on disk: at once if a durable commit already
    /// covered it, else after one this thread makes (covering every commit that returned
    /// before it began).
    fn sync_through(&self, mine: u64) -> Result<(), StoreError> {
        let mut durable = self.durable.lock().unwrap_or_else(PoisonError::into_inner);
        if *durable >= mine {
            return Ok(());
        }
        // Every commit counted here returned before the durable one below begins, so it
        // covers them all.
        let covered = self.committed.load(Ordering::SeqCst);
        let mut txn = self.db.begin_write().map_err(engine_error)?;
        txn.set_durability(Durability::Immediate)
            .map_err(engine_error)?;
        txn.commit().map_err(engine_error)?;
        *durable = covered;
        Ok(())
    }
}

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

impl EmbeddedEngine {
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

impl Engine for EmbeddedEngine {
    const KIND: &'static str = "embedded";
    const BLOCKING: bool = true;

    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let r = self.commit(f, Durability::None)?;
        let mine = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        self.sync_through(mine)?;
        Ok(r)
    }

    fn transact_volatile<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        // Rate-limit state: no fsync; the next durable commit persists it along with its own.
        self.commit(f, Durability::None)
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
        Some(a) => t.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
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
