//! `/healthz`, `/readyz` and `/metrics` on the agent's own port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use brokkr_agent::metrics::Metrics;

#[tokio::test]
async fn probes_and_metrics() {
    brokkr_agent::broker::install_crypto_provider();
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        axum::serve(listener, brokkr_agent::server::router(metrics.clone())).into_future(),
    );
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(
        status("/readyz").await,
        503,
        "not ready before a state is reconciled"
    );
    metrics.ready.store(true, Ordering::Relaxed);
    Metrics::add(&metrics.applies, 3);
    assert_eq!(status("/readyz").await, 200);
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE brokkr_agent_applies counter\nbrokkr_agent_applies_total 3\n"),
        "{text}"
    );
}
