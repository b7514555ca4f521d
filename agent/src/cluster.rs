//! Talking to the cluster: kind resolution through discovery (cached, refreshed after CRDs),
//! server-side apply as `brokkr-agent`, listing owned objects by label selector, deletion.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope};

use crate::objects::{Desired, KindRef, ObjectRef};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "brokkr-agent";

/// A cluster call that failed, with a message fit for an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ClusterError {
    pub message: String,
    /// Whether retrying can help (network errors, 5xx, 409, 429) as opposed to a refusal.
    pub transient: bool,
}

impl ClusterError {
    fn from_kube(context: &str, err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => Self {
                message: format!("{context}: {}", status.message),
                transient: status.code >= 500 || status.code == 409 || status.code == 429,
            },
            other => Self {
                message: format!("{context}: {other}"),
                transient: true,
            },
        }
    }
}

/// A kube client plus a cache of resolved kinds.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    kinds: HashMap<KindRef, (ApiResource, bool)>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("known_kinds", &self.kinds.len())
            .finish()
    }
}

impl Cluster {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            kinds: HashMap::new(),
        }
    }

    /// Whether the API server answers.
    pub async fn reachable(&self) -> bool {
        self.client.apiserver_version().await.is_ok()
    }

    /// Resolves a kind to its resource and scope (`true` when namespaced).
    pub async fn resolve(&mut self, kind: &KindRef) -> Result<(ApiResource, bool), ClusterError> {
        if let Some(found) = self.kinds.get(kind) {
            return Ok(found.clone());
        }
        let (group, version) = kind.group_version();
        let gvk = GroupVersionKind::gvk(group, version, &kind.kind);
        let (resource, caps): (ApiResource, ApiCapabilities) =
            kube::discovery::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|e| match e {
                    kube::Error::Discovery(_) => ClusterError {
                        message: format!(
                            "the cluster does not serve kind {} in {}",
                            kind.kind, kind.api_version
                        ),
                        transient: true,
                    },
                    other => ClusterError::from_kube(&format!("discovering {}", kind.kind), other),
                })?;
        let namespaced = caps.scope == Scope::Namespaced;
        self.kinds
            .insert(kind.clone(), (resource.clone(), namespaced));
        Ok((resource, namespaced))
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    /// Where an object goes: its namespace (defaulted to `default`) or none when cluster-scoped.
    pub async fn locate(&mut self, desired: &Desired) -> Result<ObjectRef, ClusterError> {
        let (_, namespaced) = self.resolve(&desired.kind).await?;
        let namespace = namespaced.then(|| {
            desired
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into())
        });
        Ok(ObjectRef {
            kind: desired.kind.clone(),
            namespace,
            name: desired.name.clone(),
        })
    }

    /// Server-side applies one object, forcing ownership of the fields it sets.
    pub async fn apply(&mut self, desired: &Desired) -> Result<ObjectRef, ClusterError> {
        let target = self.locate(desired).await?;
        let (resource, _) = self.resolve(&desired.kind).await?;
        let mut body = desired.body.clone();
        if let Some(ns) = &target.namespace {
            body["metadata"]["namespace"] = serde_json::Value::String(ns.clone());
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api(&resource, target.namespace.as_deref())
            .patch(&desired.name, &params, &Patch::Apply(&body))
            .await
            .map_err(|e| ClusterError::from_kube(&format!("applying {target}"), e))?;
        Ok(target)
    }

    /// Waits until a CRD reports `Established=True`.
    pub async fn wait_established(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let crd = api
                .get(name)
                .await
                .map_err(|e| ClusterError::from_kube(&format!("reading CRD {name}"), e))?;
            let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError {
                    message: format!("CRD {name} did not become Established within {timeout:?}"),
                    transient: true,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Every object of `kind` carrying `selector`, across namespaces.
    pub async fn list_owned(
        &mut self,
        kind: &KindRef,
        selector: &str,
    ) -> Result<Vec<ObjectRef>, ClusterError> {
        let (resource, namespaced) = self.resolve(kind).await?;
        let list = self
            .api(&resource, None)
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| ClusterError::from_kube(&format!("listing {}", kind.kind), e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| {
                Some(ObjectRef {
                    kind: kind.clone(),
                    namespace: if namespaced {
                        o.metadata.namespace.clone()
                    } else {
                        None
                    },
                    name: o.metadata.name?,
                })
            })
            .collect())
    }

    /// Deletes an object; one that is already gone counts as deleted.
    pub async fn delete(&mut self, target: &ObjectRef) -> Result<(), ClusterError> {
        let (resource, _) = self.resolve(&target.kind).await?;
        match self
            .api(&resource, target.namespace.as_deref())
            .delete(&target.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(ClusterError::from_kube(&format!("deleting {target}"), e)),
        }
    }

    /// Reads an object as JSON (`None` when it does not exist).
    pub async fn get(
        &mut self,
        target: &ObjectRef,
    ) -> Result<Option<serde_json::Value>, ClusterError> {
        let (resource, _) = self.resolve(&target.kind).await?;
        let found = self
            .api(&resource, target.namespace.as_deref())
            .get_opt(&target.name)
            .await
            .map_err(|e| ClusterError::from_kube(&format!("reading {target}"), e))?;
        Ok(found.and_then(|o| serde_json::to_value(o).ok()))
    }

    /// Pods in `namespace` matching `selector` (for health assessment).
    pub async fn pods(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<serde_json::Value>, ClusterError> {
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| ClusterError::from_kube("listing pods", e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect())
    }
}
