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
use crate::targeting::encoding::Encoding;

/// The answer to a target-state request.
#[derive(Debug)]
pub enum TargetState {
    /// The state changed (or the caller held none): the JSON body in `encoding`, in shared
    /// parts to be sent one after the other, and its ETag.
    Full {
        body: Vec<Bytes>,
        etag: String,
        encoding: Encoding,
    },
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
    /// the state the caller has) still current, waits up to `wait` for a change. A full answer
    /// is coded in `encoding`.
    pub async fn target_state(
        &self,
        by: Requester,
        agent: Uuid,
        (held, wait): (Option<&str>, Duration),
        encoding: Encoding,
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
            // Subscribe before reading, so a change between the two cannot be missed (a poll
            // that does not wait has nothing to miss).
            let mut changes = (!wait.is_zero()).then(|| self.targeting.hub.subscribe(agent));
            // Boxed, like the body below: a poll waits holding only what it needs to wait
            // (thousands do at once), not room for the database reads it is done with.
            let view = Box::pin(self.current_view(agent)).await?;
            let unchanged = held.is_some_and(|h| target_etag::matches(h, &view.etag));
            if !unchanged {
                let fragments = &self.targeting.fragments;
                let body = Box::pin(fragments.body(&self.db, agent, &view, encoding)).await?;
                self.metrics.target_state_full.inc();
                if encoding == Encoding::Zstd {
                    self.metrics.target_state_compressed.inc();
                }
                let etag = view.etag.clone();
                return Ok(TargetState::Full {
                    body,
                    etag,
                    encoding,
                });
            }
            let woken = match changes.as_mut() {
                Some(changes) => {
                    let _waiting = Waiting::new(&self.metrics.long_polls_waiting);
                    tokio::time::timeout_at(deadline, changes.changed())
                        .await
                        .is_ok()
                }
                None => false,
            };
            if !woken {
                self.metrics.target_state_not_modified.inc();
                let etag = view.etag.clone();
                return Ok(TargetState::NotModified { etag });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::db::Db;

    #[tokio::test]
    async fn a_waiting_poll_holds_a_small_future() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let app = App::new(Db::connect(&url, 1).await.unwrap(), Settings::default()).unwrap();
        let wait = (Some("etag"), Duration::from_secs(30));
        let poll = app.target_state(Requester::CLI, Uuid::nil(), wait, Encoding::Zstd);
        let size = std::mem::size_of_val(&poll);
        eprintln!("a target-state poll's future: {size} bytes");
        assert!(size < 1024, "{size} bytes");
    }
}
