//! `/api/v1/work-orders`: one-shot jobs for agents (admins, and generators for agents inside
//! their reach), the agent's claim, renewal and completion of its run, and the diagnostics
//! shortcut of a deployment object.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::resources::Page;
use brokkr_types::work_orders::{
    CompleteRun, CreateWorkOrder, Lease, RenewLease, RequestDiagnostics, WorkOrder, WorkRun,
};

use crate::http::ApiResult;
use crate::http::caller::{AdminOrGenerator, AgentOnly, Caller};
use crate::http::extract::{ApiJson, ApiQuery, IdAnd, IdPath, PageQuery};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/work-orders", tag = "work-orders",
    request_body = CreateWorkOrder,
    responses((status = 201, body = WorkOrder), (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiJson(body): ApiJson<CreateWorkOrder>,
) -> ApiResult<(StatusCode, Json<WorkOrder>)> {
    let order = state
        .app
        .create_work_order(caller.requester(), body)
        .await?;
    Ok((StatusCode::CREATED, Json(order)))
}

#[utoipa::path(get, path = "/api/v1/work-orders", tag = "work-orders", params(PageQuery),
    responses((status = 200, body = Page<WorkOrder>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<WorkOrder>>> {
    let window = page.window()?;
    Ok(Json(
        state.app.work_orders(caller.requester(), window).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/work-orders/{id}", tag = "work-orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = WorkOrder), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<WorkOrder>> {
    Ok(Json(state.app.work_order(caller.requester(), id).await?))
}

#[utoipa::path(delete, path = "/api/v1/work-orders/{id}", tag = "work-orders", params(("id" = Uuid, Path)),
    responses((status = 200, description = "pending runs cancelled", body = WorkOrder),
              (status = "4XX", body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<WorkOrder>> {
    Ok(Json(
        state.app.cancel_work_order(caller.requester(), id).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/work-orders/{id}/runs/{agent_id}/claim", tag = "work-orders",
    params(("id" = Uuid, Path), ("agent_id" = Uuid, Path)),
    responses((status = 200, body = Lease),
              (status = 409, description = "not claimable: claimed by another caller, over, or out of attempts", body = Problem),
              (status = "4XX", body = Problem)))]
pub async fn claim(
    State(state): State<AppState>,
    caller: Caller<AgentOnly>,
    IdAnd(id, agent): IdAnd<uuid::Uuid>,
) -> ApiResult<Json<Lease>> {
    Ok(Json(
        state.app.claim_run(caller.requester(), id, agent).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/work-orders/{id}/runs/{agent_id}/renew", tag = "work-orders",
    params(("id" = Uuid, Path), ("agent_id" = Uuid, Path)), request_body = RenewLease,
    responses((status = 200, body = Lease),
              (status = 409, description = "the lease was lost", body = Problem),
              (status = "4XX", body = Problem)))]
pub async fn renew(
    State(state): State<AppState>,
    caller: Caller<AgentOnly>,
    IdAnd(id, agent): IdAnd<uuid::Uuid>,
    ApiJson(body): ApiJson<RenewLease>,
) -> ApiResult<Json<Lease>> {
    Ok(Json(
        state
            .app
            .renew_lease(caller.requester(), id, agent, body)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/work-orders/{id}/runs/{agent_id}/complete", tag = "work-orders",
    params(("id" = Uuid, Path), ("agent_id" = Uuid, Path)), request_body = CompleteRun,
    responses((status = 200, body = WorkRun),
              (status = 409, description = "the lease was lost", body = Problem),
              (status = "4XX", body = Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    caller: Caller<AgentOnly>,
    IdAnd(id, agent): IdAnd<uuid::Uuid>,
    ApiJson(body): ApiJson<CompleteRun>,
) -> ApiResult<Json<WorkRun>> {
    Ok(Json(
        state
            .app
            .complete_run(caller.requester(), id, agent, body)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/deployment-objects/{id}/diagnostics", tag = "work-orders",
    params(("id" = Uuid, Path)), request_body = RequestDiagnostics,
    responses((status = 201, description = "a diagnostics work order", body = WorkOrder),
              (status = "4XX", body = Problem)))]
pub async fn diagnostics(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<RequestDiagnostics>,
) -> ApiResult<(StatusCode, Json<WorkOrder>)> {
    let order = state
        .app
        .request_diagnostics(caller.requester(), id, body)
        .await?;
    Ok((StatusCode::CREATED, Json(order)))
}
