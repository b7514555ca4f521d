//! Keeping the materialized reach in step: when an agent's facts change, which generators
//! reach it; when a generator's reach changes, which agents it reaches. Both run inside the
//! change's transaction, before it is planned, so targeting never sees a stale reach.

use brokkr_policy::ReachExpression;
use uuid::Uuid;

use super::{AppError, AppResult, Work};
use crate::db::assignments::{self, Scope};
use crate::db::{generators, reach};
use crate::targeting::compiled;

/// Recomputes which generators reach `agent` (created, renamed, relabelled, reannotated).
pub(crate) async fn refresh_agent(work: &mut Work, agent: Uuid) -> AppResult<()> {
    let Some(facts) = assignments::agent_facts(&mut work.tx, Scope::Ids(&[agent]))
        .await?
        .pop()
    else {
        return Ok(());
    };
    let admitting: Vec<Uuid> = generators::reaches(&mut work.tx)
        .await?
        .into_iter()
        // A stored reach that no longer compiles admits nothing: the boundary fails closed.
        .filter(|(_, source)| compiled::reach(source).is_ok_and(|r| r.admits(&facts)))
        .map(|(id, _)| id)
        .collect();
    Ok(reach::set_for_agent(&mut work.tx, agent, &admitting).await?)
}

/// Recomputes the agents `generator` reaches under `expression` (created, or its reach changed).
pub(crate) async fn refresh_generator(
    work: &mut Work,
    generator: Uuid,
    expression: &ReachExpression,
) -> AppResult<()> {
    let admitted = if expression.constant() == Some(false) {
        Vec::new()
    } else {
        let agents = assignments::agent_facts(&mut work.tx, Scope::All).await?;
        let expression = expression.clone();
        // Thousands of CEL evaluations: off the async workers.
        tokio::task::spawn_blocking(move || {
            let verdicts = expression.admits_all(&agents);
            agents
                .iter()
                .zip(verdicts)
                .filter(|(_, admitted)| *admitted)
                .filter_map(|(agent, _)| Uuid::parse_str(&agent.id).ok())
                .collect::<Vec<Uuid>>()
        })
        .await
        .map_err(|e| AppError::Internal(format!("reach evaluation failed: {e}")))?
    };
    Ok(reach::set_for_generator(&mut work.tx, generator, &admitted).await?)
}
