//! HTTP plumbing shared by the routes: the problem+json error, the authenticating [`Caller`]
//! extractor, body and query extractors, request ids, and the middleware every request passes
//! through ([`envelope`]).

pub mod caller;
pub mod client;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod parts_body;
pub mod request_id;
pub mod request_log;
pub mod serve;
pub mod tls;

pub use caller::Caller;
pub use error::{ApiError, ApiResult};

/// A JSON answer that carries a secret (a new PAK): never stored by caches or proxies.
#[derive(Debug)]
pub struct Secret<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Secret<T> {
    fn into_response(self) -> axum::response::Response {
        let mut response = axum::Json(self.0).into_response();
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        response
    }
}
