//! The materialized assignment set (which stacks reach which agents, and by which rules) and
//! the facts the targeting rules are computed from.

use std::collections::{BTreeMap, HashMap};

use brokkr_policy::{AgentFacts, StackFacts};
use brokkr_types::resources::AgentReach;
use chrono::Utc;
use uuid::Uuid;

use super::{Db, StoreResult, Tx, Window, with_db, with_tx};

/// Which rows a facts query covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    All,
    Ids(&'a [Uuid]),
}

/// Ids per `IN (…)` list, well under every backend's parameter limit.
const CHUNK: usize = 500;
/// Rows per multi-row statement on SQLite (four parameters each, well inside its limit of
/// 32,766).
const SQLITE_ROWS: usize = 1000;

fn push_ids<DB: sqlx::Database>(builder: &mut sqlx::QueryBuilder<DB>, ids: &[Uuid])
where
    Uuid: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    builder.push(" (");
    let mut list = builder.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    list.push_unseparated(")");
}

/// Runs `base` (ending in `… IN`) for `ids` (on SQLite once per chunk of them, on PostgreSQL
/// once with `= ANY` of an array), or once with `all` for everything.
macro_rules! fetch_scoped {
    ($tx:expr, $scope:expr, $all:expr, $base:expr, $row:ty) => {{
        let mut rows: Vec<$row> = Vec::new();
        match $scope {
            Scope::All => {
                let fetched: Vec<$row> = with_tx!($tx, conn => sqlx::query_as($all).fetch_all(conn).await)?;
                rows.extend(fetched);
            }
            Scope::Ids(ids) => match $tx {
                // One statement binding an array, whatever the number of ids.
                Tx::Postgres(t) => {
                    let base: &str = $base;
                    let sql = format!("{} = ANY($1)", base.strip_suffix("IN").unwrap_or(base));
                    let fetched: Vec<$row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(ids)
                        .fetch_all(&mut **t)
                        .await?;
                    rows.extend(fetched);
                }
                Tx::Sqlite(t) => {
                    for chunk in ids.chunks(CHUNK) {
                        let mut builder = sqlx::QueryBuilder::new($base);
                        push_ids(&mut builder, chunk);
                        let fetched: Vec<$row> = builder.build_query_as().fetch_all(&mut **t).await?;
                        rows.extend(fetched);
                    }
                }
            },
        }
        rows
    }};
}

/// Facts of live agents.
pub async fn agent_facts(tx: &mut Tx, scope: Scope<'_>) -> StoreResult<Vec<AgentFacts>> {
    if matches!(scope, Scope::Ids([])) {
        return Ok(Vec::new());
    }
    let agents = fetch_scoped!(
        tx,
        scope,
        "SELECT id, name, cluster_name FROM agents WHERE deleted_at IS NULL",
        "SELECT id, name, cluster_name FROM agents WHERE deleted_at IS NULL AND id IN",
        (Uuid, String, String)
    );
    let labels = fetch_scoped!(
        tx,
        scope,
        "SELECT l.agent_id, l.label FROM agent_labels l JOIN agents a ON a.id = l.agent_id WHERE a.deleted_at IS NULL",
        "SELECT agent_id, label FROM agent_labels WHERE agent_id IN",
        (Uuid, String)
    );
    let annotations = fetch_scoped!(
        tx,
        scope,
        "SELECT n.agent_id, n.key, n.value FROM agent_annotations n JOIN agents a ON a.id = n.agent_id WHERE a.deleted_at IS NULL",
        "SELECT agent_id, key, value FROM agent_annotations WHERE agent_id IN",
        (Uuid, String, String)
    );
    let (mut label_map, mut annotation_map) = group(labels, annotations);
    Ok(agents
        .into_iter()
        .map(|(id, name, cluster_name)| AgentFacts {
            id: id.to_string(),
            name,
            cluster_name,
            labels: label_map.remove(&id).unwrap_or_default(),
            annotations: annotation_map.remove(&id).unwrap_or_default(),
        })
        .collect())
}

type Grouped = (
    HashMap<Uuid, Vec<String>>,
    HashMap<Uuid, BTreeMap<String, String>>,
);

fn group(labels: Vec<(Uuid, String)>, annotations: Vec<(Uuid, String, String)>) -> Grouped {
    let mut label_map: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (id, label) in labels {
        label_map.entry(id).or_default().push(label);
    }
    let mut annotation_map: HashMap<Uuid, BTreeMap<String, String>> = HashMap::new();
    for (id, key, value) in annotations {
        annotation_map.entry(id).or_default().insert(key, value);
    }
    (label_map, annotation_map)
}

