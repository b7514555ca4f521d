//! Why stacks reach agents: for an agent, every candidate stack and the rules that match (or
//! the evaluation error); for a stack, the agents in its materialized assignment set.

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use brokkr_policy::decide;
use brokkr_types::Problem;
use brokkr_types::resources::{AgentReach, Page, StackVerdict};
use uuid::Uuid;

use crate::access;
use crate::auth::caller::{AdminOrGenerator, Caller};
use crate::db::assignments::{self, Scope, StackRow};
use crate::db::{Tx, stacks};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath, PageQuery};
use crate::state::AppState;

async fn verdicts(tx: &mut Tx, agent: Uuid, stacks: Vec<StackRow>) -> ApiResult<Vec<StackVerdict>> {
    let facts = assignments::agent_facts(tx, Scope::Ids(&[agent]))
        .await?
        .pop()
        .ok_or(ApiError::NotFound("agent"))?;
    let direct: HashSet<Uuid> = assignments::direct_of_agent(tx, agent)
        .await?
        .into_iter()
        .collect();
    let current: HashSet<Uuid> = assignments::current_of_agent(tx, agent)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let mut out = Vec::with_capacity(stacks.len());
    for stack in stacks {
        let id = Uuid::parse_str(&stack.facts.id).unwrap_or_default();
        let expression = match stack
            .expression
            .as_deref()
            .map(brokkr_policy::TargetExpression::parse)
        {
            Some(Ok(e)) => Some(e),
            Some(Err(e)) => {
                return Err(ApiError::Internal(format!(
                    "stored expression of stack {id} does not compile: {e}"
                )));
            }
            None => None,
        };
        let assigned = current.contains(&id);
        let verdict = decide(
            &facts,
            &stack.facts,
            expression.as_ref(),
            direct.contains(&id),
            assigned,
            None,
        );
        out.push(StackVerdict {
            stack_id: id,
            stack_name: stack.facts.name,
            targeted: verdict.targeted,
            assigned,
            rules: verdict.rules.iter().map(|r| r.code()).collect(),
            target_expression: stack.expression,
            error: verdict.error,
        });
    }
    Ok(out)
}

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
    access::agent(&state.db, caller.principal(), id).await?;
    let only = access::only_generator(caller.principal());
    let candidates: Vec<Uuid> = stacks::list(&state.db, only, window)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut tx = state.db.begin().await?;
    let rows = assignments::stack_facts(&mut tx, Scope::Ids(&candidates)).await?;
    let mut ordered: Vec<StackRow> = Vec::with_capacity(rows.len());
    for id in &candidates {
        if let Some(row) = rows.iter().find(|r| r.facts.id == id.to_string()) {
            ordered.push(row.clone());
        }
    }
    // `stacks::list` fetched one stack more than the page, so paging sees whether more follow.
    let items = verdicts(&mut tx, id, ordered).await?;
    drop(tx);
    Ok(Json(window.page(items)))
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
    access::stack(&state.db, caller.principal(), id).await?;
    Ok(Json(window.page(
        assignments::reach_of_stack(&state.db, id, window).await?,
    )))
}
