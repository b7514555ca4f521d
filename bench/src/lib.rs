//! Shared parts of the benchmark binaries: the broker process and simulated fleet
//! (`fleet`), and the load generator with its latency summary (`load`).

pub mod fleet;
pub mod load;
