//! What each agent made of each deployment object: first successful apply, latest failure,
//! latest health and first healthy report, one row per (object, agent), upserted as reports
//! arrive so a release's figures are read from rows under one primary-key prefix.

use brokkr_types::rollouts::HealthStatus;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, with_db, with_tx};

/// One agent's progress on one deployment object.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Progress {
    pub agent_id: Uuid,
    pub applied_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    pub health: Option<String>,
    pub health_message: Option<String>,
    pub health_at: Option<DateTime<Utc>>,
    pub healthy_at: Option<DateTime<Utc>>,
}

impl Progress {
    pub fn health(&self) -> Option<HealthStatus> {
        self.health.as_deref().and_then(HealthStatus::parse)
    }

    /// Whether the latest apply outcome is a failure.
    pub fn failing(&self) -> bool {
        self.failed_at.is_some()
    }
}

/// Records an apply outcome: a success keeps the first success time and clears the failure; a
/// failure replaces the previous one.
pub async fn record_apply(
    tx: &mut Tx,
    object: Uuid,
    agent: Uuid,
    failure: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    const SUCCESS: &str = "INSERT INTO rollout_agents (deployment_object_id, agent_id, applied_at, changed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (deployment_object_id, agent_id) DO UPDATE SET \
         applied_at = COALESCE(rollout_agents.applied_at, excluded.applied_at), \
         failed_at = NULL, failure = NULL, changed_at = excluded.changed_at";
    const FAILURE: &str = "INSERT INTO rollout_agents (deployment_object_id, agent_id, failed_at, failure, changed_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (deployment_object_id, agent_id) DO UPDATE SET \
         failed_at = excluded.failed_at, failure = excluded.failure, changed_at = excluded.changed_at";
    let now = Utc::now();
    match failure {
        None => with_tx!(tx, conn => sqlx::query(SUCCESS).bind(object).bind(agent).bind(at)
            .bind(now).execute(conn).await.map(|_| ()))?,
        Some(reason) => with_tx!(tx, conn => sqlx::query(FAILURE).bind(object).bind(agent).bind(at)
            .bind(reason).bind(now).execute(conn).await.map(|_| ()))?,
    }
    Ok(())
}

/// One health entry to store.
#[derive(Debug, Clone)]
pub struct HealthEntry<'a> {
    pub object: Uuid,
    pub status: HealthStatus,
    pub message: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Records an agent's health reports; the first `healthy` is kept as such.
pub async fn record_health(
    tx: &mut Tx,
    agent: Uuid,
    entries: &[HealthEntry<'_>],
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO rollout_agents (deployment_object_id, agent_id, health, \
         health_message, health_at, healthy_at, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (deployment_object_id, agent_id) DO UPDATE SET health = excluded.health, \
         health_message = excluded.health_message, health_at = excluded.health_at, \
         healthy_at = COALESCE(rollout_agents.healthy_at, excluded.healthy_at), \
         changed_at = excluded.changed_at";
    let now = Utc::now();
    for entry in entries {
        let healthy_at = (entry.status == HealthStatus::Healthy).then_some(entry.at);
        with_tx!(tx, conn => sqlx::query(SQL)
            .bind(entry.object)
            .bind(agent)
            .bind(entry.status.as_str())
            .bind(entry.message)
            .bind(entry.at)
            .bind(healthy_at)
            .bind(now)
            .execute(conn)
            .await
            .map(|_| ()))?;
    }
    Ok(())
}

const COLUMNS: &str = "agent_id, applied_at, failed_at, failure, health, health_message, health_at, \
                       healthy_at";

/// Every agent's progress on `object`.
pub async fn of_object(db: &Db, object: Uuid) -> StoreResult<Vec<Progress>> {
    let sql = format!("SELECT {COLUMNS} FROM rollout_agents WHERE deployment_object_id = $1");
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(object).fetch_all(pool).await)?,
    )
}

/// The progress on `object` of every agent its stack targets (inside `reach_of`'s reach when
/// given); agents that reported nothing yet come with every field empty.
pub async fn of_targeted(
    db: &Db,
    stack: Uuid,
    object: Uuid,
    reach_of: Option<Uuid>,
) -> StoreResult<Vec<Progress>> {
    Ok(with_db!(db, pool => {
        let mut b = sqlx::QueryBuilder::new(
            "SELECT a.agent_id, r.applied_at, r.failed_at, r.failure, r.health, r.health_message, \
             r.health_at, r.healthy_at FROM assignments a LEFT JOIN rollout_agents r \
             ON r.agent_id = a.agent_id AND r.deployment_object_id = ",
        );
        b.push_bind(object).push(" WHERE a.stack_id = ").push_bind(stack);
        if let Some(generator) = reach_of {
            b.push(" AND EXISTS (SELECT 1 FROM reach x WHERE x.agent_id = a.agent_id AND x.generator_id = ")
                .push_bind(generator)
                .push(")");
        }
        b.build_query_as().fetch_all(pool).await
    })?)
}

/// The progress rows of `object` that changed after `since`.
pub async fn changed_since(
    db: &Db,
    object: Uuid,
    since: DateTime<Utc>,
) -> StoreResult<Vec<Progress>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM rollout_agents WHERE deployment_object_id = $1 AND changed_at > $2"
    );
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(object).bind(since).fetch_all(pool).await)?,
    )
}

