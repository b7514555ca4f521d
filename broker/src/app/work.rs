//! [`Work`]: one write transaction of a use case and what must happen once it commits. The
//! change, its audit entry and its domain events (the outbox) are written inside the
//! transaction; other replicas are told inside it too (PostgreSQL delivers notifications on
//! commit); this replica's hub, fragment cache, authentication cache and webhook dispatcher
//! are told only after the commit succeeded.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::outbox::DomainEvent;
use super::{App, AppError, AppResult, Requester};
use crate::db::audit::{self, Actor, Record};
use crate::db::{Tx, outbox, paks};

/// What the commit of a [`Work`] must announce.
#[derive(Debug, Default)]
struct Effects {
    /// Agents whose target state changed.
    agents: BTreeSet<Uuid>,
    /// Every agent's target state changed (policies, for instance).
    everyone: bool,
    /// `(stack, (new deployment object, its sequence))`: every view holding the stack advances.
    advances: Vec<(Uuid, (Uuid, i64))>,
    /// Advances that reach only some of the stack's agents (a staged rollout's wave).
    partial_advances: Vec<(Uuid, Uuid, Vec<Uuid>)>,
    /// Short tokens of PAKs that stopped being valid.
    revoked: Vec<String>,
    /// Deployment objects whose serialized entries are stale.
    stale_fragments: Vec<Uuid>,
    /// Domain events for the outbox.
    events: Vec<outbox::NewEvent>,
}

/// What a [`Work`] may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Writes and appends to the audit log (holds the PostgreSQL writer lock).
    Audited,
    /// Writes, never audits (agent events): no writer lock.
    Unaudited,
    /// A preview: written only to be rolled back, so it neither audits nor locks.
    DryRun,
}

/// An open transaction of a use case. Dropped without [`Work::commit`], it rolls back and
/// announces nothing.
#[derive(Debug)]
pub struct Work {
    pub tx: Tx,
    app: App,
    mode: Mode,
    effects: Effects,
}

impl App {
    /// Opens a write transaction that may append to the audit log.
    pub(crate) async fn begin(&self) -> AppResult<Work> {
        self.open(Mode::Audited).await
    }

    /// Opens a write transaction that writes no audit entry (agent events), so it does not
    /// queue behind audited writers on PostgreSQL.
    pub(crate) async fn begin_unaudited(&self) -> AppResult<Work> {
        self.open(Mode::Unaudited).await
    }

    /// Opens the transaction of a change that a `guard` may make a dry run of: a dry run takes
    /// no writer lock and cannot commit.
    pub(crate) async fn begin_guarded(&self, guard: super::Guard) -> AppResult<Work> {
        self.open(if guard.dry_run {
            Mode::DryRun
        } else {
            Mode::Audited
        })
        .await
    }

    async fn open(&self, mode: Mode) -> AppResult<Work> {
        let tx = match mode {
            Mode::Audited => self.db.begin().await?,
            Mode::Unaudited | Mode::DryRun => self.db.begin_unaudited().await?,
        };
        Ok(Work {
            tx,
            app: self.clone(),
            mode,
            effects: Effects::default(),
        })
    }
}

impl Work {
    /// Appends an audit entry for this change, in its transaction.
    pub async fn audit(
        &mut self,
        by: Requester,
        action: &str,
        resource: (&str, Option<Uuid>),
        details: serde_json::Value,
    ) -> AppResult<()> {
        self.audit_as(by.actor, action, resource, details).await
    }

    /// [`Work::audit`] with an explicit actor (the system, an anonymous client).
    pub async fn audit_as(
        &mut self,
        actor: Actor,
        action: &str,
        (resource_type, resource_id): (&str, Option<Uuid>),
        details: serde_json::Value,
    ) -> AppResult<()> {
        match self.mode {
            Mode::Audited => {}
            // A preview is rolled back: there is nothing to audit.
            Mode::DryRun => return Ok(()),
            Mode::Unaudited => {
                return Err(AppError::Internal(format!(
                    "{action} was audited in a transaction that does not hold the writer lock"
                )));
            }
        }
        let record = Record {
            actor,
            action,
            resource_type,
            resource_id: resource_id.map(|id| id.to_string()),
            details,
        };
        Ok(audit::record(&mut self.tx, record).await?)
    }

