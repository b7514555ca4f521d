//! Labels (plain tags) and annotations (key/value pairs) of agents and stacks.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::{Db, StoreResult, Tx, with_db, with_tx};

/// Whose labels and annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Agent,
    Stack,
}

/// The labels and annotations of one agent or stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub labels: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}

struct Sql {
    count: &'static str,
    add_label: &'static str,
    remove_label: &'static str,
    set_annotation: &'static str,
    remove_annotation: &'static str,
    labels_of: &'static str,
    annotations_of: &'static str,
}

macro_rules! sql_for {
    ($labels:literal, $annotations:literal, $col:literal) => {
        Sql {
            count: concat!(
                "SELECT (SELECT COUNT(*) FROM ",
                $labels,
                " WHERE ",
                $col,
                " = $1), (SELECT COUNT(*) FROM ",
                $annotations,
                " WHERE ",
                $col,
                " = $1)"
            ),
            add_label: concat!(
                "INSERT INTO ",
                $labels,
                " (",
                $col,
                ", label) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            ),
            remove_label: concat!(
                "DELETE FROM ",
                $labels,
                " WHERE ",
                $col,
                " = $1 AND label = $2"
            ),
            set_annotation: concat!(
                "INSERT INTO ",
                $annotations,
                " (",
                $col,
                ", key, value) VALUES ($1, $2, $3) ",
                "ON CONFLICT (",
                $col,
                ", key) DO UPDATE SET value = excluded.value"
            ),
            remove_annotation: concat!(
                "DELETE FROM ",
                $annotations,
                " WHERE ",
                $col,
                " = $1 AND key = $2"
            ),
            labels_of: concat!(
                "SELECT ",
                $col,
                ", label FROM ",
                $labels,
                " WHERE ",
                $col,
                " IN "
            ),
            annotations_of: concat!(
                "SELECT ",
                $col,
                ", key, value FROM ",
                $annotations,
                " WHERE ",
                $col,
                " IN "
            ),
        }
    };
}

const AGENT: Sql = sql_for!("agent_labels", "agent_annotations", "agent_id");
const STACK: Sql = sql_for!("stack_labels", "stack_annotations", "stack_id");

fn sql(owner: Owner) -> &'static Sql {
    match owner {
        Owner::Agent => &AGENT,
        Owner::Stack => &STACK,
    }
}

/// How many labels and annotations an owner has.
pub async fn count(tx: &mut Tx, owner: Owner, id: Uuid) -> StoreResult<(usize, usize)> {
    let q = sql(owner).count;
    let (labels, annotations): (i64, i64) =
        with_tx!(tx, conn => sqlx::query_as(q).bind(id).fetch_one(conn).await)?;
    let size = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok((size(labels), size(annotations)))
}

/// Adds a label; returns whether it was new.
pub async fn add_label(tx: &mut Tx, owner: Owner, id: Uuid, label: &str) -> StoreResult<bool> {
    let q = sql(owner).add_label;
    let done = with_tx!(tx, conn => sqlx::query(q).bind(id).bind(label).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Removes a label; returns whether it was there.
pub async fn remove_label(tx: &mut Tx, owner: Owner, id: Uuid, label: &str) -> StoreResult<bool> {
    let q = sql(owner).remove_label;
    let done = with_tx!(tx, conn => sqlx::query(q).bind(id).bind(label).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Sets an annotation, replacing any value the key had.
pub async fn set_annotation(
    tx: &mut Tx,
    owner: Owner,
    id: Uuid,
    key: &str,
    value: &str,
) -> StoreResult<()> {
    let q = sql(owner).set_annotation;
    with_tx!(tx, conn => sqlx::query(q).bind(id).bind(key).bind(value).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes an annotation; returns whether it was there.
pub async fn remove_annotation(
    tx: &mut Tx,
    owner: Owner,
    id: Uuid,
    key: &str,
) -> StoreResult<bool> {
    let q = sql(owner).remove_annotation;
    let done = with_tx!(tx, conn => sqlx::query(q).bind(id).bind(key).execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Writes the inline labels and annotations given at creation.
pub async fn write_all(
    tx: &mut Tx,
    owner: Owner,
    id: Uuid,
    metadata: &Metadata,
) -> StoreResult<()> {
    for label in &metadata.labels {
        add_label(tx, owner, id, label).await?;
    }
    for (key, value) in &metadata.annotations {
        set_annotation(tx, owner, id, key, value).await?;
    }
    Ok(())
}

/// Loads the metadata of many owners with two queries.
pub async fn load(db: &Db, owner: Owner, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Metadata>> {
    let mut out: HashMap<Uuid, Metadata> =
        ids.iter().map(|id| (*id, Metadata::default())).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let q = sql(owner);
    let labels: Vec<(Uuid, String)> = with_db!(db, pool => {
        let mut builder = sqlx::QueryBuilder::new(q.labels_of);
        push_id_list(&mut builder, ids);
        builder.push(" ORDER BY label");
        builder.build_query_as().fetch_all(pool).await
    })?;
    let annotations: Vec<(Uuid, String, String)> = with_db!(db, pool => {
        let mut builder = sqlx::QueryBuilder::new(q.annotations_of);
        push_id_list(&mut builder, ids);
        builder.build_query_as().fetch_all(pool).await
    })?;
    for (id, label) in labels {
        out.entry(id).or_default().labels.push(label);
    }
    for (id, key, value) in annotations {
        out.entry(id).or_default().annotations.insert(key, value);
    }
    Ok(out)
}

fn push_id_list<'a, DB>(builder: &mut sqlx::QueryBuilder<DB>, ids: &'a [Uuid])
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    builder.push("(");
    let mut separated = builder.separated(", ");
    for id in ids {
        separated.push_bind(*id);
    }
    separated.push_unseparated(")");
}

/// Loads the metadata of one owner.
pub async fn load_one(db: &Db, owner: Owner, id: Uuid) -> StoreResult<Metadata> {
    Ok(load(db, owner, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default())
}
