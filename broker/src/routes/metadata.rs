//! Labels and annotations of agents (admin) and stacks (admin or owning generator):
//! `POST …/labels`, `DELETE …/labels/{label}`, `POST …/annotations`, `DELETE …/annotations/{key}`.
//! Each change answers with the whole updated agent or stack.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
use crate::extract::{ApiJson, ApiQuery, IdAnd, IdPath};
use crate::state::AppState;
use crate::targeting::change::{self, ChangeOptions, Settled, Subject};

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

/// Applies `change` and retargets in one audited transaction (or previews it with
/// `?dry_run=true`); returns whether anything changed and how the change settled.
async fn commit_change(
    state: &AppState,
    caller: Principal,
    (owner, id): (Owner, Uuid),
    change: &Change,
    options: ChangeOptions,
) -> ApiResult<(bool, Settled)> {
    let mut tx = state.db.begin().await?;
    let (alive, kind, subject) = match owner {
        Owner::Agent => (
            agents::get_row_in(&mut tx, id).await?.is_some(),
            "agent",
            Subject::Agent(id),
        ),
        Owner::Stack => (
            stacks::get_row_in(&mut tx, id).await?.is_some(),
            "stack",
            Subject::Stack(id),
        ),
    };
    if !alive {
        return Err(ApiError::NotFound(kind));
    }
    let changed = change.apply(&mut tx, owner, id).await?;
    if changed {
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
    let settled = change::settle(state, tx, subject, options).await?;
    Ok((changed, settled))
}

/// 204 for a removal that happened, 404 for one that found nothing, or the dry-run preview.
fn removal(outcome: (bool, Settled), what: &'static str) -> ApiResult<Response> {
    match outcome {
        (_, Settled::Preview(preview)) => Ok(Json(preview).into_response()),
        (true, _) => Ok(StatusCode::NO_CONTENT.into_response()),
        (false, _) => Err(ApiError::NotFound(what)),
    }
}

/// 201 (new) or 200 (already there) with the whole owner, or the dry-run preview.
async fn addition(
    state: &AppState,
    (owner, id): (Owner, Uuid),
    outcome: (bool, Settled),
) -> ApiResult<Response> {
    let (changed, settled) = outcome;
    if let Settled::Preview(preview) = settled {
        return Ok(Json(preview).into_response());
    }
    let status = if changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(match owner {
        Owner::Agent => {
            let agent: Agent = agents::get(&state.db, id)
                .await?
                .ok_or(ApiError::NotFound("agent"))?;
            (status, Json(agent)).into_response()
        }
        Owner::Stack => {
            let stack: Stack = stacks::get(&state.db, id)
                .await?
                .ok_or(ApiError::NotFound("stack"))?;
            (status, Json(stack)).into_response()
        }
    })
}

fn label_param(raw: String) -> ApiResult<Label> {
    Label::parse(raw).map_err(|_| ApiError::NotFound("label"))
}

fn key_param(raw: String) -> ApiResult<AnnotationKey> {
    AnnotationKey::parse(raw).map_err(|_| ApiError::NotFound("annotation"))
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/labels", tag = "agents",
    params(("id" = Uuid, Path), ChangeOptions), request_body = AddLabel,
    responses((status = 201, body = Agent), (status = 200, body = Agent), (status = "4XX", body = Problem)))]
pub async fn add_agent_label(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiQuery(options): ApiQuery<ChangeOptions>,
    ApiJson(body): ApiJson<AddLabel>,
) -> ApiResult<Response> {
    let target = (Owner::Agent, id);
    let outcome = commit_change(
        &state,
        caller.principal(),
        target,
        &Change::AddLabel(body.label),
        options,
    )
    .await?;
    addition(&state, target, outcome).await
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}/labels/{label}", tag = "agents",
    params(("id" = Uuid, Path), ("label" = String, Path), ChangeOptions),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove_agent_label(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdAnd(id, label): IdAnd<String>,
    ApiQuery(options): ApiQuery<ChangeOptions>,
) -> ApiResult<Response> {
    let change = Change::RemoveLabel(label_param(label)?);
    removal(
        commit_change(
            &state,
            caller.principal(),
            (Owner::Agent, id),
            &change,
            options,
        )
        .await?,
        "label",
    )
}

