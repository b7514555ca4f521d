//! The audit log's hash chain: every entry stores the hash of the entry before it and its own,
//! computed over its content, so editing or removing an entry breaks every hash after it.
//! Write transactions are serialised (`BEGIN IMMEDIATE` on SQLite, an advisory lock taken at
//! `BEGIN` on PostgreSQL), so the chain never forks.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, with_db, with_tx};

/// The content an entry's hash covers.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    pub created_at: DateTime<Utc>,
    pub actor_type: &'a str,
    pub actor_id: Option<Uuid>,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<&'a str>,
    pub details: &'a str,
}

/// Hex SHA-256 of the previous hash and this entry's fields (each length-prefixed).
pub fn hash(prev: Option<&str>, content: &Content<'_>) -> String {
    let mut hasher = Sha256::new();
    let micros = content.created_at.timestamp_micros().to_string();
    let actor_id = content
        .actor_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    let fields = [
        prev.unwrap_or_default(),
        micros.as_str(),
        content.actor_type,
        actor_id.as_str(),
        content.action,
        content.resource_type,
        content.resource_id.unwrap_or_default(),
        content.details,
    ];
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The hash of the newest entry (inside the writing transaction).
pub async fn last_hash(tx: &mut Tx) -> StoreResult<Option<String>> {
    const SQL: &str = "SELECT hash FROM audit_logs ORDER BY id DESC LIMIT 1";
    let found: Option<Option<String>> =
        with_tx!(tx, conn => sqlx::query_scalar(SQL).fetch_optional(conn).await)?;
    Ok(found.flatten())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    created_at: DateTime<Utc>,
    actor_type: String,
    actor_id: Option<Uuid>,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    details: String,
    prev_hash: Option<String>,
    hash: Option<String>,
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// Entries whose hash was checked.
    pub checked: u64,
    /// Entries written before the log was chained (no hash).
    pub unchained: u64,
    /// The first entry whose hash or link does not match, if any.
    pub broken_at: Option<i64>,
}

/// Walks the whole log in order and recomputes every hash.
pub async fn verify(db: &Db) -> StoreResult<Verification> {
    const SQL: &str = "SELECT id, created_at, actor_type, actor_id, action, resource_type, resource_id, details, \
                       prev_hash, hash FROM audit_logs WHERE id > $1 ORDER BY id LIMIT 1000";
    let mut result = Verification {
        checked: 0,
        unchained: 0,
        broken_at: None,
    };
    let (mut after, mut prev): (i64, Option<String>) = (0, None);
    loop {
        let rows: Vec<Row> =
            with_db!(db, pool => sqlx::query_as(SQL).bind(after).fetch_all(pool).await)?;
        let Some(last) = rows.last() else {
            return Ok(result);
        };
        after = last.id;
        for row in rows {
            let Some(stored) = row.hash.as_deref() else {
                if result.checked > 0 {
                    result.broken_at = Some(row.id);
                    return Ok(result);
                }
                result.unchained += 1;
                continue;
            };
            let content = Content {
                created_at: row.created_at,
                actor_type: &row.actor_type,
                actor_id: row.actor_id,
                action: &row.action,
                resource_type: &row.resource_type,
                resource_id: row.resource_id.as_deref(),
                details: &row.details,
            };
            let linked = result.checked == 0 || row.prev_hash == prev;
            if !linked || hash(row.prev_hash.as_deref(), &content) != stored {
                result.broken_at = Some(row.id);
                return Ok(result);
            }
            result.checked += 1;
            prev = Some(stored.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_the_link_and_every_field() {
        let at = Utc::now();
        let content = Content {
            created_at: at,
            actor_type: "admin",
            actor_id: None,
            action: "a",
            resource_type: "r",
            resource_id: None,
            details: "{}",
        };
        let first = hash(None, &content);
        assert_eq!(first, hash(None, &content));
        assert_ne!(first, hash(Some("x"), &content));
        assert_ne!(
            first,
            hash(
                None,
                &Content {
                    action: "b",
                    ..content
                }
            )
        );
        assert_ne!(
            hash(
                None,
                &Content {
                    action: "ab",
                    resource_type: "",
                    ..content
                }
            ),
            hash(
                None,
                &Content {
                    action: "a",
                    resource_type: "b",
                    ..content
                }
            )
        );
    }
}
