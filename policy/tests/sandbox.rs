//! The plugin host against the shipped plugins and adversarial guests (`plugins/`): every way a
//! plugin can misbehave ends in a clear error within the limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use brokkr_policy::plugin::{
    Deployment, GeneratorInfo, Limits, Plugin, PluginError, PluginHost, StackInfo,
    objects_from_yaml,
};

/// A compiled guest from `plugins/target/wasm32-wasip2/release/` (built by scripts/build-plugins.sh).
fn wasm(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../plugins/target/wasm32-wasip2/release/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; build the guests with scripts/build-plugins.sh"))
}

const LIMITS: Limits = Limits {
    fuel: 200_000_000,
    timeout: Duration::from_millis(500),
    memory_bytes: 32 << 20,
    max_output_bytes: 256 << 10,
};

/// One host per test binary: each guest is compiled once.
fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| PluginHost::new(LIMITS).unwrap())
}

fn plugin(name: &str) -> Arc<Plugin> {
    host().load(&wasm(name)).unwrap()
}

fn deployment(yaml: &str) -> Deployment {
    Deployment {
        id: None,
        objects: objects_from_yaml(yaml).unwrap(),
        stack: StackInfo {
            id: "s".into(),
            name: "web".into(),
            labels: vec![],
            annotations: vec![],
        },
        generator: GeneratorInfo {
            id: "g".into(),
            name: "ci".into(),
        },
        cluster: None,
    }
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    team: a\nspec:\n  containers:\n  - name: app\n    image: nginx\n    securityContext:\n      privileged: true\n  volumes:\n  - name: root\n    hostPath:\n      path: /\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/acme/web:1\n";

#[test]
fn required_labels_names_the_object_and_path() {
    let p = plugin("required_labels");
    let violations = host()
        .validate(
            &p,
            &deployment(&format!("{POD}---\n{DEPLOYMENT}")),
            r#"{"keys":["team"]}"#,
        )
        .unwrap();
    assert_eq!(violations.len(), 1);
    let v = &violations[0];
    assert_eq!(v.object.as_ref().unwrap().name, "web");
    assert_eq!(v.path.as_deref(), Some("metadata.labels.team"));
    assert!(
        host()
            .check_config(&p, r#"{"keys":[]}"#)
            .unwrap_err()
            .to_string()
            .contains("at least one")
    );
    assert!(matches!(
        host().check_config(&p, "not json"),
        Err(PluginError::Config(_))
    ));
}

#[test]
fn no_privileged_flags_privilege_and_host_paths() {
    let p = plugin("no_privileged");
    let violations = host()
        .validate(&p, &deployment(&format!("{POD}---\n{DEPLOYMENT}")), "{}")
        .unwrap();
    let paths: Vec<&str> = violations
        .iter()
        .filter_map(|v| v.path.as_deref())
        .collect();
    assert_eq!(
        paths,
        [
            "spec.containers[0].securityContext.privileged",
            "spec.volumes[0].hostPath"
        ]
    );
}

#[test]
fn allowed_registries_qualifies_short_names() {
    let p = plugin("allowed_registries");
    let config = r#"{"registries":["ghcr.io/acme/"]}"#;
    let violations = host()
        .validate(&p, &deployment(&format!("{POD}---\n{DEPLOYMENT}")), config)
        .unwrap();
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0].message.contains("`nginx`"),
        "{}",
        violations[0].message
    );
    let docker = host()
        .validate(
            &p,
            &deployment(POD),
            r#"{"registries":["docker.io/library/"]}"#,
        )
        .unwrap();
    assert!(docker.is_empty());
}

/// Runs `name` and returns its error and how long the call took.
fn misbehave(name: &str) -> (PluginError, Duration) {
    let p = plugin(name);
    let started = Instant::now();
    let err = host()
        .validate(&p, &deployment(DEPLOYMENT), "{}")
        .unwrap_err();
    (err, started.elapsed())
}

