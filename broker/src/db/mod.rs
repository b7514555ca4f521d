//! Storage: one [`Db`] handle over PostgreSQL or SQLite, transactions ([`Tx`]) and the queries,
//! one module per table group. Both backends run the same SQL text (`$n` placeholders).

pub mod agents;
pub mod assignments;
pub mod audit;
pub mod audit_chain;
pub mod deliveries;
pub mod deployment_objects;
pub mod enrollment;
pub mod events;
pub mod generators;
pub mod metadata;
pub mod outbox;
pub mod paks;
pub mod plugins;
pub mod reach;
pub mod rollouts;
pub mod stacks;
pub mod staged;
pub mod submission_keys;
pub mod target_state;
pub mod targets;
pub mod templates;
pub mod ui_sessions;
pub mod webhooks;
pub mod work_orders;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

/// A storage failure, typed so handlers can map it to the right HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated (a name already in use, a duplicate key).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// Stored data is not what the code expects.
    #[error("inconsistent data: {0}")]
    Integrity(String),
    /// The same failure, shared by requests that waited on one load.
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// Maps a unique violation to [`StoreError::Conflict`] with `what` as the message.
    pub fn unique(err: sqlx::Error, what: &str) -> Self {
        match err.as_database_error() {
            Some(db) if db.is_unique_violation() => Self::Conflict(what.to_string()),
            _ => Self::Database(err),
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached or is restarting (a pool timeout, a broken
    /// connection, PostgreSQL classes 08 and 57P, SQLite busy): worth retrying, answered 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(err) => database_unavailable(err),
            Self::Shared(inner) => inner.is_unavailable(),
            _ => false,
        }
    }
}

fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs are five characters (class 08: connection, 57P: shutting down);
/// SQLite codes are numbers whose low byte is the primary code (5 busy, 6 locked).
fn unavailable_code(code: &str) -> bool {
    if code.len() == 5 {
        return code.starts_with("08") || code.starts_with("57P");
    }
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A connection pool to either backend.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// An open transaction on either backend; dropped without [`Tx::commit`] it rolls back.
#[derive(Debug)]
pub enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// The PostgreSQL advisory lock every write transaction holds (serialising writers keeps the
/// audit log's hash chain linear).
const WRITER_LOCK: i64 = 0x6272_6f6b_6b72;

/// Runs `$body` with `$pool` bound to the backend's pool (the same code, typed per backend).
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's connection.
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::db::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

pub(crate) use {with_db, with_tx};

/// Appends `(v1, v2, …)` to a query, each value bound (for `IN` lists).
pub(crate) fn push_list<'t, DB, T>(
    b: &mut sqlx::QueryBuilder<DB>,
    values: impl IntoIterator<Item = T>,
) where
    DB: sqlx::Database,
    T: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    b.push("(");
    let mut list = b.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    list.push_unseparated(")");
}

/// When SQLite makes a commit durable (`database.sqlite_synchronous`; PostgreSQL's own
/// `synchronous_commit` plays this part there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// The write-ahead log is flushed to disk before a commit returns: an answered write
    /// survives a power loss.
    #[default]
    Full,
    /// The log is flushed at checkpoints only: an answered write survives a crash of the
    /// broker, but a crash of the operating system or a power loss can undo the last commits
    /// (the database stays consistent). Commits no longer wait for the disk.
    Normal,
}

impl Db {
    /// Connects to `url` (`sqlite://…` creates the file if missing; `postgres://…`), with
    /// SQLite commits flushed to disk.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        Self::connect_with(url, max_connections, SqliteSync::Full).await
    }

    /// As [`Db::connect`], with SQLite's durability chosen by `sync`.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        sync: SqliteSync,
    ) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?;
            private_file(options.get_filename())?;
            let synchronous = match sync {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            };
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Self::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the embedded migrations of this backend. A database that a newer broker has
    /// migrated further is accepted with a warning: migrations only add, so during a rolling
    /// upgrade a replica of the previous version can still restart on it.
    pub async fn migrate(&self) -> StoreResult<()> {
        let mut migrator = match self {
            Self::Postgres(_) => sqlx::migrate!("../migrations/postgres"),
            Self::Sqlite(_) => sqlx::migrate!("../migrations/sqlite"),
        };
        migrator.set_ignore_missing(true);
        match self {
            Self::Postgres(pool) => migrator.run(pool).await?,
            Self::Sqlite(pool) => migrator.run(pool).await?,
        }
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let newest: i64 = with_db!(self, pool => sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations").fetch_one(pool).await)?;
        if newest > known {
            tracing::warn!(
                newest,
                known,
                "a newer broker has migrated this database; this version runs on it"
            );
        }
        Ok(())
    }

    /// Whether Brokkr's migrations were ever applied here.
    pub async fn is_migrated(&self) -> StoreResult<bool> {
        let n: i64 = match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations'")
                    .fetch_one(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(n > 0)
    }

    /// How many migrations have been applied.
    pub async fn applied_migrations(&self) -> StoreResult<i64> {
        if !self.is_migrated().await? {
            return Ok(0);
        }
        Ok(
            with_db!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(pool).await)?,
        )
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        with_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Starts a write transaction that may append to the audit log (`BEGIN IMMEDIATE` on
    /// SQLite, so read-then-write is safe; on PostgreSQL it takes the writer lock).
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Writers take turns, as on SQLite: the audit chain must not fork.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITER_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Starts a read-only transaction (a consistent view for reads that span queries).
    pub async fn begin_read(&self) -> StoreResult<Tx> {
        Ok(match self {
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
        })
    }

    /// Starts a write transaction that must not touch the audit log: on PostgreSQL it does not
    /// wait for the writer lock (agent events and heartbeats never queue behind a retarget).
    pub async fn begin_unaudited(&self) -> StoreResult<Tx> {
        Ok(match self {
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    pub async fn close(&self) {
        with_db!(self, pool => pool.close().await)
    }
}

/// Creates the SQLite file readable by its owner only (it holds manifests, which may hold
/// Secrets), and narrows an existing one; SQLite gives its journal files the same mode.
fn private_file(path: &std::path::Path) -> StoreResult<()> {
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let opened = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .and_then(|file| file.set_permissions(std::fs::Permissions::from_mode(0o600)));
        opened.map_err(|e| {
            StoreError::Integrity(format!("cannot create {} privately: {e}", path.display()))
        })?;
    }
    Ok(())
}

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Self::Postgres(t) => t.commit().await?,
            Self::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

pub use crate::domain::Window;

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `PRAGMA synchronous` of a SQLite database opened with `sync` (1 is NORMAL, 2 is FULL).
    async fn synchronous_of(sync: SqliteSync) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let Db::Sqlite(pool) = Db::connect_with(&url, 1, sync).await.unwrap() else {
            unreachable!("a sqlite URL opens SQLite")
        };
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sqlite_commits_are_flushed_unless_normal_is_chosen() {
        assert_eq!(synchronous_of(SqliteSync::Full).await, 2);
        assert_eq!(synchronous_of(SqliteSync::Normal).await, 1);
    }
}
