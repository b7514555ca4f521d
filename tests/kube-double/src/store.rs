//! The double's state: kinds, objects with their field managers, the resource version counter
//! and CRDs waiting to become Established.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kinds::{self, Kind};
use crate::ssa;
use crate::status::{ApiErr, ApiResult};
use crate::validate;
use crate::watch::{Change, Filter, Journal};

mod crds;

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
    StrategicPatch(Value),
    Apply { config: Value, force: bool },
}

#[derive(Debug, Clone)]
pub struct Store {
    kinds: Vec<Kind>,
    objects: BTreeMap<Key, Stored>,
    resource_version: u64,
    pending_crds: Vec<(String, Instant)>,
    pub crd_delay: Duration,
    journal: Journal,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
}

impl Default for Store {
    fn default() -> Self {
        let mut store = Self {
            kinds: kinds::builtin(),
            objects: BTreeMap::new(),
            resource_version: 100,
            pending_crds: Vec::new(),
            crd_delay: Duration::from_millis(300),
            journal: Journal::default(),
            bookmark_interval: Duration::from_secs(1),
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

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn record(&mut self, key: Key, kind: &'static str, object: &Value) {
        self.journal.record(Change {
            version: self.resource_version,
            key,
            kind,
            object: object.clone(),
        });
    }

    /// Every object of a kind.
    fn select_all(&self, kind: &Kind) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == kind.group && k.plural == kind.plural)
            .map(|(_, s)| s.live.clone())
            .collect()
    }

    /// The objects a list or watch selects.
    pub fn select(&self, filter: &Filter) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == filter.kind.group && k.plural == filter.kind.plural)
            .filter(|(k, _)| {
                filter
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| &k.namespace == ns)
            })
            .map(|(_, s)| s.live.clone())
            .filter(|o| filter.labels.matches(o) && filter.fields.matches(o))
            .collect()
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

    pub fn list(&self, filter: &Filter) -> Value {
        let items = self.select(filter);
        json!({
            "apiVersion": filter.kind.api_version(),
            "kind": format!("{}List", filter.kind.kind),
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
        precondition(kind, name, existing.as_ref(), &write)?;
        let before = existing
            .as_ref()
            .map(|s| s.live["metadata"]["resourceVersion"].clone());
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
        self.objects.insert(k.clone(), stored);
        if before.as_ref() != Some(&out["metadata"]["resourceVersion"]) {
            self.record(k, if created { "ADDED" } else { "MODIFIED" }, &out);
        }
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
                release_to_updater(stored, &patch);
                ssa::merge(&mut stored.base, &patch);
            }
            Write::StrategicPatch(mut patch) => {
                if kind.has_status {
                    strip_status(&mut patch);
                }
                release_to_updater(stored, &patch);
                let definitions = crate::openapi::builtin();
                let schema = crate::openapi::builtin_root(kind);
                let cursor = crate::patch_strategy::Cursor::new(definitions, schema);
                crate::smp::merge(&mut stored.base, &patch, cursor);
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
        if kind.kind == "Secret" {
            fold_string_data(&mut live);
        }
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
        let before = stored.live["metadata"]["resourceVersion"].clone();
        stored.live = self.render(kind, namespace, name, &stored)?;
        let out = stored.live.clone();
        self.objects.insert(k.clone(), stored);
        if before != out["metadata"]["resourceVersion"] {
            self.record(k, "MODIFIED", &out);
        }
        Ok(out)
    }

    pub fn delete(&mut self, kind: &Kind, namespace: Option<&str>, name: &str) -> ApiResult<Value> {
        let k = key(kind, namespace, name);
        let mut removed = self
            .objects
            .remove(&k)
            .ok_or_else(|| ApiErr::not_found(&kind.plural, name))?;
        let version = self.next_version().to_string();
        removed.live["metadata"]["resourceVersion"] = json!(version);
        self.record(k, "DELETED", &removed.live);
        if kind.kind == "Namespace" {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.namespace == name)
                .cloned()
                .collect();
            for k in inside {
                if let Some(gone) = self.objects.remove(&k) {
                    self.record(k, "DELETED", &gone.live);
                }
            }
        }
        if kind.kind == "CustomResourceDefinition" {
            self.unregister_crd(&removed.live);
        }
        Ok(removed.live)
    }
}

/// A Secret's `stringData` is write-only: the server moves it into `data`, base64-encoded.
fn fold_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(Value::Object(plain)) = secret.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    if !secret["data"].is_object() {
        secret["data"] = json!({});
    }
    for (key, value) in plain {
        let text = value.as_str().unwrap_or_default().to_string();
        secret["data"][key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// The fields an update writes stop belonging to the appliers that had set them.
fn release_to_updater(stored: &mut Stored, patch: &Value) {
    for path in ssa::leaf_paths(patch) {
        for (_, config) in &mut stored.appliers {
            ssa::remove_path(config, &path);
        }
    }
}

/// An update or patch naming a `resourceVersion` applies only to that version.
fn precondition(
    kind: &Kind,
    name: &str,
    existing: Option<&Stored>,
    write: &Write,
) -> ApiResult<()> {
    let body = match write {
        Write::Replace(body) | Write::MergePatch(body) | Write::StrategicPatch(body) => body,
        Write::Create(_) | Write::Apply { .. } => return Ok(()),
    };
    let (Some(wanted), Some(stored)) = (body["metadata"]["resourceVersion"].as_str(), existing)
    else {
        return Ok(());
    };
    if stored.live["metadata"]["resourceVersion"].as_str() == Some(wanted) {
        return Ok(());
    }
    Err(ApiErr::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            kind.plural
        ),
    ))
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
