//! Keeping the materialized reach in step: when an agent's facts change, which generators
//! reach it; when a generator's reach changes, which agents it reaches. Both run inside the
//! change's transaction, before it is planned, so targeting never sees a stale reach.

use brokkr_policy::ReachExpression;
use uuid::Uuid;

use super::{App, AppError, AppResult, Work};
use crate::db::assignments::{self, Scope};
use crate::db::{agents, generators, reach};
use crate::targeting::compiled;

/// Recomputes which generators reach `agent` (created, renamed, relabelled, reannotated).
pub(crate) async fn refresh_agent(work: &mut Work, agent: Uuid) -> AppResult<()> {
    let Some(facts) = assignments::agent_facts(&mut work.tx, Scope::Ids(&[agent]))
        .await?
        .pop()
    else {
        return Ok(());
    };
    let mut admitting: Vec<Uuid> = generators::reaches(&mut work.tx)
        .await?
        .into_iter()
        // A stored reach that no longer compiles admits nothing: the boundary fails closed.
        .filter(|(_, source)| compiled::reach(source).is_ok_and(|r| r.admits(&facts)))
        .map(|(id, _)| id)
        .collect();
    admitting.extend(reach::grants_to_agent(&mut work.tx, agent).await?);
    admitting.sort_unstable();
    admitting.dedup();
    Ok(reach::set_for_agent(&mut work.tx, agent, &admitting).await?)
}

/// Recomputes the agents `generator` reaches under `expression` (created, or its reach changed).
pub(crate) async fn refresh_generator(
    work: &mut Work,
    generator: Uuid,
    expression: &ReachExpression,
) -> AppResult<()> {
    let mut admitted = if expression.constant() == Some(false) {
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
    admitted.extend(reach::grants_of_generator(&mut work.tx, generator).await?);
    admitted.sort_unstable();
    admitted.dedup();
    Ok(reach::set_for_generator(&mut work.tx, generator, &admitted).await?)
}

impl App {
    /// Refuses an expression whose evaluation over `agents` agents would cost more than
    /// `targeting.max_evaluation_steps`.
    pub(crate) fn within_budget(&self, what: &str, cost: u64, agents: u64) -> AppResult<()> {
        let limit = self.settings.targeting.max_evaluation_steps;
        let total = cost.saturating_mul(agents);
        if total <= limit {
            return Ok(());
        }
        Err(AppError::invalid(
            "invalid_expression",
            format!(
                "{what}: evaluated for {agents} agents it may take about {total} steps; at most \
                 {limit} are allowed per change (targeting.max_evaluation_steps)"
            ),
        ))
    }

    /// A stack's new expression, evaluated for every agent its generator reaches.
    pub(crate) async fn stack_expression_within_budget(
        &self,
        generator: Uuid,
        expression: &brokkr_policy::TargetExpression,
    ) -> AppResult<()> {
        let agents = reach::count_of(&self.db, generator).await?;
        self.within_budget("target_expression", expression.cost(), agents)
    }

    /// A new reach, evaluated for every agent.
    pub(crate) async fn reach_within_budget(&self, expression: &ReachExpression) -> AppResult<()> {
        if expression.constant().is_some() {
            return Ok(());
        }
        let agents = agents::count(&self.db).await?;
        self.within_budget("reach", expression.cost(), agents)
    }
}
