//! Broker + cluster + `brokkr-agent` processes, end to end. Every scenario runs against the
//! Kubernetes API test double; its `real_cluster` variant runs it unchanged against a real
//! cluster and is ignored unless asked for (`BROKKR_E2E_KUBECONFIG=… cargo test -- --ignored`),
//! since no cluster can be had on the development machines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use brokkr_e2e::agent::AgentProcess;
use brokkr_e2e::broker::TestBroker;
use brokkr_e2e::cluster::{REAL_CLUSTER_ENV, TestCluster};
use brokkr_e2e::{PATIENCE, eventually};
use serde_json::Value;
use uuid::Uuid;

/// One scenario's world: a cluster, a broker, a generator, an agent and a namespace of its own.
struct Env {
    cluster: TestCluster,
    broker: TestBroker,
    generator: String,
    agent: AgentProcess,
    ns: String,
    tag: String,
}

/// A scenario for the test double and (ignored unless asked for) a real cluster.
macro_rules! e2e {
    ($name:ident, |$env:ident| $body:block) => {
        e2e!(@scenario $name, |$env| $body, {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs a real cluster: set BROKKR_E2E_KUBECONFIG and run with --ignored"]
            async fn real_cluster() {
                let cluster = TestCluster::real().await.unwrap_or_else(|| {
                    panic!("set {REAL_CLUSTER_ENV} to a kubeconfig to run this against a real cluster")
                });
                scenario(Env::new(cluster).await).await
            }
        });
    };
    (@scenario $name:ident, |$env:ident| $body:block, { $($more:tt)* }) => {
        mod $name {
            use super::*;

            async fn scenario(mut $env: Env) {
                let _ = &mut $env;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn double() {
                scenario(Env::new(TestCluster::double().await).await).await
            }

            $($more)*
        }
    };
}

/// A scenario that needs the test double (it injects faults): no real-cluster variant.
macro_rules! e2e_double {
    ($name:ident, |$env:ident| $body:block) => {
        e2e!(@scenario $name, |$env| $body, {});
    };
}

impl Env {
    async fn new(cluster: TestCluster) -> Self {
        let tag = Uuid::new_v4().simple().to_string()[..8].to_string();
        let broker = TestBroker::start().await;
        let generator = broker.generator("ci").await;
        let (id, pak) = broker.agent("edge").await;
        let agent = AgentProcess::start(id, &broker.url, &pak, &cluster.kubeconfig);
        let ns = format!("e2e-{tag}");
        let env = Self {
            cluster,
            broker,
            generator,
            agent,
            ns,
            tag,
        };
        let base = env.stack("namespace").await;
        env.publish(
            base,
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
                env.ns
            ),
        )
        .await;
        env.wait_for("v1", "Namespace", None, &env.ns.clone(), |_| true)
            .await;
        env
    }

    async fn stack(&self, name: &str) -> Uuid {
        self.broker
            .stack(&self.generator, name, self.agent.id)
            .await
    }

    async fn publish(&self, stack: Uuid, yaml: &str) -> Uuid {
        self.broker.publish(&self.generator, stack, yaml).await
    }

    fn config_map(&self, name: &str, value: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {}\ndata:\n  value: \"{value}\"\n",
            self.ns
        )
    }

    async fn config_map_value(&self, name: &str) -> Option<String> {
        let found = self
            .cluster
            .get("v1", "ConfigMap", Some(&self.ns), name)
            .await?;
        found["data"]["value"].as_str().map(str::to_string)
    }

    /// Waits until an object exists and satisfies `check`; returns it.
    async fn wait_for(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let what = format!("{kind} {name}; agent log:\n{}", self.agent.logs());
        eventually(PATIENCE, &what, || async {
            self.cluster
                .get(api_version, kind, ns, name)
                .await
                .filter(|v| check(v))
        })
        .await
    }

    async fn wait_value(&self, name: &str, value: &str) {
        self.wait_for("v1", "ConfigMap", Some(&self.ns.clone()), name, |cm| {
            cm["data"]["value"] == value
        })
        .await;
    }

    async fn wait_gone(&self, name: &str) {
        let what = format!(
            "ConfigMap {name} to be pruned; agent log:\n{}",
            self.agent.logs()
        );
        eventually(PATIENCE, &what, || async {
            self.config_map_value(name).await.is_none().then_some(())
        })
        .await;
    }

    /// Waits until exactly `count` events of `event_type` exist for `object`; returns them.
    async fn wait_events(&self, object: Uuid, event_type: &str, count: usize) -> Vec<Value> {
        let what = format!(
            "{count} {event_type} event(s) for {object}; agent log:\n{}",
            self.agent.logs()
        );
        eventually(PATIENCE, &what, || async {
            let events = self
                .broker
                .events_for(self.agent.id, object, event_type)
                .await;
            (events.len() == count).then_some(events)
        })
        .await
    }
}

