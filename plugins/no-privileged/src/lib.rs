//! No privileged containers and no hostPath volumes (nor host namespaces) in any pod spec.
//! Configuration: none (`{}`).

wit_bindgen::generate!({ path: "../../wit/plugin-0.1.0", world: "validator" });

use brokkr::plugin::types::{Object, ObjectRef};
use serde_json::Value;

struct NoPrivileged;

fn violation(object: &Object, message: String, path: String) -> Violation {
    Violation {
        object: Some(ObjectRef {
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
        }),
        message,
        path: Some(path),
    }
}

fn check(object: &Object, parsed: &Value, out: &mut Vec<Violation>) {
    let Some((spec, spec_path)) = podspec::pod_spec(&object.kind, parsed) else { return };
    for (container, path) in podspec::containers(spec, spec_path) {
        if container.pointer("/securityContext/privileged") == Some(&Value::Bool(true)) {
            let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
            out.push(violation(object, format!("container `{name}` is privileged"), format!("{path}.securityContext.privileged")));
        }
    }
    if let Some(volumes) = spec.get("volumes").and_then(Value::as_array) {
        for (i, volume) in volumes.iter().enumerate() {
            if volume.get("hostPath").is_some() {
                let name = volume.get("name").and_then(Value::as_str).unwrap_or("?");
                out.push(violation(object, format!("volume `{name}` mounts a hostPath"), format!("{spec_path}.volumes[{i}].hostPath")));
            }
        }
    }
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec.get(field) == Some(&Value::Bool(true)) {
            out.push(violation(object, format!("{field} is enabled"), format!("{spec_path}.{field}")));
        }
    }
}

impl Guest for NoPrivileged {
    fn check_config(config: String) -> Result<(), String> {
        podspec::config(&config).map(|_| ())
    }

    fn validate(deployment: Deployment, _config: String) -> Result<Vec<Violation>, String> {
        let mut violations = Vec::new();
        for object in &deployment.objects {
            let parsed: Value = serde_json::from_str(&object.json).map_err(|e| e.to_string())?;
            check(object, &parsed, &mut violations);
        }
        Ok(violations)
    }
}

export!(NoPrivileged);
