//! The reconciler against the Kubernetes API test double, in process: apply, update, prune,
//! CRDs, failures, retries, deletion markers, idempotence and health.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use brokkr_agent::backoff::Retries;
use brokkr_agent::cluster::Cluster;
use brokkr_agent::reconcile::Reconciler;
use brokkr_agent::state::Persisted;
use brokkr_types::resources::{DeploymentObject, EventStatus, EventType};
use brokkr_types::target_state::{TargetStack, TargetState};
use kube_double::{Fault, KubeDouble};
use serde_json::json;
use uuid::Uuid;

struct Rig {
    double: KubeDouble,
    reconciler: Reconciler,
    state: Persisted,
    agent: Uuid,
}

fn rig() -> Rig {
    let double = KubeDouble::new();
    double.set_crd_delay(Duration::from_millis(100));
    let agent = Uuid::new_v4();
    let retries = Retries::new(Duration::from_millis(1), Duration::from_millis(5));
    let reconciler = Reconciler::new(
        Cluster::new(double.client()),
        agent,
        retries,
        Duration::from_secs(5),
    );
    Rig {
        double,
        reconciler,
        state: Persisted::default(),
        agent,
    }
}

fn object(stack: Uuid, sequence: i64, yaml: &str, marker: bool) -> DeploymentObject {
    DeploymentObject {
        id: Uuid::new_v4(),
        stack_id: stack,
        sequence_id: sequence,
        yaml_content: yaml.to_string(),
        yaml_checksum: String::new(),
        is_deletion_marker: marker,
        created_at: chrono::Utc::now(),
        template: None,
    }
}

fn target(agent: Uuid, stacks: Vec<(Uuid, DeploymentObject)>) -> TargetState {
    TargetState {
        policies: Vec::new(),
        work_orders: Vec::new(),
        agent_id: agent,
        etag: Uuid::new_v4().to_string(),
        stacks: stacks
            .into_iter()
            .map(|(id, deployment_object)| TargetStack {
                stack_id: id,
                stack_name: "s".into(),
                generator_id: Uuid::nil(),
                deployment_object,
            })
            .collect(),
    }
}

