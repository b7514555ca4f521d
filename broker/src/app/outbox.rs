//! Domain events: what a use case tells the outside world, written into the outbox in the
//! transaction of the change ([`Work::emit`]). An event's `data` holds ids and names only,
//! never manifest contents or secrets. Its scope (the generator whose stack, PAK or
//! subscription it is about; the agent it is about) decides which generators' subscriptions
//! may hear of it.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{AppResult, Work};
use crate::db::outbox::NewEvent;
use crate::db::{agents, stacks};
use crate::targeting::plan::Plan;

/// A domain event before it is written.
#[derive(Debug, Clone)]
pub struct DomainEvent {
    kind: &'static str,
    data: Value,
    generator: Option<Uuid>,
    agent: Option<Uuid>,
    webhook: Option<Uuid>,
}

/// An agent as events name it.
#[derive(Debug, Clone, Copy)]
pub struct AgentRef<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub cluster_name: &'a str,
}

/// A stack as events name it.
#[derive(Debug, Clone, Copy)]
pub struct StackRef<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub generator_id: Uuid,
}

/// A deployment object as events name it.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRef {
    pub id: Uuid,
    pub sequence_id: i64,
}

fn merge(mut base: Value, more: Value) -> Value {
    if let (Some(base), Value::Object(more)) = (base.as_object_mut(), more) {
        base.extend(more);
    }
    base
}

fn agent_data(agent: AgentRef<'_>) -> Value {
    json!({ "agent_id": agent.id, "agent_name": agent.name, "cluster_name": agent.cluster_name })
}

fn stack_data(stack: StackRef<'_>) -> Value {
    json!({ "stack_id": stack.id, "stack_name": stack.name, "generator_id": stack.generator_id })
}

fn object_data(object: ObjectRef) -> Value {
    json!({ "deployment_object_id": object.id, "sequence_id": object.sequence_id })
}

impl DomainEvent {
    fn new(kind: &'static str, data: Value) -> Self {
        Self {
            kind,
            data,
            generator: None,
            agent: None,
            webhook: None,
        }
    }

    /// `agent.created`, `agent.updated`, `agent.deleted`.
    pub fn agent(kind: &'static str, agent: AgentRef<'_>) -> Self {
        Self {
            agent: Some(agent.id),
            ..Self::new(kind, agent_data(agent))
        }
    }

    /// `stack.created`, `stack.updated`, `stack.deleted`.
    pub fn stack(kind: &'static str, stack: StackRef<'_>) -> Self {
        Self {
            generator: Some(stack.generator_id),
            ..Self::new(kind, stack_data(stack))
        }
    }

    /// `deployment.created` and `deployment.deleted` (a deletion marker).
    pub fn deployment(kind: &'static str, stack: StackRef<'_>, object: ObjectRef) -> Self {
        Self {
            generator: Some(stack.generator_id),
            ..Self::new(kind, merge(stack_data(stack), object_data(object)))
        }
    }

    /// `deployment.applied`, `deployment.failed`, `agent.unhealthy`: an agent's report.
    pub fn report(
        kind: &'static str,
        agent: AgentRef<'_>,
        stack: StackRef<'_>,
        object: ObjectRef,
        report: Uuid,
    ) -> Self {
        let data = merge(
            merge(agent_data(agent), stack_data(stack)),
            merge(object_data(object), json!({ "report_id": report })),
        );
        Self {
            generator: Some(stack.generator_id),
            agent: Some(agent.id),
            ..Self::new(kind, data)
        }
    }

    /// `rollout.converged` or `rollout.failed` of a release; `agent` is the one whose report
    /// decided it.
    pub fn rollout(
        kind: &'static str,
        stack: StackRef<'_>,
        object: ObjectRef,
        agent: AgentRef<'_>,
    ) -> Self {
        let data = merge(
            merge(stack_data(stack), object_data(object)),
            agent_data(agent),
        );
        Self {
            generator: Some(stack.generator_id),
            ..Self::new(kind, data)
        }
    }

    /// A staged rollout moved: `rollout.started`, `rollout.wave_passed`, `rollout.paused`,
    /// `rollout.failed`, `rollout.rolled_back`, `rollout.succeeded`.
    pub fn staged(kind: &'static str, stack: StackRef<'_>, object: ObjectRef, more: Value) -> Self {
        let data = merge(merge(stack_data(stack), object_data(object)), more);
        Self {
            generator: Some(stack.generator_id),
            ..Self::new(kind, merge(data, json!({ "staged": true })))
        }
    }

