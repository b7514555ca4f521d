//! Work orders and their runs (one per targeted agent). A claim is one conditional update: of
//! concurrent claims, on any number of replicas, exactly one finds the run claimable. Renewals
//! and completions land only with the lease the claim handed out, so a holder whose lease ran
//! out (and was claimed again) cannot overwrite the newer attempt.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, Window, with_db, with_tx};

/// A stored work order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub work_type: String,
    pub spec: String,
    pub target: String,
    pub generator_id: Option<Uuid>,
    pub max_attempts: i64,
    pub claim_timeout_seconds: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One agent's run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub work_order_id: Uuid,
    pub agent_id: Uuid,
    pub status: String,
    pub attempts: i64,
    pub lease_id: Option<Uuid>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub message: Option<String>,
    pub result: Option<String>,
}

const ORDER_COLUMNS: &str = "id, work_type, spec, target, generator_id, max_attempts, \
                             claim_timeout_seconds, created_at, expires_at";
const RUN_COLUMNS: &str = "work_order_id, agent_id, status, attempts, lease_id, claimed_at, \
                           lease_expires_at, completed_at, message, result";

/// Writes an order and a pending run for each of `agents`.
pub async fn insert(tx: &mut Tx, order: &OrderRow, agents: &[Uuid]) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO work_orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(order.id)
        .bind(&order.work_type)
        .bind(&order.spec)
        .bind(&order.target)
        .bind(order.generator_id)
        .bind(order.max_attempts)
        .bind(order.claim_timeout_seconds)
        .bind(order.created_at)
        .bind(order.expires_at)
        .execute(conn)
        .await
        .map(|_| ()))?;
    for chunk in agents.chunks(1000) {
        with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new(
                "INSERT INTO work_runs (work_order_id, agent_id, status, attempts, max_attempts) ",
            );
            b.push_values(chunk, |mut row, agent| {
                row.push_bind(order.id)
                    .push_bind(*agent)
                    .push_bind("pending")
                    .push_bind(0i64)
                    .push_bind(order.max_attempts);
            });
            b.build().execute(conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<OrderRow>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM work_orders WHERE id = $1");
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id).fetch_optional(pool).await)?,
    )
}

pub async fn get_in(tx: &mut Tx, id: Uuid) -> StoreResult<Option<OrderRow>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM work_orders WHERE id = $1");
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(id).fetch_optional(conn).await)?,
    )
}

/// Orders newest first; only `generator`'s when given.
pub async fn list(db: &Db, generator: Option<Uuid>, window: Window) -> StoreResult<Vec<OrderRow>> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM work_orders WHERE ($1 OR generator_id = $2) \
         ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
    );
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(generator.is_none())
        .bind(generator.unwrap_or_default())
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?,
    )
}

pub async fn runs(db: &Db, order: Uuid) -> StoreResult<Vec<RunRow>> {
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM work_runs WHERE work_order_id = $1 ORDER BY agent_id");
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(order).fetch_all(pool).await)?,
    )
}

/// `agent`'s run of `order`.
pub async fn run_of(db: &Db, order: Uuid, agent: Uuid) -> StoreResult<Option<RunRow>> {
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM work_runs WHERE work_order_id = $1 AND agent_id = $2");
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(order).bind(agent).fetch_optional(pool).await)?,
    )
}

/// `(order, status, runs)` for each order in `orders`.
pub async fn status_counts(db: &Db, orders: &[Uuid]) -> StoreResult<Vec<(Uuid, String, i64)>> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    Ok(with_db!(db, pool => {
        let mut b = sqlx::QueryBuilder::new(
            "SELECT work_order_id, status, COUNT(*) FROM work_runs WHERE work_order_id IN ",
        );
        b.push_tuples(orders, |mut t, id| {
            t.push_bind(*id);
        });
        b.push(" GROUP BY work_order_id, status");
        b.build_query_as().fetch_all(pool).await
    })?)
}

/// A run waiting for an agent, with what the agent needs to carry it out.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRow {
    pub id: Uuid,
    pub work_type: String,
    pub spec: String,
    pub attempts: i64,
    pub claim_timeout_seconds: i64,
}

/// The oldest `limit` runs waiting for `agent`.
pub async fn pending_for_agent(db: &Db, agent: Uuid, limit: i64) -> StoreResult<Vec<PendingRow>> {
    const SQL: &str = "SELECT o.id, o.work_type, o.spec, r.attempts, o.claim_timeout_seconds \
                       FROM work_runs r JOIN work_orders o ON o.id = r.work_order_id \
                       WHERE r.agent_id = $1 AND r.status = 'pending' \
                       ORDER BY o.created_at, o.id LIMIT $2";
    Ok(with_db!(db, pool => sqlx::query_as(SQL).bind(agent).bind(limit).fetch_all(pool).await)?)
}

/// Claims `agent`'s run of `order` when it waits (or its lease ran out) and attempts are left.
pub async fn claim(
    tx: &mut Tx,
    order: Uuid,
    agent: Uuid,
    lease: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<Option<RunRow>> {
    let sql = format!(
        "UPDATE work_runs SET status = 'claimed', attempts = attempts + 1, lease_id = $3, \
         claimed_at = $4, lease_expires_at = $5, message = NULL \
         WHERE work_order_id = $1 AND agent_id = $2 AND attempts < max_attempts \
         AND (status = 'pending' OR (status = 'claimed' AND lease_expires_at < $4)) \
         RETURNING {RUN_COLUMNS}"
    );
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(order).bind(agent).bind(lease).bind(now).bind(until)
        .fetch_optional(conn).await)?,
    )
}

