//! A release's figures, kept up to date rather than recomputed: the progress rows of its
//! targeted agents are read whole once, then only the rows changed since (a margin covers
//! commit delays and clocks of other replicas) are read and merged. The whole set is read again
//! when targeting changed (on this replica or as another announced), or after
//! [`REBUILD_AFTER`], so a change nothing announces (a generator's reach alone) heals.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokkr_types::rollouts::{
    ConvergencePoint, Durations, HealthCounts, Rollout, RolloutFailure, RolloutState,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{App, AppResult};
use crate::db::rollouts::{self, ObjectHeader, Progress};

/// Failures listed in a rollout.
const MAX_FAILURES: usize = 100;
/// Rows written this long before a read may still be committing (or come from a replica whose
/// clock is slightly behind): the next read asks for them again. Longer re-reads more rows per
/// read when reports pour in (docs/benchmarks.md); what slips past heals at the next whole read.
const MARGIN: chrono::Duration = chrono::Duration::seconds(1);
/// The whole set is read again at least this often.
pub const REBUILD_AFTER: Duration = Duration::from_secs(30);
/// Most progress rows kept in memory over every tracked release.
const MAX_TRACKED_ROWS: u64 = 500_000;

/// The progress of one release's targeted agents (inside one generator's reach, or all).
#[derive(Debug)]
pub struct Tracked {
    header: ObjectHeader,
    rows: HashMap<Uuid, Progress>,
    /// [`crate::targeting::Targeting::generation`] when the rows were read whole.
    generation: u64,
    /// Rows changed after this were not read yet.
    read_up_to: DateTime<Utc>,
    built: Instant,
}

/// Tracked releases by (object, bounding generator).
pub type Trackers = moka::sync::Cache<(Uuid, Option<Uuid>), Arc<tokio::sync::Mutex<Tracked>>>;

pub(crate) fn new_trackers() -> Trackers {
    moka::sync::Cache::builder()
        .weigher(|_, v: &Arc<tokio::sync::Mutex<Tracked>>| {
            v.try_lock().map_or(1, |t| {
                u32::try_from(t.rows.len()).unwrap_or(u32::MAX).max(1)
            })
        })
        .max_capacity(MAX_TRACKED_ROWS)
        .time_to_idle(Duration::from_secs(300))
        .build()
}

impl App {
    /// The figures of `object` from its tracked progress, read whole or brought up to date.
    pub(crate) async fn tracked_figures(
        &self,
        object: Uuid,
        header: ObjectHeader,
        reach_of: Option<Uuid>,
    ) -> AppResult<Rollout> {
        let key = (object, reach_of);
        let generation = self.targeting.generation();
        if let Some(slot) = self.rollout_trackers.get(&key) {
            let mut tracked = slot.lock().await;
            let current =
                tracked.generation == generation && tracked.built.elapsed() < REBUILD_AFTER;
            if current {
                let since = tracked.read_up_to;
                let now = Utc::now();
                for row in rollouts::changed_since(&self.db, object, since).await? {
                    if let Some(kept) = tracked.rows.get_mut(&row.agent_id) {
                        *kept = row;
                    }
                }
                tracked.read_up_to = now - MARGIN;
                return Ok(figures(object, header, tracked.rows.values()));
            }
        }
        let read_up_to = Utc::now() - MARGIN;
        let progress = rollouts::of_targeted(&self.db, header.stack_id, object, reach_of).await?;
        let tracked = Tracked {
            header,
            rows: progress.into_iter().map(|p| (p.agent_id, p)).collect(),
            generation,
            read_up_to,
            built: Instant::now(),
        };
        let rollout = figures(object, tracked.header, tracked.rows.values());
        self.rollout_trackers
            .insert(key, Arc::new(tokio::sync::Mutex::new(tracked)));
        Ok(rollout)
    }
}

/// The rollout figures of `object` over the targeted agents' progress.
pub(crate) fn figures<'a>(
    object: Uuid,
    header: ObjectHeader,
    rows: impl ExactSizeIterator<Item = &'a Progress>,
) -> Rollout {
    let count = rows.len() as u64;
    let mut health = HealthCounts::default();
    let (mut applied, mut failures) = (0u64, Vec::new());
    let (mut to_applied, mut to_healthy) = (Vec::new(), Vec::new());
    let since = |at: DateTime<Utc>| (at - header.created_at).num_milliseconds().max(0) as u64;
    for row in rows {
        if let Some(status) = row.health() {
            health.add(status);
        }
        if let Some(at) = row.healthy_at {
            to_healthy.push(since(at));
        }
        match (row.failed_at, row.applied_at) {
            (Some(failed_at), _) => failures.push(RolloutFailure {
                agent_id: row.agent_id,
                reason: row.failure.clone(),
                failed_at,
            }),
            (None, Some(at)) => {
                applied += 1;
                to_applied.push(since(at));
            }
            (None, None) => {}
        }
    }
    failures.sort_by_key(|f| std::cmp::Reverse(f.failed_at));
    to_applied.sort_unstable();
    let failed = failures.len() as u64;
    failures.truncate(MAX_FAILURES);
    let state = if failed > 0 {
        RolloutState::Failed
    } else if applied == count {
        RolloutState::Converged
    } else {
        RolloutState::Progressing
    };
    Rollout {
        deployment_object_id: object,
        stack_id: header.stack_id,
        sequence_id: header.sequence_id,
        created_at: header.created_at,
        state,
        targeted: count,
        applied,
        failed,
        pending: count.saturating_sub(applied + failed),
        failures,
        health,
        convergence: ConvergencePoint::curve(&to_applied),
        time_to_applied: durations(to_applied),
        time_to_healthy: durations(to_healthy),
        staged: None,
    }
}

/// Nearest-rank percentiles.
fn durations(mut values: Vec<u64>) -> Option<Durations> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = |p: usize| values[((values.len() * p).div_ceil(100)).max(1) - 1];
    Some(Durations {
        count: values.len() as u64,
        p50_ms: rank(50),
        p95_ms: rank(95),
        max_ms: values[values.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = durations((1..=100).collect()).unwrap();
        assert_eq!((d.p50_ms, d.p95_ms, d.max_ms, d.count), (50, 95, 100, 100));
        let one = durations(vec![7]).unwrap();
        assert_eq!((one.p50_ms, one.p95_ms, one.max_ms), (7, 7, 7));
        assert!(durations(Vec::new()).is_none());
    }
}