e2e!(first_apply_update_and_prune, |env| {
    let stack = env.stack("app").await;
    let v1 = env
        .publish(
            stack,
            &format!(
                "{}---\n{}",
                env.config_map("a", "1"),
                env.config_map("b", "1")
            ),
        )
        .await;
    env.wait_value("a", "1").await;
    let b = env
        .wait_for("v1", "ConfigMap", Some(&env.ns.clone()), "b", |_| true)
        .await;
    assert_eq!(
        b["metadata"]["labels"]["brokkr.io/agent-id"],
        env.agent.id.to_string()
    );
    let events = env.wait_events(v1, "apply", 1).await;
    assert_eq!(events[0]["status"], "success");

    let v2 = env.publish(stack, &env.config_map("a", "2")).await;
    env.wait_value("a", "2").await;
    env.wait_gone("b").await;
    env.wait_events(v2, "apply", 1).await;
});

e2e!(stack_deleted, |env| {
    let stack = env.stack("doomed").await;
    env.publish(stack, &env.config_map("doomed", "x")).await;
    env.wait_value("doomed", "x").await;
    env.broker.delete_stack(&env.generator, stack).await;
    env.wait_gone("doomed").await;
    let what = format!("a prune event; agent log:\n{}", env.agent.logs());
    eventually(PATIENCE, &what, || async {
        let events = env.broker.events(env.agent.id).await;
        events
            .iter()
            .any(|e| e["event_type"] == "prune" && e["stack_id"] == stack.to_string())
            .then_some(())
    })
    .await;
});

e2e!(stack_untargeted, |env| {
    let stack = env.stack("leaving").await;
    env.publish(stack, &env.config_map("leaving", "x")).await;
    env.wait_value("leaving", "x").await;
    env.broker
        .untarget(&env.generator, env.agent.id, stack)
        .await;
    env.wait_gone("leaving").await;
});

e2e!(crd_and_custom_resource_in_one_object, |env| {
    let group = format!("e2e{}.brokkr.dev", env.tag);
    let yaml = format!(
        "apiVersion: {group}/v1\nkind: Gadget\nmetadata:\n  name: g\n  namespace: {ns}\nspec:\n  size: 3\n---\n\
         apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gadgets.{group}\nspec:\n  \
         group: {group}\n  scope: Namespaced\n  names:\n    plural: gadgets\n    singular: gadget\n    kind: Gadget\n  \
         versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        \
         type: object\n        x-kubernetes-preserve-unknown-fields: true\n",
        ns = env.ns
    );
    let stack = env.stack("crd").await;
    let object = env.publish(stack, &yaml).await;
    let gadget = env
        .wait_for(
            &format!("{group}/v1"),
            "Gadget",
            Some(&env.ns.clone()),
            "g",
            |_| true,
        )
        .await;
    assert_eq!(gadget["spec"]["size"], 3);
    env.wait_events(object, "apply", 1).await;
    env.broker.delete_stack(&env.generator, stack).await;
    let what = format!("the CRD to be pruned; agent log:\n{}", env.agent.logs());
    eventually(PATIENCE, &what, || async {
        let crd = env
            .cluster
            .get(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                &format!("gadgets.{group}"),
            )
            .await;
        crd.is_none().then_some(())
    })
    .await;
});

e2e!(invalid_object_fails_while_other_stacks_apply, |env| {
    let bad = env.stack("bad").await;
    let good = env.stack("good").await;
    let bad_object = env.publish(bad, &env.config_map("Bad_Name", "x")).await;
    env.publish(good, &env.config_map("fine", "x")).await;
    env.wait_value("fine", "x").await;
    let events = env.wait_events(bad_object, "apply", 1).await;
    assert_eq!(events[0]["status"], "failure");
    let message = events[0]["message"].as_str().unwrap();
    assert!(
        message.contains("metadata.name"),
        "the API server's reason is reported: {message}"
    );
});

