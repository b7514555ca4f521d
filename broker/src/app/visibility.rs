//! Row rules: which generators, stacks and agents a requester may see. A row the requester may
//! not see is reported as not found, exactly as if it did not exist. A generator sees only the
//! agents inside its reach; an agent that is not active may read but not write.

use brokkr_types::resources::{AgentStatus, Generator};
use uuid::Uuid;

use super::{App, AppError, AppResult, Requester};
use crate::db::agents::AgentRow;
use crate::db::stacks::StackRow;
use crate::db::{agents, generators, reach, stacks};
use crate::domain::Principal;

impl App {
    /// A live generator `by` may see (admins see all; a generator sees itself).
    pub(crate) async fn visible_generator(&self, by: Requester, id: Uuid) -> AppResult<Generator> {
        let visible = match by.principal {
            Principal::Admin => true,
            Principal::Generator(own) => own == id,
            Principal::Agent(_) => false,
        };
        let found = if visible {
            generators::get(&self.db, id).await?
        } else {
            None
        };
        found.ok_or(AppError::NotFound("generator"))
    }

    /// A live stack `by` may see (admins see all; a generator sees its own).
    pub(crate) async fn visible_stack(&self, by: Requester, id: Uuid) -> AppResult<StackRow> {
        let row = stacks::get_row(&self.db, id)
            .await?
            .ok_or(AppError::NotFound("stack"))?;
        match by.principal {
            Principal::Admin => Ok(row),
            Principal::Generator(own) if own == row.generator_id => Ok(row),
            _ => Err(AppError::NotFound("stack")),
        }
    }

    /// A live agent `by` may see: admins see all, an agent itself, a generator the agents
    /// inside its reach.
    pub(crate) async fn visible_agent(&self, by: Requester, id: Uuid) -> AppResult<AgentRow> {
        let visible = match by.principal {
            Principal::Admin => true,
            Principal::Agent(own) => own == id,
            Principal::Generator(generator) => reach::contains(&self.db, generator, id).await?,
        };
        let found = if visible {
            agents::get_row(&self.db, id).await?
        } else {
            None
        };
        found.ok_or(AppError::NotFound("agent"))
    }

    /// The agent `id` writing about itself: it must be the requester and active.
    pub(crate) async fn acting_agent(&self, by: Requester, id: Uuid) -> AppResult<AgentRow> {
        if by.principal != Principal::Agent(id) {
            return Err(AppError::NotFound("agent"));
        }
        let row = self.visible_agent(by, id).await?;
        if row.status() != AgentStatus::Active {
            return Err(AppError::agent_inactive());
        }
        Ok(row)
    }
}
