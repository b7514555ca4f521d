//! Labels and annotations of agents (admin) and stacks (admin or owning generator):
//! `POST …/labels`, `DELETE …/labels/{label}`, `POST …/annotations`, `DELETE …/annotations/{key}`.
//! Additions answer with the whole updated agent or stack; every change takes `?dry_run=true`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brokkr_types::requests::{AddAnnotation, AddLabel};
use brokkr_types::resources::{Agent, Stack};
use brokkr_types::{AnnotationKey, Label, Problem};
use serde::Serialize;

use super::retargeted;
use crate::app::Retargeted;
use crate::app::metadata::{MetadataChange, MetadataChanged};
use crate::http::caller::{AdminOnly, AdminOrGenerator, Caller};
use crate::http::extract::{ApiJson, ApiQuery, ChangeOptions, IdAnd, IdPath};
use crate::http::{ApiError, ApiResult};
use crate::state::AppState;

/// 201 (new) or 200 (already there) with the whole owner, or the dry-run preview.
fn addition<T: Serialize>(outcome: MetadataChanged<T>) -> Response {
    let status = if outcome.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    retargeted(outcome.outcome, status)
}

/// 204 for a removal that happened, 404 for one that found nothing, or the dry-run preview.
fn removal<T>(outcome: MetadataChanged<T>, what: &'static str) -> ApiResult<Response> {
    match outcome {
        MetadataChanged {
            outcome: Retargeted::Preview(preview),
            ..
        } => Ok(Json(preview).into_response()),
        MetadataChanged { changed: true, .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        MetadataChanged { changed: false, .. } => Err(ApiError::NotFound(what)),
    }
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
    let change = MetadataChange::AddLabel(body.label);
    let outcome = state
        .app
        .change_agent_metadata(caller.requester(), id, change, options.guard())
        .await?;
    Ok(addition(outcome))
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
    let change = MetadataChange::RemoveLabel(label_param(label)?);
    let outcome = state
        .app
        .change_agent_metadata(caller.requester(), id, change, options.guard())
        .await?;
    removal(outcome, "label")
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
    let change = MetadataChange::SetAnnotation(body);
    let outcome = state
        .app
        .change_agent_metadata(caller.requester(), id, change, options.guard())
        .await?;
    Ok(retargeted(outcome.outcome, StatusCode::CREATED))
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
    let change = MetadataChange::RemoveAnnotation(key_param(key)?);
    let outcome = state
        .app
        .change_agent_metadata(caller.requester(), id, change, options.guard())
        .await?;
    removal(outcome, "annotation")
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
    let change = MetadataChange::AddLabel(body.label);
    let outcome = state
        .app
        .change_stack_metadata(caller.requester(), id, change, options.guard())
        .await?;
    Ok(addition(outcome))
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
    let change = MetadataChange::RemoveLabel(label_param(label)?);
    let outcome = state
        .app
        .change_stack_metadata(caller.requester(), id, change, options.guard())
        .await?;
    removal(outcome, "label")
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
    let change = MetadataChange::SetAnnotation(body);
    let outcome = state
        .app
        .change_stack_metadata(caller.requester(), id, change, options.guard())
        .await?;
    Ok(retargeted(outcome.outcome, StatusCode::CREATED))
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
    let change = MetadataChange::RemoveAnnotation(key_param(key)?);
    let outcome = state
        .app
        .change_stack_metadata(caller.requester(), id, change, options.guard())
        .await?;
    removal(outcome, "annotation")
}
