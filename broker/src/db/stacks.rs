//! Stacks table. Deleting a stack soft-deletes its deployment objects and appends a deletion
//! marker so agents learn to remove what they applied.

use brokkr_types::requests::UpdateStack;
use brokkr_types::resources::Stack;
use brokkr_types::staged::RolloutStrategy;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::metadata::{self, Metadata, Owner};
use super::{Db, StoreError, StoreResult, Tx, Window, deployment_objects, with_db, with_tx};

macro_rules! columns {
    () => {
        "id, generator_id, name, description, target_expression, rollout_strategy, created_at, updated_at"
    };
}

/// A stack row, before labels and annotations are attached.
#[derive(Debug, sqlx::FromRow)]
pub struct StackRow {
    pub id: Uuid,
    pub generator_id: Uuid,
    name: String,
    description: Option<String>,
    target_expression: Option<String>,
    rollout_strategy: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl StackRow {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stored rollout strategy (checked when written; an unreadable one counts as none).
    pub fn rollout_strategy(&self) -> Option<RolloutStrategy> {
        let text = self.rollout_strategy.as_deref()?;
        serde_json::from_str(text).ok()
    }

    pub fn with_metadata(self, metadata: Metadata) -> Stack {
        let rollout = self.rollout_strategy();
        Stack {
            id: self.id,
            generator_id: self.generator_id,
            name: self.name,
            description: self.description,
            rollout,
            target_expression: self.target_expression,
            labels: metadata.labels,
            annotations: metadata.annotations,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn name_taken(err: sqlx::Error, name: &str) -> StoreError {
    StoreError::unique(
        err,
        &format!("this generator already has a stack named {name:?}"),
    )
}

/// A new stack's fields.
#[derive(Debug, Clone, Copy)]
pub struct NewStack<'a> {
    pub id: Uuid,
    pub generator_id: Uuid,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub target_expression: Option<&'a str>,
    /// The rollout strategy as JSON.
    pub rollout_strategy: Option<&'a str>,
}

pub async fn insert(tx: &mut Tx, new: NewStack<'_>) -> StoreResult<StackRow> {
    const SQL: &str = concat!(
        "INSERT INTO stacks (id, generator_id, name, description, target_expression, rollout_strategy, ",
        "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $7, $6, $6) RETURNING ",
        columns!()
    );
    let name = new.name;
    with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(new.id)
        .bind(new.generator_id)
        .bind(name)
        .bind(new.description)
        .bind(new.target_expression)
        .bind(Utc::now())
        .bind(new.rollout_strategy)
        .fetch_one(conn)
        .await)
    .map_err(|e| name_taken(e, name))
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM stacks WHERE id = $1 AND deleted_at IS NULL"
);

pub async fn get_row(db: &Db, id: Uuid) -> StoreResult<Option<StackRow>> {
    Ok(with_db!(db, pool => sqlx::query_as(GET).bind(id).fetch_optional(pool).await)?)
}

pub async fn get_row_in(tx: &mut Tx, id: Uuid) -> StoreResult<Option<StackRow>> {
    Ok(with_tx!(tx, conn => sqlx::query_as(GET).bind(id).fetch_optional(conn).await)?)
}

/// The owner of a stack, deleted or not (deleted stacks still own their events).
pub async fn owner_of_any(db: &Db, id: Uuid) -> StoreResult<Option<Uuid>> {
    const SQL: &str = "SELECT generator_id FROM stacks WHERE id = $1";
    Ok(with_db!(db, pool => sqlx::query_scalar(SQL).bind(id).fetch_optional(pool).await)?)
}

/// A stack, deleted or not, with its labels and annotations.
pub async fn get_any(db: &Db, id: Uuid) -> StoreResult<Option<Stack>> {
    const SQL: &str = concat!("SELECT ", columns!(), " FROM stacks WHERE id = $1");
    let row: Option<StackRow> =
        with_db!(db, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await)?;
    let Some(row) = row else { return Ok(None) };
    let metadata = metadata::load_one(db, Owner::Stack, id).await?;
    Ok(Some(row.with_metadata(metadata)))
}

/// A live stack with its labels and annotations.
pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<Stack>> {
    let Some(row) = get_row(db, id).await? else {
        return Ok(None);
    };
    let metadata = metadata::load_one(db, Owner::Stack, id).await?;
    Ok(Some(row.with_metadata(metadata)))
}

/// Live stacks, all of them or those of one generator.
/// Live stacks, of one generator and of one name when given, oldest first.
pub async fn list(
    db: &Db,
    generator: Option<Uuid>,
    name: Option<&str>,
    window: Window,
) -> StoreResult<Vec<Stack>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM stacks WHERE deleted_at IS NULL AND ($1 IS NULL OR generator_id = $1) ",
        "AND ($4 IS NULL OR name = $4) ",
        "ORDER BY created_at, id LIMIT $2 OFFSET $3"
    );
    let rows: Vec<StackRow> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(generator)
        .bind(window.probe_limit())
        .bind(window.offset())
        .bind(name)
        .fetch_all(pool)
        .await)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut metadata = metadata::load(db, Owner::Stack, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let m = metadata.remove(&r.id).unwrap_or_default();
            r.with_metadata(m)
        })
        .collect())
}

