//! One reconciliation pass: compare the full target state with what the agent owns in the
//! cluster, apply what changed (server-side apply, Namespaces and CRDs first), prune what is no
//! longer desired, and queue one event per outcome. Idempotent: running it twice on the same
//! state changes nothing the second time.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use brokkr_types::requests::NewAgentEvent;
use brokkr_types::resources::{EventStatus, EventType};
use brokkr_types::target_state::TargetStack;
use brokkr_types::{EventMessage, IdempotencyKey};
use uuid::Uuid;

use crate::backoff::Retries;
use crate::cluster::{Cluster, ClusterError};
use crate::health::{self, Health};
use crate::objects::{self, Desired, ObjectRef};
use crate::policy::Enforcer;
use crate::state::{Persisted, StackRecord};

/// Counts of one pass, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub applied: usize,
    pub failed: usize,
    pub pruned: usize,
}

/// A stack whose apply failed, and the objects it may have partly created.
struct StackFailure {
    message: String,
    attempted: BTreeSet<ObjectRef>,
}

/// Builds an event; keys and messages are made to fit the broker's rules.
pub fn event(
    key: &str,
    object: Uuid,
    event_type: EventType,
    status: EventStatus,
    message: &str,
) -> Option<NewAgentEvent> {
    let clipped: String = message
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(4000)
        .collect();
    Some(NewAgentEvent {
        idempotency_key: IdempotencyKey::parse(key).ok()?,
        deployment_object_id: Some(object),
        event_type,
        status,
        message: EventMessage::parse(clipped).ok(),
        occurred_at: Some(chrono::Utc::now()),
    })
}

fn queue(state: &mut Persisted, event: Option<NewAgentEvent>) {
    if let Some(event) = event {
        state.queue(event);
    }
}

/// Applies target states to one cluster.
#[derive(Debug)]
pub struct Reconciler {
    pub cluster: Cluster,
    agent: Uuid,
    retries: Retries,
    crd_timeout: Duration,
    /// Runs the policy plugins bound to stacks before they are applied.
    pub enforcer: Option<Enforcer>,
}

impl Reconciler {
    pub fn new(cluster: Cluster, agent: Uuid, retries: Retries, crd_timeout: Duration) -> Self {
        Self {
            cluster,
            agent,
            retries,
            crd_timeout,
            enforcer: None,
        }
    }

    /// Runs policy plugins before every apply.
    pub fn with_enforcer(mut self, enforcer: Enforcer) -> Self {
        self.enforcer = Some(enforcer);
        self
    }

    /// Lets the plugins covering `stack` judge it; reports what they found and returns why the
    /// apply must not happen, if it must not.
    async fn policy_gate(&self, state: &mut Persisted, stack: &TargetStack) -> Option<String> {
        let enforcer = self.enforcer.as_ref()?;
        let policies = state
            .target
            .as_ref()
            .map(|t| t.policies.clone())
            .unwrap_or_default();
        let findings = enforcer.judge(stack, &policies).await;
        let object = stack.deployment_object.id;
        for finding in findings
            .iter()
            .filter(|f| !matches!(&f.outcome, Ok(v) if v.is_empty()))
        {
            let key = format!("validation:{object}:{}", finding.policy.plugin_id);
            queue(
                state,
                event(
                    &key,
                    object,
                    EventType::Validation,
                    EventStatus::Failure,
                    &finding.summary(),
                ),
            );
        }
        let blocking: Vec<String> = findings
            .iter()
            .filter(|f| f.blocks())
            .map(|f| f.policy.plugin.clone())
            .collect();
        (!blocking.is_empty())
            .then(|| format!("not applied: blocked by policy {}", blocking.join(", ")))
    }

    /// When the next failed stack may be retried.
    pub fn next_retry(&self) -> Option<Instant> {
        self.retries.next()
    }

    /// Whether some failed stack is due for another attempt.
    pub fn retry_due(&self, now: Instant) -> bool {
        self.next_retry().is_some_and(|at| at <= now)
    }

    /// One pass. `force` re-applies unchanged stacks too (drift correction).
    pub async fn reconcile(&mut self, state: &mut Persisted, force: bool, now: Instant) -> Outcome {
        let Some(target) = state.target.clone() else {
            return Outcome::default();
        };
        let mut outcome = Outcome::default();
        let mut keep = BTreeSet::new();
        let mut live = BTreeSet::new();
        for stack in target
            .stacks
            .iter()
            .filter(|s| !s.deployment_object.is_deletion_marker)
        {
            live.insert(stack.stack_id);
            self.converge_stack(state, stack, force, now, &mut keep, &mut outcome)
                .await;
        }
        let (pruned, complete) = self.prune(state, &keep).await;
        outcome.pruned = pruned;
        if complete {
            self.retire_removed_stacks(state, &target.stacks, &live);
        }
        outcome
    }

