//! One log line per request at `info`: method, route (the template, not the concrete path, so
//! no ids or names of other tenants end up in logs), status, latency, request id and the
//! principal that authenticated. Never bodies, headers or query strings. Probes log at `debug`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::domain::Principal;

/// Where the `Caller` extractor leaves the principal it authenticated, for the request's log line.
#[derive(Debug, Clone, Default)]
pub struct PrincipalSlot(Arc<Mutex<Option<Principal>>>);

impl PrincipalSlot {
    pub fn set(&self, principal: Principal) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(principal);
        }
    }

    fn get(&self) -> Option<Principal> {
        self.0.lock().ok().and_then(|s| *s)
    }
}

/// Middleware: serves the request and logs it.
pub async fn log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_string(), |p| p.as_str().to_string());
    let slot = PrincipalSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let request_id = super::request_id::current().unwrap_or_default();
    let principal = slot.get().map(|p| {
        let (kind, id) = p.parts();
        if p == Principal::Admin {
            kind.to_string()
        } else {
            format!("{kind}:{id}")
        }
    });
    let principal = principal.unwrap_or_else(|| "-".into());
    if matches!(route.as_str(), "/healthz" | "/readyz") {
        tracing::debug!(%method, %route, status, latency_ms, %request_id, "request");
    } else {
        tracing::info!(%method, %route, status, latency_ms, %request_id, %principal, "request");
    }
    response
}
