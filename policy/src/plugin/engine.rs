//! Engine policy, in one place: what every plugin call may use, and the epoch ticker that turns
//! wall-clock time into interruptions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How often the epoch advances.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// What one plugin call may consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel units (roughly WebAssembly instructions).
    pub fuel: u64,
    /// Wall-clock time.
    pub timeout: Duration,
    /// Linear memory, in bytes.
    pub memory_bytes: usize,
    /// Total size of the violations a call may return, in bytes.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 2_000_000_000,
            timeout: Duration::from_secs(2),
            memory_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// Epoch ticks of the timeout.
    pub fn ticks(&self) -> u64 {
        (self.timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64
    }
}

/// The engine: component model, fuel, epoch interruption, pooled instances, a bounded stack.
pub fn engine(limits: &Limits) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(OptLevel::Speed);
    config.max_wasm_stack(1 << 20);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(256);
    pool.total_core_instances(512);
    pool.total_memories(256);
    pool.total_tables(512);
    pool.total_stacks(256);
    pool.max_memory_size(limits.memory_bytes);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("brokkr-plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("cannot start the plugin epoch ticker: {e}"));
        Self { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
