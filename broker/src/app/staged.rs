//! Staged rollouts: one starts when a deployment object is appended to a stack that has a
//! strategy and a version before it (only the first wave receives it; every other agent keeps
//! what it holds), what a rollout shows, and what a person steers (pause, resume, promote,
//! abort). Gating the waves is in `staged_gate.rs`.

use brokkr_types::resources::{DeploymentObject, Named, TargetingPreview};
use brokkr_types::rollouts::Rollout;
use brokkr_types::staged::{
    RolloutStrategy, StagedRollout, StagedState, WaveMembers, WaveState, WaveStatus,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::outbox::{DomainEvent, ObjectRef, StackRef};
use super::{App, AppError, AppResult, Requester, Work};
use crate::db::assignments::{self, Scope};
use crate::db::stacks::StackRow;
use crate::db::staged::{self, Member, RolloutRow, WaveFigures};
use crate::targeting::waves;

/// When a wave started, began soaking, passed or failed (kept as JSON on the rollout row).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WaveTimes {
    pub started_at: Option<DateTime<Utc>>,
    pub soak_started_at: Option<DateTime<Utc>>,
    pub passed_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// A rollout row read whole: its strategy and wave times parsed.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub row: RolloutRow,
    pub strategy: RolloutStrategy,
    pub times: Vec<WaveTimes>,
}

impl Staged {
    pub fn read(row: RolloutRow) -> AppResult<Self> {
        let strategy = serde_json::from_str(&row.strategy)
            .map_err(|e| AppError::Internal(format!("a stored rollout strategy: {e}")))?;
        let times = serde_json::from_str(&row.waves)
            .map_err(|e| AppError::Internal(format!("stored wave times: {e}")))?;
        Ok(Self {
            row,
            strategy,
            times,
        })
    }

    /// The row as it is to be written: `state`, `wave`, the times and `reason`.
    pub fn next_row(&self, state: StagedState, wave: i64, reason: Option<String>) -> RolloutRow {
        RolloutRow {
            state: state.as_str().to_string(),
            wave,
            waves: serde_json::to_string(&self.times).unwrap_or_else(|_| "[]".into()),
            reason,
            updated_at: Utc::now(),
            ..self.row.clone()
        }
    }

    pub fn wave_index(&self) -> usize {
        usize::try_from(self.row.wave).unwrap_or(usize::MAX)
    }

    pub fn object_ref(&self, sequence_id: i64) -> ObjectRef {
        ObjectRef {
            id: self.row.deployment_object_id,
            sequence_id,
        }
    }
}

/// What a person asks of a staged rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    Pause,
    Resume,
    /// Pass the current wave's gate now.
    Promote,
    /// Roll back now.
    Abort,
}

impl App {
    /// Starts a staged rollout of `object` when its stack has a strategy and a version before
    /// it; returns the agents that receive it now (`None`: every agent does, as without a
    /// strategy). Any rollout of an older version is superseded.
    pub(crate) async fn stage(
        &self,
        work: &mut Work,
        stack: &StackRow,
        object: &DeploymentObject,
    ) -> AppResult<Option<Vec<Uuid>>> {
        let now = Utc::now();
        staged::supersede(&mut work.tx, stack.id, now).await?;
        let previous = match stack.rollout_strategy() {
            Some(strategy) => staged::object_at(&mut work.tx, stack.id, object.sequence_id - 1)
                .await?
                .map(|previous| (strategy, previous)),
            None => None,
        };
        let Some((strategy, previous)) = previous else {
            staged::clear_members(&mut work.tx, stack.id).await?;
            return Ok(None);
        };
        let members = self.members(work, stack.id, previous, &strategy).await?;
        staged::replace_members(&mut work.tx, stack.id, &members).await?;
        let mut times = vec![WaveTimes::default(); strategy.waves.len()];
        times[0].started_at = Some(now);
        let row = RolloutRow {
            deployment_object_id: object.id,
            stack_id: stack.id,
            previous_object_id: previous,
            strategy: serde_json::to_string(&strategy)
                .map_err(|e| AppError::Internal(format!("cannot store a strategy: {e}")))?,
            state: StagedState::Progressing.as_str().into(),
            wave: 0,
            waves: serde_json::to_string(&times)
                .map_err(|e| AppError::Internal(format!("cannot store wave times: {e}")))?,
            reason: None,
            created_at: now,
            updated_at: now,
        };
        staged::insert(&mut work.tx, &row).await?;
        let names: Vec<&str> = strategy.waves.iter().map(|w| w.name.as_str()).collect();
        let more = json!({ "waves": names, "previous_deployment_object_id": previous });
        let reference = ObjectRef {
            id: object.id,
            sequence_id: object.sequence_id,
        };
        let event = DomainEvent::staged("rollout.started", StackRef::of(stack), reference, more);
        work.emit(event);
        Ok(Some(
            members
                .iter()
                .filter(|m| m.held.is_none())
                .map(|m| m.agent)
                .collect(),
        ))
    }