    async fn converge_stack(
        &mut self,
        state: &mut Persisted,
        stack: &TargetStack,
        force: bool,
        now: Instant,
        keep: &mut BTreeSet<ObjectRef>,
        outcome: &mut Outcome,
    ) {
        let object = &stack.deployment_object;
        let record = state
            .stacks
            .get(&stack.stack_id)
            .cloned()
            .unwrap_or_default();
        let fresh = record.applied != Some(object.id);
        if (!fresh && !force && record.failing.is_none()) || !self.retries.due(stack.stack_id, now)
        {
            keep.extend(record.objects.iter().cloned());
            if let Some((failing, _)) = &record.failing
                && *failing == object.id
            {
                let desired = self.parse(stack).unwrap_or_default();
                keep.extend(self.locate_all(&desired).await);
            }
            return;
        }
        let result = self.apply_stack(state, stack).await;
        let record = state.stacks.entry(stack.stack_id).or_default();
        match result {
            Ok(objects) => {
                keep.extend(objects.iter().cloned());
                let (health, health_reports) = if fresh {
                    (None, 0)
                } else {
                    (record.health.take(), record.health_reports)
                };
                *record = StackRecord {
                    applied: Some(object.id),
                    objects,
                    failing: None,
                    health,
                    health_reports,
                };
                self.retries.succeeded(stack.stack_id);
                outcome.applied += 1;
                let message = format!(
                    "applied deployment object {} of stack {}",
                    object.sequence_id, stack.stack_name
                );
                queue(
                    state,
                    event(
                        &format!("apply:{}:success", object.id),
                        object.id,
                        EventType::Apply,
                        EventStatus::Success,
                        &message,
                    ),
                );
            }
            Err(failure) => {
                // Until the new version applies, the old one's objects stay, and so do any
                // objects of the new version that were created before the failure.
                keep.extend(record.objects.iter().cloned());
                keep.extend(failure.attempted);
                record.failing = Some((object.id, failure.message.clone()));
                let retry_at = self.retries.failed(stack.stack_id, now);
                outcome.failed += 1;
                tracing::warn!(stack = %stack.stack_id, retry_in = ?retry_at.saturating_duration_since(now), error = %failure.message, "apply failed");
                queue(
                    state,
                    event(
                        &format!("apply:{}:failure", object.id),
                        object.id,
                        EventType::Apply,
                        EventStatus::Failure,
                        &failure.message,
                    ),
                );
            }
        }
    }

    fn parse(&self, stack: &TargetStack) -> Result<Vec<Desired>, objects::ParseError> {
        let object = &stack.deployment_object;
        objects::parse(&object.yaml_content, self.agent, stack.stack_id, object.id)
    }

    /// Where the objects that can be located live.
    async fn locate_all(&mut self, desired: &[Desired]) -> BTreeSet<ObjectRef> {
        let mut found = BTreeSet::new();
        for d in desired {
            if let Ok(target) = self.cluster.locate(d).await {
                found.insert(target);
            }
        }
        found
    }

    /// Applies one stack's objects: Namespaces, then CRDs (waiting until Established), then the rest.
    async fn apply_stack(
        &mut self,
        state: &mut Persisted,
        stack: &TargetStack,
    ) -> Result<BTreeSet<ObjectRef>, StackFailure> {
        if let Some(message) = self.policy_gate(state, stack).await {
            return Err(StackFailure {
                message,
                attempted: BTreeSet::new(),
            });
        }
        let desired = self.parse(stack).map_err(|e| StackFailure {
            message: e.to_string(),
            attempted: BTreeSet::new(),
        })?;
        let mut attempted = self.locate_all(&desired).await;
        let fail = |e: ClusterError, attempted: &BTreeSet<ObjectRef>| StackFailure {
            message: e.message,
            attempted: attempted.clone(),
        };
        let (first, rest): (Vec<&Desired>, Vec<&Desired>) =
            desired.iter().partition(|d| d.is_namespace() || d.is_crd());
        let mut applied = BTreeSet::new();
        for d in &first {
            state.kinds.insert(d.kind.clone());
            applied.insert(
                self.cluster
                    .apply(d)
                    .await
                    .map_err(|e| fail(e, &attempted))?,
            );
        }
        for crd in first.iter().filter(|d| d.is_crd()) {
            self.cluster
                .wait_established(&crd.name, self.crd_timeout)
                .await
                .map_err(|e| fail(e, &attempted))?;
        }
        let mut errors = Vec::new();
        for d in &rest {
            state.kinds.insert(d.kind.clone());
            match self.cluster.apply(d).await {
                Ok(target) => {
                    attempted.insert(target.clone());
                    applied.insert(target);
                }
                Err(e) => errors.push(e.message),
            }
        }
        if errors.is_empty() {
            Ok(applied)
        } else {
            Err(StackFailure {
                message: errors.join("; "),
                attempted,
            })
        }
    }

