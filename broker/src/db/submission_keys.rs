//! Idempotency keys of deployment-object submissions, per stack, kept for a day.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{StoreResult, Tx, with_tx};

/// How long a key is remembered.
pub fn lifetime() -> Duration {
    Duration::hours(24)
}

/// A remembered submission: the checksum of its body and the object it stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Remembered {
    pub body_sha256: String,
    pub deployment_object_id: Uuid,
}

/// The live submission under `key` for `stack`, forgetting the stack's expired keys first.
pub async fn find(tx: &mut Tx, stack: Uuid, key: &str) -> StoreResult<Option<Remembered>> {
    const EXPIRE: &str = "DELETE FROM submission_keys WHERE stack_id = $1 AND created_at < $2";
    const FIND: &str = "SELECT body_sha256, deployment_object_id FROM submission_keys \
                        WHERE stack_id = $1 AND key = $2";
    let cutoff: DateTime<Utc> = Utc::now() - lifetime();
    with_tx!(tx, conn => sqlx::query(EXPIRE).bind(stack).bind(cutoff).execute(conn).await.map(|_| ()))?;
    Ok(with_tx!(tx, conn => sqlx::query_as(FIND).bind(stack).bind(key).fetch_optional(conn).await)?)
}

/// Remembers a submission.
pub async fn remember(
    tx: &mut Tx,
    stack: Uuid,
    key: &str,
    remembered: &Remembered,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO submission_keys (stack_id, key, body_sha256, deployment_object_id, \
                       created_at) VALUES ($1, $2, $3, $4, $5)";
    with_tx!(tx, conn => sqlx::query(SQL)
        .bind(stack)
        .bind(key)
        .bind(&remembered.body_sha256)
        .bind(remembered.deployment_object_id)
        .bind(Utc::now())
        .execute(conn)
        .await
        .map(|_| ()))?;
    Ok(())
}
