//! `/api/v1/generators`: create and list (admin); read, update, delete and rotate (admin or the
//! generator itself). Only an admin sets a reach; a new reach previews with `?dry_run=true`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use brokkr_types::Problem;
use brokkr_types::requests::{CreateGenerator, UpdateGenerator};
use brokkr_types::resources::{Generator, GeneratorWithPak, Page};

use super::retargeted;
use crate::http::caller::{AdminOnly, AdminOrGenerator, Caller};
use crate::http::extract::{ApiJson, ApiQuery, ChangeOptions, IdPath, PageQuery};
use crate::http::{ApiResult, Secret};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/generators", tag = "generators",
    request_body = CreateGenerator,
    responses((status = 201, body = GeneratorWithPak), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiJson(body): ApiJson<CreateGenerator>,
) -> ApiResult<(StatusCode, Secret<GeneratorWithPak>)> {
    let created = state.app.create_generator(caller.requester(), body).await?;
    Ok((StatusCode::CREATED, Secret(created)))
}

#[utoipa::path(get, path = "/api/v1/generators", tag = "generators", params(PageQuery),
    responses((status = 200, body = Page<Generator>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Generator>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .list_generators(caller.requester(), window)
            .await?,
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
    Ok(Json(state.app.generator(caller.requester(), id).await?))
}

#[utoipa::path(method(put, patch), path = "/api/v1/generators/{id}", tag = "generators",
    params(("id" = uuid::Uuid, Path), ChangeOptions), request_body = UpdateGenerator,
    responses(
        (status = 200, body = Generator, description = "the generator, or a TargetingPreview for ?dry_run=true"),
        (status = "4XX", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(options): ApiQuery<ChangeOptions>,
    ApiJson(patch): ApiJson<UpdateGenerator>,
) -> ApiResult<Response> {
    let outcome = state
        .app
        .update_generator(caller.requester(), id, patch, options.guard())
        .await?;
    Ok(retargeted(outcome, StatusCode::OK))
}

#[utoipa::path(delete, path = "/api/v1/generators/{id}", tag = "generators",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    state.app.delete_generator(caller.requester(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/generators/{id}/rotate-pak", tag = "generators",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = GeneratorWithPak), (status = "4XX", body = Problem)))]
pub async fn rotate_pak(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Secret<GeneratorWithPak>> {
    Ok(Secret(
        state
            .app
            .rotate_generator_pak(caller.requester(), id)
            .await?,
    ))
}
