//! `/api/v1/plugins` (admin): upload WASM validators with a configuration, list, inspect,
//! reconfigure and delete them, bind them to scopes with a mode, read what they recorded, and
//! try one against stored deployment objects. Agents fetch modules by digest.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokkr_policy::plugin::{PluginError, digest};
use brokkr_types::plugins::{
    DryRunRequest, DryRunResult, NewBinding, PluginBinding, PluginInfo, PluginScope, PluginVerdict,
    TargetPolicy, UpdatePlugin,
};
use brokkr_types::resources::Page;
use brokkr_types::{Description, Name, Problem};
use serde_json::json;
use uuid::Uuid;

use super::audit_change;
use crate::auth::caller::{AdminOnly, AdminOrAgent, Caller};
use crate::db::plugins::{self as store, NewPlugin};
use crate::db::{generators, stacks};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdAnd, IdPath, PageQuery};
use crate::policies::{self, Subject};
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

struct Upload {
    name: Name,
    description: Option<Description>,
    config: serde_json::Value,
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
    let limit = usize::try_from(state.settings.plugins.max_upload_bytes).unwrap_or(usize::MAX);
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

fn plugin_error(err: PluginError) -> ApiError {
    match err {
        PluginError::Config(reason) => invalid(
            "invalid_plugin_config",
            format!("the plugin rejected its configuration: {reason}"),
        ),
        PluginError::NotAComponent(_)
        | PluginError::UnknownImport(_)
        | PluginError::WrongInterface(_) => invalid("invalid_plugin", err.to_string()),
        other => invalid("plugin_failed", other.to_string()),
    }
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
    let wasm = Arc::new(upload.wasm);
    let plugin = state
        .policies
        .compile(wasm.clone())
        .await
        .map_err(plugin_error)?;
    let config = upload.config.to_string();
    state
        .policies
        .check_config(plugin.clone(), config.clone())
        .await
        .map_err(plugin_error)?;
    let mut tx = state.db.begin().await?;
    store::store_module(&mut tx, &plugin.digest, &wasm).await?;
    let new = NewPlugin {
        name: upload.name.as_str(),
        description: upload.description.as_ref().map(|d| d.as_str()),
        digest: &plugin.digest,
        config: &config,
    };
    let id = store::insert(&mut tx, new).await?;
    audit_change(
        &mut tx,
        caller.principal(),
        "plugin.created",
        "plugin",
        id,
        json!({ "name": upload.name, "digest": plugin.digest }),
    )
    .await?;
    tx.commit().await?;
    let info = store::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("plugin"))?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", params(PageQuery),
    responses((status = 200, body = Page<PluginInfo>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<PluginInfo>>> {
    let window = page.window()?;
    Ok(Json(window.page(store::list(&state.db, window).await?)))
}

#[utoipa::path(get, path = "/api/v1/plugins/{id}", tag = "plugins", params(("id" = Uuid, Path)),
    responses((status = 200, body = PluginInfo), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
) -> ApiResult<Json<PluginInfo>> {
    store::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("plugin"))
}

/// Forgets every agent's view: the policies they must enforce changed.
async fn policies_changed(state: &AppState, mut tx: crate::db::Tx) -> ApiResult<()> {
    state.targeting.announce_all(&mut tx).await?;
    tx.commit().await?;
    state.targeting.hub.invalidate_all();
    Ok(())
}

#[utoipa::path(patch, path = "/api/v1/plugins/{id}", tag = "plugins", params(("id" = Uuid, Path)),
    request_body = UpdatePlugin, responses((status = 200, body = PluginInfo), (status = "4XX", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<UpdatePlugin>,
) -> ApiResult<Json<PluginInfo>> {
    let current = store::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("plugin"))?;
    let config = patch.config.as_ref().map(|c| c.to_string());
    if let Some(config) = &config {
        let plugin = state.policies.plugin(&state.db, &current.digest).await?;
        state
            .policies
            .check_config(plugin, config.clone())
            .await
            .map_err(plugin_error)?;
    }
    let mut tx = state.db.begin().await?;
    if !store::update(
        &mut tx,
        id,
        patch.description.as_ref().map(|d| d.as_str()),
        config.as_deref(),
    )
    .await?
    {
        return Err(ApiError::NotFound("plugin"));
    }
    audit_change(
        &mut tx,
        caller.principal(),
        "plugin.updated",
        "plugin",
        id,
        json!({ "config_changed": config.is_some() }),
    )
    .await?;
    policies_changed(&state, tx).await?;
    store::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("plugin"))
}

#[utoipa::path(delete, path = "/api/v1/plugins/{id}", tag = "plugins", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    if !store::delete(&mut tx, id).await? {
        return Err(ApiError::NotFound("plugin"));
    }
    audit_change(
        &mut tx,
        caller.principal(),
        "plugin.deleted",
        "plugin",
        id,
        json!({}),
    )
    .await?;
    policies_changed(&state, tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a scope and returns its id (the nil UUID for the global scope).
async fn scope_id(state: &AppState, scope: PluginScope, id: Option<Uuid>) -> ApiResult<Uuid> {
    let missing = |what: &str| invalid("validation_failed", format!("scope_id: no such {what}"));
    match (scope, id) {
        (PluginScope::Global, None) => Ok(Uuid::nil()),
        (PluginScope::Global, Some(_)) => Err(invalid(
            "validation_failed",
            "scope_id: the global scope takes none",
        )),
        (_, None) => Err(invalid(
            "validation_failed",
            "scope_id: required for the generator and stack scopes",
        )),
        (PluginScope::Generator, Some(id)) => generators::get(&state.db, id)
            .await?
            .map(|_| id)
            .ok_or_else(|| missing("generator")),
        (PluginScope::Stack, Some(id)) => stacks::get_row(&state.db, id)
            .await?
            .map(|_| id)
            .ok_or_else(|| missing("stack")),
    }
}

#[utoipa::path(post, path = "/api/v1/plugins/{id}/bindings", tag = "plugins", params(("id" = Uuid, Path)),
    request_body = NewBinding, responses((status = 201, body = PluginBinding), (status = "4XX", body = Problem)))]