    /// `workorder.created` (no agent), `workorder.succeeded` and `workorder.failed` (one agent's
    /// run; `failed` also when every attempt's lease ran out).
    pub fn work_order(
        kind: &'static str,
        order: (Uuid, &str),
        generator: Option<Uuid>,
        agent: Option<Uuid>,
        more: Value,
    ) -> Self {
        let data = json!({ "work_order_id": order.0, "type": order.1, "generator_id": generator });
        Self {
            generator,
            agent,
            ..Self::new(kind, merge(data, merge(json!({ "agent_id": agent }), more)))
        }
    }

    /// `targeting.changed`: `agent` gained (or lost) `stack`.
    pub fn targeting(agent: (Uuid, &str), stack: StackRef<'_>, gained: bool) -> Self {
        let data = merge(
            stack_data(stack),
            json!({ "agent_id": agent.0, "agent_name": agent.1, "change": if gained { "gained" } else { "lost" } }),
        );
        Self {
            generator: Some(stack.generator_id),
            agent: Some(agent.0),
            ..Self::new("targeting.changed", data)
        }
    }

    /// `policy.violation`: an enforcing plugin rejected a submission, or a warning one objected.
    pub fn policy_violation(stack: StackRef<'_>, finding: Value) -> Self {
        Self {
            generator: Some(stack.generator_id),
            ..Self::new("policy.violation", merge(stack_data(stack), finding))
        }
    }

    /// `pak.rotated` for a generator, an agent or (no scope: admins only) the admin.
    pub fn pak_rotated(kind: &str, generator: Option<Uuid>, agent: Option<Uuid>) -> Self {
        let id = generator.or(agent);
        Self {
            generator,
            agent,
            ..Self::new(
                "pak.rotated",
                json!({ "principal_type": kind, "principal_id": id }),
            )
        }
    }

    /// `webhook.dead` (about a subscription owned by `owner`, or an admin's).
    pub fn webhook_dead(owner: Option<Uuid>, data: Value) -> Self {
        Self {
            generator: owner,
            ..Self::new("webhook.dead", data)
        }
    }

