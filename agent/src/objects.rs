//! Desired objects: a deployment object's YAML split into Kubernetes objects, stamped with the
//! ownership labels that let the agent find (and prune) exactly what it applied.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Label naming the agent that applied an object (the prune selector).
pub const AGENT_LABEL: &str = "brokkr.io/agent-id";
/// Label naming the stack an object belongs to.
pub const STACK_LABEL: &str = "brokkr.io/stack-id";
/// Annotation naming the deployment object an object was last applied from.
pub const OBJECT_ANNOTATION: &str = "brokkr.io/deployment-object-id";

/// `apiVersion` and `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KindRef {
    pub api_version: String,
    pub kind: String,
}

impl KindRef {
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", self.api_version.as_str()),
        }
    }
}

/// One object in the cluster: its kind, namespace (`None` when cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: KindRef,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.kind, self.name),
            None => write!(f, "{} {}", self.kind.kind, self.name),
        }
    }
}

/// An object to apply, before its namespace is resolved against discovery.
#[derive(Clone, PartialEq)]
pub struct Desired {
    pub kind: KindRef,
    pub name: String,
    /// The namespace written in the manifest, if any.
    pub namespace: Option<String>,
    pub body: Value,
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desired")
            .field("kind", &self.kind)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Desired {
    pub fn is_namespace(&self) -> bool {
        self.kind.api_version == "v1" && self.kind.kind == "Namespace"
    }

    pub fn is_crd(&self) -> bool {
        self.kind.kind == "CustomResourceDefinition"
            && self.kind.api_version.starts_with("apiextensions.k8s.io/")
    }
}

/// Why a deployment object's YAML could not be turned into objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {index}: {reason}")]
pub struct ParseError {
    pub index: usize,
    pub reason: String,
}

fn text<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(doc, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Splits the YAML into objects and stamps the ownership labels and annotation.
pub fn parse(
    yaml: &str,
    agent: Uuid,
    stack: Uuid,
    deployment_object: Uuid,
) -> Result<Vec<Desired>, ParseError> {
    let documents =
        brokkr_policy::yaml::documents(yaml, &Default::default()).map_err(|e| ParseError {
            index: e.document(),
            reason: e.to_string(),
        })?;
    let mut out = Vec::new();
    for (index, mut body) in documents.into_iter().enumerate() {
        let missing = |field: &str| ParseError {
            index,
            reason: format!("missing {field}"),
        };
        let kind = KindRef {
            api_version: text(&body, &["apiVersion"])
                .ok_or_else(|| missing("apiVersion"))?
                .to_string(),
            kind: text(&body, &["kind"])
                .ok_or_else(|| missing("kind"))?
                .to_string(),
        };
        let name = text(&body, &["metadata", "name"])
            .ok_or_else(|| missing("metadata.name"))?
            .to_string();
        let namespace = text(&body, &["metadata", "namespace"]).map(str::to_string);
        stamp(&mut body, agent, stack, deployment_object);
        out.push(Desired {
            kind,
            name,
            namespace,
            body,
        });
    }
    Ok(out)
}

fn stamp(body: &mut Value, agent: Uuid, stack: Uuid, deployment_object: Uuid) {
    let metadata = &mut body["metadata"];
    if !metadata["labels"].is_object() {
        metadata["labels"] = Value::Object(Default::default());
    }
    metadata["labels"][AGENT_LABEL] = Value::String(agent.to_string());
    metadata["labels"][STACK_LABEL] = Value::String(stack.to_string());
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = Value::Object(Default::default());
    }
    metadata["annotations"][OBJECT_ANNOTATION] = Value::String(deployment_object.to_string());
}

/// The label selector of everything this agent applied.
pub fn owned_selector(agent: Uuid) -> String {
    format!("{AGENT_LABEL}={agent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_stamps_ownership() {
        let (agent, stack, object) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: team\n  labels:\n    app: web\n";
        let objects = parse(yaml, agent, stack, object).unwrap();
        assert_eq!(objects.len(), 2);
        assert!(objects[0].is_namespace());
        assert_eq!(objects[1].namespace.as_deref(), Some("team"));
        let labels = &objects[1].body["metadata"]["labels"];
        assert_eq!(labels["app"], "web");
        assert_eq!(labels[AGENT_LABEL], agent.to_string());
        assert_eq!(
            objects[1].body["metadata"]["annotations"][OBJECT_ANNOTATION],
            object.to_string()
        );
    }

    #[test]
    fn names_the_bad_document() {
        let err = parse(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            Uuid::nil(),
            Uuid::nil(),
            Uuid::nil(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ParseError {
                index: 0,
                reason: "missing metadata.name".into()
            }
        );
    }

    #[test]
    fn debug_does_not_show_bodies() {
        let objects = parse(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  p: hunter2\n",
            Uuid::nil(),
            Uuid::nil(),
            Uuid::nil(),
        )
        .unwrap();
        assert!(!format!("{objects:?}").contains("hunter2"));
    }
}
