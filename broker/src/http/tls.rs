//! HTTPS served by the broker itself (rustls, TLS 1.2 and 1.3, ring): the certificate and key
//! from `broker.tls.cert_file`/`key_file`, optionally client certificates checked against
//! `client_ca_file` (`client_auth = optional | required`). The files are read again on SIGHUP
//! and when they change (checked every `reload_seconds`); established connections keep the
//! configuration they started with, new ones get the new one, and a reload that fails keeps
//! the old one. An agent's client certificate can be bound to its agent id: it must then be
//! valid for the DNS name `<agent-id>.agents.brokkr`.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;
use uuid::Uuid;

use crate::config::TlsSettings;

/// The DNS name an agent's bound certificate must be valid for.
pub fn agent_certificate_name(agent: Uuid) -> String {
    format!("{agent}.agents.brokkr")
}

/// Why TLS could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// The client certificate a connection presented (its leaf), handed to every request on it.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<CertificateDer<'static>>);

impl ClientCertificate {
    /// Whether the certificate names `agent` (its SAN holds `<agent-id>.agents.brokkr`). The
    /// chain was already verified against the client CA during the handshake.
    pub fn names_agent(&self, agent: Uuid) -> bool {
        let Ok(name) = ServerName::try_from(agent_certificate_name(agent)) else {
            return false;
        };
        webpki::EndEntityCert::try_from(self.0.as_ref())
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
    }
}

fn read_err(path: &str) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
    move |e| TlsError::Read {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

/// Builds the server configuration from the files the settings name.
fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&settings.cert_file)
        .map_err(read_err(&settings.cert_file))?
        .collect::<Result<_, _>>()
        .map_err(read_err(&settings.cert_file))?;
    if certs.is_empty() {
        return Err(TlsError::Invalid(format!(
            "{} holds no certificate",
            settings.cert_file
        )));
    }
    let key =
        PrivateKeyDer::from_pem_file(&settings.key_file).map_err(read_err(&settings.key_file))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    let builder = match settings.client_auth.as_str() {
        "none" => builder.with_no_client_auth(),
        mode => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(&settings.client_ca_file)
                .map_err(read_err(&settings.client_ca_file))?
            {
                let ca = ca.map_err(read_err(&settings.client_ca_file))?;
                roots
                    .add(ca)
                    .map_err(|e| TlsError::Invalid(format!("{}: {e}", settings.client_ca_file)))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == "optional" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Invalid(format!("client certificates: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Invalid(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// When the files last changed.
fn stamps(settings: &TlsSettings) -> Vec<Option<SystemTime>> {
    [
        &settings.cert_file,
        &settings.key_file,
        &settings.client_ca_file,
    ]
    .iter()
    .map(|path| {
        std::fs::metadata(Path::new(path))
            .and_then(|m| m.modified())
            .ok()
    })
    .collect()
}

/// The current TLS configuration, replaceable while serving.
#[derive(Debug)]
pub struct Tls {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    seen: RwLock<Vec<Option<SystemTime>>>,
}

impl Tls {
    /// The configuration the settings ask for; `None` for plain HTTP.
    pub fn load(settings: &TlsSettings) -> Result<Option<Arc<Self>>, TlsError> {
        if settings.cert_file.is_empty() {
            return Ok(None);
        }
        let config = server_config(settings)?;
        Ok(Some(Arc::new(Self {
            settings: settings.clone(),
            current: RwLock::new(Arc::new(config)),
            seen: RwLock::new(stamps(settings)),
        })))
    }

    /// An acceptor with the current configuration.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.current
            .read()
            .ok()
            .map(|c| TlsAcceptor::from(c.clone()))
    }

    /// Reads the files again; a failure keeps the configuration in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.settings)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(config);
        }
        if let Ok(mut seen) = self.seen.write() {
            *seen = stamps(&self.settings);
        }
        Ok(())
    }

    fn changed(&self) -> bool {
        self.seen
            .read()
            .is_ok_and(|seen| *seen != stamps(&self.settings))
    }

    /// Reloads on SIGHUP and whenever the files change, until aborted.
    pub fn spawn_reloader(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let every = Duration::from_secs(self.settings.reload_seconds.max(1));
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                #[cfg(unix)]
                let signalled = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let signalled = std::future::pending::<Option<()>>();
                let asked = tokio::select! {
                    _ = signalled => true,
                    () = tokio::time::sleep(every) => false,
                };
                if !asked && (self.settings.reload_seconds == 0 || !self.changed()) {
                    continue;
                }
                match self.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reload the TLS certificate; keeping the old one")
                    }
                }
            }
        })
    }
}
