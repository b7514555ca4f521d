//! Work orders: the viewer's orders (an admin: all) with their run counts, and one order's runs
//! per agent with attempts, messages and results.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::context;
use uuid::Uuid;

use super::render::{page as render_page, value};
use super::session::Session;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let window = super::window(100, None);
    match state.app.work_orders(session.requester(), window).await {
        Ok(found) => render_page(
            "work_orders.html",
            Some(&session),
            context! { section => "work", title => "Work orders", orders => value(&found.items) },
        ),
        Err(e) => super::problem(&session, e),
    }
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
) -> Response {
    match state.app.work_order(session.requester(), id).await {
        Ok(order) => render_page(
            "work_order.html",
            Some(&session),
            context! { section => "work", title => "Work order", order => value(&order) },
        ),
        Err(e) => super::problem(&session, e),
    }
}
