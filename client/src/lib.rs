//! `brokkr-client`: a typed async client of the broker's API, shared by the `brokkr` CLI and the
//! agent. Requests and answers are the wire types of `brokkr-types`; a refusal is
//! [`ClientError::Problem`] with the broker's RFC 7807 body; idempotent calls (GET, PUT, DELETE,
//! and a POST carrying an `Idempotency-Key`) are retried with backoff while the broker is away
//! or overloaded; TLS can trust a given CA and present a client certificate.

mod agent_api;
mod api;
mod error;
mod operations;

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use brokkr_types::Pak;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

pub use agent_api::TargetStateFetch;
pub use api::RolloutWatch;
pub use error::ClientError;
pub use operations::{Deletable, PluginUpload};

/// The result of a call.
pub type ClientResult<T> = Result<T, ClientError>;

/// How to reach the broker.
#[derive(Clone, Default)]
pub struct ClientBuilder {
    base: String,
    pak: Option<Pak>,
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<Vec<u8>>,
    timeout: Option<Duration>,
    attempts: Option<usize>,
    user_agent: Option<String>,
}

impl std::fmt::Debug for ClientBuilder {
    // The PAK and the client key never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base", &self.base)
            .field("pak", &self.pak.as_ref().map(|_| "<redacted>"))
            .field("custom_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The PAK sent as `Authorization: Bearer`.
    pub fn pak(mut self, pak: Pak) -> Self {
        self.pak = Some(pak);
        self
    }

    /// PEM certificates to trust instead of the system's roots.
    pub fn ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.ca_pem = Some(pem);
        self
    }

    /// A PEM client certificate followed by its private key.
    pub fn identity_pem(mut self, pem: Vec<u8>) -> Self {
        self.identity_pem = Some(pem);
        self
    }

    /// The limit of one request (default 30 s; a long poll adds its wait).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Tries of an idempotent call before its error is returned (default 4).
    pub fn attempts(mut self, attempts: usize) -> Self {
        self.attempts = Some(attempts.max(1));
        self
    }

    /// The `User-Agent` sent (default `brokkr-client/VERSION`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    pub fn build(self) -> ClientResult<Client> {
        let base = self.base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Settings(format!(
                "the broker URL must start with http:// or https://, not {base:?}"
            )));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = |e: reqwest::Error| ClientError::Settings(e.to_string());
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout.unwrap_or(Duration::from_secs(30)))
            .user_agent(
                self.user_agent
                    .unwrap_or_else(|| concat!("brokkr-client/", env!("CARGO_PKG_VERSION")).into()),
            );
        if let Some(pem) = &self.ca_pem {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
            if parsed.map_or(true, |certs| certs.is_empty()) {
                return Err(ClientError::Settings(
                    "the CA bundle holds no valid PEM certificate".into(),
                ));
            }
            let roots = reqwest::Certificate::from_pem_bundle(pem).map_err(settings)?;
            http = http.tls_certs_only(roots);
        }
        if let Some(pem) = &self.identity_pem {
            http = http.identity(reqwest::Identity::from_pem(pem).map_err(settings)?);
        }
        Ok(Client {
            http: http.build().map_err(settings)?,
            base,
            pak: self.pak,
            attempts: self.attempts.unwrap_or(4),
        })
    }
}

/// A connection to one broker.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    pak: Option<Pak>,
    attempts: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// One request, rebuilt for every try.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    /// A multipart form instead of a JSON body: `(field, bytes, file name)`.
    pub form: Vec<(&'static str, Vec<u8>, Option<String>)>,
    pub headers: Vec<(&'static str, String)>,
    pub timeout: Option<Duration>,
    /// A POST that changes nothing (a rendering, a dry run): tried again like a GET.
    pub repeatable: bool,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            form: Vec::new(),
            headers: Vec::new(),
            timeout: None,
            repeatable: false,
        }
    }

    /// Whether sending it twice does no more than sending it once.
    fn idempotent(&self) -> bool {
        self.repeatable
            || self.method != Method::POST && self.method != Method::PATCH
            || self
                .headers
                .iter()
                .any(|(name, _)| *name == "idempotency-key")
    }
}

/// The multipart form of a call (built anew for every try: a form is consumed when sent).
fn form_of(fields: &[(&'static str, Vec<u8>, Option<String>)]) -> reqwest::multipart::Form {
    fields.iter().fold(
        reqwest::multipart::Form::new(),
        |form, (name, bytes, file)| {
            let part = reqwest::multipart::Part::bytes(bytes.clone());
            let part = match file {
                Some(file) => part.file_name(file.clone()),
                None => part,
            };
            form.part(*name, part)
        },
    )
}

/// An answer: its status, ETag and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> ClientResult<T> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

impl Client {
    /// A client of the broker at `base` (such as `https://brokkr.example.com`).
    pub fn builder(base: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base.into(),
            ..ClientBuilder::default()
        }
    }

    async fn send_once(&self, call: &Call) -> ClientResult<Answer> {
        let mut request = self
            .http
            .request(call.method.clone(), format!("{}{}", self.base, call.path));
        if let Some(pak) = &self.pak {
            request = request.bearer_auth(pak.expose());
        }
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        for (name, value) in &call.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                request = request.header(*name, value);
            }
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        if !call.form.is_empty() {
            request = request.multipart(form_of(&call.form));
        }
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await?;
        let status = response.status();
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.bytes().await?.to_vec();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(Answer { status, etag, body });
        }
        let problem = error::problem_of(status.as_u16(), &body);
        Err(ClientError::Problem {
            problem: Box::new(problem),
        })
    }

    /// Sends `call`, trying an idempotent one again while the failure is retryable.
    pub(crate) async fn send(&self, call: Call) -> ClientResult<Answer> {
        if !call.idempotent() {
            return self.send_once(&call).await;
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .with_max_times(self.attempts - 1);
        (|| self.send_once(&call))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(ClientError::is_retryable)
            .await
    }
}
