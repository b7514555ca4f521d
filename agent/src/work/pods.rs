//! Pods as work order results show them: a status summary and the end of their logs.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use serde_json::{Value, json};

/// Most pods one result describes.
pub const MAX_PODS: usize = 20;
/// Most bytes read from one pod's log.
const MAX_LOG_BYTES: i64 = 64 * 1024;

/// Pods of `namespace` matching `selector` (at most [`MAX_PODS`]), as JSON.
pub async fn list(
    kube: &kube::Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<Value>, String> {
    let api: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let params = ListParams::default()
        .labels(selector)
        .limit(MAX_PODS as u32);
    let pods = api
        .list(&params)
        .await
        .map_err(|e| format!("cannot list pods in {namespace}: {e}"))?;
    Ok(pods
        .items
        .into_iter()
        .take(MAX_PODS)
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect())
}

/// A pod's phase, conditions and containers (ready, restarts, state), each container with the
/// last `lines` lines of its log.
pub async fn describe(kube: &kube::Client, pod: &Value, lines: u32) -> Value {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let statuses = pod["status"]["containerStatuses"].as_array();
    let mut containers = Vec::new();
    let declared = pod["spec"]["containers"].as_array().into_iter().flatten();
    for container in declared {
        let container_name = container["name"].as_str().unwrap_or_default();
        let status = statuses
            .into_iter()
            .flatten()
            .find(|c| c["name"] == container_name)
            .cloned()
            .unwrap_or(Value::Null);
        let mut entry = json!({ "name": container_name, "ready": status["ready"],
            "restart_count": status["restartCount"], "state": status["state"],
            "last_state": status["lastState"] });
        if lines > 0 {
            entry["log"] = match log(kube, namespace, name, container_name, lines).await {
                Ok(text) => json!(text),
                Err(e) => json!(format!("(log unavailable: {e})")),
            };
        }
        containers.push(entry);
    }
    json!({
        "name": name, "namespace": namespace, "phase": pod["status"]["phase"],
        "conditions": pod["status"]["conditions"], "containers": containers,
    })
}

async fn log(
    kube: &kube::Client,
    namespace: &str,
    name: &str,
    container: &str,
    lines: u32,
) -> Result<String, kube::Error> {
    let api: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let params = LogParams {
        container: Some(container.to_string()),
        tail_lines: Some(i64::from(lines)),
        limit_bytes: Some(MAX_LOG_BYTES),
        ..LogParams::default()
    };
    api.logs(name, &params).await
}
