//! Deployment objects: appended to a stack (JSON `{"yaml_content": …}` or a raw YAML body),
//! listed per stack, and read by the owner, an admin or an agent the stack is targeted at.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::requests::CreateDeploymentObject;
use brokkr_types::resources::{
    CreatedDeploymentObject, DeploymentObject, DeploymentObjectSummary, Page,
};

use crate::http::ApiResult;
use crate::http::caller::{AdminOrGenerator, AnyRole, Caller};
use crate::http::extract::{ApiQuery, IdPath, ManifestBody, PageQuery};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/stacks/{id}/deployment-objects", tag = "deployment-objects",
    params(("id" = Uuid, Path)),
    request_body(content(
        (CreateDeploymentObject = "application/json"),
        (String = "application/yaml"))),
    responses((status = 201, body = CreatedDeploymentObject), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(stack_id): IdPath,
    ManifestBody(body): ManifestBody,
) -> ApiResult<(StatusCode, Json<CreatedDeploymentObject>)> {
    let created = state
        .app
        .append_deployment_object(caller.requester(), stack_id, body)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/stacks/{id}/deployment-objects", tag = "deployment-objects",
    params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<DeploymentObjectSummary>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(stack_id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<DeploymentObjectSummary>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .list_deployment_objects(caller.requester(), stack_id, window)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/deployment-objects/{id}", tag = "deployment-objects",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DeploymentObject), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AnyRole>,
    IdPath(id): IdPath,
) -> ApiResult<Json<DeploymentObject>> {
    Ok(Json(
        state.app.deployment_object(caller.requester(), id).await?,
    ))
}
