//! `/api/v1/admin`: cache flush (`config/reload`) and the audit-log query (admin only).

use axum::Json;
use axum::extract::State;
use brokkr_types::Problem;
use brokkr_types::resources::{AuditLogEntry, Page};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::admin::AuditFilter as Filter;
use crate::http::ApiResult;
use crate::http::caller::{AdminOnly, Caller};
use crate::http::extract::{ApiQuery, PageQuery};
use crate::state::AppState;

/// What a reload did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReloadOutcome {
    /// Every cached PAK check was dropped: keys rotated through the CLI stop working now.
    pub auth_cache_flushed: bool,
}

#[utoipa::path(post, path = "/api/v1/admin/config/reload", tag = "admin",
    responses((status = 200, body = ReloadOutcome), (status = "4XX", body = Problem)))]
pub async fn reload(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
) -> ApiResult<Json<ReloadOutcome>> {
    state.app.reload(caller.requester()).await?;
    Ok(Json(ReloadOutcome {
        auth_cache_flushed: true,
    }))
}

/// Filters of `GET /api/v1/admin/audit-logs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// An action such as `pak.rotated`, or a prefix ending in `*` such as `pak.*`.
    pub action: Option<String>,
    /// `admin`, `generator`, `agent`, `cli` or `system`.
    pub actor_type: Option<String>,
    pub actor_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/admin/audit-logs", tag = "admin", params(AuditQuery),
    responses((status = 200, body = Page<AuditLogEntry>), (status = "4XX", body = Problem)))]
pub async fn audit_logs(
    State(state): State<AppState>,
    caller: Caller<AdminOnly>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditLogEntry>>> {
    let window = PageQuery {
        limit: query.limit,
        offset: query.offset,
    }
    .window()?;
    let filter = Filter {
        action: query.action,
        actor_type: query.actor_type,
        actor_id: query.actor_id,
    };
    Ok(Json(
        state
            .app
            .audit_logs(caller.requester(), filter, window)
            .await?,
    ))
}
