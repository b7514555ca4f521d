//! Server-side apply, simplified but honest: every applier's last configuration is kept, the
//! live object is the merge of the non-apply base and all applier configurations, a field an
//! applier stops sending disappears unless someone else owns it, and conflicting appliers are
//! refused unless they force. Lists are atomic (owned as a whole).

use serde_json::{Map, Value};

/// A path of object keys to a leaf (a scalar, a list, or an empty object).
pub type FieldPath = Vec<String>;

/// Deep-merges `overlay` into `base`: objects merge key by key, everything else is replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (key, value) in o {
                if value.is_null() {
                    b.remove(key);
                    continue;
                }
                match b.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        b.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// Every leaf path of an object (lists and scalars are leaves).
pub fn leaf_paths(value: &Value) -> Vec<FieldPath> {
    fn walk(value: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    prefix.push(key.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => out.push(prefix.clone()),
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

pub fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// Removes a leaf and any objects it leaves empty.
pub fn remove_path(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if let Some(Value::Object(map)) = parents.iter().try_fold(&mut *value, |v, k| v.get_mut(k)) {
        map.remove(last);
    }
    if !parents.is_empty()
        && get_path(value, parents).is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
    {
        remove_path(value, parents);
    }
}

/// Fields an applier's new configuration sets to a value another manager owns differently.
pub fn conflicts(config: &Value, others: &[(String, Value)]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for path in leaf_paths(config) {
        for (manager, owned) in others {
            if let Some(theirs) = get_path(owned, &path)
                && Some(theirs) != get_path(config, &path)
            {
                found.push((manager.clone(), format!(".{}", path.join("."))));
            }
        }
    }
    found
}

/// The `fieldsV1` rendering of the fields a configuration sets.
pub fn fields_v1(config: &Value) -> Value {
    let mut root = Value::Object(Map::new());
    for path in leaf_paths(config) {
        let mut node = &mut root;
        for key in path {
            let Value::Object(map) = node else { break };
            node = map
                .entry(format!("f:{key}"))
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_replaces_lists_and_removes_nulls() {
        let mut base = json!({ "a": { "b": 1, "c": [1, 2] }, "d": 1 });
        merge(&mut base, &json!({ "a": { "c": [3] }, "d": null }));
        assert_eq!(base, json!({ "a": { "b": 1, "c": [3] } }));
    }

    #[test]
    fn conflicts_name_the_other_manager() {
        let others = vec![("kubectl".to_string(), json!({ "data": { "k": "1" } }))];
        assert_eq!(
            conflicts(&json!({ "data": { "k": "2" } }), &others),
            vec![("kubectl".into(), ".data.k".into())]
        );
        assert!(conflicts(&json!({ "data": { "k": "1" } }), &others).is_empty());
    }

    #[test]
    fn removing_a_leaf_prunes_empty_parents() {
        let mut v = json!({ "data": { "k": "1" }, "x": 1 });
        remove_path(&mut v, &["data".into(), "k".into()]);
        assert_eq!(v, json!({ "x": 1 }));
    }

    #[test]
    fn fields_v1_shape() {
        assert_eq!(
            fields_v1(&json!({ "data": { "k": "v" } })),
            json!({ "f:data": { "f:k": {} } })
        );
    }
}
