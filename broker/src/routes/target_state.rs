//! `GET /api/v1/agents/{id}/target-state`: the full desired state of an agent with an ETag.
//! `If-None-Match` with the current ETag answers `304 Not Modified` from memory, without the
//! database; with `?wait=N` (N ≤ 60) the request is held until the state changes or N seconds
//! pass, so a change reaches a waiting agent at once, whichever replica it was made on.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokkr_types::Problem;
use brokkr_types::resources::AgentStatus;
use brokkr_types::target_state::TargetState;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Principal;
use crate::auth::caller::{AdminOrAgent, Caller};
use crate::db::{agents, plugins, target_state};
use crate::domain::target_etag;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath};
use crate::metrics::{Metrics, Waiting};
use crate::state::AppState;
use crate::targeting::View;

/// `?wait=` of a long poll.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TargetStateQuery {
    /// Seconds to wait for a change when `If-None-Match` matches (0–60).
    pub wait: Option<u64>,
}

fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The agent's current view, from memory or (once per change) from the database.
async fn current_view(state: &AppState, agent: Uuid) -> ApiResult<Arc<View>> {
    let hub = &state.targeting.hub;
    let (generation, cached) = hub.snapshot(agent);
    if let Some(view) = cached {
        return Ok(view);
    }
    let row = agents::get_row(&state.db, agent)
        .await?
        .ok_or(ApiError::NotFound("agent"))?;
    let pairs = target_state::fingerprint(&state.db, agent).await?;
    let policies = plugins::policies_for_agent(&state.db, agent).await?;
    let policies: Arc<str> = serde_json::to_string(&policies)
        .map_err(|e| ApiError::Internal(format!("cannot serialise policies: {e}")))?
        .into();
    let active = row.status() == AgentStatus::Active;
    let view = Arc::new(View::new(agent, active, pairs, policies));
    hub.store(agent, generation, view.clone());
    Ok(view)
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/target-state", tag = "agents",
    params(("id" = Uuid, Path), TargetStateQuery,
           ("If-None-Match" = Option<String>, Header, description = "ETag of the state the agent holds")),
    responses((status = 200, body = TargetState), (status = 304, description = "unchanged"),
               (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrAgent>,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<TargetStateQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let is_agent = match caller.principal() {
        Principal::Agent(own) if own != id => return Err(ApiError::NotFound("agent")),
        Principal::Agent(_) => true,
        _ => false,
    };
    let max = state.settings.targeting.max_wait_seconds;
    let wait = query.wait.unwrap_or(0);
    if wait > max {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("wait must be between 0 and {max} seconds"),
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let held = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    loop {
        // Subscribe before reading, so a change between the two cannot be missed.
        let mut changes = state.targeting.hub.subscribe(id);
        let view = current_view(&state, id).await?;
        if is_agent && !view.active {
            let detail = "this agent is inactive; an admin must set its status to active";
            return Err(ApiError::Forbidden(detail.into()));
        }
        let unchanged = held
            .as_deref()
            .is_some_and(|h| target_etag::matches(h, &view.etag));
        if !unchanged {
            let fragments = &state.targeting.fragments;
            let body = fragments.body(&state.db, id, &view).await?;
            Metrics::inc(&state.metrics.target_state_full);
            let response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            return Ok(with_etag(response, &view.etag));
        }
        let woken = wait > 0 && {
            let _waiting = Waiting::new(&state.metrics.long_polls_waiting);
            tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_ok()
        };
        if !woken {
            Metrics::inc(&state.metrics.target_state_not_modified);
            return Ok(with_etag(
                StatusCode::NOT_MODIFIED.into_response(),
                &view.etag,
            ));
        }
    }
}
