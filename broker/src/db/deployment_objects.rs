//! Deployment objects: append-only, numbered per stack through `stacks.last_sequence`.

use brokkr_types::resources::{DeploymentObject, DeploymentObjectSummary};
use brokkr_types::templates::Provenance;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Db, StoreResult, Tx, Window, with_db, with_tx};

macro_rules! columns {
    () => {
        "id, stack_id, sequence_id, yaml_content, yaml_checksum, is_deletion_marker, created_at, \
         template_id, template_version, template_parameters"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    stack_id: Uuid,
    sequence_id: i64,
    yaml_content: String,
    yaml_checksum: String,
    is_deletion_marker: bool,
    created_at: DateTime<Utc>,
    template_id: Option<Uuid>,
    template_version: Option<i64>,
    template_parameters: Option<String>,
}

impl From<Row> for DeploymentObject {
    fn from(r: Row) -> Self {
        let template = r.template_id.map(|template_id| Provenance {
            template_id,
            template_version: u32::try_from(r.template_version.unwrap_or_default()).unwrap_or(0),
            parameters: r
                .template_parameters
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default(),
        });
        Self {
            id: r.id,
            stack_id: r.stack_id,
            sequence_id: r.sequence_id,
            yaml_content: r.yaml_content,
            yaml_checksum: r.yaml_checksum,
            is_deletion_marker: r.is_deletion_marker,
            created_at: r.created_at,
            template,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    stack_id: Uuid,
    sequence_id: i64,
    yaml_checksum: String,
    is_deletion_marker: bool,
    created_at: DateTime<Utc>,
}

impl From<SummaryRow> for DeploymentObjectSummary {
    fn from(r: SummaryRow) -> Self {
        Self {
            id: r.id,
            stack_id: r.stack_id,
            sequence_id: r.sequence_id,
            yaml_checksum: r.yaml_checksum,
            is_deletion_marker: r.is_deletion_marker,
            created_at: r.created_at,
        }
    }
}

/// Hex SHA-256 of the YAML text.
pub fn checksum(yaml: &str) -> String {
    hex::encode(Sha256::digest(yaml.as_bytes()))
}

/// A deployment object's id and number.
#[derive(Debug, Clone, Copy)]
pub struct DeploymentObjectRef {
    pub id: Uuid,
    pub sequence_id: i64,
}

/// Appends the next deployment object of a live stack; `None` when the stack is gone.
pub async fn append(
    tx: &mut Tx,
    stack_id: Uuid,
    yaml: &str,
    is_deletion_marker: bool,
    provenance: Option<&Provenance>,
) -> StoreResult<Option<DeploymentObject>> {
    const BUMP: &str = "UPDATE stacks SET last_sequence = last_sequence + 1, updated_at = $2 \
                        WHERE id = $1 AND deleted_at IS NULL RETURNING last_sequence";
    const INSERT: &str = concat!(
        "INSERT INTO deployment_objects (id, stack_id, sequence_id, yaml_content, yaml_checksum, ",
        "is_deletion_marker, created_at, template_id, template_version, template_parameters) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ",
        columns!()
    );
    let now = Utc::now();
    let sequence: Option<i64> = with_tx!(tx, conn => sqlx::query_scalar(BUMP).bind(stack_id).bind(now).fetch_optional(conn).await)?;
    let Some(sequence) = sequence else {
        return Ok(None);
    };
    let row: Row = with_tx!(tx, conn => sqlx::query_as(INSERT)
        .bind(Uuid::new_v4())
        .bind(stack_id)
        .bind(sequence)
        .bind(yaml)
        .bind(checksum(yaml))
        .bind(is_deletion_marker)
        .bind(now)
        .bind(provenance.map(|p| p.template_id))
        .bind(provenance.map(|p| i64::from(p.template_version)))
        .bind(provenance.map(|p| p.parameters.to_string()))
        .fetch_one(conn)
        .await)?;
    Ok(Some(row.into()))
}

/// Soft-deletes every deployment object of a stack.
pub async fn soft_delete_all_of_stack(
    tx: &mut Tx,
    stack_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    const SQL: &str =
        "UPDATE deployment_objects SET deleted_at = $2 WHERE stack_id = $1 AND deleted_at IS NULL";
    with_tx!(tx, conn => sqlx::query(SQL).bind(stack_id).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A live deployment object with its content.
pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<DeploymentObject>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM deployment_objects WHERE id = $1 AND deleted_at IS NULL"
    );
    let row: Option<Row> =
        with_db!(db, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await)?;
    Ok(row.map(Into::into))
}

/// Whether a deployment object is the deletion marker of a deleted stack.
pub async fn is_deletion_marker(tx: &mut Tx, id: Uuid) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM deployment_objects d JOIN stacks s ON s.id = d.stack_id \
                       WHERE d.id = $1 AND d.is_deletion_marker = $2 AND s.deleted_at IS NOT NULL";
    let n: i64 =
        with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(id).bind(true).fetch_one(conn).await)?;
    Ok(n > 0)
}

/// The stack of a deployment object, live or deleted.
pub async fn stack_of_any(tx: &mut Tx, id: Uuid) -> StoreResult<Option<Uuid>> {
    const SQL: &str = "SELECT stack_id FROM deployment_objects WHERE id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(id).fetch_optional(conn).await)?)
}

/// A deployment object's number, deleted or not.
pub async fn sequence_of_any(tx: &mut Tx, id: Uuid) -> StoreResult<Option<i64>> {
    const SQL: &str = "SELECT sequence_id FROM deployment_objects WHERE id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(id).fetch_optional(conn).await)?)
}

/// The live deployment objects of a stack, newest first, without content.
pub async fn list_for_stack(
    db: &Db,
    stack_id: Uuid,
    window: Window,
) -> StoreResult<Vec<DeploymentObjectSummary>> {
    const SQL: &str = "SELECT id, stack_id, sequence_id, yaml_checksum, is_deletion_marker, created_at \
                       FROM deployment_objects WHERE stack_id = $1 AND deleted_at IS NULL \
                       ORDER BY sequence_id DESC LIMIT $2 OFFSET $3";
    let rows: Vec<SummaryRow> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(stack_id)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The latest deployment object of a stack, if it has any.
pub async fn latest_of_stack(db: &Db, stack_id: Uuid) -> StoreResult<Option<Uuid>> {
    const SQL: &str = "SELECT d.id FROM deployment_objects d JOIN stacks s ON s.id = d.stack_id \
                       WHERE s.id = $1 AND d.sequence_id = s.last_sequence";
    Ok(with_db!(db, pool => sqlx::query_scalar(SQL).bind(stack_id).fetch_optional(pool).await)?)
}
