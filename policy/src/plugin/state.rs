//! The per-call store state: a WASI context that grants nothing (but keeps what the guest
//! writes to stderr, to explain a trap), and a limiter that remembers when it refused memory
//! (so the resulting trap can be named).

use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxView, WasiView,
};

/// A clock stopped at zero: plugins get no real time.
struct Stopped;

impl HostWallClock for Stopped {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

/// Refuses growth beyond a budget and remembers that it did.
pub struct Budget {
    memory_bytes: usize,
    pub refused: bool,
}

impl ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= 100_000;
        self.refused |= !allowed;
        Ok(allowed)
    }
}

pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub budget: Budget,
    /// What the guest wrote to stderr (a panic message, say), kept to explain a trap.
    stderr: MemoryOutputPipe,
}

/// Bytes of stderr kept per call; a guest that writes more finds the stream closed.
const STDERR_CAPACITY: usize = 1 << 20;

impl CallState {
    pub fn new(memory_bytes: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(Stopped)
            .monotonic_clock(Stopped)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            budget: Budget {
                memory_bytes,
                refused: false,
            },
            stderr,
        }
    }

    /// What the guest wrote to stderr so far.
    pub fn stderr(&self) -> Vec<u8> {
        self.stderr.contents().to_vec()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
