//! Console sessions: a PAK is exchanged once (sign-in) for a random session id in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` over TLS); the database keeps only its
//! SHA-256. A session ends after `ui.idle_minutes` without a request, `ui.absolute_hours` after
//! sign-in, at sign-out, or when its generator's PAK is rotated or the generator deleted.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::Requester;
use crate::auth::Principal;
use crate::auth::pak::random_token;
use crate::db::ui_sessions::{self, NewSession};
use crate::http::ApiError;
use crate::state::AppState;

/// The cookie holding the session id.
pub const COOKIE: &str = "brokkr_session";
/// Activity is written at most this often per session (seconds).
const TOUCH_EVERY: i64 = 60;

/// A signed-in person: who they act as, and the token their forms must carry.
#[derive(Clone)]
pub struct Session {
    pub principal: Principal,
    /// `admin` or the generator's name.
    pub name: String,
    pub csrf: String,
    id_hash: Vec<u8>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn requester(&self) -> Requester {
        self.principal.into()
    }

    pub fn is_admin(&self) -> bool {
        matches!(self.principal, Principal::Admin)
    }

    /// Whether a form's token is this session's (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }

    pub async fn end(&self, state: &AppState) -> Result<(), ApiError> {
        ui_sessions::delete(&state.app.db, &self.id_hash)
            .await
            .map_err(stored)?;
        Ok(())
    }
}

fn stored(error: crate::db::StoreError) -> ApiError {
    ApiError::from(crate::app::AppError::from(error))
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The session id the request's cookie carries.
fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Starts a session for `principal`; returns the `Set-Cookie` value.
pub async fn start(
    state: &AppState,
    principal: Principal,
    name: &str,
) -> Result<HeaderValue, ApiError> {
    let (kind, id) = match principal {
        Principal::Admin => ("admin", None),
        Principal::Generator(id) => ("generator", Some(id)),
        Principal::Agent(_) => {
            return Err(ApiError::forbidden("agents cannot sign in to the console"));
        }
    };
    let settings = &state.app.settings.ui;
    let session = random_token(43);
    let csrf = random_token(43);
    let now = Utc::now();
    let lifetime = Duration::hours(i64::try_from(settings.absolute_hours).unwrap_or(12));
    let new = NewSession {
        id_hash: &hash(&session),
        principal_kind: kind,
        principal_id: id,
        principal_name: name,
        csrf_token: &csrf,
        now,
        expires_at: now + lifetime,
    };
    ui_sessions::create(&state.app.db, &new)
        .await
        .map_err(stored)?;
    cookie(state, &session, lifetime.num_seconds())
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn cleared(state: &AppState) -> Result<HeaderValue, ApiError> {
    cookie(state, "", 0)
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    let secure = match state.app.settings.broker.tls.cert_file.is_empty() {
        true => "",
        false => "; Secure",
    };
    let text =
        format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).map_err(|e| ApiError::Internal(format!("cookie: {e}")))
}

/// A request without a live session is sent to the sign-in page.
#[derive(Debug)]
pub struct SignIn;

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        Redirect::to("/ui/login").into_response()
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(id) = presented(&parts.headers) else {
            return Err(SignIn.into_response());
        };
        let id_hash = hash(id);
        let db = &state.app.db;
        let row = ui_sessions::get(db, &id_hash)
            .await
            .map_err(|e| stored(e).into_response())?
            .ok_or_else(|| SignIn.into_response())?;
        let now = Utc::now();
        let idle =
            Duration::minutes(i64::try_from(state.app.settings.ui.idle_minutes).unwrap_or(30));
        if row.expires_at <= now || row.last_seen_at + idle <= now {
            let _ = ui_sessions::delete(db, &id_hash).await;
            return Err(SignIn.into_response());
        }
        if (now - row.last_seen_at).num_seconds() >= TOUCH_EVERY {
            ui_sessions::touch(db, &id_hash, now)
                .await
                .map_err(|e| stored(e).into_response())?;
        }
        let principal = match (row.principal_kind.as_str(), row.principal_id) {
            ("admin", _) => Principal::Admin,
            ("generator", Some(id)) => Principal::Generator(id),
            _ => return Err(SignIn.into_response()),
        };
        Ok(Self {
            principal,
            name: row.principal_name,
            csrf: row.csrf_token,
            id_hash,
        })
    }
}
