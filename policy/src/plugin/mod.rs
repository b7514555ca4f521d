//! The WebAssembly plugin host. Plugins are components of the `brokkr:plugin/validator` world
//! (`wit/plugin-0.1.0`), compiled once per SHA-256 digest and instantiated fresh for every
//! call, with fuel, an epoch deadline and a memory limit, and WASI linked to a context that
//! grants nothing (no files, network, environment or real clock).

mod bindings {
    wasmtime::component::bindgen!({ path: "../wit/plugin-0.1.0", world: "validator" });
}
mod engine;
mod host;
mod input;
mod state;

pub use bindings::brokkr::plugin::types::{
    ClusterInfo, Deployment, GeneratorInfo, Object, ObjectRef, Pair, StackInfo, Violation,
};
pub use engine::Limits;
pub use host::{Plugin, PluginError, PluginHost};
pub use input::{InputError, objects_from_documents, objects_from_yaml};

/// Annotations (or any string map) as the key-value pairs plugins receive.
pub fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<Pair> {
    map.iter()
        .map(|(k, v)| Pair {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Hex SHA-256 of a plugin's bytes: its identity.
pub fn digest(wasm: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(wasm))
}