/// A live stack's facts, its owner and its expression's source.
#[derive(Debug, Clone)]
pub struct StackRow {
    pub facts: StackFacts,
    pub generator_id: Uuid,
    pub expression: Option<String>,
}

/// Facts of live stacks.
pub async fn stack_facts(tx: &mut Tx, scope: Scope<'_>) -> StoreResult<Vec<StackRow>> {
    if matches!(scope, Scope::Ids([])) {
        return Ok(Vec::new());
    }
    let stacks = fetch_scoped!(
        tx,
        scope,
        "SELECT s.id, s.name, g.id, g.name, s.target_expression FROM stacks s JOIN generators g ON g.id = s.generator_id WHERE s.deleted_at IS NULL",
        "SELECT s.id, s.name, g.id, g.name, s.target_expression FROM stacks s JOIN generators g ON g.id = s.generator_id WHERE s.deleted_at IS NULL AND s.id IN",
        (Uuid, String, Uuid, String, Option<String>)
    );
    let labels = fetch_scoped!(
        tx,
        scope,
        "SELECT l.stack_id, l.label FROM stack_labels l JOIN stacks s ON s.id = l.stack_id WHERE s.deleted_at IS NULL",
        "SELECT stack_id, label FROM stack_labels WHERE stack_id IN",
        (Uuid, String)
    );
    let annotations = fetch_scoped!(
        tx,
        scope,
        "SELECT n.stack_id, n.key, n.value FROM stack_annotations n JOIN stacks s ON s.id = n.stack_id WHERE s.deleted_at IS NULL",
        "SELECT stack_id, key, value FROM stack_annotations WHERE stack_id IN",
        (Uuid, String, String)
    );
    let (mut label_map, mut annotation_map) = group(labels, annotations);
    Ok(stacks
        .into_iter()
        .map(|(id, name, generator_id, generator, expression)| StackRow {
            facts: StackFacts {
                id: id.to_string(),
                name,
                generator,
                labels: label_map.remove(&id).unwrap_or_default(),
                annotations: annotation_map.remove(&id).unwrap_or_default(),
            },
            generator_id,
            expression,
        })
        .collect())
}

/// Owners (agents or stacks, by table) sharing a label or an annotation pair.
async fn sharing(
    tx: &mut Tx,
    labels_table: &str,
    annotations_table: &str,
    owner: &str,
    labels: &[String],
    annotations: &BTreeMap<String, String>,
) -> StoreResult<Vec<Uuid>> {
    let mut found = Vec::new();
    for chunk in labels.chunks(CHUNK) {
        let ids: Vec<Uuid> = with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new(format!("SELECT DISTINCT {owner} FROM {labels_table} WHERE label IN "));
            super::push_list(&mut b, chunk.iter().cloned());
            b.build_query_scalar().fetch_all(conn).await
        })?;
        found.extend(ids);
    }
    let pairs: Vec<(&String, &String)> = annotations.iter().collect();
    for chunk in pairs.chunks(CHUNK / 2) {
        let ids: Vec<Uuid> = with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new(format!("SELECT DISTINCT {owner} FROM {annotations_table} WHERE "));
            for (i, (key, value)) in chunk.iter().enumerate() {
                if i > 0 {
                    b.push(" OR ");
                }
                b.push("(key = ").push_bind((*key).clone()).push(" AND value = ").push_bind((*value).clone()).push(")");
            }
            b.build_query_scalar().fetch_all(conn).await
        })?;
        found.extend(ids);
    }
    found.sort();
    found.dedup();
    Ok(found)
}

pub async fn agents_sharing(tx: &mut Tx, stack: &StackFacts) -> StoreResult<Vec<Uuid>> {
    sharing(
        tx,
        "agent_labels",
        "agent_annotations",
        "agent_id",
        &stack.labels,
        &stack.annotations,
    )
    .await
}

pub async fn stacks_sharing(tx: &mut Tx, agent: &AgentFacts) -> StoreResult<Vec<Uuid>> {
    sharing(
        tx,
        "stack_labels",
        "stack_annotations",
        "stack_id",
        &agent.labels,
        &agent.annotations,
    )
    .await
}

/// Live stacks that target with an expression, of generators whose reach holds `agent`.
pub async fn stacks_with_expressions_reaching(tx: &mut Tx, agent: Uuid) -> StoreResult<Vec<Uuid>> {
    const SQL: &str = "SELECT s.id FROM stacks s JOIN reach r ON r.generator_id = s.generator_id \
                       WHERE r.agent_id = $1 AND s.deleted_at IS NULL AND s.target_expression IS NOT NULL";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(agent).fetch_all(conn).await)?)
}

