//! Agent settings: defaults, then a TOML file, then `BROKKR__AGENT__*` variables, then flags.
//! `Debug` never shows the PAK.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use brokkr_types::config::{ConfigError, LogSettings};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub agent: AgentSettings,
    pub log: LogSettings,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Where the broker answers, such as `https://brokkr.example.com`.
    pub broker_url: String,
    /// This agent's PAK; its identity comes from the key alone.
    pub pak: String,
    /// Seconds between heartbeats and health checks, and between polls when long polls are
    /// off or the broker is failing.
    pub polling_interval: u64,
    /// Longest long poll of the target state, in seconds (0 turns long polls off).
    pub long_poll_seconds: u64,
    /// Seconds between full re-applies of the current state (drift correction).
    pub reapply_interval: u64,
    /// Shortest time between two health reports, in seconds (a report goes out when the
    /// health of a deployment object changes).
    pub health_interval: u64,
    /// Where the last applied state is kept across restarts (a file; mode 0600).
    pub state_path: String,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub listen_addr: String,
    /// First retry delay of a failed apply, in milliseconds; doubles per attempt, with jitter.
    pub retry_base_ms: u64,
    /// Longest retry delay, in seconds.
    pub retry_max_seconds: u64,
    /// How long to wait for a new CRD to become Established, in seconds.
    pub crd_timeout_seconds: u64,
    /// Timeout of one request to the broker, in seconds.
    pub request_timeout_seconds: u64,
    /// Wall-clock limit of one policy plugin call, in milliseconds.
    pub plugin_timeout_ms: u64,
    /// Linear memory of one policy plugin call, in MiB.
    pub plugin_memory_mib: u64,
    /// Fuel of one policy plugin call (roughly WebAssembly instructions).
    pub plugin_fuel: u64,
    /// PEM certificates to trust for the broker (instead of the system's roots).
    pub ca_file: String,
    /// PEM client certificate and key, for a broker that asks for one.
    pub client_cert_file: String,
    pub client_key_file: String,
    /// Send the PAK over plain HTTP to a broker that is not on this host (never do this).
    pub allow_insecure_http: bool,
    /// A one-time enrollment token: with no PAK yet, the agent enrolls itself with it.
    pub enrollment_token: String,
    /// `namespace/name` of a Secret to keep the enrolled identity in (in a cluster); empty keeps
    /// it in the state file.
    pub identity_secret: String,
    /// This agent's name and cluster when it enrolls.
    pub name: String,
    pub cluster_name: String,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            broker_url: "http://localhost:3000".into(),
            pak: String::new(),
            polling_interval: 10,
            long_poll_seconds: 30,
            reapply_interval: 300,
            health_interval: 30,
            state_path: "brokkr-agent-state.json".into(),
            listen_addr: "0.0.0.0:8080".into(),
            retry_base_ms: 1000,
            retry_max_seconds: 300,
            crd_timeout_seconds: 60,
            request_timeout_seconds: 30,
            plugin_timeout_ms: 2_000,
            plugin_memory_mib: 64,
            plugin_fuel: 2_000_000_000,
            ca_file: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            allow_insecure_http: false,
            enrollment_token: String::new(),
            identity_secret: String::new(),
            name: String::new(),
            cluster_name: String::new(),
        }
    }
}

