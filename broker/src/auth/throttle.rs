//! Throttling of failed authentication: a client address that presents more than
//! `broker.auth_failures_per_minute` bad PAKs is refused (429) until its minute is over, so keys
//! cannot be guessed at speed and the audit log of failures stays bounded.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long an address's failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Throttle {
    failures: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
    limit: u32,
}

impl Throttle {
    /// `limit` failures per address per minute; 0 turns throttling off.
    pub fn new(limit: u32) -> Self {
        let failures = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(WINDOW)
            .build();
        Self { failures, limit }
    }

    /// Whether `address` used up its failures.
    pub fn blocked(&self, address: IpAddr) -> bool {
        self.limit > 0
            && self
                .failures
                .get(&address)
                .is_some_and(|n| n.load(Ordering::Relaxed) >= self.limit)
    }

    /// Counts a failure; returns the address's count in the window.
    pub fn failed(&self, address: IpAddr) -> u32 {
        let counter = self
            .failures
            .get_with(address, || Arc::new(AtomicU32::new(0)));
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit() {
        let throttle = Throttle::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(!throttle.blocked(a));
        throttle.failed(a);
        assert!(!throttle.blocked(a));
        throttle.failed(a);
        assert!(throttle.blocked(a));
        assert!(!throttle.blocked(b), "other addresses are not affected");
        let off = Throttle::new(0);
        off.failed(a);
        off.failed(a);
        assert!(!off.blocked(a));
    }
}
