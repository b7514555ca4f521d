//! Changes made by other broker replicas (and by the CLI), followed through PostgreSQL
//! `LISTEN/NOTIFY`: revoked PAKs leave the authentication cache, agents whose target state
//! changed are woken, and committed domain events wake the webhook dispatcher. After any gap
//! in the feed everything cached is dropped, since a notification may have been missed.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::app::App;
use crate::auth::cache::INVALIDATION_CHANNEL;
use crate::db::Db;
use crate::db::outbox::OUTBOX_CHANNEL;
use crate::targeting::CHANGED_CHANNEL;

/// Follows the feed until aborted (PostgreSQL only; `None` on SQLite, which has one replica).
pub fn spawn(app: &App) -> Option<tokio::task::JoinHandle<()>> {
    let Db::Postgres(pool) = &app.db else {
        return None;
    };
    let pool = pool.clone();
    let app = app.clone();
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = follow(&pool, &app).await {
                tracing::warn!(error = %e, "change feed interrupted; reconnecting");
            }
            forget_everything(&app);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}

/// Drops what a missed notification could have made stale, and looks for missed events.
fn forget_everything(app: &App) {
    app.auth.invalidate_all();
    app.targeting.changed_all();
    app.outbox_wake.notify_one();
}

async fn follow(pool: &sqlx::PgPool, app: &App) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([INVALIDATION_CHANNEL, CHANGED_CHANNEL, OUTBOX_CHANNEL])
        .await?;
    // Whatever was cached before the feed was (re)established may have missed a notification.
    forget_everything(app);
    loop {
        match listener.try_recv().await? {
            Some(note) if note.channel() == INVALIDATION_CHANNEL => {
                app.auth.invalidate(note.payload()).await
            }
            Some(note) if note.channel() == OUTBOX_CHANNEL => app.outbox_wake.notify_one(),
            Some(note) => app.targeting.on_notification(note.payload()),
            None => forget_everything(app),
        }
    }
}
