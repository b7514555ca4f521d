//! Serialized target-state entries, one per deployment object, kept in a size-bounded cache so
//! a changed poll costs string concatenation rather than a query and a serialization per stack.
//! Loads are coalesced: when many agents wake for the same new deployment object, one query
//! serves them all.

use std::sync::Arc;

use uuid::Uuid;

use super::View;
use crate::db::{Db, StoreError, StoreResult, target_state};

/// Bytes of serialized entries kept in memory.
const CAPACITY_BYTES: u64 = 256 * 1024 * 1024;

type Cache = moka::future::Cache<Uuid, Arc<str>>;

#[derive(Debug)]
pub struct Fragments {
    cache: Cache,
}

impl Default for Fragments {
    fn default() -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|_, v: &Arc<str>| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .build();
        Self { cache }
    }
}

/// Loads the entries of `objects` in one query per 500; inserts all but `wanted`, returns it.
async fn load(cache: Cache, db: Db, objects: Vec<Uuid>, wanted: Uuid) -> StoreResult<Arc<str>> {
    let mut found = None;
    for stack in target_state::load_objects(&db, &objects).await? {
        let id = stack.deployment_object.id;
        let json: Arc<str> = serde_json::to_string(&stack)
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

    async fn entry(&self, db: &Db, object: Uuid, batch: Vec<Uuid>) -> StoreResult<Arc<str>> {
        let loader = load(self.cache.clone(), db.clone(), batch, object);
        self.cache
            .try_get_with(object, loader)
            .await
            .map_err(StoreError::Shared)
    }

    /// The JSON body of an agent's target state as its view describes it.
    pub async fn body(&self, db: &Db, agent: Uuid, view: &View) -> StoreResult<String> {
        let (etag, pairs) = (view.etag.as_str(), view.pairs.as_slice());
        let missing: Vec<Uuid> = pairs
            .iter()
            .map(|(_, o)| *o)
            .filter(|o| !self.cache.contains_key(o))
            .collect();
        if let Some(first) = missing.first() {
            // One query for everything missing; concurrent requests wait for it.
            self.entry(db, *first, missing.clone()).await?;
        }
        let mut parts = Vec::with_capacity(pairs.len());
        for (_, object) in pairs {
            parts.push(self.entry(db, *object, vec![*object]).await?);
        }
        let size: usize =
            parts.iter().map(|p| p.len() + 1).sum::<usize>() + view.policies.len() + 128;
        let mut body = String::with_capacity(size);
        body.push_str("{\"agent_id\":\"");
        body.push_str(&agent.to_string());
        body.push_str("\",\"etag\":\"");
        body.push_str(etag);
        body.push_str("\",\"stacks\":[");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(part);
        }
        body.push_str("],\"policies\":");
        body.push_str(&view.policies);
        body.push('}');
        Ok(body)
    }
}
