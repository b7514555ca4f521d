//! Authentication: PAKs (format, generation, constant-time checks), the TTL cache that resolves
//! them to principals, and the throttle of failed attempts. The HTTP extractor that uses them
//! is `http::caller`.

pub mod cache;
pub mod pak;
pub mod throttle;

pub use crate::domain::{Principal, Role};
pub use cache::Authenticator;
