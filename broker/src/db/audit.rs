//! The append-only audit log (UPDATE and DELETE are refused by database triggers).

use brokkr_types::resources::AuditLogEntry;
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, Window, audit_chain, like_escape, with_db, with_tx};
use crate::domain::Principal;

/// Who did something: a principal, or the CLI on the broker host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub kind: &'static str,
    pub id: Option<Uuid>,
}

impl Actor {
    pub const CLI: Self = Self {
        kind: "cli",
        id: None,
    };
    pub const SYSTEM: Self = Self {
        kind: "system",
        id: None,
    };
    pub const ANONYMOUS: Self = Self {
        kind: "anonymous",
        id: None,
    };
}

impl From<Principal> for Actor {
    fn from(principal: Principal) -> Self {
        let (kind, id) = principal.actor();
        Self { kind, id }
    }
}

/// One audit record to write.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub actor: Actor,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<String>,
    pub details: serde_json::Value,
}

/// Appends an entry, chained to the one before it.
pub async fn record(tx: &mut Tx, record: Record<'_>) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO audit_logs (created_at, actor_type, actor_id, action, resource_type, \
                       resource_id, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    let details = record.details.to_string();
    let content = audit_chain::Content {
        created_at: Utc::now().trunc_subsecs(6),
        actor_type: record.actor.kind,
        actor_id: record.actor.id,
        action: record.action,
        resource_type: record.resource_type,
        resource_id: record.resource_id.as_deref(),
        details: &details,
    };
    let prev = audit_chain::last_hash(tx).await?;
    let hash = audit_chain::hash(prev.as_deref(), &content);
    with_tx!(tx, conn => sqlx::query(SQL)
        .bind(content.created_at)
        .bind(content.actor_type)
        .bind(content.actor_id)
        .bind(content.action)
        .bind(content.resource_type)
        .bind(content.resource_id)
        .bind(content.details)
        .bind(prev.as_deref())
        .bind(&hash)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Filters of the audit-log query. `action` ending in `*` matches by prefix (`pak.*`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor_type: Option<String>,
    pub actor_id: Option<Uuid>,
}

impl Filter {
    fn action_pattern(&self) -> Option<String> {
        self.action
            .as_deref()
            .map(|action| match action.strip_suffix('*') {
                Some(prefix) => format!("{}%", like_escape(prefix)),
                None => like_escape(action),
            })
    }
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
}

impl From<Row> for AuditLogEntry {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            created_at: r.created_at,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Entries matching `filter`, newest first.
pub async fn query(db: &Db, filter: &Filter, window: Window) -> StoreResult<Vec<AuditLogEntry>> {
    const SQL: &str = "SELECT id, created_at, actor_type, actor_id, action, resource_type, resource_id, details \
                       FROM audit_logs WHERE ($1 IS NULL OR action LIKE $1 ESCAPE '\\') \
                       AND ($2 IS NULL OR actor_type = $2) AND ($3 IS NULL OR actor_id = $3) \
                       ORDER BY id DESC LIMIT $4 OFFSET $5";
    let rows: Vec<Row> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(filter.action_pattern())
        .bind(filter.actor_type.as_deref())
        .bind(filter.actor_id)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}
