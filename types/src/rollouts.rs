//! Where releases stand: health per deployment object as agents report it, the convergence of a
//! release across the agents it targets, and the fleet view of agents with their backlog.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::EventMessage;
use crate::resources::AgentStatus;

/// Most entries in one health report.
pub const MAX_HEALTH_ENTRIES: usize = 1000;

/// The health of a deployment object's workloads on one agent; worse states sort later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HealthStatus {
    Healthy,
    Unknown,
    Progressing,
    Degraded,
    Failing,
}

text_enum!(HealthStatus { Healthy => "healthy", Unknown => "unknown", Progressing => "progressing", Degraded => "degraded", Failing => "failing" });

/// One deployment object's health on the reporting agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectHealth {
    pub deployment_object_id: Uuid,
    pub status: HealthStatus,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub message: Option<EventMessage>,
    /// When the agent observed it (default: when the report arrives; never in the future).
    #[serde(default)]
    pub observed_at: Option<DateTime<Utc>>,
}

/// `PUT /api/v1/agents/{id}/health`: the health of every deployment object the agent holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthReport {
    pub deployment_objects: Vec<ObjectHealth>,
}

/// How many agents are in each health state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthCounts {
    pub healthy: u64,
    pub unknown: u64,
    pub progressing: u64,
    pub degraded: u64,
    pub failing: u64,
}

impl HealthCounts {
    pub fn add(&mut self, status: HealthStatus) {
        let slot = match status {
            HealthStatus::Healthy => &mut self.healthy,
            HealthStatus::Unknown => &mut self.unknown,
            HealthStatus::Progressing => &mut self.progressing,
            HealthStatus::Degraded => &mut self.degraded,
            HealthStatus::Failing => &mut self.failing,
        };
        *slot += 1;
    }

    /// The worst state any agent is in (`None` when nobody reported).
    pub fn worst(&self) -> Option<HealthStatus> {
        [
            (self.failing, HealthStatus::Failing),
            (self.degraded, HealthStatus::Degraded),
            (self.progressing, HealthStatus::Progressing),
            (self.unknown, HealthStatus::Unknown),
            (self.healthy, HealthStatus::Healthy),
        ]
        .into_iter()
        .find(|(n, _)| *n > 0)
        .map(|(_, s)| s)
    }
}

/// One agent's report on a deployment object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentHealth {
    pub agent_id: Uuid,
    pub status: HealthStatus,
    pub message: Option<String>,
    pub observed_at: DateTime<Utc>,
}

/// `GET /api/v1/deployment-objects/{id}/health`: worst state wins, with each agent's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentHealth {
    pub deployment_object_id: Uuid,
    /// The worst state reported; `null` while no agent has reported.
    pub status: Option<HealthStatus>,
    pub counts: HealthCounts,
    pub agents: Vec<AgentHealth>,
}

/// Percentiles of a duration over the agents, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Durations {
    pub count: u64,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub max_ms: u64,
}

/// An agent whose apply failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutFailure {
    pub agent_id: Uuid,
    pub reason: Option<String>,
    pub failed_at: DateTime<Utc>,
}

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RolloutState {
    /// Some targeted agents have not applied it yet, and none failed.
    Progressing,
    /// Every targeted agent applied it.
    Converged,
    /// At least one targeted agent failed to apply it.
    Failed,
}

/// `GET /api/v1/deployment-objects/{id}/rollout`: the convergence of one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub deployment_object_id: Uuid,
    pub stack_id: Uuid,
    pub sequence_id: i64,
    pub created_at: DateTime<Utc>,
    pub state: RolloutState,
    /// Agents the stack is targeted at (for a generator: inside its reach).
    pub targeted: u64,
    pub applied: u64,
    pub failed: u64,
    pub pending: u64,
    /// The failed agents (at most 100), newest failure first.
    pub failures: Vec<RolloutFailure>,
    pub health: HealthCounts,
    /// From the object's creation to each agent's first successful apply.
    pub time_to_applied: Option<Durations>,
    /// From the object's creation to each agent's first healthy report.
    pub time_to_healthy: Option<Durations>,
    /// The release's passage through its stack's waves, when the stack has a strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<crate::staged::StagedRollout>,
    /// The convergence curve: how many agents had applied it how long after its creation, at
    /// most [`CONVERGENCE_POINTS`] points in time order (absent before any agent applied it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub convergence: Vec<ConvergencePoint>,
}

/// Most points of a rollout's convergence curve.
pub const CONVERGENCE_POINTS: usize = 20;

/// `applied` agents had applied the release `after_ms` after its creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConvergencePoint {
    pub after_ms: u64,
    pub applied: u64,
}

impl ConvergencePoint {
    /// The curve over `sorted` times to apply (milliseconds, ascending): evenly spaced ranks,
    /// always ending with the last agent.
    pub fn curve(sorted: &[u64]) -> Vec<Self> {
        let n = sorted.len();
        let steps = n.min(CONVERGENCE_POINTS);
        (1..=steps)
            .map(|step| {
                let rank = (n * step).div_ceil(steps);
                Self {
                    after_ms: sorted[rank - 1],
                    applied: rank as u64,
                }
            })
            .collect()
    }
}

/// One stack assigned to an agent, as the fleet view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FleetStack {
    pub stack_id: Uuid,
    pub name: String,
    /// The stack's newest version.
    pub latest_sequence: Option<i64>,
    /// The newest version this agent applied.
    pub applied_sequence: Option<i64>,
    /// Versions the agent is behind (0: up to date).
    pub backlog: i64,
    pub health: Option<HealthStatus>,
}

/// One agent in the fleet view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FleetAgent {
    pub id: Uuid,
    pub name: String,
    pub cluster_name: String,
    pub status: AgentStatus,
    pub labels: Vec<String>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Seconds since the last heartbeat (`null`: never).
    pub heartbeat_age_seconds: Option<i64>,
    pub kubernetes_reachable: Option<bool>,
    pub stacks: Vec<FleetStack>,
    /// Health of the newest applied version of each stack, counted over the stacks.
    pub health: HealthCounts,
    /// Versions behind, over all its stacks.
    pub backlog: i64,
    /// The newest failed apply's message.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_has_evenly_spaced_ranks_ending_with_the_last_agent() {
        let times: Vec<u64> = (1..=100).map(|i| i * 10).collect();
        let curve = ConvergencePoint::curve(&times);
        assert_eq!(curve.len(), CONVERGENCE_POINTS);
        assert_eq!(
            curve[0],
            ConvergencePoint {
                after_ms: 50,
                applied: 5
            }
        );
        assert_eq!(
            curve[19],
            ConvergencePoint {
                after_ms: 1000,
                applied: 100
            }
        );
        let few = ConvergencePoint::curve(&[7, 9, 30]);
        let ranks: Vec<u64> = few.iter().map(|p| p.applied).collect();
        assert_eq!(ranks, [1, 2, 3]);
        assert!(ConvergencePoint::curve(&[]).is_empty());
    }
}
