//! Deployment objects: appended to a stack (JSON `{"yaml_content": …}` or a raw YAML body),
//! listed per stack, and read by the owner, an admin or an agent the stack is targeted at.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use brokkr_types::requests::CreateDeploymentObject;
use brokkr_types::resources::{
    CreatedDeploymentObject, DeploymentObject, DeploymentObjectSummary, Page,
};
use brokkr_types::{IdempotencyKey, Problem};

use crate::http::caller::{AdminOrGenerator, AnyRole, Caller};
use crate::http::extract::{ApiQuery, IdPath, ManifestBody, PageQuery};
use crate::http::{ApiError, ApiResult};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/stacks/{id}/deployment-objects", tag = "deployment-objects",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key and body within 24 h returns the first result (200)")),
    request_body(content(
        (CreateDeploymentObject = "application/json"),
        (String = "application/yaml"))),
    responses((status = 201, body = CreatedDeploymentObject),
               (status = 200, body = CreatedDeploymentObject, description = "replayed: stored by an earlier submission with this Idempotency-Key"),
               (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(stack_id): IdPath,
    headers: HeaderMap,
    ManifestBody(body): ManifestBody,
) -> ApiResult<(StatusCode, Json<CreatedDeploymentObject>)> {
    let key = idempotency_key(&headers)?;
    let appended = state
        .app
        .append_deployment_object(caller.requester(), stack_id, body, key)
        .await?;
    let status = if appended.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(appended.created)))
}

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<IdempotencyKey>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| invalid_key())?;
    IdempotencyKey::parse(text.to_string())
        .map(Some)
        .map_err(|_| invalid_key())
}

fn invalid_key() -> ApiError {
    ApiError::bad_request(
        "invalid_idempotency_key",
        "Idempotency-Key must be 1 to 128 letters, digits, '.', '_', '-' and ':'",
    )
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
