//! Deployment objects: appended to a stack (JSON `{"yaml_content": …}` or a raw YAML body),
//! listed per stack, and read by the owner, an admin or an agent the stack is targeted at.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::requests::CreateDeploymentObject;
use brokkr_types::resources::{DeploymentObject, DeploymentObjectSummary, Page};
use serde_json::json;

use super::audit_change;
use crate::access;
use crate::auth::Principal;
use crate::auth::caller::{AdminOrGenerator, AnyRole, Caller};
use crate::db::{assignments, deployment_objects, stacks};
use crate::domain::manifest;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath, ManifestBody, PageQuery};
use crate::state::AppState;
use crate::targeting::change;

#[utoipa::path(post, path = "/api/v1/stacks/{id}/deployment-objects", tag = "deployment-objects",
    params(("id" = Uuid, Path)),
    request_body(content(
        (CreateDeploymentObject = "application/json"),
        (String = "application/yaml"))),
    responses((status = 201, body = DeploymentObject), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(stack_id): IdPath,
    ManifestBody(body): ManifestBody,
) -> ApiResult<(StatusCode, Json<DeploymentObject>)> {
    access::stack(&state.db, caller.principal(), stack_id).await?;
    let checked = manifest::check(&body.yaml_content).map_err(|e| ApiError::Unprocessable {
        code: "invalid_manifest",
        detail: e.summary,
        errors: e.errors,
    })?;
    let mut tx = state.db.begin().await?;
    let object = deployment_objects::append(&mut tx, stack_id, &body.yaml_content, false)
        .await?
        .ok_or(ApiError::NotFound("stack"))?;
    let details = json!({ "stack_id": stack_id, "sequence_id": object.sequence_id, "objects": checked.objects });
    audit_change(
        &mut tx,
        caller.principal(),
        "deployment_object.created",
        "deployment_object",
        object.id,
        details,
    )
    .await?;
    let reached = assignments::agents_of_stack(&mut tx, stack_id).await?;
    change::commit_advance(&state, tx, stack_id, object.id, &reached).await?;
    Ok((StatusCode::CREATED, Json(object)))
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
    access::stack(&state.db, caller.principal(), stack_id).await?;
    let items = deployment_objects::list_for_stack(&state.db, stack_id, window).await?;
    Ok(Json(window.page(items)))
}

#[utoipa::path(get, path = "/api/v1/deployment-objects/{id}", tag = "deployment-objects",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DeploymentObject), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AnyRole>,
    IdPath(id): IdPath,
) -> ApiResult<Json<DeploymentObject>> {
    let object = deployment_objects::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("deployment object"))?;
    let visible = match caller.principal() {
        Principal::Admin => true,
        Principal::Generator(own) => {
            stacks::owner_of_any(&state.db, object.stack_id).await? == Some(own)
        }
        Principal::Agent(agent) => assignments::assigned(&state.db, agent, object.stack_id).await?,
    };
    if visible {
        Ok(Json(object))
    } else {
        Err(ApiError::NotFound("deployment object"))
    }
}
