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
    let (scope, scope_id) = match scope_of(&session, form) {
        Ok(scope) => scope,
        Err(refused) => return *refused,
    };
    let binding = NewBinding {
        scope,
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

/// A scope form's scope and optional generator or stack id, once its token is checked; the
/// page to answer with otherwise.
fn scope_of(
    session: &Session,
    form: Result<Form<ShadowForm>, FormRejection>,
) -> Result<(PluginScope, Option<Uuid>), Box<Response>> {
    let Ok(Form(form)) = form else {
        let error = ApiError::bad_request("invalid_form", "choose a scope");
        return Err(Box::new(super::problem(session, error)));
    };
    if !session.csrf_matches(&form.csrf) {
        let detail = "The form's token is missing or stale; reload the page.";
        return Err(Box::new(super::refused(detail)));
    }
    match form.scope_id.trim() {
        "" => Ok((form.scope, None)),
        text => match text.parse::<Uuid>() {
            Ok(id) => Ok((form.scope, Some(id))),
            Err(_) => {
                let detail = "the scope id must be a generator's or a stack's id";
                let error = ApiError::bad_request("invalid_form", detail);
                Err(Box::new(super::problem(session, error)))
            }
        },
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
    let (scope, scope_id) = match scope_of(&session, form) {
        Ok(scope) => scope,
        Err(refused) => return *refused,
    };
    let by = session.requester();
    let plugin = match state.app.plugin(by, id).await {
        Ok(plugin) => plugin,
        Err(e) => return super::problem(&session, e),
    };
    let request = DryRunRequest { scope, scope_id };
    let window = super::window(DRY_RUN_OBJECTS, None);
    match state.app.dry_run_plugin(by, id, request, window).await {
        Ok(found) => {
            let rejected = found.items.iter().filter(|r| r.would_reject).count();
            render_page(
                "plugin_dry_run.html",
                Some(&session),
                context! { section => "plugins", title => format!("Dry run of {}", plugin.name),
                plugin => value(&plugin), results => value(&found.items), rejected,
                scope => scope.as_str(), scope_id => value(&scope_id), more => found.next_offset.is_some() },
            )
        }
        Err(e) => super::problem(&session, e),
    }
}
