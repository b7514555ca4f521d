//! Policy plugins (admins): the installed plugins with their bindings, one plugin's recent
//! verdicts, and binding it in shadow mode (recorded only) to try it before enforcing it.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use brokkr_types::plugins::{NewBinding, PluginMode, PluginScope};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::render::{page as render_page, value};
use super::session::Session;
use crate::http::ApiError;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let window = super::window(100, None);
    match state.app.list_plugins(session.requester(), window).await {
        Ok(found) => render_page(
            "plugins.html",
            Some(&session),
            context! { section => "plugins", title => "Plugins", plugins => value(&found.items) },
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
    let plugin = match state.app.plugin(by, id).await {
        Ok(plugin) => plugin,
        Err(e) => return super::problem(&session, e),
    };
    let window = super::window(50, None);
    match state.app.plugin_verdicts(by, id, window).await {
        Ok(found) => render_page(
            "plugin.html",
            Some(&session),
            context! { section => "plugins", title => plugin.name.clone(),
            plugin => value(&plugin), verdicts => value(&found.items) },
        ),
        Err(e) => super::problem(&session, e),
    }
}

/// The shadow-binding form.
#[derive(Debug, Deserialize)]
pub struct ShadowForm {
    csrf: String,
    scope: PluginScope,
    #[serde(default)]
    scope_id: String,
}

pub async fn bind_shadow(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
    form: Result<Form<ShadowForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return super::problem(
            &session,
            ApiError::bad_request("invalid_form", "choose a scope"),
        );
    };
    if !session.csrf_matches(&form.csrf) {
        return super::refused("The form's token is missing or stale; reload the page.");
    }
    let scope_id = match form.scope_id.trim() {
        "" => None,
        text => match text.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                let detail = "the scope id must be a generator's or a stack's id";
                return super::problem(&session, ApiError::bad_request("invalid_form", detail));
            }
        },
    };
    let binding = NewBinding {
        scope: form.scope,
        scope_id,
        mode: PluginMode::Shadow,
    };
    match state
        .app
        .bind_plugin(session.requester(), id, binding)
        .await
    {
        Ok(_) => Redirect::to(&format!("/ui/plugins/{id}")).into_response(),
        Err(e) => super::problem(&session, e),
    }
}
