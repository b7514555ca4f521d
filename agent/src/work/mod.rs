//! Work orders on the agent: the runs its target state lists are claimed (the broker lets one
//! claim win), carried out in the background while the lease is renewed, and completed with a
//! result trimmed to fit. A lost lease stops the work without reporting; a run the agent could
//! not claim is left to whoever did.

mod diagnostics;
mod job;
mod pods;
mod restart;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokkr_types::EventMessage;
use brokkr_types::target_state::TargetState;
use brokkr_types::work_orders::{CompleteRun, Lease, Outcome, PendingWork, WorkOrderType};
use serde_json::Value;
use uuid::Uuid;

use crate::broker::BrokerClient;

/// Runs carried out at once; the rest wait for a later pass.
const MAX_CONCURRENT: usize = 4;
/// Most bytes of a result the agent sends (the broker's default limit is 256 KiB).
pub const MAX_RESULT_BYTES: usize = 200 * 1024;

/// How a run ended, before it is reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub outcome: Outcome,
    pub message: String,
    pub result: Value,
}

impl Finished {
    pub fn succeeded(message: impl Into<String>, result: Value) -> Self {
        Self {
            outcome: Outcome::Succeeded,
            message: message.into(),
            result,
        }
    }

    pub fn failed(message: impl Into<String>, result: Value) -> Self {
        Self {
            outcome: Outcome::Failed,
            message: message.into(),
            result,
        }
    }
}

/// What a run needs besides its spec: the cluster, and for diagnostics the YAML of the
/// deployment object it is about (when the agent holds it).
#[derive(Clone)]
pub struct Context {
    pub kube: kube::Client,
    pub object_yaml: Option<String>,
    /// How often a `job` run looks at its Job.
    pub poll: Duration,
}

impl std::fmt::Debug for Context {
    // The deployment object's YAML never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("holds_object", &self.object_yaml.is_some())
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

/// Carries out one run.
async fn execute(work: &PendingWork, context: &Context) -> Finished {
    match work.work_type {
        WorkOrderType::Restart => restart::run(&work.spec, &context.kube).await,
        WorkOrderType::Job => job::run(work.id, &work.spec, context).await,
        WorkOrderType::Diagnostics => diagnostics::run(&work.spec, context).await,
    }
}

/// The runs in progress, shared with their tasks.
#[derive(Debug, Default, Clone)]
pub struct Runner {
    busy: Arc<Mutex<HashSet<Uuid>>>,
    poll: Duration,
}

impl Runner {
    pub fn new(poll: Duration) -> Self {
        Self {
            busy: Arc::default(),
            poll,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        match self.busy.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Starts the listed runs that are not in progress, up to the concurrency limit.
    pub fn start(&self, target: &TargetState, broker: &BrokerClient, kube: &kube::Client) {
        let agent = target.agent_id;
        for work in &target.work_orders {
            {
                let mut busy = self.lock();
                if busy.len() >= MAX_CONCURRENT || !busy.insert(work.id) {
                    continue;
                }
            }
            let context = Context {
                kube: kube.clone(),
                object_yaml: held_yaml(target, &work.spec),
                poll: self.poll,
            };
            let (runner, broker, work) = (self.clone(), broker.clone(), work.clone());
            tokio::spawn(async move {
                carry_out(&broker, agent, &work, &context).await;
                runner.lock().remove(&work.id);
            });
        }
    }

    /// How many runs are in progress.
    pub fn in_progress(&self) -> usize {
        self.lock().len()
    }
}

/// The YAML of the deployment object a diagnostics spec names, if the agent holds it.
fn held_yaml(target: &TargetState, spec: &Value) -> Option<String> {
    let wanted = spec["deployment_object_id"].as_str()?;
    target
        .stacks
        .iter()
        .map(|s| &s.deployment_object)
        .find(|o| o.id.to_string() == wanted)
        .map(|o| o.yaml_content.clone())
}

/// Claims, works while renewing the lease, and reports.
async fn carry_out(broker: &BrokerClient, agent: Uuid, work: &PendingWork, context: &Context) {
    let lease = match broker.claim(work.id, agent).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(error = %e, order = %work.id, "cannot claim a work order yet");
            return;
        }
    };
    tracing::info!(order = %work.id, kind = work.work_type.as_str(), attempt = lease.attempt, "work order claimed");
    let renew_every = Duration::from_secs(u64::from(work.claim_timeout_seconds / 3).max(1));
    let finished = tokio::select! {
        finished = execute(work, context) => finished,
        () = keep_lease(broker, &lease, renew_every) => {
            tracing::warn!(order = %work.id, "the work order's lease was lost; stopping");
            return;
        }
    };
    report(broker, &lease, finished).await;
}

/// Renews the lease every `every`; returns only once it is lost.
async fn keep_lease(broker: &BrokerClient, lease: &Lease, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match broker.renew(lease).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::debug!(error = %e, "cannot renew a lease yet"),
        }
    }
}

/// Completes the run, retrying while the broker is away (the lease bounds how long that helps).
async fn report(broker: &BrokerClient, lease: &Lease, finished: Finished) {
    let message: String = finished.message.chars().take(4000).collect();
    let body = CompleteRun {
        lease_id: lease.lease_id,
        outcome: finished.outcome,
        message: EventMessage::parse(message).ok(),
        result: fit(finished.result, MAX_RESULT_BYTES),
    };
    let mut pauses = crate::backoff::delays(Duration::from_millis(500), Duration::from_secs(30));
    for _ in 0..8 {
        match broker.complete(lease, &body).await {
            Ok(()) => {
                tracing::info!(order = %lease.work_order_id, outcome = ?body.outcome, "work order completed");
                return;
            }
            Err(e) if e.is_retryable() => {
                let pause = pauses.next().unwrap_or(Duration::from_secs(30));
                tracing::debug!(error = %e, retry_in = ?pause, "cannot report a work order yet");
                tokio::time::sleep(pause).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, order = %lease.work_order_id, "the broker refused a work order's result");
                return;
            }
        }
    }
}

/// Trims the `log` strings of a result (keeping their ends) until its JSON fits in `max`
/// bytes; drops them if that is not enough.
pub fn fit(mut result: Value, max: usize) -> Value {
    for keep in [16_384, 4096, 1024, 256, 0] {
        if result.to_string().len() <= max {
            return result;
        }
        trim_logs(&mut result, keep);
    }
    if result.to_string().len() <= max {
        result
    } else {
        serde_json::json!({ "truncated": true })
    }
}

fn trim_logs(value: &mut Value, keep: usize) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match inner {
                    Value::String(text) if key == "log" && text.len() > keep => {
                        let mut start = text.len() - keep;
                        while !text.is_char_boundary(start) {
                            start += 1;
                        }
                        *text = text[start..].to_string();
                    }
                    other => trim_logs(other, keep),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| trim_logs(i, keep)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn results_are_trimmed_from_the_start_of_their_logs() {
        let log: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let result = json!({ "pods": [{ "name": "a", "log": log }], "succeeded": true });
        let fitted = fit(result.clone(), 2048);
        assert!(fitted.to_string().len() <= 2048);
        let kept = fitted["pods"][0]["log"].as_str().unwrap();
        assert!(kept.ends_with("line 1999\n"), "the end of the log is kept");
        assert_eq!(fitted["succeeded"], true);
        assert_eq!(
            fit(result.clone(), 1_000_000),
            result,
            "small enough: untouched"
        );
        assert_eq!(
            fit(json!({ "x": "y".repeat(100) }), 10),
            json!({ "truncated": true })
        );
    }
}
