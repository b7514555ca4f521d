//! CustomResourceDefinitions in the store: established after a delay (their kinds then become
//! servable), unregistered with their objects when deleted, and their schemas for OpenAPI.

use std::time::Instant;

use serde_json::{Value, json};

use super::Store;
use crate::kinds::Kind;

impl Store {
    /// Establishes the CRDs whose delay has passed: their kinds become servable.
    pub fn promote_due_crds(&mut self, now: Instant) {
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.pending_crds.drain(..).partition(|(_, at)| *at <= now);
        self.pending_crds = waiting;
        for (name, _) in due {
            let Some(crd_kind) = self
                .kind("apiextensions.k8s.io", "v1", "customresourcedefinitions")
                .cloned()
            else {
                continue;
            };
            let Ok(crd) = self.get(&crd_kind, None, &name) else {
                continue;
            };
            self.kinds.extend(kinds_of_crd(&crd));
            let status = json!({
                "conditions": [
                    { "type": "NamesAccepted", "status": "True", "reason": "NoConflicts" },
                    { "type": "Established", "status": "True", "reason": "InitialNamesAccepted" },
                ],
                "acceptedNames": crd["spec"]["names"].clone(),
            });
            let _ = self.write_status(&crd_kind, None, &name, status, false);
        }
    }

    /// When the next waiting CRD becomes Established.
    pub fn next_crd_due(&self) -> Option<Instant> {
        self.pending_crds.iter().map(|(_, at)| *at).min()
    }

    pub(super) fn unregister_crd(&mut self, crd: &Value) {
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.kinds
            .retain(|k| !(k.group == group && k.plural == plural));
        self.objects
            .retain(|k, _| !(k.group == group && k.plural == plural));
        self.pending_crds
            .retain(|(name, _)| crd["metadata"]["name"].as_str() != Some(name));
    }

    /// The schema of every kind a CRD serves (`openAPIV3Schema` of its version).
    pub fn crd_schemas(&self) -> Vec<(Kind, Value)> {
        let Some(crd_kind) = self
            .kind("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .cloned()
        else {
            return Vec::new();
        };
        let mut schemas = Vec::new();
        for crd in self.select_all(&crd_kind) {
            let versions = crd["spec"]["versions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for kind in kinds_of_crd(&crd) {
                let schema = versions
                    .iter()
                    .find(|v| v["name"].as_str() == Some(kind.version.as_str()))
                    .map(|v| v["schema"]["openAPIV3Schema"].clone())
                    .filter(Value::is_object);
                if let Some(schema) = schema {
                    schemas.push((kind, schema));
                }
            }
        }
        schemas
    }
}

/// The kinds a CRD serves, one per served version.
fn kinds_of_crd(crd: &Value) -> Vec<Kind> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let kind_name = text(&names["kind"]);
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| Kind {
            group: text(&spec["group"]),
            version: text(&v["name"]),
            kind: kind_name.clone(),
            plural: text(&names["plural"]),
            singular: names["singular"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| kind_name.to_ascii_lowercase()),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: names["shortNames"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            has_status: v["subresources"].get("status").is_some(),
        })
        .collect()
}
