//! `/api/v1/stacks`: create, list, read, update and delete (admin or the owning generator).
//! Deleting a stack appends a deletion marker so agents remove its objects. Changes that can
//! retarget the stack take `?dry_run=true` (preview) and `?confirm=true` (pass the guard).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brokkr_types::Problem;
use brokkr_types::requests::{CreateStack, UpdateStack};
use brokkr_types::resources::{Page, Stack};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::audit_change;
use crate::access;
use crate::auth::Principal;
use crate::auth::caller::{AdminOrGenerator, Caller};
use crate::db::metadata::{self, Metadata, Owner};
use crate::db::stacks::NewStack;
use crate::db::{assignments, deployment_objects, generators, stacks};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath, PageQuery};
use crate::state::AppState;
use crate::targeting::change::{self, ChangeOptions, Subject};

/// The generator that will own a new stack.
fn owner_of_new_stack(caller: Principal, requested: Option<Uuid>) -> ApiResult<Uuid> {
    match (caller, requested) {
        (Principal::Generator(own), None) => Ok(own),
        (Principal::Generator(own), Some(asked)) if asked == own => Ok(own),
        (Principal::Generator(_), Some(_)) => Err(ApiError::forbidden(
            "a generator can only create stacks it owns",
        )),
        (Principal::Admin, Some(asked)) => Ok(asked),
        (Principal::Admin, None) => Err(ApiError::unprocessable(
            "validation_failed",
            "generator_id: an admin must name the generator that will own the stack",
        )),
        (Principal::Agent(_), _) => Err(ApiError::forbidden("agents cannot create stacks")),
    }
}

pub(crate) fn inline_metadata(
    labels: &[brokkr_types::Label],
    annotations: &brokkr_types::requests::Annotations,
) -> Metadata {
    let mut labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    labels.sort();
    labels.dedup();
    Metadata {
        labels,
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[utoipa::path(post, path = "/api/v1/stacks", tag = "stacks", request_body = CreateStack,
    responses((status = 201, body = Stack), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiJson(body): ApiJson<CreateStack>,
) -> ApiResult<(StatusCode, Json<Stack>)> {
    let owner = owner_of_new_stack(caller.principal(), body.generator_id)?;
    let mut tx = state.db.begin().await?;
    if generators::get_in(&mut tx, owner).await?.is_none() {
        return Err(ApiError::unprocessable(
            "validation_failed",
            "generator_id: no such generator",
        ));
    }
    let new = NewStack {
        generator_id: owner,
        name: body.name.as_str(),
        description: body.description.as_ref().map(|d| d.as_str()),
        target_expression: body.target_expression.as_ref().map(|e| e.source()),
    };
    let row = stacks::insert(&mut tx, new).await?;
    let metadata = inline_metadata(&body.labels, &body.annotations);
    metadata::write_all(&mut tx, Owner::Stack, row.id, &metadata).await?;
    let details = json!({ "generator_id": owner });
    audit_change(
        &mut tx,
        caller.principal(),
        "stack.created",
        "stack",
        row.id,
        details,
    )
    .await?;
    change::settle(&state, tx, Subject::Stack(row.id), ChangeOptions::default()).await?;
    Ok((StatusCode::CREATED, Json(row.with_metadata(metadata))))
}

#[utoipa::path(get, path = "/api/v1/stacks", tag = "stacks", params(PageQuery),
    responses((status = 200, body = Page<Stack>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Stack>>> {
    let window = page.window()?;
    let only = access::only_generator(caller.principal());
    Ok(Json(
        window.page(stacks::list(&state.db, only, window).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/stacks/{id}", tag = "stacks", params(("id" = Uuid, Path)),
    responses((status = 200, body = Stack), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Stack>> {
    let row = access::stack(&state.db, caller.principal(), id).await?;
    let metadata = metadata::load_one(&state.db, Owner::Stack, id).await?;
    Ok(Json(row.with_metadata(metadata)))
}

#[utoipa::path(method(put, patch), path = "/api/v1/stacks/{id}", tag = "stacks",
    params(("id" = Uuid, Path), ChangeOptions), request_body = UpdateStack,
    responses(
        (status = 200, body = Stack, description = "the stack, or a TargetingPreview for ?dry_run=true"),
        (status = "4XX", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(options): ApiQuery<ChangeOptions>,
    ApiJson(patch): ApiJson<UpdateStack>,
) -> ApiResult<Response> {
    access::stack(&state.db, caller.principal(), id).await?;
    let mut tx = state.db.begin().await?;
    let row = stacks::update(&mut tx, id, &patch)
        .await?
        .ok_or(ApiError::NotFound("stack"))?;
    let expression = patch
        .target_expression
        .as_ref()
        .map(|e| e.as_ref().map(|e| e.source()));
    let details = json!({ "target_expression": expression });
    audit_change(
        &mut tx,
        caller.principal(),
        "stack.updated",
        "stack",
        id,
        details,
    )
    .await?;
    let settled = change::settle(&state, tx, Subject::Stack(id), options).await?;
    if patch.name.is_some()
        && let Some(latest) = deployment_objects::latest_of_stack(&state.db, id).await?
    {
        state.targeting.fragments.forget(latest).await;
    }
    let metadata = metadata::load_one(&state.db, Owner::Stack, id).await?;
    Ok(settled.respond(|| Json(row.with_metadata(metadata)).into_response()))
}

#[utoipa::path(delete, path = "/api/v1/stacks/{id}", tag = "stacks", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    access::stack(&state.db, caller.principal(), id).await?;
    let mut tx = state.db.begin().await?;
    if !stacks::soft_delete(&mut tx, id, Utc::now()).await? {
        return Err(ApiError::NotFound("stack"));
    }
    let reached = assignments::agents_of_stack(&mut tx, id).await?;
    let details = json!({ "agents": reached.len() });
    audit_change(
        &mut tx,
        caller.principal(),
        "stack.deleted",
        "stack",
        id,
        details,
    )
    .await?;
    change::commit_for_agents(&state, tx, &reached).await?;
    Ok(StatusCode::NO_CONTENT)
}