e2e_double!(api_server_errors_are_retried, |env| {
    let double = env
        .cluster
        .fake()
        .expect("faults can only be injected into the test double");
    // Only the agent's applies (PATCH) fail, with a status kube-rs does not retry itself.
    double
        .inject(kube_double::Fault::error(500, "/configmaps/flaky", 3).on(reqwest::Method::PATCH));
    let stack = env.stack("flaky").await;
    let object = env.publish(stack, &env.config_map("flaky", "x")).await;
    env.wait_value("flaky", "x").await;
    let failures = env.wait_events(object, "apply", 2).await;
    let statuses: Vec<&str> = failures
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["failure", "success"],
        "one failure event, then success after retries"
    );
});

e2e!(broker_outage_keeps_enforcing_and_catches_up, |env| {
    let stack = env.stack("steady").await;
    let v1 = env
        .publish(
            stack,
            &format!(
                "{}---\n{}",
                env.config_map("steady", "1"),
                env.config_map("other", "1")
            ),
        )
        .await;
    env.wait_value("steady", "1").await;
    env.wait_events(v1, "apply", 1).await;

    env.broker.stop().await;
    // Drift while the broker is away is corrected from the remembered state.
    env.cluster
        .delete("v1", "ConfigMap", Some(&env.ns.clone()), "steady")
        .await;
    env.cluster
        .tamper(
            "v1",
            "ConfigMap",
            Some(&env.ns.clone()),
            "other",
            serde_json::json!({ "data": { "value": "tampered" } }),
        )
        .await;
    env.wait_value("steady", "1").await;
    env.wait_value("other", "1").await;

    env.broker.restart().await;
    let v2 = env
        .publish(
            stack,
            &format!(
                "{}---\n{}",
                env.config_map("steady", "2"),
                env.config_map("other", "1")
            ),
        )
        .await;
    env.wait_value("steady", "2").await;
    env.wait_events(v2, "apply", 1).await;
    assert_eq!(
        env.broker.events_for(env.agent.id, v1, "apply").await.len(),
        1,
        "events delivered once"
    );
    assert!(
        env.config_map_value("other").await.is_some(),
        "nothing was pruned"
    );
});

e2e!(agent_restart_neither_repeats_nor_deletes, |env| {
    let stack = env.stack("restart").await;
    let v1 = env.publish(stack, &env.config_map("survivor", "1")).await;
    let before = env
        .wait_for("v1", "ConfigMap", Some(&env.ns.clone()), "survivor", |_| {
            true
        })
        .await;
    env.wait_events(v1, "apply", 1).await;
    let restarted_at = Instant::now();
    env.agent.restart();
    let v2 = env
        .publish(
            stack,
            &format!(
                "{}---\n{}",
                env.config_map("survivor", "1"),
                env.config_map("newcomer", "2")
            ),
        )
        .await;
    env.wait_value("newcomer", "2").await;
    env.wait_events(v2, "apply", 1).await;
    let after = env
        .cluster
        .get("v1", "ConfigMap", Some(&env.ns), "survivor")
        .await
        .expect("still there");
    assert_eq!(
        before["metadata"]["uid"], after["metadata"]["uid"],
        "never deleted and recreated"
    );
    assert_eq!(
        env.broker.events_for(env.agent.id, v1, "apply").await.len(),
        1,
        "no duplicate event after restart"
    );
    assert!(
        env.agent.logs().matches("agent starting").count() >= 2,
        "the agent did restart"
    );
    assert!(restarted_at.elapsed() < PATIENCE * 2);
    let _ = env.agent.state_dir();
});

