//! The materialized reach: which agents each generator's stacks may reach. Rows are rewritten
//! when an agent's facts change (for every generator) or a generator's reach changes (for
//! every agent), so reads only join.

use std::collections::HashSet;

use uuid::Uuid;

use super::{Db, StoreResult, Tx, with_db, with_tx};

/// Ids per statement, well under every backend's parameter limit.
const CHUNK: usize = 400;

/// Replaces the generators that reach `agent`.
pub async fn set_for_agent(tx: &mut Tx, agent: Uuid, generators: &[Uuid]) -> StoreResult<()> {
    const DELETE: &str = "DELETE FROM reach WHERE agent_id = $1";
    with_tx!(tx, conn => sqlx::query(DELETE).bind(agent).execute(conn).await.map(|_| ()))?;
    let pairs: Vec<(Uuid, Uuid)> = generators.iter().map(|g| (*g, agent)).collect();
    insert(tx, &pairs).await
}

/// Replaces the agents `generator` reaches.
pub async fn set_for_generator(tx: &mut Tx, generator: Uuid, agents: &[Uuid]) -> StoreResult<()> {
    const DELETE: &str = "DELETE FROM reach WHERE generator_id = $1";
    with_tx!(tx, conn => sqlx::query(DELETE).bind(generator).execute(conn).await.map(|_| ()))?;
    let pairs: Vec<(Uuid, Uuid)> = agents.iter().map(|a| (generator, *a)).collect();
    insert(tx, &pairs).await
}

async fn insert(tx: &mut Tx, pairs: &[(Uuid, Uuid)]) -> StoreResult<()> {
    for chunk in pairs.chunks(CHUNK) {
        with_tx!(tx, conn => {
            let mut b = sqlx::QueryBuilder::new("INSERT INTO reach (generator_id, agent_id) ");
            b.push_values(chunk, |mut row, (generator, agent)| {
                row.push_bind(*generator).push_bind(*agent);
            });
            b.build().execute(conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// Removes a deleted agent or generator from the reach, and its grants.
pub async fn forget_agent(tx: &mut Tx, agent: Uuid) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM reach_grants WHERE agent_id = $1";
    with_tx!(tx, conn => sqlx::query(SQL).bind(agent).execute(conn).await.map(|_| ()))?;
    set_for_agent(tx, agent, &[]).await
}

pub async fn forget_generator(tx: &mut Tx, generator: Uuid) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM reach_grants WHERE generator_id = $1";
    with_tx!(tx, conn => sqlx::query(SQL).bind(generator).execute(conn).await.map(|_| ()))?;
    set_for_generator(tx, generator, &[]).await
}

/// Puts `agent` inside the reach of `generators` for good (enrollment), whatever their
/// expressions say; the materialized reach follows at the next refresh.
pub async fn grant(tx: &mut Tx, agent: Uuid, generators: &[Uuid]) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO reach_grants (generator_id, agent_id) VALUES ($1, $2) \
                       ON CONFLICT DO NOTHING";
    for generator in generators {
        with_tx!(tx, conn => sqlx::query(SQL).bind(*generator).bind(agent).execute(conn).await.map(|_| ()))?;
    }
    Ok(())
}

/// The generators that granted `agent` their reach.
pub async fn grants_to_agent(tx: &mut Tx, agent: Uuid) -> StoreResult<Vec<Uuid>> {
    const SQL: &str = "SELECT generator_id FROM reach_grants WHERE agent_id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(agent).fetch_all(conn).await)?)
}

/// The agents `generator` granted its reach to.
pub async fn grants_of_generator(tx: &mut Tx, generator: Uuid) -> StoreResult<Vec<Uuid>> {
    const SQL: &str = "SELECT agent_id FROM reach_grants WHERE generator_id = $1";
    Ok(with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(generator).fetch_all(conn).await)?)
}

/// The agents `generator` reaches.
pub async fn agents_of(tx: &mut Tx, generator: Uuid) -> StoreResult<HashSet<Uuid>> {
    const SQL: &str = "SELECT agent_id FROM reach WHERE generator_id = $1";
    let ids: Vec<Uuid> =
        with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(generator).fetch_all(conn).await)?;
    Ok(ids.into_iter().collect())
}

/// The generators whose reach holds `agent`.
pub async fn generators_of(tx: &mut Tx, agent: Uuid) -> StoreResult<HashSet<Uuid>> {
    const SQL: &str = "SELECT generator_id FROM reach WHERE agent_id = $1";
    let ids: Vec<Uuid> =
        with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(agent).fetch_all(conn).await)?;
    Ok(ids.into_iter().collect())
}

/// Whether `generator` reaches `agent`.
pub async fn contains(db: &Db, generator: Uuid, agent: Uuid) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM reach WHERE generator_id = $1 AND agent_id = $2";
    let n: i64 = with_db!(db, pool => sqlx::query_scalar(SQL).bind(generator).bind(agent).fetch_one(pool).await)?;
    Ok(n > 0)
}

/// [`contains`] inside a transaction.
pub async fn contains_in(tx: &mut Tx, generator: Uuid, agent: Uuid) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM reach WHERE generator_id = $1 AND agent_id = $2";
    let n: i64 = with_tx!(tx, conn => sqlx::query_scalar(SQL).bind(generator).bind(agent).fetch_one(conn).await)?;
    Ok(n > 0)
}

/// How many live agents `generator` reaches.
pub async fn count_of(db: &Db, generator: Uuid) -> StoreResult<u64> {
    const SQL: &str = "SELECT COUNT(*) FROM reach r JOIN agents a ON a.id = r.agent_id \
                       WHERE r.generator_id = $1 AND a.deleted_at IS NULL";
    let n: i64 =
        with_db!(db, pool => sqlx::query_scalar(SQL).bind(generator).fetch_one(pool).await)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
