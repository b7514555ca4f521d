//! `GET /api/v1/agents/{id}/target-state`: the full desired state of an agent with an ETag;
//! `If-None-Match` with the current ETag answers `304 Not Modified` after one small query.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokkr_types::Problem;
use brokkr_types::resources::AgentStatus;
use brokkr_types::target_state::TargetState;
use uuid::Uuid;

use crate::access;
use crate::auth::Principal;
use crate::auth::caller::{AdminOrAgent, Caller};
use crate::db::target_state;
use crate::domain::target_etag;
use crate::error::{ApiError, ApiResult};
use crate::extract::IdPath;
use crate::state::AppState;

fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/target-state", tag = "agents",
    params(("id" = Uuid, Path), ("If-None-Match" = Option<String>, Header, description = "ETag of the state the agent holds")),
    responses((status = 200, body = TargetState), (status = 304, description = "unchanged"), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrAgent>,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let agent = access::agent(&state.db, caller.principal(), id).await?;
    if matches!(caller.principal(), Principal::Agent(_)) && agent.status() == AgentStatus::Inactive
    {
        return Err(ApiError::Forbidden(
            "this agent is inactive; an admin must set its status to active".into(),
        ));
    }
    let pairs = target_state::fingerprint(&state.db, id).await?;
    let etag = target_etag::etag(id, &pairs);
    let held = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if held.is_some_and(|held| target_etag::matches(held, &etag)) {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag));
    }
    let stacks = target_state::load(&state.db, id).await?;
    let loaded: Vec<(Uuid, Uuid)> = stacks
        .iter()
        .map(|s| (s.stack_id, s.deployment_object.id))
        .collect();
    let etag = target_etag::etag(id, &loaded);
    let body = TargetState {
        agent_id: id,
        etag: etag.clone(),
        stacks,
    };
    Ok(with_etag(Json(body).into_response(), &etag))
}
