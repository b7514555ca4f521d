//! `/api/v1/generators`: create (admin), list (admin), read, update, delete and rotate (admin or
//! the generator itself). Deleting a generator soft-deletes its stacks atomically.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::requests::{CreateGenerator, UpdateGenerator};
use brokkr_types::resources::{Generator, GeneratorWithPak, Page};
use chrono::Utc;
use serde_json::json;

use super::audit_change;
use crate::access;
use crate::auth::Principal;
use crate::auth::caller::{AdminOnly, AdminOrGenerator, Caller};
use crate::credentials;
use crate::db::{assignments, generators, stacks};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath, PageQuery};
use crate::state::AppState;
use crate::targeting::change;

#[utoipa::path(post, path = "/api/v1/generators", tag = "generators",
    request_body = CreateGenerator,
    responses((status = 201, body = GeneratorWithPak), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiJson(body): ApiJson<CreateGenerator>,
) -> ApiResult<(StatusCode, Json<GeneratorWithPak>)> {
    let mut tx = state.db.begin().await?;
    let description = body.description.as_ref().map(|d| d.as_str());
    let generator = generators::insert(&mut tx, body.name.as_str(), description).await?;
    let principal = Principal::Generator(generator.id);
    let pak = credentials::issue(&mut tx, caller.principal().into(), principal).await?;
    audit_change(
        &mut tx,
        caller.principal(),
        "generator.created",
        "generator",
        generator.id,
        json!({ "name": generator.name }),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(GeneratorWithPak { generator, pak }),
    ))
}

#[utoipa::path(get, path = "/api/v1/generators", tag = "generators", params(PageQuery),
    responses((status = 200, body = Page<Generator>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Generator>>> {
    let window = page.window()?;
    Ok(Json(
        window.page(generators::list(&state.db, window).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/generators/{id}", tag = "generators",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Generator), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Generator>> {
    Ok(Json(
        access::generator(&state.db, caller.principal(), id).await?,
    ))
}

#[utoipa::path(method(put, patch), path = "/api/v1/generators/{id}", tag = "generators",
    params(("id" = uuid::Uuid, Path)), request_body = UpdateGenerator,
    responses((status = 200, body = Generator), (status = "4XX", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<UpdateGenerator>,
) -> ApiResult<Json<Generator>> {
    access::generator(&state.db, caller.principal(), id).await?;
    let mut tx = state.db.begin().await?;
    let updated = generators::update(&mut tx, id, &patch)
        .await?
        .ok_or(ApiError::NotFound("generator"))?;
    audit_change(
        &mut tx,
        caller.principal(),
        "generator.updated",
        "generator",
        id,
        json!({ "name": updated.name }),
    )
    .await?;
    // Expressions may read `stack.generator`, the generator's name.
    let retarget = if patch.name.is_some() {
        stacks::with_expression_of_generator(&mut tx, id).await?
    } else {
        Vec::new()
    };
    change::retarget_stacks(&state, tx, &retarget).await?;
    Ok(Json(updated))
}

#[utoipa::path(delete, path = "/api/v1/generators/{id}", tag = "generators",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    access::generator(&state.db, caller.principal(), id).await?;
    let now = Utc::now();
    let mut tx = state.db.begin().await?;
    let stack_ids = stacks::live_ids_of_generator(&mut tx, id).await?;
    let mut reached = Vec::new();
    for stack_id in &stack_ids {
        stacks::soft_delete(&mut tx, *stack_id, now).await?;
        reached.extend(assignments::agents_of_stack(&mut tx, *stack_id).await?);
    }
    if !generators::soft_delete(&mut tx, id, now).await? {
        return Err(ApiError::NotFound("generator"));
    }
    let old =
        credentials::revoke(&mut tx, caller.principal().into(), Principal::Generator(id)).await?;
    audit_change(
        &mut tx,
        caller.principal(),
        "generator.deleted",
        "generator",
        id,
        json!({ "stacks_deleted": stack_ids.len() }),
    )
    .await?;
    reached.sort();
    reached.dedup();
    change::commit_for_agents(&state, tx, &reached).await?;
    if let Some(short) = old {
        state.auth.invalidate(&short).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/generators/{id}/rotate-pak", tag = "generators",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = GeneratorWithPak), (status = "4XX", body = Problem)))]
pub async fn rotate_pak(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<GeneratorWithPak>> {
    access::generator(&state.db, caller.principal(), id).await?;
    let mut tx = state.db.begin().await?;
    let rotated = credentials::rotate(&mut tx, caller.principal().into(), Principal::Generator(id))
        .await?
        .ok_or(ApiError::NotFound("generator"))?;
    let generator = generators::get_in(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("generator"))?;
    tx.commit().await?;
    if let Some(short) = rotated.old_short {
        state.auth.invalidate(&short).await;
    }
    Ok(Json(GeneratorWithPak {
        generator,
        pak: rotated.pak,
    }))
}
