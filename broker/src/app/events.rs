//! Agent events: an active agent reports on deployment objects of stacks that are or were
//! assigned to it (a retried report with the same idempotency key is stored once); admins, the
//! agent and the owning generator read them, a generator only those of agents in its reach.

use brokkr_types::requests::NewAgentEvent;
use brokkr_types::resources::{AgentEvent, EventStatus, EventType, Page};
use uuid::Uuid;

use super::outbox::{AgentRef, DomainEvent, ObjectRef, StackRef};
use super::{App, AppError, AppResult, Requester, Work};
use crate::db::agents::AgentRow;
use crate::db::{Window, assignments, deployment_objects, events, stacks};

/// A stored event, and whether this call stored it.
#[derive(Debug)]
pub struct Recorded {
    pub event: AgentEvent,
    pub created: bool,
}

impl App {
    /// Stores an agent's event. A successful prune of a deleted stack's marker retires the
    /// stack from the agent's target state in the same transaction.
    pub async fn record_event(
        &self,
        by: Requester,
        agent: Uuid,
        event: NewAgentEvent,
    ) -> AppResult<Recorded> {
        let reporter = self.acting_agent(by, agent).await?;
        let mut work = self.begin_unaudited().await?;
        let stack = match event.deployment_object_id {
            Some(object) => Some(reported_stack(&mut work, agent, object).await?),
            None => None,
        };
        let (stored, created) = events::record(&mut work.tx, agent, stack, &event).await?;
        let mut progressed = false;
        if created && let (Some(object), Some(stack)) = (event.deployment_object_id, stack) {
            retire_removed_stack(&mut work, agent, &event, object, stack).await?;
            announce_report(&mut work, &reporter, &stored, object, stack).await?;
            progressed =
                super::rollouts::record_progress(&mut work, &reporter, object, stack, &event)
                    .await?;
        }
        work.commit().await?;
        if progressed {
            self.rollouts_changed();
        }
        Ok(Recorded {
            event: stored,
            created,
        })
    }

    /// Events of an agent, newest first (a generator sees only those about its stacks, and
    /// only of agents inside its reach).
    pub async fn agent_events(
        &self,
        by: Requester,
        agent: Uuid,
        window: Window,
    ) -> AppResult<Page<AgentEvent>> {
        self.visible_agent(by, agent).await?;
        let only = by.principal.generator();
        let found = events::list_for_agent(&self.db, agent, only, window).await?;
        Ok(window.page(found))
    }

    /// Events about one stack, newest first (for a generator, only of agents in its reach).
    pub async fn stack_events(
        &self,
        by: Requester,
        stack: Uuid,
        window: Window,
    ) -> AppResult<Page<AgentEvent>> {
        self.visible_stack(by, stack).await?;
        let only = by.principal.generator();
        let found = events::list_for_stack(&self.db, stack, only, window).await?;
        Ok(window.page(found))
    }
}

/// The stack of a deployment object the agent reports on; refused unless the stack is, or
/// was, assigned to the agent.
async fn reported_stack(work: &mut Work, agent: Uuid, object: Uuid) -> AppResult<Uuid> {
    let stack = deployment_objects::stack_of_any(&mut work.tx, object)
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "validation_failed",
                "deployment_object_id: no such deployment object",
            )
        })?;
    if !assignments::ever_assigned(&mut work.tx, agent, stack).await? {
        return Err(AppError::forbidden(
            "deployment_object_id: this deployment object's stack was never targeted at this agent",
        ));
    }
    Ok(stack)
}

/// The domain event of a report: an apply that succeeded or failed, or failing health.
async fn announce_report(
    work: &mut Work,
    reporter: &AgentRow,
    report: &AgentEvent,
    object: Uuid,
    stack: Uuid,
) -> AppResult<()> {
    let kind = match (report.event_type, report.status) {
        (EventType::Apply, EventStatus::Success) => "deployment.applied",
        (EventType::Apply, EventStatus::Failure) => "deployment.failed",
        (EventType::Health, EventStatus::Failure) => "agent.unhealthy",
        _ => return Ok(()),
    };
    let found = stacks::names_and_owners(&mut work.tx, &[stack]).await?;
    let Some((_, stack_name, owner)) = found.first() else {
        return Ok(());
    };
    let sequence_id = deployment_objects::sequence_of_any(&mut work.tx, object)
        .await?
        .unwrap_or_default();
    let stack = StackRef {
        id: stack,
        name: stack_name,
        generator_id: *owner,
    };
    let object = ObjectRef {
        id: object,
        sequence_id,
    };
    let event = DomainEvent::report(kind, AgentRef::of(reporter), stack, object, report.id);
    work.emit(event);
    Ok(())
}

/// An agent that confirms it removed a deleted stack's objects (a successful prune of the
/// deletion marker) no longer needs the marker: the stack leaves its target state.
async fn retire_removed_stack(
    work: &mut Work,
    agent: Uuid,
    event: &NewAgentEvent,
    object: Uuid,
    stack: Uuid,
) -> AppResult<()> {
    let pruned = event.event_type == EventType::Prune && event.status == EventStatus::Success;
    if pruned && deployment_objects::is_deletion_marker(&mut work.tx, object).await? {
        assignments::remove(&mut work.tx, &[(agent, stack)]).await?;
        work.agents_changed([agent]);
    }
    Ok(())
}
