//! The double's state: kinds, objects with their field managers, the resource version counter
//! and CRDs waiting to become Established.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kinds::{self, Kind};
use crate::selector::Selector;
use crate::ssa;
use crate::status::{ApiErr, ApiResult};
use crate::validate;

/// Where an object lives; the version is not part of it (one stored version per kind).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

/// One object and who set what in it.
#[derive(Debug, Clone)]
struct Stored {
    /// What create, update and merge-patch calls wrote (and `status`).
    base: Value,
    /// The last configuration of each applier, in order of first apply.
    appliers: Vec<(String, Value)>,
    updaters: Vec<String>,
    live: Value,
}

/// How a write should be merged.
#[derive(Debug, Clone)]
pub enum Write {
    Create(Value),
    Replace(Value),
    MergePatch(Value),
    Apply { config: Value, force: bool },
}

#[derive(Debug, Clone)]
pub struct Store {
    kinds: Vec<Kind>,
    objects: BTreeMap<Key, Stored>,
    resource_version: u64,
    pending_crds: Vec<(String, Instant)>,
    pub crd_delay: Duration,
}

impl Default for Store {
    fn default() -> Self {
        let mut store = Self {
            kinds: kinds::builtin(),
            objects: BTreeMap::new(),
            resource_version: 100,
            pending_crds: Vec::new(),
            crd_delay: Duration::from_millis(300),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let body =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
            let kind = store.kind("", "v1", "namespaces").cloned();
            if let Some(kind) = kind {
                let _ = store.write(&kind, None, ns, Write::Create(body), "kube-apiserver");
            }
        }
        store
    }
}

