//! Webhooks: the subscriptions the viewer owns (an admin: all), a subscription's deliveries
//! with their attempts and errors, and redelivery of one.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use uuid::Uuid;

use super::render::{page as render_page, value};
use super::session::Session;
use super::sign_in::TokenForm;
use crate::state::AppState;

const PAGE: u32 = 100;
const DELIVERIES: u32 = 50;

pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let window = super::window(PAGE, None);
    match state.app.list_webhooks(session.requester(), window).await {
        Ok(found) => render_page(
            "webhooks.html",
            Some(&session),
            context! { section => "webhooks", title => "Webhooks", webhooks => value(&found.items) },
        ),
        Err(e) => super::problem(&session, e),
    }
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
) -> Response {
    let by = session.requester();
    let webhook = match state.app.webhook(by, id).await {
        Ok(webhook) => webhook,
        Err(e) => return super::problem(&session, e),
    };
    let window = super::window(DELIVERIES, None);
    match state.app.webhook_deliveries(by, id, None, window).await {
        Ok(found) => render_page(
            "webhook.html",
            Some(&session),
            context! { section => "webhooks", title => webhook.name.clone(),
            webhook => value(&webhook), deliveries => value(&found.items) },
        ),
        Err(e) => super::problem(&session, e),
    }
}

pub async fn redeliver(
    State(state): State<AppState>,
    session: Session,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    if !form.is_ok_and(|Form(f)| session.csrf_matches(&f.csrf)) {
        return super::refused("The form's token is missing or stale; reload the page.");
    }
    if let Err(e) = state.app.webhook(session.requester(), id).await {
        return super::problem(&session, e);
    }
    match state.app.redeliver(session.requester(), delivery).await {
        Ok(_) => Redirect::to(&format!("/ui/webhooks/{id}")).into_response(),
        Err(e) => super::problem(&session, e),
    }
}
