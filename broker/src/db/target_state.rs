//! The desired state of one agent, read with a fixed number of queries whatever the number of
//! stacks: one for the fingerprint (stack → latest deployment object, from the materialized
//! assignments) and one for the content of the objects not already cached.

use brokkr_types::resources::DeploymentObject;
use brokkr_types::target_state::TargetStack;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, with_db};

/// `(stack id, deployment object id)` of every stack the agent must converge, ordered by stack.
/// Deleted stacks stay (their latest object is the deletion marker). An agent held back by a
/// staged rollout gets the version it holds instead of the newest.
pub async fn fingerprint(db: &Db, agent_id: Uuid) -> StoreResult<Vec<(Uuid, Uuid)>> {
    const SQL: &str = "SELECT s.id, COALESCE(m.held_object_id, d.id) FROM assignments t \
                       JOIN stacks s ON s.id = t.stack_id \
                       JOIN deployment_objects d ON d.stack_id = s.id AND d.sequence_id = s.last_sequence \
                       LEFT JOIN rollout_members m ON m.stack_id = t.stack_id AND m.agent_id = t.agent_id \
                       WHERE t.agent_id = $1 ORDER BY s.id";
    Ok(with_db!(db, pool => sqlx::query_as(SQL).bind(agent_id).fetch_all(pool).await)?)
}

#[derive(sqlx::FromRow)]
struct Row {
    stack_id: Uuid,
    stack_name: String,
    generator_id: Uuid,
    id: Uuid,
    sequence_id: i64,
    yaml_content: String,
    yaml_checksum: String,
    is_deletion_marker: bool,
    created_at: DateTime<Utc>,
}

/// The entries of these deployment objects (with their stacks' names), in one query per 500.
pub async fn load_objects(db: &Db, objects: &[Uuid]) -> StoreResult<Vec<TargetStack>> {
    let mut out = Vec::with_capacity(objects.len());
    for chunk in objects.chunks(500) {
        let rows: Vec<Row> = with_db!(db, pool => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT s.id AS stack_id, s.name AS stack_name, s.generator_id, d.id, d.sequence_id, \
                 d.yaml_content, d.yaml_checksum, d.is_deletion_marker, d.created_at \
                 FROM deployment_objects d JOIN stacks s ON s.id = d.stack_id WHERE d.id IN ",
            );
            super::push_list(&mut b, chunk.iter().copied());
            b.build_query_as().fetch_all(pool).await
        })?;
        out.extend(rows.into_iter().map(|r| TargetStack {
            stack_id: r.stack_id,
            stack_name: r.stack_name,
            generator_id: r.generator_id,
            deployment_object: DeploymentObject {
                id: r.id,
                stack_id: r.stack_id,
                sequence_id: r.sequence_id,
                yaml_content: r.yaml_content,
                yaml_checksum: r.yaml_checksum,
                is_deletion_marker: r.is_deletion_marker,
                created_at: r.created_at,
                // Agents need the YAML, not where it came from.
                template: None,
            },
        }));
    }
    Ok(out)
}
