//! Retry timing: exponential backoff with jitter (from `backon`), per stack for failed applies
//! and for the calls the agent makes before it can start.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use uuid::Uuid;

/// Delays doubling from `base` up to `max`, each stretched by up to as much again at random
/// so agents do not retry in lockstep; the sequence never ends.
pub fn delays(base: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(base)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Failed stacks and when each may be tried again.
#[derive(Debug, Default)]
pub struct Retries {
    base: Duration,
    max: Duration,
    pending: HashMap<Uuid, (ExponentialBackoff, Instant)>,
}

impl Retries {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            pending: HashMap::new(),
        }
    }

    /// Records a failure; returns when to retry.
    pub fn failed(&mut self, stack: Uuid, now: Instant) -> Instant {
        let (base, max) = (self.base, self.max);
        let (pauses, at) = self
            .pending
            .entry(stack)
            .or_insert_with(|| (delays(base, max), now));
        *at = now + pauses.next().unwrap_or(max);
        *at
    }

    pub fn succeeded(&mut self, stack: Uuid) {
        self.pending.remove(&stack);
    }

    /// Whether a failed stack may be tried now (stacks that never failed always may).
    pub fn due(&self, stack: Uuid, now: Instant) -> bool {
        self.pending.get(&stack).is_none_or(|(_, at)| *at <= now)
    }

    /// The earliest pending retry.
    pub fn next(&self) -> Option<Instant> {
        self.pending.values().map(|(_, at)| *at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_and_caps() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let pauses: Vec<Duration> = delays(base, max).take(20).collect();
        let within = |d: Duration, low: u64| {
            d >= Duration::from_millis(low) && d < Duration::from_millis(2 * low)
        };
        assert!(within(pauses[0], 100), "{:?}", pauses[0]);
        assert!(within(pauses[2], 400), "{:?}", pauses[2]);
        assert!(within(pauses[19], 1000), "capped: {:?}", pauses[19]);
    }

    #[test]
    fn retries_wait_then_clear() {
        let mut retries = Retries::new(Duration::from_secs(10), Duration::from_secs(60));
        let stack = Uuid::new_v4();
        let now = Instant::now();
        assert!(retries.due(stack, now));
        let at = retries.failed(stack, now);
        assert!(!retries.due(stack, now));
        assert!(retries.due(stack, at));
        assert_eq!(retries.next(), Some(at));
        let later = retries.failed(stack, at);
        assert!(
            later - at >= Duration::from_secs(20),
            "the second pause doubles"
        );
        retries.succeeded(stack);
        assert!(retries.due(stack, now));
    }
}
