//! `/api/v1/agents/{id}/targets`: direct assignment of stacks to an agent, by an admin or by
//! the generator that owns the stack (only to agents inside its reach); and
//! `/api/v1/stacks/{id}/targets`: one stack assigned to many agents at once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use brokkr_types::Problem;
use brokkr_types::requests::{AddTarget, AddTargets};
use brokkr_types::resources::{AgentTarget, BulkTargets, Page};
use uuid::Uuid;

use crate::http::ApiResult;
use crate::http::caller::{AdminOrGenerator, AnyRole, Caller};
use crate::http::extract::{ApiJson, ApiQuery, ChangeOptions, IdAnd, IdPath, PageQuery};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/agents/{id}/targets", tag = "targets", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<AgentTarget>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AnyRole>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AgentTarget>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .list_targets(caller.requester(), id, window)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/targets", tag = "targets", params(("id" = Uuid, Path)),
    request_body = AddTarget,
    responses((status = 201, body = AgentTarget), (status = 200, body = AgentTarget), (status = "4XX", body = Problem)))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<AddTarget>,
) -> ApiResult<(StatusCode, Json<AgentTarget>)> {
    let targeted = state
        .app
        .add_target(caller.requester(), id, body.stack_id)
        .await?;
    let status = if targeted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(targeted.target)))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}/targets/{stack_id}", tag = "targets",
    params(("id" = Uuid, Path), ("stack_id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdAnd(id, stack_id): IdAnd<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .app
        .remove_target(caller.requester(), id, stack_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/targets", tag = "targets",
    params(("id" = Uuid, Path), ChangeOptions), request_body = AddTargets,
    responses(
        (status = 200, body = BulkTargets, description = "what was assigned, or a TargetingPreview for ?dry_run=true"),
        (status = "4XX", body = Problem)))]
pub async fn add_many(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(options): ApiQuery<ChangeOptions>,
    ApiJson(body): ApiJson<AddTargets>,
) -> ApiResult<Response> {
    let outcome = state
        .app
        .add_targets(caller.requester(), id, body.agent_ids, options.guard())
        .await?;
    Ok(super::retargeted(outcome, StatusCode::OK))
}
