//! An agent's page: its facts, every stack the viewer may see decided for it (and by which
//! rule), and its recent events.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::context;
use uuid::Uuid;

use super::render::{page as render_page, value};
use super::session::Session;
use crate::state::AppState;

const EVENTS: u32 = 25;

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
) -> Response {
    let by = session.requester();
    let agent = match state.app.agent(by, id).await {
        Ok(agent) => agent,
        Err(e) => return super::problem(&session, e),
    };
    let (stacks, events) = (super::window(100, None), super::window(EVENTS, None));
    let verdicts = match state.app.explain_agent(by, id, stacks).await {
        Ok(found) => found.items,
        Err(e) => return super::problem(&session, e),
    };
    let events = match state.app.agent_events(by, id, events).await {
        Ok(found) => found.items,
        Err(e) => return super::problem(&session, e),
    };
    render_page(
        "agent.html",
        Some(&session),
        context! { section => "fleet", title => agent.name.clone(), agent => value(&agent),
        verdicts => value(&verdicts), events => value(&events) },
    )
}
