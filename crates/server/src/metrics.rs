//! Prometheus metrics (`GET /metrics`): counters kept in fixed arrays of atomics — a request
//! costs a few relaxed increments, no lock and no allocation — and encoded by
//! `prometheus-client` only when scraped.
//!
//! The bottom layer: it knows nothing of routes, stores or the wire; the layers above give it
//! their labels (route patterns, the store's engine) and report what happened.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Methods counted by name; any other is `other`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];
/// Codes 100–599, one counter each.
const CODES: usize = 500;
/// Upper bounds of the request-duration buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The route label of requests that matched no route.
pub(crate) const UNMATCHED: &str = "unmatched";

/// One route's request durations.
#[derive(Debug, Default)]
struct Histogram {
    /// Counts per bucket (not cumulative), the last for +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of durations, in microseconds.
    sum_us: AtomicU64,
}

/// Which limiter refused a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limiter {
    /// The server-wide `--rate-limit`.
    Server,
    /// A `/rate-limit/{n}/{period}` route.
    Route,
}

/// Everything counted; one per server.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Route labels, by route index; the last is [`UNMATCHED`].
    routes: Vec<&'static str>,
    /// Requests by route × method × code.
    requests: Box<[AtomicU64]>,
    /// Durations by route.
    durations: Box<[Histogram]>,
    /// Client connections open now.
    connections: AtomicI64,
    /// Requests admitted and waiting for their content or their answer (`Service::hold`).
    in_flight: AtomicI64,
    /// Requests refused by load shedding (`--max-in-flight`).
    shed: AtomicU64,
    /// Requests refused by the server-wide limiter and by `/rate-limit` routes.
    rate_limited: [AtomicU64; 2],
    /// The store's engine (`memory`, `embedded`, `redis`).
    engine: &'static str,
    /// Store operations, and those that failed.
    store_ops: AtomicU64,
    store_errors: AtomicU64,
}

/// What the metrics read from elsewhere at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gauges {
    /// Access-log lines dropped so far.
    pub(crate) access_log_dropped: u64,
}

impl Metrics {
    /// Metrics for these route labels (by index) and the store's engine.
    pub(crate) fn new(
        routes: impl IntoIterator<Item = &'static str>,
        engine: &'static str,
    ) -> Metrics {
        let mut routes: Vec<&'static str> = routes.into_iter().collect();
        routes.push(UNMATCHED);
        let n = routes.len();
        Metrics {
            requests: (0..n * METHODS.len() * CODES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            durations: (0..n).map(|_| Histogram::default()).collect(),
            routes,
            connections: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
            shed: AtomicU64::new(0),
            rate_limited: [AtomicU64::new(0), AtomicU64::new(0)],
            engine,
            store_ops: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
        }
    }

    /// The index of the "unmatched" route label.
    pub(crate) fn unmatched(&self) -> usize {
        self.routes.len() - 1
    }

    /// Counts an answered request: its route (index; out of range means unmatched), method,
    /// final code and how long it took.
    #[cfg(test)]
    pub(crate) fn request(self: &Arc<Self>, route: usize, method: &str, code: u16, took: Duration) {
        let mut tally = Tally::default();
        self.tally(&mut tally, route, method, code, took);
    }

    /// [`Metrics::request`] into `tally`, which adds its requests to the counters when it is
    /// settled, dropped, or given a request of another kind (route, method, code, duration
    /// bucket). A connection answering a run of alike requests then adds to the shared
    /// counters once per run, not three times per request.
    pub(crate) fn tally(
        self: &Arc<Self>,
        tally: &mut Tally,
        route: usize,
        method: &str,
        code: u16,
        took: Duration,
    ) {
        let route = route.min(self.unmatched());
        let method = METHODS[..METHODS.len() - 1]
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len() - 1);
        let code = usize::from(code.clamp(100, 599) - 100);
        let counter = (route * METHODS.len() + method) * CODES + code;
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        let kind = (counter, bucket);
        let same = tally.metrics.as_ref().is_some_and(|m| Arc::ptr_eq(m, self));
        if !same || tally.kind != kind {
            tally.settle();
            if !same {
                tally.metrics = Some(Arc::clone(self));
            }
            tally.kind = kind;
        }
        tally.requests += 1;
        tally.sum_us += took.as_micros() as u64;
    }

    /// A connection opened (`+1`) or closed (`-1`).
    pub(crate) fn connection(&self, delta: i64) {
        self.connections.fetch_add(delta, Ordering::Relaxed);
    }