#[test]
fn an_endless_loop_is_stopped() {
    let (err, took) = misbehave("spin");
    assert!(
        matches!(err, PluginError::Fuel(_) | PluginError::Timeout(_)),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(5),
        "stopped within the limits, took {took:?}"
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let (err, _) = misbehave("memory_bomb");
    assert_eq!(err, PluginError::Memory(LIMITS.memory_bytes), "{err}");
}

#[test]
fn a_trap_is_reported_and_the_next_call_is_clean() {
    let (err, _) = misbehave("trap");
    let PluginError::Trap(reason) = &err else {
        panic!("{err}");
    };
    // The whole reason reaches the author: the trap, and what the guest said as it panicked.
    assert!(reason.contains("wasm backtrace"), "{reason}");
    assert!(reason.contains("index out of bounds"), "{reason}");
    assert!(reason.len() < 9000, "bounded: {} bytes", reason.len());
    // Every call gets a fresh store: the trap left nothing behind.
    let p = plugin("required_labels");
    assert!(
        host()
            .validate(&p, &deployment(DEPLOYMENT), r#"{"keys":["x"]}"#)
            .is_ok()
    );
}

#[test]
fn huge_output_is_refused() {
    let (err, _) = misbehave("huge_output");
    assert!(
        matches!(err, PluginError::Output(size, limit) if size > limit),
        "{err}"
    );
}

#[test]
fn unknown_imports_are_refused_at_load() {
    let err = host().load(&wasm("unknown_import")).unwrap_err();
    assert!(matches!(err, PluginError::UnknownImport(_)), "{err}");
    assert!(err.to_string().contains("open-socket"), "{err}");
}

#[test]
fn other_components_and_garbage_are_refused_at_load() {
    let err = host().load(&wasm("wrong_world")).unwrap_err();
    assert!(matches!(err, PluginError::WrongInterface(_)), "{err}");
    let err = host().load(b"definitely not wasm").unwrap_err();
    assert!(matches!(err, PluginError::NotAComponent(_)), "{err}");
    let core_module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    assert!(matches!(
        host().load(&core_module),
        Err(PluginError::NotAComponent(_))
    ));
}

#[test]
fn plugins_are_compiled_once_per_digest() {
    let first = plugin("required_labels");
    let again = plugin("required_labels");
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(first.digest.len(), 64);
}

fn event(kind: &str, data: serde_json::Value) -> brokkr_policy::plugin::Event {
    let envelope = serde_json::json!({ "id": "e1", "type": kind, "timestamp": "2026-12-06T00:00:00Z", "data": data });
    brokkr_policy::plugin::Event {
        id: "e1".into(),
        event_type: kind.into(),
        timestamp: "2026-12-06T00:00:00Z".into(),
        data: data.to_string(),
        envelope: envelope.to_string(),
    }
}

#[test]
fn the_slack_notifier_shapes_failures_and_drops_the_rest() {
    let notifier = plugin("slack_notifier");
    assert_eq!(notifier.kind(), brokkr_policy::plugin::PluginKind::Notifier);
    host()
        .check_config(&notifier, r#"{"prefix": "!"}"#)
        .unwrap();
    let err = host()
        .check_config(&notifier, r#"{"colour": 1}"#)
        .unwrap_err();
    assert!(matches!(err, PluginError::Config(_)), "{err}");
    let data = serde_json::json!({
        "stack_name": "payments", "agent_name": "eu-1", "cluster_name": "eu",
        "deployment_object_id": "d1", "sequence_id": 4,
    });
    let sent = host()
        .notify(&notifier, &event("deployment.failed", data.clone()), "{}")
        .unwrap()
        .expect("a failure is sent");
    assert_eq!(sent.content_type, "application/json");
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("payments") && text.contains("eu-1") && text.contains("version 4"),
        "{text}"
    );
    let dropped = host()
        .notify(&notifier, &event("deployment.applied", data), "{}")
        .unwrap();
    assert!(dropped.is_none());
}

#[test]
fn validators_and_notifiers_are_not_interchangeable() {
    let notifier = plugin("slack_notifier");
    let err = host()
        .validate(&notifier, &deployment(DEPLOYMENT), "{}")
        .unwrap_err();
    assert!(matches!(err, PluginError::WrongKind { .. }), "{err}");
    let validator = plugin("required_labels");
    assert_eq!(
        validator.kind(),
        brokkr_policy::plugin::PluginKind::Validator
    );
    let err = host()
        .notify(
            &validator,
            &event("deployment.failed", serde_json::json!({})),
            "{}",
        )
        .unwrap_err();
    assert!(matches!(err, PluginError::WrongKind { .. }), "{err}");
}
