//! Agents table.

use brokkr_types::requests::{Heartbeat, UpdateAgent};
use brokkr_types::resources::{Agent, AgentStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::metadata::{self, Metadata, Owner};
use super::{Db, StoreError, StoreResult, Tx, Window, with_db, with_tx};

macro_rules! columns {
    () => {
        "id, name, cluster_name, status, last_heartbeat_at, kubernetes_reachable, agent_version, \
         created_at, updated_at"
    };
}

/// An agent row, before its labels and annotations are attached.
#[derive(Debug, sqlx::FromRow)]
pub struct AgentRow {
    id: Uuid,
    name: String,
    cluster_name: String,
    status: String,
    last_heartbeat_at: Option<DateTime<Utc>>,
    kubernetes_reachable: Option<bool>,
    agent_version: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl AgentRow {
    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    pub fn last_heartbeat_at(&self) -> Option<DateTime<Utc>> {
        self.last_heartbeat_at
    }

    pub fn kubernetes_reachable(&self) -> Option<bool> {
        self.kubernetes_reachable
    }

    pub fn status(&self) -> AgentStatus {
        AgentStatus::parse(&self.status).unwrap_or(AgentStatus::Inactive)
    }

    pub fn with_metadata(self, metadata: Metadata) -> Agent {
        Agent {
            id: self.id,
            status: self.status(),
            name: self.name,
            cluster_name: self.cluster_name,
            labels: metadata.labels,
            annotations: metadata.annotations,
            last_heartbeat_at: self.last_heartbeat_at,
            kubernetes_reachable: self.kubernetes_reachable,
            agent_version: self.agent_version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// `(id, name)` of the given agents, deleted or not.
pub async fn names(tx: &mut Tx, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, String)>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<(Uuid, String)> = with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new("SELECT id, name FROM agents WHERE id IN ");
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(conn).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

fn name_taken(err: sqlx::Error, name: &str) -> StoreError {
    StoreError::unique(err, &format!("an agent named {name:?} already exists"))
}

pub async fn insert(
    tx: &mut Tx,
    name: &str,
    cluster_name: &str,
    status: AgentStatus,
) -> StoreResult<AgentRow> {
    const SQL: &str = concat!(
        "INSERT INTO agents (id, name, cluster_name, status, created_at, updated_at) ",
        "VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
        columns!()
    );
    with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(Uuid::new_v4())
        .bind(name)
        .bind(cluster_name)
        .bind(status.as_str())
        .bind(Utc::now())
        .fetch_one(conn)
        .await)
    .map_err(|e| name_taken(e, name))
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM agents WHERE id = $1 AND deleted_at IS NULL"
);

/// A live agent without metadata.
pub async fn get_row(db: &Db, id: Uuid) -> StoreResult<Option<AgentRow>> {
    Ok(with_db!(db, pool => sqlx::query_as(GET).bind(id).fetch_optional(pool).await)?)
}

/// A live agent read inside a transaction (without metadata).
pub async fn get_row_in(tx: &mut Tx, id: Uuid) -> StoreResult<Option<AgentRow>> {
    Ok(with_tx!(tx, conn => sqlx::query_as(GET).bind(id).fetch_optional(conn).await)?)
}

/// A live agent with its labels and annotations.
pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<Agent>> {
    let Some(row) = get_row(db, id).await? else {
        return Ok(None);
    };
    let metadata = metadata::load_one(db, Owner::Agent, id).await?;
    Ok(Some(row.with_metadata(metadata)))
}

pub async fn list(db: &Db, window: Window) -> StoreResult<Vec<Agent>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM agents WHERE deleted_at IS NULL ORDER BY created_at, id LIMIT $1 OFFSET $2"
    );
    let rows: Vec<AgentRow> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut metadata = metadata::load(db, Owner::Agent, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let m = metadata.remove(&r.id).unwrap_or_default();
            r.with_metadata(m)
        })
        .collect())
}

/// Applies an admin's partial update; `None` when the agent does not exist.
pub async fn update(tx: &mut Tx, id: Uuid, patch: &UpdateAgent) -> StoreResult<Option<AgentRow>> {
    const SQL: &str = concat!(
        "UPDATE agents SET name = COALESCE($2, name), cluster_name = COALESCE($3, cluster_name), ",
        "status = COALESCE($4, status), updated_at = $5 WHERE id = $1 AND deleted_at IS NULL RETURNING ",
        columns!()
    );
    let name = patch.name.as_ref().map(|n| n.as_str());
    with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(id)
        .bind(name)
        .bind(patch.cluster_name.as_ref().map(|n| n.as_str()))
        .bind(patch.status.map(AgentStatus::as_str))
        .bind(Utc::now())
        .fetch_optional(conn)
        .await)
    .map_err(|e| name_taken(e, name.unwrap_or_default()))
}