    /// `webhook.test`: delivered to one subscription only.
    pub fn webhook_test(webhook: Uuid, name: &str, owner: Option<Uuid>) -> Self {
        Self {
            generator: owner,
            webhook: Some(webhook),
            ..Self::new(
                "webhook.test",
                json!({ "webhook_id": webhook, "webhook_name": name }),
            )
        }
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The row to write, with a fresh id and the current time. Ids are UUIDv7: they rise with
    /// time, so thousands written at once append to the id index instead of landing at random
    /// places in it.
    pub(crate) fn into_row(self) -> NewEvent {
        NewEvent {
            id: Uuid::now_v7(),
            event_type: self.kind,
            occurred_at: Utc::now(),
            data: self.data,
            generator_id: self.generator,
            agent_id: self.agent,
            webhook_id: self.webhook,
        }
    }
}

impl<'a> StackRef<'a> {
    pub fn of(row: &'a stacks::StackRow) -> Self {
        Self {
            id: row.id,
            name: row.name(),
            generator_id: row.generator_id,
        }
    }
}

impl<'a> AgentRef<'a> {
    pub fn of(row: &'a agents::AgentRow) -> Self {
        Self {
            id: row.id(),
            name: row.name(),
            cluster_name: row.cluster_name(),
        }
    }
}

/// `stack.deleted` and, for its deletion marker, `deployment.deleted`.
pub(crate) fn stack_deleted(work: &mut Work, deleted: &stacks::Deleted) {
    let stack = StackRef::of(&deleted.stack);
    work.emit(DomainEvent::stack("stack.deleted", stack));
    if let Some(marker) = deleted.marker {
        let object = ObjectRef {
            id: marker.id,
            sequence_id: marker.sequence_id,
        };
        work.emit(DomainEvent::deployment("deployment.deleted", stack, object));
    }
}

/// One `targeting.changed` per pair gained or lost.
pub(crate) async fn targeting_changed(work: &mut Work, plan: &Plan) -> AppResult<()> {
    let (gained, lost) = (plan.gained(), plan.lost());
    if gained.is_empty() && lost.is_empty() {
        return Ok(());
    }
    let names = Names::of(work, plan, gained.iter().chain(&lost)).await?;
    let changes = gained
        .iter()
        .map(|p| (p, true))
        .chain(lost.iter().map(|p| (p, false)));
    for ((agent, stack), was_gained) in changes {
        let Some((stack_name, owner)) = names.stack(plan, *stack) else {
            continue;
        };
        let stack = StackRef {
            id: *stack,
            name: stack_name,
            generator_id: owner,
        };
        let agent_name = names.agent(plan, *agent).unwrap_or("");
        work.emit(DomainEvent::targeting(
            (*agent, agent_name),
            stack,
            was_gained,
        ));
    }
    Ok(())
}

/// Names of the agents and stacks of a plan's changes that the plan did not decide for (an
/// agent deleted meanwhile, say), read from the database (no query when there are none); the
/// plan names the others.
struct Names {
    agents: HashMap<Uuid, String>,
    stacks: HashMap<Uuid, (String, Uuid)>,
}

impl Names {
    async fn of(
        work: &mut Work,
        plan: &Plan,
        pairs: impl Iterator<Item = &(Uuid, Uuid)>,
    ) -> AppResult<Self> {
        let (mut agent_ids, mut stack_ids) = (BTreeSet::new(), BTreeSet::new());
        for (agent, stack) in pairs {
            if plan.agent_name(*agent).is_none() {
                agent_ids.insert(*agent);
            }
            if plan.stack_named(*stack).is_none() {
                stack_ids.insert(*stack);
            }
        }
        let agent_ids: Vec<Uuid> = agent_ids.into_iter().collect();
        let stack_ids: Vec<Uuid> = stack_ids.into_iter().collect();
        let agents = agents::names(&mut work.tx, &agent_ids).await?;
        let stacks = stacks::names_and_owners(&mut work.tx, &stack_ids).await?;
        Ok(Self {
            agents: agents.into_iter().collect(),
            stacks: stacks
                .into_iter()
                .map(|(id, name, owner)| (id, (name, owner)))
                .collect(),
        })
    }

    fn agent<'a>(&'a self, plan: &'a Plan, id: Uuid) -> Option<&'a str> {
        plan.agent_name(id)
            .or_else(|| self.agents.get(&id).map(String::as_str))
    }

    fn stack<'a>(&'a self, plan: &'a Plan, id: Uuid) -> Option<(&'a str, Uuid)> {
        plan.stack_named(id)
            .or_else(|| self.stacks.get(&id).map(|(n, o)| (n.as_str(), *o)))
    }
}

/// The envelope a subscription receives: `{"id", "type", "timestamp", "data"}`.
pub fn envelope(id: Uuid, kind: &str, timestamp: chrono::DateTime<Utc>, data: &str) -> Value {
    let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    json!({
        "id": id,
        "type": kind,
        "timestamp": timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_ids_and_names_and_their_scope() {
        let stack = StackRef {
            id: Uuid::new_v4(),
            name: "web",
            generator_id: Uuid::new_v4(),
        };
        let agent = AgentRef {
            id: Uuid::new_v4(),
            name: "eu-1",
            cluster_name: "eu",
        };
        let object = ObjectRef {
            id: Uuid::new_v4(),
            sequence_id: 3,
        };
        let row =
            DomainEvent::report("deployment.failed", agent, stack, object, Uuid::nil()).into_row();
        assert_eq!(row.event_type, "deployment.failed");
        assert_eq!(row.generator_id, Some(stack.generator_id));
        assert_eq!(row.agent_id, Some(agent.id));
        assert_eq!(row.data["stack_name"], "web");
        assert_eq!(row.data["agent_name"], "eu-1");
        assert_eq!(row.data["sequence_id"], 3);
        let envelope = envelope(
            row.id,
            row.event_type,
            row.occurred_at,
            &row.data.to_string(),
        );
        assert_eq!(envelope["type"], "deployment.failed");
        assert_eq!(envelope["data"]["cluster_name"], "eu");
        assert!(envelope["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn event_ids_rise_with_time() {
        let ids: Vec<Uuid> = (0..1000)
            .map(|_| DomainEvent::new("stack.created", json!({})).into_row().id)
            .collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids written later sort later"
        );
    }
}
