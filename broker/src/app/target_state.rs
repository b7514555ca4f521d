//! An agent's target state: the full desired state with an ETag, answered from the hub's
//! in-memory view when nothing changed (no database), and held as a long poll until the state
//! changes (on any replica) or the wait ends. An inactive agent still reads it, so an operator
//! can drain it by untargeting its stacks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

use super::{App, AppError, AppResult, Requester};
use crate::db::{agents, plugins, target_state};
use crate::domain::{Principal, target_etag};
use crate::metrics::Waiting;
use crate::targeting::View;

/// The answer to a target-state request.
#[derive(Debug)]
pub enum TargetState {
    /// The state changed (or the caller held none): the JSON body, in shared parts to be sent
    /// one after the other, and its ETag.
    Full { body: Vec<Bytes>, etag: String },
    /// The caller's ETag is current.
    NotModified { etag: String },
}

impl App {
    /// The agent's current view, from memory or (once per change) from the database. A view
    /// holding a stack whose new object is committed but not yet advanced to waits for it.
    async fn current_view(&self, agent: Uuid) -> AppResult<Arc<View>> {
        let hub = &self.targeting.hub;
        let generation = loop {
            let mut settled = self.targeting.settled();
            match hub.snapshot(agent) {
                (_, Some(view)) if self.targeting.advancing(&view.pairs) => {
                    let _ = settled.changed().await;
                }
                (_, Some(view)) => return Ok(view),
                (generation, None) => break generation,
            }
        };
        if agents::get_row(&self.db, agent).await?.is_none() {
            return Err(AppError::NotFound("agent"));
        }
        let pairs = target_state::fingerprint(&self.db, agent).await?;
        let policies = plugins::policies_for_agent(&self.db, agent).await?;
        let policies = serde_json::to_vec(&policies)
            .map_err(|e| AppError::Internal(format!("cannot serialise policies: {e}")))?
            .into();
        let work = self.pending_work(agent).await?;
        let view = Arc::new(View::new(agent, pairs, policies, work));
        hub.store(agent, generation, view.clone());
        Ok(view)
    }

    /// The target state of `agent` for an admin or the agent itself. With `held` (the ETag of
    /// the state the caller has) still current, waits up to `wait` for a change.
    pub async fn target_state(
        &self,
        by: Requester,
        agent: Uuid,
        held: Option<&str>,
        wait: Duration,
    ) -> AppResult<TargetState> {
        match by.principal {
            Principal::Admin => {}
            Principal::Agent(own) if own == agent => {}
            Principal::Agent(_) => return Err(AppError::NotFound("agent")),
            Principal::Generator(_) => {
                return Err(AppError::forbidden("generators cannot read target states"));
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Subscribe before reading, so a change between the two cannot be missed.
            let mut changes = self.targeting.hub.subscribe(agent);
            let view = self.current_view(agent).await?;
            let unchanged = held.is_some_and(|h| target_etag::matches(h, &view.etag));
            if !unchanged {
                let body = self
                    .targeting
                    .fragments
                    .body(&self.db, agent, &view)
                    .await?;
                self.metrics.target_state_full.inc();
                let etag = view.etag.clone();
                return Ok(TargetState::Full { body, etag });
            }
            let woken = !wait.is_zero() && {
                let _waiting = Waiting::new(&self.metrics.long_polls_waiting);
                tokio::time::timeout_at(deadline, changes.changed())
                    .await
                    .is_ok()
            };
            if !woken {
                self.metrics.target_state_not_modified.inc();
                let etag = view.etag.clone();
                return Ok(TargetState::NotModified { etag });
            }
        }
    }
}
