//! `brokkr-broker serve` as a child process on a fixed port, which can be killed with SIGKILL
//! and started again on the same port and database.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{PATIENCE, eventually};

/// A running broker process; killed when dropped.
#[allow(missing_debug_implementations)]
pub struct BrokerProcess {
    pub url: String,
    pub admin: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// A broker process (not yet started) on `database_url` with extra `BROKKR__…` settings.
    fn new(database_url: &str, extra: &[(&str, &str)]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut env = vec![
            (
                "BROKKR__DATABASE__URL".to_string(),
                database_url.to_string(),
            ),
            (
                "BROKKR__BROKER__LISTEN_ADDR".into(),
                format!("127.0.0.1:{port}"),
            ),
            ("BROKKR__LOG__LEVEL".into(), "info".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self {
            url: format!("http://127.0.0.1:{port}"),
            admin: String::new(),
            env,
            child: None,
            log: dir.path().join("broker.log"),
            _dir: dir,
        }
    }

    /// Starts a broker on `database_url` (empty) with extra `BROKKR__…` settings.
    pub async fn start(database_url: &str, extra: &[(&str, &str)]) -> Self {
        let mut broker = Self::new(database_url, extra);
        let printed = drain_stdout(broker.spawn());
        let admin = tokio::task::spawn_blocking(move || printed.recv_timeout(PATIENCE).ok());
        broker.admin = admin
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no admin PAK printed; log:\n{}", broker.logs()));
        broker.wait_until_serving().await;
        broker
    }

    /// Another broker on the same (already initialised) database, with its own port; it prints
    /// no admin PAK, so `admin` is empty.
    pub async fn start_replica(database_url: &str, extra: &[(&str, &str)]) -> Self {
        let mut broker = Self::new(database_url, extra);
        drain_stdout(broker.spawn());
        broker.wait_until_serving().await;
        broker
    }

    /// Changes a setting for the next (re)start.
    pub fn set(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.to_string()));
    }

    fn spawn(&mut self) -> std::process::ChildStdout {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(crate::binary("brokkr-broker"))
            .arg("serve")
            .envs(self.env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("brokkr-broker starts");
        let stdout = child.stdout.take().unwrap();
        self.child = Some(child);
        stdout
    }

    /// Kills the process with SIGKILL: no shutdown, no flush, connections cut mid-request.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the broker again on the same port and database.
    pub async fn restart(&mut self) {
        drain_stdout(self.spawn());
        self.wait_until_serving().await;
    }

    async fn wait_until_serving(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.url);
        eventually(PATIENCE, "the broker to serve", || async {
            let response = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            response.ok().filter(|r| r.status() == 200).map(|_| ())
        })
        .await;
    }

    /// What the broker logged, for failure messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Drains stdout on a thread (so the broker never writes into a full or closed pipe) and
/// returns the first line that is a PAK, if one comes within the patience.
fn drain_stdout(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (found, pak) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("brokkr_BR") {
                let _ = found.send(line);
            }
        }
    });
    pak
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
