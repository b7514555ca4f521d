//! Work orders: one-shot jobs sent to agents (restart a workload, run a Job once, gather
//! diagnostics), one run per targeted agent, claimed under a lease and completed with a result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::EventMessage;

/// Most log lines a `job` or `diagnostics` order may ask for, per container.
pub const MAX_LOG_LINES: u32 = 1000;
/// Log lines kept per container when an order does not say.
pub const DEFAULT_LOG_LINES: u32 = 50;

/// What a work order does on each agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WorkOrderType {
    /// A rollout restart of a Deployment, StatefulSet or DaemonSet.
    Restart,
    /// Apply a Job once (never pruned with a stack) and report how it ended.
    Job,
    /// Pod statuses, recent events and log tails of one deployment object's workloads.
    Diagnostics,
}

text_enum!(WorkOrderType { Restart => "restart", Job => "job", Diagnostics => "diagnostics" });

/// Where one agent's run of a work order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RunStatus {
    /// Waiting for the agent to claim it.
    Pending,
    /// The agent holds a lease on it and is working.
    Claimed,
    Succeeded,
    Failed,
    /// Every attempt's lease ran out without a result.
    Expired,
    /// Cancelled before the agent claimed it.
    Cancelled,
}

text_enum!(RunStatus {
    Pending => "pending", Claimed => "claimed", Succeeded => "succeeded", Failed => "failed",
    Expired => "expired", Cancelled => "cancelled",
});

impl RunStatus {
    /// Whether the run is over (nothing more will happen to it).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Claimed)
    }
}

/// The workloads a `restart` order can restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

text_enum!(WorkloadKind { Deployment => "Deployment", StatefulSet => "StatefulSet", DaemonSet => "DaemonSet" });

/// The spec of a `restart` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestartSpec {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

/// The spec of a `job` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobSpec {
    /// A `batch/v1` Job with `metadata.name` (and `metadata.namespace`, default `default`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub job: serde_json::Value,
    /// Log lines kept from the end of each pod's log (default 50, at most 1000).
    #[serde(default)]
    pub log_lines: Option<u32>,
    /// How long the agent waits for the Job to finish (default 600, at most 86400).
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}

/// The spec of a `diagnostics` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiagnosticsSpec {
    pub deployment_object_id: Uuid,
    /// Log lines kept from the end of each pod's log (default 50, at most 1000).
    #[serde(default)]
    pub log_lines: Option<u32>,
}

/// Which agents a work order goes to: listed ids, a CEL expression over agent facts, or both
/// (the union). A generator reaches only agents inside its reach.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkTarget {
    #[serde(default)]
    pub agent_ids: Option<Vec<Uuid>>,
    #[serde(default)]
    pub expression: Option<String>,
}

/// `POST /api/v1/work-orders`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateWorkOrder {
    #[serde(rename = "type")]
    pub work_type: WorkOrderType,
    pub target: WorkTarget,
    /// [`RestartSpec`], [`JobSpec`] or [`DiagnosticsSpec`], after `type`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub spec: serde_json::Value,
    /// Claims allowed per agent before the run expires (default 3, 1 to 10).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// How long a claim lasts without renewal (default 600, 5 to 86400).
    #[serde(default)]
    pub claim_timeout_seconds: Option<u32>,
}

/// `POST /api/v1/deployment-objects/{id}/diagnostics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestDiagnostics {
    pub agent_id: Uuid,
    #[serde(default)]
    pub log_lines: Option<u32>,
}

/// One agent's run of a work order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkRun {
    pub agent_id: Uuid,
    pub status: RunStatus,
    /// Claims so far.
    pub attempts: u32,
    pub claimed_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub message: Option<String>,
    /// What the agent reported (JSON, bounded by `work_orders.max_result_bytes`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<serde_json::Value>,
}

/// How many runs are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunCounts {
    pub pending: u64,
    pub claimed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub expired: u64,
    pub cancelled: u64,
}

impl RunCounts {
    pub fn add(&mut self, status: RunStatus) {
        self.add_many(status, 1);
    }

    pub fn add_many(&mut self, status: RunStatus, n: u64) {
        let slot = match status {
            RunStatus::Pending => &mut self.pending,
            RunStatus::Claimed => &mut self.claimed,
            RunStatus::Succeeded => &mut self.succeeded,
            RunStatus::Failed => &mut self.failed,
            RunStatus::Expired => &mut self.expired,
            RunStatus::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }
}

/// A work order. Lists leave `runs` empty; `GET /api/v1/work-orders/{id}` fills it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkOrder {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub work_type: WorkOrderType,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub spec: serde_json::Value,
    pub target: WorkTarget,
    /// The generator that created it; absent when an admin did.
    pub generator_id: Option<Uuid>,
    pub max_attempts: u32,
    pub claim_timeout_seconds: u32,
    pub created_at: DateTime<Utc>,
    /// When the order and its results are deleted (diagnostics, and every finished order after
    /// `work_orders.retention_seconds`).
    pub expires_at: Option<DateTime<Utc>>,
    pub counts: RunCounts,
    pub runs: Vec<WorkRun>,
}

/// A run waiting for this agent, as its target state lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingWork {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub work_type: WorkOrderType,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub spec: serde_json::Value,
    /// Claims before this one.
    pub attempts: u32,
    pub claim_timeout_seconds: u32,
}

/// The answer to a claim: the lease to renew and complete with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    pub work_order_id: Uuid,
    pub agent_id: Uuid,
    pub lease_id: Uuid,
    /// 1 for the first claim.
    pub attempt: u32,
    pub lease_expires_at: DateTime<Utc>,
}

/// `POST .../renew`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenewLease {
    pub lease_id: Uuid,
}

/// How a run ended, as the agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// `POST .../complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteRun {
    pub lease_id: Uuid,
    pub outcome: Outcome,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub message: Option<EventMessage>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub result: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_know_when_they_are_over() {
        for status in [
            RunStatus::Pending,
            RunStatus::Claimed,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Expired,
            RunStatus::Cancelled,
        ] {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        }
        assert!(!RunStatus::Claimed.is_final());
        assert!(RunStatus::Expired.is_final());
    }

    #[test]
    fn a_create_request_refuses_unknown_fields() {
        let ok: CreateWorkOrder =
            serde_json::from_str(r#"{"type":"restart","target":{"agent_ids":[]},"spec":{}}"#)
                .unwrap();
        assert_eq!(ok.work_type, WorkOrderType::Restart);
        assert!(
            serde_json::from_str::<CreateWorkOrder>(
                r#"{"type":"restart","target":{},"spec":{},"priority":1}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<CreateWorkOrder>(r#"{"type":"reboot","target":{},"spec":{}}"#)
                .is_err()
        );
    }
}
