//! Deployment objects: appended to a stack (JSON `{"yaml_content": …}` or a raw YAML body),
//! listed per stack, and read by the owner, an admin or an agent the stack is targeted at.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::plugins::{PluginMode, PolicyFinding};
use brokkr_types::problem::FieldError;
use brokkr_types::requests::CreateDeploymentObject;
use brokkr_types::resources::{
    CreatedDeploymentObject, DeploymentObject, DeploymentObjectSummary, Page,
};
use serde_json::json;
use uuid::Uuid;

use super::audit_change;
use crate::access;
use crate::auth::Principal;
use crate::auth::caller::{AdminOrGenerator, AnyRole, Caller};
use crate::db::stacks::StackRow;
use crate::db::{assignments, deployment_objects, generators, plugins as db_plugins, stacks};
use crate::domain::manifest;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath, ManifestBody, PageQuery};
use crate::policies;
use crate::state::AppState;
use crate::targeting::change;

/// Runs the plugins bound to the stack; refuses the submission when an enforcing plugin found
/// violations (or could not judge it), recording what it found.
async fn judge(state: &AppState, stack: &StackRow, yaml: &str) -> ApiResult<Vec<PolicyFinding>> {
    let policies = db_plugins::policies_for_stack(&state.db, stack.id, stack.generator_id).await?;
    if policies.is_empty() {
        return Ok(Vec::new());
    }
    let full = stacks::get(&state.db, stack.id)
        .await?
        .ok_or(ApiError::NotFound("stack"))?;
    let generator = generators::get(&state.db, stack.generator_id)
        .await?
        .map(|g| g.name)
        .unwrap_or_default();
    let subject = policies::Subject::new(&full, &generator);
    let findings = state
        .policies
        .judge(&state.db, &policies, subject, None, yaml)
        .await?;
    if !findings.iter().any(policies::blocks) {
        return Ok(findings);
    }
    let mut tx = state.db.begin().await?;
    db_plugins::record_verdicts(&mut tx, &verdicts(&findings, stack.id, None)).await?;
    tx.commit().await?;
    Err(rejection(&findings))
}

/// The verdicts worth recording: everything but passes.
fn verdicts(
    findings: &[PolicyFinding],
    stack: Uuid,
    object: Option<Uuid>,
) -> Vec<db_plugins::NewVerdict> {
    findings
        .iter()
        .filter(|f| policies::outcome(f) != "pass")
        .map(|f| db_plugins::NewVerdict {
            plugin_id: f.plugin_id,
            mode: f.mode,
            stack_id: Some(stack),
            deployment_object_id: object,
            outcome: policies::outcome(f),
            details: json!({ "violations": f.violations, "error": f.error }),
        })
        .collect()
}

/// The 422 answer listing every violation of every enforcing plugin.
fn rejection(findings: &[PolicyFinding]) -> ApiError {
    let mut errors = Vec::new();
    for finding in findings.iter().filter(|f| policies::blocks(f)) {
        if let Some(error) = &finding.error {
            errors.push(FieldError {
                location: format!("plugins.{}", finding.plugin),
                message: format!("the plugin failed: {error}"),
            });
        }
        for v in &finding.violations {
            let object = v
                .object
                .as_ref()
                .map(|o| format!("{} {}", o.kind, o.name))
                .unwrap_or_default();
            let path = v
                .path
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            errors.push(FieldError {
                location: format!("plugins.{}: {object}{path}", finding.plugin),
                message: v.message.clone(),
            });
        }
    }
    let failed = findings
        .iter()
        .any(|f| policies::blocks(f) && f.error.is_some() && f.violations.is_empty());
    let code = if failed {
        "policy_error"
    } else {
        "policy_violation"
    };
    let detail = format!(
        "rejected by policy: {} problem(s); see errors",
        errors.len()
    );
    ApiError::Unprocessable {
        code,
        detail,
        errors,
    }
}

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
    let stack = access::stack(&state.db, caller.principal(), stack_id).await?;
    let checked = manifest::check(&body.yaml_content).map_err(|e| ApiError::Unprocessable {
        code: "invalid_manifest",
        detail: e.summary,
        errors: e.errors,
    })?;
    let findings = judge(&state, &stack, &body.yaml_content).await?;
    let mut tx = state.db.begin().await?;
    let object = deployment_objects::append(&mut tx, stack_id, &body.yaml_content, false)
        .await?
        .ok_or(ApiError::NotFound("stack"))?;
    db_plugins::record_verdicts(&mut tx, &verdicts(&findings, stack_id, Some(object.id))).await?;
    let details = json!({ "stack_id": stack_id, "sequence_id": object.sequence_id, "objects": checked.objects });
    let principal = caller.principal();
    audit_change(
        &mut tx,
        principal,
        "deployment_object.created",
        "deployment_object",
        object.id,
        details,
    )
    .await?;
    let reached = assignments::agents_of_stack(&mut tx, stack_id).await?;
    change::commit_advance(&state, tx, stack_id, object.id, &reached).await?;
    // Warnings are returned; shadow findings are only recorded.
    let policy = findings
        .into_iter()
        .filter(|f| f.mode == PluginMode::Warn && policies::outcome(f) != "pass")
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(CreatedDeploymentObject { object, policy }),
    ))
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
