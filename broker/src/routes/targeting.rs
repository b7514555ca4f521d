//! Why stacks reach agents: for an agent, every candidate stack and the rules that match (or
//! the evaluation error); for a stack, the agents in its assignment set. A generator learns
//! only of agents inside its reach.

use axum::Json;
use axum::extract::State;
use brokkr_types::Problem;
use brokkr_types::resources::{AgentReach, Page, StackVerdict};

use crate::http::ApiResult;
use crate::http::caller::{AdminOrGenerator, Caller};
use crate::http::extract::{ApiQuery, IdPath, PageQuery};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/agents/{id}/targeting", tag = "targeting",
    params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<StackVerdict>), (status = "4XX", body = Problem)))]
pub async fn explain_agent(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<StackVerdict>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .explain_agent(caller.requester(), id, window)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/stacks/{id}/targeting", tag = "targeting",
    params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<AgentReach>), (status = "4XX", body = Problem)))]
pub async fn explain_stack(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AgentReach>>> {
    let window = page.window()?;
    Ok(Json(
        state
            .app
            .explain_stack(caller.requester(), id, window)
            .await?,
    ))
}
