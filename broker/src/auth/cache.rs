//! The authentication cache: a moka TTL cache keyed by short token, so a hit never touches the
//! database. Rotation and deletion invalidate entries at once, on every replica (PostgreSQL
//! `LISTEN/NOTIFY` on [`INVALIDATION_CHANNEL`]).

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use super::{Principal, pak};
use crate::db::paks::{self, Credential};
use crate::db::{Db, StoreError};

pub use crate::db::paks::INVALIDATION_CHANNEL;

/// Why a presented key was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("no PAK was presented")]
    Missing,
    #[error("the PAK is malformed")]
    Malformed,
    #[error("the PAK is not valid")]
    Invalid,
    #[error("credential lookup failed: {0}")]
    Lookup(Arc<StoreError>),
}

/// Checks PAKs against the database through a TTL cache.
#[derive(Clone)]
pub struct Authenticator {
    db: Db,
    cache: Cache<String, Option<Arc<Credential>>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Authenticator {
    pub fn new(db: Db, ttl: Duration, capacity: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .time_to_live(ttl)
            .build();
        Self { db, cache }
    }

    /// Resolves a presented PAK to its principal.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, AuthError> {
        let parsed = pak::parse(presented).ok_or(AuthError::Malformed)?;
        let credential = self.credential(parsed.short).await?;
        match credential {
            Some(c) if pak::verify(parsed.long, &c.long_hash) => Ok(c.principal),
            _ => Err(AuthError::Invalid),
        }
    }

    async fn credential(&self, short: &str) -> Result<Option<Arc<Credential>>, AuthError> {
        let db = self.db.clone();
        let key = short.to_string();
        self.cache
            .try_get_with(key.clone(), async move {
                paks::find(&db, &key).await.map(|found| found.map(Arc::new))
            })
            .await
            .map_err(AuthError::Lookup)
    }

    /// Drops one short token from this replica's cache.
    pub async fn invalidate(&self, short: &str) {
        self.cache.invalidate(short).await;
    }

    /// Cached entries (approximate).
    pub fn entries(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Drops every cached credential (config reload, lost invalidation feed).
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}
