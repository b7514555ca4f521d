//! Where an enrolled agent keeps the PAK it received: in its state file (mode 0600), or, in a
//! cluster, in a Secret it owns (`agent.identity_secret = "namespace/name"`), so the key
//! survives the loss of the pod's volume and never sits on a node's disk in plain text.

use std::collections::BTreeMap;

use brokkr_types::Pak;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use uuid::Uuid;

use crate::cluster::FIELD_MANAGER;

/// The Secret's keys.
const PAK_KEY: &str = "pak";
const AGENT_KEY: &str = "agent-id";

/// Why the identity Secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("agent.identity_secret must be namespace/name, not {0:?}")]
    BadName(String),
    #[error("cannot read the identity Secret {name}: {source}")]
    Read { name: String, source: kube::Error },
    #[error("cannot write the identity Secret {name}: {source}")]
    Write { name: String, source: kube::Error },
    #[error("the identity Secret {0} holds no valid agent id and PAK")]
    Corrupt(String),
}

/// The Secret an agent keeps its identity in.
#[derive(Clone)]
pub struct IdentitySecret {
    api: Api<Secret>,
    namespace: String,
    name: String,
}

impl std::fmt::Debug for IdentitySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentitySecret({}/{})", self.namespace, self.name)
    }
}

impl IdentitySecret {
    /// Parses `namespace/name`.
    pub fn new(client: kube::Client, setting: &str) -> Result<Self, IdentityError> {
        let (namespace, name) = setting
            .split_once('/')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| IdentityError::BadName(setting.to_string()))?;
        Ok(Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The agent id and PAK kept earlier, if the Secret exists.
    pub async fn load(&self) -> Result<Option<(Uuid, Pak)>, IdentityError> {
        let found = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| IdentityError::Read {
                name: self.label(),
                source,
            })?;
        let Some(secret) = found else {
            return Ok(None);
        };
        let data = secret.data.unwrap_or_default();
        let text = |key: &str| {
            data.get(key)
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
        };
        let agent = text(AGENT_KEY).and_then(|id| Uuid::parse_str(id.trim()).ok());
        match (agent, text(PAK_KEY)) {
            (Some(agent), Some(pak)) if !pak.trim().is_empty() => {
                Ok(Some((agent, Pak::new(pak.trim().to_string()))))
            }
            _ => Err(IdentityError::Corrupt(self.label())),
        }
    }

    /// Creates or updates the Secret with server-side apply.
    pub async fn save(&self, agent: Uuid, pak: &Pak) -> Result<(), IdentityError> {
        let data = BTreeMap::from([
            (
                AGENT_KEY.to_string(),
                ByteString(agent.to_string().into_bytes()),
            ),
            (
                PAK_KEY.to_string(),
                ByteString(pak.expose().as_bytes().to_vec()),
            ),
        ]);
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "brokkr-agent".to_string(),
                )])),
                ..Default::default()
            },
            data: Some(data),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        let mut body = serde_json::to_value(&secret).map_err(|e| IdentityError::Write {
            name: self.label(),
            source: kube::Error::SerdeError(e),
        })?;
        body["apiVersion"] = "v1".into();
        body["kind"] = "Secret".into();
        self.api
            .patch(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map(drop)
            .map_err(|source| IdentityError::Write {
                name: self.label(),
                source,
            })
    }
}