    /// These agents' target states changed.
    pub fn agents_changed(&mut self, agents: impl IntoIterator<Item = Uuid>) {
        self.effects.agents.extend(agents);
    }

    /// Every agent's target state changed.
    pub fn everyone_changed(&mut self) {
        self.effects.everyone = true;
    }

    /// `stack` moved to deployment object `object`, its `sequence`th: after the commit, every
    /// view holding the stack advances, off the request path.
    pub fn advanced(&mut self, stack: Uuid, object: Uuid, sequence: i64) {
        self.effects.advances.push((stack, (object, sequence)));
    }

    /// Only `agents` of the stack move to deployment object `object` (a staged rollout's
    /// wave); the stack's other agents keep what they hold.
    pub fn advanced_only(&mut self, stack: Uuid, object: Uuid, agents: Vec<Uuid>) {
        self.effects.partial_advances.push((stack, object, agents));
    }

    /// A PAK stopped being valid: every replica must forget it.
    pub fn revoked(&mut self, short: Option<String>) {
        self.effects.revoked.extend(short);
    }

    /// Records a domain event, written to the outbox with the change; returns its id.
    pub fn emit(&mut self, event: DomainEvent) -> Uuid {
        let row = event.into_row();
        let id = row.id;
        self.effects.events.push(row);
        id
    }

    /// The serialized entry of this deployment object is stale (its stack was renamed).
    pub fn fragment_stale(&mut self, object: Uuid) {
        self.effects.stale_fragments.push(object);
    }

    /// Announces to other replicas, commits, then updates this replica's caches.
    pub async fn commit(mut self) -> AppResult<()> {
        if self.mode == Mode::DryRun {
            return Err(AppError::Internal("a dry run cannot be committed".into()));
        }
        let mut effects = std::mem::take(&mut self.effects);
        let events = std::mem::take(&mut effects.events);
        let emitted = !events.is_empty();
        if emitted {
            outbox::append(&mut self.tx, &events).await?;
            outbox::notify(&mut self.tx).await?;
        }
        let targeting = &self.app.targeting;
        for short in &effects.revoked {
            paks::notify_invalidation(&mut self.tx, short).await?;
        }
        if effects.everyone {
            targeting.announce_all(&mut self.tx).await?;
        } else {
            let agents: Vec<Uuid> = effects.agents.iter().copied().collect();
            targeting.announce(&mut self.tx, &agents).await?;
        }
        for (stack, object) in &effects.advances {
            targeting
                .announce_advance(&mut self.tx, *stack, *object)
                .await?;
        }
        for (_, _, agents) in &effects.partial_advances {
            targeting.announce(&mut self.tx, agents).await?;
        }
        self.tx.commit().await?;
        if emitted {
            self.app.outbox_wake.notify_one();
        }
        Self::after_commit(&self.app, effects).await;
        Ok(())
    }

    async fn after_commit(app: &App, effects: Effects) {
        // Who a release targets may have changed: its figures are read again.
        let advanced = !effects.advances.is_empty() || !effects.partial_advances.is_empty();
        if effects.everyone || !effects.agents.is_empty() || advanced {
            app.rollouts_changed();
        }
        for short in &effects.revoked {
            app.auth.invalidate(short).await;
        }
        for object in effects.stale_fragments {
            app.targeting.fragments.forget(object).await;
        }
        for (stack, object) in effects.advances {
            app.targeting.advance_later(stack, object);
        }
        for (stack, object, agents) in effects.partial_advances {
            app.targeting.hub.advance(agents, stack, object);
        }
        if effects.everyone {
            app.targeting.changed_all();
        } else {
            app.targeting
                .changed(&effects.agents.into_iter().collect::<Vec<_>>());
        }
    }
}
