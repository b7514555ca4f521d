//! Building and running the broker: connect and migrate the database, create the admin PAK on
//! first start, bind the listener and serve until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use brokkr_types::Pak;
use tokio::net::TcpListener;

use crate::app::{App, AppError};
use crate::config::{ConfigError, Settings};
use crate::db::{Db, StoreError};
use crate::http::client::ClientAddresses;
use crate::http::serve::{ConnectionLimits, serve};
use crate::routes;
use crate::state::{AppState, Handles};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the database {url}: {source}")]
    Connect { url: String, source: StoreError },
    #[error("cannot migrate the database: {0}")]
    Migrate(StoreError),
    #[error(
        "no Brokkr database at {0}: this command works on an existing one (`brokkr-broker serve` or `migrate` creates it); check --database-url or BROKKR__DATABASE__URL"
    )]
    NoDatabase(String),
    #[error("cannot create the admin PAK: {0}")]
    Bootstrap(AppError),
    #[error("cannot read the admin PAK file {file}: {reason}")]
    AdminPakFile { file: String, reason: String },
    #[error("cannot start the broker: {0}")]
    App(AppError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] crate::http::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Connects to the configured database as configured (its URL shown redacted on failure).
async fn connect(settings: &Settings) -> Result<Db, StartupError> {
    let database = &settings.database;
    Db::connect_with(
        &database.url,
        database.max_connections,
        database.sqlite_synchronous,
    )
    .await
    .map_err(|source| StartupError::Connect {
        url: crate::config::redact_url(&database.url),
        source,
    })
}

/// Opens and migrates the configured database.
pub async fn open_database(settings: &Settings) -> Result<Db, StartupError> {
    let db = connect(settings).await?;
    db.migrate().await.map_err(StartupError::Migrate)?;
    Ok(db)
}

/// Opens and migrates the configured database and builds the application on it.
pub async fn open_app(settings: Settings) -> Result<App, StartupError> {
    let db = open_database(&settings).await?;
    App::new(db, settings).map_err(StartupError::App)
}

/// [`open_app`] for the CLI's commands other than `serve` and `migrate`: they refuse to create
/// a database (run from the wrong folder, `sqlite://brokkr.db` would be a new, empty one) and
/// name the URL they were given.
pub async fn open_existing_app(settings: Settings) -> Result<App, StartupError> {
    let url = &settings.database.url;
    let shown = crate::config::redact_url(url);
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let file = path.split('?').next().unwrap_or_default();
        if !std::path::Path::new(file).exists() {
            return Err(StartupError::NoDatabase(shown));
        }
    }
    let db = connect(&settings).await?;
    if !db.is_migrated().await.map_err(StartupError::Migrate)? {
        return Err(StartupError::NoDatabase(shown));
    }
    db.migrate().await.map_err(StartupError::Migrate)?;
    App::new(db, settings).map_err(StartupError::App)
}

/// The admin PAK already waiting in `file` (the Helm chart puts one there from a Secret it
/// generated): a new database adopts it instead of making its own. Absent or empty: `None`.
fn preset_admin_pak(file: &str) -> Result<Option<crate::auth::pak::NewPak>, StartupError> {
    if file.is_empty() {
        return Ok(None);
    }
    let failure = |reason: String| StartupError::AdminPakFile {
        file: file.to_string(),
        reason,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failure(e.to_string())),
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    crate::auth::pak::adopt(text)
        .map(Some)
        .ok_or_else(|| failure("it holds no PAK of the form brokkr_BR<8>_<32>".into()))
}

/// Hands the first admin PAK over once: into `file` (created readable by its owner only) or,
/// without one, on stdout. Never to the logs.
pub fn deliver_first_admin_pak(pak: &Pak, file: &str) -> std::io::Result<()> {
    use std::io::Write;
    if file.is_empty() {
        let rule = "================================================================";
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the broker.
        let _ = writeln!(
            out,
            "{rule}\nBrokkr created the admin PAK for this new database.\n\
             It is shown only this once; store it now (rotate: brokkr-broker rotate admin).\n{}\n{rule}",
            pak.expose()
        );
        let _ = out.flush();
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut out = options.open(file)?;
        out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        writeln!(out, "{}", pak.expose())?;
    }
    #[cfg(not(unix))]
    writeln!(options.open(file)?, "{}", pak.expose())?;
    tracing::info!(
        file,
        "the admin PAK of this new database was written to the file"
    );
    Ok(())
}

/// A broker bound to its listener, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Set on the first start of an empty database: show it once, then forget it.
    pub admin_pak: Option<Pak>,
    tls: Option<Arc<crate::http::tls::Tls>>,
}