fn config_maps(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  k: v\n")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

impl Rig {
    async fn pass(
        &mut self,
        stacks: Vec<(Uuid, DeploymentObject)>,
    ) -> brokkr_agent::reconcile::Outcome {
        self.state.target = Some(target(self.agent, stacks));
        self.reconciler
            .reconcile(&mut self.state, false, Instant::now())
            .await
    }

    fn config_map(&self, name: &str) -> Option<serde_json::Value> {
        self.double.object("", "configmaps", Some("default"), name)
    }

    fn events(&self, kind: EventType, status: EventStatus) -> usize {
        self.state
            .outbox
            .iter()
            .filter(|e| e.event_type == kind && e.status == status)
            .count()
    }
}

#[tokio::test]
async fn applies_updates_and_prunes_dropped_objects() {
    let mut rig = rig();
    let stack = Uuid::new_v4();
    let v1 = object(stack, 1, &config_maps(&["a", "b"]), false);
    let outcome = rig.pass(vec![(stack, v1.clone())]).await;
    assert_eq!((outcome.applied, outcome.pruned), (1, 0));
    let a = rig.config_map("a").expect("applied");
    assert_eq!(
        a["metadata"]["labels"]["brokkr.io/agent-id"],
        rig.agent.to_string()
    );
    assert_eq!(a["metadata"]["managedFields"][0]["manager"], "brokkr-agent");
    assert_eq!(rig.events(EventType::Apply, EventStatus::Success), 1);

    // Running again on the same state changes nothing.
    let rv = a["metadata"]["resourceVersion"].clone();
    assert_eq!(rig.pass(vec![(stack, v1)]).await, Default::default());
    assert_eq!(
        rig.config_map("a").unwrap()["metadata"]["resourceVersion"],
        rv
    );

    let v2 = object(
        stack,
        2,
        &config_maps(&["a"]).replace("k: v", "k: changed"),
        false,
    );
    let outcome = rig.pass(vec![(stack, v2)]).await;
    assert_eq!((outcome.applied, outcome.pruned), (1, 1));
    assert_eq!(rig.config_map("a").unwrap()["data"]["k"], "changed");
    assert!(
        rig.config_map("b").is_none(),
        "an object dropped from the new version is pruned"
    );
    assert_eq!(rig.events(EventType::Apply, EventStatus::Success), 2);
}

#[tokio::test]
async fn namespaces_and_crds_come_first() {
    let mut rig = rig();
    let stack = Uuid::new_v4();
    let yaml = r#"apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  namespace: team
spec:
  size: 2
---
apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
  versions:
  - name: v1
    served: true
    storage: true
"#;
    let outcome = rig.pass(vec![(stack, object(stack, 1, yaml, false))]).await;
    assert_eq!(outcome.failed, 0, "{:?}", rig.state.stacks);
    let widget = rig
        .double
        .object("example.com", "widgets", Some("team"), "w")
        .expect("custom resource applied");
    assert_eq!(widget["spec"]["size"], 2);
}

#[tokio::test]
async fn one_bad_stack_does_not_block_the_others() {
    let mut rig = rig();
    let (good, bad) = (Uuid::new_v4(), Uuid::new_v4());
    let bad_object = object(bad, 1, &config_maps(&["Bad_Name"]), false);
    let outcome = rig
        .pass(vec![
            (good, object(good, 1, &config_maps(&["fine"]), false)),
            (bad, bad_object),
        ])
        .await;
    assert_eq!((outcome.applied, outcome.failed), (1, 1));
    assert!(rig.config_map("fine").is_some());
    let failure = rig
        .state
        .outbox
        .iter()
        .find(|e| e.status == EventStatus::Failure)
        .expect("failure event");
    let message = failure.message.as_ref().unwrap().as_str();
    assert!(
        message.contains("is invalid: metadata.name"),
        "the API server's message: {message}"
    );
}

#[tokio::test]
async fn api_errors_are_retried_until_they_succeed() {
    let mut rig = rig();
    let stack = Uuid::new_v4();
    rig.double.inject(Fault::error(503, "/configmaps/retry", 3));
    let v1 = object(stack, 1, &config_maps(&["retry"]), false);
    let mut passes = 0;
    while rig.config_map("retry").is_none() {
        passes += 1;
        assert!(passes < 50, "never applied");
        let target = rig.state.target.clone();
        if target.is_none() {
            rig.pass(vec![(stack, v1.clone())]).await;
        } else {
            while !rig.reconciler.retry_due(Instant::now()) {
                tokio::task::yield_now().await;
            }
            rig.reconciler
                .reconcile(&mut rig.state, false, Instant::now())
                .await;
        }
    }
    assert!(
        passes >= 4,
        "three injected failures, then success ({passes} passes)"
    );
    assert_eq!(
        rig.events(EventType::Apply, EventStatus::Failure),
        1,
        "one failure event per deployment object"
    );
    assert_eq!(rig.events(EventType::Apply, EventStatus::Success), 1);
}

#[tokio::test]
async fn deletion_markers_and_untargeting_prune_with_one_event() {
    let mut rig = rig();
    let (kept, deleted, dropped) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let stacks = vec![
        (kept, object(kept, 1, &config_maps(&["kept"]), false)),
        (
            deleted,
            object(deleted, 1, &config_maps(&["deleted"]), false),
        ),
        (
            dropped,
            object(dropped, 1, &config_maps(&["dropped"]), false),
        ),
    ];
    rig.pass(stacks.clone()).await;
    let outcome = rig
        .pass(vec![
            stacks[0].clone(),
            (deleted, object(deleted, 2, "", true)),
        ])
        .await;
    assert_eq!(outcome.pruned, 2);
    assert!(rig.config_map("kept").is_some());
    assert!(rig.config_map("deleted").is_none() && rig.config_map("dropped").is_none());
    assert_eq!(rig.events(EventType::Prune, EventStatus::Success), 2);
    let again = rig
        .pass(vec![
            stacks[0].clone(),
            (deleted, object(deleted, 2, "", true)),
        ])
        .await;
    assert_eq!(again.pruned, 0);
    assert_eq!(
        rig.events(EventType::Prune, EventStatus::Success),
        2,
        "reported once"
    );
}

#[tokio::test]
async fn a_failing_listing_never_prunes() {
    let mut rig = rig();
    let stack = Uuid::new_v4();
    rig.pass(vec![(
        stack,
        object(stack, 1, &config_maps(&["precious"]), false),
    )])
    .await;
    rig.double.inject(Fault {
        method: Some(axum::http::Method::GET),
        path_contains: Some("/configmaps".into()),
        status: Some(500),
        message: "down".into(),
        ..Fault::default()
    });
    let outcome = rig.pass(vec![]).await;
    assert_eq!(outcome.pruned, 0);
    rig.double.clear_faults();
    assert!(rig.config_map("precious").is_some());
}

#[tokio::test]
async fn health_follows_the_rollout() {
    let mut rig = rig();
    let stack = Uuid::new_v4();
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: app\n        image: nginx\n";
    rig.pass(vec![(stack, object(stack, 1, yaml, false))]).await;
    rig.reconciler.assess_health(&mut rig.state).await;
    let progressing = rig
        .state
        .outbox
        .iter()
        .filter(|e| e.event_type == EventType::Health)
        .count();
    assert_eq!(progressing, 1);

    let status = json!({ "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2 });
    assert!(
        rig.double
            .set_status("apps", "deployments", Some("default"), "web", status)
    );
    rig.reconciler.assess_health(&mut rig.state).await;
    rig.reconciler.assess_health(&mut rig.state).await;
    let health: Vec<_> = rig
        .state
        .outbox
        .iter()
        .filter(|e| e.event_type == EventType::Health)
        .collect();
    assert_eq!(health.len(), 2, "one event per change of verdict");
    assert!(
        health[1]
            .message
            .as_ref()
            .unwrap()
            .as_str()
            .starts_with("healthy")
    );

    let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "web-1", "labels": { "app": "web" } },
                      "spec": { "containers": [{ "name": "app", "image": "nginx" }] } });
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(rig.double.client(), "default");
    pods.patch(
        "web-1",
        &kube::api::PatchParams::apply("kubelet"),
        &kube::api::Patch::Apply(pod),
    )
    .await
    .unwrap();
    let crash = json!({ "containerStatuses": [{ "name": "app", "ready": false, "restartCount": 5, "image": "nginx", "imageID": "",
                        "state": { "waiting": { "reason": "CrashLoopBackOff" } } }] });
    assert!(
        rig.double
            .set_status("", "pods", Some("default"), "web-1", crash)
    );
    rig.reconciler.assess_health(&mut rig.state).await;
    let last = rig
        .state
        .outbox
        .iter()
        .rfind(|e| e.event_type == EventType::Health)
        .unwrap();
    assert_eq!(last.status, EventStatus::Failure);
    assert!(
        last.message
            .as_ref()
            .unwrap()
            .as_str()
            .contains("CrashLoopBackOff")
    );
}

