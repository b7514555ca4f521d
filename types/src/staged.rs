//! Staged rollouts: a stack's strategy (waves of agents, the gate each must pass, what to do
//! when one fails) and where a release stands in it. A strategy can only be built valid.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ExpressionText, Name};

/// The most waves a strategy has.
pub const MAX_WAVES: usize = 10;
/// The longest soak.
pub const MAX_SOAK_SECONDS: u32 = 86_400;

/// Which agents a wave adds: those a CEL expression over `agent` admits, or (cumulatively) the
/// first `percent` of the stack's agents, ranked by a hash of agent and stack ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Wave {
    pub name: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub agents: Option<ExpressionText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
}

/// When a wave has passed: every member applied, at most `max_failed` failed (an apply that
/// failed, or a release reported degraded or failing), and at least `min_healthy_percent`
/// reported healthy without a break for `soak_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gate {
    #[serde(default = "hundred")]
    pub min_healthy_percent: u8,
    #[serde(default)]
    pub max_failed: u32,
    #[serde(default = "five_minutes")]
    pub soak_seconds: u32,
}

fn hundred() -> u8 {
    100
}

fn five_minutes() -> u32 {
    300
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            min_healthy_percent: 100,
            max_failed: 0,
            soak_seconds: 300,
        }
    }
}

/// What a failed gate does: give every agent that received the release its previous version
/// back, or wait for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OnFailure {
    #[default]
    Rollback,
    Pause,
}

/// A stack's rollout strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StrategyForm")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutStrategy {
    pub waves: Vec<Wave>,
    pub gate: Gate,
    pub on_failure: OnFailure,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaveForm {
    name: Name,
    #[serde(default)]
    agents: Option<ExpressionText>,
    #[serde(default)]
    percent: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyForm {
    waves: Vec<WaveForm>,
    #[serde(default)]
    gate: Gate,
    #[serde(default)]
    on_failure: OnFailure,
}

impl TryFrom<StrategyForm> for RolloutStrategy {
    type Error = String;

    fn try_from(form: StrategyForm) -> Result<Self, String> {
        if form.waves.is_empty() || form.waves.len() > MAX_WAVES {
            return Err(format!("a rollout has 1 to {MAX_WAVES} waves"));
        }
        if form.gate.min_healthy_percent > 100 {
            return Err("gate.min_healthy_percent is at most 100".into());
        }
        if form.gate.soak_seconds > MAX_SOAK_SECONDS {
            return Err(format!("gate.soak_seconds is at most {MAX_SOAK_SECONDS}"));
        }
        let mut waves = Vec::with_capacity(form.waves.len());
        let mut last_percent = 0;
        for wave in form.waves {
            let name = wave.name.as_str().to_string();
            if waves.iter().any(|w: &Wave| w.name.as_str() == name) {
                return Err(format!("two waves are named {name:?}"));
            }
            match (&wave.agents, wave.percent) {
                (Some(_), None) => {}
                (None, Some(p)) if (1..=100).contains(&p) && p >= last_percent => {
                    last_percent = p;
                }
                (None, Some(_)) => {
                    return Err(format!(
                        "wave {name:?}: percent is 1 to 100 and never below an earlier wave's"
                    ));
                }
                _ => return Err(format!("wave {name:?}: give agents or percent, not both")),
            }
            waves.push(Wave {
                name: wave.name,
                agents: wave.agents,
                percent: wave.percent,
            });
        }
        Ok(Self {
            waves,
            gate: form.gate,
            on_failure: form.on_failure,
        })
    }
}

/// The agents of one wave, as a strategy change previews them (`?dry_run=true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaveMembers {
    /// The wave's name; `(rest)` for agents in no wave (released when the last wave passes).
    pub name: String,
    pub agents: Vec<crate::resources::Named>,
}

/// Where a staged rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StagedState {
    Progressing,
    /// Waiting for a person (paused, or a failed gate with `on_failure: pause`).
    Paused,
    Succeeded,
    /// Aborted or failed, and every agent that received the release has its previous version.
    RolledBack,
    /// A newer deployment object started its own rollout.
    Superseded,
}

text_enum!(StagedState {
    Progressing => "progressing",
    Paused => "paused",
    Succeeded => "succeeded",
    RolledBack => "rolled_back",
    Superseded => "superseded",
});

impl StagedState {
    /// Whether the rollout may still move.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Progressing | Self::Paused)
    }
}

/// Where one wave stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WaveState {
    Pending,
    Progressing,
    Soaking,
    Passed,
    Failed,
}

/// One wave of a staged rollout, with its gate's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaveStatus {
    pub name: String,
    pub state: WaveState,
    /// Agents of the stack in this wave (and no earlier one).
    pub members: u64,
    pub applied: u64,
    pub failed: u64,
    pub healthy: u64,
    pub started_at: Option<DateTime<Utc>>,
    pub soak_started_at: Option<DateTime<Utc>>,
    pub passed_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// A release moving through its stack's waves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StagedRollout {
    pub state: StagedState,
    pub strategy: RolloutStrategy,
    /// The wave being gated (the number of waves once all passed).
    pub current_wave: u32,
    pub waves: Vec<WaveStatus>,
    /// The version agents outside the passed waves keep, and get back on a rollback.
    pub previous_deployment_object_id: Option<uuid::Uuid>,
    /// Why it paused, failed or rolled back.
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<RolloutStrategy, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_strategy_is_only_built_valid() {
        let ok = parse(
            r#"{"waves": [{"name": "canary", "agents": "\"canary\" in agent.labels"},
                {"name": "ten", "percent": 10}, {"name": "all", "percent": 100}],
                "gate": {"min_healthy_percent": 90, "soak_seconds": 60}}"#,
        )
        .unwrap();
        assert_eq!(ok.gate.max_failed, 0);
        assert_eq!(ok.on_failure, OnFailure::Rollback);
        for (bad, says) in [
            (r#"{"waves": []}"#, "1 to 10 waves"),
            (r#"{"waves": [{"name": "a"}]}"#, "agents or percent"),
            (
                r#"{"waves": [{"name": "a", "percent": 0}]}"#,
                "percent is 1 to 100",
            ),
            (
                r#"{"waves": [{"name": "a", "percent": 50}, {"name": "b", "percent": 10}]}"#,
                "never below",
            ),
            (
                r#"{"waves": [{"name": "a", "percent": 5}, {"name": "a", "percent": 10}]}"#,
                "two waves",
            ),
            (
                r#"{"waves": [{"name": "a", "percent": 5}], "gate": {"min_healthy_percent": 101}}"#,
                "at most 100",
            ),
            (
                r#"{"waves": [{"name": "a", "percent": 5}], "on_failure": "ignore"}"#,
                "unknown variant",
            ),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
