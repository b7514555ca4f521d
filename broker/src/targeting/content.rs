//! Serialized target-state entries, one per deployment object, kept in a size-bounded cache so
//! a changed poll costs no query and no serialization per stack. Loads are coalesced: when many
//! agents wake for the same new deployment object, one query serves them all. A body is a list
//! of shared [`Bytes`]: a thousand agents woken by one 4 MB object hold one copy of it, not a
//! thousand. Each entry's zstd frame is likewise made once (on the blocking pool) and shared.

use bytes::Bytes;
use uuid::Uuid;

use super::View;
use super::encoding::{self, Encoding};
use crate::db::{Db, StoreError, StoreResult, target_state};

/// Bytes of serialized entries kept in memory.
const CAPACITY_BYTES: u64 = 256 * 1024 * 1024;
/// Bytes of compressed entries kept in memory.
const PACKED_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

type Cache = moka::future::Cache<Uuid, Bytes>;

fn cache_of(capacity: u64) -> Cache {
    moka::future::Cache::builder()
        .max_capacity(capacity)
        .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
        .build()
}

#[derive(Debug)]
pub struct Fragments {
    cache: Cache,
    /// The zstd frame of each entry.
    packed: Cache,
}

impl Default for Fragments {
    fn default() -> Self {
        Self {
            cache: cache_of(CAPACITY_BYTES),
            packed: cache_of(PACKED_CAPACITY_BYTES),
        }
    }
}

fn compression_failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Integrity(format!("cannot compress a target-state entry: {e}"))
}

/// The parts of an answer's body, in `encoding`: plain parts as they are, or each made a zstd
/// frame (entries' frames come ready from the cache).
enum Body {
    Plain(Vec<Bytes>),
    Zstd(Vec<Bytes>),
}

impl Body {
    fn new(encoding: Encoding, capacity: usize) -> Self {
        match encoding {
            Encoding::Identity => Self::Plain(Vec::with_capacity(capacity)),
            Encoding::Zstd => Self::Zstd(Vec::with_capacity(capacity)),
        }
    }

    /// Bytes particular to this answer.
    fn own(&mut self, bytes: Bytes) -> StoreResult<()> {
        match self {
            Self::Plain(parts) => parts.push(bytes),
            Self::Zstd(parts) => {
                parts.push(encoding::answer_frame(&bytes).map_err(compression_failed)?)
            }
        }
        Ok(())
    }

    fn comma(&mut self) -> StoreResult<()> {
        match self {
            Self::Plain(parts) => parts.push(Bytes::from_static(b",")),
            Self::Zstd(parts) => parts.push(encoding::comma_frame().map_err(compression_failed)?),
        }
        Ok(())
    }

    /// A cached entry, ready in this body's coding.
    fn push_entry(&mut self, entry: Bytes) {
        match self {
            Self::Plain(parts) | Self::Zstd(parts) => parts.push(entry),
        }
    }

    fn parts(self) -> Vec<Bytes> {
        match self {
            Self::Plain(parts) | Self::Zstd(parts) => parts,
        }
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
        self.packed.invalidate(&object).await;
    }

    /// The zstd frame of an entry, compressed once on the blocking pool.
    async fn packed_entry(&self, db: &Db, object: Uuid) -> StoreResult<Bytes> {
        let plain = self.entry(db, object, vec![object]).await?;
        let compress = async move {
            tokio::task::spawn_blocking(move || encoding::frame_at(&plain, encoding::ENTRY_LEVEL))
                .await
                .map_err(compression_failed)?
                .map_err(compression_failed)
        };
        self.packed
            .try_get_with(object, compress)
            .await
            .map_err(StoreError::Shared)
    }

    async fn entry(&self, db: &Db, object: Uuid, batch: Vec<Uuid>) -> StoreResult<Bytes> {
        let loader = load(self.cache.clone(), db.clone(), batch, object);
        self.cache
            .try_get_with(object, loader)
            .await
            .map_err(StoreError::Shared)
    }

    /// Reads the entry of a new deployment object and its zstd frame into the caches (once,
    /// however many ask).
    pub async fn prefetch(&self, db: &Db, object: Uuid) -> StoreResult<()> {
        self.packed_entry(db, object).await.map(|_| ())
    }

    /// The JSON body of an agent's target state as its view describes it, as shared parts in
    /// `encoding`.
    pub async fn body(
        &self,
        db: &Db,
        agent: Uuid,
        view: &View,
        encoding: Encoding,
    ) -> StoreResult<Vec<Bytes>> {
        let pairs = view.pairs.as_slice();
        // One lookup per entry when every entry is cached (a woken poll's usual case).
        let cache = match encoding {
            Encoding::Identity => &self.cache,
            Encoding::Zstd => &self.packed,
        };
        let mut cached = Vec::with_capacity(pairs.len());
        for (_, object) in pairs {
            cached.push(cache.get(object).await);
        }
        let missing: Vec<Uuid> = pairs
            .iter()
            .zip(&cached)
            .filter(|(_, hit)| hit.is_none())
            .map(|((_, o), _)| *o)
            .filter(|o| !self.cache.contains_key(o))
            .collect();
        if let Some(first) = missing.first() {
            // One query for everything missing; concurrent requests wait for it.
            self.entry(db, *first, missing.clone()).await?;
        }
        let mut body = Body::new(encoding, pairs.len() * 2 + 2);
        body.own(Bytes::from(format!(
            "{{\"agent_id\":\"{agent}\",\"etag\":\"{}\",\"stacks\":[",
            view.etag
        )))?;
        for (i, ((_, object), hit)) in pairs.iter().zip(cached).enumerate() {
            if i > 0 {
                body.comma()?;
            }
            let entry = match (hit, &mut body) {
                (Some(entry), _) => entry,
                (None, Body::Plain(_)) => self.entry(db, *object, vec![*object]).await?,
                (None, Body::Zstd(_)) => self.packed_entry(db, *object).await?,
            };
            body.push_entry(entry);
        }
        let tail = [
            &b"],\"policies\":"[..],
            &view.policies,
            b",\"work_orders\":",
            &view.work,
            b"}",
        ]
        .concat();
        body.own(Bytes::from(tail))?;
        Ok(body.parts())
    }
}
