//! Staged rollouts: how often the replica holding the driver lease gates the rollouts under
//! way, and how long the lease lasts when that replica stops renewing it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutSettings {
    /// Milliseconds between two passes over the rollouts under way.
    pub tick_millis: u64,
    /// Seconds the driver lease lasts unless renewed (a failover takes at most this long).
    pub lease_seconds: u64,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        Self {
            tick_millis: 1000,
            lease_seconds: 10,
        }
    }
}