e2e!(agent_enforces_bound_plugins, |env| {
    // The stored object predates the policy, so only the agent can stop it.
    let stack = env.broker.plain_stack(&env.generator, "guarded").await;
    let unlabelled = env.publish(stack, &env.config_map("guarded", "1")).await;
    env.broker
        .enforce_plugin(
            "required_labels",
            serde_json::json!({ "keys": ["team"] }),
            stack,
            "enforce",
        )
        .await;
    env.broker.target(&env.generator, env.agent.id, stack).await;
    let events = env.wait_events(unlabelled, "validation", 1).await;
    assert_eq!(events[0]["status"], "failure");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("missing required label `team`"),
        "{}",
        events[0]
    );
    assert!(
        env.config_map_value("guarded").await.is_none(),
        "nothing was applied"
    );

    let labelled = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guarded\n  namespace: {}\n  labels:\n    team: core\ndata:\n  value: \"2\"\n",
        env.ns
    );
    let compliant = env.publish(stack, &labelled).await;
    env.wait_value("guarded", "2").await;
    assert_eq!(
        env.wait_events(compliant, "apply", 1).await[0]["status"],
        "success"
    );
});

e2e!(
    an_inactive_agent_keeps_enforcing_and_reports_once_active,
    |env| {
        env.broker.set_status(env.agent.id, "inactive").await;
        let stack = env.stack("while-inactive").await;
        let object = env
            .publish(stack, &env.config_map("while-inactive", "1"))
            .await;
        // It still reads its target state, so it applies; the broker refuses its report for now,
        // and the agent holds it.
        env.wait_value("while-inactive", "1").await;
        let held = "events wait until an admin activates this agent";
        eventually(PATIENCE, "the agent to hold a refused report", || async {
            env.agent.logs().contains(held).then_some(())
        })
        .await;
        env.broker.set_status(env.agent.id, "active").await;
        let events = env.wait_events(object, "apply", 1).await;
        assert_eq!(events[0]["status"], "success", "the held report arrives");
    }
);

