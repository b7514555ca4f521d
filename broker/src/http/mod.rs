//! HTTP plumbing shared by the routes: the problem+json error, the authenticating [`Caller`]
//! extractor, body and query extractors, and request ids.

pub mod caller;
pub mod client;
pub mod error;
pub mod extract;
pub mod request_id;
pub mod serve;

pub use caller::Caller;
pub use error::{ApiError, ApiResult};
