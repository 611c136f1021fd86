//! `--store memory`: the key-value layout in process memory, one mutex around all tables.
//! Ephemeral; for tests and throwaway runs.

use super::{Engine, StoreError, Table, Tx};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

/// An in-memory engine.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    tables: Mutex<BTreeMap<(Table, String), Vec<u8>>>,
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new() -> MemoryEngine {
        MemoryEngine::default()
    }
}

/// A transaction: writes go to a journal applied on success, so a failed transaction changes
/// nothing.
struct MemTx<'a> {
    data: &'a BTreeMap<(Table, String), Vec<u8>>,
    journal: super::Journal,
}

impl Tx for MemTx<'_> {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(match self.journal.pending(table, key) {
            Some(w) => w.clone(),
            None => self.data.get(&(table, key.to_owned())).cloned(),
        })
    }

    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.journal.put(table, key, value)
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        let existed = self.get(table, key)?.is_some();
        self.journal.delete(table, key)?;
        Ok(existed)
    }

    fn scan(
        &mut self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let data = self.data;
        self.journal.scan_over(table, after, limit, |enough| {
            let lower = match after {
                Some(a) => Bound::Excluded((table, a.to_owned())),
                None => Bound::Included((table, String::new())),
            };
            Ok(data
                .range((lower, Bound::Unbounded))
                .take_while(|((t, _), _)| *t == table)
                .take(enough)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect())
        })
    }
}

impl Engine for MemoryEngine {
    const KIND: &'static str = "memory";
    const BLOCKING: bool = false;

    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut data = self
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut tx = MemTx {
            data: &data,
            journal: super::Journal::new(false),
        };
        let result = f(&mut tx)?;
        let writes = tx.journal.writes;
        for (k, v) in writes {
            match v {
                Some(v) => data.insert(k, v),
                None => data.remove(&k),
            };
        }
        Ok(result)
    }

    fn read<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let data = self
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut MemTx {
            data: &data,
            journal: super::Journal::new(true),
        })
    }
}
