//! Agent enrollment: `/api/v1/enrollment-tokens` (admin: make, list, revoke) and
//! `POST /api/v1/enroll`, where an agent presents a token instead of a PAK. A refused token is
//! counted against its client like a bad PAK (429 beyond the limit) and audited.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use brokkr_types::Problem;
use brokkr_types::enrollment::{
    CreateEnrollmentToken, Enroll, EnrollmentToken, EnrollmentTokenWithSecret,
};
use brokkr_types::resources::{AgentWithPak, Page};

use crate::app::AppError;
use crate::auth::throttle;
use crate::http::caller::{AdminOnly, Caller};
use crate::http::extract::{ApiJson, ApiQuery, IdPath, PageQuery};
use crate::http::{ApiError, ApiResult, Secret};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/enrollment-tokens", tag = "enrollment",
    request_body = CreateEnrollmentToken,
    responses((status = 201, body = EnrollmentTokenWithSecret, description = "the token, shown once"),
              (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiJson(body): ApiJson<CreateEnrollmentToken>,
) -> ApiResult<(StatusCode, Secret<EnrollmentTokenWithSecret>)> {
    let made = state
        .app
        .create_enrollment_token(caller.requester(), body)
        .await?;
    Ok((StatusCode::CREATED, Secret(made)))
}

#[utoipa::path(get, path = "/api/v1/enrollment-tokens", tag = "enrollment", params(PageQuery),
    responses((status = 200, body = Page<EnrollmentToken>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<EnrollmentToken>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .list_enrollment_tokens(caller.requester(), window)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/enrollment-tokens/{id}", tag = "enrollment",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    state
        .app
        .revoke_enrollment_token(caller.requester(), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/enroll", tag = "enrollment", request_body = Enroll,
    security(()),
    responses((status = 201, body = AgentWithPak, description = "the new agent and its PAK, shown once"),
              (status = "4XX", body = Problem)))]
pub async fn enroll(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Enroll>,
) -> ApiResult<(StatusCode, Secret<AgentWithPak>)> {
    let short = body.token.get(9..17).map(str::to_string);
    match state.app.enroll(body).await {
        Ok(created) => Ok((StatusCode::CREATED, Secret(created))),
        Err(refusal @ AppError::Unauthenticated { .. }) => {
            let client = state.clients.client(peer.ip(), &headers);
            let throttled = !state.throttle.admit_failure(client);
            state.app.metrics.auth_failures.inc();
            state
                .app
                .record_auth_failure(Some(client), short, throttled);
            if throttled {
                return Err(ApiError::TooManyFailures {
                    retry_after: throttle::WINDOW.as_secs(),
                });
            }
            Err(refusal.into())
        }
        Err(other) => Err(other.into()),
    }
}