/// Records a heartbeat; returns false when the agent no longer exists.
pub async fn heartbeat(db: &Db, id: Uuid, beat: &Heartbeat) -> StoreResult<bool> {
    const SQL: &str = "UPDATE agents SET last_heartbeat_at = $2, \
                       kubernetes_reachable = COALESCE($3, kubernetes_reachable), \
                       agent_version = COALESCE($4, agent_version) \
                       WHERE id = $1 AND deleted_at IS NULL";
    let done = with_db!(db, pool => sqlx::query(SQL)
        .bind(id)
        .bind(Utc::now())
        .bind(beat.kubernetes_reachable)
        .bind(beat.agent_version.as_ref().map(|v| v.as_str()))
        .execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

pub async fn soft_delete(tx: &mut Tx, id: Uuid) -> StoreResult<bool> {
    const SQL: &str = "UPDATE agents SET deleted_at = $2, updated_at = $2 \
                       WHERE id = $1 AND deleted_at IS NULL";
    let done = with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(Utc::now()).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// How many live agents there are.
pub async fn count(db: &Db) -> StoreResult<u64> {
    const SQL: &str = "SELECT COUNT(*) FROM agents WHERE deleted_at IS NULL";
    let n: i64 = with_db!(db, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The live agents with `status`.
pub async fn with_status(
    db: &Db,
    status: AgentStatus,
) -> StoreResult<std::collections::HashSet<Uuid>> {
    const SQL: &str = "SELECT id FROM agents WHERE deleted_at IS NULL AND status = $1";
    let ids: Vec<Uuid> =
        with_db!(db, pool => sqlx::query_scalar(SQL).bind(status.as_str()).fetch_all(pool).await)?;
    Ok(ids.into_iter().collect())
}

/// The given live agents with their labels, in the order given.
pub async fn rows_with_labels(db: &Db, ids: &[Uuid]) -> StoreResult<Vec<(AgentRow, Vec<String>)>> {
    let mut rows: Vec<AgentRow> = Vec::with_capacity(ids.len());
    let mut labels: Vec<(Uuid, String)> = Vec::new();
    for chunk in ids.chunks(500) {
        let found: Vec<AgentRow> = with_db!(db, pool => {
            let mut b = sqlx::QueryBuilder::new(concat!("SELECT ", columns!(), " FROM agents WHERE deleted_at IS NULL AND id IN "));
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(pool).await
        })?;
        rows.extend(found);
        let found: Vec<(Uuid, String)> = with_db!(db, pool => {
            let mut b = sqlx::QueryBuilder::new("SELECT agent_id, label FROM agent_labels WHERE agent_id IN ");
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(pool).await
        })?;
        labels.extend(found);
    }
    let mut by_agent: std::collections::HashMap<Uuid, Vec<String>> =
        std::collections::HashMap::new();
    for (agent, label) in labels {
        by_agent.entry(agent).or_default().push(label);
    }
    let order: std::collections::HashMap<Uuid, usize> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|r| order.get(&r.id).copied().unwrap_or(usize::MAX));
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut own = by_agent.remove(&r.id).unwrap_or_default();
            own.sort();
            (r, own)
        })
        .collect())
}

/// One page of live agent ids by name: inside `reach_of` (a generator's reach) when given,
/// carrying every label, with `status` when given.
pub async fn page_ids(
    db: &Db,
    reach_of: Option<Uuid>,
    labels: &[&str],
    status: Option<AgentStatus>,
    window: Window,
) -> StoreResult<Vec<Uuid>> {
    Ok(with_db!(db, pool => {
        let mut b = sqlx::QueryBuilder::new("SELECT a.id FROM agents a WHERE a.deleted_at IS NULL");
        if let Some(generator) = reach_of {
            b.push(" AND EXISTS (SELECT 1 FROM reach r WHERE r.agent_id = a.id AND r.generator_id = ")
                .push_bind(generator)
                .push(")");
        }
        for label in labels {
            b.push(" AND EXISTS (SELECT 1 FROM agent_labels l WHERE l.agent_id = a.id AND l.label = ")
                .push_bind(label.to_string())
                .push(")");
        }
        if let Some(status) = status {
            b.push(" AND a.status = ").push_bind(status.as_str());
        }
        b.push(" ORDER BY a.name, a.id LIMIT ")
            .push_bind(window.probe_limit())
            .push(" OFFSET ")
            .push_bind(window.offset());
        b.build_query_scalar().fetch_all(pool).await
    })?)
}
