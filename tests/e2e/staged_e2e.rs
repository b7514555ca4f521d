//! Staged rollouts end to end: a broker, and one `brokkr-agent` per cluster, each cluster a
//! Kubernetes API double. A healthy release passes its three waves in order; a release whose
//! workload goes CrashLoopBackOff on the canary is rolled back by the broker itself, and the
//! other clusters never see it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use brokkr_e2e::agent::AgentProcess;
use brokkr_e2e::broker::TestBroker;
use brokkr_e2e::cluster::TestCluster;
use brokkr_e2e::{PATIENCE, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// One cluster with its agent.
struct Member {
    id: Uuid,
    cluster: TestCluster,
    _agent: AgentProcess,
}

/// A broker whose driver gates every 100 ms, a generator, and an agent per `(name, labels)`.
struct Fleet {
    broker: TestBroker,
    generator: String,
    members: Vec<Member>,
}

impl Fleet {
    async fn new(agents: &[(&str, Value)]) -> Self {
        let broker = TestBroker::start_with(|s| s.rollouts.tick_millis = 100).await;
        let generator = broker.generator("ci").await;
        let mut members = Vec::new();
        for (name, labels) in agents {
            let body = json!({ "name": name, "cluster_name": name, "labels": labels });
            let (status, created) = broker
                .call(Method::POST, "/api/v1/agents", &broker.admin, Some(body))
                .await;
            assert_eq!(status, 201, "{created}");
            let id: Uuid = created["agent"]["id"].as_str().unwrap().parse().unwrap();
            let cluster = TestCluster::double().await;
            let agent = AgentProcess::start(
                id,
                &broker.url,
                created["pak"].as_str().unwrap(),
                &cluster.kubeconfig,
            );
            members.push(Member {
                id,
                cluster,
                _agent: agent,
            });
        }
        Self {
            broker,
            generator,
            members,
        }
    }

    async fn stack(&self, strategy: Value) -> Uuid {
        let body = json!({ "name": "web", "labels": ["prod"], "rollout": strategy });
        let (status, stack) = self
            .broker
            .call(Method::POST, "/api/v1/stacks", &self.generator, Some(body))
            .await;
        assert_eq!(status, 201, "{stack}");
        stack["id"].as_str().unwrap().parse().unwrap()
    }

    async fn publish(&self, stack: Uuid, yaml: &str) -> Uuid {
        self.broker.publish(&self.generator, stack, yaml).await
    }

    async fn rollout(&self, stack: Uuid) -> Value {
        let path = format!("/api/v1/stacks/{stack}/rollout");
        self.broker
            .call(Method::GET, &path, &self.generator, None)
            .await
            .1
    }

    /// Waits until `member`'s cluster holds `kind/name` satisfying `check`.
    async fn wait_for(
        &self,
        member: usize,
        (api_version, kind): (&str, &str),
        name: &str,
        check: impl Fn(&Value) -> bool,
    ) {
        let cluster = &self.members[member].cluster;
        eventually(
            PATIENCE,
            &format!("{kind} {name} on cluster {member}"),
            || async {
                cluster
                    .get(api_version, kind, Some("default"), name)
                    .await
                    .filter(|v| check(v))
            },
        )
        .await;
    }
}

fn config_map(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  value: \"{value}\"\n"
    )
}

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_release_passes_three_waves_in_order() {
    let fleet = Fleet::new(&[
        ("canary", json!(["prod", "canary"])),
        ("edge-b", json!(["prod"])),
        ("edge-c", json!(["prod"])),
    ])
    .await;
    let strategy = json!({ "waves": [{ "name": "canary", "agents": "\"canary\" in agent.labels" },
                                     { "name": "b", "agents": "agent.name == 'edge-b'" },
                                     { "name": "all", "percent": 100 }],
                           "gate": { "min_healthy_percent": 0, "soak_seconds": 0 } });
    let stack = fleet.stack(strategy).await;
    fleet.publish(stack, &config_map("1")).await;
    for member in 0..3 {
        fleet
            .wait_for(member, ("v1", "ConfigMap"), "app", |c| {
                c["data"]["value"] == "1"
            })
            .await;
    }
    let v2 = fleet.publish(stack, &config_map("2")).await;
    let done = eventually(PATIENCE, "the rollout to succeed", || async {
        let rollout = fleet.rollout(stack).await;
        (rollout["staged"]["state"] == "succeeded").then_some(rollout)
    })
    .await;
    let passed: Vec<&str> = done["staged"]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["passed_at"].as_str().unwrap())
        .collect();
    assert!(
        passed.windows(2).all(|p| p[0] <= p[1]),
        "waves passed in order: {passed:?}"
    );
    let mut applied_at = Vec::new();
    for (i, member) in fleet.members.iter().enumerate() {
        fleet
            .wait_for(i, ("v1", "ConfigMap"), "app", |c| c["data"]["value"] == "2")
            .await;
        let reported = eventually(PATIENCE, "the apply report", || async {
            let events = fleet.broker.events_for(member.id, v2, "apply").await;
            events
                .first()
                .and_then(|e| e["created_at"].as_str())
                .map(str::to_string)
        })
        .await;
        applied_at.push(reported);
    }
    assert!(
        applied_at.windows(2).all(|a| a[0] <= a[1]),
        "clusters applied in wave order: {applied_at:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_canary_is_rolled_back_and_the_rest_never_see_it() {
    let fleet = Fleet::new(&[
        ("canary", json!(["prod", "canary"])),
        ("edge-b", json!(["prod"])),
    ])
    .await;
    let strategy = json!({ "waves": [{ "name": "canary", "agents": "\"canary\" in agent.labels" },
                                     { "name": "rest", "percent": 100 }],
                           "gate": { "min_healthy_percent": 100, "max_failed": 0, "soak_seconds": 60 },
                           "on_failure": "rollback" });
    let stack = fleet.stack(strategy).await;
    let v1 = fleet.publish(stack, &deployment("web:1")).await;
    for member in 0..2 {
        fleet
            .wait_for(member, ("apps/v1", "Deployment"), "web", |d| {
                image(d) == "web:1"
            })
            .await;
    }
    let v2 = fleet.publish(stack, &deployment("web:2")).await;
    fleet
        .wait_for(0, ("apps/v1", "Deployment"), "web", |d| image(d) == "web:2")
        .await;

    // The canary's new pod keeps crashing.
    let canary = &fleet.members[0].cluster;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(canary.client.clone(), "default");
    let pod = json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "web-abc", "namespace": "default", "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "web", "image": "web:2" }] } });
    pods.create(&Default::default(), &serde_json::from_value(pod).unwrap())
        .await
        .unwrap();
    let crashing = json!({ "phase": "Running", "containerStatuses": [{ "name": "web", "ready": false,
        "restartCount": 3, "state": { "waiting": { "reason": "CrashLoopBackOff" } } }] });
    assert!(
        canary
            .fake()
            .unwrap()
            .set_status("", "pods", Some("default"), "web-abc", crashing)
    );

    let rolled = eventually(PATIENCE, "the rollback", || async {
        let rollout = fleet.rollout(stack).await;
        (rollout["staged"]["state"] == "rolled_back").then_some(rollout)
    })
    .await;
    assert!(
        rolled["staged"]["reason"]
            .as_str()
            .unwrap()
            .contains("canary"),
        "{rolled}"
    );
    fleet
        .wait_for(0, ("apps/v1", "Deployment"), "web", |d| image(d) == "web:1")
        .await;
    let rest = fleet.members[1].id;
    assert!(
        fleet.broker.events_for(rest, v2, "apply").await.is_empty(),
        "the rest never received it"
    );
    let live = fleet.members[1]
        .cluster
        .get("apps/v1", "Deployment", Some("default"), "web")
        .await
        .unwrap();
    assert_eq!(image(&live), "web:1");
    let path = format!("/api/v1/agents/{rest}/target-state");
    let state = fleet
        .broker
        .call(Method::GET, &path, &fleet.broker.admin, None)
        .await
        .1;
    assert_eq!(state["stacks"][0]["deployment_object"]["id"], json!(v1));
}

fn image(deployment: &Value) -> &str {
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
}
