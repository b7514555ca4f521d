//! `brokkr apply`: the diff it prints, nothing submitted twice, dry runs, and `--wait` following
//! a real agent applying to the Kubernetes API double.

use brokkr_e2e::agent::AgentProcess;
use brokkr_e2e::broker::TestBroker;
use brokkr_e2e::cluster::TestCluster;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::brokkr;

const CONFIG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\ndata:\n  mode: prod\n";

fn deployment(image: &str) -> String {
    format!(
        "# the web tier\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
}

/// A directory holding the config map and the deployment running `image`.
fn manifests(image: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-config.yaml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("20-web.yml"), deployment(image)).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
    dir
}

/// The stack's versions, newest first, as the broker lists them.
async fn versions(broker: &TestBroker, pak: &str, name: &str) -> Vec<Value> {
    let (_, stacks) = broker
        .call(
            Method::GET,
            &format!("/api/v1/stacks?name={name}"),
            pak,
            None,
        )
        .await;
    let Some(id) = stacks["items"][0]["id"].as_str() else {
        return Vec::new();
    };
    let path = format!("/api/v1/stacks/{id}/deployment-objects");
    let (_, page) = broker.call(Method::GET, &path, pak, None).await;
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn apply_prints_what_changes_and_submits_nothing_twice() {
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", generator.as_str()),
    ];
    let v1 = manifests("web:1");
    let dir = v1.path().to_str().unwrap();

    let missing = brokkr(&["apply", "-f", dir, "--stack", "web"], &env).await;
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "error: no stack named \"web\": add --create to create it\n"
    );

    let dry = brokkr(
        &[
            "apply",
            "-f",
            dir,
            "--stack",
            "web",
            "--create",
            "--dry-run",
        ],
        &env,
    )
    .await;
    assert_eq!(
        (dry.code, dry.stdout.as_str()),
        (
            0,
            "stack web: would be created, version 1\n+ ConfigMap v1 default/a\n+ Deployment apps/v1 default/web\ndry run: nothing submitted\n"
        ),
        "{}",
        dry.stderr
    );
    assert!(versions(&broker, &generator, "web").await.is_empty());

    let first = brokkr(
        &[
            "apply", "-f", dir, "--stack", "web", "--create", "--label", "edge",
        ],
        &env,
    )
    .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let submitted = versions(&broker, &generator, "web").await;
    assert_eq!(submitted.len(), 1);
    let id = submitted[0]["id"].as_str().unwrap();
    assert_eq!(
        first.stdout,
        format!(
            "stack web: created, version 1\n+ ConfigMap v1 default/a\n+ Deployment apps/v1 default/web\nsubmitted version 1 ({id})\n"
        ),
        "a table without colours off a terminal"
    );

    let again = brokkr(&["apply", "-f", dir, "--stack", "web"], &env).await;
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (0, "no change: stack web is at version 1\n")
    );
    assert_eq!(versions(&broker, &generator, "web").await.len(), 1);

    let v2 = manifests("web:2");
    let dir = v2.path().to_str().unwrap();
    let planned = brokkr(
        &[
            "apply",
            "-f",
            dir,
            "--stack",
            "web",
            "--dry-run",
            "-o",
            "json",
        ],
        &env,
    )
    .await;
    let plan: Value = serde_json::from_str(&planned.stdout).unwrap();
    assert_eq!(
        plan["diff"],
        json!({ "added": [], "removed": [], "changed": [{
            "object": "Deployment apps/v1 default/web",
            "fields": [{ "path": "spec.template.spec.containers[name=web].image",
                         "old": "web:1", "new": "web:2" }] }] })
    );
    assert_eq!(
        (plan["submitted"].clone(), plan["base_version"].clone()),
        (Value::Null, json!(1))
    );

    let second = brokkr(&["apply", "-f", dir, "--stack", "web"], &env).await;
    let newest = versions(&broker, &generator, "web").await;
    assert_eq!(newest.len(), 2);
    assert_eq!(
        second.stdout,
        format!(
            "stack web: version 1 → 2\n~ Deployment apps/v1 default/web\n    ~ spec.template.spec.containers[name=web].image: \"web:1\" → \"web:2\"\nsubmitted version 2 ({})\n",
            newest[0]["id"].as_str().unwrap()
        )
    );

    // Back to the first content: a new version, not a replay of the first submission.
    let back = brokkr(
        &["apply", "-f", v1.path().to_str().unwrap(), "--stack", "web"],
        &env,
    )
    .await;
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(versions(&broker, &generator, "web").await.len(), 3);
}

