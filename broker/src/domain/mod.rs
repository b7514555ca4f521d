//! Domain rules that need no IO: principals, paging, manifest validation, target-state
//! fingerprints, and for webhooks the key ring, signatures and the delivery address policy.
//! Nothing here imports another layer of the broker.

pub mod address_policy;
pub mod keyring;
pub mod manifest;
pub mod page;
pub mod principal;
pub mod signature;
pub mod target_etag;
pub mod template;
pub mod work_spec;

pub use page::Window;
pub use principal::{Principal, Role};