pub async fn bind(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<NewBinding>,
) -> ApiResult<(StatusCode, Json<PluginBinding>)> {
    store::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("plugin"))?;
    let scope = scope_id(&state, body.scope, body.scope_id).await?;
    let scope_id = (body.scope != PluginScope::Global).then_some(scope);
    let mut tx = state.db.begin().await?;
    let binding = store::bind(&mut tx, id, body.scope, scope_id, body.mode).await?;
    let details = json!({ "scope": body.scope, "scope_id": scope_id, "mode": body.mode });
    audit_change(
        &mut tx,
        caller.principal(),
        "plugin.bound",
        "plugin",
        id,
        details,
    )
    .await?;
    policies_changed(&state, tx).await?;
    Ok((StatusCode::CREATED, Json(binding)))
}

#[utoipa::path(delete, path = "/api/v1/plugins/{id}/bindings/{binding_id}", tag = "plugins",
    params(("id" = Uuid, Path), ("binding_id" = Uuid, Path)), responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn unbind(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdAnd(id, binding): IdAnd<Uuid>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    if !store::unbind(&mut tx, id, binding).await? {
        return Err(ApiError::NotFound("binding"));
    }
    audit_change(
        &mut tx,
        caller.principal(),
        "plugin.unbound",
        "plugin",
        id,
        json!({ "binding_id": binding }),
    )
    .await?;
    policies_changed(&state, tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/plugins/{id}/verdicts", tag = "plugins", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<PluginVerdict>), (status = "4XX", body = Problem)))]
pub async fn verdicts(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<PluginVerdict>>> {
    let window = page.window()?;
    store::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("plugin"))?;
    Ok(Json(
        window.page(store::verdicts(&state.db, id, window).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/plugins/{id}/dry-run", tag = "plugins", params(("id" = Uuid, Path), PageQuery),
    request_body = DryRunRequest, responses((status = 200, body = Page<DryRunResult>), (status = "4XX", body = Problem)))]
pub async fn dry_run(
    State(state): State<AppState>,
    _caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
    ApiJson(body): ApiJson<DryRunRequest>,
) -> ApiResult<Json<Page<DryRunResult>>> {
    let window = page.window()?;
    let info = store::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("plugin"))?;
    let scope = scope_id(&state, body.scope, body.scope_id).await?;
    let policy = TargetPolicy {
        binding_id: Uuid::nil(),
        plugin_id: id,
        plugin: info.name.clone(),
        digest: info.digest.clone(),
        config: info.config.to_string(),
        mode: brokkr_types::plugins::PluginMode::Enforce,
        scope: body.scope,
        scope_id: body.scope_id,
    };
    let mut subjects: HashMap<Uuid, Subject> = HashMap::new();
    let mut results = Vec::new();
    for object in store::objects_in_scope(&state.db, body.scope, scope, window).await? {
        let subject = match subjects.get(&object.stack_id) {
            Some(s) => s.clone(),
            None => {
                let Some(stack) = stacks::get_any(&state.db, object.stack_id).await? else {
                    continue;
                };
                let generator = generators::get_any_name(&state.db, stack.generator_id)
                    .await?
                    .unwrap_or_default();
                let subject = Subject::new(&stack, &generator);
                subjects.insert(object.stack_id, subject.clone());
                subject
            }
        };
        let mut findings = state
            .policies
            .judge(
                &state.db,
                std::slice::from_ref(&policy),
                subject,
                Some(object.id),
                &object.yaml_content,
            )
            .await?;
        let finding = findings
            .pop()
            .ok_or_else(|| ApiError::Internal("the plugin gave no finding".into()))?;
        results.push(DryRunResult {
            deployment_object_id: object.id,
            stack_id: object.stack_id,
            sequence_id: object.sequence_id,
            would_reject: policies::blocks(&finding),
            violations: finding.violations,
            error: finding.error,
        });
    }
    Ok(Json(window.page(results)))
}

#[utoipa::path(get, path = "/api/v1/plugins/modules/{digest}", tag = "plugins", params(("digest" = String, Path)),
    responses((status = 200, description = "the component", content_type = "application/wasm"), (status = "4XX", body = Problem)))]
pub async fn module(
    State(state): State<AppState>,
    _caller: Caller<AdminOrAgent>,
    Path(wanted): Path<String>,
) -> ApiResult<Response> {
    let wasm = store::module(&state.db, &wanted)
        .await?
        .ok_or(ApiError::NotFound("module"))?;
    if digest(&wasm) != wanted {
        return Err(ApiError::Internal(format!(
            "stored module {wanted} does not match its digest"
        )));
    }
    Ok(([(header::CONTENT_TYPE, "application/wasm")], wasm).into_response())
}
