//! PAK credentials: one row per principal, looked up by short token.

use chrono::Utc;
use uuid::Uuid;

use super::{Db, StoreResult, Tx, with_db, with_tx};
use crate::domain::Principal;

/// The PostgreSQL channel whose payload is a short token to drop from every cache.
pub const INVALIDATION_CHANNEL: &str = "brokkr_pak_invalidated";

/// What is stored of a PAK: its short token and SHA-256 of its long token.
#[derive(Debug, Clone, Copy)]
pub struct StoredPak<'a> {
    pub short: &'a str,
    pub long_hash: &'a [u8],
}

/// What the authentication cache needs to check a presented PAK.
#[derive(Debug, Clone)]
pub struct Credential {
    pub long_hash: Vec<u8>,
    pub principal: Principal,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    long_hash: Vec<u8>,
    principal_type: String,
    principal_id: Uuid,
}

/// Finds the credential of a short token.
pub async fn find(db: &Db, short: &str) -> StoreResult<Option<Credential>> {
    const SQL: &str = "SELECT long_hash, principal_type, principal_id FROM pak_credentials \
                       WHERE short_token = $1";
    let row: Option<CredentialRow> =
        with_db!(db, pool => sqlx::query_as(SQL).bind(short).fetch_optional(pool).await)?;
    Ok(row.and_then(|r| {
        Principal::from_parts(&r.principal_type, r.principal_id).map(|principal| Credential {
            long_hash: r.long_hash,
            principal,
        })
    }))
}

/// Stores `new` as the principal's only credential; returns the replaced short token, if any.
pub async fn replace(
    tx: &mut Tx,
    principal: Principal,
    new: StoredPak<'_>,
) -> StoreResult<Option<String>> {
    let old = remove(tx, principal).await?;
    insert(tx, principal, new).await?;
    Ok(old)
}

/// Inserts a credential; fails with a conflict if the principal already has one.
pub async fn insert(tx: &mut Tx, principal: Principal, new: StoredPak<'_>) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO pak_credentials \
                       (short_token, long_hash, principal_type, principal_id, created_at) \
                       VALUES ($1, $2, $3, $4, $5)";
    let (kind, id) = principal.parts();
    with_tx!(tx, conn => sqlx::query(SQL)
        .bind(new.short)
        .bind(new.long_hash)
        .bind(kind)
        .bind(id)
        .bind(Utc::now())
        .execute(conn).await.map(|r| r.rows_affected()))
    .map_err(|e| super::StoreError::unique(e, "principal already has a credential"))?;
    Ok(())
}

/// Deletes the principal's credential; returns its short token so caches can drop it.
pub async fn remove(tx: &mut Tx, principal: Principal) -> StoreResult<Option<String>> {
    const SQL: &str = "DELETE FROM pak_credentials WHERE principal_type = $1 AND principal_id = $2 \
                       RETURNING short_token";
    let (kind, id) = principal.parts();
    let old: Option<String> = with_tx!(tx, conn => sqlx::query_scalar(SQL)
        .bind(kind)
        .bind(id)
        .fetch_optional(conn)
        .await)?;
    Ok(old)
}

/// Creates the admin credential unless one exists. Returns whether it was created.
pub async fn insert_admin_if_absent(tx: &mut Tx, new: StoredPak<'_>) -> StoreResult<bool> {
    const SQL: &str = "INSERT INTO pak_credentials \
                       (short_token, long_hash, principal_type, principal_id, created_at) \
                       VALUES ($1, $2, 'admin', $3, $4) \
                       ON CONFLICT (principal_type, principal_id) DO NOTHING";
    let result = with_tx!(tx, conn => sqlx::query(SQL)
        .bind(new.short)
        .bind(new.long_hash)
        .bind(Uuid::nil())
        .bind(Utc::now())
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(result == 1)
}

/// Asks every broker replica to drop `short` from its authentication cache (PostgreSQL only;
/// delivered when the transaction commits).
pub async fn notify_invalidation(tx: &mut Tx, short: &str) -> StoreResult<()> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(INVALIDATION_CHANNEL)
            .bind(short)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}
