//! Staged rollouts in the database: one row per staged release, the wave and held version of
//! each agent of the stack (`rollout_members`), the figures a wave's gate reads, and the lease
//! that lets one replica drive every rollout.

use brokkr_types::staged::StagedState;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, with_db, with_tx};

/// Rows inserted per statement.
const CHUNK: usize = 500;

/// A staged release.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RolloutRow {
    pub deployment_object_id: Uuid,
    pub stack_id: Uuid,
    pub previous_object_id: Uuid,
    pub strategy: String,
    pub state: String,
    pub wave: i64,
    pub waves: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RolloutRow {
    pub fn state(&self) -> StagedState {
        StagedState::parse(&self.state).unwrap_or(StagedState::Superseded)
    }
}

/// One agent of a stack under a staged release.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub agent: Uuid,
    pub wave: i64,
    /// What it held when the release started.
    pub base: Uuid,
    /// What it holds instead of the newest (`None`: the newest).
    pub held: Option<Uuid>,
}

/// How a wave stands against its gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct WaveFigures {
    pub members: i64,
    pub applied: i64,
    pub failed: i64,
    pub healthy: i64,
}

macro_rules! columns {
    () => {
        "deployment_object_id, stack_id, previous_object_id, strategy, state, wave, waves, \
         reason, created_at, updated_at"
    };
}

/// The stack's release that may still move (progressing or paused), if any.
pub async fn live_of_stack(tx: &mut Tx, stack: Uuid) -> StoreResult<Option<RolloutRow>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM staged_rollouts WHERE stack_id = $1 AND state IN ('progressing', 'paused')"
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).bind(stack).fetch_optional(conn).await)?)
}

/// The staged release of a deployment object, if it was staged.
pub async fn of_object(db: &Db, object: Uuid) -> StoreResult<Option<RolloutRow>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM staged_rollouts WHERE deployment_object_id = $1"
    );
    Ok(with_db!(db, pool => sqlx::query_as(SQL).bind(object).fetch_optional(pool).await)?)
}

/// The staged release of the stack's newest deployment object, if that one was staged.
pub async fn of_newest(tx: &mut Tx, stack: Uuid) -> StoreResult<Option<RolloutRow>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM staged_rollouts WHERE deployment_object_id = (SELECT d.id FROM deployment_objects d \
         JOIN stacks s ON s.id = d.stack_id WHERE s.id = $1 AND d.sequence_id = s.last_sequence)"
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).bind(stack).fetch_optional(conn).await)?)
}

/// Every release that is progressing (the ones the driver gates).
pub async fn progressing(db: &Db) -> StoreResult<Vec<RolloutRow>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM staged_rollouts WHERE state = 'progressing'"
    );
    Ok(with_db!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await)?)
}