/// Direct assignments of a stack: `(agent, made by an admin)`.
pub async fn direct_of_stack(tx: &mut Tx, stack: Uuid) -> StoreResult<Vec<(Uuid, bool)>> {
    const SQL: &str =
        "SELECT agent_id, assigned_by = 'admin' FROM agent_targets WHERE stack_id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).bind(stack).fetch_all(conn).await)?)
}

/// Direct assignments of an agent: `(stack, made by an admin)`.
pub async fn direct_of_agent(tx: &mut Tx, agent: Uuid) -> StoreResult<Vec<(Uuid, bool)>> {
    const SQL: &str =
        "SELECT stack_id, assigned_by = 'admin' FROM agent_targets WHERE agent_id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).bind(agent).fetch_all(conn).await)?)
}

/// Current assignments of a stack: `(agent, rules)`.
pub async fn current_of_stack(tx: &mut Tx, stack: Uuid) -> StoreResult<Vec<(Uuid, String)>> {
    const SQL: &str = "SELECT agent_id, rules FROM assignments WHERE stack_id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).bind(stack).fetch_all(conn).await)?)
}

/// Current assignments of an agent to live stacks: `(stack, rules)`.
pub async fn current_of_agent(tx: &mut Tx, agent: Uuid) -> StoreResult<Vec<(Uuid, String)>> {
    const SQL: &str = "SELECT a.stack_id, a.rules FROM assignments a JOIN stacks s ON s.id = a.stack_id \
                       WHERE a.agent_id = $1 AND s.deleted_at IS NULL";
    Ok(with_tx!(tx, conn => sqlx::query_as(SQL).bind(agent).fetch_all(conn).await)?)
}

/// Agents a stack reaches (for waking them when it changes).
pub async fn agents_of_stack(tx: &mut Tx, stack: Uuid) -> StoreResult<Vec<Uuid>> {
    const SQL: &str = "SELECT agent_id FROM assignments WHERE stack_id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(stack).fetch_all(conn).await)?)
}

/// Inserts or updates assignments `(agent, stack, rules)`, remembering every pair in the
/// assignment history (on PostgreSQL, two statements binding column arrays; on SQLite,
/// multi-row inserts).
pub async fn upsert(tx: &mut Tx, rows: &[(Uuid, Uuid, String)]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let t = match tx {
        Tx::Postgres(t) => t,
        Tx::Sqlite(t) => return upsert_rows(t, rows, now).await,
    };
    const ASSIGN: &str = "INSERT INTO assignments (agent_id, stack_id, rules, updated_at) \
                          SELECT a, s, r, $4 FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS p(a, s, r) \
                          ON CONFLICT (agent_id, stack_id) DO UPDATE \
                          SET rules = excluded.rules, updated_at = excluded.updated_at";
    const REMEMBER: &str = "INSERT INTO assignment_history (agent_id, stack_id, first_assigned_at) \
                            SELECT a, s, $3 FROM UNNEST($1::uuid[], $2::uuid[]) AS p(a, s) \
                            ON CONFLICT (agent_id, stack_id) DO NOTHING";
    let agents: Vec<Uuid> = rows.iter().map(|(a, _, _)| *a).collect();
    let stacks: Vec<Uuid> = rows.iter().map(|(_, s, _)| *s).collect();
    let rules: Vec<&str> = rows.iter().map(|(_, _, r)| r.as_str()).collect();
    sqlx::query(ASSIGN)
        .bind(&agents)
        .bind(&stacks)
        .bind(&rules)
        .bind(now)
        .execute(&mut **t)
        .await?;
    sqlx::query(REMEMBER)
        .bind(&agents)
        .bind(&stacks)
        .bind(now)
        .execute(&mut **t)
        .await?;
    Ok(())
}

async fn upsert_rows(
    t: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    rows: &[(Uuid, Uuid, String)],
    now: chrono::DateTime<Utc>,
) -> StoreResult<()> {
    for chunk in rows.chunks(SQLITE_ROWS) {
        let mut b = sqlx::QueryBuilder::new(
            "INSERT INTO assignments (agent_id, stack_id, rules, updated_at) ",
        );
        b.push_values(chunk, |mut row, (agent, stack, rules)| {
            row.push_bind(*agent)
                .push_bind(*stack)
                .push_bind(rules.as_str())
                .push_bind(now);
        });
        b.push(
            " ON CONFLICT (agent_id, stack_id) DO UPDATE \
             SET rules = excluded.rules, updated_at = excluded.updated_at",
        );
        b.build().execute(&mut **t).await?;
        let mut h = sqlx::QueryBuilder::new(
            "INSERT INTO assignment_history (agent_id, stack_id, first_assigned_at) ",
        );
        h.push_values(chunk, |mut row, (agent, stack, _)| {
            row.push_bind(*agent).push_bind(*stack).push_bind(now);
        });
        h.push(" ON CONFLICT (agent_id, stack_id) DO NOTHING");
        h.build().execute(&mut **t).await?;
    }
    Ok(())
}