/// One agent's progress on one version of a stack.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentVersion {
    pub agent_id: Uuid,
    pub stack_id: Uuid,
    pub sequence_id: i64,
    pub applied_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    pub health: Option<String>,
}

/// The progress rows of `agents`, with the stack and version of each object.
pub async fn of_agents(db: &Db, agents: &[Uuid]) -> StoreResult<Vec<AgentVersion>> {
    let mut found = Vec::new();
    for chunk in agents.chunks(500) {
        let rows: Vec<AgentVersion> = with_db!(db, pool => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT r.agent_id, d.stack_id, d.sequence_id, r.applied_at, r.failed_at, \
                 r.failure, r.health FROM rollout_agents r \
                 JOIN deployment_objects d ON d.id = r.deployment_object_id WHERE r.agent_id IN ",
            );
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(pool).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// A deployment object's stack, version and creation time (without its content).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ObjectHeader {
    pub stack_id: Uuid,
    pub sequence_id: i64,
    pub created_at: DateTime<Utc>,
}

const HEADER: &str =
    "SELECT stack_id, sequence_id, created_at FROM deployment_objects WHERE id = $1";

pub async fn header(db: &Db, object: Uuid) -> StoreResult<Option<ObjectHeader>> {
    Ok(with_db!(db, pool => sqlx::query_as(HEADER).bind(object).fetch_optional(pool).await)?)
}

/// [`header`] inside a transaction (a write holding SQLite's lock must not wait for the pool).
pub async fn header_in(tx: &mut Tx, object: Uuid) -> StoreResult<Option<ObjectHeader>> {
    Ok(with_tx!(tx, conn => sqlx::query_as(HEADER).bind(object).fetch_optional(conn).await)?)
}

/// `(agent, stack, stack name, newest version)` of every live stack assigned to `agents`.
pub async fn stacks_of(db: &Db, agents: &[Uuid]) -> StoreResult<Vec<(Uuid, Uuid, String, i64)>> {
    let mut found = Vec::new();
    for chunk in agents.chunks(500) {
        let rows: Vec<(Uuid, Uuid, String, i64)> = with_db!(db, pool => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT a.agent_id, s.id, s.name, s.last_sequence FROM assignments a \
                 JOIN stacks s ON s.id = a.stack_id WHERE s.deleted_at IS NULL AND a.agent_id IN ",
            );
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(pool).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// Whether an agent the stack targets has not applied `object` yet (or failed it).
pub async fn any_pending(tx: &mut Tx, stack: Uuid, object: Uuid) -> StoreResult<bool> {
    const SQL: &str = "SELECT EXISTS (SELECT 1 FROM assignments a LEFT JOIN rollout_agents r \
         ON r.agent_id = a.agent_id AND r.deployment_object_id = $2 \
         WHERE a.stack_id = $1 AND (r.applied_at IS NULL OR r.failed_at IS NOT NULL))";
    Ok(
        with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(stack).bind(object).fetch_one(conn).await)?,
    )
}

/// How many agents have `object` failing, other than `agent`.
pub async fn others_failing(tx: &mut Tx, object: Uuid, agent: Uuid) -> StoreResult<bool> {
    const SQL: &str = "SELECT EXISTS (SELECT 1 FROM rollout_agents WHERE deployment_object_id = $1 \
         AND agent_id <> $2 AND failed_at IS NOT NULL)";
    Ok(
        with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(object).bind(agent).fetch_one(conn).await)?,
    )
}

/// One agent's progress on `object`, inside a transaction.
pub async fn one(tx: &mut Tx, object: Uuid, agent: Uuid) -> StoreResult<Option<Progress>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM rollout_agents WHERE deployment_object_id = $1 AND agent_id = $2"
    );
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(object).bind(agent).fetch_optional(conn).await)?,
    )
}

/// `(id, last heartbeat, Kubernetes reachable)` of every live active agent.
pub async fn active_agents(
    db: &Db,
) -> StoreResult<Vec<(Uuid, Option<DateTime<Utc>>, Option<bool>)>> {
    const SQL: &str = "SELECT id, last_heartbeat_at, kubernetes_reachable FROM agents \
                       WHERE deleted_at IS NULL AND status = 'active'";
    Ok(with_db!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await)?)
}

/// `(agent, stack, version, health)` of every health report kept.
pub async fn reported_health(db: &Db) -> StoreResult<Vec<(Uuid, Uuid, i64, String)>> {
    const SQL: &str = "SELECT r.agent_id, d.stack_id, d.sequence_id, r.health FROM rollout_agents r \
                       JOIN deployment_objects d ON d.id = r.deployment_object_id WHERE r.health IS NOT NULL";
    Ok(with_db!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await)?)
}

/// Versions behind, summed over every agent and assigned live stack.
pub async fn total_backlog(db: &Db) -> StoreResult<i64> {
    const SQL: &str = "SELECT CAST(COALESCE(SUM(s.last_sequence - COALESCE(x.applied, 0)), 0) AS BIGINT) \
         FROM assignments a JOIN stacks s ON s.id = a.stack_id AND s.deleted_at IS NULL \
         LEFT JOIN (SELECT r.agent_id, d.stack_id, MAX(d.sequence_id) AS applied FROM rollout_agents r \
         JOIN deployment_objects d ON d.id = r.deployment_object_id WHERE r.applied_at IS NOT NULL \
         GROUP BY r.agent_id, d.stack_id) x ON x.agent_id = a.agent_id AND x.stack_id = a.stack_id";
    Ok(with_db!(db, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?)
}
