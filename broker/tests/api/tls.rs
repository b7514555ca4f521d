//! The broker's own HTTPS: certificates generated here (rcgen), client certificates optional or
//! required, agent certificates bound to agent ids, and certificates reloaded while serving.

use std::path::PathBuf;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::json;

use crate::helpers::*;

/// A throwaway certificate authority and the files it issued.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and key, as files and as PEM.
struct Issued {
    cert_file: PathBuf,
    key_file: PathBuf,
    pem: String,
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

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn issue(&self, stem: &str, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        let cert_file = self.dir.path().join(format!("{stem}.pem"));
        let key_file = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        Issued {
            cert_file,
            key_file,
            pem: format!("{}{}", cert.pem(), key.serialize_pem()),
        }
    }

    fn client(&self, identity: Option<&Issued>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca.pem().as_bytes()).unwrap();
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(10));
        if let Some(issued) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(issued.pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }
}

/// The broker on the same database, over HTTPS with `client_auth`.
async fn https(app: TestApp, pki: &Pki, client_auth: &str, bind: bool) -> (TestApp, String) {
    let server = pki.issue("server", &["localhost", "127.0.0.1"]);
    let ca_file = pki.ca_file();
    let app = app
        .respawn(|s| {
            s.broker.tls.cert_file = server.cert_file.display().to_string();
            s.broker.tls.key_file = server.key_file.display().to_string();
            s.broker.tls.client_auth = client_auth.into();
            s.broker.tls.client_ca_file = ca_file.display().to_string();
            s.broker.tls.bind_agent_certificates = bind;
            s.broker.tls.reload_seconds = 1;
        })
        .await;
    let url = app
        .address
        .replace("http://", "https://")
        .replace("127.0.0.1", "localhost");
    (app, url)
}

both_backends!(the_broker_serves_https, |app| {
    let pki = Pki::new();
    let (app, url) = https(app, &pki, "none", false).await;
    let client = pki.client(None);
    let whoami = client
        .get(format!("{url}/api/v1/whoami"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), 200);
    let plain = reqwest::Client::new()
        .get(format!("{}/healthz", app.address))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP on the TLS port gets no answer");
    let untrusted = reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .send()
        .await;
    assert!(
        untrusted.is_err(),
        "a client that does not trust the CA fails the handshake"
    );
});

both_backends!(required_client_certificates_end_the_handshake, |app| {
    let pki = Pki::new();
    let (app, url) = https(app, &pki, "required", false).await;
    let bare = pki.client(None).get(format!("{url}/healthz")).send().await;
    assert!(bare.is_err(), "no client certificate, no handshake");
    let someone = pki.issue("someone", &["someone.example"]);
    let admitted = pki
        .client(Some(&someone))
        .get(format!("{url}/api/v1/whoami"))
        .bearer_auth(&app.admin)
        .send()
        .await;
    assert_eq!(admitted.unwrap().status(), 200);
    let other = Pki::new().issue("stranger", &["stranger.example"]);
    let stranger = pki
        .client(Some(&other))
        .get(format!("{url}/healthz"))
        .send()
        .await;
    assert!(
        stranger.is_err(),
        "a certificate from another CA is refused"
    );
});

both_backends!(agent_certificates_are_bound_to_agent_ids, |app| {
    let pki = Pki::new();
    let (agent, agent_pak) = app.create_agent("edge", json!({})).await;
    let (other, _) = app.create_agent("other", json!({})).await;
    let (app, url) = https(app, &pki, "optional", true).await;
    let path = format!("{url}/api/v1/agents/{agent}/target-state");
    let own = pki.issue("own", &[&format!("{agent}.agents.brokkr")]);
    let answer = pki
        .client(Some(&own))
        .get(&path)
        .bearer_auth(&agent_pak)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let borrowed = pki.issue("borrowed", &[&format!("{other}.agents.brokkr")]);
    let refused = pki
        .client(Some(&borrowed))
        .get(&path)
        .bearer_auth(&agent_pak)
        .send()
        .await
        .unwrap();
    expect_problem(refused, 403, "certificate_required").await;
    let stolen_pak_alone = pki
        .client(None)
        .get(&path)
        .bearer_auth(&agent_pak)
        .send()
        .await
        .unwrap();
    expect_problem(stolen_pak_alone, 403, "certificate_required").await;
    let admin = pki
        .client(None)
        .get(format!("{url}/api/v1/agents"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200, "only agents are bound");
});

both_backends!(certificates_are_reloaded_while_serving, |app| {
    let pki = Pki::new();
    let (app, url) = https(app, &pki, "none", false).await;
    let client = pki.client(None);
    assert_eq!(
        client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A new certificate that only names `localhost` by another CA: once reloaded, a client
    // trusting only the old CA is refused and one trusting the new CA is served.
    let next = Pki::new();
    let renewed = next.issue("renewed", &["localhost"]);
    let current = pki.dir.path().join("server.pem");
    std::fs::copy(&renewed.cert_file, &current).unwrap();
    std::fs::copy(&renewed.key_file, pki.dir.path().join("server.key")).unwrap();
    let fresh = next.client(None);
    eventually("the renewed certificate", || async {
        let answer = fresh.get(format!("{url}/healthz")).send().await.ok()?;
        (answer.status() == 200).then_some(())
    })
    .await;
    let old = pki.client(None).get(format!("{url}/healthz")).send().await;
    assert!(old.is_err(), "new connections get the new certificate");
    drop(app);
});
