//! Turns a deployment object's documents into the objects a plugin receives (each as JSON).

use super::Object;
use crate::yaml::{self, YamlLimits};

/// Why a manifest could not be handed to plugins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {index}: {reason}")]
pub struct InputError {
    pub index: usize,
    pub reason: String,
}

fn text(value: &serde_json::Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// Every non-empty document of `yaml` (read within the default limits) as an [`Object`].
pub fn objects_from_yaml(yaml: &str) -> Result<Vec<Object>, InputError> {
    let documents = yaml::documents(yaml, &YamlLimits::default()).map_err(|e| InputError {
        index: e.document(),
        reason: e.to_string(),
    })?;
    objects_from_documents(&documents)
}

/// Already-read documents as [`Object`]s.
pub fn objects_from_documents(documents: &[serde_json::Value]) -> Result<Vec<Object>, InputError> {
    let mut objects = Vec::with_capacity(documents.len());
    for (index, value) in documents.iter().enumerate() {
        let missing = |field: &str| InputError {
            index,
            reason: format!("missing {field}"),
        };
        objects.push(Object {
            api_version: text(value, "/apiVersion").ok_or_else(|| missing("apiVersion"))?,
            kind: text(value, "/kind").ok_or_else(|| missing("kind"))?,
            namespace: text(value, "/metadata/namespace"),
            name: text(value, "/metadata/name").ok_or_else(|| missing("metadata.name"))?,
            json: value.to_string(),
        });
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_become_json_objects() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: n\n---\n";
        let objects = objects_from_yaml(yaml).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].namespace.as_deref(), Some("n"));
        assert!(objects[0].json.contains("\"ConfigMap\""));
        assert!(objects_from_yaml("kind: X\nmetadata: {name: a}\n").is_err());
    }
}
