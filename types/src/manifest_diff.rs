//! The differences between two versions of a set of Kubernetes objects: objects added, removed
//! and changed, and for each changed object the fields that differ (lists of named items are
//! matched by name). Values under a Secret's `data` and `stringData` are never carried.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Carried instead of a Secret's values.
pub const HIDDEN: &str = "(hidden)";

/// The changes between two sets of objects; empty when they hold the same objects.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<ObjectChange>,
}

/// One object present on both sides with different content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectChange {
    pub object: String,
    pub fields: Vec<FieldChange>,
}

/// One field: `old` absent when added, `new` absent when removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl Diff {
    /// Compares the objects by identity (kind, apiVersion, namespace, name); order is ignored.
    pub fn between<'a>(old: &'a [Value], new: &'a [Value]) -> Self {
        let index = |objects: &'a [Value]| -> BTreeMap<String, &'a Value> {
            objects
                .iter()
                .filter_map(|o| Some((identity(o)?, o)))
                .collect()
        };
        let (old, new) = (index(old), index(new));
        let mut diff = Self::default();
        for (id, object) in &new {
            match old.get(id) {
                None => diff.added.push(id.clone()),
                Some(before) if before != object => {
                    let mut fields = Vec::new();
                    compare(String::new(), Some(*before), Some(*object), &mut fields);
                    if object["kind"] == "Secret" {
                        fields.iter_mut().for_each(hide_secret_values);
                    }
                    diff.changed.push(ObjectChange {
                        object: id.clone(),
                        fields,
                    });
                }
                Some(_) => {}
            }
        }
        diff.removed = old
            .keys()
            .filter(|id| !new.contains_key(*id))
            .cloned()
            .collect();
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// How an object is told apart from the others: `kind apiVersion namespace/name`; `None` for a
/// document that is not a Kubernetes object.
pub fn identity(object: &Value) -> Option<String> {
    let field = |name: &str| object.get(name).and_then(Value::as_str);
    let (api_version, kind) = (field("apiVersion")?, field("kind")?);
    let metadata = object.get("metadata")?;
    let name = metadata.get("name").and_then(Value::as_str)?;
    Some(match metadata.get("namespace").and_then(Value::as_str) {
        Some(namespace) => format!("{kind} {api_version} {namespace}/{name}"),
        None => format!("{kind} {api_version} {name}"),
    })
}

fn hide_secret_values(field: &mut FieldChange) {
    if field.path.starts_with("data") || field.path.starts_with("stringData") {
        let hidden = || Value::String(HIDDEN.into());
        field.old = field.old.as_ref().map(|_| hidden());
        field.new = field.new.as_ref().map(|_| hidden());
    }
}

/// Records where `old` and `new` differ under `path`, descending into maps and lists.
fn compare(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                compare(join(&path, key), a.get(key), b.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => compare_lists(&path, a, b, out),
        (a, b) if a == b => {}
        (a, b) => out.push(FieldChange {
            path,
            old: a.cloned(),
            new: b.cloned(),
        }),
    }
}

/// Lists whose items all have distinct `name`s (containers, env, ports) are matched by name;
/// others by position.
fn compare_lists(path: &str, a: &[Value], b: &[Value], out: &mut Vec<FieldChange>) {
    match (by_name(a), by_name(b)) {
        (Some(a), Some(b)) => {
            let names: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
            for name in names {
                let item = format!("{path}[name={name}]");
                compare(item, a.get(name).copied(), b.get(name).copied(), out);
            }
        }
        _ => {
            for i in 0..a.len().max(b.len()) {
                compare(format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
    }
}

fn by_name(items: &[Value]) -> Option<BTreeMap<&str, &Value>> {
    let named: BTreeMap<&str, &Value> = items
        .iter()
        .map(|item| Some((item.get("name")?.as_str()?, item)))
        .collect::<Option<_>>()?;
    (named.len() == items.len()).then_some(named)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(image: &str, env: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": image, "env": env}]}}}})
    }

    #[test]
    fn fields_are_reported_by_path_with_lists_matched_by_name() {
        let old = deployment("web:1", json!([{"name": "A", "value": "1"}]));
        let new = deployment(
            "web:2",
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]),
        );
        let diff = Diff::between(&[old], &[new]);
        assert!(diff.added.is_empty() && diff.removed.is_empty());
        let fields: Vec<&str> = diff.changed[0]
            .fields
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.containers[name=web].env[name=B]",
                "spec.template.spec.containers[name=web].image"
            ]
        );
        assert_eq!(diff.changed[0].object, "Deployment apps/v1 prod/web");
    }

    #[test]
    fn objects_are_added_and_removed_and_order_is_ignored() {
        let map =
            |n: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}});
        let diff = Diff::between(&[map("a"), map("b")], &[map("c"), map("a")]);
        assert_eq!(diff.added, ["ConfigMap v1 c"]);
        assert_eq!(diff.removed, ["ConfigMap v1 b"]);
        assert!(Diff::between(&[map("a"), map("b")], &[map("b"), map("a")]).is_empty());
    }

    #[test]
    fn secret_values_are_never_shown() {
        let secret = |v: &str| {
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s"}, "stringData": {"password": v}})
        };
        let diff = Diff::between(&[secret("hunter2")], &[secret("swordfish")]);
        let text = serde_json::to_string(&diff).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("swordfish"),
            "{text}"
        );
        assert!(text.contains("stringData.password"), "{text}");
    }
}