    /// Every agent of the stack with its wave; all but the first wave keep what they hold.
    async fn members(
        &self,
        work: &mut Work,
        stack: Uuid,
        previous: Uuid,
        strategy: &RolloutStrategy,
    ) -> AppResult<Vec<Member>> {
        let holdings = staged::holdings(&mut work.tx, stack, previous).await?;
        let ids: Vec<Uuid> = holdings.iter().map(|(agent, _)| *agent).collect();
        let facts = assignments::agent_facts(&mut work.tx, Scope::Ids(&ids)).await?;
        let strategy = strategy.clone();
        let waves = tokio::task::spawn_blocking(move || {
            let waves = waves::waves_of(&strategy, stack, &facts);
            facts
                .into_iter()
                .zip(waves)
                .filter_map(|(f, w)| Some((Uuid::parse_str(&f.id).ok()?, w)))
                .collect::<std::collections::HashMap<Uuid, i64>>()
        })
        .await
        .map_err(|e| AppError::Internal(format!("choosing waves failed: {e}")))?;
        Ok(holdings
            .into_iter()
            .filter_map(|(agent, base)| {
                let wave = *waves.get(&agent)?;
                let held = (wave != 0).then_some(base);
                Some(Member {
                    agent,
                    wave,
                    base,
                    held,
                })
            })
            .collect())
    }

    /// The agents each wave of `strategy` would hold for the stack, once a previewed change
    /// gained and lost what `preview` says.
    pub(crate) async fn preview_waves(
        &self,
        stack: Uuid,
        strategy: &RolloutStrategy,
        preview: &TargetingPreview,
    ) -> AppResult<Vec<WaveMembers>> {
        let mut tx = self.db.begin_read().await?;
        let mut ids = assignments::agents_of_stack(&mut tx, stack).await?;
        ids.extend(preview.gained.iter().map(|n| n.id));
        ids.retain(|id| !preview.lost.iter().any(|n| n.id == *id));
        ids.sort();
        ids.dedup();
        let facts = assignments::agent_facts(&mut tx, Scope::Ids(&ids)).await?;
        drop(tx);
        let strategy = strategy.clone();
        tokio::task::spawn_blocking(move || {
            let waves = waves::waves_of(&strategy, stack, &facts);
            let mut grouped: Vec<WaveMembers> = strategy
                .waves
                .iter()
                .map(|w| w.name.as_str())
                .chain(["(rest)"])
                .map(|name| WaveMembers {
                    name: name.to_string(),
                    agents: Vec::new(),
                })
                .collect();
            for (agent, wave) in facts.into_iter().zip(waves) {
                let id = Uuid::parse_str(&agent.id).unwrap_or_default();
                let slot = usize::try_from(wave)
                    .unwrap_or(usize::MAX)
                    .min(grouped.len() - 1);
                grouped[slot].agents.push(Named {
                    id,
                    name: agent.name,
                });
            }
            grouped
        })
        .await
        .map_err(|e| AppError::Internal(format!("choosing waves failed: {e}")))
    }

    /// Where the staged rollout of `object` stands, if it was staged.
    pub(crate) async fn staged_view(&self, object: Uuid) -> AppResult<Option<StagedRollout>> {
        let Some(row) = staged::of_object(&self.db, object).await? else {
            return Ok(None);
        };
        let staged = Staged::read(row)?;
        let figures = staged::figures(&self.db, staged.row.stack_id, object).await?;
        let waves = (0..staged.strategy.waves.len())
            .map(|i| wave_status(&staged, i, figures_of(&figures, i)))
            .collect();
        let row = &staged.row;
        Ok(Some(StagedRollout {
            state: row.state(),
            strategy: staged.strategy.clone(),
            current_wave: u32::try_from(row.wave).unwrap_or(0),
            waves,
            previous_deployment_object_id: Some(row.previous_object_id),
            reason: row.reason.clone(),
            started_at: row.created_at,
            updated_at: row.updated_at,
        }))
    }

