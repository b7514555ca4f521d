//! Serialized target-state entries, one per deployment object, kept in a size-bounded cache so
//! a changed poll costs string concatenation rather than a query and a serialization per stack.

use std::sync::Arc;

use brokkr_types::target_state::TargetStack;
use uuid::Uuid;

use crate::db::{Db, StoreResult, target_state};

/// Bytes of serialized entries kept in memory.
const CAPACITY_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug)]
pub struct Fragments {
    cache: moka::sync::Cache<Uuid, Arc<str>>,
}

impl Default for Fragments {
    fn default() -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|_, v: &Arc<str>| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .build();
        Self { cache }
    }
}

impl Fragments {
    /// Forgets the entry of a deployment object (its stack was renamed).
    pub fn forget(&self, object: Uuid) {
        self.cache.invalidate(&object);
    }

    /// The JSON body of a target state with these `(stack, deployment object)` pairs.
    pub async fn body(
        &self,
        db: &Db,
        agent: Uuid,
        etag: &str,
        pairs: &[(Uuid, Uuid)],
    ) -> StoreResult<String> {
        let missing: Vec<Uuid> = pairs
            .iter()
            .map(|(_, o)| *o)
            .filter(|o| !self.cache.contains_key(o))
            .collect();
        if !missing.is_empty() {
            for stack in target_state::load_objects(db, &missing).await? {
                let id = stack.deployment_object.id;
                if let Ok(json) = serde_json::to_string(&stack) {
                    self.cache.insert(id, Arc::from(json));
                }
            }
        }
        let mut parts = Vec::with_capacity(pairs.len());
        for (_, object) in pairs {
            match self.cache.get(object) {
                Some(part) => parts.push(part),
                None => parts.push(Self::reload(db, *object).await?),
            }
        }
        let size: usize = parts.iter().map(|p| p.len() + 1).sum::<usize>() + 128;
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
        body.push_str("]}");
        Ok(body)
    }

    /// Loads one entry directly (it was evicted between the bulk load and its use).
    async fn reload(db: &Db, object: Uuid) -> StoreResult<Arc<str>> {
        let stacks: Vec<TargetStack> = target_state::load_objects(db, &[object]).await?;
        let json = stacks
            .first()
            .and_then(|s| serde_json::to_string(s).ok())
            .unwrap_or_else(|| "null".into());
        Ok(Arc::from(json))
    }
}
