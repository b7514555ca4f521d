//! [`PluginHost`]: loads plugins (compiled once per digest) and calls them, each call in a fresh
//! store instantiated from the pre-linked component, bounded by fuel, an epoch deadline and a
//! memory budget. Every way a plugin can fail becomes a [`PluginError`] with a readable reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, Trap};

use super::bindings::{Validator, ValidatorPre};
use super::bindings_v2::{Validator as ValidatorV2, ValidatorPre as ValidatorV2Pre};
use super::engine::{self, Limits, Ticker};
use super::notifier_bindings::{Notifier, NotifierPre};
use super::state::CallState;
use super::{Deployment, Violation, digest};

/// Why a plugin could not be loaded or did not give a verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("the component imports something the host does not provide: {0}")]
    UnknownImport(String),
    #[error(
        "the component is neither a validator (brokkr:plugin/validator@0.1.0 or @0.2.0) nor a notifier (brokkr:plugin/notifier@0.2.0): {0}"
    )]
    WrongInterface(String),
    #[error("the plugin is a {actual}, not a {wanted}")]
    WrongKind {
        wanted: PluginKind,
        actual: PluginKind,
    },
    #[error("the plugin rejected its configuration: {0}")]
    Config(String),
    #[error("the plugin ran out of fuel ({0} units)")]
    Fuel(u64),
    #[error("the plugin exceeded its time limit of {0:?}")]
    Timeout(Duration),
    #[error("the plugin exceeded its memory limit of {0} bytes")]
    Memory(usize),
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("the plugin returned {0} bytes of violations, more than the limit of {1}")]
    Output(usize, usize),
    #[error("the plugin reported an error: {0}")]
    Guest(String),
    #[error("the plugin host failed: {0}")]
    Host(String),
}

/// The world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// Judges deployment objects (`validate`).
    Validator,
    /// Shapes or drops outgoing webhooks (`notify`).
    Notifier,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::Notifier => "notifier",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "validator" => Some(Self::Validator),
            "notifier" => Some(Self::Notifier),
            _ => None,
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component linked against the host for the world it implements.
enum Linked {
    Validator(ValidatorPre<CallState>),
    ValidatorV2(ValidatorV2Pre<CallState>),
    Notifier(NotifierPre<CallState>),
}

/// An instance of a [`Linked`] component in its own store.
pub(super) enum Instance {
    Validator(Validator),
    ValidatorV2(ValidatorV2),
    Notifier(Notifier),
}

/// A loaded plugin: its digest and the component linked against the host, ready to instantiate.
pub struct Plugin {
    pub digest: String,
    linked: Linked,
}

impl Plugin {
    /// The world this plugin implements.
    pub fn kind(&self) -> PluginKind {
        match self.linked {
            Linked::Validator(_) | Linked::ValidatorV2(_) => PluginKind::Validator,
            Linked::Notifier(_) => PluginKind::Notifier,
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("digest", &self.digest)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// Runs plugins. Cheap to share; compiled plugins are cached by digest.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    _ticker: Ticker,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Longest reason reported for a failure (the whole cause chain and wasm backtrace, cut).
const MAX_REASON_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes on a character boundary.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes more)", &text[..end], text.len() - end)
}

/// The whole reason of an error: every cause and, for a trap, the wasm backtrace.
fn reason(err: &wasmtime::Error) -> String {
    bounded(format!("{err:?}").trim(), MAX_REASON_BYTES)
}

impl PluginHost {
    pub fn new(limits: Limits) -> Result<Self, PluginError> {
        let host_error = |e: wasmtime::Error| PluginError::Host(reason(&e));
        let engine = engine::engine(&limits).map_err(host_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(host_error)?;
        let ticker = Ticker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            limits,
            loaded: Mutex::new(HashMap::new()),
            _ticker: ticker,
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiles and links `wasm` (or returns the plugin already loaded under its digest).
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        let digest = digest(wasm);
        if let Some(found) = self
            .loaded
            .lock()
            .ok()
            .and_then(|l| l.get(&digest).cloned())
        {
            return Ok(found);
        }
        let component = Component::from_binary(&self.engine, wasm)
            .map_err(|e| PluginError::NotAComponent(reason(&e)))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::UnknownImport(reason(&e)))?;
        let linked = link(instance_pre)?;
        let plugin = Arc::new(Plugin {
            digest: digest.clone(),
            linked,
        });
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(digest, plugin.clone());
        }
        Ok(plugin)
    }

    /// A plugin loaded earlier, by digest.
    pub fn get(&self, digest: &str) -> Option<Arc<Plugin>> {
        self.loaded.lock().ok().and_then(|l| l.get(digest).cloned())
    }

