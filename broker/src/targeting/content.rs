//! Serialized target-state entries, one per deployment object, kept in a size-bounded cache so
//! a changed poll costs no query and no serialization per stack. Loads are coalesced: when many
//! agents wake for the same new deployment object, one query serves them all. A body is a list
//! of shared [`Bytes`]: a thousand agents woken by one 4 MB object hold one copy of it, not a
//! thousand.

use bytes::Bytes;
use uuid::Uuid;

use super::View;
use crate::db::{Db, StoreError, StoreResult, target_state};

/// Bytes of serialized entries kept in memory.
const CAPACITY_BYTES: u64 = 256 * 1024 * 1024;

type Cache = moka::future::Cache<Uuid, Bytes>;

#[derive(Debug)]
pub struct Fragments {
    cache: Cache,
}

impl Default for Fragments {
    fn default() -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .build();
        Self { cache }
    }
}

/// Loads the entries of `objects` in one query per 500; inserts all but `wanted`, returns it.
async fn load(cache: Cache, db: Db, objects: Vec<Uuid>, wanted: Uuid) -> StoreResult<Bytes> {
    let mut found = None;
    for stack in target_state::load_objects(&db, &objects).await? {
        let id = stack.deployment_object.id;
        let json: Bytes = serde_json::to_vec(&stack)
            .map_err(|e| {
                StoreError::Integrity(format!("cannot serialise a target-state entry: {e}"))
            })?
            .into();
        if id == wanted {
            found = Some(json);
        } else {
            cache.insert(id, json).await;
        }
    }
    found.ok_or_else(|| StoreError::Integrity(format!("deployment object {wanted} is missing")))
}

impl Fragments {
    /// Forgets the entry of a deployment object (its stack was renamed).
    pub async fn forget(&self, object: Uuid) {
        self.cache.invalidate(&object).await;
    }

    async fn entry(&self, db: &Db, object: Uuid, batch: Vec<Uuid>) -> StoreResult<Bytes> {
        let loader = load(self.cache.clone(), db.clone(), batch, object);
        self.cache
            .try_get_with(object, loader)
            .await
            .map_err(StoreError::Shared)
    }

    /// The JSON body of an agent's target state as its view describes it, as shared parts.
    pub async fn body(&self, db: &Db, agent: Uuid, view: &View) -> StoreResult<Vec<Bytes>> {
        let pairs = view.pairs.as_slice();
        let missing: Vec<Uuid> = pairs
            .iter()
            .map(|(_, o)| *o)
            .filter(|o| !self.cache.contains_key(o))
            .collect();
        if let Some(first) = missing.first() {
            // One query for everything missing; concurrent requests wait for it.
            self.entry(db, *first, missing.clone()).await?;
        }
        let mut parts = Vec::with_capacity(pairs.len() * 2 + 2);
        parts.push(Bytes::from(format!(
            "{{\"agent_id\":\"{agent}\",\"etag\":\"{}\",\"stacks\":[",
            view.etag
        )));
        for (i, (_, object)) in pairs.iter().enumerate() {
            if i > 0 {
                parts.push(Bytes::from_static(b","));
            }
            parts.push(self.entry(db, *object, vec![*object]).await?);
        }
        parts.push(Bytes::from_static(b"],\"policies\":"));
        parts.push(view.policies.clone());
        parts.push(Bytes::from_static(b",\"work_orders\":"));
        parts.push(view.work.clone());
        parts.push(Bytes::from_static(b"}"));
        Ok(parts)
    }
}