pub async fn update(tx: &mut Tx, id: Uuid, patch: &UpdateStack) -> StoreResult<Option<StackRow>> {
    const SQL: &str = concat!(
        "UPDATE stacks SET name = COALESCE($2, name), ",
        "description = CASE WHEN $3 THEN $4 ELSE description END, updated_at = $5, ",
        "target_expression = CASE WHEN $6 THEN $7 ELSE target_expression END, ",
        "rollout_strategy = CASE WHEN $8 THEN $9 ELSE rollout_strategy END ",
        "WHERE id = $1 AND deleted_at IS NULL RETURNING ",
        columns!()
    );
    let name = patch.name.as_ref().map(|n| n.as_str());
    let description = patch
        .description
        .as_ref()
        .and_then(|d| d.as_ref().map(|d| d.as_str()));
    let expression = patch
        .target_expression
        .as_ref()
        .and_then(|e| e.as_ref().map(|e| e.as_str()));
    let strategy = match &patch.rollout {
        Some(Some(strategy)) => Some(
            serde_json::to_string(strategy)
                .map_err(|e| StoreError::Integrity(format!("cannot store a strategy: {e}")))?,
        ),
        _ => None,
    };
    with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(id)
        .bind(name)
        .bind(patch.description.is_some())
        .bind(description)
        .bind(Utc::now())
        .bind(patch.target_expression.is_some())
        .bind(expression)
        .bind(patch.rollout.is_some())
        .bind(strategy)
        .fetch_optional(conn)
        .await)
    .map_err(|e| name_taken(e, name.unwrap_or_default()))
}

/// Live stacks of a generator that target with an expression.
pub async fn with_expression_of_generator(
    tx: &mut Tx,
    generator_id: Uuid,
) -> StoreResult<Vec<Uuid>> {
    const SQL: &str = "SELECT id FROM stacks WHERE generator_id = $1 AND deleted_at IS NULL \
                       AND target_expression IS NOT NULL";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(generator_id).fetch_all(conn).await)?)
}

/// Ids of a generator's live stacks (for the cascading delete).
pub async fn live_ids_of_generator(tx: &mut Tx, generator_id: Uuid) -> StoreResult<Vec<Uuid>> {
    const SQL: &str = "SELECT id FROM stacks WHERE generator_id = $1 AND deleted_at IS NULL";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(generator_id).fetch_all(conn).await)?)
}

/// `(id, name, generator)` of the given stacks, deleted or not.
pub async fn names_and_owners(tx: &mut Tx, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, String, Uuid)>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<(Uuid, String, Uuid)> = with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new("SELECT id, name, generator_id FROM stacks WHERE id IN ");
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(conn).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// A deleted stack and the deletion marker appended to it.
#[derive(Debug)]
pub struct Deleted {
    pub stack: StackRow,
    pub marker: Option<deployment_objects::DeploymentObjectRef>,
}

/// Soft-deletes a stack and its deployment objects and appends the deletion marker; `None`
/// when the stack was already gone.
pub async fn soft_delete(
    tx: &mut Tx,
    id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Option<Deleted>> {
    let Some(stack) = get_row_in(tx, id).await? else {
        return Ok(None);
    };
    deployment_objects::soft_delete_all_of_stack(tx, id, now).await?;
    // The deletion marker reaches every agent at once, whatever a staged release held back.
    super::staged::supersede(tx, id, now).await?;
    super::staged::clear_members(tx, id).await?;
    let marker = deployment_objects::append(tx, id, "", true, None)
        .await?
        .map(|o| deployment_objects::DeploymentObjectRef {
            id: o.id,
            sequence_id: o.sequence_id,
        });
    const SQL: &str =
        "UPDATE stacks SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL";
    let done = with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok((done == 1).then_some(Deleted { stack, marker }))
}
