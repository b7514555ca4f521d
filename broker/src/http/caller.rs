//! The [`Caller`] extractor: authenticates the request's PAK and offers the role checks.
//! Failed attempts are throttled per client address and audited.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::error::ApiError;
use crate::app::Requester;
use crate::auth::cache::AuthError;
use crate::auth::{Principal, Role, pak, throttle};
use crate::http::request_log::PrincipalSlot;
use crate::http::tls::{ClientCertificate, agent_certificate_name};
use crate::state::AppState;

/// An authenticated caller whose role is one of `R::ALLOWED` (403 otherwise). Roles are
/// checked before the body is read, so a caller without the role learns nothing from validation.
#[derive(Debug, Clone, Copy)]
pub struct Caller<R: RoleSet = AnyRole>(pub Principal, PhantomData<R>);

/// A set of roles an endpoint admits.
pub trait RoleSet: Send + Sync + 'static {
    const ALLOWED: &'static [Role];
}

macro_rules! role_set {
    ($($(#[$doc:meta])* $name:ident => [$($role:ident),+];)+) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl RoleSet for $name {
                const ALLOWED: &'static [Role] = &[$(Role::$role),+];
            }
        )+
    };
}

role_set! {
    /// Any authenticated principal.
    AnyRole => [Admin, Generator, Agent];
    /// Admins only.
    AdminOnly => [Admin];
    /// Admins and generators.
    AdminOrGenerator => [Admin, Generator];
    /// Admins and agents.
    AdminOrAgent => [Admin, Agent];
    /// Agents only.
    AgentOnly => [Agent];
}

/// The PAK presented in `Authorization: Bearer <PAK>`, `Authorization: <PAK>` or
/// `X-Generator-Key: <PAK>`.
fn presented_pak(headers: &HeaderMap) -> Result<&str, AuthError> {
    let from_authorization = headers.get(header::AUTHORIZATION).map(|value| {
        let text = value.to_str().map_err(|_| AuthError::Malformed)?.trim();
        // The scheme is case-insensitive (RFC 9110): `Bearer`, `bearer`, `BEARER`.
        let scheme = text.get(..7).filter(|s| s.eq_ignore_ascii_case("bearer "));
        Ok(match scheme {
            Some(_) => text[7..].trim(),
            None => text,
        })
    });
    let from_generator_key = headers.get("x-generator-key").map(|value| {
        value
            .to_str()
            .map(str::trim)
            .map_err(|_| AuthError::Malformed)
    });
    from_authorization
        .or(from_generator_key)
        .unwrap_or(Err(AuthError::Missing))
}

impl<R: RoleSet> FromRequestParts<AppState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = presented_pak(&parts.headers);
        let checked = match &presented {
            // Boxed: the request's future (held by every long poll while it waits) keeps no
            // room for the cache and database reads of an authentication that is over.
            Ok(pak) => Box::pin(state.app.auth.authenticate(pak)).await,
            Err(e) => Err(e.clone()),
        };
        let principal = match checked {
            Ok(principal) => principal,
            Err(e @ (AuthError::Malformed | AuthError::Invalid)) => {
                return Err(refuse(state, parts, presented.ok(), e));
            }
            Err(e) => return Err(e.into()),
        };
        if !R::ALLOWED.contains(&principal.role()) {
            return Err(ApiError::forbidden(format!(
                "the {} role may not perform this action",
                principal.role().name()
            )));
        }
        certificate_binds(state, parts, principal)?;
        if let Some(slot) = parts.extensions.get::<PrincipalSlot>() {
            slot.set(principal);
        }
        Ok(Self(principal, PhantomData))
    }
}

/// With `broker.tls.bind_agent_certificates`, an agent's PAK counts only over a connection whose
/// client certificate names that agent: a stolen PAK alone is not enough.
fn certificate_binds(
    state: &AppState,
    parts: &Parts,
    principal: Principal,
) -> Result<(), ApiError> {
    let Principal::Agent(agent) = principal else {
        return Ok(());
    };
    if !state.app.settings.broker.tls.bind_agent_certificates {
        return Ok(());
    }
    let certificate = parts.extensions.get::<ClientCertificate>();
    if certificate.is_some_and(|c| c.names_agent(agent)) {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        code: "certificate_required",
        detail: format!(
            "this agent must connect with a client certificate valid for {}",
            agent_certificate_name(agent)
        ),
    })
}

/// Counts a bad PAK against its client: 401, or 429 once the client is over its limit.
pub(crate) fn refuse(
    state: &AppState,
    parts: &Parts,
    presented: Option<&str>,
    error: AuthError,
) -> ApiError {
    state.app.metrics.auth_failures.inc();
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| state.clients.client(c.0.ip(), &parts.headers));
    let throttled = client.is_some_and(|c| !state.throttle.admit_failure(c));
    let short = presented.and_then(pak::parse).map(|p| p.short.to_string());
    state.app.record_auth_failure(client, short, throttled);
    if throttled {
        ApiError::TooManyFailures {
            retry_after: throttle::WINDOW.as_secs(),
        }
    } else {
        error.into()
    }
}

impl<R: RoleSet> Caller<R> {
    pub fn principal(&self) -> Principal {
        self.0
    }

    /// The caller as the application layer knows it.
    pub fn requester(&self) -> Requester {
        self.0.into()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn all_documented_headers_are_accepted() {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let value: &'static str = Box::leak(format!("{scheme} k").into_boxed_str());
            assert_eq!(
                presented_pak(&headers(&[("authorization", value)])).unwrap(),
                "k"
            );
        }
        assert_eq!(
            presented_pak(&headers(&[("authorization", "k")])).unwrap(),
            "k"
        );
        assert_eq!(
            presented_pak(&headers(&[("x-generator-key", "k")])).unwrap(),
            "k"
        );
        assert!(matches!(
            presented_pak(&HeaderMap::new()),
            Err(AuthError::Missing)
        ));
    }
}
