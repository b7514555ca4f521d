//! How the lists of built-in kinds merge under a strategic merge patch: the
//! `x-kubernetes-patch-merge-key` and `x-kubernetes-patch-strategy` a real API server's schema
//! carries (k8s-openapi's schemas leave them out). One table feeds both the published OpenAPI
//! documents (so kubectl computes its patches with them) and the double's own merging.

use serde_json::{Map, Value, json};

/// (definition, field, merge key or "" for a list of scalars, strategy).
const LISTS: &[(&str, &str, &str, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "containers", "name", "merge"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "name",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "name",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "name",
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "name",
        "merge",
    ),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", "ip", "merge"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "topologyKey",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "containerPort",
        "merge",
    ),
    ("io.k8s.api.core.v1.Container", "env", "name", "merge"),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "mountPath",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "devicePath",
        "merge",
    ),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", "port", "merge"),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "",
        "merge",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "uid",
        "merge",
    ),
];

/// Adds the patch extensions of [`LISTS`] to the definitions.
pub fn annotate(definitions: &mut Map<String, Value>) {
    for (definition, field, key, strategy) in LISTS {
        let Some(property) = definitions
            .get_mut(*definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        if !key.is_empty() {
            property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
    }
}

/// A position in the schemas while walking an object: resolves `$ref`s.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    definitions: &'a Map<String, Value>,
    schema: Option<&'a Value>,
}

impl<'a> Cursor<'a> {
    pub fn new(definitions: &'a Map<String, Value>, schema: Option<&'a Value>) -> Self {
        let mut cursor = Self {
            definitions,
            schema,
        };
        cursor.schema = cursor.resolve(schema);
        cursor
    }

    fn resolve(&self, mut schema: Option<&'a Value>) -> Option<&'a Value> {
        for _ in 0..16 {
            let Some(reference) = schema?.get("$ref").and_then(Value::as_str) else {
                return schema;
            };
            let name = reference.rsplit('/').next()?;
            schema = self.definitions.get(name);
        }
        None
    }

    /// The schema of one of this object's fields.
    pub fn field(&self, name: &str) -> Self {
        let schema = self.schema.and_then(|s| {
            s.get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        });
        Self::new(self.definitions, schema)
    }

    /// The schema of this list's items.
    pub fn items(&self) -> Self {
        Self::new(self.definitions, self.schema.and_then(|s| s.get("items")))
    }

    /// How a field of this object that is a list merges: (merge key, strategy).
    pub fn list_strategy(&self, field: &str) -> Option<(Option<&'a str>, &'a str)> {
        let property = self.schema?.get("properties")?.get(field)?;
        let strategy = property
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)?;
        let key = property
            .get("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str);
        Some((key, strategy))
    }
}
