//! Request bodies. Each rejects unknown fields and can only hold valid values.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::resources::{AgentStatus, EventStatus, EventType};
use crate::{
    AnnotationKey, AnnotationValue, Description, EventMessage, ExpressionText, IdempotencyKey,
    Label, Name,
};

/// Labels and annotations given inline when an agent or stack is created.
pub type Annotations = BTreeMap<AnnotationKey, AnnotationValue>;

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateGenerator {
    pub name: Name,
    #[serde(default)]
    pub description: Option<Description>,
    /// The agents this generator's stacks may reach: a CEL expression over `agent` (admin
    /// only). Defaults to `tenancy.default_reach` (`"false"`: nothing).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reach: Option<ExpressionText>,
}

/// Partial update of a generator; absent fields stay unchanged, `description: null` clears it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateGenerator {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<Description>>,
    /// A new reach (admin only; a generator sending it gets 403). Retargets at once.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reach: Option<ExpressionText>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateAgent {
    pub name: Name,
    pub cluster_name: Name,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub annotations: Annotations,
    /// Defaults to `active`.
    #[serde(default)]
    pub status: Option<AgentStatus>,
}

/// Partial update of an agent (admin only).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateAgent {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub cluster_name: Option<Name>,
    #[serde(default)]
    pub status: Option<AgentStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateStack {
    pub name: Name,
    #[serde(default)]
    pub description: Option<Description>,
    /// Required when an admin creates a stack; a generator always owns what it creates.
    #[serde(default)]
    pub generator_id: Option<Uuid>,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub annotations: Annotations,
    /// A CEL expression over `agent` and `stack`; when set, it replaces label and annotation
    /// matching for this stack. Checked (syntax, size, nesting, cost) when written.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub target_expression: Option<ExpressionText>,
    /// Render this template (the owner's own, else a shared one of that name) as the stack's
    /// first deployment object, in the same transaction.
    #[serde(default)]
    pub template_name: Option<Name>,
    /// The template version to render (default: the latest).
    #[serde(default)]
    pub template_version: Option<u32>,
    /// The template's parameters, checked against its schema.
    #[serde(default)]
    pub parameters: Option<crate::templates::Parameters>,
    /// Release new deployment objects in waves with health gates.
    #[serde(default)]
    pub rollout: Option<crate::staged::RolloutStrategy>,
}

/// Partial update of a stack; ownership never changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateStack {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<Description>>,
    /// A new CEL targeting expression; `null` removes it (labels and annotations apply again).
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub target_expression: Option<Option<ExpressionText>>,
    /// A new rollout strategy; `null` removes it (new deployment objects reach every agent at
    /// once again). A release already under way keeps the strategy it started with.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::staged::RolloutStrategy>))]
    pub rollout: Option<Option<crate::staged::RolloutStrategy>>,
}

/// A new deployment object as JSON (a raw YAML body is accepted too).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateDeploymentObject {
    /// Multi-document Kubernetes YAML; every document needs `apiVersion`, `kind`, `metadata.name`.
    pub yaml_content: String,
}

impl std::fmt::Debug for CreateDeploymentObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateDeploymentObject")
            .field(
                "yaml_content",
                &crate::secret::Redacted(self.yaml_content.len()),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddLabel {
    pub label: Label,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddAnnotation {
    pub key: AnnotationKey,
    pub value: AnnotationValue,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddTarget {
    pub stack_id: Uuid,
}

/// Most agents one bulk assignment names.
pub const MAX_BULK_TARGETS: usize = 10_000;

/// `POST /api/v1/stacks/{id}/targets`: assigns the stack to many agents at once (1 to
/// [`MAX_BULK_TARGETS`] ids; repeats count once).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddTargets {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Uuid>, min_items = 1, max_items = 10000))]
    pub agent_ids: AgentIds,
}

/// 1 to [`MAX_BULK_TARGETS`] distinct agent ids, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Uuid>", into = "Vec<Uuid>")]
pub struct AgentIds(Vec<Uuid>);

impl AgentIds {
    pub fn as_slice(&self) -> &[Uuid] {
        &self.0
    }
}

impl TryFrom<Vec<Uuid>> for AgentIds {
    type Error = String;

    fn try_from(mut ids: Vec<Uuid>) -> Result<Self, String> {
        if ids.is_empty() || ids.len() > MAX_BULK_TARGETS {
            return Err(format!(
                "agent_ids must name 1 to {MAX_BULK_TARGETS} agents"
            ));
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(Self(ids))
    }
}

impl From<AgentIds> for Vec<Uuid> {
    fn from(ids: AgentIds) -> Self {
        ids.0
    }
}

/// Sent by an agent to say it is alive.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    /// Whether the agent can reach its cluster's Kubernetes API.
    #[serde(default)]
    pub kubernetes_reachable: Option<bool>,
    #[serde(default)]
    pub agent_version: Option<Name>,
}

/// An event posted by an agent. A retry with the same `idempotency_key` is stored once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewAgentEvent {
    pub idempotency_key: IdempotencyKey,
    #[serde(default)]
    pub deployment_object_id: Option<Uuid>,
    pub event_type: EventType,
    pub status: EventStatus,
    #[serde(default)]
    pub message: Option<EventMessage>,
    /// When it happened on the agent (default: when the report arrives). Kept as the time of
    /// the apply in rollout figures, so a report delivered late still counts when it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_rejected() {
        let err =
            serde_json::from_str::<CreateGenerator>(r#"{"name":"a","owner":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `owner`"), "{err}");
    }

    #[test]
    fn null_description_differs_from_absent() {
        let absent: UpdateGenerator = serde_json::from_str("{}").unwrap();
        assert!(absent.description.is_none());
        let cleared: UpdateGenerator = serde_json::from_str(r#"{"description":null}"#).unwrap();
        assert_eq!(cleared.description, Some(None));
    }

    #[test]
    fn inline_labels_and_annotations_are_validated() {
        let ok: CreateAgent = serde_json::from_str(
            r#"{"name":"a","cluster_name":"c","labels":["prod"],"annotations":{"region":"us-east"}}"#,
        )
        .unwrap();
        assert_eq!(ok.labels[0].as_str(), "prod");
        let bad = serde_json::from_str::<CreateAgent>(
            r#"{"name":"a","cluster_name":"c","labels":["p d"]}"#,
        );
        assert!(bad.is_err());
    }
}
