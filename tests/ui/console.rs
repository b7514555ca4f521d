//! The web console in a real browser: a seeded broker, then `tests/ui/console.py` drives
//! Debian's chromium through Playwright for Python (both installed by
//! `scripts/ensure-browser.sh`): sign-in and sign-out, each view with real data, a generator
//! kept out of another team's stack (by URL too), a forged CSRF token refused, a live rollout
//! update without reload and a fleet table that follows an agent's report, two versions
//! compared, a retarget previewed then confirmed, keyboard navigation, the agent, work-order,
//! audit, plugin and webhook views; screenshots land in `target/ui-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use brokkr_e2e::broker::TestBroker;
use reqwest::Method;
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Creates `path` as `pak`; returns the answer (which must be 201).
async fn created(broker: &TestBroker, path: &str, pak: &str, body: Value) -> Value {
    let (status, value) = broker.call(Method::POST, path, pak, Some(body)).await;
    assert_eq!(status, 201, "POST {path}: {value}");
    value
}

async fn generator(broker: &TestBroker, name: &str, reach: &str) -> String {
    let body = json!({ "name": name, "reach": reach });
    let made = created(broker, "/api/v1/generators", &broker.admin, body).await;
    made["pak"].as_str().unwrap().to_string()
}

const V1: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: \"1\"\n";
const V2: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: \"2\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let python = workspace().join("target/ui-venv/bin/python");
    assert!(
        python.exists() && PathBuf::from("/usr/bin/chromium").exists(),
        "the console tests need chromium and Playwright: run scripts/ensure-browser.sh"
    );
    let broker = TestBroker::start_with(|s| s.rollouts.tick_millis = 100).await;
    let mut search_agent = Value::Null;
    for (name, labels) in [
        ("payments-eu", json!(["payments", "prod"])),
        ("payments-us", json!(["payments", "prod"])),
        ("search-eu", json!(["search", "prod"])),
    ] {
        let body = json!({ "name": name, "cluster_name": name, "labels": labels });
        search_agent = created(&broker, "/api/v1/agents", &broker.admin, body).await;
    }
    let payments = generator(&broker, "payments-ci", "\"payments\" in agent.labels").await;
    let search = generator(&broker, "search-ci", "\"search\" in agent.labels").await;
    let strategy = json!({ "waves": [{ "name": "canary", "agents": "agent.name == 'payments-eu'" },
                                     { "name": "rest", "percent": 100 }],
                           "gate": { "min_healthy_percent": 0, "soak_seconds": 3600 } });
    let body = json!({ "name": "api", "labels": ["payments"], "rollout": strategy });
    let api = created(&broker, "/api/v1/stacks", &payments, body).await;
    let api = api["id"].as_str().unwrap().to_string();
    let index = created(
        &broker,
        "/api/v1/stacks",
        &search,
        json!({ "name": "index", "labels": ["search"] }),
    )
    .await;
    let index = index["id"].as_str().unwrap().to_string();
    for yaml in [V1, V2] {
        broker.publish(&payments, api.parse().unwrap(), yaml).await;
    }
    let index_object = broker.publish(&search, index.parse().unwrap(), V1).await;
    let (_, agents) = broker
        .call(Method::GET, "/api/v1/agents", &broker.admin, None)
        .await;
    let eu = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "payments-eu")
        .unwrap()["id"]
        .clone();
    let order = json!({ "type": "restart", "target": { "agent_ids": [eu] },
                        "spec": { "kind": "Deployment", "namespace": "api", "name": "api" } });
    created(&broker, "/api/v1/work-orders", &payments, order).await;

    let screenshots = workspace().join("target/ui-screenshots");
    let url = broker.url.clone();
    let admin = broker.admin.clone();
    let script = workspace().join("tests/ui/console.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("BROKKR_URL", url)
            .env("ADMIN_PAK", admin)
            .env("PAYMENTS_PAK", payments)
            .env("API_STACK", api)
            .env("INDEX_STACK", index)
            .env("SCREENSHOTS", screenshots)
            .env(
                "SEARCH_AGENT_ID",
                search_agent["agent"]["id"].as_str().unwrap(),
            )
            .env("SEARCH_AGENT_PAK", search_agent["pak"].as_str().unwrap())
            .env("INDEX_OBJECT", index_object.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("every check passed"), "{stdout}");
}
