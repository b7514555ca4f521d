//! Settings of work orders and of the diagnostics they gather.

use serde::{Deserialize, Serialize};

/// Work orders: how many agents one may reach, how much a result may hold, how long finished
/// orders are kept and how often lapsed leases are looked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkOrderSettings {
    /// Most agents one work order may target.
    pub max_agents: usize,
    /// Most bytes of one run's result (its JSON text).
    pub max_result_bytes: usize,
    /// A finished order (every run over) is deleted this many seconds later.
    pub retention_seconds: u64,
    /// How often each replica looks for leases that ran out.
    pub sweep_interval_seconds: u64,
}

impl Default for WorkOrderSettings {
    fn default() -> Self {
        Self {
            max_agents: 10_000,
            max_result_bytes: 256 * 1024,
            retention_seconds: 7 * 24 * 3600,
            sweep_interval_seconds: 1,
        }
    }
}

/// Diagnostics work orders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiagnosticsSettings {
    /// Diagnostics orders and their results are deleted this many seconds after creation.
    pub retention_seconds: u64,
}

impl Default for DiagnosticsSettings {
    fn default() -> Self {
        Self {
            retention_seconds: 24 * 3600,
        }
    }
}
