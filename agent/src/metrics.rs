//! Prometheus metrics of the agent (`brokkr_agent_*`), kept in atomics and rendered as text.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters and gauges shared by the loop and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    pub reconciles: AtomicU64,
    pub applies: AtomicU64,
    pub apply_failures: AtomicU64,
    pub pruned: AtomicU64,
    pub broker_errors: AtomicU64,
    pub events_pending: AtomicU64,
    pub last_reconcile_unix: AtomicU64,
    pub kubernetes_reachable: AtomicBool,
    /// Set once a target state (fresh or remembered) has been reconciled.
    pub ready: AtomicBool,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let rows = [
            (
                "brokkr_agent_reconciles_total",
                "counter",
                "Reconciliation passes.",
                get(&self.reconciles),
            ),
            (
                "brokkr_agent_applies_total",
                "counter",
                "Deployment objects applied.",
                get(&self.applies),
            ),
            (
                "brokkr_agent_apply_failures_total",
                "counter",
                "Failed deployment object applies.",
                get(&self.apply_failures),
            ),
            (
                "brokkr_agent_pruned_objects_total",
                "counter",
                "Objects deleted because they are no longer desired.",
                get(&self.pruned),
            ),
            (
                "brokkr_agent_broker_errors_total",
                "counter",
                "Failed calls to the broker.",
                get(&self.broker_errors),
            ),
            (
                "brokkr_agent_events_pending",
                "gauge",
                "Events waiting to be delivered.",
                get(&self.events_pending),
            ),
            (
                "brokkr_agent_last_reconcile_timestamp_seconds",
                "gauge",
                "Unix time of the last pass.",
                get(&self.last_reconcile_unix),
            ),
            (
                "brokkr_agent_kubernetes_reachable",
                "gauge",
                "1 when the API server answered the last check.",
                u64::from(self.kubernetes_reachable.load(Ordering::Relaxed)),
            ),
        ];
        let rows = rows.map(|(name, kind, help, value)| (name, kind, help, value as i64));
        brokkr_types::prometheus::render(&rows)
    }
}
