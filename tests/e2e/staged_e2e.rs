//! Staged rollouts end to end: a broker, and one `brokkr-agent` per cluster, each cluster a
//! Kubernetes API double. A healthy release passes its three waves in order; a release whose
//! workload goes CrashLoopBackOff on the canary is rolled back by the broker itself, and the
//! other clusters never see it. People pause and promote; a broker restart mid-soak, and a
//! failover between two replicas, resume the rollout where it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use brokkr_e2e::agent::AgentProcess;
use brokkr_e2e::broker::TestBroker;
use brokkr_e2e::cluster::TestCluster;
use brokkr_e2e::database::{Backend, FreshDatabase};
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
        Self::on(
            TestBroker::start_with(|s| s.rollouts.tick_millis = 100).await,
            agents,
        )
        .await
    }

    /// Agents (and the test's calls) on `broker`.
    async fn on(broker: TestBroker, agents: &[(&str, Value)]) -> Self {
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

    async fn steer(&self, stack: Uuid, action: &str) -> Value {
        let path = format!("/api/v1/stacks/{stack}/rollout/{action}");
        let (status, rollout) = self
            .broker
            .call(Method::POST, &path, &self.generator, None)
            .await;
        assert_eq!(status, 200, "{action}: {rollout}");
        rollout
    }

    /// Waits until the rollout's current wave is soaking; returns the rollout.
    async fn soaking(&self, stack: Uuid, wave: usize) -> Value {
        eventually(PATIENCE, &format!("wave {wave} to soak"), || async {
            let rollout = self.rollout(stack).await;
            (rollout["staged"]["waves"][wave]["state"] == "soaking").then_some(rollout)
        })
        .await
    }

    /// Waits until every member holds ConfigMap `app` with `value`.
    async fn all_hold(&self, members: std::ops::Range<usize>, value: &str) {
        for member in members {
            self.wait_for(member, ("v1", "ConfigMap"), "app", |c| {
                c["data"]["value"] == value
            })
            .await;
        }
    }

    /// The deployment object `member`'s target state names for the stack.
    async fn target_of(&self, member: usize) -> Value {
        let path = format!("/api/v1/agents/{}/target-state", self.members[member].id);
        let (_, state) = self
            .broker
            .call(Method::GET, &path, &self.broker.admin, None)
            .await;
        state["stacks"][0]["deployment_object"]["id"].clone()
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

fn three_clusters() -> [(&'static str, Value); 3] {
    [
        ("canary", json!(["prod", "canary"])),
        ("edge-b", json!(["prod"])),
        ("edge-c", json!(["prod"])),
    ]
}

/// Waves canary, edge-b, the rest; each wave soaks `soak_seconds` after it applied.
fn three_waves(soak_seconds: u64) -> Value {
    json!({ "waves": [{ "name": "canary", "agents": "\"canary\" in agent.labels" },
                      { "name": "b", "agents": "agent.name == 'edge-b'" },
                      { "name": "all", "percent": 100 }],
            "gate": { "min_healthy_percent": 0, "soak_seconds": soak_seconds } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_pauses_and_promotes_wave_by_wave() {
    let fleet = Fleet::new(&three_clusters()).await;
    let stack = fleet.stack(three_waves(3600)).await;
    let v1 = fleet.publish(stack, &config_map("1")).await;
    fleet.all_hold(0..3, "1").await;
    let v2 = fleet.publish(stack, &config_map("2")).await;
    fleet.all_hold(0..1, "2").await;
    fleet.soaking(stack, 0).await;

    let paused = fleet.steer(stack, "pause").await;
    assert_eq!(paused["staged"]["state"], "paused", "{paused}");
    let promoted = fleet.steer(stack, "promote").await;
    assert_eq!(
        promoted["staged"]["waves"][0]["state"], "passed",
        "{promoted}"
    );
    assert_eq!(promoted["staged"]["current_wave"], 1, "{promoted}");
    fleet.all_hold(1..2, "2").await;
    assert_eq!(
        fleet.target_of(2).await,
        json!(v1),
        "edge-c waits for its wave"
    );
    fleet.soaking(stack, 1).await;
    let live = fleet.members[2]
        .cluster
        .get("v1", "ConfigMap", Some("default"), "app")
        .await
        .unwrap();
    assert_eq!(live["data"]["value"], "1", "edge-c still holds version 1");

    fleet.steer(stack, "promote").await;
    fleet.all_hold(2..3, "2").await;
    assert_eq!(fleet.target_of(2).await, json!(v2));
    let done = fleet.steer(stack, "promote").await;
    assert_eq!(done["staged"]["state"], "succeeded", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_soak_resumes_the_rollout() {
    let mut fleet = Fleet::new(&three_clusters()).await;
    let stack = fleet.stack(three_waves(4)).await;
    fleet.publish(stack, &config_map("1")).await;
    fleet.all_hold(0..3, "1").await;
    fleet.publish(stack, &config_map("2")).await;
    let before = fleet.soaking(stack, 0).await;

    fleet.broker.stop().await;
    let stopped_at = chrono::Utc::now();
    fleet.broker.restart().await;
    fleet.all_hold(0..3, "2").await;
    let done = eventually(PATIENCE, "the rollout to succeed", || async {
        let rollout = fleet.rollout(stack).await;
        (rollout["staged"]["state"] == "succeeded").then_some(rollout)
    })
    .await;
    let canary = &done["staged"]["waves"][0];
    assert_eq!(
        canary["soak_started_at"], before["staged"]["waves"][0]["soak_started_at"],
        "the soak went on from where it was"
    );
    let passed = timestamp(&canary["passed_at"]);
    assert!(
        passed > stopped_at,
        "the canary passed after the restart: {canary}"
    );
    let soaked = passed - timestamp(&canary["soak_started_at"]);
    assert!(soaked >= chrono::TimeDelta::seconds(4), "soaked {soaked}");
}

/// Makes `broker` drive a staged rollout that never ends (its one agent never applies), so it
/// holds the driver lease for as long as it runs; returns the holder it wrote.
async fn hold_the_lease(broker: &TestBroker, pool: &sqlx::PgPool) -> String {
    let generator = broker.generator("warm-up").await;
    let (idle, _) = broker.agent("idle").await;
    let body =
        json!({ "name": "warm-up", "rollout": { "waves": [{ "name": "all", "percent": 100 }] } });
    let (status, stack) = broker
        .call(Method::POST, "/api/v1/stacks", &generator, Some(body))
        .await;
    assert_eq!(status, 201, "{stack}");
    let stack: Uuid = stack["id"].as_str().unwrap().parse().unwrap();
    broker.target(&generator, idle, stack).await;
    broker.publish(&generator, stack, &config_map("1")).await;
    broker.publish(&generator, stack, &config_map("2")).await;
    let holder = eventually(PATIENCE, "the first replica to take the lease", || async {
        sqlx::query_scalar::<_, String>("SELECT holder FROM driver_leases")
            .fetch_optional(pool)
            .await
            .unwrap()
    })
    .await;
    assert!(
        holder.starts_with(broker.url.trim_start_matches("http://")),
        "{holder}"
    );
    holder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_between_replicas_resumes_the_rollout() {
    let database = FreshDatabase::create(Backend::Postgres).await;
    let url = database.url.clone();
    let mut driver = TestBroker::start_with(|s| {
        s.database.url = url;
        s.rollouts.tick_millis = 100;
        s.rollouts.lease_seconds = 2;
    })
    .await;
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let first = hold_the_lease(&driver, &pool).await;
    // Every agent and every call go to the other replica; the first one drives.
    let fleet = Fleet::on(driver.replica().await, &three_clusters()).await;
    let stack = fleet.stack(three_waves(3)).await;
    fleet.publish(stack, &config_map("1")).await;
    fleet.all_hold(0..3, "1").await;
    fleet.publish(stack, &config_map("2")).await;
    fleet.all_hold(0..1, "2").await;
    fleet.soaking(stack, 0).await;
    assert_eq!(
        fleet.target_of(1).await,
        fleet.target_of(2).await,
        "the later waves wait"
    );

    driver.stop().await;
    let stopped_at = chrono::Utc::now();
    fleet.all_hold(1..3, "2").await;
    let done = eventually(PATIENCE, "the rollout to succeed", || async {
        let rollout = fleet.rollout(stack).await;
        (rollout["staged"]["state"] == "succeeded").then_some(rollout)
    })
    .await;
    let passed = timestamp(&done["staged"]["waves"][0]["passed_at"]);
    assert!(
        passed > stopped_at,
        "the canary passed after the failover: {done}"
    );
    let now_held: String = sqlx::query_scalar("SELECT holder FROM driver_leases")
        .fetch_one(&pool)
        .await
        .unwrap();
    let replica = fleet.broker.url.trim_start_matches("http://");
    assert!(now_held.starts_with(replica), "{first} → {now_held}");
    pool.close().await;
}

fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}
