//! Enrollment tokens (admins): the tokens with their uses left, a form that makes one (its
//! secret shown once, on the answer to the form, never again), and revoking one.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use brokkr_types::Label;
use brokkr_types::enrollment::CreateEnrollmentToken;
use minijinja::{Value, context};
use serde::Deserialize;
use uuid::Uuid;

use super::render::{page_with_status, value};
use super::session::Session;
use super::sign_in::TokenForm;
use crate::http::ApiError;
use crate::state::AppState;

pub async fn page(State(state): State<AppState>, session: Session) -> Response {
    render(&state, &session, StatusCode::OK, context! {}).await
}

async fn render(state: &AppState, session: &Session, status: StatusCode, extra: Value) -> Response {
    let window = super::window(100, None);
    match state
        .app
        .list_enrollment_tokens(session.requester(), window)
        .await
    {
        Ok(found) => page_with_status(
            status,
            "enrollment.html",
            Some(session),
            context! { section => "enrollment", title => "Enrollment tokens",
            tokens => value(&found.items), ..extra },
        ),
        Err(e) => super::problem(session, e),
    }
}

/// The form that makes a token.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    csrf: String,
    #[serde(default)]
    name_prefix: String,
    #[serde(default)]
    labels: String,
    uses: u32,
    hours: u64,
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        let detail = "uses and hours must be whole numbers";
        return super::problem(&session, ApiError::bad_request("invalid_form", detail));
    };
    if !session.csrf_matches(&form.csrf) {
        return super::refused("The form's token is missing or stale; reload the page.");
    }
    let labels: Result<Vec<Label>, _> = form
        .labels
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Label::parse(l.to_string()))
        .collect();
    let Ok(labels) = labels else {
        let extra =
            context! { error => "A label is not valid (letters, digits, '-', '_', '.', '/')." };
        return render(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, extra).await;
    };
    let body = CreateEnrollmentToken {
        name_prefix: Some(form.name_prefix.trim().to_string()).filter(|p| !p.is_empty()),
        labels,
        annotations: Default::default(),
        expires_in_seconds: Some(form.hours.saturating_mul(3600)),
        uses: Some(form.uses),
        reach_generators: Vec::new(),
    };
    match state
        .app
        .create_enrollment_token(session.requester(), body)
        .await
    {
        Ok(made) => {
            let extra = context! { secret => made.token };
            render(&state, &session, StatusCode::CREATED, extra).await
        }
        Err(e) => {
            let error = ApiError::from(e).to_problem().detail;
            render(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                context! { error },
            )
            .await
        }
    }
}

/// Revokes a token: agents can no longer enroll with it (those enrolled keep their PAKs).
pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    if !form.is_ok_and(|Form(f)| session.csrf_matches(&f.csrf)) {
        return super::refused("The form's token is missing or stale; reload the page.");
    }
    match state
        .app
        .revoke_enrollment_token(session.requester(), id)
        .await
    {
        Ok(()) => Redirect::to("/ui/enrollment").into_response(),
        Err(e) => super::problem(&session, e),
    }
}
