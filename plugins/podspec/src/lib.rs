//! Helpers for Brokkr guest plugins: where the pod spec of a workload object lives, and the
//! containers in it.

use serde_json::Value;

/// The pod spec of an object and its JSON path, for every kind that has one.
pub fn pod_spec<'a>(kind: &str, object: &'a Value) -> Option<(&'a Value, &'static str)> {
    let (spec, path) = match kind {
        "Pod" => (object.get("spec"), "spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            (object.pointer("/spec/template/spec"), "spec.template.spec")
        }
        "CronJob" => (object.pointer("/spec/jobTemplate/spec/template/spec"), "spec.jobTemplate.spec.template.spec"),
        _ => (None, ""),
    };
    spec.map(|s| (s, path))
}

/// Every container (init, regular and ephemeral) with its path, such as `…containers[0]`.
pub fn containers<'a>(spec: &'a Value, spec_path: &str) -> Vec<(&'a Value, String)> {
    let mut out = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(list) = spec.get(field).and_then(Value::as_array) {
            for (i, container) in list.iter().enumerate() {
                out.push((container, format!("{spec_path}.{field}[{i}]")));
            }
        }
    }
    out
}

/// Parses a plugin configuration, naming what is wrong.
pub fn config(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|e| format!("the configuration is not valid JSON: {e}"))
}

/// A list of strings at `key` of a configuration.
pub fn string_list(config: &Value, key: &str) -> Result<Vec<String>, String> {
    let list = config.get(key).and_then(Value::as_array).ok_or_else(|| format!("`{key}` must be a list of strings"))?;
    list.iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("`{key}` must contain only strings")))
        .collect()
}