    /// A fresh store with this host's limits.
    fn store(&self) -> Result<Store<CallState>, PluginError> {
        let mut store = Store::new(&self.engine, CallState::new(self.limits.memory_bytes));
        store.limiter(|state| &mut state.budget);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|e| PluginError::Host(reason(&e)))?;
        store.set_epoch_deadline(self.limits.ticks());
        store.epoch_deadline_trap();
        Ok(store)
    }

    pub(super) fn instantiate(
        &self,
        plugin: &Plugin,
    ) -> Result<(Store<CallState>, Instance), PluginError> {
        let mut store = self.store()?;
        let instance = match &plugin.linked {
            Linked::Validator(pre) => pre.instantiate(&mut store).map(Instance::Validator),
            Linked::ValidatorV2(pre) => pre.instantiate(&mut store).map(Instance::ValidatorV2),
            Linked::Notifier(pre) => pre.instantiate(&mut store).map(Instance::Notifier),
        }
        .map_err(|e| self.classify(&e, &store))?;
        Ok((store, instance))
    }

    /// Names a failed call: fuel, time, memory, or another trap.
    pub(super) fn classify(&self, err: &wasmtime::Error, store: &Store<CallState>) -> PluginError {
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::Fuel(self.limits.fuel),
            Some(Trap::Interrupt) => PluginError::Timeout(self.limits.timeout),
            _ if store.data().budget.refused => PluginError::Memory(self.limits.memory_bytes),
            _ => {
                let stderr = store.data().stderr();
                let stderr = String::from_utf8_lossy(&stderr);
                let mut text = reason(err);
                if !stderr.trim().is_empty() {
                    text.push_str("\nthe plugin wrote to stderr: ");
                    text.push_str(&bounded(stderr.trim(), MAX_REASON_BYTES));
                }
                PluginError::Trap(text)
            }
        }
    }

    /// Creates the per-call store and instance and drops them: what every call pays before the
    /// guest runs (for benchmarks).
    pub fn instantiate_only(&self, plugin: &Plugin) -> Result<(), PluginError> {
        self.instantiate(plugin).map(|_| ())
    }

    /// Asks the plugin whether `config` suits it.
    pub fn check_config(&self, plugin: &Plugin, config: &str) -> Result<(), PluginError> {
        let (mut store, instance) = self.instantiate(plugin)?;
        let verdict = match &instance {
            Instance::Validator(v) => v.call_check_config(&mut store, config),
            Instance::ValidatorV2(v) => v.call_check_config(&mut store, config),
            Instance::Notifier(n) => n.call_check_config(&mut store, config),
        }
        .map_err(|e| self.classify(&e, &store))?;
        verdict.map_err(PluginError::Config)
    }

    /// Judges a deployment object; an empty list means it passes.
    pub fn validate(
        &self,
        plugin: &Plugin,
        deployment: &Deployment,
        config: &str,
    ) -> Result<Vec<Violation>, PluginError> {
        let (mut store, instance) = self.instantiate(plugin)?;
        let verdict = match &instance {
            Instance::Validator(v) => v.call_validate(&mut store, deployment, config),
            Instance::ValidatorV2(v) => v.call_validate(&mut store, deployment, config),
            Instance::Notifier(_) => {
                return Err(PluginError::WrongKind {
                    wanted: PluginKind::Validator,
                    actual: PluginKind::Notifier,
                });
            }
        }
        .map_err(|e| self.classify(&e, &store))?;
        let violations =
            verdict.map_err(|message| PluginError::Guest(message.chars().take(1000).collect()))?;
        let size: usize = violations
            .iter()
            .map(|v| {
                v.message.len()
                    + v.path.as_ref().map_or(0, String::len)
                    + v.object
                        .as_ref()
                        .map_or(0, |o| o.name.len() + o.kind.len() + 64)
            })
            .sum();
        if size > self.limits.max_output_bytes {
            return Err(PluginError::Output(size, self.limits.max_output_bytes));
        }
        Ok(violations)
    }
}

/// Links a component for the first world it implements: validator 0.1.0, validator 0.2.0,
/// notifier 0.2.0.
fn link(instance_pre: wasmtime::component::InstancePre<CallState>) -> Result<Linked, PluginError> {
    let first = match ValidatorPre::new(instance_pre.clone()) {
        Ok(pre) => return Ok(Linked::Validator(pre)),
        Err(e) => reason(&e),
    };
    if let Ok(pre) = ValidatorV2Pre::new(instance_pre.clone()) {
        return Ok(Linked::ValidatorV2(pre));
    }
    match NotifierPre::new(instance_pre) {
        Ok(pre) => Ok(Linked::Notifier(pre)),
        Err(_) => Err(PluginError::WrongInterface(first)),
    }
}
