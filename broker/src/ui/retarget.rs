//! Retargeting a stack from its page: a new CEL expression (or none, so labels and annotations
//! apply again) is first previewed with the API's dry run (which agents would gain and lose the
//! stack), and only applied when the person confirms that preview.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use brokkr_types::ExpressionText;
use brokkr_types::requests::UpdateStack;
use brokkr_types::resources::Named;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::render::{page as render_page, value};
use super::session::Session;
use crate::app::retarget::{Guard, Retargeted};
use crate::http::ApiError;
use crate::state::AppState;

/// Agents listed per side of a preview; the rest are counted.
const LISTED: usize = 100;

/// The retarget form: the expression, and whether the person saw its preview and confirmed.
#[derive(Debug, Deserialize)]
pub struct RetargetForm {
    csrf: String,
    #[serde(default)]
    expression: String,
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn retarget(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
    form: Result<Form<RetargetForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        let detail = "the form needs an expression (empty removes it)";
        return super::problem(&session, ApiError::bad_request("invalid_form", detail));
    };
    if !session.csrf_matches(&form.csrf) {
        return super::refused("The form's token is missing or stale; reload the page.");
    }
    let expression = match form.expression.trim() {
        "" => None,
        text => match ExpressionText::parse(text) {
            Ok(expression) => Some(expression),
            Err(detail) => {
                let error = ApiError::bad_request("invalid_expression", detail);
                return super::problem(&session, error);
            }
        },
    };
    let confirmed = form.confirm.is_some();
    let patch = UpdateStack {
        target_expression: Some(expression),
        ..UpdateStack::default()
    };
    let guard = Guard {
        dry_run: !confirmed,
        confirm: confirmed,
    };
    let by = session.requester();
    match state.app.update_stack(by, id, patch, guard).await {
        Ok(Retargeted::Applied(_)) => {
            Redirect::to(&format!("/ui/stacks/{id}?done=retarget")).into_response()
        }
        Ok(Retargeted::Preview(preview)) => {
            let stack = match state.app.stack(by, id).await {
                Ok(stack) => stack,
                Err(e) => return super::problem(&session, e),
            };
            let (gained, more_gained) = listed(preview.gained);
            let (lost, more_lost) = listed(preview.lost);
            render_page(
                "retarget.html",
                Some(&session),
                context! { section => "stacks", title => format!("Retarget {}", stack.name),
                stack => value(&stack), expression => form.expression.trim(),
                gained => value(&gained), more_gained, lost => value(&lost), more_lost,
                errors => value(&preview.errors) },
            )
        }
        Err(e) => super::problem(&session, e),
    }
}

/// The first [`LISTED`] agents and how many more there are.
fn listed(mut agents: Vec<Named>) -> (Vec<Named>, usize) {
    let more = agents.len().saturating_sub(LISTED);
    agents.truncate(LISTED);
    (agents, more)
}
