//! The web console: whether it is served, and how long a signed-in session lasts.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiSettings {
    /// Serve the console at `/ui`.
    pub enabled: bool,
    /// Minutes without a request after which a session ends.
    pub idle_minutes: u64,
    /// Hours after sign-in at which a session ends, whatever the activity.
    pub absolute_hours: u64,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            idle_minutes: 30,
            absolute_hours: 12,
        }
    }
}
