//! The fleet view: agents with their health, heartbeat age, backlog and last error, filtered by
//! labels or a CEL expression, a page of 100 at a time (a generator sees the agents inside its
//! reach).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;

use super::render::{page as render_page, value};
use super::session::Session;
use crate::http::ApiError;
use crate::routes::rollouts::FleetQuery;
use crate::state::AppState;

const PAGE: u32 = 100;

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<FleetQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return super::problem(
            &session,
            ApiError::bad_request(
                "invalid_query",
                "this page knows labels, expression, offset",
            ),
        );
    };
    let window = super::window(PAGE, query.offset);
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(e) => return super::problem(&session, e),
    };
    let labels = query.labels.clone().unwrap_or_default();
    let expression = query.expression.clone().unwrap_or_default();
    let search = serde_urlencoded::to_string([("labels", &labels), ("expression", &expression)])
        .unwrap_or_default();
    let base = context! { section => "fleet", title => "Fleet", labels, expression, query => search,
    offset => window.offset, limit => PAGE };
    match state.app.fleet(session.requester(), filter, window).await {
        Ok(found) => render_page(
            "fleet.html",
            Some(&session),
            context! { agents => value(&found.items), next_offset => found.next_offset, ..base },
        ),
        // A bad expression is the person's to fix: the page stays, with the reason.
        Err(e) => {
            let error = ApiError::from(e).to_problem().detail;
            render_page(
                "fleet.html",
                Some(&session),
                context! { agents => Vec::<()>::new(), error, ..base },
            )
        }
    }
}
