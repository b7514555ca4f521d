//! Secrets never reach the logs: the real binary at `trace` level handles PAKs, a Secret
//! manifest and webhook secrets, and none appears in what it writes to stderr.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::helpers::*;

/// A `brokkr-broker serve` child process whose stderr is collected.
struct Served {
    child: std::process::Child,
    admin: String,
    address: String,
    stderr: Arc<Mutex<String>>,
}

fn serve(database_url: &str) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brokkr-broker"))
        .args(["serve", "--listen-addr", "127.0.0.1:0"])
        .env("BROKKR__DATABASE__URL", database_url)
        .env("BROKKR__LOG__LEVEL", "trace")
        .env("BROKKR__LOG__FORMAT", "json")
        .env(
            "BROKKR__WEBHOOKS__ENCRYPTION_KEYS",
            format!("logs:{}:active", test_key("logs").key),
        )
        .env("BROKKR__WEBHOOKS__ALLOWED_CIDRS", "127.0.0.0/8")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("broker starts");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = stderr.clone();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if line.contains("broker listening") {
                let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                let _ = tx.send(
                    value["fields"]["addr"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    // stderr is drained from the start: a full pipe would stop the broker mid-log.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let admin = stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("brokkr_BR"))
        .expect("admin PAK printed");
    let address = format!("http://{}", rx.recv().expect("listen address logged"));
    Served {
        child,
        admin,
        address,
        stderr,
    }
}

/// Makes a subscription whose delivery fails (nothing listens on port 9) and waits for the
/// failure; returns what must never be logged: its signing secret, URL query value, header
/// value and the encryption key.
async fn webhook_secrets(client: &reqwest::Client, served: &Served) -> Vec<String> {
    let body = json!({
        "name": "h",
        "url": "http://127.0.0.1:9/hook?token=query-value-s3cret",
        "event_types": ["webhook.test"],
        "headers": { "x-token": "header-value-s3cret" },
        "max_attempts": 1,
    });
    let url = |path: &str| format!("{}{path}", served.address);
    let created: serde_json::Value = client
        .post(url("/api/v1/webhooks"))
        .bearer_auth(&served.admin)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["webhook"]["id"].as_str().unwrap().to_string();
    client
        .post(url(&format!("/api/v1/webhooks/{id}/test")))
        .bearer_auth(&served.admin)
        .send()
        .await
        .unwrap();
    let deliveries = url(&format!("/api/v1/webhooks/{id}/deliveries?status=dead"));
    let dead = eventually("the failed delivery", || async {
        let page: serde_json::Value = client
            .get(&deliveries)
            .bearer_auth(&served.admin)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        page["items"].as_array()?.first().cloned()
    })
    .await;
    assert!(
        !dead.to_string().contains("query-value"),
        "the URL's query leaked into the delivery log: {dead}"
    );
    let secret = created["secret"].as_str().unwrap();
    vec![
        secret["whsec_".len()..].to_string(),
        "query-value-s3cret".into(),
        "header-value-s3cret".into(),
        test_key("logs").key,
    ]
}

#[tokio::test]
async fn manifests_and_paks_never_reach_the_logs() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (url, _dir) = fresh_database(backend).await;
        check_logs(serve(&url)).await;
    }
}

async fn check_logs(mut served: Served) {
    let client = reqwest::Client::new();
    let generator: serde_json::Value = client
        .post(format!("{}/api/v1/generators", served.address))
        .bearer_auth(&served.admin)
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pak = generator["pak"].as_str().unwrap();
    let stack: serde_json::Value = client
        .post(format!("{}/api/v1/stacks", served.address))
        .bearer_auth(pak)
        .json(&json!({ "name": "s" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: correct-horse-battery-staple\n";
    for body in [secret.to_string(), format!("{secret}---\nkind: Broken\n")] {
        client
            .post(format!(
                "{}/api/v1/stacks/{}/deployment-objects",
                served.address,
                stack["id"].as_str().unwrap()
            ))
            .bearer_auth(pak)
            .json(&json!({ "yaml_content": body }))
            .send()
            .await
            .unwrap();
    }
    let hidden = webhook_secrets(&client, &served).await;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    let logs = served.stderr.lock().unwrap().clone();
    for secret in hidden {
        assert!(
            !logs.contains(&secret),
            "a webhook secret leaked into logs: {secret}"
        );
    }
    assert!(
        logs.contains("deployment-objects"),
        "requests were logged at all"
    );
    assert!(
        !logs.contains("correct-horse-battery-staple"),
        "manifest content leaked into logs"
    );
    let long_token = |p: &str| p.rsplit_once('_').unwrap().1.to_string();
    assert!(
        !logs.contains(&long_token(pak)),
        "generator PAK leaked into logs"
    );
    assert!(
        !logs.contains(&long_token(&served.admin)),
        "admin PAK leaked into logs"
    );
}
