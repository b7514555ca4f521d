//! Labels and annotations of agents (admin) and stacks (admin or owning generator):
//! `POST …/labels`, `DELETE …/labels/{label}`, `POST …/annotations`, `DELETE …/annotations/{key}`.
//! Each change answers with the whole updated agent or stack.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::requests::{AddAnnotation, AddLabel};
use brokkr_types::resources::{Agent, Stack};
use brokkr_types::{AnnotationKey, Label, Problem};
use serde_json::json;
use uuid::Uuid;

use super::audit_change;
use crate::access;
use crate::auth::Principal;
use crate::auth::caller::{AdminOnly, AdminOrGenerator, Caller};
use crate::db::metadata::{self, Owner};
use crate::db::{StoreResult, Tx, agents, stacks};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdAnd, IdPath};
use crate::state::AppState;

/// One change to an owner's metadata.
enum Change {
    AddLabel(Label),
    RemoveLabel(Label),
    SetAnnotation(AddAnnotation),
    RemoveAnnotation(AnnotationKey),
}

impl Change {
    fn action(&self, owner: Owner) -> &'static str {
        match (owner, self) {
            (Owner::Agent, Self::AddLabel(_)) => "agent.label_added",
            (Owner::Agent, Self::RemoveLabel(_)) => "agent.label_removed",
            (Owner::Agent, Self::SetAnnotation(_)) => "agent.annotation_set",
            (Owner::Agent, Self::RemoveAnnotation(_)) => "agent.annotation_removed",
            (Owner::Stack, Self::AddLabel(_)) => "stack.label_added",
            (Owner::Stack, Self::RemoveLabel(_)) => "stack.label_removed",
            (Owner::Stack, Self::SetAnnotation(_)) => "stack.annotation_set",
            (Owner::Stack, Self::RemoveAnnotation(_)) => "stack.annotation_removed",
        }
    }

    /// Applies the change; returns whether anything changed.
    async fn apply(&self, tx: &mut Tx, owner: Owner, id: Uuid) -> StoreResult<bool> {
        match self {
            Self::AddLabel(label) => metadata::add_label(tx, owner, id, label.as_str()).await,
            Self::RemoveLabel(label) => metadata::remove_label(tx, owner, id, label.as_str()).await,
            Self::SetAnnotation(a) => {
                metadata::set_annotation(tx, owner, id, a.key.as_str(), a.value.as_str()).await?;
                Ok(true)
            }
            Self::RemoveAnnotation(key) => {
                metadata::remove_annotation(tx, owner, id, key.as_str()).await
            }
        }
    }

    fn detail(&self) -> serde_json::Value {
        match self {
            Self::AddLabel(l) | Self::RemoveLabel(l) => json!({ "label": l }),
            Self::SetAnnotation(a) => json!({ "key": a.key }),
            Self::RemoveAnnotation(k) => json!({ "key": k }),
        }
    }
}

/// Applies `change` in one audited transaction; `false` when it changed nothing.
async fn commit_change(
    state: &AppState,
    caller: Principal,
    owner: Owner,
    id: Uuid,
    change: &Change,
) -> ApiResult<bool> {
    let mut tx = state.db.begin().await?;
    let alive = match owner {
        Owner::Agent => agents::get_row_in(&mut tx, id).await?.is_some(),
        Owner::Stack => stacks::get_row_in(&mut tx, id).await?.is_some(),
    };
    if !alive {
        return Err(ApiError::NotFound(if owner == Owner::Agent {
            "agent"
        } else {
            "stack"
        }));
    }
    let changed = change.apply(&mut tx, owner, id).await?;
    if changed {
        let kind = if owner == Owner::Agent {
            "agent"
        } else {
            "stack"
        };
        audit_change(
            &mut tx,
            caller,
            change.action(owner),
            kind,
            id,
            change.detail(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

fn removal_status(changed: bool, what: &'static str) -> ApiResult<StatusCode> {
    if changed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(what))
    }
}

fn addition_status(changed: bool) -> StatusCode {
    if changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

async fn agent_after(state: &AppState, id: Uuid) -> ApiResult<Json<Agent>> {
    agents::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("agent"))
}

async fn stack_after(state: &AppState, id: Uuid) -> ApiResult<Json<Stack>> {
    stacks::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("stack"))
}

fn label_param(raw: String) -> ApiResult<Label> {
    Label::parse(raw).map_err(|_| ApiError::NotFound("label"))
}

fn key_param(raw: String) -> ApiResult<AnnotationKey> {
    AnnotationKey::parse(raw).map_err(|_| ApiError::NotFound("annotation"))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/labels", tag = "agents", params(("id" = Uuid, Path)),
    request_body = AddLabel, responses((status = 201, body = Agent), (status = 200, body = Agent), (status = "4XX", body = Problem)))]