    /// A request was admitted: counted in flight until the guard is dropped.
    pub(crate) fn admitted(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// A request was refused by load shedding.
    pub(crate) fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was refused by a rate limiter.
    pub(crate) fn rate_limited(&self, by: Limiter) {
        self.rate_limited[by as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A store operation ended, well or not.
    pub(crate) fn store_op(&self, ok: bool) {
        self.store_ops.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.store_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition (format 0.0.4), or OpenMetrics text when `openmetrics`.
    pub(crate) fn render(self: &Arc<Self>, gauges: Gauges, openmetrics: bool) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape {
            metrics: Arc::clone(self),
            gauges,
        }));
        let mut out = String::new();
        let encoded = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        };
        encoded.expect("writing to a String does not fail");
        out
    }
}

/// Answered requests of one kind (route, method, code, duration bucket) not yet added to the
/// shared counters: see [`Metrics::tally`].
#[derive(Debug, Default)]
pub(crate) struct Tally {
    metrics: Option<Arc<Metrics>>,
    /// The request counter's index (route × method × code) and the duration bucket.
    kind: (usize, usize),
    requests: u64,
    sum_us: u64,
}

impl Tally {
    /// Adds what is tallied to the counters.
    pub(crate) fn settle(&mut self) {
        let Some(m) = &self.metrics else { return };
        if self.requests == 0 {
            return;
        }
        let (counter, bucket) = self.kind;
        m.requests[counter].fetch_add(self.requests, Ordering::Relaxed);
        let h = &m.durations[counter / (METHODS.len() * CODES)];
        h.buckets[bucket].fetch_add(self.requests, Ordering::Relaxed);
        h.sum_us.fetch_add(self.sum_us, Ordering::Relaxed);
        self.requests = 0;
        self.sum_us = 0;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.settle();
    }
}

/// A request in flight, until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `Content-Type` of [`Metrics::render`]'s output.
pub(crate) fn content_type(openmetrics: bool) -> &'static str {
    if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    }
}

