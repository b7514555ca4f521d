//! Per-subscription limits on this broker: at most `max_concurrency_per_endpoint` deliveries
//! in progress, and a circuit breaker that stops claiming for a subscription after
//! `circuit_failures` consecutive failures until `circuit_open_seconds` have passed. A busy or
//! failing endpoint is left out of claims, so it never holds up deliveries to the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

#[derive(Debug)]
struct Endpoint {
    slots: Arc<Semaphore>,
    failures: u32,
    open_until: Option<Instant>,
}

/// The endpoints' states.
#[derive(Debug)]
pub struct Endpoints {
    per_endpoint: usize,
    failures_to_open: u32,
    open_for: Duration,
    states: Mutex<HashMap<Uuid, Endpoint>>,
}

impl Endpoints {
    pub fn new(per_endpoint: usize, failures_to_open: u32, open_for: Duration) -> Self {
        Self {
            per_endpoint: per_endpoint.max(1),
            failures_to_open: failures_to_open.max(1),
            open_for,
            states: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_endpoint(&self) -> usize {
        self.per_endpoint
    }

    /// Subscriptions not to claim for now: every slot taken, or the circuit open.
    pub fn excluded(&self, now: Instant) -> Vec<Uuid> {
        let Ok(states) = self.states.lock() else {
            return Vec::new();
        };
        states
            .iter()
            .filter(|(_, e)| {
                e.slots.available_permits() == 0 || e.open_until.is_some_and(|t| t > now)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The slot semaphore of a subscription.
    fn slots(&self, id: Uuid) -> Arc<Semaphore> {
        let Ok(mut states) = self.states.lock() else {
            return Arc::new(Semaphore::new(self.per_endpoint));
        };
        states
            .entry(id)
            .or_insert_with(|| Endpoint {
                slots: Arc::new(Semaphore::new(self.per_endpoint)),
                failures: 0,
                open_until: None,
            })
            .slots
            .clone()
    }

    /// Waits for one of the subscription's slots.
    pub async fn acquire(&self, id: Uuid) -> Option<OwnedSemaphorePermit> {
        self.slots(id).acquire_owned().await.ok()
    }

    /// Records an attempt: a success closes the circuit, enough failures in a row open it.
    pub fn record(&self, id: Uuid, succeeded: bool, now: Instant) {
        let Ok(mut states) = self.states.lock() else {
            return;
        };
        let Some(endpoint) = states.get_mut(&id) else {
            return;
        };
        if succeeded {
            endpoint.failures = 0;
            endpoint.open_until = None;
        } else {
            endpoint.failures = endpoint.failures.saturating_add(1);
            if endpoint.failures >= self.failures_to_open {
                endpoint.open_until = Some(now + self.open_for);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn busy_and_failing_endpoints_are_left_out() {
        let endpoints = Endpoints::new(1, 2, Duration::from_secs(30));
        let (slow, failing, fine) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let now = Instant::now();
        let held = endpoints.acquire(slow).await.unwrap();
        let _ = endpoints.acquire(fine).await.unwrap();
        assert_eq!(endpoints.excluded(now), vec![slow]);
        drop(held);
        assert!(endpoints.excluded(now).is_empty());
        drop(endpoints.acquire(failing).await);
        endpoints.record(failing, false, now);
        assert!(
            endpoints.excluded(now).is_empty(),
            "one failure keeps it closed"
        );
        endpoints.record(failing, false, now);
        assert_eq!(endpoints.excluded(now), vec![failing]);
        assert!(
            endpoints.excluded(now + Duration::from_secs(31)).is_empty(),
            "half open"
        );
        endpoints.record(failing, true, now);
        assert!(endpoints.excluded(now).is_empty());
    }
}
