//! The fleet view: agents with their health, heartbeat age, backlog and last error, filtered by
//! labels or a CEL expression, a page of 100 at a time (a generator sees the agents inside its
//! reach). The table stays live: the page's script long-polls it, and the broker answers when
//! what it shows changed (a heartbeat counts once a minute, so ages stay honest without an
//! answer per heartbeat).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokkr_types::rollouts::FleetAgent;
use minijinja::{Value, context};
use serde::Deserialize;
use tokio::time::Instant;

use super::render::{fragment, html, page as render_page, part, value};
use super::session::Session;
use crate::http::ApiError;
use crate::http::extract::long_poll;
use crate::routes::rollouts::FleetQuery;
use crate::state::AppState;

const PAGE: u32 = 100;
/// A live table is read again at most this often, however often reports arrive...
const REREAD_AT_MOST: Duration = Duration::from_secs(2);
/// ...and at least this often (heartbeats and agents coming and going wake nothing).
const REREAD_AT_LEAST: Duration = Duration::from_secs(15);

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<FleetQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(mut query)) = query else {
        let detail = "this page knows labels, expression, offset";
        return super::problem(&session, ApiError::bad_request("invalid_query", detail));
    };
    // The filter form sends its empty fields too.
    query.labels = query.labels.filter(|l| !l.trim().is_empty());
    query.expression = query.expression.filter(|e| !e.trim().is_empty());
    let (rows, etag) = match read_rows(&state, &session, &query).await {
        Ok(found) => found,
        Err(e) => return super::problem(&session, e),
    };
    let labels = query.labels.clone().unwrap_or_default();
    let expression = query.expression.clone().unwrap_or_default();
    let live = format!("/ui/fleet/rows?{}", search(&query));
    render_page(
        "fleet.html",
        Some(&session),
        context! { section => "fleet", title => "Fleet", labels, expression, live, etag,
        rows_part => part("fleet_rows.html", rows) },
    )
}

/// The live table's query: the page's filter and where it starts, and how long to wait.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowsQuery {
    labels: Option<String>,
    expression: Option<String>,
    offset: Option<u64>,
    wait: Option<u64>,
}

/// The fleet table as a long poll: 200 with the table once it differs from the
/// `If-None-Match` the script sent, 304 when the wait ends first.
pub async fn rows(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<RowsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(query)) = query else {
        let detail = "this part knows labels, expression, offset, wait";
        return super::problem(&session, ApiError::bad_request("invalid_query", detail));
    };
    let (wait, seen) = match long_poll(&state, query.wait, &headers) {
        Ok(found) => found,
        Err(e) => return super::problem(&session, e),
    };
    let fleet = FleetQuery {
        labels: query.labels.filter(|l| !l.trim().is_empty()),
        expression: query.expression.filter(|e| !e.trim().is_empty()),
        offset: query.offset,
        ..FleetQuery::default()
    };
    let deadline = Instant::now() + wait;
    let mut reports = state.app.rollout_changes();
    loop {
        // Reports from here on wake the next read.
        reports.borrow_and_update();
        let (rows, etag) = match read_rows(&state, &session, &fleet).await {
            Ok(found) => found,
            Err(e) => return super::problem(&session, e),
        };
        let tag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
        if seen.as_deref() != Some(etag.as_str()) {
            let mut response = html(StatusCode::OK, fragment("fleet_rows.html", rows));
            response.headers_mut().insert(header::ETAG, tag);
            return response;
        }
        if Instant::now() + REREAD_AT_MOST >= deadline {
            tokio::time::sleep_until(deadline).await;
            return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
        }
        tokio::time::sleep(REREAD_AT_MOST).await;
        let longest = deadline.min(Instant::now() + REREAD_AT_LEAST);
        let _ = tokio::time::timeout_at(longest, reports.changed()).await;
    }
}

/// The table's context for one page of the fleet, and its ETag; a filter the person got wrong
/// is shown in the table's place.
async fn read_rows(
    state: &AppState,
    session: &Session,
    query: &FleetQuery,
) -> Result<(Value, String), ApiError> {
    let window = super::window(PAGE, query.offset);
    let base = context! { query => search(query), offset => window.offset, limit => PAGE };
    let filter = query.filter()?;
    match state.app.fleet(session.requester(), filter, window).await {
        Ok(found) => {
            let etag = etag_of(&found.items, found.next_offset);
            let rows = context! { agents => value(&found.items),
            next_offset => found.next_offset, ..base };
            Ok((rows, etag))
        }
        Err(e) => {
            let error = ApiError::from(e).to_problem().detail;
            let etag = format!("\"error-{}\"", hash_of(&error));
            Ok((context! { agents => Vec::<()>::new(), error, ..base }, etag))
        }
    }
}

/// The page's filter as a query string (without the offset).
fn search(query: &FleetQuery) -> String {
    let labels = query.labels.as_deref().unwrap_or_default();
    let expression = query.expression.as_deref().unwrap_or_default();
    serde_urlencoded::to_string([("labels", labels), ("expression", expression)])
        .unwrap_or_default()
}

/// What the table shows, as a tag: heartbeats count by the minute of their age.
fn etag_of(agents: &[FleetAgent], next_offset: Option<u64>) -> String {
    let mut hasher = DefaultHasher::new();
    next_offset.hash(&mut hasher);
    for agent in agents {
        let mut shown = agent.clone();
        shown.last_heartbeat_at = None;
        shown.heartbeat_age_seconds = agent.heartbeat_age_seconds.map(|s| s / 60);
        serde_json::to_string(&shown)
            .unwrap_or_default()
            .hash(&mut hasher);
    }
    format!("\"{:016x}\"", hasher.finish())
}

fn hash_of(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}
