//! The transactional outbox: domain events written in the transaction of the change they
//! report, claimed once for fan-out (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas
//! share the work), then kept for redelivery until pruned.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Backend, Db, StoreResult, Tx, with_db, with_tx};

/// Rows per multi-row insert (7 parameters each, within SQLite's limit).
const CHUNK: usize = 1000;

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: &'static str,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
    pub generator_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub webhook_id: Option<Uuid>,
}

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub data: String,
    pub generator_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub webhook_id: Option<Uuid>,
}

const COLUMNS: &str = "seq, id, event_type, occurred_at, data, generator_id, agent_id, webhook_id";

/// Appends events in the caller's transaction (on PostgreSQL, one statement binding a column
/// array each; on SQLite, multi-row inserts).
pub async fn append(tx: &mut Tx, events: &[NewEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let t = match tx {
        Tx::Postgres(t) => t,
        Tx::Sqlite(t) => return append_rows(t, events).await,
    };
    const SQL: &str = "INSERT INTO outbox_events \
                       (id, event_type, occurred_at, data, generator_id, agent_id, webhook_id) \
                       SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], \
                       $5::uuid[], $6::uuid[], $7::uuid[])";
    let column = |f: fn(&NewEvent) -> Option<Uuid>| events.iter().map(f).collect::<Vec<_>>();
    sqlx::query(SQL)
        .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.data.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(column(|e| e.generator_id))
        .bind(column(|e| e.agent_id))
        .bind(column(|e| e.webhook_id))
        .execute(&mut **t)
        .await?;
    Ok(())
}

async fn append_rows(
    t: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    events: &[NewEvent],
) -> StoreResult<()> {
    for chunk in events.chunks(CHUNK) {
        let mut b = sqlx::QueryBuilder::new(
            "INSERT INTO outbox_events (id, event_type, occurred_at, data, generator_id, agent_id, webhook_id) ",
        );
        b.push_values(chunk, |mut row, e| {
            row.push_bind(e.id)
                .push_bind(e.event_type)
                .push_bind(e.occurred_at)
                .push_bind(e.data.to_string())
                .push_bind(e.generator_id)
                .push_bind(e.agent_id)
                .push_bind(e.webhook_id);
        });
        b.build().execute(&mut **t).await?;
    }
    Ok(())
}

/// The PostgreSQL channel that wakes every replica's dispatcher when events are committed.
pub const OUTBOX_CHANNEL: &str = "brokkr_outbox";

/// Tells other replicas, once the transaction commits, that events wait (PostgreSQL only).
pub async fn notify(tx: &mut Tx) -> StoreResult<()> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(OUTBOX_CHANNEL)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Locks up to `limit` events not yet fanned out, oldest first; on PostgreSQL events another
/// replica holds are skipped (SQLite has one writer at a time).
pub async fn claim_undispatched(tx: &mut Tx, limit: i64) -> StoreResult<Vec<StoredEvent>> {
    const PG: &str = "SELECT seq, id, event_type, occurred_at, data, generator_id, agent_id, webhook_id \
                      FROM outbox_events WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1 \
                      FOR UPDATE SKIP LOCKED";
    const LITE: &str = "SELECT seq, id, event_type, occurred_at, data, generator_id, agent_id, webhook_id \
                        FROM outbox_events WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1";
    let sql = match tx.backend() {
        Backend::Postgres => PG,
        Backend::Sqlite => LITE,
    };
    Ok(with_tx!(tx, conn => sqlx::query_as(sql).bind(limit).fetch_all(conn).await)?)
}

/// Marks events as fanned out.
pub async fn mark_dispatched(tx: &mut Tx, seqs: &[i64]) -> StoreResult<()> {
    let now = Utc::now();
    for chunk in seqs.chunks(CHUNK) {
        with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new("UPDATE outbox_events SET dispatched_at = ");
            b.push_bind(now).push(" WHERE seq IN ");
            super::push_list(&mut b, chunk.iter().copied());
            b.build().execute(conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// Whether any event waits for fan-out.
pub async fn any_undispatched(db: &Db) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM outbox_events WHERE dispatched_at IS NULL LIMIT 1) AS t";
    let n: i64 = with_db!(db, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?;
    Ok(n > 0)
}

/// One event by id.
pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<StoredEvent>> {
    let sql = format!("SELECT {COLUMNS} FROM outbox_events WHERE id = $1");
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await)?,
    )
}

/// Several events by id.
pub async fn get_many(db: &Db, ids: &[Uuid]) -> StoreResult<Vec<StoredEvent>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<StoredEvent> = with_db!(db, pool => {
            let mut b = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM outbox_events WHERE id IN "));
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(pool).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// Deletes fanned-out events older than `cutoff` that no delivery refers to any more.
pub async fn prune(tx: &mut Tx, cutoff: DateTime<Utc>) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM outbox_events WHERE dispatched_at < $1 AND NOT EXISTS \
                       (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = outbox_events.id)";
    Ok(
        with_tx!(tx, conn => sqlx::query(SQL).bind(cutoff).execute(conn).await.map(|r| r.rows_affected()))?,
    )
}
