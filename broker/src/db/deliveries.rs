//! Webhook deliveries: one row per (event, subscription). A claim leases due rows (status
//! `delivering`, `next_attempt_at` moved to the end of the lease, `attempts` counted), so a
//! replica that dies mid-delivery leaves them to be claimed again once the lease ends; on
//! PostgreSQL claims skip rows another replica holds. A completion only lands for the attempt
//! it reports, so a late answer never overwrites a newer claim.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Backend, Db, StoreResult, Tx, Window, with_db, with_tx};

/// Statuses a delivery can still be claimed in.
const OPEN: &str = "('pending', 'retrying', 'delivering')";

const COLUMNS: &str = "id, webhook_id, event_id, event_type, status, attempts, next_attempt_at, \
                       last_status_code, last_error, last_latency_ms, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A delivery to create.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: &'a str,
}

pub async fn insert_many(tx: &mut Tx, rows: &[NewDelivery<'_>]) -> StoreResult<()> {
    let now = Utc::now();
    for chunk in rows.chunks(500) {
        with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, status, attempts, \
                 next_attempt_at, created_at, updated_at) ",
            );
            b.push_values(chunk, |mut row, d| {
                row.push_bind(d.id)
                    .push_bind(d.webhook_id)
                    .push_bind(d.event_id)
                    .push_bind(d.event_type)
                    .push_bind("pending")
                    .push_bind(0i64)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(now);
            });
            b.build().execute(conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// What a claim asks for.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    /// Most deliveries per subscription.
    pub per_webhook: i64,
    /// Most deliveries in all.
    pub limit: i64,
    /// Subscriptions not to claim for (busy or failing here).
    pub excluded: &'a [Uuid],
}

/// Leases due deliveries, oldest first, at most `per_webhook` of each subscription.
pub async fn claim(tx: &mut Tx, claim: Claim<'_>) -> StoreResult<Vec<DeliveryRow>> {
    let backend = tx.backend();
    with_tx!(tx, conn => {
        let mut b = sqlx::QueryBuilder::new(format!(
            "WITH ranked AS (SELECT id, ROW_NUMBER() OVER (PARTITION BY webhook_id \
             ORDER BY next_attempt_at, id) AS n FROM webhook_deliveries \
             WHERE status IN {OPEN} AND next_attempt_at <= "
        ));
        b.push_bind(claim.now);
        // The due test is repeated on the locked rows: PostgreSQL re-checks it against a row
        // another replica claimed meanwhile, which then drops out.
        b.push(format!(
            "), picked AS (SELECT d.id FROM webhook_deliveries d JOIN ranked r ON r.id = d.id \
             WHERE d.status IN {OPEN} AND d.next_attempt_at <= "
        ));
        b.push_bind(claim.now);
        b.push(" AND r.n <= ").push_bind(claim.per_webhook);
        if !claim.excluded.is_empty() {
            b.push(" AND d.webhook_id NOT IN ");
            super::push_list(&mut b, claim.excluded.iter().copied());
        }
        b.push(" ORDER BY d.next_attempt_at LIMIT ").push_bind(claim.limit);
        if backend == Backend::Postgres {
            b.push(" FOR UPDATE OF d SKIP LOCKED");
        }
        b.push(") UPDATE webhook_deliveries SET status = 'delivering', attempts = attempts + 1, next_attempt_at = ");
        b.push_bind(claim.lease_until).push(", updated_at = ").push_bind(claim.now);
        b.push(format!(" WHERE id IN (SELECT id FROM picked) RETURNING {COLUMNS}"));
        b.build_query_as().fetch_all(conn).await
    })
    .map_err(Into::into)
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub struct Completion {
    pub id: Uuid,
    /// The attempt this reports (the claim's `attempts`).
    pub attempt: i64,
    /// `delivered`, `dropped`, `retrying` or `dead`.
    pub status: &'static str,
    pub next_attempt_at: DateTime<Utc>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
}

/// Records an attempt's outcome; `false` when a newer claim holds the delivery.
pub async fn complete(tx: &mut Tx, done: &Completion) -> StoreResult<bool> {
    const SQL: &str = "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, \
                       last_status_code = $5, last_error = $6, last_latency_ms = $7, updated_at = $8 \
                       WHERE id = $1 AND attempts = $2 AND status = 'delivering'";
    let n = with_tx!(tx, conn => sqlx::query(SQL)
        .bind(done.id)
        .bind(done.attempt)
        .bind(done.status)
        .bind(done.next_attempt_at)
        .bind(done.status_code)
        .bind(&done.error)
        .bind(done.latency_ms)
        .bind(Utc::now())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<DeliveryRow>> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1");
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await)?,
    )
}

pub async fn get_in(tx: &mut Tx, id: Uuid) -> StoreResult<Option<DeliveryRow>> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1");
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(conn).await)?,
    )
}

/// A subscription's deliveries, newest first, optionally of one status.
pub async fn list(
    db: &Db,
    webhook: Uuid,
    status: Option<&str>,
    window: Window,
) -> StoreResult<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND ($2 IS NULL OR status = $2) \
         ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
    );
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(webhook)
        .bind(status)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?,
    )
}

/// When the next open delivery falls due, if any.
pub async fn next_due(db: &Db) -> StoreResult<Option<DateTime<Utc>>> {
    let sql = format!("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status IN {OPEN}");
    Ok(
        with_db!(db, pool => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).fetch_one(pool).await)?,
    )
}

/// Deletes finished deliveries last changed before `cutoff`.
pub async fn prune(tx: &mut Tx, cutoff: DateTime<Utc>) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'dropped', 'dead') AND updated_at < $1";
    Ok(
        with_tx!(tx, conn => sqlx::query(SQL).bind(cutoff).execute(conn).await.map(|r| r.rows_affected()))?,
    )
}
