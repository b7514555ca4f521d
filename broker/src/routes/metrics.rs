//! `GET /metrics` (admin): the broker's Prometheus metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::http::caller::{AdminOnly, Caller};
use crate::state::AppState;

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
               (status = "4XX", body = brokkr_types::Problem)))]
pub async fn metrics(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
) -> impl IntoResponse {
    let app = &state.app;
    let m = &app.metrics;
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
            app.targeting.hub.len() as i64,
        ),
        (
            "brokkr_auth_cache_entries",
            "gauge",
            "PAK checks held in the cache.",
            app.auth.entries() as i64,
        ),
    ];
    let body = brokkr_types::prometheus::render(&rows);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
