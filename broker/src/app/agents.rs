//! Agents: registered, listed, updated and deleted by an admin (through the API or the CLI);
//! read and rotated by an admin or the agent itself; heartbeats from the agent itself. An
//! agent never changes its own status, and an inactive agent's writes are refused.

use brokkr_types::requests::{CreateAgent, Heartbeat, UpdateAgent};
use brokkr_types::resources::{Agent, AgentStatus, AgentWithPak, Page};
use serde_json::json;
use uuid::Uuid;

use super::metadata::inline_metadata;
use super::outbox::{self, AgentRef, DomainEvent};
use super::retarget::Subject;
use super::{App, AppError, AppResult, Guard, Requester, Work, credentials, reach};
use crate::db::metadata::{self, Owner};
use crate::db::{Window, agents, assignments, reach as reach_rows};
use crate::domain::Principal;
use crate::targeting::plan;

/// Writes a new agent, its metadata, PAK, audit entry, reach and assignments into `work`.
pub(crate) async fn register(
    work: &mut Work,
    by: Requester,
    body: CreateAgent,
    granted_reach: &[Uuid],
) -> AppResult<AgentWithPak> {
    let status = body.status.unwrap_or(AgentStatus::Active);
    let row = agents::insert(
        &mut work.tx,
        body.name.as_str(),
        body.cluster_name.as_str(),
        status,
    )
    .await?;
    let id = row.id();
    let metadata = inline_metadata(&body.labels, &body.annotations);
    metadata::write_all(&mut work.tx, Owner::Agent, id, &metadata).await?;
    let pak = credentials::issue(work, by.actor, Principal::Agent(id)).await?;
    let details = json!({ "name": body.name, "cluster_name": body.cluster_name });
    work.audit(by, "agent.created", ("agent", Some(id)), details)
        .await?;
    work.emit(DomainEvent::agent("agent.created", AgentRef::of(&row)));
    reach_rows::grant(&mut work.tx, id, granted_reach).await?;
    reach::refresh_agent(work, id).await?;
    let plan = plan::for_agent(&mut work.tx, id).await?;
    plan.apply(&mut work.tx).await?;
    outbox::targeting_changed(work, &plan).await?;
    work.agents_changed(plan.affected_agents());
    let agent = row.with_metadata(metadata);
    Ok(AgentWithPak { agent, pak })
}

impl App {
    /// Registers an agent; it is placed in every generator's reach that admits it and
    /// targeted at once.
    pub async fn create_agent(&self, by: Requester, body: CreateAgent) -> AppResult<AgentWithPak> {
        by.require_admin("register agents")?;
        self.metadata_within_limits(body.labels.len(), body.annotations.len())?;
        let mut work = self.begin().await?;
        let created = register(&mut work, by, body, &[]).await?;
        work.commit().await?;
        Ok(created)
    }

    /// Registers many agents in one transaction, each exactly as [`App::create_agent`] would.
    pub async fn create_agents(
        &self,
        by: Requester,
        bodies: Vec<CreateAgent>,
    ) -> AppResult<Vec<AgentWithPak>> {
        by.require_admin("register agents")?;
        for body in &bodies {
            self.metadata_within_limits(body.labels.len(), body.annotations.len())?;
        }
        let mut work = self.begin().await?;
        let mut created = Vec::with_capacity(bodies.len());
        for body in bodies {
            created.push(register(&mut work, by, body, &[]).await?);
        }
        work.commit().await?;
        Ok(created)
    }

    pub async fn list_agents(&self, by: Requester, window: Window) -> AppResult<Page<Agent>> {
        by.require_admin("list agents")?;
        Ok(window.page(agents::list(&self.db, window).await?))
    }

    pub async fn agent(&self, by: Requester, id: Uuid) -> AppResult<Agent> {
        let row = self.visible_agent(by, id).await?;
        let metadata = metadata::load_one(&self.db, Owner::Agent, id).await?;
        Ok(row.with_metadata(metadata))
    }

    /// An admin's partial update. New names feed reaches and expressions: both are recomputed.
    pub async fn update_agent(
        &self,
        by: Requester,
        id: Uuid,
        patch: UpdateAgent,
    ) -> AppResult<Agent> {
        by.require_admin("update agents")?;
        let mut work = self.begin().await?;
        let row = agents::update(&mut work.tx, id, &patch)
            .await?
            .ok_or(AppError::NotFound("agent"))?;
        let details =
            json!({ "status": patch.status.map(AgentStatus::as_str), "name": patch.name });
        work.audit(by, "agent.updated", ("agent", Some(id)), details)
            .await?;
        work.emit(DomainEvent::agent("agent.updated", AgentRef::of(&row)));
        if patch.name.is_some() || patch.cluster_name.is_some() {
            reach::refresh_agent(&mut work, id).await?;
        }
        work.agents_changed([id]);
        self.settle(work, Subject::Agent(id), Guard::default())
            .await?;
        self.agent(by, id).await
    }

    /// Soft-deletes the agent, revokes its PAK and drops it from every assignment and reach.
    pub async fn delete_agent(&self, by: Requester, id: Uuid) -> AppResult<()> {
        by.require_admin("delete agents")?;
        let mut work = self.begin().await?;
        let row = agents::get_row_in(&mut work.tx, id)
            .await?
            .ok_or(AppError::NotFound("agent"))?;
        if !agents::soft_delete(&mut work.tx, id).await? {
            return Err(AppError::NotFound("agent"));
        }
        work.emit(DomainEvent::agent("agent.deleted", AgentRef::of(&row)));
        credentials::revoke(&mut work, by.actor, Principal::Agent(id)).await?;
        work.audit(by, "agent.deleted", ("agent", Some(id)), json!({}))
            .await?;
        assignments::remove_agent(&mut work.tx, id).await?;
        reach_rows::forget_agent(&mut work.tx, id).await?;
        let now = chrono::Utc::now();
        crate::db::work_orders::cancel_pending(&mut work.tx, None, Some(id), now).await?;
        work.agents_changed([id]);
        work.commit().await
    }

    /// A new PAK for the agent: by an admin, or by the agent itself while it is active.
    pub async fn rotate_agent_pak(&self, by: Requester, id: Uuid) -> AppResult<AgentWithPak> {
        if by.principal == Principal::Agent(id) {
            self.acting_agent(by, id).await?;
        } else {
            self.visible_agent(by, id).await?;
        }
        let mut work = self.begin().await?;
        let pak = credentials::rotate(&mut work, by.actor, Principal::Agent(id))
            .await?
            .ok_or(AppError::NotFound("agent"))?;
        work.commit().await?;
        let agent = agents::get(&self.db, id)
            .await?
            .ok_or(AppError::NotFound("agent"))?;
        Ok(AgentWithPak { agent, pak })
    }

    /// Records that the agent is alive (and whether it reaches its cluster).
    pub async fn heartbeat(&self, by: Requester, id: Uuid, beat: Heartbeat) -> AppResult<()> {
        self.acting_agent(by, id).await?;
        if !agents::heartbeat(&self.db, id, &beat).await? {
            return Err(AppError::NotFound("agent"));
        }
        Ok(())
    }
}
