//! Webhook subscriptions and their signing secrets. Secret columns (`url_query`, `headers`,
//! `webhook_secrets.secret`) hold values sealed by the key ring; `key_id` names the key.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreError, StoreResult, Tx, Window, with_db, with_tx};

/// A stored subscription (secret columns still sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub generator_id: Option<Uuid>,
    pub name: String,
    pub url: String,
    pub url_query: Option<String>,
    /// JSON array of patterns.
    pub event_types: String,
    pub filter: Option<String>,
    /// JSON array of header names.
    pub header_names: String,
    pub headers: Option<String>,
    pub key_id: Option<String>,
    pub notifier_plugin_id: Option<Uuid>,
    pub max_attempts: i64,
    pub timeout_seconds: i64,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored signing secret (sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecretRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub secret: String,
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, generator_id, name, url, url_query, event_types, filter, header_names, \
                       headers, key_id, notifier_plugin_id, max_attempts, timeout_seconds, enabled, \
                       created_at, updated_at";

fn name_taken(err: sqlx::Error, name: &str) -> StoreError {
    StoreError::unique(err, &format!("a webhook named {name:?} already exists"))
}

pub async fn insert(tx: &mut Tx, row: &WebhookRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO webhooks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    with_tx!(tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(row.id)
        .bind(row.generator_id)
        .bind(&row.name)
        .bind(&row.url)
        .bind(&row.url_query)
        .bind(&row.event_types)
        .bind(&row.filter)
        .bind(&row.header_names)
        .bind(&row.headers)
        .bind(&row.key_id)
        .bind(row.notifier_plugin_id)
        .bind(row.max_attempts)
        .bind(row.timeout_seconds)
        .bind(row.enabled)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(conn)
        .await
        .map(|_| ()))
    .map_err(|e| name_taken(e, &row.name))
}

/// Writes every changeable column of `row` (ownership and creation never change).
pub async fn update(tx: &mut Tx, row: &WebhookRow) -> StoreResult<()> {
    const SQL: &str = "UPDATE webhooks SET name = $2, url = $3, url_query = $4, event_types = $5, \
                       filter = $6, header_names = $7, headers = $8, key_id = $9, \
                       notifier_plugin_id = $10, max_attempts = $11, timeout_seconds = $12, \
                       enabled = $13, updated_at = $14 WHERE id = $1 AND deleted_at IS NULL";
    with_tx!(tx, conn => sqlx::query(SQL)
        .bind(row.id)
        .bind(&row.name)
        .bind(&row.url)
        .bind(&row.url_query)
        .bind(&row.event_types)
        .bind(&row.filter)
        .bind(&row.header_names)
        .bind(&row.headers)
        .bind(&row.key_id)
        .bind(row.notifier_plugin_id)
        .bind(row.max_attempts)
        .bind(row.timeout_seconds)
        .bind(row.enabled)
        .bind(row.updated_at)
        .execute(conn)
        .await
        .map(|_| ()))
    .map_err(|e| name_taken(e, &row.name))
}

/// Marks the subscription's row changed (its secrets were rotated).
pub async fn touch(tx: &mut Tx, id: Uuid) -> StoreResult<()> {
    const SQL: &str = "UPDATE webhooks SET updated_at = $2 WHERE id = $1";
    with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(Utc::now()).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Soft-deletes a subscription; `false` when it was already gone.
pub async fn delete(tx: &mut Tx, id: Uuid) -> StoreResult<bool> {
    const SQL: &str =
        "UPDATE webhooks SET deleted_at = $2, enabled = FALSE WHERE id = $1 AND deleted_at IS NULL";
    let n = with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(Utc::now()).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<WebhookRow>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND deleted_at IS NULL");
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await)?,
    )
}

pub async fn get_in(tx: &mut Tx, id: Uuid) -> StoreResult<Option<WebhookRow>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND deleted_at IS NULL");
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(conn).await)?,
    )
}