e2e!(an_agent_enrolls_itself_and_keeps_its_pak, |env| {
    let label = format!("fleet-{}", env.tag);
    let body = serde_json::json!({ "name_prefix": "enrolled-", "labels": [label], "uses": 1 });
    let (status, made) = env
        .broker
        .call(
            reqwest::Method::POST,
            "/api/v1/enrollment-tokens",
            &env.broker.admin,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().unwrap().to_string();
    let name = format!("new-{}", env.tag);
    let secret = format!("{}/agent-identity", env.ns);
    let mut enrolled = AgentProcess::enroll(
        &token,
        &name,
        &secret,
        &env.broker.url,
        &env.cluster.kubeconfig,
    );
    let stack = env
        .broker
        .plain_stack(&env.generator, &format!("fleet-{}", env.tag))
        .await;
    let path = format!("/api/v1/stacks/{stack}/labels");
    let (status, _) = env
        .broker
        .call(
            reqwest::Method::POST,
            &path,
            &env.generator,
            Some(serde_json::json!({ "label": label })),
        )
        .await;
    assert!(
        status == 200 || status == 201 || status == 204,
        "label: {status}"
    );
    env.publish(stack, &env.config_map("enrolled", "1")).await;
    env.wait_value("enrolled", "1").await;
    let (_, agents) = env
        .broker
        .call(
            reqwest::Method::GET,
            "/api/v1/agents",
            &env.broker.admin,
            None,
        )
        .await;
    let full = format!("enrolled-{name}");
    assert!(
        agents.to_string().contains(&full),
        "{full} in {agents}\n{}",
        enrolled.logs()
    );
    // The identity is in the Secret, not in the state file.
    let kept = env
        .wait_for("v1", "Secret", Some(&env.ns), "agent-identity", |_| true)
        .await;
    assert!(kept["data"]["pak"].is_string() && kept["data"]["agent-id"].is_string());
    let state = std::fs::read_to_string(enrolled.state_dir().join("state.json")).unwrap();
    assert!(!state.contains("brokkr_BR"), "no PAK in the state file");
    // The token is used up; the restarted agent, even with its state file lost, carries on
    // with the identity it kept.
    enrolled.stop();
    std::fs::remove_file(enrolled.state_dir().join("state.json")).unwrap();
    enrolled.restart();
    env.publish(stack, &env.config_map("enrolled", "2")).await;
    env.wait_value("enrolled", "2").await;
    assert!(
        !enrolled.logs().contains("refused enrollment"),
        "{}",
        enrolled.logs()
    );
});

e2e_double!(health_and_rollout_reach_the_broker, |env| {
    let stack = env.stack("health").await;
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: web:1\n",
        env.ns
    );
    let object = env.publish(stack, &deployment).await;
    let rollout = format!("/api/v1/deployment-objects/{object}/rollout");
    let health = format!("/api/v1/deployment-objects/{object}/health");
    let get = |path: String| {
        let broker = &env.broker;
        let pak = env.generator.clone();
        async move { broker.call(reqwest::Method::GET, &path, &pak, None).await.1 }
    };
    let what = format!("the rollout converged; agent log:\n{}", env.agent.logs());
    let converged = eventually(PATIENCE, &what, || async {
        Some(get(rollout.clone()).await).filter(|r| r["state"] == "converged")
    })
    .await;
    assert_eq!(converged["applied"], 1);
    assert_eq!(converged["time_to_applied"]["count"], 1);
    let what = format!(
        "progressing health reported; agent log:\n{}",
        env.agent.logs()
    );
    eventually(PATIENCE, &what, || async {
        Some(get(health.clone()).await).filter(|h| h["status"] == "progressing")
    })
    .await;
    let double = env.cluster.fake().unwrap();
    let status = serde_json::json!({ "observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1 });
    assert!(double.set_status("apps", "deployments", Some(&env.ns), "web", status));
    let what = format!("healthy reported; agent log:\n{}", env.agent.logs());
    let healthy = eventually(PATIENCE, &what, || async {
        Some(get(health.clone()).await).filter(|h| h["status"] == "healthy")
    })
    .await;
    assert_eq!(
        healthy["agents"][0]["agent_id"],
        serde_json::json!(env.agent.id)
    );
    let figures = get(rollout.clone()).await;
    assert_eq!(figures["time_to_healthy"]["count"], 1, "{figures}");
});

impl Env {
    /// Creates a work order as admin; returns its id.
    async fn order(&self, body: Value) -> Uuid {
        let (status, created) = self
            .broker
            .call(
                reqwest::Method::POST,
                "/api/v1/work-orders",
                &self.broker.admin,
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().unwrap().parse().unwrap()
    }

    /// Waits until the agent's run of `order` is over; returns the run.
    async fn run_over(&self, order: Uuid) -> Value {
        let path = format!("/api/v1/work-orders/{order}");
        let what = format!(
            "work order {order} to finish; agent log:\n{}",
            self.agent.logs()
        );
        eventually(PATIENCE, &what, || async {
            let (_, order) = self
                .broker
                .call(reqwest::Method::GET, &path, &self.broker.admin, None)
                .await;
            let run = order["runs"][0].clone();
            matches!(
                run["status"].as_str(),
                Some("succeeded" | "failed" | "expired")
            )
            .then_some(run)
        })
        .await
    }

    /// Writes an object straight into the double, as a controller or the kubelet would.
    async fn create_in_double(&self, api_version: &str, kind: &str, body: Value) {
        let double = self.cluster.fake().unwrap();
        let gvk = match api_version.split_once('/') {
            Some((group, version)) => kube::core::GroupVersionKind::gvk(group, version, kind),
            None => kube::core::GroupVersionKind::gvk("", api_version, kind),
        };
        let resource = kube::core::ApiResource::from_gvk(&gvk);
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(double.client(), &self.ns, &resource);
        let object: kube::api::DynamicObject = serde_json::from_value(body).unwrap();
        api.create(&Default::default(), &object).await.unwrap();
    }
}

fn pod(ns: &str, name: &str, labels: Value, log: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns, "labels": labels,
                      "annotations": { kube_double::POD_LOG_ANNOTATION: log } },
        "spec": { "containers": [{ "name": "main", "image": "busybox" }] }
    })
}

/// The status of a pod whose container keeps crashing.
fn crashing() -> Value {
    serde_json::json!({ "phase": "Running", "containerStatuses": [{ "name": "main", "ready": false,
        "restartCount": 4, "state": { "waiting": { "reason": "CrashLoopBackOff" } } }] })
}

