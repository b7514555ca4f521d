//! Agent events, stored once per `(agent, idempotency key)`.

use brokkr_types::requests::NewAgentEvent;
use brokkr_types::resources::{AgentEvent, EventStatus, EventType};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, Window, with_db, with_tx};

macro_rules! columns {
    () => {
        "id, agent_id, deployment_object_id, stack_id, idempotency_key, event_type, status, message, created_at"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    agent_id: Uuid,
    deployment_object_id: Option<Uuid>,
    stack_id: Option<Uuid>,
    idempotency_key: String,
    event_type: String,
    status: String,
    message: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Row> for AgentEvent {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            agent_id: r.agent_id,
            deployment_object_id: r.deployment_object_id,
            stack_id: r.stack_id,
            idempotency_key: r.idempotency_key,
            event_type: EventType::parse(&r.event_type).unwrap_or(EventType::Apply),
            status: EventStatus::parse(&r.status).unwrap_or(EventStatus::Failure),
            message: r.message,
            created_at: r.created_at,
        }
    }
}

/// Stores an event unless one with the same idempotency key exists; returns the stored event
/// and whether this call created it.
pub async fn record(
    tx: &mut Tx,
    agent_id: Uuid,
    stack_id: Option<Uuid>,
    event: &NewAgentEvent,
) -> StoreResult<(AgentEvent, bool)> {
    const INSERT: &str = concat!(
        "INSERT INTO agent_events (id, agent_id, deployment_object_id, stack_id, idempotency_key, ",
        "event_type, status, message, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ",
        "ON CONFLICT (agent_id, idempotency_key) DO NOTHING RETURNING ",
        columns!()
    );
    const EXISTING: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM agent_events WHERE agent_id = $1 AND idempotency_key = $2"
    );
    let inserted: Option<Row> = with_tx!(tx, conn => sqlx::query_as(INSERT)
        .bind(Uuid::new_v4())
        .bind(agent_id)
        .bind(event.deployment_object_id)
        .bind(stack_id)
        .bind(event.idempotency_key.as_str())
        .bind(event.event_type.as_str())
        .bind(event.status.as_str())
        .bind(event.message.as_ref().map(|m| m.as_str()))
        .bind(Utc::now())
        .fetch_optional(conn)
        .await)?;
    if let Some(row) = inserted {
        return Ok((row.into(), true));
    }
    let row: Row = with_tx!(tx, conn => sqlx::query_as(EXISTING)
        .bind(agent_id)
        .bind(event.idempotency_key.as_str())
        .fetch_one(conn)
        .await)?;
    Ok((row.into(), false))
}

/// Events of an agent, newest first; optionally only those about one generator's stacks.
pub async fn list_for_agent(
    db: &Db,
    agent_id: Uuid,
    generator: Option<Uuid>,
    window: Window,
) -> StoreResult<Vec<AgentEvent>> {
    const SQL: &str = "SELECT e.id, e.agent_id, e.deployment_object_id, e.stack_id, e.idempotency_key, \
                       e.event_type, e.status, e.message, e.created_at FROM agent_events e \
                       LEFT JOIN stacks s ON s.id = e.stack_id \
                       WHERE e.agent_id = $1 AND ($2 IS NULL OR s.generator_id = $2) \
                       ORDER BY e.created_at DESC, e.id DESC LIMIT $3 OFFSET $4";
    let rows: Vec<Row> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(agent_id)
        .bind(generator)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Events about one stack, newest first; with `only_reach_of`, only those of agents inside
/// that generator's reach.
pub async fn list_for_stack(
    db: &Db,
    stack_id: Uuid,
    only_reach_of: Option<Uuid>,
    window: Window,
) -> StoreResult<Vec<AgentEvent>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM agent_events WHERE stack_id = $1 AND ($2 IS NULL OR agent_id IN ",
        "(SELECT agent_id FROM reach WHERE generator_id = $2)) ",
        "ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    );
    let rows: Vec<Row> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(stack_id)
        .bind(only_reach_of)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}
