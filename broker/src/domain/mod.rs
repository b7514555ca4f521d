//! Domain rules that need no IO: principals, paging, manifest validation and target-state
//! fingerprints. Nothing here imports another layer of the broker.

pub mod manifest;
pub mod page;
pub mod principal;
pub mod target_etag;

pub use page::Window;
pub use principal::{Principal, Role};