impl Application {
    /// Opens the database, bootstraps the admin PAK and binds `broker.listen_addr`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let addr = settings.listen_addr()?;
        let throttle = Arc::new(crate::auth::throttle::Throttle::new(
            settings.broker.auth_failures_per_minute,
        ));
        let clients = Arc::new(ClientAddresses::new(settings.trusted_proxies()?));
        let tls = crate::http::tls::Tls::load(&settings.broker.tls)?;
        let app = open_app(settings).await?;
        app.check_webhook_keys().await.map_err(StartupError::App)?;
        let preset = preset_admin_pak(&app.settings.broker.admin_pak_file)?;
        let adopted = preset.is_some();
        let admin_pak = app
            .bootstrap_admin(preset)
            .await
            .map_err(StartupError::Bootstrap)?;
        // A PAK adopted from the file is already where its owner keeps it.
        let admin_pak = admin_pak.filter(|_| !adopted);
        let listener = crate::http::serve::listen(addr)
            .map_err(|source| StartupError::Bind { addr, source })?;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(
            app.settings.broker.max_in_flight,
        ));
        let state = AppState::new(Handles {
            app,
            throttle,
            clients,
            in_flight,
        });
        Ok(Self {
            listener,
            state,
            admin_pak,
            tls,
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
        let app = self.state.app.clone();
        let feed = crate::feed::spawn(&app);
        let upkeep = tokio::spawn(upkeep(self.state.clone()));
        let sweeper = tokio::spawn(sweep_work_orders(app.clone()));
        // The lease holder names the replica's address, so an operator (or a test) can tell
        // which replica drives.
        let holder = match self.listener.local_addr() {
            Ok(addr) => format!("{addr} {}", uuid::Uuid::new_v4()),
            Err(_) => uuid::Uuid::new_v4().to_string(),
        };
        let rollout_driver = tokio::spawn(drive_rollouts(app.clone(), holder));
        let dispatcher = crate::webhooks::spawn(app.clone());
        let broker = &app.settings.broker;
        let reloader = self.tls.clone().map(|tls| tls.spawn_reloader());
        let limits = ConnectionLimits {
            max_connections: broker.max_connections,
            header_read_timeout: Duration::from_secs(broker.header_read_timeout_seconds),
            tls: self.tls.clone(),
        };
        let router = routes::router(self.state);
        let served = serve(self.listener, router, limits, shutdown).await;
        upkeep.abort();
        sweeper.abort();
        rollout_driver.abort();
        for task in [feed, dispatcher, reloader].into_iter().flatten() {
            task.abort();
        }
        if let Err(e) = app.flush_auth_failures().await {
            tracing::warn!(error = %e, "cannot audit the last failed authentications");
        }
        app.db.close().await;
        served
    }
}

/// Periodic housekeeping: failed authentications go to the audit log, forgotten clients leave
/// the throttle.
async fn upkeep(state: AppState) {
    let every = Duration::from_secs(state.app.settings.broker.auth_failure_audit_seconds.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(e) = state.app.flush_auth_failures().await {
            tracing::warn!(error = %e, "cannot audit failed authentications");
        }
        state.throttle.forget_old();
        forget_console_sessions(&state).await;
    }
}

/// Deletes console sessions past their absolute end or idle for too long.
async fn forget_console_sessions(state: &AppState) {
    let now = chrono::Utc::now();
    let idle = i64::try_from(state.app.settings.ui.idle_minutes).unwrap_or(30);
    let idle_since = now - chrono::Duration::minutes(idle);
    if let Err(e) = crate::db::ui_sessions::delete_expired(&state.app.db, now, idle_since).await {
        tracing::warn!(error = %e, "cannot forget ended console sessions");
    }
}

/// Every `work_orders.sweep_interval_seconds`: lapsed leases go back to their agents (or the
/// run expires) and orders past their time are deleted.
async fn sweep_work_orders(app: crate::app::App) {
    let every = Duration::from_secs(app.settings.work_orders.sweep_interval_seconds.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = app.sweep_work_orders(chrono::Utc::now()).await {
            tracing::warn!(error = %e, "cannot sweep work orders");
        }
    }
}

/// Every `rollouts.tick_millis`: if this replica holds (or can take) the rollout lease, the
/// waves of staged rollouts under way are gated.
async fn drive_rollouts(app: crate::app::App, holder: String) {
    let every = Duration::from_millis(app.settings.rollouts.tick_millis.max(10));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = app.drive_rollouts(&holder, chrono::Utc::now()).await {
            tracing::warn!(error = %e, "cannot drive staged rollouts");
        }
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
