//! `/api/v1/stacks/{id}/rollout/{pause,resume,promote,abort}`: a person steering a stack's
//! staged rollout (admin or the owning generator). Each answers the rollout as it now stands;
//! 409 `no_staged_rollout` when none is under way, `rollout_state` when the step does not apply.

use axum::Json;
use axum::extract::State;
use brokkr_types::Problem;
use brokkr_types::rollouts::Rollout;

use crate::app::staged::Steer;
use crate::http::ApiResult;
use crate::http::caller::{AdminOrGenerator, Caller};
use crate::http::extract::IdPath;
use crate::state::AppState;

async fn steer(
    state: &AppState,
    caller: &Caller<AdminOrGenerator>,
    id: uuid::Uuid,
    steer: Steer,
) -> ApiResult<Json<Rollout>> {
    Ok(Json(
        state
            .app
            .steer_rollout(caller.requester(), id, steer)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/rollout/pause", tag = "rollouts",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Rollout, description = "the rollout, paused"), (status = "4XX", body = Problem)))]
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Rollout>> {
    steer(&state, &caller, id, Steer::Pause).await
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/rollout/resume", tag = "rollouts",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Rollout, description = "the rollout, gating its current wave again (the soak starts over)"),
              (status = "4XX", body = Problem)))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Rollout>> {
    steer(&state, &caller, id, Steer::Resume).await
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/rollout/promote", tag = "rollouts",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Rollout, description = "the current wave passed without its gate; the next wave receives the release"),
              (status = "4XX", body = Problem)))]
pub async fn promote(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Rollout>> {
    steer(&state, &caller, id, Steer::Promote).await
}

#[utoipa::path(post, path = "/api/v1/stacks/{id}/rollout/abort", tag = "rollouts",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Rollout, description = "rolled back: every agent that received the release has its previous version again"),
              (status = "4XX", body = Problem)))]
pub async fn abort(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Rollout>> {
    steer(&state, &caller, id, Steer::Abort).await
}
