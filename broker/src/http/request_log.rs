//! One log line per request at `info`: method, route (the template, not the concrete path, so
//! no ids or names of other tenants end up in logs), status, latency, request id and the
//! principal that authenticated. Never bodies, headers or query strings. Probes log at `debug`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};

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

/// Writes the log line of a served request (the principal from `slot`, where the `Caller`
/// extractor left it). Nothing is formatted when the line's level is off.
pub fn write(
    method: &Method,
    route: &str,
    status: StatusCode,
    latency: Duration,
    slot: &PrincipalSlot,
) {
    let probe = matches!(route, "/healthz" | "/readyz");
    let level_on = match probe {
        true => tracing::enabled!(tracing::Level::DEBUG),
        false => tracing::enabled!(tracing::Level::INFO),
    };
    if !level_on {
        return;
    }
    let status = status.as_u16();
    let latency_ms = latency.as_secs_f64() * 1e3;
    let request_id = super::request_id::current().unwrap_or_default();
    if probe {
        tracing::debug!(%method, %route, status, latency_ms, %request_id, "request");
        return;
    }
    let principal = slot.get().map_or_else(
        || "-".to_string(),
        |p| {
            let (kind, id) = p.parts();
            if p == Principal::Admin {
                kind.to_string()
            } else {
                format!("{kind}:{id}")
            }
        },
    );
    tracing::info!(%method, %route, status, latency_ms, %request_id, %principal, "request");
}
