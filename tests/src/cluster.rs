//! The cluster under test: the test double served on 127.0.0.1, or a real cluster.

use std::path::PathBuf;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube_double::{KubeDouble, Served};

/// Set to a kubeconfig path to run the end-to-end tests against a real cluster.
pub const REAL_CLUSTER_ENV: &str = "BROKKR_E2E_KUBECONFIG";

/// A cluster the agent applies to, and a client for the test to look at it.
#[allow(missing_debug_implementations)]
pub struct TestCluster {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    /// The double, when not running against a real cluster.
    pub double: Option<(KubeDouble, Served)>,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// The test double, served on a socket with a kubeconfig pointing at it.
    pub async fn double() -> Self {
        let double = KubeDouble::new();
        let served = double.serve().await.expect("double serves");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, KubeDouble::kubeconfig(served.addr)).unwrap();
        let client = client_for(&kubeconfig).await;
        Self {
            client,
            kubeconfig,
            double: Some((double, served)),
            _dir: dir,
        }
    }

    /// A real cluster, when `BROKKR_E2E_KUBECONFIG` names one.
    pub async fn real() -> Option<Self> {
        let path = PathBuf::from(std::env::var_os(REAL_CLUSTER_ENV)?);
        let client = client_for(&path).await;
        Some(Self {
            client,
            kubeconfig: path,
            double: None,
            _dir: tempfile::tempdir().unwrap(),
        })
    }

    pub fn fake(&self) -> Option<&KubeDouble> {
        self.double.as_ref().map(|(d, _)| d)
    }

    async fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Option<Api<DynamicObject>> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .ok()?;
        Some(match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// Reads an object; `None` when it (or its kind) does not exist.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<serde_json::Value> {
        let api = self.api(api_version, kind, namespace).await?;
        let found = api.get_opt(name).await.ok()??;
        serde_json::to_value(found).ok()
    }

    /// Deletes an object behind the agent's back (drift).
    pub async fn delete(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) {
        let api = self
            .api(api_version, kind, namespace)
            .await
            .expect("kind exists");
        api.delete(name, &DeleteParams::default())
            .await
            .expect("deleted");
    }

    /// Writes a field as another field manager would (drift).
    pub async fn tamper(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        patch: serde_json::Value,
    ) {
        let api = self
            .api(api_version, kind, namespace)
            .await
            .expect("kind exists");
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("patched");
    }
}

async fn client_for(path: &std::path::Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig usable");
    kube::Client::try_from(config).expect("client builds")
}
