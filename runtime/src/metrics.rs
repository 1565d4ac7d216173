//! A Prometheus registry owned by one runtime (and whoever it is shared
//! with), never the process-wide recorder.
//!
//! The `metrics` crate's macros record into one global recorder. A library
//! that installed that recorder would fight with an embedding program that
//! has its own (only the first install wins) and would make every runtime
//! in a process share counts. So the runtime records into its own
//! [`Metrics`] through `metrics::with_local_recorder`, and `/metrics`
//! renders exactly that registry. An application that wants its own
//! metrics on the same page registers them here ([`Metrics::counter`],
//! [`Metrics::gauge`], or [`Metrics::record`] for the macros).
//!
//! Memory stays bounded however long nobody scrapes `/metrics`: the
//! exporter keeps every histogram sample until an upkeep folds the samples
//! into the buckets, so every [`UPKEEP_EVERY`]-th recording runs one
//! (found by the fuzzer: without it RSS grew with every call until a scrape).

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use metrics::{Counter, Gauge, Label};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

/// Histogram buckets for every `*_seconds` metric: 0.5 ms to 10 s.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Recordings through [`Metrics::record`] between two upkeeps.
const UPKEEP_EVERY: u64 = 1024;

/// A Prometheus registry: cheap to clone (clones share the registry).
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    recordings: Arc<AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry. Histograms named `*_seconds` get buckets from
    /// 0.5 ms to 10 s.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        Self {
            recorder: Arc::new(recorder),
            recordings: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Runs `f` with this registry as the recorder of the `metrics` macros
    /// (`counter!`, `gauge!`, `histogram!`) called inside it, on this thread.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        let value = metrics::with_local_recorder(self.recorder.as_ref(), f);
        self.count_recording();
        value
    }

    /// Counts a recording through a kept handle, for the upkeep every
    /// [`UPKEEP_EVERY`]-th one.
    pub(crate) fn count_recording(&self) {
        if self.recordings.fetch_add(1, Ordering::Relaxed) % UPKEEP_EVERY == UPKEEP_EVERY - 1 {
            self.upkeep();
        }
    }

    /// Folds the histogram samples recorded so far into their buckets, which
    /// frees them. [`record`](Self::record) does this every 1,024 calls and
    /// rendering does it too; call it yourself only if you record
    /// histograms through handles kept outside `record`.
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// A counter in this registry, e.g. `counter("jobs_total", &[("kind", "import")])`.
    /// Keep the handle: incrementing it costs no lookup.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Counter {
        let labels: Vec<Label> = labels.iter().map(|&(k, v)| Label::new(k, v)).collect();
        self.record(|| metrics::counter!(name, labels))
    }

    /// A gauge in this registry. Keep the handle.
    pub fn gauge(&self, name: &'static str) -> Gauge {
        self.record(|| metrics::gauge!(name))
    }

    /// The registry in the Prometheus text format, as served at `/metrics`.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}
