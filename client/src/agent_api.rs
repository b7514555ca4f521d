//! The calls an agent makes: enrolling, its target state (long-polled with `If-None-Match`),
//! heartbeats, events, health, plugin modules, and work-order leases. An answer that is not a
//! complete target state for the asking agent is an error, never an empty state.

use std::time::Duration;

use brokkr_types::requests::{Heartbeat, NewAgentEvent};
use brokkr_types::resources::AgentWithPak;
use brokkr_types::rollouts::HealthReport;
use brokkr_types::target_state::TargetState;
use brokkr_types::work_orders::{CompleteRun, Lease, RenewLease};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::api::body;
use crate::{Call, Client, ClientError, ClientResult};

/// What a look at the target state found.
#[derive(Debug)]
pub enum TargetStateFetch {
    /// Still what the agent holds (its ETag matched).
    Unchanged,
    Changed(TargetState),
}

/// How long past a long poll's wait the broker may take to answer.
const LONG_POLL_GRACE: Duration = Duration::from_secs(15);

impl Client {
    /// Registers an agent with an enrollment token (no PAK needed); the answer carries the
    /// agent's PAK, shown once.
    pub async fn enroll(
        &self,
        token: &str,
        name: &str,
        cluster_name: &str,
    ) -> ClientResult<AgentWithPak> {
        let mut call = Call::new(Method::POST, "/api/v1/enroll");
        call.body = Some(json!({ "token": token, "name": name, "cluster_name": cluster_name }));
        self.send(call).await?.json()
    }

    /// The agent behind this client's PAK; an error for any other principal.
    pub async fn own_agent_id(&self) -> ClientResult<Uuid> {
        let me = self.whoami().await?;
        match (me.principal_type.as_str(), me.id) {
            ("agent", Some(id)) => Ok(id),
            (other, _) => Err(ClientError::Decode(format!(
                "this PAK belongs to a {other}, not an agent"
            ))),
        }
    }

    /// The agent's target state. With `etag` (what it holds) the broker answers `Unchanged`
    /// when nothing changed, after holding the request up to `wait`.
    pub async fn target_state(
        &self,
        agent: Uuid,
        etag: Option<&str>,
        wait: Option<Duration>,
    ) -> ClientResult<TargetStateFetch> {
        let mut call = Call::new(Method::GET, format!("/api/v1/agents/{agent}/target-state"));
        if let Some(etag) = etag {
            call.headers.push(("if-none-match", format!("\"{etag}\"")));
        }
        if let Some(wait) = wait {
            call.query = vec![("wait".into(), wait.as_secs().to_string())];
            call.timeout = Some(wait + LONG_POLL_GRACE);
        }
        let answer = self.send(call).await?;
        if answer.status == StatusCode::NOT_MODIFIED {
            return Ok(TargetStateFetch::Unchanged);
        }
        let header = answer.etag.as_deref().map(|t| t.trim_matches('"'));
        let state: TargetState = answer
            .json()
            .map_err(|e| ClientError::Decode(format!("target state does not parse: {e}")))?;
        if state.agent_id != agent || state.etag.is_empty() || header != Some(state.etag.as_str()) {
            return Err(ClientError::Decode(
                "the target state is not this agent's, or has no ETag".into(),
            ));
        }
        Ok(TargetStateFetch::Changed(state))
    }

    pub async fn heartbeat(&self, agent: Uuid, beat: &Heartbeat) -> ClientResult<()> {
        let mut call = Call::new(Method::POST, format!("/api/v1/agents/{agent}/heartbeat"));
        call.body = Some(body(beat)?);
        self.send(call).await?;
        Ok(())
    }

    /// Posts one event; a repeat of an already stored idempotency key also succeeds.
    pub async fn post_event(&self, agent: Uuid, event: &NewAgentEvent) -> ClientResult<()> {
        let mut call = Call::new(Method::POST, format!("/api/v1/agents/{agent}/events"));
        call.body = Some(body(event)?);
        // The idempotency key is in the body: a repeat stores nothing twice.
        call.repeatable = true;
        self.send(call).await?;
        Ok(())
    }

    /// Reports the health of every deployment object the agent holds.
    pub async fn put_health(&self, agent: Uuid, report: &HealthReport) -> ClientResult<()> {
        let mut call = Call::new(Method::PUT, format!("/api/v1/agents/{agent}/health"));
        call.body = Some(body(report)?);
        self.send(call).await?;
        Ok(())
    }

    /// A plugin module (a WASM component) by its digest.
    pub async fn module(&self, digest: &str) -> ClientResult<Vec<u8>> {
        let call = Call::new(Method::GET, format!("/api/v1/plugins/modules/{digest}"));
        Ok(self.send(call).await?.body)
    }

    /// Claims the agent's run of a work order; `None` when it is not claimable (another claim
    /// won, or the run is over).
    pub async fn claim(&self, order: Uuid, agent: Uuid) -> ClientResult<Option<Lease>> {
        let path = format!("/api/v1/work-orders/{order}/runs/{agent}/claim");
        let mut call = Call::new(Method::POST, path);
        call.body = Some(json!({}));
        match self.send(call).await {
            Ok(answer) => Ok(Some(answer.json()?)),
            Err(e) if lost(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Extends a lease; `false` when it was lost.
    pub async fn renew(&self, lease: &Lease) -> ClientResult<bool> {
        let mut call = Call::new(Method::POST, run_path(lease, "renew"));
        call.body = Some(body(&RenewLease {
            lease_id: lease.lease_id,
        })?);
        call.repeatable = true; // renewing twice holds the same lease
        match self.send(call).await {
            Ok(_) => Ok(true),
            Err(e) if lost(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reports how a run ended.
    pub async fn complete(&self, lease: &Lease, result: &CompleteRun) -> ClientResult<()> {
        let mut call = Call::new(Method::POST, run_path(lease, "complete"));
        call.body = Some(body(result)?);
        self.send(call).await?;
        Ok(())
    }
}

fn run_path(lease: &Lease, action: &str) -> String {
    format!(
        "/api/v1/work-orders/{}/runs/{}/{action}",
        lease.work_order_id, lease.agent_id
    )
}

/// A claim or lease the broker says is not (or no longer) this agent's.
fn lost(error: &ClientError) -> bool {
    matches!(error.status(), Some(409 | 404))
}
