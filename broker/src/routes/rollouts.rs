//! Where releases stand: an agent's health report (`PUT /api/v1/agents/{id}/health`), a
//! deployment object's health and rollout, a stack's newest rollout (`?wait=N` with
//! `If-None-Match` holds until it changes), and the fleet view.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokkr_types::resources::{AgentStatus, Page};
use brokkr_types::rollouts::{DeploymentHealth, FleetAgent, HealthReport, Rollout};
use brokkr_types::{Label, Problem};
use serde::Deserialize;

use crate::app::fleet::FleetFilter;
use crate::app::rollouts::RolloutOf;
use crate::http::caller::{AdminOrGenerator, AgentOnly, Caller};
use crate::http::extract::{ApiJson, ApiQuery, IdPath, PageQuery, long_poll};
use crate::http::{ApiError, ApiResult};
use crate::state::AppState;

#[utoipa::path(put, path = "/api/v1/agents/{id}/health", tag = "rollouts", params(("id" = Uuid, Path)),
    request_body = HealthReport,
    responses((status = 204, description = "stored"), (status = "4XX", body = Problem)))]
pub async fn report_health(
    State(state): State<AppState>,
    caller: Caller<AgentOnly>,
    IdPath(id): IdPath,
    ApiJson(report): ApiJson<HealthReport>,
) -> ApiResult<StatusCode> {
    state
        .app
        .report_health(caller.requester(), id, report)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/deployment-objects/{id}/health", tag = "rollouts",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DeploymentHealth), (status = "4XX", body = Problem)))]
pub async fn deployment_health(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<DeploymentHealth>> {
    Ok(Json(
        state.app.deployment_health(caller.requester(), id).await?,
    ))
}

/// `?wait=` of a rollout request.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RolloutQuery {
    /// Seconds to hold the request while the rollout still has the ETag of `If-None-Match`
    /// (0 to `targeting.max_wait_seconds`).
    pub wait: Option<u64>,
}

async fn rollout_answer(
    state: &AppState,
    caller: &Caller<AdminOrGenerator>,
    target: RolloutOf,
    query: &RolloutQuery,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let (wait, seen) = long_poll(state, query.wait, headers)?;
    let (rollout, etag) = state
        .app
        .watch_rollout(caller.requester(), target, seen.as_deref(), wait)
        .await?;
    let mut response = Json(rollout).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/deployment-objects/{id}/rollout", tag = "rollouts",
    params(("id" = Uuid, Path), RolloutQuery,
           ("If-None-Match" = Option<String>, Header, description = "ETag of the rollout last seen")),
    responses((status = 200, body = Rollout), (status = "4XX", body = Problem)))]
pub async fn object_rollout(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<RolloutQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    rollout_answer(&state, &caller, RolloutOf::Object(id), &query, &headers).await
}

#[utoipa::path(get, path = "/api/v1/stacks/{id}/rollout", tag = "rollouts",
    params(("id" = Uuid, Path), RolloutQuery,
           ("If-None-Match" = Option<String>, Header, description = "ETag of the rollout last seen")),
    responses((status = 200, body = Rollout), (status = "4XX", body = Problem)))]
pub async fn stack_rollout(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<RolloutQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    rollout_answer(&state, &caller, RolloutOf::Stack(id), &query, &headers).await
}

/// Filters of the fleet view.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FleetQuery {
    /// Comma-separated labels every listed agent carries.
    pub labels: Option<String>,
    /// A CEL expression over `agent` (as in a reach).
    pub expression: Option<String>,
    /// `active` or `inactive`.
    pub status: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

impl FleetQuery {
    pub(crate) fn filter(&self) -> ApiResult<FleetFilter> {
        let labels = self
            .labels
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                Label::parse(l.to_string())
                    .map_err(|e| ApiError::bad_request("invalid_query", format!("labels: {e}")))
            })
            .collect::<ApiResult<Vec<Label>>>()?;
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(AgentStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request("invalid_query", "status must be active or inactive")
            })?),
        };
        Ok(FleetFilter {
            labels,
            expression: self.expression.clone(),
            status,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/fleet", tag = "rollouts", params(FleetQuery),
    responses((status = 200, body = Page<FleetAgent>), (status = "4XX", body = Problem)))]
pub async fn fleet(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiQuery(query): ApiQuery<FleetQuery>,
) -> ApiResult<Json<Page<FleetAgent>>> {
    let window = PageQuery {
        limit: query.limit,
        offset: query.offset,
    }
    .window()?;
    let filter = query.filter()?;
    Ok(Json(
        state.app.fleet(caller.requester(), filter, window).await?,
    ))
}