#[tokio::test]
async fn apply_refuses_bad_input_before_changing_anything() {
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", generator.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\n").unwrap();
    let path = file.to_str().unwrap();
    let nameless = brokkr(&["apply", "-f", path, "--stack", "web", "--create"], &env).await;
    assert_eq!(nameless.code, 1);
    assert!(
        nameless.stderr.contains("metadata.name"),
        "{}",
        nameless.stderr
    );

    std::fs::write(&file, CONFIG).unwrap();
    let label = brokkr(
        &[
            "apply",
            "-f",
            path,
            "--stack",
            "web",
            "--create",
            "--label",
            "no spaces",
        ],
        &env,
    )
    .await;
    assert_eq!(label.code, 1);
    assert!(
        label.stderr.starts_with("error: --label \"no spaces\""),
        "{}",
        label.stderr
    );
    let pair = brokkr(
        &[
            "apply",
            "-f",
            path,
            "--stack",
            "web",
            "--create",
            "--annotation",
            "tier",
        ],
        &env,
    )
    .await;
    assert!(pair.stderr.contains("write KEY=VALUE"), "{}", pair.stderr);
    assert!(
        versions(&broker, &generator, "web").await.is_empty(),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_follows_an_agent_applying_to_the_api_double() {
    let cluster = TestCluster::double().await;
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let (agent, pak) = broker.agent("edge").await;
    let path = format!("/api/v1/agents/{agent}/labels");
    let body = json!({ "label": "edge" });
    let (status, _) = broker
        .call(Method::POST, &path, &broker.admin, Some(body))
        .await;
    assert_eq!(status, 201);
    let _agent = AgentProcess::start(agent, &broker.url, &pak, &cluster.kubeconfig);
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", generator.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, CONFIG).unwrap();
    let path = file.to_str().unwrap();
    let args = [
        "apply",
        "-f",
        path,
        "--stack",
        "web",
        "--create",
        "--label",
        "edge",
        "--wait",
        "--timeout",
        "2m",
    ];
    let applied = brokkr(&args, &env).await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(
        applied
            .stdout
            .ends_with("applied 1/1, failed 0, pending 0\n"),
        "{}",
        applied.stdout
    );
    let found = cluster
        .get("v1", "ConfigMap", Some("default"), "a")
        .await
        .unwrap();
    assert_eq!(found["data"]["mode"], "prod");

    // A kind the cluster does not serve: the agent fails, and so does the command (exit 3).
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: default\n";
    std::fs::write(&file, format!("{CONFIG}---\n{widget}")).unwrap();
    let args = [
        "apply",
        "-f",
        path,
        "--stack",
        "web",
        "--wait",
        "--timeout",
        "2m",
        "-o",
        "json",
    ];
    let failed = brokkr(&args, &env).await;
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    let failure = format!("error: agent {agent} failed: ");
    assert!(failed.stderr.contains(&failure), "{}", failed.stderr);
    let document: Value = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(document["rollout"]["state"], "failed");
    assert_eq!(
        document["diff"]["added"],
        json!(["Widget example.com/v1 default/w"])
    );
    assert!(Uuid::parse_str(document["submitted"]["id"].as_str().unwrap()).is_ok());
}
