//! Direct assignments of stacks to agents, each remembering whether an admin or the owning
//! generator made it.

use std::collections::HashSet;

use brokkr_types::resources::AgentTarget;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, Window, with_db, with_tx};

#[derive(sqlx::FromRow)]
struct Row {
    agent_id: Uuid,
    stack_id: Uuid,
    assigned_by: String,
    created_at: DateTime<Utc>,
}

impl From<Row> for AgentTarget {
    fn from(r: Row) -> Self {
        Self {
            agent_id: r.agent_id,
            stack_id: r.stack_id,
            assigned_by: r.assigned_by,
            created_at: r.created_at,
        }
    }
}

/// Assigns a stack to an agent; returns the assignment and whether it is new. An admin's
/// assignment of a pair the generator assigned makes it the admin's; never the reverse.
pub async fn add(
    tx: &mut Tx,
    agent_id: Uuid,
    stack_id: Uuid,
    by_admin: bool,
) -> StoreResult<(AgentTarget, bool)> {
    const INSERT: &str = "INSERT INTO agent_targets (agent_id, stack_id, assigned_by, created_at) \
                          VALUES ($1, $2, $3, $4) ON CONFLICT (agent_id, stack_id) DO UPDATE \
                          SET assigned_by = CASE WHEN excluded.assigned_by = 'admin' THEN 'admin' \
                          ELSE agent_targets.assigned_by END \
                          RETURNING agent_id, stack_id, assigned_by, created_at";
    const GET: &str = "SELECT agent_id, stack_id, assigned_by, created_at FROM agent_targets \
                       WHERE agent_id = $1 AND stack_id = $2";
    let existed: Option<Row> = with_tx!(tx, conn => sqlx::query_as(GET).bind(agent_id).bind(stack_id).fetch_optional(conn).await)?;
    let by = if by_admin { "admin" } else { "generator" };
    let row: Row = with_tx!(tx, conn => sqlx::query_as(INSERT)
        .bind(agent_id)
        .bind(stack_id)
        .bind(by)
        .bind(Utc::now())
        .fetch_one(conn).await)?;
    Ok((row.into(), existed.is_none()))
}

/// Ids per statement of the bulk forms (well inside both backends' bind limits).
const CHUNK: usize = 1000;

/// Which of `ids` are registered agents.
pub async fn existing_agents(tx: &mut Tx, ids: &[Uuid]) -> StoreResult<HashSet<Uuid>> {
    let mut found = HashSet::with_capacity(ids.len());
    match tx {
        Tx::Postgres(t) => {
            const SQL: &str = "SELECT id FROM agents WHERE deleted_at IS NULL AND id = ANY($1)";
            let rows: Vec<Uuid> = sqlx::query_scalar(SQL)
                .bind(ids)
                .fetch_all(&mut **t)
                .await?;
            found.extend(rows);
        }
        Tx::Sqlite(t) => {
            for chunk in ids.chunks(CHUNK) {
                let mut b = sqlx::QueryBuilder::new(
                    "SELECT id FROM agents WHERE deleted_at IS NULL AND id IN ",
                );
                super::push_list(&mut b, chunk.iter().copied());
                let rows: Vec<Uuid> = b.build_query_scalar().fetch_all(&mut **t).await?;
                found.extend(rows);
            }
        }
    }
    Ok(found)
}

/// Assigns `stack_id` to every agent of `agents` (registered, distinct) in a few statements;
/// returns how many assignments are new. As with [`add`], an admin's assignment makes an
/// existing pair the admin's.
pub async fn add_many(
    tx: &mut Tx,
    stack_id: Uuid,
    agents: &[Uuid],
    by_admin: bool,
) -> StoreResult<u64> {
    let by = if by_admin { "admin" } else { "generator" };
    let now = Utc::now();
    let t = match tx {
        Tx::Postgres(t) => t,
        Tx::Sqlite(t) => return add_rows(t, stack_id, agents, (by, now)).await,
    };
    // A row the statement inserted has no deleting transaction (`xmax = 0`); an updated one has.
    const SQL: &str = "WITH written AS (\
                       INSERT INTO agent_targets (agent_id, stack_id, assigned_by, created_at) \
                       SELECT a, $2, $3, $4 FROM UNNEST($1::uuid[]) AS p(a) \
                       ON CONFLICT (agent_id, stack_id) DO UPDATE SET assigned_by = CASE \
                       WHEN excluded.assigned_by = 'admin' THEN 'admin' \
                       ELSE agent_targets.assigned_by END \
                       RETURNING (xmax = 0) AS inserted) \
                       SELECT COUNT(*) FILTER (WHERE inserted) FROM written";
    let added: i64 = sqlx::query_scalar(SQL)
        .bind(agents)
        .bind(stack_id)
        .bind(by)
        .bind(now)
        .fetch_one(&mut **t)
        .await?;
    Ok(u64::try_from(added).unwrap_or(0))
}

async fn add_rows(
    t: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    stack_id: Uuid,
    agents: &[Uuid],
    (by, now): (&str, DateTime<Utc>),
) -> StoreResult<u64> {
    let mut existed = 0u64;
    for chunk in agents.chunks(CHUNK) {
        let mut b = sqlx::QueryBuilder::new("SELECT COUNT(*) FROM agent_targets WHERE stack_id = ");
        b.push_bind(stack_id).push(" AND agent_id IN ");
        super::push_list(&mut b, chunk.iter().copied());
        let count: i64 = b.build_query_scalar().fetch_one(&mut **t).await?;
        existed += u64::try_from(count).unwrap_or(0);
        let mut b = sqlx::QueryBuilder::new(
            "INSERT INTO agent_targets (agent_id, stack_id, assigned_by, created_at) ",
        );
        b.push_values(chunk, |mut row, agent| {
            row.push_bind(*agent)
                .push_bind(stack_id)
                .push_bind(by)
                .push_bind(now);
        });
        b.push(
            " ON CONFLICT (agent_id, stack_id) DO UPDATE SET assigned_by = CASE WHEN \
             excluded.assigned_by = 'admin' THEN 'admin' ELSE agent_targets.assigned_by END",
        );
        b.build().execute(&mut **t).await?;
    }
    Ok(agents.len() as u64 - existed)
}

/// Removes an assignment; returns whether it existed.
pub async fn remove(tx: &mut Tx, agent_id: Uuid, stack_id: Uuid) -> StoreResult<bool> {
    const SQL: &str = "DELETE FROM agent_targets WHERE agent_id = $1 AND stack_id = $2";
    let done = with_tx!(tx, conn => sqlx::query(SQL).bind(agent_id).bind(stack_id).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Direct assignments of one agent, optionally only to one generator's stacks.
pub async fn list_for_agent(
    db: &Db,
    agent_id: Uuid,
    generator: Option<Uuid>,
    window: Window,
) -> StoreResult<Vec<AgentTarget>> {
    const SQL: &str = "SELECT t.agent_id, t.stack_id, t.assigned_by, t.created_at FROM agent_targets t \
                       JOIN stacks s ON s.id = t.stack_id \
                       WHERE t.agent_id = $1 AND ($2 IS NULL OR s.generator_id = $2) \
                       ORDER BY t.created_at, t.stack_id LIMIT $3 OFFSET $4";
    let rows: Vec<Row> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(agent_id)
        .bind(generator)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}
