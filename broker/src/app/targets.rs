//! Direct assignments of stacks to agents, by an admin or by the generator owning the stack.
//! A generator can assign only to agents inside its reach (others do not exist for it); an
//! admin's assignment is not confined to the reach.

use brokkr_types::resources::{AgentTarget, Page};
use serde_json::json;
use uuid::Uuid;

use super::retarget::Subject;
use super::{App, AppError, AppResult, Guard, Requester};
use crate::db::{Window, stacks, targets};
use crate::domain::Principal;

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
