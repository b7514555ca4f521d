//! Prometheus metrics of the broker (`brokkr_*`), kept in atomics (no labels, so cardinality is
//! fixed) and served at `GET /metrics` to admins.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::auth::caller::{AdminOnly, Caller};
use crate::state::AppState;

#[derive(Debug, Default)]
pub struct Metrics {
    pub auth_failures: AtomicU64,
    pub target_state_full: AtomicU64,
    pub target_state_not_modified: AtomicU64,
    pub long_polls_waiting: AtomicI64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a long poll as waiting while it lives.
#[derive(Debug)]
pub struct Waiting<'a>(&'a AtomicI64);

impl<'a> Waiting<'a> {
    pub fn new(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
               (status = "4XX", body = brokkr_types::Problem)))]
pub async fn metrics(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
) -> impl IntoResponse {
    let m = &state.metrics;
    let counter = |v: &AtomicU64| v.load(Ordering::Relaxed) as i64;
    let rows: [(&str, &str, &str, i64); 6] = [
        (
            "brokkr_auth_failures_total",
            "counter",
            "Requests refused for a missing or invalid PAK.",
            counter(&m.auth_failures),
        ),
        (
            "brokkr_target_state_responses_total",
            "counter",
            "Target-state answers with a body.",
            counter(&m.target_state_full),
        ),
        (
            "brokkr_target_state_not_modified_total",
            "counter",
            "Target-state answers 304 Not Modified.",
            counter(&m.target_state_not_modified),
        ),
        (
            "brokkr_target_state_waiting",
            "gauge",
            "Long polls waiting for a change.",
            m.long_polls_waiting.load(Ordering::Relaxed),
        ),
        (
            "brokkr_target_state_views",
            "gauge",
            "Agents whose target-state view is in memory.",
            state.targeting.hub.len() as i64,
        ),
        (
            "brokkr_auth_cache_entries",
            "gauge",
            "PAK checks held in the cache.",
            state.auth.entries() as i64,
        ),
    ];
    let body = brokkr_types::prometheus::render(&rows);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
