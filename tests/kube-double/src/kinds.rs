//! The resource kinds the double serves: a fixed set of built-in kinds plus whatever CRDs add.

/// One kind of resource, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Whether `status` is a subresource (writes to the main resource ignore it).
    pub has_status: bool,
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The APIResource entry of discovery documents.
    pub fn discovery_entry(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update"],
            "shortNames": self.short_names,
        })
    }
}

fn kind(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    has_status: bool,
) -> Kind {
    Kind {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        short_names: Vec::new(),
        has_status,
    }
}

/// Kinds every cluster has.
pub fn builtin() -> Vec<Kind> {
    let mut kinds = vec![
        kind("", "v1", "Namespace", "namespaces", false, true),
        kind("", "v1", "ConfigMap", "configmaps", true, false),
        kind("", "v1", "Secret", "secrets", true, false),
        kind("", "v1", "Service", "services", true, true),
        kind("", "v1", "ServiceAccount", "serviceaccounts", true, false),
        kind("", "v1", "Pod", "pods", true, true),
        kind("", "v1", "Event", "events", true, false),
        kind(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            true,
        ),
        kind("apps", "v1", "Deployment", "deployments", true, true),
        kind("apps", "v1", "StatefulSet", "statefulsets", true, true),
        kind("apps", "v1", "DaemonSet", "daemonsets", true, true),
        kind("apps", "v1", "ReplicaSet", "replicasets", true, true),
        kind("batch", "v1", "Job", "jobs", true, true),
        kind("batch", "v1", "CronJob", "cronjobs", true, true),
        kind(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            true,
            true,
        ),
        kind(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
            false,
        ),
        kind(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            true,
        ),
        kind(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            false,
        ),
        kind(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            false,
        ),
        kind(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            false,
        ),
        kind(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            false,
        ),
        kind(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
        ),
    ];
    for (plural, short) in [
        ("namespaces", "ns"),
        ("configmaps", "cm"),
        ("services", "svc"),
        ("serviceaccounts", "sa"),
        ("pods", "po"),
        ("deployments", "deploy"),
        ("statefulsets", "sts"),
        ("daemonsets", "ds"),
        ("replicasets", "rs"),
        ("customresourcedefinitions", "crd"),
        ("persistentvolumeclaims", "pvc"),
        ("cronjobs", "cj"),
        ("ingresses", "ing"),
        ("networkpolicies", "netpol"),
        ("poddisruptionbudgets", "pdb"),
    ] {
        if let Some(k) = kinds.iter_mut().find(|k| k.plural == plural) {
            k.short_names.push(short.into());
        }
    }
    kinds
}
