//! Where releases stand: agents report the health of each deployment object they hold; admins
//! and the owning generator read a release's health (worst wins) and its convergence (applied,
//! failed, pending; time to applied and to healthy), optionally waiting for it to change.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use brokkr_types::rollouts::{
    AgentHealth, DeploymentHealth, HealthCounts, HealthReport, MAX_HEALTH_ENTRIES, Rollout,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use brokkr_types::requests::NewAgentEvent;
use brokkr_types::resources::{EventStatus, EventType};

use super::outbox::{AgentRef, DomainEvent, ObjectRef, StackRef};
use super::{App, AppError, AppResult, Requester, Work};
use crate::db::agents::AgentRow;
use crate::db::rollouts::{self, HealthEntry, ObjectHeader, Progress};
use crate::db::{assignments, deployment_objects, reach, stacks};
use crate::domain::Principal;

/// How far ahead of the broker's clock an agent's timestamp may be.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// A reported time: at most the clock skew ahead of the broker, never before the object existed.
pub(crate) fn reported_time(
    at: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
) -> AppResult<DateTime<Utc>> {
    let now = Utc::now();
    let at = at.unwrap_or(now);
    if at > now + CLOCK_SKEW {
        return Err(AppError::invalid(
            "validation_failed",
            "observed_at lies in the future",
        ));
    }
    Ok(at.max(created))
}

impl App {
    /// Stores an agent's health report (only for objects of stacks that are or were assigned to
    /// it; one refused entry refuses the report).
    pub async fn report_health(
        &self,
        by: Requester,
        agent: Uuid,
        report: HealthReport,
    ) -> AppResult<()> {
        self.acting_agent(by, agent).await?;
        if report.deployment_objects.len() > MAX_HEALTH_ENTRIES {
            return Err(AppError::invalid(
                "validation_failed",
                format!("deployment_objects: at most {MAX_HEALTH_ENTRIES} entries"),
            ));
        }
        let mut work = self.begin_unaudited().await?;
        let mut entries = Vec::with_capacity(report.deployment_objects.len());
        for entry in &report.deployment_objects {
            let object = entry.deployment_object_id;
            let header = rollouts::header_in(&mut work.tx, object)
                .await?
                .ok_or_else(|| {
                    AppError::invalid(
                        "validation_failed",
                        format!("deployment_objects: no deployment object {object}"),
                    )
                })?;
            if !assignments::ever_assigned(&mut work.tx, agent, header.stack_id).await? {
                return Err(AppError::forbidden(format!(
                    "deployment_objects: the stack of {object} was never targeted at this agent"
                )));
            }
            entries.push(HealthEntry {
                object,
                status: entry.status,
                message: entry.message.as_ref().map(|m| m.as_str()),
                at: reported_time(entry.observed_at, header.created_at)?,
            });
        }
        rollouts::record_health(&mut work.tx, agent, &entries).await?;
        work.commit().await?;
        self.rollouts_changed();
        Ok(())
    }

    /// A deployment object `by` may follow (admins, the owning generator), and the generator
    /// whose reach bounds the agents shown (`None`: all).
    async fn followed_object(
        &self,
        by: Requester,
        object: Uuid,
    ) -> AppResult<(ObjectHeader, Option<Uuid>)> {
        let missing = || AppError::NotFound("deployment object");
        let header = rollouts::header(&self.db, object)
            .await?
            .ok_or_else(missing)?;
        match by.principal {
            Principal::Admin => Ok((header, None)),
            Principal::Generator(own)
                if stacks::owner_of_any(&self.db, header.stack_id).await? == Some(own) =>
            {
                Ok((header, Some(own)))
            }
            _ => Err(missing()),
        }
    }

    /// The health of a deployment object over the agents reporting it (worst wins).
    pub async fn deployment_health(
        &self,
        by: Requester,
        object: Uuid,
    ) -> AppResult<DeploymentHealth> {
        let (_, reach_of) = self.followed_object(by, object).await?;
        let visible: Option<HashSet<Uuid>> = match reach_of {
            Some(generator) => {
                let mut tx = self.db.begin_read().await?;
                Some(reach::agents_of(&mut tx, generator).await?)
            }
            None => None,
        };
        let mut counts = HealthCounts::default();
        let mut agents = Vec::new();
        for row in rollouts::of_object(&self.db, object).await? {
            if !visible.as_ref().is_none_or(|v| v.contains(&row.agent_id)) {
                continue;
            }
            let (Some(status), Some(observed_at)) = (row.health(), row.health_at) else {
                continue;
            };
            counts.add(status);
            agents.push(AgentHealth {
                agent_id: row.agent_id,
                status,
                message: row.health_message,
                observed_at,
            });
        }
        agents.sort_by(|a, b| b.status.cmp(&a.status).then(a.agent_id.cmp(&b.agent_id)));
        Ok(DeploymentHealth {
            deployment_object_id: object,
            status: counts.worst(),
            counts,
            agents,
        })
    }

