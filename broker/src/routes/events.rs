//! Agent events: an agent posts its own (a retried post with the same idempotency key is
//! stored once); admins, the agent and the owning generator read them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::requests::NewAgentEvent;
use brokkr_types::resources::{AgentEvent, EventStatus, EventType, Page};
use uuid::Uuid;

use crate::access;
use crate::auth::caller::{AdminOrGenerator, AgentOnly, AnyRole, Caller};
use crate::db::{assignments, deployment_objects, events};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath, PageQuery};
use crate::state::AppState;
use crate::targeting::change;

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
    access::agent(&state.db, caller.principal(), id).await?;
    let stack_id = match event.deployment_object_id {
        Some(object) => Some(
            deployment_objects::stack_of_any(&state.db, object)
                .await?
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "validation_failed",
                        "deployment_object_id: no such deployment object",
                    )
                })?,
        ),
        None => None,
    };
    let (stored, created) = events::record(&state.db, id, stack_id, &event).await?;
    if created && let (Some(object), Some(stack)) = (event.deployment_object_id, stack_id) {
        forget_removed_stack(&state, id, &event, object, stack).await?;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)))
}

/// An agent that confirms it removed a deleted stack's objects (a successful prune of the
/// deletion marker) no longer needs the marker: the stack leaves its target state.
async fn forget_removed_stack(
    state: &AppState,
    agent: Uuid,
    event: &NewAgentEvent,
    object: Uuid,
    stack: Uuid,
) -> ApiResult<()> {
    let pruned = event.event_type == EventType::Prune && event.status == EventStatus::Success;
    if !pruned || !deployment_objects::is_deletion_marker(&state.db, object).await? {
        return Ok(());
    }
    let mut tx = state.db.begin().await?;
    assignments::remove(&mut tx, &[(agent, stack)]).await?;
    change::commit_for_agents(state, tx, &[agent]).await
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
    access::agent(&state.db, caller.principal(), id).await?;
    let only = access::only_generator(caller.principal());
    Ok(Json(window.page(
        events::list_for_agent(&state.db, id, only, window).await?,
    )))
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
    access::stack(&state.db, caller.principal(), id).await?;
    Ok(Json(window.page(
        events::list_for_stack(&state.db, id, window).await?,
    )))
}
