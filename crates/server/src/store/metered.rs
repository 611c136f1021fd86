//! A store that counts its operations and their failures for the metrics, around any engine.

use super::*;
use crate::metrics::Metrics;

/// `inner`, with every operation counted in `metrics`.
#[derive(Debug)]
pub(crate) struct Metered {
    pub(crate) inner: SharedStore,
    pub(crate) metrics: Arc<Metrics>,
}

impl Metered {
    fn count<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.metrics.store_op(result.is_ok());
        result
    }
}

#[async_trait::async_trait]
impl Store for Metered {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    async fn resource(&self, name: &str) -> Result<Lookup, StoreError> {
        self.count(self.inner.resource(name).await)
    }
    async fn list_resources(&self, limit: usize) -> Result<Vec<ResourceMeta>, StoreError> {
        self.count(self.inner.list_resources(limit).await)
    }
    async fn write_resource(
        &self,
        name: &str,
        new: NewResource,
        mode: WriteMode,
        conditions: Conditions,
    ) -> Result<WriteOutcome, StoreError> {
        self.count(self.inner.write_resource(name, new, mode, conditions).await)
    }
    async fn delete_resource(
        &self,
        name: &str,
        conditions: Conditions,
    ) -> Result<DeleteOutcome, StoreError> {
        self.count(self.inner.delete_resource(name, conditions).await)
    }
    async fn submit_job(&self, job: Job) -> Result<JobOutcome, StoreError> {
        self.count(self.inner.submit_job(job).await)
    }
    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.count(self.inner.job(id).await)
    }
    async fn cancel_job(&self, id: &str) -> Result<bool, StoreError> {
        self.count(self.inner.cancel_job(id).await)
    }
    async fn sequence_step(
        &self,
        key: &str,
        codes: Vec<u16>,
        attempt: Attempt,
    ) -> Result<SequenceStep, StoreError> {
        self.count(self.inner.sequence_step(key, codes, attempt).await)
    }
    async fn sequence(&self, key: &str) -> Result<Option<Sequence>, StoreError> {
        self.count(self.inner.sequence(key).await)
    }
    async fn reset_sequence(&self, key: &str) -> Result<bool, StoreError> {
        self.count(self.inner.reset_sequence(key).await)
    }
    async fn rate_limit_with(
        &self,
        key: &str,
        limit: u32,
        period: Duration,
        algorithm: RateAlgorithm,
    ) -> Result<RateDecision, StoreError> {
        self.count(
            self.inner
                .rate_limit_with(key, limit, period, algorithm)
                .await,
        )
    }
    async fn sweep(&self) -> Result<u64, StoreError> {
        self.count(self.inner.sweep().await)
    }
    async fn maintenance(&self) -> Result<bool, StoreError> {
        self.count(self.inner.maintenance().await)
    }
    async fn set_maintenance(&self, on: bool) -> Result<(), StoreError> {
        self.count(self.inner.set_maintenance(on).await)
    }
}
