//! `/api/v1/agents`: create, list, update and delete (admin); read and rotate (admin or the
//! agent itself); heartbeat (the agent itself, while active).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::requests::{CreateAgent, Heartbeat, UpdateAgent};
use brokkr_types::resources::{Agent, AgentWithPak, Page};

use crate::http::caller::{AdminOnly, AdminOrAgent, AgentOnly, Caller};
use crate::http::extract::{ApiJson, ApiQuery, IdPath, PageQuery};
use crate::http::{ApiResult, Secret};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = CreateAgent,
    responses((status = 201, body = AgentWithPak), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiJson(body): ApiJson<CreateAgent>,
) -> ApiResult<(StatusCode, Secret<AgentWithPak>)> {
    let created = state.app.create_agent(caller.requester(), body).await?;
    Ok((StatusCode::CREATED, Secret(created)))
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", params(PageQuery),
    responses((status = 200, body = Page<Agent>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Agent>>> {
    let window = page.window()?;
    Ok(Json(
        state.app.list_agents(caller.requester(), window).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = Agent), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrAgent>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Agent>> {
    Ok(Json(state.app.agent(caller.requester(), id).await?))
}

#[utoipa::path(method(put, patch), path = "/api/v1/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path)), request_body = UpdateAgent,
    responses((status = 200, body = Agent), (status = "4XX", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<UpdateAgent>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(
        state
            .app
            .update_agent(caller.requester(), id, patch)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    state.app.delete_agent(caller.requester(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/rotate-pak", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentWithPak), (status = "4XX", body = Problem)))]
pub async fn rotate_pak(
    State(state): State<AppState>,
    caller: Caller<AdminOrAgent>,
    IdPath(id): IdPath,
) -> ApiResult<Secret<AgentWithPak>> {
    Ok(Secret(
        state.app.rotate_agent_pak(caller.requester(), id).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/heartbeat", tag = "agents", params(("id" = Uuid, Path)),
    request_body = Heartbeat, responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller<AgentOnly>,
    IdPath(id): IdPath,
    ApiJson(beat): ApiJson<Heartbeat>,
) -> ApiResult<StatusCode> {
    state.app.heartbeat(caller.requester(), id, beat).await?;
    Ok(StatusCode::NO_CONTENT)
}
