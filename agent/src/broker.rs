//! The agent's connection to the broker: a `brokkr-client` [`Client`] built from the agent's
//! transport settings. The calls themselves (target state with `If-None-Match`, heartbeats,
//! events, health, modules, work-order leases, enrollment) live in `brokkr-client`, shared
//! with the CLI. The agent retries on its own schedule, so the client tries each call once.

use std::time::Duration;

use brokkr_types::Pak;
use brokkr_types::requests::Heartbeat;
use uuid::Uuid;

pub use brokkr_client::{Client as BrokerClient, ClientError as BrokerError, TargetStateFetch};

/// Makes ring the process's rustls provider unless one is installed already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How the agent reaches the broker: its trusted CA and client certificate, if any.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub timeout: Duration,
    /// PEM certificates to trust instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate followed by its key.
    pub identity_pem: Option<Vec<u8>>,
}

impl Transport {
    /// A client of the broker at `base` with these settings, sending `pak` when given.
    pub fn client(&self, base: &str, pak: Option<Pak>) -> Result<BrokerClient, BrokerError> {
        install_crypto_provider();
        let mut builder = BrokerClient::builder(base)
            .timeout(self.timeout)
            .attempts(1)
            .user_agent(concat!("brokkr-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(pak) = pak {
            builder = builder.pak(pak);
        }
        if let Some(pem) = &self.ca_pem {
            builder = builder.ca_pem(pem.clone());
        }
        if let Some(pem) = &self.identity_pem {
            builder = builder.identity_pem(pem.clone());
        }
        builder.build()
    }
}

/// Registers this agent with an enrollment token; returns its id and PAK.
pub async fn enroll(
    base: &str,
    transport: &Transport,
    token: &str,
    name: &str,
    cluster_name: &str,
) -> Result<(Uuid, Pak), BrokerError> {
    let created = transport
        .client(base, None)?
        .enroll(token, name, cluster_name)
        .await?;
    Ok((created.agent.id, created.pak))
}

/// The heartbeat this agent sends.
pub fn heartbeat(kubernetes_reachable: bool) -> Heartbeat {
    Heartbeat {
        kubernetes_reachable: Some(kubernetes_reachable),
        agent_version: brokkr_types::Name::parse(env!("CARGO_PKG_VERSION")).ok(),
    }
}
