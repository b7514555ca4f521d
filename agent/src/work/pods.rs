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

/// A pod's phase, conditions and containers (ready, restarts, state), with the last `lines`
/// lines of its log.
pub async fn describe(kube: &kube::Client, pod: &Value, lines: u32) -> Value {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let containers: Vec<Value> = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({ "name": c["name"], "ready": c["ready"], "restart_count": c["restartCount"],
                    "state": c["state"], "last_state": c["lastState"] })
        })
        .collect();
    let mut summary = json!({
        "name": name, "namespace": namespace, "phase": pod["status"]["phase"],
        "conditions": pod["status"]["conditions"], "containers": containers,
    });
    if lines > 0 {
        summary["log"] = match log(kube, namespace, name, lines).await {
            Ok(text) => json!(text),
            Err(e) => json!(format!("(log unavailable: {e})")),
        };
    }
    summary
}

async fn log(
    kube: &kube::Client,
    namespace: &str,
    name: &str,
    lines: u32,
) -> Result<String, kube::Error> {
    let api: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let params = LogParams {
        tail_lines: Some(i64::from(lines)),
        limit_bytes: Some(MAX_LOG_BYTES),
        ..LogParams::default()
    };
    api.logs(name, &params).await
}
