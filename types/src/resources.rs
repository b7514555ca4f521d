//! Resources as the broker returns them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Pak;

/// A generator: an automation principal (a CI/CD pipeline) that owns stacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Generator {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// The CEL expression over `agent` that confines where this generator's stacks may go.
    pub reach: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A generator together with its PAK, returned once at creation and on rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GeneratorWithPak {
    pub generator: Generator,
    pub pak: Pak,
}

/// Whether an agent may receive its target state. Only an admin changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AgentStatus {
    Active,
    Inactive,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// An agent: the process that applies stacks to one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agent {
    pub id: Uuid,
    pub name: String,
    pub cluster_name: String,
    pub status: AgentStatus,
    pub labels: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Whether the agent could reach its Kubernetes API at its last heartbeat.
    pub kubernetes_reachable: Option<bool>,
    pub agent_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An agent together with its PAK, returned once at creation and on rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentWithPak {
    pub agent: Agent,
    pub pak: Pak,
}

/// A stack: a named group of Kubernetes objects owned by one generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stack {
    pub id: Uuid,
    pub generator_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// The CEL targeting expression, when the stack uses one.
    pub target_expression: Option<String>,
    pub labels: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    /// How new deployment objects are released, when not to every agent at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::staged::RolloutStrategy>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An immutable, numbered snapshot of a stack's Kubernetes objects (multi-document YAML).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentObject {
    pub id: Uuid,
    pub stack_id: Uuid,
    /// 1, 2, 3, … per stack, in submission order.
    pub sequence_id: i64,
    /// The YAML as submitted. May contain Secrets: never logged.
    pub yaml_content: String,
    /// Hex SHA-256 of `yaml_content`.
    pub yaml_checksum: String,
    /// True for the marker appended when the stack is deleted: its objects must be removed.
    pub is_deletion_marker: bool,
    pub created_at: DateTime<Utc>,
    /// The template it was rendered from (absent for YAML submitted as such).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<crate::templates::Provenance>,
}

impl fmt::Debug for DeploymentObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeploymentObject")
            .field("id", &self.id)
            .field("stack_id", &self.stack_id)
            .field("sequence_id", &self.sequence_id)
            .field(
                "yaml_content",
                &crate::secret::Redacted(self.yaml_content.len()),
            )
            .field("yaml_checksum", &self.yaml_checksum)
            .field("is_deletion_marker", &self.is_deletion_marker)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A newly stored deployment object, with what plugins in `warn` mode found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedDeploymentObject {
    #[serde(flatten)]
    pub object: DeploymentObject,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<crate::plugins::PolicyFinding>,
}

/// A deployment object without its YAML, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentObjectSummary {
    pub id: Uuid,
    pub stack_id: Uuid,
    pub sequence_id: i64,
    pub yaml_checksum: String,
    pub is_deletion_marker: bool,
    pub created_at: DateTime<Utc>,
}

/// What happened when an agent acted on a deployment object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventStatus {
    Success,
    Failure,
}

/// The kind of action an agent event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// Objects of a deployment object were applied (or failed to apply).
    Apply,
    /// Objects no longer desired were removed.
    Prune,
    /// Health of applied objects was assessed.
    Health,
    /// A policy plugin judged the deployment object.
    Validation,
}

text_enum!(EventStatus { Success => "success", Failure => "failure" });
text_enum!(EventType { Apply => "apply", Prune => "prune", Health => "health", Validation => "validation" });

/// An event reported by an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentEvent {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub deployment_object_id: Option<Uuid>,
    pub stack_id: Option<Uuid>,
    pub idempotency_key: String,
    pub event_type: EventType,
    pub status: EventStatus,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A direct assignment of a stack to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentTarget {
    pub agent_id: Uuid,
    pub stack_id: Uuid,
    /// `admin` or `generator`: an admin's assignment is not confined to the generator's reach.
    pub assigned_by: String,
    pub created_at: DateTime<Utc>,
}

/// One entry of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogEntry {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    /// `admin`, `generator`, `agent` or `cli`.
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    /// Dotted action name such as `pak.rotated` or `stack.deleted`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub details: serde_json::Value,
}

/// One page of a list. `next_offset` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub limit: u32,
    pub offset: u64,
    pub next_offset: Option<u64>,
}

/// Who the presented PAK belongs to (`GET /api/v1/whoami`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    /// `admin`, `generator` or `agent`.
    pub principal_type: String,
    /// The generator or agent id; absent for the admin.
    pub id: Option<Uuid>,
}

/// Why a stack does or does not reach an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackVerdict {
    pub stack_id: Uuid,
    pub stack_name: String,
    /// Whether the rules select the stack now.
    pub targeted: bool,
    /// Whether the stack is in the agent's materialized assignment set.
    pub assigned: bool,
    /// The matching rules: `direct`, `label:prod`, `annotation:region=us-east`, `expression`.
    pub rules: Vec<String>,
    /// The stack's expression, if it has one.
    pub target_expression: Option<String>,
    /// Why the expression could not be evaluated for this agent.
    pub error: Option<String>,
    /// Whether the agent is inside the reach of the generator owning the stack. Outside it,
    /// only an admin's direct assignment (`admin_direct`) reaches the agent.
    pub within_reach: bool,
}

/// An agent a stack reaches, and by which rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentReach {
    pub agent_id: Uuid,
    pub agent_name: String,
    pub rules: Vec<String>,
    /// Whether the agent is inside the owning generator's reach (always true for a
    /// generator's view: agents outside it are never shown to it).
    pub within_reach: bool,
}

/// A named resource in a targeting preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Named {
    pub id: Uuid,
    pub name: String,
}

/// What a bulk assignment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkTargets {
    pub stack_id: Uuid,
    /// Distinct agents named.
    pub requested: u64,
    /// Assignments this call made.
    pub added: u64,
    /// Agents the stack was assigned to already.
    pub unchanged: u64,
}

/// What a change would do to targeting (`?dry_run=true`), or what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetingPreview {
    pub dry_run: bool,
    /// For a stack change: agents that would gain / lose it. For an agent change: stacks.
    pub gained: Vec<Named>,
    pub lost: Vec<Named>,
    /// Pairs whose expression could not be evaluated (they keep their current decision).
    pub errors: Vec<String>,
    /// For a change of a stack's rollout strategy: the agents each wave would hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<crate::staged::WaveMembers>,
}
