//! Strategic merge patch, as `kubectl apply` (client side), `kubectl patch` and `kubectl edit`
//! send it for built-in kinds: lists with a merge key merge element by element, lists of scalars
//! with the merge strategy are unions, and the directives `$patch` (replace, delete, merge),
//! `$setElementOrder/…`, `$deleteFromPrimitiveList/…` and `$retainKeys` do what they say.

use serde_json::{Map, Value};

use crate::patch_strategy::Cursor;

const ORDER: &str = "$setElementOrder/";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";

/// Applies `patch` to `target`, an object described by `cursor`. `false`: the patch deletes it.
pub fn merge(target: &mut Value, patch: &Value, cursor: Cursor<'_>) -> bool {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return true;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("delete") => return false,
        Some("replace") => {
            *target = without_directives(patch);
            return true;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return true;
    };
    for (field, value) in patch_map {
        if field.starts_with('$') {
            continue;
        }
        merge_field(map, field, value, cursor);
    }
    for (field, value) in patch_map {
        if let Some(list) = field.strip_prefix(ORDER) {
            order(map, list, value, cursor);
        } else if let Some(list) = field.strip_prefix(DELETE_FROM)
            && let (Some(Value::Array(items)), Value::Array(gone)) = (map.get_mut(list), value)
        {
            items.retain(|item| !gone.contains(item));
        }
    }
    if let Some(Value::Array(keep)) = patch_map.get("$retainKeys") {
        map.retain(|key, _| keep.iter().any(|k| k.as_str() == Some(key)));
    }
    true
}

fn merge_field(map: &mut Map<String, Value>, field: &str, value: &Value, cursor: Cursor<'_>) {
    match value {
        Value::Null => {
            map.remove(field);
        }
        Value::Object(_) => {
            let entry = map.entry(field.to_string()).or_insert(Value::Null);
            if !merge(entry, value, cursor.field(field)) {
                map.remove(field);
            }
        }
        Value::Array(items) => {
            let merged = match cursor.list_strategy(field) {
                Some((Some(key), strategy)) if strategy.contains("merge") => {
                    let current = map.remove(field).unwrap_or(Value::Null);
                    merge_keyed(current, items, key, cursor.field(field).items())
                }
                Some((None, strategy)) if strategy.contains("merge") => {
                    let mut current = match map.remove(field) {
                        Some(Value::Array(current)) => current,
                        _ => Vec::new(),
                    };
                    for item in items {
                        if !current.contains(item) {
                            current.push(item.clone());
                        }
                    }
                    Value::Array(current)
                }
                _ => without_directives(value),
            };
            map.insert(field.to_string(), merged);
        }
        scalar => {
            map.insert(field.to_string(), scalar.clone());
        }
    }
}

/// Merges a list whose elements are identified by `key`.
fn merge_keyed(current: Value, patch: &[Value], key: &str, items: Cursor<'_>) -> Value {
    let replace = patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"));
    let mut current = match current {
        Value::Array(current) if !replace => current,
        _ => Vec::new(),
    };
    for element in patch {
        if element.get("$patch").and_then(Value::as_str) == Some("replace") {
            continue;
        }
        let id = element.get(key);
        let found = current
            .iter()
            .position(|c| id.is_some() && c.get(key) == id);
        match found {
            Some(index) => {
                if !merge(&mut current[index], element, items) {
                    current.remove(index);
                }
            }
            None if element.get("$patch").and_then(Value::as_str) == Some("delete") => {}
            None => current.push(without_directives(element)),
        }
    }
    Value::Array(current)
}

/// `$setElementOrder/list`: the list's elements in the order given, others after them.
fn order(map: &mut Map<String, Value>, list: &str, order: &Value, cursor: Cursor<'_>) {
    let (Some(Value::Array(items)), Value::Array(order)) = (map.get_mut(list), order) else {
        return;
    };
    let key = cursor.list_strategy(list).and_then(|(key, _)| key);
    let rank = |item: &Value| {
        order
            .iter()
            .position(|o| match key {
                Some(key) => o.get(key).is_some() && o.get(key) == item.get(key),
                None => o == item,
            })
            .unwrap_or(usize::MAX)
    };
    items.sort_by_key(rank);
}

/// A copy of `value` without any `$` directive.
fn without_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| {
                    !(i.is_object()
                        && i.get("$patch").is_some()
                        && i.as_object().is_some_and(|m| m.len() == 1))
                })
                .map(without_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn deployment_cursor() -> Cursor<'static> {
        let definitions = crate::openapi::builtin();
        Cursor::new(
            definitions,
            definitions.get("io.k8s.api.apps.v1.Deployment"),
        )
    }

    #[test]
    fn containers_merge_by_name_and_keep_what_the_patch_does_not_name() {
        let mut live = json!({ "spec": { "template": { "spec": { "containers": [
            { "name": "app", "image": "a:1", "ports": [{ "containerPort": 80 }], "env": [{ "name": "A", "value": "1" }] },
            { "name": "sidecar", "image": "s:1" }
        ] } } } });
        let patch = json!({ "spec": { "template": { "spec": {
            "$setElementOrder/containers": [{ "name": "sidecar" }, { "name": "app" }],
            "containers": [
                { "name": "app", "image": "a:2", "env": [{ "name": "B", "value": "2" }] },
                { "name": "gone", "$patch": "delete" }
            ]
        } } } });
        assert!(merge(&mut live, &patch, deployment_cursor()));
        let containers = &live["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["name"], "sidecar", "reordered");
        let app = &containers[1];
        assert_eq!(app["image"], "a:2");
        assert_eq!(app["ports"][0]["containerPort"], 80, "ports kept");
        assert_eq!(
            app["env"].as_array().unwrap().len(),
            2,
            "env merged by name"
        );
    }

    #[test]
    fn directives_delete_replace_and_prune() {
        let mut live = json!({ "metadata": { "finalizers": ["a"], "labels": { "x": "1", "y": "2" } },
            "spec": { "template": { "spec": { "containers": [{ "name": "app", "image": "a:1" }] } } } });
        let patch = json!({ "metadata": {
                "finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"],
                "labels": { "$patch": "replace", "z": "3" } },
            "spec": { "template": { "spec": { "containers": [{ "name": "app", "$patch": "delete" }] } } } });
        assert!(merge(&mut live, &patch, deployment_cursor()));
        assert_eq!(live["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(live["metadata"]["labels"], json!({ "z": "3" }));
        assert_eq!(live["spec"]["template"]["spec"]["containers"], json!([]));
    }
}
