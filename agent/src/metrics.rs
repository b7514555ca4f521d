//! Prometheus metrics of the agent (`brokkr_agent_*`), registered once with `prometheus-client`
//! and encoded in the OpenMetrics text format for `/metrics`.

use std::sync::atomic::AtomicBool;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters and gauges shared by the loop and the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub applies: Counter,
    pub apply_failures: Counter,
    pub pruned: Counter,
    pub broker_errors: Counter,
    pub events_pending: Gauge,
    pub last_reconcile_unix: Gauge,
    pub kubernetes_reachable: Gauge,
    /// Set once a target state (fresh or remembered) has been reconciled.
    pub ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            r.register(name, help, g.clone());
            g
        };
        let r = &mut registry;
        Self {
            reconciles: counter(r, "brokkr_agent_reconciles", "Reconciliation passes."),
            applies: counter(r, "brokkr_agent_applies", "Deployment objects applied."),
            apply_failures: counter(
                r,
                "brokkr_agent_apply_failures",
                "Failed deployment object applies.",
            ),
            pruned: counter(
                r,
                "brokkr_agent_pruned_objects",
                "Objects deleted because they are no longer desired.",
            ),
            broker_errors: counter(
                r,
                "brokkr_agent_broker_errors",
                "Failed calls to the broker.",
            ),
            events_pending: gauge(
                r,
                "brokkr_agent_events_pending",
                "Events waiting to be delivered.",
            ),
            last_reconcile_unix: gauge(
                r,
                "brokkr_agent_last_reconcile_timestamp_seconds",
                "Unix time of the last pass.",
            ),
            kubernetes_reachable: gauge(
                r,
                "brokkr_agent_kubernetes_reachable",
                "1 when the API server answered the last check.",
            ),
            ready: AtomicBool::new(false),
            registry,
        }
    }
}

impl Metrics {
    pub fn add(counter: &Counter, n: usize) {
        counter.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
