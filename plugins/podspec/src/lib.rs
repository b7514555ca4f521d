//! Helpers for Brokkr guest plugins: the few fields of Kubernetes objects the shipped policies
//! read, deserialised into typed structs (unknown fields are skipped without allocating), and
//! the configuration helpers.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// What the policies read of any object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Object {
    pub metadata: Metadata,
    pub spec: Option<Spec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// Label keys (values are not read).
    pub labels: BTreeMap<String, IgnoredAny>,
}

/// The union of the spec shapes that hold a pod spec: a Pod's own spec, a workload's
/// `template.spec`, a CronJob's `jobTemplate.spec.template.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Spec {
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
    pub ephemeral_containers: Vec<Container>,
    pub volumes: Vec<Volume>,
    pub host_network: bool,
    #[serde(rename = "hostPID")]
    pub host_pid: bool,
    #[serde(rename = "hostIPC")]
    pub host_ipc: bool,
    pub template: Option<Box<Template>>,
    pub job_template: Option<Box<Template>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Template {
    pub spec: Spec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: String,
    pub security_context: Option<SecurityContext>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SecurityContext {
    pub privileged: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub host_path: Option<IgnoredAny>,
}

/// Parses the fields the policies read.
pub fn parse(json: &str) -> Result<Object, String> {
    serde_json::from_str(json).map_err(|e| format!("object is not valid JSON: {e}"))
}

/// The pod spec of an object and its JSON path, for every kind that has one.
pub fn pod_spec<'a>(kind: &str, object: &'a Object) -> Option<(&'a Spec, &'static str)> {
    let spec = object.spec.as_ref()?;
    match kind {
        "Pod" => Some((spec, "spec")),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => spec
            .template
            .as_ref()
            .map(|t| (&t.spec, "spec.template.spec")),
        "CronJob" => spec
            .job_template
            .as_ref()
            .and_then(|j| j.spec.template.as_ref())
            .map(|t| (&t.spec, "spec.jobTemplate.spec.template.spec")),
        _ => None,
    }
}

/// Every container (init, regular and ephemeral) with its path, such as `…containers[0]`.
pub fn containers<'a>(spec: &'a Spec, spec_path: &str) -> Vec<(&'a Container, String)> {
    let groups = [
        ("initContainers", &spec.init_containers),
        ("containers", &spec.containers),
        ("ephemeralContainers", &spec.ephemeral_containers),
    ];
    groups
        .into_iter()
        .flat_map(|(field, list)| {
            list.iter()
                .enumerate()
                .map(move |(i, c)| (c, format!("{spec_path}.{field}[{i}]")))
        })
        .collect()
}

/// Parses a plugin configuration, naming what is wrong.
pub fn config(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|e| format!("the configuration is not valid JSON: {e}"))
}

/// The non-empty list of strings at `key` of a configuration text; `entry` names one item in
/// the error an empty list gets.
pub fn required_list(text: &str, key: &str, entry: &str) -> Result<Vec<String>, String> {
    let list = string_list(&config(text)?, key)?;
    if list.is_empty() {
        return Err(format!("`{key}` must name at least one {entry}"));
    }
    Ok(list)
}

/// A list of strings at `key` of a configuration.
fn string_list(config: &Value, key: &str) -> Result<Vec<String>, String> {
    let list = config
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("`{key}` must be a list of strings"))?;
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{key}` must contain only strings"))
        })
        .collect()
}