fn key(kind: &Kind, namespace: Option<&str>, name: &str) -> Key {
    Key {
        group: kind.group.clone(),
        plural: kind.plural.clone(),
        namespace: if kind.namespaced {
            namespace.unwrap_or_default().to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

/// The parts of an object that count as its spec, for `metadata.generation`.
fn spec_of(live: &Value) -> Value {
    let mut spec = live.clone();
    if let Value::Object(map) = &mut spec {
        map.remove("metadata");
        map.remove("status");
    }
    spec
}

fn strip_status(value: &mut Value) {
    if let Value::Object(map) = value {
        map.remove("status");
    }
}

impl Store {
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    pub fn kind(&self, group: &str, version: &str, plural: &str) -> Option<&Kind> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    fn next_version(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn namespace_exists(&self, namespace: &str) -> bool {
        self.objects.contains_key(&Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: namespace.into(),
        })
    }

    pub fn get(&self, kind: &Kind, namespace: Option<&str>, name: &str) -> ApiResult<Value> {
        self.objects
            .get(&key(kind, namespace, name))
            .map(|s| s.live.clone())
            .ok_or_else(|| ApiErr::not_found(&kind.plural, name))
    }

    pub fn list(&self, kind: &Kind, namespace: Option<&str>, selector: &Selector) -> Value {
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|(k, _)| k.group == kind.group && k.plural == kind.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, s)| s.live.clone())
            .filter(|o| selector.matches(o))
            .collect();
        json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind),
            "metadata": { "resourceVersion": self.resource_version.to_string() },
            "items": items,
        })
    }

    /// Creates, replaces, patches or applies an object; returns it and whether it was created.
    pub fn write(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        write: Write,
        manager: &str,
    ) -> ApiResult<(Value, bool)> {
        if kind.namespaced && !namespace.is_some_and(|ns| self.namespace_exists(ns)) {
            return Err(ApiErr::not_found(
                "namespaces",
                namespace.unwrap_or_default(),
            ));
        }
        let k = key(kind, namespace, name);
        let existing = self.objects.get(&k).cloned();
        let created = existing.is_none();
        let mut stored = match (existing, &write) {
            (Some(_), Write::Create(_)) => {
                return Err(ApiErr::new(
                    409,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", kind.plural),
                ));
            }
            (None, Write::Replace(_) | Write::MergePatch(_)) => {
                return Err(ApiErr::not_found(&kind.plural, name));
            }
            (Some(stored), _) => stored,
            (None, _) => Stored {
                base: json!({}),
                appliers: Vec::new(),
                updaters: Vec::new(),
                live: Value::Null,
            },
        };
        self.merge_write(kind, &mut stored, write, manager)?;
        let live = self.render(kind, namespace, name, &stored)?;
        validate::object(kind, name, &live)?;
        stored.live = live;
        if kind.kind == "CustomResourceDefinition" && created {
            self.pending_crds
                .push((name.to_string(), Instant::now() + self.crd_delay));
        }
        let out = stored.live.clone();
        self.objects.insert(k, stored);
        Ok((out, created))
    }

    fn merge_write(
        &self,
        kind: &Kind,
        stored: &mut Stored,
        write: Write,
        manager: &str,
    ) -> ApiResult<()> {
        let keep_status = stored.base.get("status").cloned();
        match write {
            Write::Create(mut body) | Write::Replace(mut body) => {
                if kind.has_status {
                    strip_status(&mut body);
                }
                stored.base = body;
                stored.appliers.clear();
            }
            Write::MergePatch(mut patch) => {
                if kind.has_status {
                    strip_status(&mut patch);
                }
                for path in ssa::leaf_paths(&patch) {
                    for (_, config) in &mut stored.appliers {
                        ssa::remove_path(config, &path);
                    }
                }
                ssa::merge(&mut stored.base, &patch);
            }
            Write::Apply { mut config, force } => {
                strip_status(&mut config);
                self.apply(stored, config, force, manager)?;
            }
        }
        if let Some(status) = keep_status {
            stored.base["status"] = status;
        }
        if !stored.updaters.iter().any(|m| m == manager)
            && !stored.appliers.iter().any(|(m, _)| m == manager)
        {
            stored.updaters.push(manager.to_string());
        }
        Ok(())
    }

    fn apply(
        &self,
        stored: &mut Stored,
        mut config: Value,
        force: bool,
        manager: &str,
    ) -> ApiResult<()> {
        if let Value::Object(map) = &mut config
            && let Some(Value::Object(meta)) = map.get_mut("metadata")
        {
            for server_field in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "managedFields",
            ] {
                meta.remove(server_field);
            }
        }
        let others: Vec<(String, Value)> = stored
            .appliers
            .iter()
            .filter(|(m, _)| m != manager)
            .cloned()
            .collect();
        let found = ssa::conflicts(&config, &others);
        if !found.is_empty() && !force {
            let list: Vec<String> = found
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": {p}"))
                .collect();
            return Err(ApiErr::new(
                409,
                "Conflict",
                format!(
                    "Apply failed with {} conflict(s): {}",
                    list.len(),
                    list.join("; ")
                ),
            ));
        }
        for path in ssa::leaf_paths(&config) {
            for (m, owned) in &mut stored.appliers {
                if m != manager {
                    ssa::remove_path(owned, &path);
                }
            }
        }
        match stored.appliers.iter_mut().find(|(m, _)| m == manager) {
            Some((_, previous)) => *previous = config,
            None => stored.appliers.push((manager.to_string(), config)),
        }
        stored.updaters.retain(|m| m != manager);
        Ok(())
    }

    /// The live object: base plus every applier's configuration, plus server-set metadata.
    fn render(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        stored: &Stored,
    ) -> ApiResult<Value> {
        let mut live = stored.base.clone();
        for (_, config) in &stored.appliers {
            ssa::merge(&mut live, config);
        }
        live["apiVersion"] = json!(kind.api_version());
        live["kind"] = json!(kind.kind);
        let previous = &stored.live;
        let meta = live["metadata"]
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut meta = Value::Object(meta);
        meta["name"] = json!(name);
        if kind.namespaced {
            meta["namespace"] = json!(namespace.unwrap_or_default());
        }
        let inherited = ["uid", "creationTimestamp", "generation", "resourceVersion"];
        for field in inherited {
            meta[field] = previous["metadata"][field].clone();
        }
        if meta["uid"].is_null() {
            meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
            meta["creationTimestamp"] =
                json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            meta["generation"] = json!(1);
        }
        meta["managedFields"] = managed_fields(kind, stored);
        live["metadata"] = meta;
        if kind.kind == "Namespace" && live["status"].is_null() {
            live["status"] = json!({ "phase": "Active" });
        }
        if !previous.is_null() && spec_of(previous) != spec_of(&live) {
            let generation = previous["metadata"]["generation"].as_i64().unwrap_or(1);
            live["metadata"]["generation"] = json!(generation + 1);
        }
        if previous.is_null() || without_versions(previous) != without_versions(&live) {
            live["metadata"]["resourceVersion"] = json!(self.next_version().to_string());
        }
        Ok(live)
    }

    /// Replaces or merges the status subresource.
    pub fn write_status(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        status: Value,
        merge: bool,
    ) -> ApiResult<Value> {
        let k = key(kind, namespace, name);
        let mut stored = self
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiErr::not_found(&kind.plural, name))?;
        if merge {
            let mut current = stored.base.get("status").cloned().unwrap_or(json!({}));
            ssa::merge(&mut current, &status);
            stored.base["status"] = current;
        } else {
            stored.base["status"] = status;
        }
        stored.live = self.render(kind, namespace, name, &stored)?;
        let out = stored.live.clone();
        self.objects.insert(k, stored);
        Ok(out)
    }

    pub fn delete(&mut self, kind: &Kind, namespace: Option<&str>, name: &str) -> ApiResult<Value> {
        let removed = self
            .objects
            .remove(&key(kind, namespace, name))
            .ok_or_else(|| ApiErr::not_found(&kind.plural, name))?;
        self.next_version();
        if kind.kind == "Namespace" {
            self.objects.retain(|k, _| k.namespace != name);
        }
        if kind.kind == "CustomResourceDefinition" {
            self.unregister_crd(&removed.live);
        }
        Ok(removed.live)
    }

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

    fn unregister_crd(&mut self, crd: &Value) {
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
}

fn without_versions(live: &Value) -> Value {
    let mut copy = live.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("generation");
    }
    copy
}

fn managed_fields(kind: &Kind, stored: &Stored) -> Value {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let appliers = stored.appliers.iter().map(|(manager, config)| {
        json!({ "manager": manager, "operation": "Apply", "apiVersion": kind.api_version(), "time": time,
                "fieldsType": "FieldsV1", "fieldsV1": ssa::fields_v1(config) })
    });
    let updaters = stored.updaters.iter().map(|manager| {
        json!({ "manager": manager, "operation": "Update", "apiVersion": kind.api_version(), "time": time,
                "fieldsType": "FieldsV1", "fieldsV1": {} })
    });
    Value::Array(appliers.chain(updaters).collect())
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
