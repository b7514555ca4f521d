//! Retry timing: exponential backoff with jitter, per stack.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::RngExt;
use uuid::Uuid;

/// The delay before attempt `attempt` (1-based): `base · 2^(attempt-1)`, capped at `max`,
/// scaled by a random factor in `[0.5, 1.0]` so agents do not retry in lockstep.
pub fn delay(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exponent).min(max);
    raw.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Failed stacks and when each may be tried again.
#[derive(Debug, Default)]
pub struct Retries {
    base: Duration,
    max: Duration,
    pending: HashMap<Uuid, (u32, Instant)>,
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
        let attempt = self.pending.get(&stack).map_or(1, |(n, _)| n + 1);
        let at = now + delay(self.base, self.max, attempt, rand::rng().random::<f64>());
        self.pending.insert(stack, (attempt, at));
        at
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
        assert_eq!(delay(base, max, 1, 1.0), Duration::from_millis(100));
        assert_eq!(delay(base, max, 3, 1.0), Duration::from_millis(400));
        assert_eq!(delay(base, max, 3, 0.0), Duration::from_millis(200));
        assert_eq!(delay(base, max, 20, 1.0), max);
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
        retries.succeeded(stack);
        assert!(retries.due(stack, now));
    }
}