    /// Deletes owned objects that are not in `keep`. Returns how many were deleted and whether
    /// every owned kind could be listed and every deletion succeeded.
    async fn prune(&mut self, state: &Persisted, keep: &BTreeSet<ObjectRef>) -> (usize, bool) {
        let selector = objects::owned_selector(self.agent);
        let mut doomed = Vec::new();
        let mut complete = true;
        for kind in &state.kinds {
            match self.cluster.list_owned(kind, &selector).await {
                Ok(found) => doomed.extend(found.into_iter().filter(|o| !keep.contains(o))),
                Err(e) => {
                    tracing::warn!(kind = %kind.kind, error = %e, "cannot list owned objects; not pruning them this pass");
                    complete = false;
                }
            }
        }
        // Contents first, then the CRDs and Namespaces that hold them.
        doomed.sort_by_key(|o| match o.kind.kind.as_str() {
            "Namespace" => 2,
            "CustomResourceDefinition" => 1,
            _ => 0,
        });
        let mut pruned = 0;
        for target in doomed {
            match self.cluster.delete(&target).await {
                Ok(()) => {
                    tracing::info!(object = %target, "pruned");
                    pruned += 1;
                }
                Err(e) => {
                    tracing::warn!(object = %target, error = %e, "prune failed; will retry");
                    complete = false;
                }
            }
        }
        (pruned, complete)
    }

    /// Forgets stacks that left the target state (or were deleted) once their objects are gone,
    /// reporting one prune event each.
    fn retire_removed_stacks(
        &mut self,
        state: &mut Persisted,
        stacks: &[TargetStack],
        live: &BTreeSet<Uuid>,
    ) {
        let removed: Vec<(Uuid, StackRecord)> = state
            .stacks
            .iter()
            .filter(|(id, _)| !live.contains(id))
            .map(|(id, r)| (*id, r.clone()))
            .collect();
        for (stack_id, record) in removed {
            state.stacks.remove(&stack_id);
            self.retries.succeeded(stack_id);
            let marker = stacks
                .iter()
                .find(|s| s.stack_id == stack_id)
                .map(|s| s.deployment_object.id);
            let Some(object) = marker.or(record.applied) else {
                continue;
            };
            let why = if marker.is_some() {
                "the stack was deleted"
            } else {
                "the stack is no longer targeted at this agent"
            };
            let message = format!("removed {} objects: {why}", record.objects.len());
            queue(
                state,
                event(
                    &format!("prune:{object}"),
                    object,
                    EventType::Prune,
                    EventStatus::Success,
                    &message,
                ),
            );
        }
    }

    /// Assesses the health of every applied stack and queues an event when a verdict changes.
    pub async fn assess_health(&mut self, state: &mut Persisted) {
        let stacks: Vec<(Uuid, StackRecord)> = state
            .stacks
            .iter()
            .map(|(id, r)| (*id, r.clone()))
            .collect();
        for (stack_id, record) in stacks {
            let Some(object) = record.applied else {
                continue;
            };
            let Some(verdict) = self.stack_health(&record).await else {
                continue;
            };
            let summary = format!("{}: {}", verdict.state.as_str(), verdict.message);
            if record.health.as_deref() == Some(summary.as_str()) {
                continue;
            }
            let status = if verdict.state == health::State::Degraded {
                EventStatus::Failure
            } else {
                EventStatus::Success
            };
            let key = format!("health:{object}:{}", record.health_reports + 1);
            queue(
                state,
                event(&key, object, EventType::Health, status, &summary),
            );
            if let Some(r) = state.stacks.get_mut(&stack_id) {
                r.health = Some(summary);
                r.health_reports += 1;
            }
        }
    }

    async fn stack_health(&mut self, record: &StackRecord) -> Option<Health> {
        let mut verdicts = Vec::new();
        for target in record
            .objects
            .iter()
            .filter(|o| health::is_workload(&o.kind.kind))
        {
            let Ok(Some(live)) = self.cluster.get(target).await else {
                continue;
            };
            verdicts.push(health::workload(&target.kind.kind, &target.name, &live));
            let (Some(ns), Some(selector)) = (&target.namespace, health::pod_selector(&live))
            else {
                continue;
            };
            if let Ok(pods) = self.cluster.pods(ns, &selector).await
                && let Some(failure) = health::pod_failure(&pods)
            {
                verdicts.push(failure);
            }
        }
        health::combine(&verdicts)
    }
}
