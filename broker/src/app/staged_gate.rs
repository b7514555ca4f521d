//! Gating the waves of staged rollouts: the replica holding the rollout lease looks at every
//! rollout under way each tick. A wave passes when every member applied, at most `max_failed`
//! failed and at least `min_healthy_percent` stayed healthy for `soak_seconds`; the next wave
//! then receives the release. A wave that fails rolls every agent that received it back (or
//! pauses). Each move is one transaction with its audit entry and event, written only if the
//! rollout is still as it was read.

use brokkr_types::staged::{Gate, OnFailure, StagedState};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::outbox::{DomainEvent, StackRef};
use super::staged::{Staged, wave_figures};
use super::{App, AppResult, Work};
use crate::db::audit::Actor;
use crate::db::stacks::{self, StackRow};
use crate::db::staged::{self, RolloutRow, WaveFigures};

/// The lease naming the replica that drives staged rollouts.
const LEASE: &str = "staged-rollouts";

/// What a wave's gate says now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Wait,
    StartSoak,
    Pass,
    Fail(String),
}

/// The gate of a wave with `figures`, soaking since `soak` (if it is).
fn judge(
    gate: &Gate,
    figures: WaveFigures,
    soak: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Verdict {
    if figures.members == 0 {
        return Verdict::Pass;
    }
    if figures.failed > i64::from(gate.max_failed) {
        return Verdict::Fail(format!(
            "{} of {} agents failed to apply it (at most {} may)",
            figures.failed, figures.members, gate.max_failed
        ));
    }
    let healthy_enough =
        figures.healthy * 100 >= i64::from(gate.min_healthy_percent) * figures.members;
    match (figures.applied >= figures.members && healthy_enough, soak) {
        (true, None) if gate.soak_seconds == 0 => Verdict::Pass,
        (true, None) => Verdict::StartSoak,
        (true, Some(since)) if (now - since).num_seconds() >= i64::from(gate.soak_seconds) => {
            Verdict::Pass
        }
        (true, Some(_)) => Verdict::Wait,
        (false, Some(_)) => Verdict::Fail(format!(
            "{} of {} agents healthy while soaking (at least {}% must be)",
            figures.healthy, figures.members, gate.min_healthy_percent
        )),
        (false, None) => Verdict::Wait,
    }
}

impl App {
    /// One pass over the rollouts under way, if this replica holds the lease.
    pub async fn drive_rollouts(&self, holder: &str, now: DateTime<Utc>) -> AppResult<()> {
        let lease = chrono::Duration::seconds(
            i64::try_from(self.settings.rollouts.lease_seconds.max(1)).unwrap_or(10),
        );
        let rows = staged::progressing(&self.db).await?;
        if rows.is_empty() || !staged::lease(&self.db, LEASE, holder, now, now + lease).await? {
            return Ok(());
        }
        for row in rows {
            let object = row.deployment_object_id;
            if let Err(e) = self.gate(row, now).await {
                tracing::warn!(error = %e, %object, "cannot gate a staged rollout");
            }
        }
        Ok(())
    }

    async fn gate(&self, row: RolloutRow, now: DateTime<Utc>) -> AppResult<()> {
        let mut staged = Staged::read(row)?;
        let index = staged.wave_index();
        let figures = staged::figures(
            &self.db,
            staged.row.stack_id,
            staged.row.deployment_object_id,
        )
        .await?;
        let soak = staged.times.get(index).and_then(|t| t.soak_started_at);
        let verdict = match index < staged.strategy.waves.len() {
            true => judge(
                &staged.strategy.gate,
                wave_figures(&figures, index),
                soak,
                now,
            ),
            false => Verdict::Pass,
        };
        if verdict == Verdict::Wait {
            return Ok(());
        }
        let mut work = self.begin().await?;
        let Some(stack) = stacks::get_row_in(&mut work.tx, staged.row.stack_id).await? else {
            return Ok(());
        };
        let moved = match verdict {
            Verdict::Wait => false,
            Verdict::StartSoak => {
                if let Some(times) = staged.times.get_mut(index) {
                    times.soak_started_at = Some(now);
                }
                let to = staged.next_row(StagedState::Progressing, staged.row.wave, None);
                staged::transition(&mut work.tx, &staged.row, &to).await?
            }
            Verdict::Pass => self.pass_wave(&mut work, &stack, staged).await?,
            Verdict::Fail(reason) => self.fail_wave(&mut work, &stack, staged, reason).await?,
        };
        if moved {
            work.commit().await?;
            self.rollouts_changed();
        }
        Ok(())
    }

    /// The current wave passed: the next one receives the release (after the last, every
    /// agent still held back does, and the rollout succeeded).
    pub(crate) async fn pass_wave(
        &self,
        work: &mut Work,
        stack: &StackRow,
        mut staged: Staged,
    ) -> AppResult<bool> {
        let now = Utc::now();
        let index = staged.wave_index();
        let count = staged.strategy.waves.len();
        if let Some(times) = staged.times.get_mut(index) {
            times.passed_at = Some(now);
        }
        let next = index + 1;
        let last = next >= count;
        if let Some(times) = staged.times.get_mut(next) {
            times.started_at = Some(now);
        }
        let (state, released_to) = match last {
            true => (StagedState::Succeeded, i64::MAX),
            false => (StagedState::Progressing, next as i64),
        };
        let to = staged.next_row(state, next as i64, None);
        if !staged::transition(&mut work.tx, &staged.row, &to).await? {
            return Ok(false);
        }
        let stack_id = stack.id;
        let released = staged::release(&mut work.tx, stack_id, next as i64, released_to).await?;
        let object = staged.row.deployment_object_id;
        let name = staged.strategy.waves.get(index).map(|w| w.name.as_str());
        let details =
            json!({ "deployment_object_id": object, "wave": name, "released": released.len() });
        work.audit_as(
            Actor::SYSTEM,
            "rollout.wave_passed",
            ("stack", Some(stack_id)),
            details,
        )
        .await?;
        let reference = staged.object_ref(self.sequence_of(object).await?);
        let more = json!({ "wave": name, "next_wave": staged.strategy.waves.get(next).map(|w| w.name.as_str()) });
        work.emit(DomainEvent::staged(
            "rollout.wave_passed",
            StackRef::of(stack),
            reference,
            more,
        ));
        if last {
            work.emit(DomainEvent::staged(
                "rollout.succeeded",
                StackRef::of(stack),
                reference,
                json!({}),
            ));
        }
        work.advanced_only(stack_id, object, released);
        Ok(true)
    }

    /// The current wave failed its gate: roll back or pause, as the strategy says.
    async fn fail_wave(
        &self,
        work: &mut Work,
        stack: &StackRow,
        mut staged: Staged,
        reason: String,
    ) -> AppResult<bool> {
        let index = staged.wave_index();
        if let Some(times) = staged.times.get_mut(index) {
            times.failed_at = Some(Utc::now());
        }
        let name = staged
            .strategy
            .waves
            .get(index)
            .map(|w| w.name.as_str().to_string());
        let reason = format!("wave {:?}: {reason}", name.as_deref().unwrap_or("-"));
        let reference = staged.object_ref(self.sequence_of(staged.row.deployment_object_id).await?);
        let failed = json!({ "wave": name, "reason": reason });
        match staged.strategy.on_failure {
            OnFailure::Rollback => {
                work.emit(DomainEvent::staged(
                    "rollout.failed",
                    StackRef::of(stack),
                    reference,
                    failed,
                ));
                self.roll_back_staged(work, stack, staged, reason).await
            }
            OnFailure::Pause => {
                let to =
                    staged.next_row(StagedState::Paused, staged.row.wave, Some(reason.clone()));
                work.emit(DomainEvent::staged(
                    "rollout.failed",
                    StackRef::of(stack),
                    reference,
                    failed.clone(),
                ));
                self.staged_moved(work, stack, &staged, &to, "rollout.paused", failed)
                    .await
            }
        }
    }

    /// Every agent that received the release gets what it held before; the rollout is over.
    pub(crate) async fn roll_back_staged(
        &self,
        work: &mut Work,
        stack: &StackRow,
        staged: Staged,
        reason: String,
    ) -> AppResult<bool> {
        let to = staged.next_row(
            StagedState::RolledBack,
            staged.row.wave,
            Some(reason.clone()),
        );
        let more = json!({ "reason": reason, "previous_deployment_object_id": staged.row.previous_object_id });
        if !self
            .staged_moved(work, stack, &staged, &to, "rollout.rolled_back", more)
            .await?
        {
            return Ok(false);
        }
        let changed = staged::roll_back(&mut work.tx, stack.id).await?;
        work.agents_changed(changed);
        Ok(true)
    }

    /// Writes a move that changes no agent's version, with its audit entry and event.
    pub(crate) async fn staged_moved(
        &self,
        work: &mut Work,
        stack: &StackRow,
        staged: &Staged,
        to: &RolloutRow,
        event: &'static str,
        more: serde_json::Value,
    ) -> AppResult<bool> {
        if !staged::transition(&mut work.tx, &staged.row, to).await? {
            return Ok(false);
        }
        let object = staged.row.deployment_object_id;
        let details =
            json!({ "deployment_object_id": object, "state": to.state, "reason": to.reason });
        work.audit_as(Actor::SYSTEM, event, ("stack", Some(stack.id)), details)
            .await?;
        let reference = staged.object_ref(self.sequence_of(object).await?);
        work.emit(DomainEvent::staged(
            event,
            StackRef::of(stack),
            reference,
            more,
        ));
        Ok(true)
    }

    async fn sequence_of(&self, object: uuid::Uuid) -> AppResult<i64> {
        Ok(staged::sequence_of(&self.db, object)
            .await?
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(members: i64, applied: i64, failed: i64, healthy: i64) -> WaveFigures {
        WaveFigures {
            members,
            applied,
            failed,
            healthy,
        }
    }

    #[test]
    fn a_gate_waits_soaks_passes_and_fails() {
        let gate = Gate {
            min_healthy_percent: 50,
            max_failed: 1,
            soak_seconds: 60,
        };
        let now = Utc::now();
        let ago = |s| Some(now - chrono::Duration::seconds(s));
        assert_eq!(judge(&gate, figures(0, 0, 0, 0), None, now), Verdict::Pass);
        assert_eq!(judge(&gate, figures(4, 3, 0, 4), None, now), Verdict::Wait);
        assert_eq!(
            judge(&gate, figures(4, 4, 1, 2), None, now),
            Verdict::StartSoak
        );
        assert_eq!(
            judge(&gate, figures(4, 4, 0, 2), ago(30), now),
            Verdict::Wait
        );
        assert_eq!(
            judge(&gate, figures(4, 4, 0, 2), ago(60), now),
            Verdict::Pass
        );
        assert!(matches!(
            judge(&gate, figures(4, 4, 0, 1), ago(30), now),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(&gate, figures(4, 2, 2, 0), None, now),
            Verdict::Fail(_)
        ));
        let instant = Gate {
            soak_seconds: 0,
            ..gate
        };
        assert_eq!(
            judge(&instant, figures(4, 4, 0, 2), None, now),
            Verdict::Pass
        );
    }
}
