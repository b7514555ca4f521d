//! The WebAssembly plugin host. Plugins are components of the `brokkr:plugin/validator` world
//! (`wit/plugin-0.1.0`, or the same world in `wit/plugin-0.2.0`) or of the
//! `brokkr:plugin/notifier` world (`wit/plugin-0.2.0`), compiled once per SHA-256 digest and
//! instantiated fresh for every call, with fuel, an epoch deadline and a memory limit, and
//! WASI linked to a context that grants nothing (no files, network, environment or real clock).

mod bindings {
    wasmtime::component::bindgen!({ path: "../wit/plugin-0.1.0", world: "validator" });
}
/// The validator world of 0.2.0: the same records as 0.1.0, so its types are 0.1.0's.
mod bindings_v2 {
    wasmtime::component::bindgen!({
        path: "../wit/plugin-0.2.0",
        world: "validator",
        with: { "brokkr:plugin/types": super::bindings::brokkr::plugin::types },
    });
}
mod notifier_bindings {
    wasmtime::component::bindgen!({ path: "../wit/plugin-0.2.0", world: "notifier" });
}
mod engine;
mod host;
mod input;
mod notify;
mod state;

pub use bindings::brokkr::plugin::types::{
    ClusterInfo, Deployment, GeneratorInfo, Object, ObjectRef, Pair, StackInfo, Violation,
};
pub use engine::Limits;
pub use host::{Plugin, PluginError, PluginHost, PluginKind};
pub use input::{InputError, objects_from_documents, objects_from_yaml};
pub use notifier_bindings::brokkr::plugin::notifications::{Event, Header, Outgoing};
pub use notify::{MAX_HEADERS, header_allowed};

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
