//! The tables people read.

use brokkr_types::resources::{
    Agent, AgentReach, AuditLogEntry, Generator, Stack, StackVerdict, WhoAmI,
};
use brokkr_types::rollouts::{FleetAgent, Rollout};
use brokkr_types::work_orders::WorkOrder;

use crate::output::{table, time};

fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub fn whoami(me: &WhoAmI) -> String {
    table(
        &["PRINCIPAL", "ID"],
        &[vec![me.principal_type.clone(), or_dash(me.id)]],
    )
}

pub fn stacks(stacks: &[Stack]) -> String {
    let rows: Vec<Vec<String>> = stacks
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.id.to_string(),
                s.labels.join(","),
                or_dash(s.target_expression.as_deref()),
            ]
        })
        .collect();
    table(&["NAME", "ID", "LABELS", "EXPRESSION"], &rows)
}

pub fn agents(agents: &[Agent]) -> String {
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.id.to_string(),
                a.cluster_name.clone(),
                a.status.as_str().to_string(),
                or_dash(a.last_heartbeat_at.map(|t| time(&t))),
            ]
        })
        .collect();
    table(
        &["NAME", "ID", "CLUSTER", "STATUS", "LAST HEARTBEAT"],
        &rows,
    )
}

pub fn fleet(agents: &[FleetAgent]) -> String {
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            let h = &a.health;
            vec![
                a.name.clone(),
                a.status.as_str().to_string(),
                or_dash(a.heartbeat_age_seconds.map(|s| format!("{s}s"))),
                or_dash(a.kubernetes_reachable),
                a.stacks.len().to_string(),
                a.backlog.to_string(),
                format!("{}/{}/{}", h.healthy, h.degraded, h.failing),
                or_dash(a.last_error.as_deref()),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "STATUS",
            "HEARTBEAT",
            "K8S",
            "STACKS",
            "BACKLOG",
            "HEALTHY/DEGRADED/FAILING",
            "LAST ERROR",
        ],
        &rows,
    )
}

pub fn stack_verdicts(verdicts: &[StackVerdict]) -> String {
    let rows: Vec<Vec<String>> = verdicts
        .iter()
        .map(|v| {
            vec![
                v.stack_name.clone(),
                v.targeted.to_string(),
                v.assigned.to_string(),
                v.rules.join(","),
                or_dash(v.error.as_deref()),
            ]
        })
        .collect();
    table(&["STACK", "TARGETED", "ASSIGNED", "RULES", "ERROR"], &rows)
}

pub fn agent_reach(reached: &[AgentReach]) -> String {
    let rows: Vec<Vec<String>> = reached
        .iter()
        .map(|r| {
            vec![
                r.agent_name.clone(),
                r.rules.join(","),
                r.within_reach.to_string(),
            ]
        })
        .collect();
    table(&["AGENT", "RULES", "WITHIN REACH"], &rows)
}

pub fn audit(entries: &[AuditLogEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                time(&e.created_at),
                e.actor_type.clone(),
                e.action.clone(),
                format!(
                    "{} {}",
                    e.resource_type,
                    e.resource_id.as_deref().unwrap_or("-")
                ),
            ]
        })
        .collect();
    table(&["TIME", "ACTOR", "ACTION", "RESOURCE"], &rows)
}

pub fn generators(generators: &[Generator]) -> String {
    let rows: Vec<Vec<String>> = generators
        .iter()
        .map(|g| vec![g.name.clone(), g.id.to_string(), g.reach.clone()])
        .collect();
    table(&["NAME", "ID", "REACH"], &rows)
}

pub fn work_orders(orders: &[WorkOrder]) -> String {
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|w| {
            let c = &w.counts;
            vec![
                w.id.to_string(),
                w.work_type.as_str().to_string(),
                format!(
                    "{}/{}/{}",
                    c.succeeded,
                    c.failed + c.expired,
                    c.pending + c.claimed
                ),
                time(&w.created_at),
            ]
        })
        .collect();
    table(&["ID", "TYPE", "OK/FAILED/OPEN", "CREATED"], &rows)
}

pub fn rollout(r: &Rollout) -> String {
    let state = serde_json::to_value(r.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut text = table(
        &[
            "OBJECT", "VERSION", "STATE", "TARGETED", "APPLIED", "FAILED", "PENDING",
        ],
        &[vec![
            r.deployment_object_id.to_string(),
            r.sequence_id.to_string(),
            state,
            r.targeted.to_string(),
            r.applied.to_string(),
            r.failed.to_string(),
            r.pending.to_string(),
        ]],
    );
    for failure in &r.failures {
        text.push_str(&format!(
            "failed on {}: {}\n",
            failure.agent_id,
            failure.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    if let Some(waves) = &r.staged {
        text.push_str(&staged(waves));
    }
    text
}

/// A staged rollout's waves, below the rollout's own table.
fn staged(staged: &brokkr_types::staged::StagedRollout) -> String {
    let mut text = format!("staged: {}", staged.state.as_str());
    if let Some(reason) = &staged.reason {
        text.push_str(&format!(" ({reason})"));
    }
    text.push('\n');
    let rows: Vec<Vec<String>> = staged
        .waves
        .iter()
        .map(|w| {
            let state = serde_json::to_value(w.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            vec![
                w.name.clone(),
                state,
                w.members.to_string(),
                w.applied.to_string(),
                w.failed.to_string(),
                w.healthy.to_string(),
            ]
        })
        .collect();
    text.push_str(&table(
        &["WAVE", "STATE", "MEMBERS", "APPLIED", "FAILED", "HEALTHY"],
        &rows,
    ));
    text
}

/// One progress line for stderr.
pub fn progress(r: &Rollout) -> String {
    format!(
        "applied {}/{}, failed {}, pending {}",
        r.applied, r.targeted, r.failed, r.pending
    )
}