/// One scrape: the counters as they are now.
#[derive(Debug)]
struct Scrape {
    metrics: Arc<Metrics>,
    gauges: Gauges,
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let m = &self.metrics;
        {
            let mut family = encoder.encode_descriptor(
                "statuslab_http_requests",
                "HTTP requests answered, by route pattern, method and final status code",
                None,
                MetricType::Counter,
            )?;
            for (r, route) in m.routes.iter().enumerate() {
                for (k, method) in METHODS.iter().enumerate() {
                    let base = (r * METHODS.len() + k) * CODES;
                    for (c, n) in m.requests[base..base + CODES].iter().enumerate() {
                        let n = n.load(Ordering::Relaxed);
                        if n == 0 {
                            continue;
                        }
                        let code = (100 + c).to_string();
                        let labels = [("route", *route), ("method", method), ("code", &code)];
                        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "statuslab_http_request_duration_seconds",
                "Time from a request's head to its answer being handed to the connection, by route pattern",
                None,
                MetricType::Histogram,
            )?;
            for (r, route) in m.routes.iter().enumerate() {
                let h = &m.durations[r];
                let counts: Vec<u64> = h
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                let count: u64 = counts.iter().sum();
                if count == 0 {
                    continue;
                }
                // Per-bucket counts: the encoder makes them cumulative.
                let buckets: Vec<(f64, u64)> = BUCKETS
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(counts)
                    .collect();
                let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
                family
                    .encode_family(&[("route", *route)])?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    sum, count, &buckets, None,
                )?;
            }
        }
        let gauge = |encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64| {
            ConstGauge::new(v).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)
        };
        gauge(
            &mut encoder,
            "statuslab_connections_open",
            "Client connections open now",
            m.connections.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut encoder,
            "statuslab_requests_in_flight",
            "Requests admitted and waiting for their content or their answer",
            m.in_flight.load(Ordering::Relaxed),
        )?;
        let counter = |encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64| {
            ConstCounter::new(v).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)
        };
        counter(
            &mut encoder,
            "statuslab_shed_requests",
            "Requests refused with 503 because --max-in-flight were being handled",
            m.shed.load(Ordering::Relaxed),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "statuslab_rate_limited_requests",
                "Requests refused with 429, by limiter (server: --rate-limit; route: /rate-limit/{n}/{period})",
                None,
                MetricType::Counter,
            )?;
            for (limiter, n) in ["server", "route"].iter().zip(&m.rate_limited) {
                ConstCounter::new(n.load(Ordering::Relaxed))
                    .encode(family.encode_family(&[("limiter", *limiter)])?)?;
            }
        }
        for (name, help, v) in [
            (
                "statuslab_store_operations",
                "Store operations, by engine",
                &m.store_ops,
            ),
            (
                "statuslab_store_errors",
                "Store operations that failed, by engine",
                &m.store_errors,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(v.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("engine", m.engine)])?)?;
        }
        counter(
            &mut encoder,
            "statuslab_access_log_dropped_lines",
            "Access-log lines dropped because the destination did not keep up",
            self.gauges.access_log_dropped,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tally counts a run of alike requests when a request of another kind comes, when it
    /// is settled and when it is dropped; never twice.
    #[test]
    fn a_tally_counts_each_request_once() {
        let m = Arc::new(Metrics::new(["/status/{codes}"], "memory"));
        let count = |code: &str| {
            let series = format!(
                "statuslab_http_requests_total{{route=\"/status/{{codes}}\",method=\"GET\",code=\"{code}\"}} "
            );
            let text = m.render(Gauges::default(), false);
            text.lines()
                .find_map(|l| l.strip_prefix(&series)?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut tally = Tally::default();
        let fast = Duration::from_micros(100);
        for _ in 0..3 {
            m.tally(&mut tally, 0, "GET", 404, fast);
        }
        assert_eq!(count("404"), 0);
        m.tally(&mut tally, 0, "GET", 500, fast);
        assert_eq!((count("404"), count("500")), (3, 0));
        // Another duration bucket is another kind.
        m.tally(&mut tally, 0, "GET", 500, Duration::from_secs(1));
        assert_eq!(count("500"), 1);
        tally.settle();
        tally.settle();
        assert_eq!(count("500"), 2);
        m.tally(&mut tally, 0, "GET", 404, fast);
        drop(tally);
        assert_eq!((count("404"), count("500")), (4, 2));
        let text = m.render(Gauges::default(), false);
        assert!(
            text.contains(
                "statuslab_http_request_duration_seconds_count{route=\"/status/{codes}\"} 6"
            ),
            "{text}"
        );
    }

    #[test]
    fn counts_render_as_prometheus_text() {
        let m = Arc::new(Metrics::new(["/status/{codes}", "/health"], "memory"));
        m.request(0, "GET", 404, Duration::from_micros(300));
        m.request(0, "GET", 404, Duration::from_millis(3));
        m.request(1, "BREW", 200, Duration::from_millis(30));
        m.request(99, "GET", 404, Duration::from_millis(1));
        m.rate_limited(Limiter::Server);
        m.store_op(true);
        m.store_op(false);
        m.connection(1);
        let guard = m.admitted();
        let text = m.render(
            Gauges {
                access_log_dropped: 7,
            },
            false,
        );
        drop(guard);
        assert!(
            m.render(Gauges::default(), false)
                .contains("statuslab_requests_in_flight 0\n")
        );
        for line in [
            "statuslab_http_requests_total{route=\"/status/{codes}\",method=\"GET\",code=\"404\"} 2",
            "statuslab_http_requests_total{route=\"/health\",method=\"other\",code=\"200\"} 1",
            "statuslab_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} 1",
            "statuslab_http_request_duration_seconds_bucket{route=\"/status/{codes}\",le=\"0.0005\"} 1",
            "statuslab_http_request_duration_seconds_bucket{route=\"/status/{codes}\",le=\"0.0025\"} 1",
            "statuslab_http_request_duration_seconds_bucket{route=\"/status/{codes}\",le=\"0.005\"} 2",
            "statuslab_http_request_duration_seconds_bucket{route=\"/status/{codes}\",le=\"+Inf\"} 2",
            "statuslab_http_request_duration_seconds_count{route=\"/status/{codes}\"} 2",
            "statuslab_connections_open 1",
            "statuslab_requests_in_flight 1",
            "statuslab_rate_limited_requests_total{limiter=\"server\"} 1",
            "statuslab_store_operations_total{engine=\"memory\"} 2",
            "statuslab_store_errors_total{engine=\"memory\"} 1",
            "statuslab_access_log_dropped_lines_total 7",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(m.render(Gauges::default(), true).ends_with("# EOF\n"));
    }
}
