//! Why stacks reach agents: for an agent, every candidate stack, the rules that match (or the
//! evaluation error) and whether the agent is inside the owning generator's reach; for a
//! stack, the agents in its assignment set. A generator is told only about agents inside its
//! reach.

use std::collections::{HashMap, HashSet};

use brokkr_policy::{Direct, Pairing, decide};
use brokkr_types::resources::{AgentReach, Page, StackVerdict};
use uuid::Uuid;

use super::{App, AppError, AppResult, Requester};
use crate::db::assignments::{self, Scope, StackRow};
use crate::db::{Tx, Window, reach, stacks};
use crate::targeting::compiled;

/// What is known about one agent's pairs.
struct AgentPairs {
    facts: brokkr_policy::AgentFacts,
    direct: HashMap<Uuid, bool>,
    current: HashSet<Uuid>,
    reaching: HashSet<Uuid>,
}

async fn agent_pairs(tx: &mut Tx, agent: Uuid) -> AppResult<AgentPairs> {
    let facts = assignments::agent_facts(tx, Scope::Ids(&[agent]))
        .await?
        .pop()
        .ok_or(AppError::NotFound("agent"))?;
    let direct = assignments::direct_of_agent(tx, agent)
        .await?
        .into_iter()
        .collect();
    let current = assignments::current_of_agent(tx, agent)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let reaching = reach::generators_of(tx, agent).await?;
    Ok(AgentPairs {
        facts,
        direct,
        current,
        reaching,
    })
}

fn verdict(pairs: &AgentPairs, stack: StackRow) -> AppResult<StackVerdict> {
    let id = Uuid::parse_str(&stack.facts.id).unwrap_or_default();
    let expression = match stack.expression.as_deref().map(compiled::target_expression) {
        Some(Ok(e)) => Some(e),
        Some(Err(e)) => {
            return Err(AppError::Internal(format!(
                "stored expression of stack {id} does not compile: {e}"
            )));
        }
        None => None,
    };
    let assigned = pairs.current.contains(&id);
    let pairing = Pairing {
        direct: match pairs.direct.get(&id) {
            None => Direct::No,
            Some(false) => Direct::ByGenerator,
            Some(true) => Direct::ByAdmin,
        },
        previously: assigned,
        within_reach: pairs.reaching.contains(&stack.generator_id),
    };
    let verdict = decide(
        &pairs.facts,
        &stack.facts,
        expression.as_ref(),
        pairing,
        None,
    );
    Ok(StackVerdict {
        stack_id: id,
        stack_name: stack.facts.name,
        targeted: verdict.targeted,
        assigned,
        rules: verdict.rules.iter().map(|r| r.code()).collect(),
        target_expression: stack.expression,
        error: verdict.error,
        within_reach: verdict.within_reach,
    })
}

impl App {
    /// Every stack the requester may see, decided for `agent` (a generator: its own stacks,
    /// and only for agents inside its reach).
    pub async fn explain_agent(
        &self,
        by: Requester,
        agent: Uuid,
        window: Window,
    ) -> AppResult<Page<StackVerdict>> {
        self.visible_agent(by, agent).await?;
        let only = by.principal.generator();
        // One stack more than the page, so paging sees whether more follow.
        let candidates: Vec<Uuid> = stacks::list(&self.db, only, None, window)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        let mut tx = self.db.begin_read().await?;
        let rows = assignments::stack_facts(&mut tx, Scope::Ids(&candidates)).await?;
        let pairs = agent_pairs(&mut tx, agent).await?;
        drop(tx);
        let mut by_id: HashMap<String, StackRow> =
            rows.into_iter().map(|r| (r.facts.id.clone(), r)).collect();
        let mut items = Vec::with_capacity(candidates.len());
        for id in &candidates {
            if let Some(row) = by_id.remove(&id.to_string()) {
                items.push(verdict(&pairs, row)?);
            }
        }
        Ok(window.page(items))
    }

    /// The agents a stack reaches (a generator sees only those inside its reach).
    pub async fn explain_stack(
        &self,
        by: Requester,
        stack: Uuid,
        window: Window,
    ) -> AppResult<Page<AgentReach>> {
        self.visible_stack(by, stack).await?;
        let only_within_reach = !by.is_admin();
        let found = assignments::reach_of_stack(&self.db, stack, only_within_reach, window).await?;
        Ok(window.page(found))
    }
}
