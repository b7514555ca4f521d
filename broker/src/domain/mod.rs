//! Domain checks that need no IO: manifest validation and target-state fingerprints.

pub mod manifest;
pub mod target_etag;
