//! `/api/v1/templates`: stack templates (a generator's own, an admin's shared), their
//! immutable versions, and previews; `/api/v1/stacks/{id}/deployment-objects/from-template`
//! renders one into a stack. A template is named in the path by id or by name.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::resources::{CreatedDeploymentObject, Page};
use brokkr_types::templates::{
    CreateTemplate, FromTemplate, NewTemplateVersion, RenderRequest, Rendered, Template,
    TemplateVersion,
};

use crate::app::Requester;
use crate::app::templates::TemplateRef;
use crate::http::ApiResult;
use crate::http::caller::{AdminOrGenerator, Caller};
use crate::http::extract::{ApiJson, ApiQuery, IdOrNamePath, IdPath, PageQuery};
use crate::state::AppState;

impl From<IdOrNamePath> for TemplateRef {
    fn from(path: IdOrNamePath) -> Self {
        match path {
            IdOrNamePath::Id(id) => Self::Id(id),
            IdOrNamePath::Name(name) => Self::Name(name),
        }
    }
}

async fn id_of(state: &AppState, by: Requester, path: IdOrNamePath) -> ApiResult<uuid::Uuid> {
    Ok(state.app.template_id(by, path.into()).await?)
}

#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", request_body = CreateTemplate,
    responses((status = 201, body = Template), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiJson(body): ApiJson<CreateTemplate>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    let created = state.app.create_template(caller.requester(), body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", params(PageQuery),
    responses((status = 200, body = Page<Template>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Template>>> {
    let window = page.window()?;
    Ok(Json(
        state.app.list_templates(caller.requester(), window).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "the template's id or name")),
    responses((status = 200, body = Template), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    path: IdOrNamePath,
) -> ApiResult<Json<Template>> {
    let by = caller.requester();
    let id = id_of(&state, by, path).await?;
    Ok(Json(state.app.template(by, id).await?))
}

#[utoipa::path(put, path = "/api/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "the template's id or name")),
    request_body = NewTemplateVersion,
    responses((status = 200, body = Template, description = "the template at its new version"),
              (status = "4XX", body = Problem)))]
pub async fn add_version(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    path: IdOrNamePath,
    ApiJson(body): ApiJson<NewTemplateVersion>,
) -> ApiResult<Json<Template>> {
    Ok(Json(
        state
            .app
            .add_template_version(caller.requester(), path.into(), body)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "the template's id or name")),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    path: IdOrNamePath,
) -> ApiResult<StatusCode> {
    let by = caller.requester();
    let id = id_of(&state, by, path).await?;
    state.app.delete_template(by, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/templates/{id}/versions", tag = "templates",
    params(("id" = String, Path, description = "the template's id or name"), PageQuery),
    responses((status = 200, body = Page<TemplateVersion>), (status = "4XX", body = Problem)))]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    path: IdOrNamePath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<TemplateVersion>>> {
    let window = page.window()?;
    let by = caller.requester();
    let id = id_of(&state, by, path).await?;
    Ok(Json(state.app.template_versions(by, id, window).await?))
}

#[utoipa::path(post, path = "/api/v1/templates/{id}/render", tag = "templates",
    params(("id" = String, Path, description = "the template's id or name")),
    request_body = RenderRequest,
    responses((status = 200, body = Rendered, description = "the rendered YAML; nothing is stored"),
              (status = "4XX", body = Problem)))]
pub async fn render(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    path: IdOrNamePath,
    ApiJson(body): ApiJson<RenderRequest>,
) -> ApiResult<Json<Rendered>> {
    let by = caller.requester();
    let id = id_of(&state, by, path).await?;
    Ok(Json(state.app.render_template(by, id, body).await?))
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/deployment-objects/from-template", tag = "deployment-objects",
    params(("id" = uuid::Uuid, Path)), request_body = FromTemplate,
    responses((status = 201, body = CreatedDeploymentObject), (status = "4XX", body = Problem)))]
pub async fn from_template(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(stack_id): IdPath,
    ApiJson(body): ApiJson<FromTemplate>,
) -> ApiResult<(StatusCode, Json<CreatedDeploymentObject>)> {
    let appended = state
        .app
        .append_from_template(caller.requester(), stack_id, body)
        .await?;
    Ok((StatusCode::CREATED, Json(appended.created)))
}
