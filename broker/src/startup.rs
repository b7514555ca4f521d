//! Building and running the broker: connect and migrate the database, create the admin PAK on
//! first start, bind the listener and serve until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use brokkr_types::Pak;
use tokio::net::TcpListener;

use crate::app::{App, AppError};
use crate::config::{ConfigError, Settings};
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
    Bootstrap(AppError),
    #[error("cannot start the broker: {0}")]
    App(AppError),
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

/// Opens and migrates the configured database and builds the application on it (the CLI's
/// commands use this too).
pub async fn open_app(settings: Settings) -> Result<App, StartupError> {
    let db = open_database(&settings).await?;
    App::new(db, settings).map_err(StartupError::App)
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
        let throttle = Arc::new(crate::auth::throttle::Throttle::new(
            settings.broker.auth_failures_per_minute,
        ));
        let app = open_app(settings).await?;
        let admin_pak = app
            .bootstrap_admin()
            .await
            .map_err(StartupError::Bootstrap)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let state = AppState { app, throttle };
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
        let app = &self.state.app;
        let feed = crate::feed::spawn(&app.db, app.auth.clone(), app.targeting.clone());
        let db = app.db.clone();
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
