//! The desired state of one agent, as served by `GET /api/v1/agents/{id}/target-state`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::resources::DeploymentObject;

/// Everything an agent should have applied: the latest deployment object of every stack
/// targeted at it, including deletion markers of deleted stacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetState {
    pub agent_id: Uuid,
    /// The same value as the `ETag` header (without quotes).
    pub etag: String,
    pub stacks: Vec<TargetStack>,
    /// Plugins to run before applying the stacks they cover.
    #[serde(default)]
    pub policies: Vec<crate::plugins::TargetPolicy>,
    /// Work order runs waiting for this agent to claim them.
    #[serde(default)]
    pub work_orders: Vec<crate::work_orders::PendingWork>,
}

/// One targeted stack and the deployment object the agent must converge to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetStack {
    pub stack_id: Uuid,
    pub stack_name: String,
    pub generator_id: Uuid,
    pub deployment_object: DeploymentObject,
}
