//! `/api/v1/agents/{id}/targets`: direct assignment of stacks to an agent, by an admin or by the
//! generator that owns the stack. Generators see only assignments of their own stacks.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::requests::AddTarget;
use brokkr_types::resources::{AgentTarget, Page};
use serde_json::json;
use uuid::Uuid;

use super::audit_change;
use crate::access;
use crate::auth::Principal;
use crate::auth::caller::{AdminOrGenerator, AnyRole, Caller};
use crate::db::{stacks, targets};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdAnd, IdPath, PageQuery};
use crate::state::AppState;
use crate::targeting::change::{self, ChangeOptions, Subject};

#[utoipa::path(get, path = "/api/v1/agents/{id}/targets", tag = "targets", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<AgentTarget>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AnyRole>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AgentTarget>>> {
    let window = page.window()?;
    access::agent(&state.db, caller.principal(), id).await?;
    let only = access::only_generator(caller.principal());
    Ok(Json(window.page(
        targets::list_for_agent(&state.db, id, only, window).await?,
    )))
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
    access::agent(&state.db, caller.principal(), id).await?;
    access::stack(&state.db, caller.principal(), body.stack_id).await?;
    let mut tx = state.db.begin().await?;
    if stacks::get_row_in(&mut tx, body.stack_id).await?.is_none() {
        return Err(ApiError::NotFound("stack"));
    }
    let (target, created) = targets::add(&mut tx, id, body.stack_id).await?;
    if created {
        audit_change(
            &mut tx,
            caller.principal(),
            "target.added",
            "agent",
            id,
            json!({ "stack_id": body.stack_id }),
        )
        .await?;
    }
    change::settle(&state, tx, Subject::Agent(id), ChangeOptions::default()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(target)))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}/targets/{stack_id}", tag = "targets",
    params(("id" = Uuid, Path), ("stack_id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdAnd(id, stack_id): IdAnd<Uuid>,
) -> ApiResult<StatusCode> {
    let owner = stacks::owner_of_any(&state.db, stack_id).await?;
    let allowed = match caller.principal() {
        Principal::Admin => owner.is_some(),
        Principal::Generator(own) => owner == Some(own),
        Principal::Agent(_) => false,
    };
    if !allowed {
        return Err(ApiError::NotFound("stack"));
    }
    let mut tx = state.db.begin().await?;
    if !targets::remove(&mut tx, id, stack_id).await? {
        return Err(ApiError::NotFound("target"));
    }
    audit_change(
        &mut tx,
        caller.principal(),
        "target.removed",
        "agent",
        id,
        json!({ "stack_id": stack_id }),
    )
    .await?;
    change::settle(&state, tx, Subject::Agent(id), ChangeOptions::default()).await?;
    Ok(StatusCode::NO_CONTENT)
}
