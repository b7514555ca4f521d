//! Changes made by other broker replicas (and by the CLI), followed through PostgreSQL
//! `LISTEN/NOTIFY`: revoked PAKs leave the authentication cache and agents whose target state
//! changed are woken. After any gap in the feed everything cached is dropped, since a
//! notification may have been missed.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::auth::Authenticator;
use crate::auth::cache::INVALIDATION_CHANNEL;
use crate::db::Db;
use crate::targeting::{CHANGED_CHANNEL, Targeting};

/// Follows the feed until aborted (PostgreSQL only; `None` on SQLite, which has one replica).
pub fn spawn(
    db: &Db,
    auth: Authenticator,
    targeting: std::sync::Arc<Targeting>,
) -> Option<tokio::task::JoinHandle<()>> {
    let Db::Postgres(pool) = db else {
        return None;
    };
    let pool = pool.clone();
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = follow(&pool, &auth, &targeting).await {
                tracing::warn!(error = %e, "change feed interrupted; reconnecting");
            }
            forget_everything(&auth, &targeting);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}

fn forget_everything(auth: &Authenticator, targeting: &Targeting) {
    auth.invalidate_all();
    targeting.hub.invalidate_all();
}

async fn follow(
    pool: &sqlx::PgPool,
    auth: &Authenticator,
    targeting: &Targeting,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([INVALIDATION_CHANNEL, CHANGED_CHANNEL])
        .await?;
    // Whatever was cached before the feed was (re)established may have missed a notification.
    forget_everything(auth, targeting);
    loop {
        match listener.try_recv().await? {
            Some(note) if note.channel() == INVALIDATION_CHANNEL => {
                auth.invalidate(note.payload()).await
            }
            Some(note) => targeting.on_notification(note.payload()),
            None => forget_everything(auth, targeting),
        }
    }
}
