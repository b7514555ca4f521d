//! Policy plugins (admins): the installed plugins with their bindings, one plugin's recent
//! verdicts, a dry run over the stored versions of a scope (nothing recorded), and binding it in
//! shadow mode (recorded only) to try it before enforcing it.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use brokkr_types::plugins::{DryRunRequest, NewBinding, PluginMode, PluginScope};
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
    let scope_id = match scope_id(&form.scope_id) {
        Ok(id) => id,
        Err(e) => return super::problem(&session, e),
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

/// The optional generator or stack id of a scope form.
fn scope_id(text: &str) -> Result<Option<Uuid>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        text => text.parse::<Uuid>().map(Some).map_err(|_| {
            let detail = "the scope id must be a generator's or a stack's id";
            ApiError::bad_request("invalid_form", detail)
        }),
    }
}

/// Stored versions replayed by one dry run from the page.
const DRY_RUN_OBJECTS: u32 = 100;

/// Replays the newest stored versions of a scope through the plugin; nothing is recorded.
pub async fn dry_run(
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
    let scope_id = match scope_id(&form.scope_id) {
        Ok(id) => id,
        Err(e) => return super::problem(&session, e),
    };
    let by = session.requester();
    let plugin = match state.app.plugin(by, id).await {
        Ok(plugin) => plugin,
        Err(e) => return super::problem(&session, e),
    };
    let request = DryRunRequest {
        scope: form.scope,
        scope_id,
    };
    let window = super::window(DRY_RUN_OBJECTS, None);
    match state.app.dry_run_plugin(by, id, request, window).await {
        Ok(found) => {
            let rejected = found.items.iter().filter(|r| r.would_reject).count();
            render_page(
                "plugin_dry_run.html",
                Some(&session),
                context! { section => "plugins", title => format!("Dry run of {}", plugin.name),
                plugin => value(&plugin), results => value(&found.items), rejected,
                scope => form.scope.as_str(), scope_id => value(&scope_id), more => found.next_offset.is_some() },
            )
        }
        Err(e) => super::problem(&session, e),
    }
}