    /// Pauses, resumes, promotes or aborts the stack's staged rollout under way.
    pub async fn steer_rollout(
        &self,
        by: Requester,
        stack: Uuid,
        steer: Steer,
    ) -> AppResult<Rollout> {
        let stack_row = self.visible_stack(by, stack).await?;
        let mut work = self.begin().await?;
        let row = staged::live_of_stack(&mut work.tx, stack)
            .await?
            .ok_or_else(|| {
                AppError::conflict(
                    "no_staged_rollout",
                    "the stack has no staged rollout under way",
                )
            })?;
        let staged = Staged::read(row)?;
        let action = match steer {
            Steer::Pause => "rollout.paused",
            Steer::Resume => "rollout.resumed",
            Steer::Promote => "rollout.promoted",
            Steer::Abort => "rollout.aborted",
        };
        let details = json!({ "deployment_object_id": staged.row.deployment_object_id, "wave": staged.row.wave });
        work.audit(by, action, ("stack", Some(stack)), details)
            .await?;
        let moved = self
            .steer_in(&mut work, &stack_row, staged, steer, by)
            .await?;
        if !moved {
            return Err(AppError::conflict(
                "rollout_changed",
                "the rollout moved meanwhile: read it again",
            ));
        }
        work.commit().await?;
        self.rollouts_changed();
        self.stack_rollout(by, stack).await
    }

    async fn steer_in(
        &self,
        work: &mut Work,
        stack: &StackRow,
        mut staged: Staged,
        steer: Steer,
        by: Requester,
    ) -> AppResult<bool> {
        let state = staged.row.state();
        let wave = staged.row.wave;
        let who = by.actor.kind;
        match (steer, state) {
            (Steer::Pause, StagedState::Progressing) => {
                let reason = Some(format!("paused by {who}"));
                let to = staged.next_row(StagedState::Paused, wave, reason.clone());
                self.staged_moved(
                    work,
                    stack,
                    &staged,
                    &to,
                    "rollout.paused",
                    json!({ "reason": reason }),
                )
                .await
            }
            (Steer::Resume, StagedState::Paused) => {
                let index = staged.wave_index();
                if let Some(times) = staged.times.get_mut(index) {
                    times.soak_started_at = None;
                    times.failed_at = None;
                }
                let to = staged.next_row(StagedState::Progressing, wave, None);
                Ok(staged::transition(&mut work.tx, &staged.row, &to).await?)
            }
            (Steer::Promote, _) => self.pass_wave(work, stack, staged).await,
            (Steer::Abort, _) => {
                let reason = format!("aborted by {who}");
                self.roll_back_staged(work, stack, staged, reason).await
            }
            (_, state) => Err(AppError::conflict(
                "rollout_state",
                format!("the rollout is {}", state.as_str()),
            )),
        }
    }
}

fn figures_of(figures: &[(i64, WaveFigures)], wave: usize) -> WaveFigures {
    figures
        .iter()
        .find(|(w, _)| usize::try_from(*w).ok() == Some(wave))
        .map(|(_, f)| *f)
        .unwrap_or_default()
}

pub(crate) fn wave_figures(figures: &[(i64, WaveFigures)], wave: usize) -> WaveFigures {
    figures_of(figures, wave)
}

fn wave_status(staged: &Staged, index: usize, figures: WaveFigures) -> WaveStatus {
    let times = staged.times.get(index).cloned().unwrap_or_default();
    let current = staged.wave_index();
    let state = if times.failed_at.is_some() {
        WaveState::Failed
    } else if times.passed_at.is_some() || index < current {
        WaveState::Passed
    } else if index > current || times.started_at.is_none() {
        WaveState::Pending
    } else if times.soak_started_at.is_some() {
        WaveState::Soaking
    } else {
        WaveState::Progressing
    };
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    WaveStatus {
        name: staged.strategy.waves[index].name.as_str().to_string(),
        state,
        members: count(figures.members),
        applied: count(figures.applied),
        failed: count(figures.failed),
        healthy: count(figures.healthy),
        started_at: times.started_at,
        soak_started_at: times.soak_started_at,
        passed_at: times.passed_at,
        failed_at: times.failed_at,
    }
}