/// Extends a live lease; `None` when `lease` is not the current, unexpired one.
pub async fn renew(
    tx: &mut Tx,
    order: Uuid,
    agent: Uuid,
    lease: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<Option<RunRow>> {
    let sql = format!(
        "UPDATE work_runs SET lease_expires_at = $5 WHERE work_order_id = $1 AND agent_id = $2 \
         AND status = 'claimed' AND lease_id = $3 AND lease_expires_at >= $4 RETURNING {RUN_COLUMNS}"
    );
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(order).bind(agent).bind(lease).bind(now).bind(until)
        .fetch_optional(conn).await)?,
    )
}

/// How a run ends.
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    pub lease: Uuid,
    pub status: &'static str,
    pub message: Option<&'a str>,
    pub result: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Completes a run held under `lease` (a late completion after the lease ran out still counts
/// while nobody claimed it again).
pub async fn complete(
    tx: &mut Tx,
    order: Uuid,
    agent: Uuid,
    done: Completion<'_>,
) -> StoreResult<Option<RunRow>> {
    let sql = format!(
        "UPDATE work_runs SET status = $4, message = $5, result = $6, completed_at = $7, \
         lease_expires_at = NULL WHERE work_order_id = $1 AND agent_id = $2 \
         AND status = 'claimed' AND lease_id = $3 RETURNING {RUN_COLUMNS}"
    );
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(order).bind(agent).bind(done.lease).bind(done.status).bind(done.message)
        .bind(done.result).bind(done.at)
        .fetch_optional(conn).await)?,
    )
}

/// Cancels the pending runs of `order` (of `agent` only, when given); returns their agents.
pub async fn cancel_pending(
    tx: &mut Tx,
    order: Option<Uuid>,
    agent: Option<Uuid>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<(Uuid, Uuid)>> {
    const SQL: &str = "UPDATE work_runs SET status = 'cancelled', completed_at = $5 \
                       WHERE status = 'pending' AND ($1 OR work_order_id = $2) AND ($3 OR agent_id = $4) \
                       RETURNING work_order_id, agent_id";
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(order.is_none()).bind(order.unwrap_or_default())
        .bind(agent.is_none()).bind(agent.unwrap_or_default())
        .bind(now)
        .fetch_all(conn).await)?)
}

/// Whether any claimed run's lease ran out, and whether any order is past its time (reads, so
/// idle sweeps write nothing).
pub async fn sweep_due(db: &Db, now: DateTime<Utc>) -> StoreResult<(bool, bool)> {
    const LAPSED: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM work_runs WHERE status = 'claimed' \
                          AND lease_expires_at < $1 LIMIT 1) lapsed";
    const DUE: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM work_orders WHERE expires_at < $1 \
                       LIMIT 1) due";
    let lapsed: i64 =
        with_db!(db, pool => sqlx::query_scalar(LAPSED).bind(now).fetch_one(pool).await)?;
    let due: i64 = with_db!(db, pool => sqlx::query_scalar(DUE).bind(now).fetch_one(pool).await)?;
    Ok((lapsed > 0, due > 0))
}

/// Runs whose lease ran out go back to pending, or expire when no attempt is left.
pub async fn release_lapsed(tx: &mut Tx, now: DateTime<Utc>) -> StoreResult<Vec<RunRow>> {
    let sql = format!(
        "UPDATE work_runs SET status = CASE WHEN attempts >= max_attempts THEN 'expired' ELSE 'pending' END, \
         completed_at = CASE WHEN attempts >= max_attempts THEN $1 END, lease_id = NULL, \
         message = 'the lease ran out without a result' \
         WHERE status = 'claimed' AND lease_expires_at < $1 RETURNING {RUN_COLUMNS}"
    );
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(now).fetch_all(conn).await)?,
    )
}

/// Sets `expires_at` of `order` once none of its runs is open (and none was set).
pub async fn expire_when_done(tx: &mut Tx, order: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE work_orders SET expires_at = $2 WHERE id = $1 AND expires_at IS NULL \
                       AND NOT EXISTS (SELECT 1 FROM work_runs WHERE work_order_id = $1 \
                       AND status IN ('pending', 'claimed'))";
    with_tx!(tx, conn => sqlx::query(SQL).bind(order).bind(at).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Deletes orders (and their runs) whose time is up; returns the agents that still had a run
/// of them waiting or claimed.
pub async fn purge(tx: &mut Tx, now: DateTime<Utc>) -> StoreResult<Vec<Uuid>> {
    const OPEN: &str = "SELECT DISTINCT r.agent_id FROM work_runs r JOIN work_orders o \
                        ON o.id = r.work_order_id WHERE o.expires_at < $1 \
                        AND r.status IN ('pending', 'claimed')";
    const SQL: &str = "DELETE FROM work_orders WHERE expires_at < $1";
    let agents: Vec<Uuid> =
        with_tx!(tx, conn => sqlx::query_scalar(OPEN).bind(now).fetch_all(conn).await)?;
    with_tx!(tx, conn => sqlx::query(SQL).bind(now).execute(conn).await.map(|_| ()))?;
    Ok(agents)
}
