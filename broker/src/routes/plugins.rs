//! `/api/v1/plugins` (admin): upload WASM validators with a configuration, list, inspect,
//! reconfigure and delete them, bind them to scopes with a mode, read what they recorded, and
//! try one against stored deployment objects. Agents fetch modules by digest.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokkr_types::plugins::{
    DryRunRequest, DryRunResult, NewBinding, PluginBinding, PluginInfo, PluginVerdict,
    UpdateBinding, UpdatePlugin,
};
use brokkr_types::resources::Page;
use brokkr_types::{Description, Name, Problem};
use serde_json::json;
use uuid::Uuid;

use crate::app::plugins::Upload;
use crate::http::caller::{AdminOnly, AdminOrAgent, Caller};
use crate::http::extract::{ApiJson, ApiQuery, DigestPath, IdAnd, IdPath, PageQuery};
use crate::http::{ApiError, ApiResult};
use crate::state::AppState;

/// The multipart form of an upload.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    name: String,
    description: Option<String>,
    /// The plugin's configuration, JSON (default `{}`).
    config: Option<String>,
    /// The component (`.wasm`).
    #[schema(format = Binary, value_type = String)]
    wasm: Vec<u8>,
}

fn invalid(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::unprocessable(code, detail)
}

async fn read_upload(
    state: &AppState,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Upload> {
    let mut form = form.map_err(|e| {
        ApiError::bad_request("invalid_body", format!("expected multipart/form-data: {e}"))
    })?;
    let limit = usize::try_from(state.app.settings.plugins.max_upload_bytes).unwrap_or(usize::MAX);
    let too_big = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::bad_request("invalid_body", format!("unreadable form: {e}"))
        }
    };
    let (mut name, mut description, mut config, mut wasm) = (None, None, json!({}), None);
    while let Some(field) = form.next_field().await.map_err(too_big)? {
        let field_name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(too_big)?;
        let text = || {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| invalid("validation_failed", format!("{field_name}: not UTF-8")))
        };
        match field_name.as_str() {
            "name" => {
                name = Some(
                    Name::parse(text()?)
                        .map_err(|e| invalid("validation_failed", format!("name: {e}")))?,
                )
            }
            "description" => {
                description = Some(
                    Description::parse(text()?)
                        .map_err(|e| invalid("validation_failed", format!("description: {e}")))?,
                )
            }
            "config" => {
                config = serde_json::from_str(&text()?).map_err(|e| {
                    invalid("invalid_plugin_config", format!("config: not JSON: {e}"))
                })?
            }
            "wasm" => wasm = Some(bytes.to_vec()),
            other => {
                return Err(invalid(
                    "unknown_field",
                    format!(
                        "unknown form field `{other}` (expected name, description, config, wasm)"
                    ),
                ));
            }
        }
    }
    let name = name.ok_or_else(|| invalid("validation_failed", "name: missing"))?;
    let wasm =
        wasm.ok_or_else(|| invalid("validation_failed", "wasm: missing (the component's bytes)"))?;
    Ok(Upload {
        name,
        description,
        config,
        wasm,
    })
}

#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins",
    request_body(content_type = "multipart/form-data", content = UploadForm),
    responses((status = 201, body = PluginInfo), (status = "4XX", body = Problem)))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<PluginInfo>)> {
    let upload = read_upload(&state, form).await?;
    let info = state.app.upload_plugin(caller.requester(), upload).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", params(PageQuery),
    responses((status = 200, body = Page<PluginInfo>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<PluginInfo>>> {
    let window = page.window()?;
    Ok(Json(
        state.app.list_plugins(caller.requester(), window).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/plugins/{id}", tag = "plugins", params(("id" = Uuid, Path)),
    responses((status = 200, body = PluginInfo), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(state.app.plugin(caller.requester(), id).await?))
}

#[utoipa::path(patch, path = "/api/v1/plugins/{id}", tag = "plugins", params(("id" = Uuid, Path)),
    request_body = UpdatePlugin, responses((status = 200, body = PluginInfo), (status = "4XX", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<UpdatePlugin>,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(
        state
            .app
            .update_plugin(caller.requester(), id, patch)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/plugins/{id}", tag = "plugins", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    state.app.delete_plugin(caller.requester(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/plugins/{id}/bindings", tag = "plugins", params(("id" = Uuid, Path)),
    request_body = NewBinding, responses((status = 201, body = PluginBinding), (status = "4XX", body = Problem)))]
pub async fn bind(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<NewBinding>,
) -> ApiResult<(StatusCode, Json<PluginBinding>)> {
    let binding = state.app.bind_plugin(caller.requester(), id, body).await?;
    Ok((StatusCode::CREATED, Json(binding)))
}

#[utoipa::path(patch, path = "/api/v1/plugins/{id}/bindings/{binding_id}", tag = "plugins",
    params(("id" = Uuid, Path), ("binding_id" = Uuid, Path)), request_body = UpdateBinding,
    responses((status = 200, body = PluginBinding), (status = "4XX", body = Problem)))]
pub async fn update_binding(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdAnd(id, binding): IdAnd<Uuid>,
    ApiJson(body): ApiJson<UpdateBinding>,
) -> ApiResult<Json<PluginBinding>> {
    Ok(Json(
        state
            .app
            .update_binding(caller.requester(), id, binding, body)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/plugins/{id}/bindings/{binding_id}", tag = "plugins",
    params(("id" = Uuid, Path), ("binding_id" = Uuid, Path)), responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn unbind(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdAnd(id, binding): IdAnd<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .app
        .unbind_plugin(caller.requester(), id, binding)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/plugins/{id}/verdicts", tag = "plugins", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<PluginVerdict>), (status = "4XX", body = Problem)))]
pub async fn verdicts(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<PluginVerdict>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .plugin_verdicts(caller.requester(), id, window)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/plugins/{id}/dry-run", tag = "plugins", params(("id" = Uuid, Path), PageQuery),
    request_body = DryRunRequest, responses((status = 200, body = Page<DryRunResult>), (status = "4XX", body = Problem)))]
pub async fn dry_run(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
    ApiJson(body): ApiJson<DryRunRequest>,
) -> ApiResult<Json<Page<DryRunResult>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .dry_run_plugin(caller.requester(), id, body, window)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/plugins/modules/{digest}", tag = "plugins", params(("digest" = String, Path)),
    responses((status = 200, description = "the component", content_type = "application/wasm"), (status = "4XX", body = Problem)))]
pub async fn module(
    State(state): State<AppState>,
    caller: Caller<AdminOrAgent>,
    DigestPath(wanted): DigestPath,
) -> ApiResult<Response> {
    let wasm = state.app.plugin_module(caller.requester(), &wanted).await?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], wasm).into_response())
}
