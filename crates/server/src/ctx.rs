//! What every handler may use: the configuration, the store, the pre-rendered bodies and the
//! edge's per-process state. One `Ctx` is built at start and shared read-only.

use crate::config::Config;
use crate::content::bodies::Bodies;
use crate::metrics::Metrics;
use crate::store::SharedStore;
use crate::store::metered::Metered;
use crate::wire::BodyBudget;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The shared context of every request.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The validated configuration.
    pub(crate) cfg: Arc<Config>,
    /// Resources, jobs, sequences, rate-limit state, the maintenance flag.
    pub(crate) store: SharedStore,
    /// Bodies for every code and format, rendered once.
    pub(crate) bodies: Bodies,
    /// Maintenance mode and the in-flight count.
    pub(crate) edge: EdgeState,
    /// Request content buffered at once, over all connections.
    pub(crate) budget: Arc<BodyBudget>,
    /// What `/metrics` reports; `None` under `--no-metrics`.
    pub(crate) metrics: Option<Arc<Metrics>>,
}

impl Ctx {
    /// The context for a configuration and a store; with metrics on, `route_labels` (by
    /// route index) label the request counts, and every store operation is counted.
    pub(crate) fn new(
        cfg: Config,
        store: SharedStore,
        route_labels: impl IntoIterator<Item = &'static str>,
    ) -> Ctx {
        let edge = EdgeState::new(cfg.maintenance);
        let budget = Arc::new(BodyBudget::new(cfg.max_buffered_bodies));
        let metrics = cfg
            .metrics
            .then(|| Arc::new(Metrics::new(route_labels, store.kind())));
        let store = match &metrics {
            Some(m) => Arc::new(Metered {
                inner: store,
                metrics: Arc::clone(m),
            }) as SharedStore,
            None => store,
        };
        Ctx {
            cfg: Arc::new(cfg),
            store,
            bodies: Bodies::new(),
            edge,
            budget,
            metrics,
        }
    }
}

/// Per-process edge state, lock-free.
#[derive(Debug, Default)]
pub(crate) struct EdgeState {
    /// Maintenance mode, mirrored from the store (refreshed every second).
    maintenance: AtomicBool,
    /// Requests being handled now (counted only under `--max-in-flight`).
    pub(crate) in_flight: Arc<AtomicUsize>,
}

impl EdgeState {
    /// Edge state starting in or out of maintenance mode (so the very first request already
    /// sees `--maintenance`, before the store is consulted).
    fn new(maintenance: bool) -> EdgeState {
        EdgeState {
            maintenance: AtomicBool::new(maintenance),
            in_flight: Arc::default(),
        }
    }

    /// Whether maintenance mode is on.
    pub(crate) fn in_maintenance(&self) -> bool {
        self.maintenance.load(Ordering::Relaxed)
    }

    /// Switches maintenance mode in this process.
    pub(crate) fn set_maintenance(&self, on: bool) {
        self.maintenance.store(on, Ordering::Relaxed);
    }
}
