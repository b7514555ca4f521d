//! Generators table.

use brokkr_types::requests::UpdateGenerator;
use brokkr_types::resources::Generator;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreError, StoreResult, Tx, Window, with_db, with_tx};

macro_rules! columns {
    () => {
        "id, name, description, reach, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    description: Option<String>,
    reach: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Generator {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            reach: r.reach,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn name_taken(err: sqlx::Error, name: &str) -> StoreError {
    StoreError::unique(err, &format!("a generator named {name:?} already exists"))
}

/// A new generator's fields.
#[derive(Debug, Clone, Copy)]
pub struct NewGenerator<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub reach: &'a str,
}

pub async fn insert(tx: &mut Tx, new: NewGenerator<'_>) -> StoreResult<Generator> {
    const SQL: &str = concat!(
        "INSERT INTO generators (id, name, description, reach, created_at, updated_at) ",
        "VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
        columns!()
    );
    let name = new.name;
    let row: Row = with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(Uuid::new_v4())
        .bind(name)
        .bind(new.description)
        .bind(new.reach)
        .bind(Utc::now())
        .fetch_one(conn)
        .await)
    .map_err(|e| name_taken(e, name))?;
    Ok(row.into())
}

/// A live (not deleted) generator.
pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<Generator>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM generators WHERE id = $1 AND deleted_at IS NULL"
    );
    let row: Option<Row> =
        with_db!(db, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await)?;
    Ok(row.map(Into::into))
}

/// A generator's name, deleted or not.
pub async fn get_any_name(db: &Db, id: Uuid) -> StoreResult<Option<String>> {
    const SQL: &str = "SELECT name FROM generators WHERE id = $1";
    Ok(with_db!(db, pool => sqlx::query_scalar(SQL).bind(id).fetch_optional(pool).await)?)
}

/// The reach of a live generator.
pub async fn reach_of(tx: &mut Tx, id: Uuid) -> StoreResult<Option<String>> {
    const SQL: &str = "SELECT reach FROM generators WHERE id = $1 AND deleted_at IS NULL";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(id).fetch_optional(conn).await)?)
}

/// `(id, reach)` of every live generator.
pub async fn reaches(tx: &mut Tx) -> StoreResult<Vec<(Uuid, String)>> {
    const SQL: &str = "SELECT id, reach FROM generators WHERE deleted_at IS NULL";
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).fetch_all(conn).await)?)
}

/// A live generator, read inside a transaction.
pub async fn get_in(tx: &mut Tx, id: Uuid) -> StoreResult<Option<Generator>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM generators WHERE id = $1 AND deleted_at IS NULL"
    );
    let row: Option<Row> =
        with_tx!(tx, conn => sqlx::query_as(SQL).bind(id).fetch_optional(conn).await)?;
    Ok(row.map(Into::into))
}

pub async fn list(db: &Db, window: Window) -> StoreResult<Vec<Generator>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM generators WHERE deleted_at IS NULL ORDER BY created_at, id LIMIT $1 OFFSET $2"
    );
    let rows: Vec<Row> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Applies a partial update; `None` when the generator does not exist (or was deleted).
pub async fn update(
    tx: &mut Tx,
    id: Uuid,
    patch: &UpdateGenerator,
) -> StoreResult<Option<Generator>> {
    const SQL: &str = concat!(
        "UPDATE generators SET name = COALESCE($2, name), \
                       description = CASE WHEN $3 THEN $4 ELSE description END, updated_at = $5, \
                       reach = COALESCE($6, reach) \
                       WHERE id = $1 AND deleted_at IS NULL RETURNING ",
        columns!()
    );
    let name = patch.name.as_ref().map(|n| n.as_str());
    let description = patch
        .description
        .as_ref()
        .and_then(|d| d.as_ref().map(|d| d.as_str()));
    let row: Option<Row> = with_tx!(tx, conn => sqlx::query_as(SQL)
        .bind(id)
        .bind(name)
        .bind(patch.description.is_some())
        .bind(description)
        .bind(Utc::now())
        .bind(patch.reach.as_ref().map(|r| r.as_str()))
        .fetch_optional(conn)
        .await)
    .map_err(|e| name_taken(e, name.unwrap_or_default()))?;
    Ok(row.map(Into::into))
}

/// Marks the generator deleted. Its stacks are handled by the caller in the same transaction.
pub async fn soft_delete(tx: &mut Tx, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE generators SET deleted_at = $2, updated_at = $2 \
                       WHERE id = $1 AND deleted_at IS NULL";
    let done = with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}