    /// The convergence of one release.
    /// Computed once per report this replica stores (and at least every second, for reports
    /// other replicas store) and shared by every reader.
    pub async fn rollout(&self, by: Requester, object: Uuid) -> AppResult<Rollout> {
        let (header, reach_of) = self.followed_object(by, object).await?;
        let tick = *self.rollout_changes().borrow();
        let mut rollout = match self.rollout_cache.get(&(object, reach_of)) {
            Some((computed_at, rollout)) if computed_at == tick => (*rollout).clone(),
            _ => {
                let rollout = self.tracked_figures(object, header, reach_of).await?;
                self.rollout_cache
                    .insert((object, reach_of), (tick, Arc::new(rollout.clone())));
                rollout
            }
        };
        rollout.staged = self.staged_view(object).await?;
        Ok(rollout)
    }

    /// The convergence of a stack's newest release.
    pub async fn stack_rollout(&self, by: Requester, stack: Uuid) -> AppResult<Rollout> {
        self.visible_stack(by, stack).await?;
        let latest = deployment_objects::latest_of_stack(&self.db, stack)
            .await?
            .ok_or(AppError::NotFound("deployment object"))?;
        self.rollout(by, latest).await
    }

    /// [`Self::rollout`] (or [`Self::stack_rollout`]), held up to `wait` until it differs from
    /// the one the caller saw (`seen`, a rollout's ETag).
    pub async fn watch_rollout(
        &self,
        by: Requester,
        target: RolloutOf,
        seen: Option<&str>,
        wait: Duration,
    ) -> AppResult<(Rollout, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut changes = self.rollout_changes();
        loop {
            let rollout = match target {
                RolloutOf::Object(id) => self.rollout(by, id).await?,
                RolloutOf::Stack(id) => self.stack_rollout(by, id).await?,
            };
            let tag = etag(&rollout);
            if seen != Some(tag.as_str()) || tokio::time::Instant::now() >= deadline {
                return Ok((rollout, tag));
            }
            // Reports taken by another replica are seen at the next second at the latest.
            let next = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
            let _ = tokio::time::timeout_at(next, changes.changed()).await;
        }
    }
}

/// An apply report moves the agent's progress on the object, and may decide its rollout:
/// `rollout.failed` at the first failing agent, `rollout.converged` when the last targeted agent
/// applied it. `true` when the progress moved.
pub(crate) async fn record_progress(
    work: &mut Work,
    reporter: &AgentRow,
    object: Uuid,
    stack: Uuid,
    event: &NewAgentEvent,
) -> AppResult<bool> {
    if event.event_type != EventType::Apply {
        return Ok(false);
    }
    let Some(header) = rollouts::header_in(&mut work.tx, object).await? else {
        return Ok(false);
    };
    let agent = reporter.id();
    let at = reported_time(event.occurred_at, header.created_at)?;
    let before = rollouts::one(&mut work.tx, object, agent).await?;
    let failure = (event.status == EventStatus::Failure).then(|| {
        event
            .message
            .as_ref()
            .map_or("apply failed", |m| m.as_str())
    });
    rollouts::record_apply(&mut work.tx, object, agent, failure, at).await?;
    let was_failing = before.as_ref().is_some_and(Progress::failing);
    let was_applied = before
        .as_ref()
        .is_some_and(|p| p.applied_at.is_some() && !p.failing());
    let decided = match failure {
        Some(_)
            if !was_failing && !rollouts::others_failing(&mut work.tx, object, agent).await? =>
        {
            Some("rollout.failed")
        }
        None if !was_applied && !rollouts::any_pending(&mut work.tx, stack, object).await? => {
            Some("rollout.converged")
        }
        _ => None,
    };
    if let Some(kind) = decided {
        announce_rollout(work, kind, reporter, stack, object, header.sequence_id).await?;
    }
    Ok(true)
}

async fn announce_rollout(
    work: &mut Work,
    kind: &'static str,
    reporter: &AgentRow,
    stack: Uuid,
    object: Uuid,
    sequence_id: i64,
) -> AppResult<()> {
    let found = stacks::names_and_owners(&mut work.tx, &[stack]).await?;
    let Some((_, name, owner)) = found.first() else {
        return Ok(());
    };
    let stack = StackRef {
        id: stack,
        name,
        generator_id: *owner,
    };
    let object = ObjectRef {
        id: object,
        sequence_id,
    };
    work.emit(DomainEvent::rollout(
        kind,
        stack,
        object,
        AgentRef::of(reporter),
    ));
    Ok(())
}

/// Rollout figures shared by readers: (object, bounding generator) → (tick, figures).
pub type RolloutCache = moka::sync::Cache<(Uuid, Option<Uuid>), (u64, Arc<Rollout>)>;

pub(crate) fn new_cache() -> RolloutCache {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(1))
        .build()
}

/// What a rollout request follows.
#[derive(Debug, Clone, Copy)]
pub enum RolloutOf {
    Object(Uuid),
    Stack(Uuid),
}

/// A strong ETag of a rollout's figures.
pub fn etag(rollout: &Rollout) -> String {
    use sha2::Digest as _;
    let body = serde_json::to_vec(rollout).unwrap_or_default();
    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(&body)[..12]))
}
