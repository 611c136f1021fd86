//! The default store: redb, an embedded, crash-safe (copy-on-write B-tree, checksummed,
//! fsync on commit) key-value database in `--data-dir`. A write that returned is on disk.

use super::{Engine, StoreError, Table, Tx};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use std::path::Path;

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
        Ok(EmbeddedEngine { db })
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
        self.commit(f, Durability::Immediate)
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
