//! `/api/v1/stacks`: create, list, read, update and delete (admin or the owning generator).
//! Changes that can retarget the stack take `?dry_run=true` (preview) and `?confirm=true`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use brokkr_types::Problem;
use brokkr_types::requests::{CreateStack, UpdateStack};
use brokkr_types::resources::{Page, Stack};

use super::retargeted;
use crate::http::ApiResult;
use crate::http::caller::{AdminOrGenerator, Caller};
use crate::http::extract::{ApiJson, ApiQuery, ChangeOptions, IdPath, PageQuery};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/stacks", tag = "stacks", request_body = CreateStack,
    responses((status = 201, body = Stack), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiJson(body): ApiJson<CreateStack>,
) -> ApiResult<(StatusCode, Json<Stack>)> {
    let stack = state.app.create_stack(caller.requester(), body).await?;
    Ok((StatusCode::CREATED, Json(stack)))
}

#[utoipa::path(get, path = "/api/v1/stacks", tag = "stacks", params(PageQuery),
    responses((status = 200, body = Page<Stack>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Stack>>> {
    let window = page.window()?;
    Ok(Json(
        state.app.list_stacks(caller.requester(), window).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/stacks/{id}", tag = "stacks", params(("id" = Uuid, Path)),
    responses((status = 200, body = Stack), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Stack>> {
    Ok(Json(state.app.stack(caller.requester(), id).await?))
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
    let outcome = state
        .app
        .update_stack(caller.requester(), id, patch, options.guard())
        .await?;
    Ok(retargeted(outcome, StatusCode::OK))
}

#[utoipa::path(delete, path = "/api/v1/stacks/{id}", tag = "stacks", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    state.app.delete_stack(caller.requester(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
