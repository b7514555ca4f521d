//! Counters of the broker's Prometheus metrics (`brokkr_*`), kept in atomics (no labels, so
//! cardinality is fixed); `routes::metrics` serves them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub auth_failures: AtomicU64,
    pub target_state_full: AtomicU64,
    pub target_state_not_modified: AtomicU64,
    pub long_polls_waiting: AtomicI64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a long poll as waiting while it lives.
#[derive(Debug)]
pub struct Waiting<'a>(&'a AtomicI64);

impl<'a> Waiting<'a> {
    pub fn new(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
