//! `GET /metrics` (admin): the broker's Prometheus metrics, in the OpenMetrics text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::http::caller::{AdminOnly, Caller};
use crate::state::AppState;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text format)",
               content_type = "application/openmetrics-text"),
               (status = "4XX", body = brokkr_types::Problem)))]
pub async fn metrics(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
) -> impl IntoResponse {
    let app = &state.app;
    let m = &app.metrics;
    m.target_state_views
        .set(i64::try_from(app.targeting.hub.len()).unwrap_or(i64::MAX));
    m.auth_cache_entries
        .set(i64::try_from(app.auth.entries()).unwrap_or(i64::MAX));
    if let Err(e) = app.refresh_fleet_gauges().await {
        tracing::warn!(error = %e, "cannot count the fleet for the metrics");
    }
    ([(header::CONTENT_TYPE, OPENMETRICS)], m.encode())
}
