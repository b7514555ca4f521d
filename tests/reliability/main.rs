//! Reliability: killed with SIGKILL in the middle of mixed writes, the broker loses no
//! acknowledged write and stores no retried one twice; through a PostgreSQL outage it keeps
//! answering (503 while the database is away) and recovers without a restart; webhooks are
//! delivered at least once through crashes, and once each by replicas sharing the work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod kill;
mod outage;
mod proxy;
mod webhooks;
mod writers;
