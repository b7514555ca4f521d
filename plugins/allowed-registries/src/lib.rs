//! Images only from allowed registries. Configuration:
//! `{"registries": ["ghcr.io/acme/", "registry.example.com/"]}`; an image without a registry
//! (`nginx`) is `docker.io/library/nginx`.

wit_bindgen::generate!({ path: "../../wit/plugin-0.1.0", world: "validator" });

use brokkr::plugin::types::ObjectRef;

struct AllowedRegistries;

fn registries(config: &str) -> Result<Vec<String>, String> {
    podspec::required_list(config, "registries", "registry prefix")
}

/// The image reference with its registry spelt out.
fn qualified(image: &str) -> String {
    let first = image.split('/').next().unwrap_or_default();
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_registry, image.contains('/')) {
        (true, _) => image.to_string(),
        (false, true) => format!("docker.io/{image}"),
        (false, false) => format!("docker.io/library/{image}"),
    }
}

impl Guest for AllowedRegistries {
    fn check_config(config: String) -> Result<(), String> {
        registries(&config).map(|_| ())
    }

    fn validate(deployment: Deployment, config: String) -> Result<Vec<Violation>, String> {
        let allowed = registries(&config)?;
        let mut violations = Vec::new();
        for object in &deployment.objects {
            let parsed = podspec::parse(&object.json)?;
            let Some((spec, spec_path)) = podspec::pod_spec(&object.kind, &parsed) else {
                continue;
            };
            for (container, path) in podspec::containers(spec, spec_path) {
                let image = container.image.as_str();
                let full = qualified(image);
                if !allowed
                    .iter()
                    .any(|prefix| full.starts_with(prefix.as_str()))
                {
                    violations.push(Violation {
                        object: Some(ObjectRef {
                            api_version: object.api_version.clone(),
                            kind: object.kind.clone(),
                            namespace: object.namespace.clone(),
                            name: object.name.clone(),
                        }),
                        message: format!(
                            "image `{image}` is not from an allowed registry ({})",
                            allowed.join(", ")
                        ),
                        path: Some(format!("{path}.image")),
                    });
                }
            }
        }
        Ok(violations)
    }
}

export!(AllowedRegistries);
