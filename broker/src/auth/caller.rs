//! The [`Caller`] extractor: authenticates the request's PAK and offers the role checks.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::cache::AuthError;
use super::{Principal, Role};
use crate::error::ApiError;
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
        Ok(text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .unwrap_or(text)
            .trim())
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
        let checked = match presented_pak(&parts.headers) {
            Ok(pak) => state.auth.authenticate(pak).await,
            Err(e) => Err(e),
        };
        let principal = checked.inspect_err(|e| {
            if !matches!(e, AuthError::Lookup(_)) {
                crate::metrics::Metrics::inc(&state.metrics.auth_failures);
            }
        })?;
        if !R::ALLOWED.contains(&principal.role()) {
            return Err(ApiError::forbidden(format!(
                "the {} role may not perform this action",
                role_name(principal.role())
            )));
        }
        Ok(Self(principal, PhantomData))
    }
}

impl<R: RoleSet> Caller<R> {
    pub fn principal(&self) -> Principal {
        self.0
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Generator => "generator",
        Role::Agent => "agent",
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
        assert_eq!(
            presented_pak(&headers(&[("authorization", "Bearer k")])).unwrap(),
            "k"
        );
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
