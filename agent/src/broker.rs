//! The agent's view of the broker: who am I, what is my target state (with `If-None-Match`),
//! heartbeats and events. A response that does not parse as a complete target state for this
//! agent is an error, never an empty state.

use std::time::Duration;

use brokkr_types::requests::{Heartbeat, NewAgentEvent};
use brokkr_types::resources::WhoAmI;
use brokkr_types::target_state::TargetState;
use brokkr_types::work_orders::{CompleteRun, Lease, RenewLease};
use brokkr_types::{Name, Pak};
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use uuid::Uuid;

/// Why a call to the broker failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot reach the broker: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("the broker answered {status}: {detail}")]
    Status {
        status: StatusCode,
        /// The problem's stable `code` (`agent_inactive`, `not_found`, …).
        code: String,
        detail: String,
    },
    #[error("the broker's answer is not usable: {0}")]
    Invalid(String),
}

impl BrokerError {
    /// Whether the PAK itself was refused (rotated or revoked).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status == StatusCode::UNAUTHORIZED)
    }

    /// Whether trying again later can succeed (the broker is overloaded, restarting or away).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => true,
        }
    }

    /// Whether the broker refused a write because an admin set this agent inactive; the same
    /// write succeeds once it is active again.
    pub fn is_inactive(&self) -> bool {
        matches!(self, Self::Status { code, .. } if code == "agent_inactive")
    }
}

/// What a poll of the target state found.
#[derive(Debug)]
pub enum Fetched {
    Unchanged,
    Changed(TargetState),
}

/// Makes ring the process's rustls provider unless one is installed already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Clone)]
pub struct BrokerClient {
    http: reqwest::Client,
    base: String,
    pak: Pak,
}

impl std::fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

async fn check(response: reqwest::Response) -> Result<reqwest::Response, BrokerError> {
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        return Ok(response);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let detail = body["detail"].as_str().unwrap_or("no detail").to_string();
    let code = body["code"].as_str().unwrap_or_default().to_string();
    Err(BrokerError::Status {
        status,
        code,
        detail,
    })
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
    /// The HTTP client of these settings.
    fn client(&self) -> Result<reqwest::Client, BrokerError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("brokkr-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &self.ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem)?;
            builder = builder.tls_certs_only(roots);
        }
        if let Some(pem) = &self.identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(pem)?);
        }
        Ok(builder.build()?)
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
    let body = serde_json::json!({ "token": token, "name": name, "cluster_name": cluster_name });
    let url = format!("{}/api/v1/enroll", base.trim_end_matches('/'));
    let response = check(transport.client()?.post(url).json(&body).send().await?).await?;
    let created: brokkr_types::resources::AgentWithPak = response
        .json()
        .await
        .map_err(|e| BrokerError::Invalid(e.to_string()))?;
    Ok((created.agent.id, created.pak))
}

