//! The client over HTTPS: it trusts the CA it is given and presents its client certificate to
//! a broker that requires one (the transport the agent and the CLI share).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use brokkr_broker::config::Settings;
use brokkr_broker::startup::Application;
use brokkr_client::{Client, ClientError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA, and a certificate with its key (PEM, certificate first) for `names`.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Self { dir, ca }
    }

    /// Writes `stem.pem` and `stem.key`; returns certificate + key as one PEM.
    fn issue(&self, stem: &str, names: &[&str]) -> String {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        std::fs::write(self.dir.path().join(format!("{stem}.pem")), cert.pem()).unwrap();
        std::fs::write(
            self.dir.path().join(format!("{stem}.key")),
            key.serialize_pem(),
        )
        .unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem())
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }
}

#[tokio::test]
async fn a_ca_and_a_client_certificate_reach_a_broker_that_requires_one() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = Pki::new();
    pki.issue("server", &["localhost"]);
    let db = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.database.url = format!("sqlite://{}", db.path().join("brokkr.db").display());
    settings.broker.listen_addr = "127.0.0.1:0".into();
    settings.broker.tls.cert_file = pki.path("server.pem");
    settings.broker.tls.key_file = pki.path("server.key");
    settings.broker.tls.client_auth = "required".into();
    settings.broker.tls.client_ca_file = pki.path("ca.pem");
    let app = Application::build(settings).await.unwrap();
    let admin = app.admin_pak.clone().unwrap();
    let url = format!("https://localhost:{}", app.local_addr().unwrap().port());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let ca = pki.ca.pem().into_bytes();
    let identity = pki.issue("ci", &["ci.example"]).into_bytes();
    let trusted = Client::builder(&url)
        .pak(admin.clone())
        .ca_pem(ca.clone())
        .identity_pem(identity)
        .attempts(1)
        .build()
        .unwrap();
    assert_eq!(trusted.whoami().await.unwrap().principal_type, "admin");

    let without_certificate = Client::builder(&url)
        .pak(admin.clone())
        .ca_pem(ca)
        .attempts(1)
        .build()
        .unwrap();
    let refused = without_certificate.whoami().await.unwrap_err();
    assert!(matches!(refused, ClientError::Transport(_)), "{refused:?}");
    let untrusting = Client::builder(&url)
        .pak(admin)
        .attempts(1)
        .build()
        .unwrap();
    let refused = untrusting.whoami().await.unwrap_err();
    assert!(matches!(refused, ClientError::Transport(_)), "{refused:?}");
}