/// A guest plugin built by scripts/build-plugins.sh.
fn plugin_wasm(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../plugins/target/wasm32-wasip2/release/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; build the guests with scripts/build-plugins.sh"))
}

fn policy(
    digest: &str,
    stack: Uuid,
    mode: brokkr_types::plugins::PluginMode,
) -> brokkr_types::plugins::TargetPolicy {
    brokkr_types::plugins::TargetPolicy {
        binding_id: Uuid::new_v4(),
        plugin_id: Uuid::new_v4(),
        plugin: "required-labels".into(),
        digest: digest.into(),
        config: r#"{"keys":["team"]}"#.into(),
        mode,
        scope: brokkr_types::plugins::PluginScope::Stack,
        scope_id: Some(stack),
    }
}

#[tokio::test]
async fn enforcing_plugins_block_the_apply_and_say_why() {
    use brokkr_types::plugins::PluginMode;
    let mut rig = rig();
    let host =
        brokkr_policy::plugin::PluginHost::new(brokkr_policy::plugin::Limits::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("brokkr-modules-{}", Uuid::new_v4()));
    let enforcer = brokkr_agent::policy::Enforcer::new(host, dir);
    let digest = enforcer.insert(&plugin_wasm("required_labels")).unwrap();
    rig.reconciler.enforcer = Some(enforcer);
    let (guarded, warned) = (Uuid::new_v4(), Uuid::new_v4());
    let mut target = target(
        rig.agent,
        vec![
            (
                guarded,
                object(guarded, 1, &config_maps(&["guarded"]), false),
            ),
            (warned, object(warned, 1, &config_maps(&["warned"]), false)),
        ],
    );
    target.policies = vec![
        policy(&digest, guarded, PluginMode::Enforce),
        policy(&digest, warned, PluginMode::Warn),
    ];
    rig.state.target = Some(target.clone());
    let outcome = rig
        .reconciler
        .reconcile(&mut rig.state, false, Instant::now())
        .await;
    assert_eq!((outcome.applied, outcome.failed), (1, 1));
    assert!(
        rig.config_map("guarded").is_none(),
        "an enforcing plugin blocks the apply"
    );
    assert!(
        rig.config_map("warned").is_some(),
        "a warning plugin does not"
    );
    let validations: Vec<_> = rig
        .state
        .outbox
        .iter()
        .filter(|e| e.event_type == EventType::Validation)
        .collect();
    assert_eq!(validations.len(), 2);
    assert!(validations.iter().all(|e| {
        e.message
            .as_ref()
            .unwrap()
            .as_str()
            .contains("missing required label `team`")
    }));

    // A compliant version passes.
    let labelled =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guarded\n  labels:\n    team: core\n";
    target.stacks[0].deployment_object = object(guarded, 2, labelled, false);
    rig.state.target = Some(target);
    while !rig.reconciler.retry_due(Instant::now()) {
        tokio::task::yield_now().await;
    }
    rig.reconciler
        .reconcile(&mut rig.state, false, Instant::now())
        .await;
    assert!(rig.config_map("guarded").is_some());
}
