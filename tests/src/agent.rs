//! `brokkr-agent` as a child process, configured through its environment.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use uuid::Uuid;

/// A running agent; killed when dropped. Its state file survives restarts.
#[allow(missing_debug_implementations)]
pub struct AgentProcess {
    pub id: Uuid,
    child: Option<Child>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    dir: tempfile::TempDir,
}

impl AgentProcess {
    pub fn start(id: Uuid, broker_url: &str, pak: &str, kubeconfig: &std::path::Path) -> Self {
        Self::with(id, broker_url, &[("BROKKR__AGENT__PAK", pak)], kubeconfig)
    }

    /// An agent with no PAK that enrolls itself with `token` as `name`, keeping its identity in
    /// the Secret `identity_secret` (`namespace/name`; empty: in its state file).
    pub fn enroll(
        token: &str,
        name: &str,
        identity_secret: &str,
        broker_url: &str,
        kubeconfig: &std::path::Path,
    ) -> Self {
        let identity = [
            ("BROKKR__AGENT__ENROLLMENT_TOKEN", token),
            ("BROKKR__AGENT__NAME", name),
            ("BROKKR__AGENT__CLUSTER_NAME", "e2e"),
            ("BROKKR__AGENT__IDENTITY_SECRET", identity_secret),
        ];
        Self::with(Uuid::nil(), broker_url, &identity, kubeconfig)
    }

    /// An agent with the environment a Deployment gives it (secret references resolved); its
    /// state path, listen address and cluster are this machine's.
    pub fn from_pod_env(env: Vec<(String, String)>, kubeconfig: &std::path::Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k != "BROKKR__AGENT__STATE_PATH" && k != "BROKKR__AGENT__LISTEN_ADDR")
            .collect();
        env.extend([
            (
                "BROKKR__AGENT__STATE_PATH".into(),
                dir.path().join("state.json").display().to_string(),
            ),
            ("BROKKR__AGENT__LISTEN_ADDR".into(), "127.0.0.1:0".into()),
            ("KUBECONFIG".into(), kubeconfig.display().to_string()),
        ]);
        Self::spawned(Uuid::nil(), env, dir)
    }

    fn with(
        id: Uuid,
        broker_url: &str,
        identity: &[(&str, &str)],
        kubeconfig: &std::path::Path,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = identity
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.extend([
            ("BROKKR__AGENT__BROKER_URL".into(), broker_url.to_string()),
            ("BROKKR__AGENT__POLLING_INTERVAL".into(), "1".into()),
            ("BROKKR__AGENT__REAPPLY_INTERVAL".into(), "2".into()),
            ("BROKKR__AGENT__HEALTH_INTERVAL".into(), "0".into()),
            ("BROKKR__AGENT__RETRY_BASE_MS".into(), "100".into()),
            ("BROKKR__AGENT__RETRY_MAX_SECONDS".into(), "1".into()),
            ("BROKKR__AGENT__REQUEST_TIMEOUT_SECONDS".into(), "5".into()),
            (
                "BROKKR__AGENT__STATE_PATH".into(),
                dir.path().join("state.json").display().to_string(),
            ),
            ("BROKKR__AGENT__LISTEN_ADDR".into(), "127.0.0.1:0".into()),
            (
                "BROKKR__LOG__LEVEL".into(),
                "info,brokkr_agent=debug".into(),
            ),
            ("KUBECONFIG".into(), kubeconfig.display().to_string()),
        ]);
        Self::spawned(id, env, dir)
    }

    fn spawned(id: Uuid, env: Vec<(String, String)>, dir: tempfile::TempDir) -> Self {
        let log = dir.path().join("agent.log");
        let mut agent = Self {
            id,
            child: None,
            env,
            log,
            dir,
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(crate::binary("brokkr-agent"))
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("brokkr-agent starts");
        self.child = Some(child);
    }

    /// Stops the agent with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The agent's log, for failure messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn state_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
