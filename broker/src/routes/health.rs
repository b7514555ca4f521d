//! Unauthenticated probes: `/healthz` (the process answers) and `/readyz` (the database does).

use axum::Json;
use axum::extract::State;
use brokkr_types::Problem;
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, ApiResult};
use crate::state::AppState;

/// Probe answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    if !state.app.database_answers().await {
        return Err(ApiError::Unavailable("the database does not answer".into()));
    }
    Ok(Json(Health {
        status: "ready".into(),
    }))
}
