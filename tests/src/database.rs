//! A fresh database per test on either backend.

use uuid::Uuid;

/// The two storage backends every database test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("BROKKR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// An empty database: its URL, its name on PostgreSQL, and the folder holding a SQLite file.
#[allow(missing_debug_implementations)]
pub struct FreshDatabase {
    pub url: String,
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl FreshDatabase {
    pub async fn create(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("brokkr.db").display()),
                name: "brokkr".into(),
                dir,
            },
            Backend::Postgres => {
                let name = format!("brokkr_test_{}", Uuid::new_v4().simple());
                let admin = postgres_admin().await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                Self {
                    url: postgres_url(&name, None),
                    name,
                    dir,
                }
            }
        }
    }
}

/// A connection pool on the PostgreSQL server's administrative database.
pub async fn postgres_admin() -> sqlx::PgPool {
    let url = postgres_admin_url();
    sqlx::PgPool::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required by the test suite and could not be reached at {url}: {e}. \
             Start it (scripts/ensure-postgres.sh) or set BROKKR_TEST_POSTGRES_URL."
        )
    })
}

/// The URL of database `name` on the test server, optionally through another port.
pub fn postgres_url(name: &str, port: Option<u16>) -> String {
    let admin = postgres_admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    match port {
        None => format!("{base}/{name}"),
        Some(port) => {
            let user = base
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('@'))
                .map_or("postgres", |(user, _)| user);
            format!("postgres://{user}@127.0.0.1:{port}/{name}")
        }
    }
}
