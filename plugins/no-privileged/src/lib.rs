//! No privileged containers and no hostPath volumes (nor host namespaces) in any pod spec.
//! Configuration: none (`{}`).

wit_bindgen::generate!({ path: "../../wit/plugin-0.1.0", world: "validator" });

use brokkr::plugin::types::{Object, ObjectRef};

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

fn check(object: &Object, parsed: &podspec::Object, out: &mut Vec<Violation>) {
    let Some((spec, spec_path)) = podspec::pod_spec(&object.kind, parsed) else {
        return;
    };
    for (container, path) in podspec::containers(spec, spec_path) {
        if container
            .security_context
            .as_ref()
            .and_then(|s| s.privileged)
            == Some(true)
        {
            let name = &container.name;
            out.push(violation(
                object,
                format!("container `{name}` is privileged"),
                format!("{path}.securityContext.privileged"),
            ));
        }
    }
    for (i, volume) in spec.volumes.iter().enumerate() {
        if volume.host_path.is_some() {
            let name = &volume.name;
            out.push(violation(
                object,
                format!("volume `{name}` mounts a hostPath"),
                format!("{spec_path}.volumes[{i}].hostPath"),
            ));
        }
    }
    for (field, enabled) in [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ] {
        if enabled {
            out.push(violation(
                object,
                format!("{field} is enabled"),
                format!("{spec_path}.{field}"),
            ));
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
            let parsed = podspec::parse(&object.json)?;
            check(object, &parsed, &mut violations);
        }
        Ok(violations)
    }
}

export!(NoPrivileged);