pub async fn add_agent_label(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<AddLabel>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    let changed = commit_change(
        &state,
        caller.principal(),
        Owner::Agent,
        id,
        &Change::AddLabel(body.label),
    )
    .await?;
    Ok((addition_status(changed), agent_after(&state, id).await?))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}/labels/{label}", tag = "agents",
    params(("id" = Uuid, Path), ("label" = String, Path)), responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove_agent_label(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdAnd(id, label): IdAnd<String>,
) -> ApiResult<StatusCode> {
    let change = Change::RemoveLabel(label_param(label)?);
    removal_status(
        commit_change(&state, caller.principal(), Owner::Agent, id, &change).await?,
        "label",
    )
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/annotations", tag = "agents", params(("id" = Uuid, Path)),
    request_body = AddAnnotation, responses((status = 201, body = Agent), (status = "4XX", body = Problem)))]
pub async fn set_agent_annotation(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<AddAnnotation>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    commit_change(
        &state,
        caller.principal(),
        Owner::Agent,
        id,
        &Change::SetAnnotation(body),
    )
    .await?;
    Ok((StatusCode::CREATED, agent_after(&state, id).await?))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}/annotations/{key}", tag = "agents",
    params(("id" = Uuid, Path), ("key" = String, Path)), responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove_agent_annotation(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdAnd(id, key): IdAnd<String>,
) -> ApiResult<StatusCode> {
    let change = Change::RemoveAnnotation(key_param(key)?);
    removal_status(
        commit_change(&state, caller.principal(), Owner::Agent, id, &change).await?,
        "annotation",
    )
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/labels", tag = "stacks", params(("id" = Uuid, Path)),
    request_body = AddLabel, responses((status = 201, body = Stack), (status = 200, body = Stack), (status = "4XX", body = Problem)))]
pub async fn add_stack_label(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<AddLabel>,
) -> ApiResult<(StatusCode, Json<Stack>)> {
    access::stack(&state.db, caller.principal(), id).await?;
    let changed = commit_change(
        &state,
        caller.principal(),
        Owner::Stack,
        id,
        &Change::AddLabel(body.label),
    )
    .await?;
    Ok((addition_status(changed), stack_after(&state, id).await?))
}

#[utoipa::path(delete, path = "/api/v1/stacks/{id}/labels/{label}", tag = "stacks",
    params(("id" = Uuid, Path), ("label" = String, Path)), responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove_stack_label(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdAnd(id, label): IdAnd<String>,
) -> ApiResult<StatusCode> {
    access::stack(&state.db, caller.principal(), id).await?;
    let change = Change::RemoveLabel(label_param(label)?);
    removal_status(
        commit_change(&state, caller.principal(), Owner::Stack, id, &change).await?,
        "label",
    )
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/annotations", tag = "stacks", params(("id" = Uuid, Path)),
    request_body = AddAnnotation, responses((status = 201, body = Stack), (status = "4XX", body = Problem)))]
pub async fn set_stack_annotation(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<AddAnnotation>,
) -> ApiResult<(StatusCode, Json<Stack>)> {
    access::stack(&state.db, caller.principal(), id).await?;
    commit_change(
        &state,
        caller.principal(),
        Owner::Stack,
        id,
        &Change::SetAnnotation(body),
    )
    .await?;
    Ok((StatusCode::CREATED, stack_after(&state, id).await?))
}

#[utoipa::path(delete, path = "/api/v1/stacks/{id}/annotations/{key}", tag = "stacks",
    params(("id" = Uuid, Path), ("key" = String, Path)), responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove_stack_annotation(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdAnd(id, key): IdAnd<String>,
) -> ApiResult<StatusCode> {
    access::stack(&state.db, caller.principal(), id).await?;
    let change = Change::RemoveAnnotation(key_param(key)?);
    removal_status(
        commit_change(&state, caller.principal(), Owner::Stack, id, &change).await?,
        "annotation",
    )
}