/// The live subscriptions among `ids`.
pub async fn get_many(db: &Db, ids: &[Uuid]) -> StoreResult<Vec<WebhookRow>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<WebhookRow> = with_db!(db, pool => {
            let mut b = sqlx::QueryBuilder::new(format!(
                "SELECT {COLUMNS} FROM webhooks WHERE deleted_at IS NULL AND id IN "
            ));
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(pool).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// Soft-deletes every subscription of a generator (it was deleted).
pub async fn delete_of_generator(tx: &mut Tx, generator: Uuid) -> StoreResult<()> {
    const SQL: &str = "UPDATE webhooks SET deleted_at = $2, enabled = FALSE \
                       WHERE generator_id = $1 AND deleted_at IS NULL";
    with_tx!(tx, conn => sqlx::query(SQL).bind(generator).bind(Utc::now()).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Subscriptions by name; `owner: None` lists every one (admins), `Some(g)` those of `g`.
pub async fn list(db: &Db, owner: Option<Uuid>, window: Window) -> StoreResult<Vec<WebhookRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks WHERE deleted_at IS NULL AND ($1 IS NULL OR generator_id = $1) \
         ORDER BY name, id LIMIT $2 OFFSET $3"
    );
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(owner)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?,
    )
}

/// Every enabled subscription (for matching events).
pub async fn enabled_in(tx: &mut Tx) -> StoreResult<Vec<WebhookRow>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE deleted_at IS NULL AND enabled");
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).fetch_all(conn).await)?,
    )
}

pub async fn insert_secret(tx: &mut Tx, row: &SecretRow) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO webhook_secrets (id, webhook_id, secret, key_id, created_at, expires_at) \
                       VALUES ($1, $2, $3, $4, $5, $6)";
    with_tx!(tx, conn => sqlx::query(SQL)
        .bind(row.id)
        .bind(row.webhook_id)
        .bind(&row.secret)
        .bind(&row.key_id)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(conn)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Sets `expires_at` on the subscription's secrets that do not expire yet, and deletes those
/// that expired before `now`.
pub async fn expire_secrets(
    tx: &mut Tx,
    webhook: Uuid,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    const EXPIRE: &str =
        "UPDATE webhook_secrets SET expires_at = $2 WHERE webhook_id = $1 AND expires_at IS NULL";
    const DROP: &str = "DELETE FROM webhook_secrets WHERE webhook_id = $1 AND expires_at <= $2";
    with_tx!(tx, conn => sqlx::query(EXPIRE).bind(webhook).bind(at).execute(conn).await.map(|_| ()))?;
    with_tx!(tx, conn => sqlx::query(DROP).bind(webhook).bind(now).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// The secrets of a subscription, newest first (expired ones included; callers filter).
pub async fn secrets_of(db: &Db, webhook: Uuid) -> StoreResult<Vec<SecretRow>> {
    const SQL: &str = "SELECT id, webhook_id, secret, key_id, created_at, expires_at FROM webhook_secrets \
                       WHERE webhook_id = $1 ORDER BY created_at DESC";
    Ok(with_db!(db, pool => sqlx::query_as(SQL).bind(webhook).fetch_all(pool).await)?)
}

/// Every key id that sealed something still stored.
pub async fn key_ids_in_use(db: &Db) -> StoreResult<Vec<String>> {
    const SQL: &str = "SELECT key_id FROM webhooks WHERE key_id IS NOT NULL \
                       UNION SELECT key_id FROM webhook_secrets";
    Ok(with_db!(db, pool => sqlx::query_scalar(SQL).fetch_all(pool).await)?)
}

/// Up to `limit` subscriptions (deleted ones included) sealed with another key than `active`.
pub async fn sealed_with_other_key(
    tx: &mut Tx,
    active: &str,
    limit: i64,
) -> StoreResult<Vec<WebhookRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks WHERE key_id IS NOT NULL AND key_id <> $1 LIMIT $2"
    );
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(active).bind(limit).fetch_all(conn).await)?,
    )
}

/// Up to `limit` secrets sealed with another key than `active`.
pub async fn secrets_with_other_key(
    tx: &mut Tx,
    active: &str,
    limit: i64,
) -> StoreResult<Vec<SecretRow>> {
    const SQL: &str = "SELECT id, webhook_id, secret, key_id, created_at, expires_at FROM webhook_secrets \
                       WHERE key_id <> $1 LIMIT $2";
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).bind(active).bind(limit).fetch_all(conn).await)?)
}

/// Replaces a subscription's sealed columns.
pub async fn reseal(
    tx: &mut Tx,
    id: Uuid,
    url_query: Option<&str>,
    headers: Option<&str>,
    key_id: &str,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE webhooks SET url_query = $2, headers = $3, key_id = $4 WHERE id = $1";
    with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(url_query).bind(headers).bind(key_id).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// Replaces a secret's sealed value.
pub async fn reseal_secret(tx: &mut Tx, id: Uuid, secret: &str, key_id: &str) -> StoreResult<()> {
    const SQL: &str = "UPDATE webhook_secrets SET secret = $2, key_id = $3 WHERE id = $1";
    with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(secret).bind(key_id).execute(conn).await.map(|_| ()))?;
    Ok(())
}
