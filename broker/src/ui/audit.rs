//! The audit log (admins only): newest first, filtered by action (`pak.*` for a prefix) and
//! actor type, 100 a page.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::render::{page as render_page, value};
use super::session::Session;
use crate::app::admin::AuditFilter;
use crate::state::AppState;

const PAGE: u32 = 100;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    action: Option<String>,
    actor_type: Option<String>,
    offset: Option<u64>,
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return super::problem(
            &session,
            crate::http::ApiError::bad_request(
                "invalid_query",
                "this page knows action, actor_type, offset",
            ),
        );
    };
    let window = super::window(PAGE, query.offset);
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    let filter = AuditFilter {
        action: non_empty(&query.action),
        actor_type: non_empty(&query.actor_type),
        actor_id: None,
    };
    let action = query.action.clone().unwrap_or_default();
    let actor_type = query.actor_type.clone().unwrap_or_default();
    let search = serde_urlencoded::to_string([("action", &action), ("actor_type", &actor_type)])
        .unwrap_or_default();
    match state
        .app
        .audit_logs(session.requester(), filter, window)
        .await
    {
        Ok(found) => render_page(
            "audit.html",
            Some(&session),
            context! { section => "audit", title => "Audit log", entries => value(&found.items),
            action, actor_type, query => search, offset => window.offset,
            limit => PAGE, next_offset => found.next_offset },
        ),
        Err(e) => super::problem(&session, e),
    }
}
