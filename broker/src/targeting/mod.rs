//! Targeting at the broker: every rule (direct, labels, annotations, CEL) resolves into one
//! materialized assignment set, recomputed for the agent or stack that changed and never per
//! poll; an in-memory hub answers unchanged polls and wakes long-polling agents.
//!
//! Replicas learn of each other's changes through PostgreSQL notifications on
//! [`CHANGED_CHANNEL`], whose payload is `<replica>|<ids>` (these agents changed),
//! `<replica>|*` (everything changed) or `<replica>|@<stack>=<object>` (a stack moved to a new
//! deployment object). A replica ignores its own notifications.

pub mod compiled;
pub mod content;
pub mod hub;
pub mod plan;
pub mod waves;

use std::sync::Arc;

use uuid::Uuid;

use crate::db::{StoreResult, Tx};

pub use content::Fragments;
pub use hub::{Hub, View};
pub use plan::Plan;

/// The PostgreSQL channel announcing target-state changes.
pub const CHANGED_CHANNEL: &str = "brokkr_targets_changed";

/// Agent ids per notification (payloads stay under PostgreSQL's 8000-byte limit).
const IDS_PER_NOTIFICATION: usize = 200;
/// Above this many agents one "everything changed" notification replaces the id lists.
const MAX_LISTED: usize = 20_000;

/// Targeting state shared by the handlers.
#[derive(Debug)]
pub struct Targeting {
    pub hub: Hub,
    pub fragments: Fragments,
    /// This process's identity in notifications.
    replica: Uuid,
    /// Counts the changes of who is targeted with what seen here (this replica's and the ones
    /// other replicas announced): kept rollout figures are read whole again when it moved.
    generation: std::sync::atomic::AtomicU64,
}

impl Default for Targeting {
    fn default() -> Self {
        Self {
            hub: Hub::default(),
            fragments: Fragments::default(),
            replica: Uuid::new_v4(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

async fn notify(tx: &mut Tx, payloads: Vec<String>) -> StoreResult<()> {
    if let Tx::Postgres(t) = tx {
        for payload in payloads {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGED_CHANNEL)
                .bind(payload)
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(())
}

impl Targeting {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Notification payloads saying these agents changed.
    fn payloads(&self, agents: &[Uuid]) -> Vec<String> {
        if agents.len() > MAX_LISTED {
            return vec![format!("{}|*", self.replica)];
        }
        agents
            .chunks(IDS_PER_NOTIFICATION)
            .map(|c| {
                format!(
                    "{}|{}",
                    self.replica,
                    c.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",")
                )
            })
            .collect()
    }

    /// Announces, inside `tx`, that these agents' target states changed: other replicas learn
    /// it when the transaction commits. Call [`Targeting::changed`] after the commit.
    pub async fn announce(&self, tx: &mut Tx, agents: &[Uuid]) -> StoreResult<()> {
        notify(tx, self.payloads(agents)).await
    }

    /// Announces, inside `tx`, that every agent's target state changed.
    pub async fn announce_all(&self, tx: &mut Tx) -> StoreResult<()> {
        notify(tx, vec![format!("{}|*", self.replica)]).await
    }

    /// Announces, inside `tx`, that `stack` moved to deployment object `object`.
    pub async fn announce_advance(
        &self,
        tx: &mut Tx,
        stack: Uuid,
        object: Uuid,
    ) -> StoreResult<()> {
        notify(tx, vec![format!("{}|@{stack}={object}", self.replica)]).await
    }

    /// This replica's part of a change: forget the agents' views and wake their long polls.
    pub fn changed(&self, agents: &[Uuid]) {
        if !agents.is_empty() {
            self.bump();
        }
        self.hub.invalidate(agents.iter().copied());
    }

    /// [`Targeting::changed`] for every agent.
    pub fn changed_all(&self) {
        self.bump();
        self.hub.invalidate_all();
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The number of targeting changes seen so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A notification on [`CHANGED_CHANNEL`].
    pub fn on_notification(&self, payload: &str) {
        let (from, rest) = payload.split_once('|').unwrap_or(("", payload));
        if from == self.replica.to_string() {
            return;
        }
        if rest == "*" {
            self.changed_all();
        } else if let Some((stack, object)) = rest.strip_prefix('@').and_then(|r| r.split_once('='))
        {
            match (Uuid::parse_str(stack), Uuid::parse_str(object)) {
                (Ok(stack), Ok(object)) => self.hub.advance_stack(stack, object),
                _ => self.changed_all(),
            }
        } else {
            let agents: Vec<Uuid> = rest
                .split(',')
                .filter_map(|s| Uuid::parse_str(s.trim()).ok())
                .collect();
            self.changed(&agents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(targeting: &Targeting, agent: Uuid, stack: Uuid, object: Uuid) {
        let (generation, _) = targeting.hub.snapshot(agent);
        let view = View::new(
            agent,
            vec![(stack, object)],
            bytes::Bytes::from_static(b"[]"),
            bytes::Bytes::from_static(b"[]"),
        );
        targeting.hub.store(agent, generation, Arc::new(view));
    }

    #[test]
    fn notifications_from_other_replicas_apply() {
        let (here, there) = (Targeting::default(), Targeting::default());
        let (agent, stack, old, new) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        held(&here, agent, stack, old);
        here.on_notification(&format!("{}|@{stack}={new}", there.replica));
        assert_eq!(
            here.hub.snapshot(agent).1.unwrap().pairs,
            vec![(stack, new)]
        );
        for payload in there.payloads(&[agent]) {
            here.on_notification(&payload);
        }
        assert!(here.hub.snapshot(agent).1.is_none());
    }

    #[test]
    fn own_notifications_are_ignored_and_payloads_fit() {
        let here = Targeting::default();
        let (agent, stack, object) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        held(&here, agent, stack, object);
        for payload in here.payloads(&[agent]) {
            here.on_notification(&payload);
        }
        assert!(here.hub.snapshot(agent).1.is_some());
        let many: Vec<Uuid> = (0..450).map(|_| Uuid::new_v4()).collect();
        let payloads = here.payloads(&many);
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() < 8000));
    }
}
