//! Building and running the broker: connect and migrate the database, create the admin PAK on
//! first start, bind the listener and serve until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use brokkr_types::Pak;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::{ConfigError, Settings};
use crate::credentials;
use crate::db::{Db, StoreError};
use crate::routes;
use crate::state::AppState;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the database {url}: {source}")]
    Connect { url: String, source: StoreError },
    #[error("cannot migrate the database: {0}")]
    Migrate(StoreError),
    #[error("cannot create the admin PAK: {0}")]
    Bootstrap(StoreError),
    #[error("cannot start the plugin host: {0}")]
    Plugins(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens and migrates the configured database.
pub async fn open_database(settings: &Settings) -> Result<Db, StartupError> {
    let url = &settings.database.url;
    let db = Db::connect(url, settings.database.max_connections)
        .await
        .map_err(|source| StartupError::Connect {
            url: crate::config::redact_url(url),
            source,
        })?;
    db.migrate().await.map_err(StartupError::Migrate)?;
    Ok(db)
}

/// Creates the admin PAK if the database has none; returns it only when it was just created.
pub async fn bootstrap_admin(db: &Db) -> Result<Option<Pak>, StartupError> {
    let mut tx = db.begin().await.map_err(StartupError::Bootstrap)?;
    let created = credentials::bootstrap_admin(&mut tx)
        .await
        .map_err(StartupError::Bootstrap)?;
    tx.commit().await.map_err(StartupError::Bootstrap)?;
    Ok(created)
}

/// A broker bound to its listener, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Set on the first start of an empty database: show it once, then forget it.
    pub admin_pak: Option<Pak>,
}

impl Application {
    /// Opens the database, bootstraps the admin PAK and binds `broker.listen_addr`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let addr = settings.listen_addr()?;
        let db = open_database(&settings).await?;
        let admin_pak = bootstrap_admin(&db).await?;
        let auth = Authenticator::new(
            db.clone(),
            Duration::from_secs(settings.broker.auth_cache_ttl_seconds),
            settings.broker.auth_cache_capacity,
        );
        let policies = Arc::new(
            crate::policies::Policies::new(settings.plugins.limits())
                .map_err(|e| StartupError::Plugins(e.to_string()))?,
        );
        let throttle = Arc::new(crate::auth::throttle::Throttle::new(
            settings.broker.auth_failures_per_minute,
        ));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let state = AppState {
            db,
            auth,
            settings: Arc::new(settings),
            targeting: crate::targeting::Targeting::new(),
            metrics: Default::default(),
            policies,
            throttle,
        };
        Ok(Self {
            listener,
            state,
            admin_pak,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let feed = crate::feed::spawn(
            &self.state.db,
            self.state.auth.clone(),
            self.state.targeting.clone(),
        );
        let db = self.state.db.clone();
        let app = routes::router(self.state);
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(feed) = feed {
            feed.abort();
        }
        db.close().await;
        served
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