e2e_double!(work_orders_restart_run_jobs_and_gather_diagnostics, |env| {
    let stack = env.stack("work").await;
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: web:1\n",
        env.ns
    );
    let object = env.publish(stack, &deployment).await;
    env.wait_for(
        "apps/v1",
        "Deployment",
        Some(&env.ns.clone()),
        "web",
        |_| true,
    )
    .await;

    // restart: the pod template gets kubectl's restartedAt annotation.
    let restart = env
        .order(
            serde_json::json!({ "type": "restart", "target": { "agent_ids": [env.agent.id] },
            "spec": { "kind": "Deployment", "namespace": env.ns, "name": "web" } }),
        )
        .await;
    let run = env.run_over(restart).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let at = run["result"]["restarted_at"].as_str().unwrap().to_string();
    let live = env
        .cluster
        .get("apps/v1", "Deployment", Some(&env.ns), "web")
        .await
        .unwrap();
    assert_eq!(
        live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        serde_json::json!(at)
    );
    let missing = env
        .order(
            serde_json::json!({ "type": "restart", "target": { "agent_ids": [env.agent.id] },
            "spec": { "kind": "StatefulSet", "namespace": env.ns, "name": "nothing" } }),
        )
        .await;
    let run = env.run_over(missing).await;
    assert_eq!(run["status"], "failed");
    assert!(
        run["message"].as_str().unwrap().contains("not found"),
        "{run}"
    );

    // job: applied once, watched until its Complete condition, pod logs tailed.
    let job = serde_json::json!({ "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": "migrate", "namespace": env.ns },
        "spec": { "template": { "spec": { "restartPolicy": "Never",
            "containers": [{ "name": "m", "image": "migrate:1" }] } } } });
    let order = env
        .order(
            serde_json::json!({ "type": "job", "target": { "agent_ids": [env.agent.id] },
            "spec": { "job": job, "log_lines": 2 } }),
        )
        .await;
    let created = env
        .wait_for("batch/v1", "Job", Some(&env.ns.clone()), "migrate", |_| {
            true
        })
        .await;
    assert_eq!(
        created["metadata"]["labels"]["brokkr.io/work-order"],
        serde_json::json!(order.to_string())
    );
    assert!(
        created["metadata"]["labels"]["brokkr.io/stack-id"].is_null(),
        "not a stack's object: never pruned"
    );
    let labels = serde_json::json!({ "job-name": "migrate" });
    env.create_in_double(
        "v1",
        "Pod",
        pod(&env.ns, "migrate-x1", labels, "one\ntwo\nthree\n"),
    )
    .await;
    let complete = serde_json::json!({ "succeeded": 1,
        "conditions": [{ "type": "Complete", "status": "True" }] });
    assert!(env.cluster.fake().unwrap().set_status(
        "batch",
        "jobs",
        Some(&env.ns),
        "migrate",
        complete
    ));
    let run = env.run_over(order).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["result"]["succeeded"], true);
    assert_eq!(
        run["result"]["pods"][0]["containers"][0]["log"], "two\nthree\n",
        "the last log_lines lines"
    );

    // diagnostics: objects, pods with their state and logs, events about them.
    env.create_in_double(
        "v1",
        "Pod",
        pod(
            &env.ns,
            "web-abc",
            serde_json::json!({ "app": "web" }),
            "starting\npanic: no config\n",
        ),
    )
    .await;
    let double = env.cluster.fake().unwrap();
    assert!(double.set_status("", "pods", Some(&env.ns), "web-abc", crashing()));
    let event = serde_json::json!({ "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": "web-abc.1", "namespace": env.ns },
        "involvedObject": { "kind": "Pod", "name": "web-abc", "namespace": env.ns },
        "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning",
        "count": 7, "lastTimestamp": "2026-12-07T10:00:00Z" });
    env.create_in_double("v1", "Event", event).await;
    let (status, created) = env
        .broker
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/deployment-objects/{object}/diagnostics"),
            &env.generator,
            Some(serde_json::json!({ "agent_id": env.agent.id })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let run = env
        .run_over(created["id"].as_str().unwrap().parse().unwrap())
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let result = &run["result"];
    assert_eq!(result["objects"][0]["name"], "web");
    assert_eq!(result["objects"][0]["found"], true);
    assert_eq!(result["pods"][0]["name"], "web-abc");
    assert_eq!(
        result["pods"][0]["containers"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    assert!(
        result["pods"][0]["containers"][0]["log"]
            .as_str()
            .unwrap()
            .contains("panic: no config")
    );
    assert_eq!(result["events"][0]["reason"], "BackOff");
});