/// Whether `stack` is, or ever was, assigned to `agent`.
pub async fn ever_assigned(tx: &mut Tx, agent: Uuid, stack: Uuid) -> StoreResult<bool> {
    const SQL: &str =
        "SELECT COUNT(*) FROM assignment_history WHERE agent_id = $1 AND stack_id = $2";
    let n: i64 = with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(agent).bind(stack).fetch_one(conn).await)?;
    Ok(n > 0)
}

/// Removes assignments `(agent, stack)`.
pub async fn remove(tx: &mut Tx, pairs: &[(Uuid, Uuid)]) -> StoreResult<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(t) => {
            const SQL: &str = "DELETE FROM assignments WHERE (agent_id, stack_id) IN \
                               (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))";
            sqlx::query(SQL)
                .bind(pairs.iter().map(|(a, _)| *a).collect::<Vec<_>>())
                .bind(pairs.iter().map(|(_, s)| *s).collect::<Vec<_>>())
                .execute(&mut **t)
                .await?;
        }
        Tx::Sqlite(t) => {
            for chunk in pairs.chunks(SQLITE_ROWS) {
                let mut b = sqlx::QueryBuilder::new(
                    "DELETE FROM assignments WHERE (agent_id, stack_id) IN (VALUES ",
                );
                let mut pairs = b.separated(", ");
                for (agent, stack) in chunk {
                    pairs.push("(");
                    pairs.push_bind_unseparated(*agent);
                    pairs.push_unseparated(", ");
                    pairs.push_bind_unseparated(*stack);
                    pairs.push_unseparated(")");
                }
                b.push(")");
                b.build().execute(&mut **t).await?;
            }
        }
    }
    Ok(())
}

/// Removes every assignment of an agent (it was deleted).
pub async fn remove_agent(tx: &mut Tx, agent: Uuid) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM assignments WHERE agent_id = $1";
    with_tx!(tx, conn => sqlx::query(SQL).bind(agent).execute(conn).await.map(|_| ()))?;
    Ok(())
}

/// The agents a stack reaches, by name, with their rules and whether each is inside the
/// owning generator's reach. `only_within_reach` leaves out the agents outside it.
pub async fn reach_of_stack(
    db: &Db,
    stack: Uuid,
    only_within_reach: bool,
    window: Window,
) -> StoreResult<Vec<AgentReach>> {
    const SQL: &str = "SELECT a.agent_id, g.name, a.rules, r.agent_id IS NOT NULL FROM assignments a \
                       JOIN agents g ON g.id = a.agent_id JOIN stacks s ON s.id = a.stack_id \
                       LEFT JOIN reach r ON r.generator_id = s.generator_id AND r.agent_id = a.agent_id \
                       WHERE a.stack_id = $1 AND g.deleted_at IS NULL AND ($2 = FALSE OR r.agent_id IS NOT NULL) \
                       ORDER BY g.name, a.agent_id LIMIT $3 OFFSET $4";
    let rows: Vec<(Uuid, String, String, bool)> = with_db!(db, pool => sqlx::query_as(SQL)
        .bind(stack)
        .bind(only_within_reach)
        .bind(window.probe_limit())
        .bind(window.offset())
        .fetch_all(pool)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|(agent_id, agent_name, rules, within_reach)| AgentReach {
            agent_id,
            agent_name,
            rules: split_rules(&rules),
            within_reach,
        })
        .collect())
}

/// The stored rules (a JSON array of rule codes) as a list.
pub fn split_rules(rules: &str) -> Vec<String> {
    serde_json::from_str(rules).unwrap_or_else(|_| vec![rules.to_string()])
}

/// Rule codes as stored.
pub fn join_rules(rules: &[String]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".into())
}

/// Whether a stack is in an agent's assignment set.
pub async fn assigned(db: &Db, agent: Uuid, stack: Uuid) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM assignments WHERE agent_id = $1 AND stack_id = $2";
    let n: i64 = with_db!(db, pool => sqlx::query_scalar(SQL).bind(agent).bind(stack).fetch_one(pool).await)?;
    Ok(n > 0)
}
