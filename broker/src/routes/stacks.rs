//! `/api/v1/stacks`: create, list, read, update and delete (admin or the owning generator).
//! Changes that can retarget the stack take `?dry_run=true` (preview) and `?confirm=true`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use brokkr_types::requests::{CreateStack, UpdateStack};
use brokkr_types::resources::{Page, Stack};
use brokkr_types::{Name, Problem};

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

/// Filters and paging of the stack list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StackListQuery {
    /// Only the stack of this name (names are unique per generator).
    #[param(value_type = Option<String>)]
    pub name: Option<Name>,
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/stacks", tag = "stacks", params(StackListQuery),
    responses((status = 200, body = Page<Stack>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiQuery(query): ApiQuery<StackListQuery>,
) -> ApiResult<Json<Page<Stack>>> {
    let page = PageQuery {
        limit: query.limit,
        offset: query.offset,
    };
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .list_stacks(caller.requester(), query.name.as_ref(), window)
            .await?,
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