impl BrokerClient {
    pub fn new(base: &str, pak: Pak, transport: &Transport) -> Result<Self, BrokerError> {
        Ok(Self {
            http: transport.client()?,
            base: base.trim_end_matches('/').to_string(),
            pak,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.pak.expose())
    }

    /// The agent id behind this PAK.
    pub async fn whoami(&self) -> Result<Uuid, BrokerError> {
        let response = check(
            self.request(reqwest::Method::GET, "/api/v1/whoami")
                .send()
                .await?,
        )
        .await?;
        let me: WhoAmI = response.json().await?;
        match (me.principal_type.as_str(), me.id) {
            ("agent", Some(id)) => Ok(id),
            (other, _) => Err(BrokerError::Invalid(format!(
                "this PAK belongs to a {other}, not an agent"
            ))),
        }
    }

    /// Fetches the target state; `etag` is what the agent holds.
    pub async fn target_state(
        &self,
        agent: Uuid,
        etag: Option<&str>,
        wait: Option<Duration>,
    ) -> Result<Fetched, BrokerError> {
        let mut request = self.request(
            reqwest::Method::GET,
            &format!("/api/v1/agents/{agent}/target-state"),
        );
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, format!("\"{etag}\""));
        }
        if let Some(wait) = wait {
            request = request
                .query(&[("wait", wait.as_secs())])
                .timeout(wait + Duration::from_secs(15));
        }
        let response = check(request.send().await?).await?;
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::Unchanged);
        }
        let header_etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_string());
        let state: TargetState = response
            .json()
            .await
            .map_err(|e| BrokerError::Invalid(format!("target state does not parse: {e}")))?;
        if state.agent_id != agent
            || state.etag.is_empty()
            || header_etag.as_deref() != Some(state.etag.as_str())
        {
            return Err(BrokerError::Invalid(
                "target state is not this agent's, or has no ETag".into(),
            ));
        }
        Ok(Fetched::Changed(state))
    }

    pub async fn heartbeat(
        &self,
        agent: Uuid,
        kubernetes_reachable: bool,
    ) -> Result<(), BrokerError> {
        let beat = Heartbeat {
            kubernetes_reachable: Some(kubernetes_reachable),
            agent_version: Name::parse(env!("CARGO_PKG_VERSION")).ok(),
        };
        let path = format!("/api/v1/agents/{agent}/heartbeat");
        check(
            self.request(reqwest::Method::POST, &path)
                .json(&beat)
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }

    /// This agent's own record (names, labels, annotations: the cluster facts plugins see).
    pub async fn agent(&self, agent: Uuid) -> Result<brokkr_types::resources::Agent, BrokerError> {
        let path = format!("/api/v1/agents/{agent}");
        let response = check(self.request(reqwest::Method::GET, &path).send().await?).await?;
        Ok(response.json().await?)
    }

    /// A plugin module by digest.
    pub async fn module(&self, digest: &str) -> Result<Vec<u8>, BrokerError> {
        let path = format!("/api/v1/plugins/modules/{digest}");
        let response = check(self.request(reqwest::Method::GET, &path).send().await?).await?;
        Ok(response.bytes().await?.to_vec())
    }

    /// Reports the health of every deployment object the agent holds.
    pub async fn put_health(
        &self,
        agent: Uuid,
        report: &brokkr_types::rollouts::HealthReport,
    ) -> Result<(), BrokerError> {
        let path = format!("/api/v1/agents/{agent}/health");
        check(
            self.request(reqwest::Method::PUT, &path)
                .json(report)
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }

    /// Posts one event; a repeat of an already stored idempotency key also succeeds.
    pub async fn post_event(&self, agent: Uuid, event: &NewAgentEvent) -> Result<(), BrokerError> {
        let path = format!("/api/v1/agents/{agent}/events");
        check(
            self.request(reqwest::Method::POST, &path)
                .json(event)
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }
    /// Claims this agent's run of a work order; `None` when it is not claimable (another
    /// claim won, or the run is over).
    pub async fn claim(&self, order: Uuid, agent: Uuid) -> Result<Option<Lease>, BrokerError> {
        let path = format!("/api/v1/work-orders/{order}/runs/{agent}/claim");
        let sent = self
            .request(reqwest::Method::POST, &path)
            .json(&serde_json::json!({}))
            .send()
            .await?;
        match check(sent).await {
            Ok(response) => Ok(Some(response.json().await?)),
            Err(BrokerError::Status { status, .. })
                if status == StatusCode::CONFLICT || status == StatusCode::NOT_FOUND =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Extends a lease; `false` when it was lost.
    pub async fn renew(&self, lease: &Lease) -> Result<bool, BrokerError> {
        let path = format!(
            "/api/v1/work-orders/{}/runs/{}/renew",
            lease.work_order_id, lease.agent_id
        );
        let body = RenewLease {
            lease_id: lease.lease_id,
        };
        let sent = self
            .request(reqwest::Method::POST, &path)
            .json(&body)
            .send()
            .await?;
        match check(sent).await {
            Ok(_) => Ok(true),
            Err(BrokerError::Status { status, .. })
                if status == StatusCode::CONFLICT || status == StatusCode::NOT_FOUND =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reports how a run ended.
    pub async fn complete(&self, lease: &Lease, body: &CompleteRun) -> Result<(), BrokerError> {
        let path = format!(
            "/api/v1/work-orders/{}/runs/{}/complete",
            lease.work_order_id, lease.agent_id
        );
        check(
            self.request(reqwest::Method::POST, &path)
                .json(body)
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }
}
