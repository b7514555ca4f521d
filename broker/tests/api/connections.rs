//! Connection and request bounds: slow or idle clients are cut off, the connection limit holds
//! new connections back without disturbing established ones, and requests past the in-flight
//! limit or the request timeout get a problem at once.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

async fn raw_connection(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut seen)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&seen).to_string()
}

both_backends!(slow_and_idle_clients_are_cut_off, |app| {
    let app = app
        .respawn(|s| s.broker.header_read_timeout_seconds = 1)
        .await;
    let mut slow = raw_connection(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = raw_connection(&app).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "others are served meanwhile");
    until_closed(&mut slow).await;
    let answered = until_closed(&mut idle).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
});

both_backends!(the_connection_limit_holds_new_connections_back, |app| {
    let app = app
        .respawn(|s| {
            s.broker.max_connections = 3;
            s.broker.header_read_timeout_seconds = 60;
        })
        .await;
    assert_eq!(app.get("/api/v1/whoami", &app.admin).await.status(), 200);
    let held = [raw_connection(&app).await, raw_connection(&app).await];
    // The established keep-alive connection is still served.
    assert_eq!(app.get("/api/v1/whoami", &app.admin).await.status(), 200);
    let other = reqwest::Client::new();
    let waiting = tokio::spawn(other.get(app.url("/healthz")).send());
    let early = tokio::time::timeout(Duration::from_millis(300), async {
        while !waiting.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(early.is_err(), "a connection past the limit waits");
    drop(held);
    let answered = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once a connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(answered.status(), 200);
});

both_backends!(
    requests_past_the_in_flight_limit_or_the_timeout_get_503,
    |app| {
        let (_, generator) = app.create_generator("ci").await;
        let stack = app
            .create_published_stack(&generator, json!({ "name": "s" }))
            .await;
        let plugin = expect_json(
            app.upload_plugin("spin", plugin_wasm("spin"), None).await,
            201,
        )
        .await;
        let dry_run = format!("/api/v1/plugins/{}/dry-run", id_of(&plugin));
        let scope = json!({ "scope": "stack", "scope_id": stack });
        let app = app
            .respawn(|s| {
                s.broker.max_in_flight = 1;
                s.broker.request_timeout_seconds = 1;
                s.plugins.timeout_ms = 5000;
                s.plugins.fuel = u64::MAX;
            })
            .await;
        // The spinning plugin holds the only slot until the request timeout abandons it.
        let slow = app.post(&dry_run, &app.admin, scope.clone());
        let meanwhile = async {
            loop {
                let response = app.get("/api/v1/stacks", &app.admin).await;
                if response.status() == 503 {
                    let problem = expect_problem(response, 503, "overloaded").await;
                    assert!(problem["detail"].as_str().unwrap().contains("in progress"));
                    break;
                }
                tokio::task::yield_now().await;
            }
            let health = app.client.get(app.url("/healthz")).send().await.unwrap();
            assert_eq!(health.status(), 200, "probes are never held back");
        };
        let (slow, ()) = tokio::join!(slow, meanwhile);
        let problem = expect_problem(slow, 503, "timeout").await;
        assert!(
            problem["detail"].as_str().unwrap().contains("1 seconds"),
            "{problem}"
        );
    }
);
