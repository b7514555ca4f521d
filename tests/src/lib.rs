//! The end-to-end harness: a broker (in process, restartable on its port), a cluster (the
//! Kubernetes API test double on a socket, or a real cluster named by `BROKKR_E2E_KUBECONFIG`)
//! and `brokkr-agent` child processes configured through their environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod broker;
pub mod cluster;
pub mod database;
pub mod process;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, failing with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// How long end-to-end waits may take (the agent polls every second).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A workspace binary next to the test executable (scripts/test-all.sh builds them first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (scripts/test-all.sh does)",
        path.display()
    );
    path
}
