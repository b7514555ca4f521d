//! Web console sessions: stored by the SHA-256 of their id, with the principal they act as,
//! their CSRF token, and their idle and absolute ends.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, with_db, with_tx};

/// A stored session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub principal_kind: String,
    pub principal_id: Option<Uuid>,
    pub principal_name: String,
    pub csrf_token: String,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A new session.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub id_hash: &'a [u8],
    pub principal_kind: &'static str,
    pub principal_id: Option<Uuid>,
    pub principal_name: &'a str,
    pub csrf_token: &'a str,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(db: &Db, new: &NewSession<'_>) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO ui_sessions (id_hash, principal_kind, principal_id, principal_name, \
                       csrf_token, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)";
    with_db!(db, pool => sqlx::query(SQL)
        .bind(new.id_hash)
        .bind(new.principal_kind)
        .bind(new.principal_id)
        .bind(new.principal_name)
        .bind(new.csrf_token)
        .bind(new.now)
        .bind(new.expires_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

pub async fn get(db: &Db, id_hash: &[u8]) -> StoreResult<Option<SessionRow>> {
    const SQL: &str = "SELECT principal_kind, principal_id, principal_name, csrf_token, last_seen_at, expires_at \
                       FROM ui_sessions WHERE id_hash = $1";
    Ok(with_db!(db, pool => sqlx::query_as(SQL).bind(id_hash).fetch_optional(pool).await)?)
}

/// Records activity (the idle clock starts again).
pub async fn touch(db: &Db, id_hash: &[u8], now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE ui_sessions SET last_seen_at = $2 WHERE id_hash = $1";
    with_db!(db, pool => sqlx::query(SQL).bind(id_hash).bind(now).execute(pool).await.map(|_| ()))?;
    Ok(())
}

pub async fn delete(db: &Db, id_hash: &[u8]) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM ui_sessions WHERE id_hash = $1";
    with_db!(db, pool => sqlx::query(SQL).bind(id_hash).execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Ends, inside `tx`, every console session of a principal whose PAK stopped being valid
/// (rotated, revoked, or its generator deleted): `Some(generator)`, or `None` for the admin.
pub async fn end_for(tx: &mut Tx, generator: Option<Uuid>) -> StoreResult<u64> {
    const GENERATOR: &str =
        "DELETE FROM ui_sessions WHERE principal_kind = 'generator' AND principal_id = $1";
    const ADMIN: &str = "DELETE FROM ui_sessions WHERE principal_kind = 'admin'";
    let done = match generator {
        Some(id) => {
            with_tx!(tx, conn => sqlx::query(GENERATOR).bind(id).execute(conn).await.map(|r| r.rows_affected()))?
        }
        None => {
            with_tx!(tx, conn => sqlx::query(ADMIN).execute(conn).await.map(|r| r.rows_affected()))?
        }
    };
    Ok(done)
}

/// Removes sessions past their absolute end or idle since before `idle_since`.
pub async fn delete_expired(
    db: &Db,
    now: DateTime<Utc>,
    idle_since: DateTime<Utc>,
) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM ui_sessions WHERE expires_at < $1 OR last_seen_at < $2";
    let done = with_db!(db, pool => sqlx::query(SQL).bind(now).bind(idle_since).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(done)
}
