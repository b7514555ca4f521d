//! Direct assignments of stacks to agents, by an admin or by the generator owning the stack.
//! A generator can assign only to agents inside its reach (others do not exist for it); an
//! admin's assignment is not confined to the reach.

use brokkr_types::requests::AgentIds;
use brokkr_types::resources::{AgentTarget, BulkTargets, Page};
use serde_json::json;
use uuid::Uuid;

use super::retarget::{Retargeted, Subject};
use super::{App, AppError, AppResult, Guard, Requester};
use crate::db::{Tx, Window, stacks, targets};
use crate::domain::Principal;
use crate::targeting::plan;

/// A direct assignment, and whether this call created it.
#[derive(Debug)]
pub struct Targeted {
    pub target: AgentTarget,
    pub created: bool,
}

impl App {
    /// Direct assignments of an agent (a generator sees only those of its own stacks).
    pub async fn list_targets(
        &self,
        by: Requester,
        agent: Uuid,
        window: Window,
    ) -> AppResult<Page<AgentTarget>> {
        self.visible_agent(by, agent).await?;
        let only = by.principal.generator();
        let found = targets::list_for_agent(&self.db, agent, only, window).await?;
        Ok(window.page(found))
    }

    pub async fn add_target(&self, by: Requester, agent: Uuid, stack: Uuid) -> AppResult<Targeted> {
        self.visible_agent(by, agent).await?;
        self.visible_stack(by, stack).await?;
        let mut work = self.begin().await?;
        if stacks::get_row_in(&mut work.tx, stack).await?.is_none() {
            return Err(AppError::NotFound("stack"));
        }
        let (target, created) = targets::add(&mut work.tx, agent, stack, by.is_admin()).await?;
        if created {
            let details = json!({ "stack_id": stack, "assigned_by": target.assigned_by });
            work.audit(by, "target.added", ("agent", Some(agent)), details)
                .await?;
        }
        self.settle(work, Subject::Agent(agent), Guard::default())
            .await?;
        Ok(Targeted { target, created })
    }

    /// Assigns a stack to many agents in one transaction with one retarget pass (`guard`:
    /// a dry run previews which agents would gain it). Every agent must exist and, for a
    /// generator, be inside its reach; otherwise nothing is assigned.
    pub async fn add_targets(
        &self,
        by: Requester,
        stack: Uuid,
        agents: AgentIds,
        guard: Guard,
    ) -> AppResult<Retargeted<BulkTargets>> {
        self.visible_stack(by, stack).await?;
        let ids = agents.as_slice();
        let mut work = self.begin_guarded(guard).await?;
        if stacks::get_row_in(&mut work.tx, stack).await?.is_none() {
            return Err(AppError::NotFound("stack"));
        }
        let unknown = unknown_agents(&mut work.tx, by, ids).await?;
        if let Some(first) = unknown.first() {
            let detail = format!(
                "{} of the agents do not exist or are not yours to target (the first: {first}); \
                 nothing was assigned",
                unknown.len()
            );
            return Err(AppError::invalid("unknown_agents", detail));
        }
        let added = targets::add_many(&mut work.tx, stack, ids, by.is_admin()).await?;
        let details = json!({ "stack_id": stack, "agents": ids.len(), "added": added });
        work.audit(by, "targets.added", ("stack", Some(stack)), details)
            .await?;
        let settled = self.settle(work, Subject::Stack(stack), guard).await?;
        let requested = ids.len() as u64;
        Ok(settled.or(|| BulkTargets {
            stack_id: stack,
            requested,
            added,
            unchanged: requested - added,
        }))
    }

    pub async fn remove_target(&self, by: Requester, agent: Uuid, stack: Uuid) -> AppResult<()> {
        self.visible_agent(by, agent).await?;
        let owner = stacks::owner_of_any(&self.db, stack).await?;
        let allowed = match by.principal {
            Principal::Admin => owner.is_some(),
            Principal::Generator(own) => owner == Some(own),
            Principal::Agent(_) => false,
        };
        if !allowed {
            return Err(AppError::NotFound("stack"));
        }
        let mut work = self.begin().await?;
        if !targets::remove(&mut work.tx, agent, stack).await? {
            return Err(AppError::NotFound("target"));
        }
        let details = json!({ "stack_id": stack });
        work.audit(by, "target.removed", ("agent", Some(agent)), details)
            .await?;
        self.settle(work, Subject::Agent(agent), Guard::default())
            .await?;
        Ok(())
    }
}

/// The agents of `ids` that are not registered or, for a generator, outside its reach.
async fn unknown_agents(tx: &mut Tx, by: Requester, ids: &[Uuid]) -> AppResult<Vec<Uuid>> {
    let existing = targets::existing_agents(tx, ids).await?;
    let reach = match by.principal {
        Principal::Generator(generator) => {
            Some((plan::reach_of_generator(tx, generator).await?, generator))
        }
        _ => None,
    };
    let outside = |id: Uuid| reach.as_ref().is_some_and(|(r, g)| !r.admits(id, *g));
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !existing.contains(id) || outside(*id))
        .collect())
}
