//! Administration: the first admin PAK, its CLI-only rotation, flushing the authentication
//! cache, querying the audit log, and auditing failed authentications.

use brokkr_types::Pak;
use brokkr_types::resources::{AuditLogEntry, Page};
use serde_json::json;

use super::{App, AppError, AppResult, Requester, credentials};
use crate::db::Window;
use crate::db::audit::{self, Actor, Filter};

/// Filters of the audit-log query.
pub type AuditFilter = Filter;
use crate::domain::Principal;

impl App {
    /// Creates the admin PAK when the database has none (`preset`, a PAK made elsewhere, when
    /// given); `Some` only for the call that did.
    pub async fn bootstrap_admin(
        &self,
        preset: Option<crate::auth::pak::NewPak>,
    ) -> AppResult<Option<Pak>> {
        let mut work = self.begin().await?;
        let created = credentials::bootstrap_admin(&mut work, preset).await?;
        work.commit().await?;
        Ok(created)
    }

    /// Replaces the admin PAK. Only the operator at the broker host may (the CLI).
    pub async fn rotate_admin_pak(&self, by: Requester) -> AppResult<Pak> {
        if by.actor != Actor::CLI {
            return Err(AppError::forbidden(
                "the admin PAK is rotated only with `brokkr-broker rotate admin`",
            ));
        }
        let mut work = self.begin().await?;
        let pak = credentials::rotate(&mut work, by.actor, Principal::Admin)
            .await?
            .ok_or_else(|| AppError::Internal("the admin principal is missing".into()))?;
        work.commit().await?;
        Ok(pak)
    }

    /// Whether the database answers within two seconds (a probe must not wait on the pool).
    pub async fn database_answers(&self) -> bool {
        let ping = tokio::time::timeout(std::time::Duration::from_secs(2), self.db.ping());
        matches!(ping.await, Ok(Ok(())))
    }

    /// Drops every cached PAK check on this replica (keys rotated by the CLI stop at once).
    pub async fn reload(&self, by: Requester) -> AppResult<()> {
        by.require_admin("reload the configuration")?;
        self.auth.invalidate_all();
        let mut work = self.begin().await?;
        let details = json!({ "auth_cache_flushed": true });
        work.audit(by, "config.reloaded", ("config", None), details)
            .await?;
        work.commit().await
    }

    pub async fn audit_logs(
        &self,
        by: Requester,
        filter: Filter,
        window: Window,
    ) -> AppResult<Page<AuditLogEntry>> {
        by.require_admin("read the audit log")?;
        Ok(window.page(audit::query(&self.db, &filter, window).await?))
    }
}
