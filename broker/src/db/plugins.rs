//! Plugins: content-addressed modules, installed plugins, bindings and recorded verdicts.

use brokkr_types::plugins::{
    PluginBinding, PluginInfo, PluginMode, PluginScope, PluginVerdict, TargetPolicy,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreError, StoreResult, Tx, Window, with_db, with_tx};

/// Stores a module under its digest (a module already stored is kept).
pub async fn store_module(tx: &mut Tx, digest: &str, wasm: &[u8]) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO plugin_modules (digest, wasm, size, created_at) VALUES ($1, $2, $3, $4) \
                       ON CONFLICT (digest) DO NOTHING";
    let size = i64::try_from(wasm.len()).unwrap_or(i64::MAX);
    with_tx!(tx, conn => sqlx::query(SQL).bind(digest).bind(wasm).bind(size).bind(Utc::now()).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// A module's bytes.
pub async fn module(db: &Db, digest: &str) -> StoreResult<Option<Vec<u8>>> {
    const SQL: &str = "SELECT wasm FROM plugin_modules WHERE digest = $1";
    Ok(with_db!(db, pool => sqlx::query_scalar(SQL).bind(digest).fetch_optional(pool).await)?)
}

#[derive(sqlx::FromRow)]
struct PluginRow {
    id: Uuid,
    name: String,
    description: Option<String>,
    kind: String,
    digest: String,
    size: i64,
    config: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PluginRow {
    fn into_info(self, bindings: Vec<PluginBinding>) -> PluginInfo {
        PluginInfo {
            id: self.id,
            name: self.name,
            description: self.description,
            kind: self.kind,
            digest: self.digest,
            size: self.size,
            config: serde_json::from_str(&self.config).unwrap_or(serde_json::Value::Null),
            bindings,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

macro_rules! plugin_select {
    () => {
        "SELECT p.id, p.name, p.description, p.kind, p.digest, m.size, p.config, p.created_at, p.updated_at \
         FROM plugins p JOIN plugin_modules m ON m.digest = p.digest WHERE p.deleted_at IS NULL"
    };
}

/// A new plugin's fields.
#[derive(Debug, Clone, Copy)]
pub struct NewPlugin<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub kind: &'a str,
    pub digest: &'a str,
    pub config: &'a str,
}

pub async fn insert(tx: &mut Tx, new: NewPlugin<'_>) -> StoreResult<Uuid> {
    const SQL: &str = "INSERT INTO plugins (id, name, description, kind, digest, config, created_at, updated_at) \
                       VALUES ($1, $2, $3, $7, $4, $5, $6, $6)";
    let id = Uuid::new_v4();
    with_tx!(tx, conn => sqlx::query(SQL)
        .bind(id)
        .bind(new.name)
        .bind(new.description)
        .bind(new.digest)
        .bind(new.config)
        .bind(Utc::now())
        .bind(new.kind)
        .execute(conn)
        .await
        .map(|_| ()))
    .map_err(|e| StoreError::unique(e, &format!("a plugin named {:?} already exists", new.name)))?;
    Ok(id)
}

pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<PluginInfo>> {
    const SQL: &str = concat!(plugin_select!(), " AND p.id = $1");
    let row: Option<PluginRow> =
        with_db!(db, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await)?;
    let Some(row) = row else { return Ok(None) };
    let bindings = bindings_of(db, id).await?;
    Ok(Some(row.into_info(bindings)))
}

pub async fn list(db: &Db, window: Window) -> StoreResult<Vec<PluginInfo>> {
    const SQL: &str = concat!(plugin_select!(), " ORDER BY p.name LIMIT $1 OFFSET $2");
    let rows: Vec<PluginRow> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let bindings = bindings_of(db, row.id).await?;
        out.push(row.into_info(bindings));
    }
    Ok(out)
}

/// Updates description and configuration; `false` when the plugin is gone.
pub async fn update(
    tx: &mut Tx,
    id: Uuid,
    description: Option<&str>,
    config: Option<&str>,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE plugins SET description = COALESCE($2, description), config = COALESCE($3, config), \
                       updated_at = $4 WHERE id = $1 AND deleted_at IS NULL";
    let n = with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(description).bind(config).bind(Utc::now()).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Soft-deletes a plugin and removes its bindings.
pub async fn delete(tx: &mut Tx, id: Uuid) -> StoreResult<bool> {
    const BINDINGS: &str = "DELETE FROM plugin_bindings WHERE plugin_id = $1";
    const SQL: &str = "UPDATE plugins SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL";
    with_tx!(tx, conn => sqlx::query(BINDINGS).bind(id).execute(conn).await.map(|_| ()))?;
    let n = with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(Utc::now()).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(sqlx::FromRow)]
struct BindingRow {
    id: Uuid,
    plugin_id: Uuid,
    scope: String,
    scope_id: Uuid,
    mode: String,
    created_at: DateTime<Utc>,
}

impl From<BindingRow> for PluginBinding {
    fn from(r: BindingRow) -> Self {
        let scope = PluginScope::parse(&r.scope).unwrap_or(PluginScope::Global);
        Self {
            id: r.id,
            plugin_id: r.plugin_id,
            scope,
            scope_id: scope.takes_id().then_some(r.scope_id),
            mode: PluginMode::parse(&r.mode).unwrap_or(PluginMode::Shadow),
            created_at: r.created_at,
        }
    }
}

pub async fn bindings_of(db: &Db, plugin: Uuid) -> StoreResult<Vec<PluginBinding>> {
    const SQL: &str = "SELECT id, plugin_id, scope, scope_id, mode, created_at FROM plugin_bindings \
                       WHERE plugin_id = $1 ORDER BY created_at, id";
    let rows: Vec<BindingRow> =
        with_db!(db, pool => sqlx::query_as(SQL).bind(plugin).fetch_all(pool).await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn bind(
    tx: &mut Tx,
    plugin: Uuid,
    scope: PluginScope,
    scope_id: Option<Uuid>,
    mode: PluginMode,
) -> StoreResult<PluginBinding> {
    const SQL: &str = "INSERT INTO plugin_bindings (id, plugin_id, scope, scope_id, mode, created_at) \
                       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, plugin_id, scope, scope_id, mode, created_at";
    let row: BindingRow = with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(Uuid::new_v4())
        .bind(plugin)
        .bind(scope.as_str())
        .bind(scope_id.unwrap_or_default())
        .bind(mode.as_str())
        .bind(Utc::now())
        .fetch_one(conn)
        .await)
    .map_err(|e| StoreError::unique(e, "the plugin is already bound to this scope"))?;
    Ok(row.into())
}

/// Changes a binding's mode in place; `None` when the binding does not exist.
pub async fn set_mode(
    tx: &mut Tx,
    plugin: Uuid,
    binding: Uuid,
    mode: PluginMode,
) -> StoreResult<Option<PluginBinding>> {
    const SQL: &str = "UPDATE plugin_bindings SET mode = $3 WHERE id = $1 AND plugin_id = $2 \
                       RETURNING id, plugin_id, scope, scope_id, mode, created_at";
    let row: Option<BindingRow> = with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(binding)
        .bind(plugin)
        .bind(mode.as_str())
        .fetch_optional(conn)
        .await)?;
    Ok(row.map(Into::into))
}

pub async fn unbind(tx: &mut Tx, plugin: Uuid, binding: Uuid) -> StoreResult<bool> {
    const SQL: &str = "DELETE FROM plugin_bindings WHERE id = $1 AND plugin_id = $2";
    let n = with_tx!(tx, conn => sqlx::query(SQL).bind(binding).bind(plugin).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: Uuid,
    plugin_id: Uuid,
    name: String,
    digest: String,
    config: String,
    mode: String,
    scope: String,
    scope_id: Uuid,
}

impl From<PolicyRow> for TargetPolicy {
    fn from(r: PolicyRow) -> Self {
        let scope = PluginScope::parse(&r.scope).unwrap_or(PluginScope::Global);
        Self {
            binding_id: r.id,
            plugin_id: r.plugin_id,
            plugin: r.name,
            digest: r.digest,
            config: r.config,
            mode: PluginMode::parse(&r.mode).unwrap_or(PluginMode::Shadow),
            scope,
            scope_id: scope.takes_id().then_some(r.scope_id),
        }
    }
}

macro_rules! policy_select {
    () => {
        "SELECT b.id, b.plugin_id, p.name, p.digest, p.config, b.mode, b.scope, b.scope_id \
         FROM plugin_bindings b JOIN plugins p ON p.id = b.plugin_id WHERE p.deleted_at IS NULL "
    };
}

/// Bindings covering a stack (global, its generator's, its own).
pub async fn policies_for_stack(
    db: &Db,
    stack: Uuid,
    generator: Uuid,
) -> StoreResult<Vec<TargetPolicy>> {
    const SQL: &str = concat!(
        policy_select!(),
        "AND (b.scope = 'global' OR (b.scope = 'generator' AND b.scope_id = $2) ",
        "OR (b.scope = 'stack' AND b.scope_id = $1)) ORDER BY p.name, b.id"
    );
    let rows: Vec<PolicyRow> = with_db!(db, pool => sqlx::query_as(SQL).bind(stack).bind(generator).fetch_all(pool).await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Bindings of the `work-orders` scope.
pub async fn policies_for_work_orders(db: &Db) -> StoreResult<Vec<TargetPolicy>> {
    const SQL: &str = concat!(
        policy_select!(),
        "AND b.scope = 'work-orders' ORDER BY p.name, b.id"
    );
    let rows: Vec<PolicyRow> = with_db!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Bindings covering any stack assigned to an agent, in one query.
pub async fn policies_for_agent(db: &Db, agent: Uuid) -> StoreResult<Vec<TargetPolicy>> {
    const SQL: &str = concat!(
        policy_select!(),
        "AND (b.scope = 'global' ",
        "OR (b.scope = 'stack' AND b.scope_id IN (SELECT stack_id FROM assignments WHERE agent_id = $1)) ",
        "OR (b.scope = 'generator' AND b.scope_id IN (SELECT s.generator_id FROM assignments a ",
        "JOIN stacks s ON s.id = a.stack_id WHERE a.agent_id = $1))) ORDER BY b.id"
    );
    let rows: Vec<PolicyRow> =
        with_db!(db, pool => sqlx::query_as(SQL).bind(agent).fetch_all(pool).await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One verdict to record.
#[derive(Debug, Clone)]
pub struct NewVerdict {
    pub plugin_id: Uuid,
    pub mode: PluginMode,
    pub stack_id: Option<Uuid>,
    pub deployment_object_id: Option<Uuid>,
    pub outcome: &'static str,
    pub details: serde_json::Value,
}

pub async fn record_verdicts(tx: &mut Tx, verdicts: &[NewVerdict]) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO plugin_verdicts (id, plugin_id, mode, stack_id, deployment_object_id, outcome, \
                       details, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    for v in verdicts {
        with_tx!(tx, conn => sqlx::query(SQL)
            .bind(Uuid::new_v4())
            .bind(v.plugin_id)
            .bind(v.mode.as_str())
            .bind(v.stack_id)
            .bind(v.deployment_object_id)
            .bind(v.outcome)
            .bind(v.details.to_string())
            .bind(Utc::now())
            .execute(conn)
            .await
            .map(|_| ()))?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct VerdictRow {
    id: Uuid,
    plugin_id: Uuid,
    mode: String,
    stack_id: Option<Uuid>,
    deployment_object_id: Option<Uuid>,
    outcome: String,
    details: String,
    created_at: DateTime<Utc>,
}

pub async fn verdicts(db: &Db, plugin: Uuid, window: Window) -> StoreResult<Vec<PluginVerdict>> {
    const SQL: &str = "SELECT id, plugin_id, mode, stack_id, deployment_object_id, outcome, details, created_at \
                       FROM plugin_verdicts WHERE plugin_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3";
    let rows: Vec<VerdictRow> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(plugin)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|r| PluginVerdict {
            id: r.id,
            plugin_id: r.plugin_id,
            mode: PluginMode::parse(&r.mode).unwrap_or(PluginMode::Shadow),
            stack_id: r.stack_id,
            deployment_object_id: r.deployment_object_id,
            outcome: r.outcome,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
            created_at: r.created_at,
        })
        .collect())
}

/// A stored deployment object to replay through a plugin.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredObject {
    pub id: Uuid,
    pub stack_id: Uuid,
    pub sequence_id: i64,
    pub yaml_content: String,
}

/// Live deployment objects (not deletion markers) in a scope, newest first.
pub async fn objects_in_scope(
    db: &Db,
    scope: PluginScope,
    scope_id: Uuid,
    window: Window,
) -> StoreResult<Vec<StoredObject>> {
    const SQL: &str = "SELECT d.id, d.stack_id, d.sequence_id, d.yaml_content FROM deployment_objects d \
                       JOIN stacks s ON s.id = d.stack_id \
                       WHERE d.deleted_at IS NULL AND d.is_deletion_marker = $1 \
                       AND ($2 = 'global' OR ($2 = 'generator' AND s.generator_id = $3) OR ($2 = 'stack' AND s.id = $3)) \
                       ORDER BY d.created_at DESC, d.id LIMIT $4 OFFSET $5";
    Ok(with_db!(db, pool => sqlx::query_as(SQL)
        .bind(false)
        .bind(scope.as_str())
        .bind(scope_id)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?)
}
