//! Targeting at the broker: every rule (direct, labels, annotations, CEL) resolves into one
//! materialized assignment set, recomputed for the agent or stack that changed and never per
//! poll; an in-memory hub answers unchanged polls and wakes long-polling agents.

pub mod change;
pub mod content;
pub mod hub;
pub mod plan;

use std::sync::Arc;

use uuid::Uuid;

use crate::db::{StoreResult, Tx};

pub use content::Fragments;
pub use hub::{Hub, View};
pub use plan::Plan;

/// The PostgreSQL channel announcing agents whose target state changed (`*` for all).
pub const CHANGED_CHANNEL: &str = "brokkr_targets_changed";

/// Targeting state shared by the handlers.
#[derive(Debug, Default)]
pub struct Targeting {
    pub hub: Hub,
    pub fragments: Fragments,
}

/// Announces, inside `tx`, that these agents' target states changed: other replicas learn it
/// when the transaction commits. Call [`Targeting::changed`] after the commit for this one.
pub async fn announce(tx: &mut Tx, agents: &[Uuid]) -> StoreResult<()> {
    if let Tx::Postgres(t) = tx {
        for payload in payloads(agents) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGED_CHANNEL)
                .bind(payload)
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(())
}

/// Announces, inside `tx`, that `stack` moved to deployment object `object` for these agents.
pub async fn announce_advance(tx: &mut Tx, stack: Uuid, object: Uuid, agents: &[Uuid]) -> StoreResult<()> {
    if let Tx::Postgres(t) = tx {
        for ids in payloads(agents) {
            let payload = if ids == "*" { ids } else { format!("@{stack}={object};{ids}") };
            sqlx::query("SELECT pg_notify($1, $2)").bind(CHANGED_CHANNEL).bind(payload).execute(&mut **t).await?;
        }
    }
    Ok(())
}

/// Notification payloads: comma-separated ids, each under PostgreSQL's 8000-byte limit.
fn payloads(agents: &[Uuid]) -> Vec<String> {
    if agents.len() > 2000 {
        return vec!["*".into()];
    }
    agents
        .chunks(200)
        .map(|c| c.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","))
        .collect()
}

impl Targeting {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// This replica's part of a change: forget the agents' views and wake their long polls.
    pub fn changed(&self, agents: &[Uuid]) {
        self.hub.invalidate(agents.iter().copied());
    }

    /// A notification from another replica.
    pub fn on_notification(&self, payload: &str) {
        if payload == "*" {
            self.hub.invalidate_all();
            return;
        }
        if let Some(rest) = payload.strip_prefix('@')
            && let Some((head, ids)) = rest.split_once(';')
            && let Some((stack, object)) = head.split_once('=')
            && let (Ok(stack), Ok(object)) = (Uuid::parse_str(stack), Uuid::parse_str(object))
        {
            let agents = ids.split(',').filter_map(|s| Uuid::parse_str(s.trim()).ok());
            self.hub.advance(agents, stack, object);
            return;
        }
        let agents: Vec<Uuid> = payload
            .split(',')
            .filter_map(|s| Uuid::parse_str(s.trim()).ok())
            .collect();
        self.changed(&agents);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_notifications_update_views() {
        let targeting = Targeting::default();
        let (agent, stack, old, new) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (generation, _) = targeting.hub.snapshot(agent);
        let etag = crate::domain::target_etag::etag(agent, &[(stack, old)]);
        targeting.hub.store(agent, generation, Arc::new(View { etag, active: true, pairs: vec![(stack, old)] }));
        targeting.on_notification(&format!("@{stack}={new};{agent}"));
        assert_eq!(targeting.hub.snapshot(agent).1.unwrap().pairs, vec![(stack, new)]);
        targeting.on_notification(&agent.to_string());
        assert!(targeting.hub.snapshot(agent).1.is_none());
    }

    #[test]
    fn payloads_fit_notifications() {
        let agents: Vec<Uuid> = (0..450).map(|_| Uuid::new_v4()).collect();
        let chunks = payloads(&agents);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.len() < 8000));
        assert_eq!(payloads(&vec![Uuid::nil(); 2001]), vec!["*".to_string()]);
    }
}
