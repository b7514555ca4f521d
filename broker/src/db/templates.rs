//! Stack templates and their immutable versions. A template is named per owner (a generator,
//! or none for an admin's shared templates); a new version is numbered through
//! `templates.latest_version` (`UPDATE … RETURNING`), so concurrent versions never collide.

use brokkr_types::templates::{Template, TemplateVersion};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreError, StoreResult, Tx, Window, with_db, with_tx};

/// A template row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: Uuid,
    pub generator_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub latest_version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct VersionRow {
    template_id: Uuid,
    version: i64,
    description: Option<String>,
    template_yaml: String,
    schema_json: String,
    created_at: DateTime<Utc>,
}

impl From<VersionRow> for TemplateVersion {
    fn from(r: VersionRow) -> Self {
        Self {
            template_id: r.template_id,
            version: u32::try_from(r.version).unwrap_or(0),
            description: r.description,
            template_yaml: r.template_yaml,
            schema_json: serde_json::from_str(&r.schema_json).unwrap_or_default(),
            created_at: r.created_at,
        }
    }
}

impl TemplateRow {
    /// The template as shown, with the content of `latest`.
    pub fn with_latest(self, latest: TemplateVersion) -> Template {
        Template {
            id: self.id,
            name: self.name,
            description: self.description,
            generator_id: self.generator_id,
            latest_version: latest.version,
            template_yaml: latest.template_yaml,
            schema_json: latest.schema_json,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const COLUMNS: &str = "id, generator_id, name, description, latest_version, created_at, updated_at";

/// A new version's content.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    pub description: Option<&'a str>,
    pub template_yaml: &'a str,
    pub schema_json: &'a serde_json::Value,
}

/// Creates a template with its first version.
pub async fn insert(
    tx: &mut Tx,
    owner: Option<Uuid>,
    name: &str,
    content: Content<'_>,
) -> StoreResult<TemplateRow> {
    let sql = format!(
        "INSERT INTO templates ({COLUMNS}) VALUES ($1, $2, $3, $4, 0, $5, $5) RETURNING {COLUMNS}"
    );
    let row: TemplateRow = with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(Uuid::new_v4())
        .bind(owner)
        .bind(name)
        .bind(content.description)
        .bind(Utc::now())
        .fetch_one(conn)
        .await)
    .map_err(|e| StoreError::unique(e, &format!("a template named {name:?} already exists")))?;
    add_version(tx, row.id, content).await?;
    get_in(tx, row.id)
        .await?
        .ok_or_else(|| StoreError::Integrity("a new template vanished".into()))
}

/// Adds the next version; returns its number (`None` when the template is gone).
pub async fn add_version(tx: &mut Tx, id: Uuid, content: Content<'_>) -> StoreResult<Option<u32>> {
    const BUMP: &str = "UPDATE templates SET latest_version = latest_version + 1, updated_at = $2, \
                        description = COALESCE($3, description) \
                        WHERE id = $1 AND deleted_at IS NULL RETURNING latest_version";
    const INSERT: &str = "INSERT INTO template_versions (template_id, version, description, \
                          template_yaml, schema_json, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    let now = Utc::now();
    let version: Option<i64> = with_tx!(tx, conn => sqlx::query_scalar(BUMP)
        .bind(id)
        .bind(now)
        .bind(content.description)
        .fetch_optional(conn)
        .await)?;
    let Some(version) = version else {
        return Ok(None);
    };
    with_tx!(tx, conn => sqlx::query(INSERT)
        .bind(id)
        .bind(version)
        .bind(content.description)
        .bind(content.template_yaml)
        .bind(content.schema_json.to_string())
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ()))?;
    Ok(u32::try_from(version).ok())
}

pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<TemplateRow>> {
    let sql = format!("SELECT {COLUMNS} FROM templates WHERE id = $1 AND deleted_at IS NULL");
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await)?,
    )
}

pub async fn get_in(tx: &mut Tx, id: Uuid) -> StoreResult<Option<TemplateRow>> {
    let sql = format!("SELECT {COLUMNS} FROM templates WHERE id = $1 AND deleted_at IS NULL");
    Ok(
        with_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(conn).await)?,
    )
}

/// A live template by name: the owner's own, else (when `shared`) an admin's.
pub async fn find_by_name(
    db: &Db,
    owner: Option<Uuid>,
    name: &str,
    shared: bool,
) -> StoreResult<Option<TemplateRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM templates WHERE deleted_at IS NULL AND name = $1 \
         AND (generator_id = $2 OR ($3 AND generator_id IS NULL) OR ($2 IS NULL AND generator_id IS NULL)) \
         ORDER BY generator_id IS NULL LIMIT 1"
    );
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(name)
        .bind(owner)
        .bind(shared)
        .fetch_optional(pool)
        .await)?,
    )
}

/// Templates by name: every one (`None`), or a generator's own and the shared ones.
pub async fn list(
    db: &Db,
    generator: Option<Uuid>,
    window: Window,
) -> StoreResult<Vec<TemplateRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM templates WHERE deleted_at IS NULL \
         AND ($1 IS NULL OR generator_id = $1 OR generator_id IS NULL) \
         ORDER BY name, id LIMIT $2 OFFSET $3"
    );
    Ok(
        with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(generator)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?,
    )
}

/// One version of a template (deleted templates included: their stacks keep working).
pub async fn version(db: &Db, id: Uuid, version: u32) -> StoreResult<Option<TemplateVersion>> {
    const SQL: &str = "SELECT template_id, version, description, template_yaml, schema_json, created_at \
                       FROM template_versions WHERE template_id = $1 AND version = $2";
    let row: Option<VersionRow> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(id)
        .bind(i64::from(version))
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(Into::into))
}

/// Every version of a template, newest first.
pub async fn versions(db: &Db, id: Uuid, window: Window) -> StoreResult<Vec<TemplateVersion>> {
    const SQL: &str = "SELECT template_id, version, description, template_yaml, schema_json, created_at \
                       FROM template_versions WHERE template_id = $1 ORDER BY version DESC LIMIT $2 OFFSET $3";
    let rows: Vec<VersionRow> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(id)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Soft-deletes a template; `false` when it was already gone.
pub async fn delete(tx: &mut Tx, id: Uuid) -> StoreResult<bool> {
    const SQL: &str = "UPDATE templates SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL";
    let n = with_tx!(tx, conn => sqlx::query(SQL).bind(id).bind(Utc::now()).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}
