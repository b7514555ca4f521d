//! Required labels: every object must carry each configured label key.
//! Configuration: `{"keys": ["team", "cost-center"]}`.

wit_bindgen::generate!({ path: "../../wit/plugin-0.1.0", world: "validator" });

use brokkr::plugin::types::ObjectRef;

struct RequiredLabels;

fn keys(config: &str) -> Result<Vec<String>, String> {
    podspec::required_list(config, "keys", "label")
}

impl Guest for RequiredLabels {
    fn check_config(config: String) -> Result<(), String> {
        keys(&config).map(|_| ())
    }

    fn validate(deployment: Deployment, config: String) -> Result<Vec<Violation>, String> {
        let keys = keys(&config)?;
        let mut violations = Vec::new();
        for object in &deployment.objects {
            let parsed = podspec::parse(&object.json)?;
            for key in &keys {
                if !parsed.metadata.labels.contains_key(key) {
                    violations.push(Violation {
                        object: Some(ObjectRef {
                            api_version: object.api_version.clone(),
                            kind: object.kind.clone(),
                            namespace: object.namespace.clone(),
                            name: object.name.clone(),
                        }),
                        message: format!("missing required label `{key}`"),
                        path: Some(format!("metadata.labels.{key}")),
                    });
                }
            }
        }
        Ok(violations)
    }
}

export!(RequiredLabels);