pub async fn insert(tx: &mut Tx, row: &RolloutRow) -> StoreResult<()> {
    const SQL: &str = concat!(
        "INSERT INTO staged_rollouts (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    with_tx!(tx, conn => sqlx::query(SQL)
        .bind(row.deployment_object_id).bind(row.stack_id).bind(row.previous_object_id)
        .bind(&row.strategy).bind(&row.state).bind(row.wave).bind(&row.waves)
        .bind(&row.reason).bind(row.created_at).bind(row.updated_at)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves a release from `from` (its state and wave as read) to `to`; `false` when it had
/// moved meanwhile (another replica, a person), so nothing was written.
pub async fn transition(tx: &mut Tx, from: &RolloutRow, to: &RolloutRow) -> StoreResult<bool> {
    const SQL: &str = "UPDATE staged_rollouts SET state = $3, wave = $4, waves = $5, reason = $6, \
                       updated_at = $7 WHERE deployment_object_id = $1 AND state = $2 AND wave = $8";
    let done = with_tx!(tx, conn => sqlx::query(SQL)
        .bind(from.deployment_object_id).bind(&from.state).bind(&to.state).bind(to.wave)
        .bind(&to.waves).bind(&to.reason).bind(to.updated_at).bind(from.wave)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Marks the stack's live release superseded (a newer object starts its own).
pub async fn supersede(tx: &mut Tx, stack: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE staged_rollouts SET state = 'superseded', updated_at = $2 \
                       WHERE stack_id = $1 AND state IN ('progressing', 'paused')";
    with_tx!(tx, conn => sqlx::query(SQL).bind(stack).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// What each agent the stack is assigned to holds: the version a rollout holds it at, else
/// `latest`.
pub async fn holdings(tx: &mut Tx, stack: Uuid, latest: Uuid) -> StoreResult<Vec<(Uuid, Uuid)>> {
    const SQL: &str = "SELECT t.agent_id, COALESCE(m.held_object_id, $2) FROM assignments t \
                       LEFT JOIN rollout_members m ON m.stack_id = t.stack_id AND m.agent_id = t.agent_id \
                       WHERE t.stack_id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).bind(stack).bind(latest).fetch_all(conn).await)?)
}

/// The deployment object of a stack with this sequence number (deletion markers excluded).
pub async fn object_at(tx: &mut Tx, stack: Uuid, sequence: i64) -> StoreResult<Option<Uuid>> {
    const SQL: &str = "SELECT id FROM deployment_objects WHERE stack_id = $1 AND sequence_id = $2 \
                       AND NOT is_deletion_marker";
    Ok(
        with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(stack).bind(sequence).fetch_optional(conn).await)?,
    )
}

/// The sequence number of a deployment object.
pub async fn sequence_of(db: &Db, object: Uuid) -> StoreResult<Option<i64>> {
    const SQL: &str = "SELECT sequence_id FROM deployment_objects WHERE id = $1";
    Ok(with_db!(db, pool => sqlx::query_scalar(SQL).bind(object).fetch_optional(pool).await)?)
}

/// Replaces the stack's members.
pub async fn replace_members(tx: &mut Tx, stack: Uuid, members: &[Member]) -> StoreResult<()> {
    clear_members(tx, stack).await?;
    add_members(tx, stack, members).await
}

/// Adds (or replaces) some members of the stack.
pub async fn add_members(tx: &mut Tx, stack: Uuid, members: &[Member]) -> StoreResult<()> {
    for chunk in members.chunks(CHUNK) {
        with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new(
                "INSERT INTO rollout_members (stack_id, agent_id, wave, base_object_id, held_object_id) ",
            );
            b.push_values(chunk, |mut row, m| {
                row.push_bind(stack).push_bind(m.agent).push_bind(m.wave).push_bind(m.base).push_bind(m.held);
            });
            b.push(" ON CONFLICT (stack_id, agent_id) DO UPDATE SET wave = excluded.wave, \
                     base_object_id = excluded.base_object_id, held_object_id = excluded.held_object_id");
            b.build().execute(conn).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Forgets the stack's members: every agent holds the newest version again.
pub async fn clear_members(tx: &mut Tx, stack: Uuid) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM rollout_members WHERE stack_id = $1";
    with_tx!(tx, conn => sqlx::query(SQL).bind(stack).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Gives the newest version to the members of waves `from..=to` still held back; returns them.
pub async fn release(tx: &mut Tx, stack: Uuid, from: i64, to: i64) -> StoreResult<Vec<Uuid>> {
    const SQL: &str = "UPDATE rollout_members SET held_object_id = NULL WHERE stack_id = $1 \
                       AND wave >= $2 AND wave <= $3 AND held_object_id IS NOT NULL RETURNING agent_id";
    Ok(
        with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(stack).bind(from).bind(to).fetch_all(conn).await)?,
    )
}

/// Gives every member what it held when the release started; returns those that change.
pub async fn roll_back(tx: &mut Tx, stack: Uuid) -> StoreResult<Vec<Uuid>> {
    const SQL: &str = "UPDATE rollout_members SET held_object_id = base_object_id WHERE stack_id = $1 \
                       AND (held_object_id IS NULL OR held_object_id <> base_object_id) RETURNING agent_id";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(stack).fetch_all(conn).await)?)
}

/// The gate's figures of each wave of a release (by wave index), over agents still assigned.
/// An agent counts as failed when its apply failed or it reports the release degraded or
/// failing (a workload in CrashLoopBackOff applied without error).
pub async fn figures(db: &Db, stack: Uuid, object: Uuid) -> StoreResult<Vec<(i64, WaveFigures)>> {
    const SQL: &str = "SELECT m.wave, COUNT(*) AS members, \
         COALESCE(SUM(CASE WHEN r.applied_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS applied, \
         COALESCE(SUM(CASE WHEN r.failed_at IS NOT NULL OR r.health IN ('degraded', 'failing') \
         THEN 1 ELSE 0 END), 0) AS failed, \
         COALESCE(SUM(CASE WHEN r.health = 'healthy' THEN 1 ELSE 0 END), 0) AS healthy \
         FROM rollout_members m \
         JOIN assignments t ON t.stack_id = m.stack_id AND t.agent_id = m.agent_id \
         LEFT JOIN rollout_agents r ON r.deployment_object_id = $2 AND r.agent_id = m.agent_id \
         WHERE m.stack_id = $1 GROUP BY m.wave ORDER BY m.wave";
    let rows: Vec<(i64, i64, i64, i64, i64)> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(stack).bind(object).fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .map(|(wave, members, applied, failed, healthy)| {
            let figures = WaveFigures {
                members,
                applied,
                failed,
                healthy,
            };
            (wave, figures)
        })
        .collect())
}

/// Takes or renews the lease `name` for `holder` until `until`; `false` when another holder's
/// lease has not run out.
pub async fn lease(
    db: &Db,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<bool> {
    const SQL: &str = "INSERT INTO driver_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                       expires_at = excluded.expires_at \
                       WHERE driver_leases.holder = excluded.holder OR driver_leases.expires_at < $4";
    let done = with_db!(db, pool => sqlx::query(SQL).bind(name).bind(holder).bind(until).bind(now)
        .execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}