impl fmt::Debug for AgentSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSettings")
            .field("broker_url", &self.broker_url)
            .field(
                "pak",
                &if self.pak.is_empty() {
                    "<unset>"
                } else {
                    "<redacted>"
                },
            )
            .field("polling_interval", &self.polling_interval)
            .field("reapply_interval", &self.reapply_interval)
            .field("state_path", &self.state_path)
            .field("listen_addr", &self.listen_addr)
            .field(
                "enrollment_token",
                &if self.enrollment_token.is_empty() {
                    "<unset>"
                } else {
                    "<redacted>"
                },
            )
            .field("identity_secret", &self.identity_secret)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AgentSettings {
    /// The limits of every policy plugin call.
    pub fn plugin_limits(&self) -> brokkr_policy::plugin::Limits {
        brokkr_policy::plugin::Limits {
            fuel: self.plugin_fuel,
            timeout: Duration::from_millis(self.plugin_timeout_ms.max(1)),
            memory_bytes: usize::try_from(self.plugin_memory_mib.max(1) << 20)
                .unwrap_or(usize::MAX),
            ..brokkr_policy::plugin::Limits::default()
        }
    }

    pub fn polling_interval(&self) -> Duration {
        Duration::from_secs(self.polling_interval.max(1))
    }

    pub fn health_interval(&self) -> Duration {
        Duration::from_secs(self.health_interval)
    }

    pub fn reapply_interval(&self) -> Duration {
        Duration::from_secs(self.reapply_interval.max(1))
    }
}

impl Settings {
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let settings: Self = brokkr_types::config::load(file, std::env::vars())?;
        settings.check()?;
        Ok(settings)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        let agent = &self.agent;
        if agent.pak.trim().is_empty() && agent.enrollment_token.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "agent.pak (BROKKR__AGENT__PAK) or agent.enrollment_token \
                 (BROKKR__AGENT__ENROLLMENT_TOKEN) is required"
                    .into(),
            ));
        }
        if !agent.enrollment_token.trim().is_empty()
            && (agent.name.is_empty() || agent.cluster_name.is_empty())
        {
            return Err(ConfigError::Invalid(
                "enrolling needs agent.name and agent.cluster_name".into(),
            ));
        }
        if agent.client_cert_file.is_empty() != agent.client_key_file.is_empty() {
            return Err(ConfigError::Invalid(
                "agent.client_cert_file and agent.client_key_file go together".into(),
            ));
        }
        check_broker_url(&agent.broker_url, agent.allow_insecure_http)?;
        self.log.check()?;
        Ok(())
    }
}

/// `https://`, or `http://` to this host; plain HTTP elsewhere only when allowed (the PAK would
/// cross the network in clear text).
fn check_broker_url(url: &str, allow_insecure_http: bool) -> Result<(), ConfigError> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(ConfigError::Invalid(
            "agent.broker_url must start with http:// or https://".into(),
        ));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_insecure_http {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "agent.broker_url {url} is plain HTTP to another host: the PAK would cross the network \
         unencrypted. Use https:// (agent.ca_file for a private CA) or set \
         agent.allow_insecure_http = true"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_goes_only_to_this_host() {
        for fine in [
            "https://brokkr.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:3000/",
            "http://[::1]:3000",
        ] {
            assert!(check_broker_url(fine, false).is_ok(), "{fine}");
        }
        let err = check_broker_url("http://brokkr.brokkr.svc:3000", false).unwrap_err();
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        assert!(check_broker_url("http://brokkr.brokkr.svc:3000", true).is_ok());
        assert!(check_broker_url("ftp://x", true).is_err());
    }

    #[test]
    fn environment_configures_the_agent_and_debug_hides_the_pak() {
        let settings: Settings = brokkr_types::config::load(
            None,
            [
                (
                    "BROKKR__AGENT__BROKER_URL".to_string(),
                    "https://broker:3000".to_string(),
                ),
                (
                    "BROKKR__AGENT__PAK".to_string(),
                    "brokkr_BRabcdefgh_secret".to_string(),
                ),
                (
                    "BROKKR__AGENT__POLLING_INTERVAL".to_string(),
                    "5".to_string(),
                ),
                (
                    "BROKKR__BROKER__LISTEN_ADDR".to_string(),
                    "ignored".to_string(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(settings.agent.polling_interval(), Duration::from_secs(5));
        assert!(settings.check().is_ok());
        assert!(!format!("{settings:?}").contains("brokkr_BRabcdefgh_secret"));
    }
}
