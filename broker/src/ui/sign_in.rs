//! Signing in (a PAK exchanged once for a session; failures throttled and audited like any bad
//! PAK) and signing out (the session is deleted, the cookie cleared).

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::render::{page, page_with_status};
use super::session::{self, Session};
use crate::auth::Principal;
use crate::http::ApiError;
use crate::state::AppState;

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    pak: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInForm { pak: <redacted> }")
    }
}

/// A form that carries only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    pub csrf: String,
}

pub async fn form() -> Response {
    page("login.html", None, context! { title => "Sign in" })
}

pub async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return again(StatusCode::BAD_REQUEST, "Paste a PAK to sign in.");
    };
    let pak = form.pak.trim();
    let principal = match state.app.auth.authenticate(pak).await {
        Ok(principal) => principal,
        Err(e) => {
            let refusal = crate::http::caller::refuse(&state, &parts, Some(pak), e);
            let status = refusal.status();
            return again(status, &refusal.to_string());
        }
    };
    match start(&state, principal).await {
        Ok(cookie) => signed_in(cookie),
        Err(e) => again(e.status(), &e.to_string()),
    }
}

async fn start(state: &AppState, principal: Principal) -> Result<HeaderValue, ApiError> {
    let name = match principal {
        Principal::Generator(id) => state.app.generator(principal.into(), id).await?.name,
        _ => "admin".to_string(),
    };
    session::start(state, principal, &name).await
}

fn signed_in(cookie: HeaderValue) -> Response {
    let mut response = Redirect::to("/ui/fleet").into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

fn again(status: StatusCode, error: &str) -> Response {
    page_with_status(
        status,
        "login.html",
        None,
        context! { title => "Sign in", error },
    )
}

pub async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    if !form.is_ok_and(|Form(f)| session.csrf_matches(&f.csrf)) {
        return super::refused("The form's token is missing or stale; reload the page.");
    }
    if let Err(e) = session.end(&state).await {
        return super::problem(&session, e);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(cookie) = session::cleared(&state) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
