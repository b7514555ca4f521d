//! `/api/v1/agents`: create, list, update and delete (admin); read and rotate (admin or the
//! agent itself); heartbeat (the agent itself). An agent never changes its own status.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::requests::{CreateAgent, Heartbeat, UpdateAgent};
use brokkr_types::resources::{Agent, AgentStatus, AgentWithPak, Page};
use serde_json::json;

use super::audit_change;
use super::stacks::inline_metadata;
use crate::access;
use crate::auth::Principal;
use crate::auth::caller::{AdminOnly, AdminOrAgent, AgentOnly, Caller};
use crate::credentials;
use crate::db::metadata::{self, Owner};
use crate::db::{agents, assignments};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath, PageQuery};
use crate::state::AppState;
use crate::targeting::change::{self, ChangeOptions, Subject};

#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = CreateAgent,
    responses((status = 201, body = AgentWithPak), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiJson(body): ApiJson<CreateAgent>,
) -> ApiResult<(StatusCode, Json<AgentWithPak>)> {
    let status = body.status.unwrap_or(AgentStatus::Active);
    let mut tx = state.db.begin().await?;
    let row = agents::insert(
        &mut tx,
        body.name.as_str(),
        body.cluster_name.as_str(),
        status,
    )
    .await?;
    let id = row.id();
    let metadata = inline_metadata(&body.labels, &body.annotations);
    metadata::write_all(&mut tx, Owner::Agent, id, &metadata).await?;
    let pak = credentials::issue(&mut tx, caller.principal().into(), Principal::Agent(id)).await?;
    audit_change(
        &mut tx,
        caller.principal(),
        "agent.created",
        "agent",
        id,
        json!({ "name": body.name }),
    )
    .await?;
    change::settle(&state, tx, Subject::Agent(id), ChangeOptions::default()).await?;
    let agent = row.with_metadata(metadata);
    Ok((StatusCode::CREATED, Json(AgentWithPak { agent, pak })))
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", params(PageQuery),
    responses((status = 200, body = Page<Agent>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Agent>>> {
    let window = page.window()?;
    Ok(Json(window.page(agents::list(&state.db, window).await?)))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = Agent), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrAgent>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Agent>> {
    let row = access::agent(&state.db, caller.principal(), id).await?;
    let metadata = metadata::load_one(&state.db, Owner::Agent, id).await?;
    Ok(Json(row.with_metadata(metadata)))
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
    let mut tx = state.db.begin().await?;
    let row = agents::update(&mut tx, id, &patch)
        .await?
        .ok_or(ApiError::NotFound("agent"))?;
    let details = json!({ "status": patch.status.map(AgentStatus::as_str), "name": patch.name });
    audit_change(
        &mut tx,
        caller.principal(),
        "agent.updated",
        "agent",
        id,
        details,
    )
    .await?;
    // Its status decides whether it may fetch its state; its names may feed expressions.
    state.targeting.announce(&mut tx, &[id]).await?;
    change::settle(&state, tx, Subject::Agent(id), ChangeOptions::default()).await?;
    state.targeting.changed(&[id]);
    let metadata = metadata::load_one(&state.db, Owner::Agent, id).await?;
    Ok(Json(row.with_metadata(metadata)))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    if !agents::soft_delete(&mut tx, id).await? {
        return Err(ApiError::NotFound("agent"));
    }
    let old = credentials::revoke(&mut tx, caller.principal().into(), Principal::Agent(id)).await?;
    audit_change(
        &mut tx,
        caller.principal(),
        "agent.deleted",
        "agent",
        id,
        json!({}),
    )
    .await?;
    assignments::remove_agent(&mut tx, id).await?;
    change::commit_for_agents(&state, tx, &[id]).await?;
    if let Some(short) = old {
        state.auth.invalidate(&short).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/rotate-pak", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentWithPak), (status = "4XX", body = Problem)))]
pub async fn rotate_pak(
    State(state): State<AppState>,
    caller: Caller<AdminOrAgent>,
    IdPath(id): IdPath,
) -> ApiResult<Json<AgentWithPak>> {
    access::agent(&state.db, caller.principal(), id).await?;
    let mut tx = state.db.begin().await?;
    let rotated = credentials::rotate(&mut tx, caller.principal().into(), Principal::Agent(id))
        .await?
        .ok_or(ApiError::NotFound("agent"))?;
    tx.commit().await?;
    if let Some(short) = rotated.old_short {
        state.auth.invalidate(&short).await;
    }
    let agent = agents::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("agent"))?;
    Ok(Json(AgentWithPak {
        agent,
        pak: rotated.pak,
    }))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/heartbeat", tag = "agents", params(("id" = Uuid, Path)),
    request_body = Heartbeat, responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller<AgentOnly>,
    IdPath(id): IdPath,
    ApiJson(beat): ApiJson<Heartbeat>,
) -> ApiResult<StatusCode> {
    access::agent(&state.db, caller.principal(), id).await?;
    if !agents::heartbeat(&state.db, id, &beat).await? {
        return Err(ApiError::NotFound("agent"));
    }
    Ok(StatusCode::NO_CONTENT)
}
