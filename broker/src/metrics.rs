//! The broker's Prometheus metrics (`brokkr_*`), registered once with `prometheus-client` and
//! encoded in the OpenMetrics text format by `routes::metrics`. Labels are bounded (a
//! delivery's outcome is one of three words).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// How a webhook delivery attempt ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

/// The state an agent is counted in by `brokkr_fleet_agents`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FleetState {
    pub state: &'static str,
}

/// Every metric the broker exposes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub auth_failures: Counter,
    pub target_state_full: Counter,
    /// Target-state answers with a body sent compressed (`Content-Encoding: zstd`).
    pub target_state_compressed: Counter,
    pub target_state_not_modified: Counter,
    pub long_polls_waiting: Gauge,
    /// Set when metrics are read.
    pub target_state_views: Gauge,
    /// Set when metrics are read.
    pub auth_cache_entries: Gauge,
    /// Webhook delivery attempts by outcome: `delivered`, `retried`, `dead`.
    pub webhook_attempts: Family<Outcome, Counter>,
    pub webhook_in_flight: Gauge,
    /// Seconds from an event's commit to its successful delivery.
    pub webhook_delivery_latency: Histogram,
    /// Set when metrics are read.
    pub fleet_agents: Family<FleetState, Gauge>,
    /// Set when metrics are read.
    pub fleet_backlog: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let auth_failures = Counter::default();
        let target_state_full = Counter::default();
        let target_state_compressed = Counter::default();
        let target_state_not_modified = Counter::default();
        let long_polls_waiting = Gauge::default();
        let target_state_views = Gauge::default();
        let auth_cache_entries = Gauge::default();
        let webhook_attempts = Family::default();
        let webhook_in_flight = Gauge::default();
        let webhook_delivery_latency = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
        ]);
        let fleet_agents = Family::default();
        let fleet_backlog = Gauge::default();
        let r = &mut registry;
        r.register(
            "brokkr_fleet_agents",
            "Active agents by state (healthy, degraded, stale, unreachable).",
            fleet_agents.clone(),
        );
        r.register(
            "brokkr_fleet_backlog",
            "Versions agents are behind, over every agent and assigned stack.",
            fleet_backlog.clone(),
        );
        r.register(
            "brokkr_auth_failures",
            "Requests refused for a missing or invalid PAK.",
            auth_failures.clone(),
        );
        r.register(
            "brokkr_target_state_responses",
            "Target-state answers with a body.",
            target_state_full.clone(),
        );
        r.register(
            "brokkr_target_state_compressed_responses",
            "Target-state answers with a body sent compressed with zstd.",
            target_state_compressed.clone(),
        );
        r.register(
            "brokkr_target_state_not_modified",
            "Target-state answers 304 Not Modified.",
            target_state_not_modified.clone(),
        );
        r.register(
            "brokkr_target_state_waiting",
            "Long polls waiting for a change.",
            long_polls_waiting.clone(),
        );
        r.register(
            "brokkr_target_state_views",
            "Agents whose target-state view is in memory.",
            target_state_views.clone(),
        );
        r.register(
            "brokkr_auth_cache_entries",
            "PAK checks held in the cache.",
            auth_cache_entries.clone(),
        );
        r.register(
            "brokkr_webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, retried, dead).",
            webhook_attempts.clone(),
        );
        r.register(
            "brokkr_webhook_in_flight",
            "Webhook deliveries in progress on this broker.",
            webhook_in_flight.clone(),
        );
        r.register(
            "brokkr_webhook_delivery_latency_seconds",
            "Seconds from an event's commit to its delivery.",
            webhook_delivery_latency.clone(),
        );
        Self {
            registry,
            auth_failures,
            target_state_full,
            target_state_compressed,
            target_state_not_modified,
            long_polls_waiting,
            target_state_views,
            auth_cache_entries,
            webhook_attempts,
            webhook_in_flight,
            webhook_delivery_latency,
            fleet_agents,
            fleet_backlog,
        }
    }
}

impl Metrics {
    /// Counts one webhook attempt.
    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&Outcome { outcome })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Counts a long poll as waiting while it lives.
#[derive(Debug)]
pub struct Waiting<'a>(&'a Gauge);

impl<'a> Waiting<'a> {
    pub fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
