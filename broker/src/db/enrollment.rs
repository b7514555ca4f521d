//! Agent enrollment tokens: only SHA-256 of a token's secret part is stored; a use is taken
//! atomically (`uses_left` never goes below zero, whatever runs at the same time).

use brokkr_types::enrollment::EnrollmentToken;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, Window, with_db, with_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: Uuid,
    pub token_hash: Vec<u8>,
    pub name_prefix: String,
    pub labels: String,
    pub annotations: String,
    pub uses_left: i64,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub reach_generators: String,
}

impl TokenRow {
    /// The generators whose reach agents enrolled with this token join.
    pub fn reach_generators(&self) -> Vec<Uuid> {
        serde_json::from_str(&self.reach_generators).unwrap_or_default()
    }

    pub fn shown(&self) -> EnrollmentToken {
        EnrollmentToken {
            id: self.id,
            name_prefix: self.name_prefix.clone(),
            labels: serde_json::from_str(&self.labels).unwrap_or_default(),
            annotations: serde_json::from_str(&self.annotations).unwrap_or_default(),
            uses_left: u32::try_from(self.uses_left).unwrap_or(0),
            expires_at: self.expires_at,
            revoked: self.revoked_at.is_some(),
            created_at: self.created_at,
            reach_generators: self.reach_generators(),
        }
    }
}

const COLUMNS: &str = "id, token_hash, name_prefix, labels, annotations, uses_left, expires_at, \
                       revoked_at, created_at, reach_generators";

/// A new token's fields.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    pub short: &'a str,
    pub token_hash: &'a [u8],
    pub name_prefix: &'a str,
    pub labels: &'a str,
    pub annotations: &'a str,
    pub uses: i64,
    pub expires_at: DateTime<Utc>,
    pub reach_generators: &'a str,
}

pub async fn insert(tx: &mut Tx, new: NewToken<'_>) -> StoreResult<TokenRow> {
    let sql = format!(
        "INSERT INTO enrollment_tokens (id, short_token, token_hash, name_prefix, labels, annotations, \
         uses_left, expires_at, created_at, reach_generators) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING {COLUMNS}"
    );
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(Uuid::new_v4())
        .bind(new.short)
        .bind(new.token_hash)
        .bind(new.name_prefix)
        .bind(new.labels)
        .bind(new.annotations)
        .bind(new.uses)
        .bind(new.expires_at)
        .bind(Utc::now())
        .bind(new.reach_generators)
        .fetch_one(conn)
        .await)?,
    )
}

/// Takes one use of the token with this short part if it is still usable at `now`; returns it
/// (with the use taken) or `None`.
pub async fn take_use(
    tx: &mut Tx,
    short: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<TokenRow>> {
    let sql = format!(
        "UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE short_token = $1 \
         AND uses_left > 0 AND revoked_at IS NULL AND expires_at > $2 RETURNING {COLUMNS}"
    );
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(short).bind(now).fetch_optional(conn).await)?,
    )
}

pub async fn list(db: &Db, window: Window) -> StoreResult<Vec<TokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM enrollment_tokens ORDER BY created_at DESC, id LIMIT $1 OFFSET $2"
    );
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?,
    )
}

/// Revokes a token; `false` when there is no such usable token.
pub async fn revoke(tx: &mut Tx, id: Uuid) -> StoreResult<bool> {
    const SQL: &str =
        "UPDATE enrollment_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    let n = with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(Utc::now()).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}
