//! Wire types of WASM policy plugins: installed plugins, their bindings to scopes, verdicts,
//! and the policies an agent must enforce.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Description;

/// What happens when a bound plugin finds violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PluginMode {
    /// The submission is rejected (422) and the agent refuses to apply.
    Enforce,
    /// The submission is accepted; violations are returned and recorded.
    Warn,
    /// Violations are only recorded, to try a policy before enforcing it.
    Shadow,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PluginScope {
    /// Every stack.
    Global,
    /// The stacks of one generator.
    Generator,
    /// One stack.
    Stack,
    /// Work orders (a `job` order's Job and a `WorkOrder` document describing the order).
    #[serde(rename = "work-orders")]
    WorkOrders,
}

impl PluginScope {
    /// Whether a binding to this scope names a generator or stack.
    pub fn takes_id(self) -> bool {
        matches!(self, Self::Generator | Self::Stack)
    }
}

impl PluginMode {
    /// Whether a judgement stops the deployment: only an enforcing plugin that did not pass
    /// cleanly (it found violations, or could not judge) blocks.
    pub fn blocks(self, passed_cleanly: bool) -> bool {
        self == Self::Enforce && !passed_cleanly
    }
}

text_enum!(PluginMode { Enforce => "enforce", Warn => "warn", Shadow => "shadow" });
text_enum!(PluginScope { Global => "global", Generator => "generator", Stack => "stack", WorkOrders => "work-orders" });

/// A plugin bound to a scope with a mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginBinding {
    pub id: Uuid,
    pub plugin_id: Uuid,
    pub scope: PluginScope,
    /// The generator or stack; absent for the global scope.
    pub scope_id: Option<Uuid>,
    pub mode: PluginMode,
    pub created_at: DateTime<Utc>,
}

/// An installed plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginInfo {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// `validator` (judges deployment objects; can be bound) or `notifier` (shapes webhooks).
    pub kind: String,
    /// Hex SHA-256 of the component; modules are stored and fetched by it.
    pub digest: String,
    pub size: i64,
    /// The configuration handed to every call (JSON).
    pub config: serde_json::Value,
    pub bindings: Vec<PluginBinding>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/v1/plugins/{id}/bindings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewBinding {
    pub scope: PluginScope,
    /// Required for the generator and stack scopes.
    #[serde(default)]
    pub scope_id: Option<Uuid>,
    pub mode: PluginMode,
}

/// `PATCH /api/v1/plugins/{id}/bindings/{binding_id}`: a new mode, in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateBinding {
    pub mode: PluginMode,
}

/// `PATCH /api/v1/plugins/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdatePlugin {
    #[serde(default)]
    pub description: Option<Description>,
    /// A new configuration; the plugin checks it before it is stored.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

/// The object a violation is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViolationObject {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyViolation {
    pub object: Option<ViolationObject>,
    pub message: String,
    pub path: Option<String>,
}

/// What one bound plugin said about a deployment object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyFinding {
    pub plugin_id: Uuid,
    pub plugin: String,
    pub mode: PluginMode,
    pub violations: Vec<PolicyViolation>,
    /// Why the plugin gave no verdict (a trap, a timeout, …).
    pub error: Option<String>,
}

/// A recorded verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginVerdict {
    pub id: Uuid,
    pub plugin_id: Uuid,
    pub mode: PluginMode,
    pub stack_id: Option<Uuid>,
    /// Absent for a submission that was rejected (it was never stored).
    pub deployment_object_id: Option<Uuid>,
    /// `pass`, `violations` or `error`.
    pub outcome: String,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/plugins/{id}/dry-run`: try a plugin on stored deployment objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DryRunRequest {
    pub scope: PluginScope,
    #[serde(default)]
    pub scope_id: Option<Uuid>,
}

/// What the plugin says about one stored deployment object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DryRunResult {
    pub deployment_object_id: Uuid,
    pub stack_id: Uuid,
    pub sequence_id: i64,
    /// Whether enforcing the plugin would have rejected it.
    pub would_reject: bool,
    pub violations: Vec<PolicyViolation>,
    pub error: Option<String>,
}

/// A plugin an agent must run before applying stacks in its scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetPolicy {
    pub binding_id: Uuid,
    pub plugin_id: Uuid,
    pub plugin: String,
    /// Fetch the module from `GET /api/v1/plugins/modules/{digest}`.
    pub digest: String,
    /// The configuration (JSON text).
    pub config: String,
    pub mode: PluginMode,
    pub scope: PluginScope,
    pub scope_id: Option<Uuid>,
}

impl TargetPolicy {
    /// Whether the policy covers a stack of `generator`.
    pub fn applies_to(&self, stack: Uuid, generator: Uuid) -> bool {
        match self.scope {
            PluginScope::Global => true,
            PluginScope::Generator => self.scope_id == Some(generator),
            PluginScope::Stack => self.scope_id == Some(stack),
            PluginScope::WorkOrders => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_enforcing_plugin_that_did_not_pass_blocks() {
        assert!(PluginMode::Enforce.blocks(false));
        assert!(!PluginMode::Enforce.blocks(true));
        for mode in [PluginMode::Warn, PluginMode::Shadow] {
            assert!(!mode.blocks(false) && !mode.blocks(true), "{mode:?}");
        }
    }
}
