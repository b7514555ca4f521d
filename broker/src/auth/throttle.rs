//! Throttling of failed authentication, per client: a client that presents more than
//! `broker.auth_failures_per_minute` bad PAKs gets 429 for its further bad ones, so keys cannot
//! be guessed at speed. A PAK that verifies is never throttled, so one noisy sender behind the
//! same proxy cannot lock out the fleet. The rate is kept by `governor` (GCRA per client).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};

/// How long a client's failures count.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Throttle {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Throttle {
    /// `limit` failures per client per minute; 0 turns throttling off.
    pub fn new(limit: u32) -> Self {
        let limiter =
            NonZeroU32::new(limit).map(|n| governor::RateLimiter::dashmap(Quota::per_minute(n)));
        Self { limiter }
    }

    /// Counts a failure of `client`; `false` when the client is over its limit.
    pub fn admit_failure(&self, client: IpAddr) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|l| l.check_key(&client).is_ok())
    }

    /// Forgets clients whose failures no longer count (run once a window).
    pub fn forget_old(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Clients currently remembered.
    pub fn clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_per_client() {
        let throttle = Throttle::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(throttle.admit_failure(a));
        assert!(throttle.admit_failure(a));
        assert!(!throttle.admit_failure(a));
        assert!(throttle.admit_failure(b), "other clients are not affected");
        let off = Throttle::new(0);
        assert!((0..100).all(|_| off.admit_failure(a)));
    }
}