#[utoipa::path(post, path = "/api/v1/agents/{id}/annotations", tag = "agents",
    params(("id" = Uuid, Path), ChangeOptions), request_body = AddAnnotation,
    responses((status = 201, body = Agent), (status = "4XX", body = Problem)))]
pub async fn set_agent_annotation(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiQuery(options): ApiQuery<ChangeOptions>,
    ApiJson(body): ApiJson<AddAnnotation>,
) -> ApiResult<Response> {
    let target = (Owner::Agent, id);
    let (_, settled) = commit_change(
        &state,
        caller.principal(),
        target,
        &Change::SetAnnotation(body),
        options,
    )
    .await?;
    addition(&state, target, (true, settled)).await
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}/annotations/{key}", tag = "agents",
    params(("id" = Uuid, Path), ("key" = String, Path), ChangeOptions),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove_agent_annotation(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdAnd(id, key): IdAnd<String>,
    ApiQuery(options): ApiQuery<ChangeOptions>,
) -> ApiResult<Response> {
    let change = Change::RemoveAnnotation(key_param(key)?);
    removal(
        commit_change(
            &state,
            caller.principal(),
            (Owner::Agent, id),
            &change,
            options,
        )
        .await?,
        "annotation",
    )
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/labels", tag = "stacks",
    params(("id" = Uuid, Path), ChangeOptions), request_body = AddLabel,
    responses((status = 201, body = Stack), (status = 200, body = Stack), (status = "4XX", body = Problem)))]
pub async fn add_stack_label(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(options): ApiQuery<ChangeOptions>,
    ApiJson(body): ApiJson<AddLabel>,
) -> ApiResult<Response> {
    access::stack(&state.db, caller.principal(), id).await?;
    let target = (Owner::Stack, id);
    let outcome = commit_change(
        &state,
        caller.principal(),
        target,
        &Change::AddLabel(body.label),
        options,
    )
    .await?;
    addition(&state, target, outcome).await
}

#[utoipa::path(delete, path = "/api/v1/stacks/{id}/labels/{label}", tag = "stacks",
    params(("id" = Uuid, Path), ("label" = String, Path), ChangeOptions),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove_stack_label(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdAnd(id, label): IdAnd<String>,
    ApiQuery(options): ApiQuery<ChangeOptions>,
) -> ApiResult<Response> {
    access::stack(&state.db, caller.principal(), id).await?;
    let change = Change::RemoveLabel(label_param(label)?);
    removal(
        commit_change(
            &state,
            caller.principal(),
            (Owner::Stack, id),
            &change,
            options,
        )
        .await?,
        "label",
    )
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/annotations", tag = "stacks",
    params(("id" = Uuid, Path), ChangeOptions), request_body = AddAnnotation,
    responses((status = 201, body = Stack), (status = "4XX", body = Problem)))]
pub async fn set_stack_annotation(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(options): ApiQuery<ChangeOptions>,
    ApiJson(body): ApiJson<AddAnnotation>,
) -> ApiResult<Response> {
    access::stack(&state.db, caller.principal(), id).await?;
    let target = (Owner::Stack, id);
    let (_, settled) = commit_change(
        &state,
        caller.principal(),
        target,
        &Change::SetAnnotation(body),
        options,
    )
    .await?;
    addition(&state, target, (true, settled)).await
}

#[utoipa::path(delete, path = "/api/v1/stacks/{id}/annotations/{key}", tag = "stacks",
    params(("id" = Uuid, Path), ("key" = String, Path), ChangeOptions),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn remove_stack_annotation(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdAnd(id, key): IdAnd<String>,
    ApiQuery(options): ApiQuery<ChangeOptions>,
) -> ApiResult<Response> {
    access::stack(&state.db, caller.principal(), id).await?;
    let change = Change::RemoveAnnotation(key_param(key)?);
    removal(
        commit_change(
            &state,
            caller.principal(),
            (Owner::Stack, id),
            &change,
            options,
        )
        .await?,
        "annotation",
    )
}
