//! `helm install` of the agent chart into the Kubernetes API double, then the agent started with
//! the environment of the Deployment Helm created (its secret references resolved from the
//! double): it enrolls, keeps its identity in the Secret the chart's Role allows, and applies.

use std::process::Command;

use base64::Engine as _;
use brokkr_e2e::agent::AgentProcess;
use brokkr_e2e::broker::TestBroker;
use brokkr_e2e::cluster::TestCluster;
use brokkr_e2e::{PATIENCE, eventually};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{helm, root};

/// `helm install` with its own home directories; panics with Helm's output on failure.
fn helm_install(kubeconfig: &std::path::Path, sets: &[String]) {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(helm());
    for (var, dir) in [
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ] {
        command.env(var, home.path().join(dir));
    }
    command
        .args(["install", "brokkr-agent"])
        .arg(root().join("charts/brokkr-agent"))
        .args([
            "--namespace",
            "brokkr",
            "--create-namespace",
            "--kubeconfig",
        ])
        .arg(kubeconfig);
    for set in sets {
        command.args(["--set", set]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "helm install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of a Secret's key, as the kubelet would hand it to the container.
async fn secret_value(cluster: &TestCluster, name: &str, key: &str) -> String {
    let secret = cluster
        .get("v1", "Secret", Some("brokkr"), name)
        .await
        .unwrap_or_else(|| panic!("Secret {name} exists"));
    let encoded = secret["data"][key].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// The agent container's environment, secret references resolved.
async fn pod_env(cluster: &TestCluster, deployment: &Value) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let entries = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for entry in entries {
        let name = entry["name"].as_str().unwrap().to_string();
        let value = match entry["value"].as_str() {
            Some(value) => value.to_string(),
            None => {
                let reference = &entry["valueFrom"]["secretKeyRef"];
                let secret = reference["name"].as_str().unwrap();
                let key = reference["key"].as_str().unwrap();
                secret_value(cluster, secret, key).await
            }
        };
        env.push((name, value));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_chart_installs_and_its_agent_enrolls_and_applies() {
    let cluster = TestCluster::double().await;
    let broker = TestBroker::start().await;
    let body = json!({ "labels": ["helm"], "uses": 1 });
    let (status, made) = broker
        .call(
            Method::POST,
            "/api/v1/enrollment-tokens",
            &broker.admin,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().unwrap().to_string();

    let sets = vec![
        format!("broker.url={}", broker.url),
        "broker.allowInsecureHttp=true".to_string(),
        format!("enrollment.token={token}"),
        "agent.name=helm-1".to_string(),
        "agent.clusterName=double".to_string(),
    ];
    let kubeconfig = cluster.kubeconfig.clone();
    tokio::task::spawn_blocking(move || helm_install(&kubeconfig, &sets))
        .await
        .unwrap();
    for (kind, name) in [
        ("Secret", "sh.helm.release.v1.brokkr-agent.v1"),
        ("ServiceAccount", "brokkr-agent"),
        ("PersistentVolumeClaim", "brokkr-agent-state"),
    ] {
        let found = cluster.get("v1", kind, Some("brokkr"), name).await;
        assert!(found.is_some(), "{kind} {name} installed");
    }
    let role = cluster
        .get(
            "rbac.authorization.k8s.io/v1",
            "Role",
            Some("brokkr"),
            "brokkr-agent-identity",
        )
        .await
        .expect("the identity Role is installed");
    let deployment = cluster
        .get("apps/v1", "Deployment", Some("brokkr"), "brokkr-agent")
        .await
        .expect("the Deployment is installed");

    let env = pod_env(&cluster, &deployment).await;
    let mut agent = AgentProcess::from_pod_env(env, &cluster.kubeconfig);
    let identity = eventually(PATIENCE, "the identity Secret", || async {
        cluster
            .get("v1", "Secret", Some("brokkr"), "brokkr-agent-identity")
            .await
    })
    .await;
    assert_eq!(
        role["rules"][0]["resourceNames"][0],
        identity["metadata"]["name"],
        "the Role allows exactly the Secret the agent keeps its identity in; agent log:\n{}",
        agent.logs()
    );

    let generator = broker.generator("ci").await;
    let stack = broker.plain_stack(&generator, "helm-installed").await;
    let (status, _) = broker
        .call(
            Method::POST,
            &format!("/api/v1/stacks/{stack}/labels"),
            &generator,
            Some(json!({ "label": "helm" })),
        )
        .await;
    assert!((200..300).contains(&status), "label: {status}");
    let map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-helm-agent\n  namespace: brokkr\ndata:\n  k: v\n";
    broker.publish(&generator, stack, map).await;
    let what = format!("the ConfigMap applied; agent log:\n{}", agent.logs());
    eventually(PATIENCE, &what, || async {
        cluster
            .get("v1", "ConfigMap", Some("brokkr"), "from-helm-agent")
            .await
    })
    .await;
    agent.stop();
}
