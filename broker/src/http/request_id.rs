//! Request ids: taken from a well-formed incoming `x-request-id` or generated, echoed on every
//! response (by [`super::envelope`]), and available to error bodies through a task-local.

use axum::extract::Request;
use axum::http::HeaderValue;
use uuid::Uuid;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if called inside one.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn acceptable(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| text.to_string())
}

/// The request's id (a well-formed incoming one, or a new one) and its header value.
pub fn of(request: &Request) -> (String, HeaderValue) {
    let incoming = request.headers().get(HEADER).and_then(acceptable);
    let id = incoming.unwrap_or_else(|| Uuid::new_v4().to_string());
    // An accepted or generated id is always a valid header value.
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"));
    (id, value)
}

/// Runs `served` with `id` as the [`current`] request id.
pub async fn scope<F: Future>(id: String, served: F) -> F::Output {
    REQUEST_ID.scope(id, served).await
}
