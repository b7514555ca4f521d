//! Agent events: an active agent posts its own (a retried post with the same idempotency key
//! is stored once); admins, the agent and the owning generator read them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::requests::NewAgentEvent;
use brokkr_types::resources::{AgentEvent, Page};

use crate::http::ApiResult;
use crate::http::caller::{AdminOrGenerator, AgentOnly, AnyRole, Caller};
use crate::http::extract::{ApiJson, ApiQuery, IdPath, PageQuery};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/agents/{id}/events", tag = "events", params(("id" = Uuid, Path)),
    request_body = NewAgentEvent,
    responses((status = 201, body = AgentEvent, description = "stored"),
               (status = 200, body = AgentEvent, description = "already stored under this idempotency key"),
               (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AgentOnly>,
    IdPath(id): IdPath,
    ApiJson(event): ApiJson<NewAgentEvent>,
) -> ApiResult<(StatusCode, Json<AgentEvent>)> {
    let recorded = state
        .app
        .record_event(caller.requester(), id, event)
        .await?;
    let status = if recorded.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(recorded.event)))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/events", tag = "events", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<AgentEvent>), (status = "4XX", body = Problem)))]
pub async fn list_for_agent(
    State(state): State<AppState>,
    caller: Caller<AnyRole>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AgentEvent>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .agent_events(caller.requester(), id, window)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/stacks/{id}/events", tag = "events", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<AgentEvent>), (status = "4XX", body = Problem)))]
pub async fn list_for_stack(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AgentEvent>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .stack_events(caller.requester(), id, window)
            .await?,
    ))
}
