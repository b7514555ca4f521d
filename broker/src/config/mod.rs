//! Broker settings: defaults, then a TOML file, then `BROKKR__SECTION__KEY` variables, then
//! flags. `Debug` never shows the database password.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::db::SqliteSync;

mod rollouts;
mod ui;
mod webhooks;
mod work_orders;
pub use brokkr_types::config::{ConfigError, LogSettings};
pub use rollouts::RolloutSettings;
pub use ui::UiSettings;
pub use webhooks::{EncryptionKeySetting, WebhookSettings};
pub use work_orders::{DiagnosticsSettings, WorkOrderSettings};

/// Everything the broker can be configured with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    pub targeting: TargetingSettings,
    pub tenancy: TenancySettings,
    pub fleet: FleetSettings,
    pub limits: LimitsSettings,
    pub plugins: PluginSettings,
    pub webhooks: WebhookSettings,
    pub templates: TemplateSettings,
    pub work_orders: WorkOrderSettings,
    pub diagnostics: DiagnosticsSettings,
    pub rollouts: RolloutSettings,
    pub ui: UiSettings,
    pub log: LogSettings,
}

/// Stack templates: what one rendering may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateSettings {
    /// minijinja fuel per rendering: instructions plus estimated bytes allocated.
    pub fuel: u64,
    /// Renderings (and template checks) running at once; the rest wait.
    pub max_concurrent_renders: usize,
}

impl Default for TemplateSettings {
    fn default() -> Self {
        Self {
            fuel: 5_000_000,
            max_concurrent_renders: 2,
        }
    }
}

/// CIDRs or bare addresses (a network of one).
pub(crate) fn networks(
    entries: &[String],
    setting: &str,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    entries
        .iter()
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::Invalid(format!("{setting}: {entry:?} is not an address or CIDR"))
                })
        })
        .collect()
}

/// Bounds on what one request may hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// Deepest nesting of mappings and sequences in a deployment object's YAML.
    pub yaml_max_depth: usize,
    /// Most YAML documents in one deployment object.
    pub yaml_max_documents: usize,
    /// Most YAML nodes (with aliases expanded) in one deployment object.
    pub yaml_max_nodes: usize,
    /// Most YAML aliases in one deployment object.
    pub yaml_max_aliases: usize,
    /// Most labels on one agent or stack.
    pub max_labels: usize,
    /// Most annotations on one agent or stack.
    pub max_annotations: usize,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        let yaml = brokkr_policy::yaml::YamlLimits::default();
        Self {
            yaml_max_depth: yaml.max_depth,
            yaml_max_documents: yaml.max_documents,
            yaml_max_nodes: yaml.max_nodes,
            yaml_max_aliases: yaml.max_aliases,
            max_labels: 100,
            max_annotations: 100,
        }
    }
}

impl LimitsSettings {
    pub fn yaml(&self) -> brokkr_policy::yaml::YamlLimits {
        brokkr_policy::yaml::YamlLimits {
            max_depth: self.yaml_max_depth,
            max_documents: self.yaml_max_documents,
            max_nodes: self.yaml_max_nodes,
            max_aliases: self.yaml_max_aliases,
        }
    }
}

/// The tenancy boundary between generators.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenancySettings {
    /// The reach of a generator created without one: a CEL expression over `agent`. `"false"`
    /// (the default) reaches nothing until an admin says otherwise; `"true"` lets every
    /// generator reach every agent (a single-team install).
    pub default_reach: String,
}

impl Default for TenancySettings {
    fn default() -> Self {
        Self {
            default_reach: "false".into(),
        }
    }
}

/// How the fleet is judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetSettings {
    /// An agent without a heartbeat for this many seconds counts as stale.
    pub stale_after_seconds: u64,
}

impl Default for FleetSettings {
    fn default() -> Self {
        Self {
            stale_after_seconds: 180,
        }
    }
}

/// Limits of WASM policy plugins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSettings {
    /// Fuel units per call (roughly WebAssembly instructions).
    pub fuel: u64,
    /// Wall-clock limit per call, in milliseconds.
    pub timeout_ms: u64,
    /// Linear memory per call, in MiB.
    pub memory_mib: u64,
    /// Largest list of violations a call may return, in KiB.
    pub max_output_kib: u64,
    /// Largest plugin upload, in bytes (components built by ordinary toolchains can be large).
    pub max_upload_bytes: u64,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            fuel: 2_000_000_000,
            timeout_ms: 2_000,
            memory_mib: 64,
            max_output_kib: 1024,
            max_upload_bytes: 64 * 1024 * 1024,
        }
    }
}

impl PluginSettings {
    pub fn limits(&self) -> brokkr_policy::plugin::Limits {
        brokkr_policy::plugin::Limits {
            fuel: self.fuel,
            timeout: std::time::Duration::from_millis(self.timeout_ms.max(1)),
            memory_bytes: usize::try_from(self.memory_mib.max(1) << 20).unwrap_or(usize::MAX),
            max_output_bytes: usize::try_from(self.max_output_kib << 10).unwrap_or(usize::MAX),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetingSettings {
    /// A change that would untarget a stack from more agents than this needs `?confirm=true`.
    pub confirm_threshold: usize,
    /// Longest long poll of the target state, in seconds.
    pub max_wait_seconds: u64,
    /// Most CEL steps one change may cost (an expression's estimated steps times the agents it
    /// is evaluated for); a costlier expression or reach is refused when written.
    pub max_evaluation_steps: u64,
}

impl Default for TargetingSettings {
    fn default() -> Self {
        Self {
            confirm_threshold: 10,
            max_wait_seconds: 60,
            max_evaluation_steps: 20_000_000,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://brokkr.db` (the embedded default) or `postgres://user:pass@host/db`.
    pub url: String,
    pub max_connections: u32,
    /// `full`: a SQLite commit is on disk before it is answered; `normal`: commits survive a
    /// broker crash but not a power loss, and cost no disk flush.
    pub sqlite_synchronous: SqliteSync,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerSettings {
    pub listen_addr: String,
    /// How long a checked PAK is trusted without asking the database.
    pub auth_cache_ttl_seconds: u64,
    pub auth_cache_capacity: u64,
    /// Largest accepted request body, in bytes (413 beyond).
    pub max_body_bytes: u64,
    /// Bad PAKs one client may present per minute before its bad ones get 429 (0: no limit).
    pub auth_failures_per_minute: u32,
    /// How often failed authentications are written to the audit log (one entry per client).
    pub auth_failure_audit_seconds: u64,
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Most connections open at once; further ones wait until one closes.
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers (also closes idle keep-alives).
    pub header_read_timeout_seconds: u64,
    /// Seconds a request may take, long polls excepted (503 `timeout` beyond).
    pub request_timeout_seconds: u64,
    /// Most requests in progress at once, long polls and probes excepted (503 `overloaded`).
    pub max_in_flight: usize,
    /// The admin PAK of a new database: adopted from this file when it already holds one (the
    /// Helm chart's Secret), else written there (mode 0600); empty prints it to stdout once.
    pub admin_pak_file: String,
    /// HTTPS and client certificates (plain HTTP while `cert_file` is empty).
    pub tls: TlsSettings,
}

/// `broker.tls`: the broker's own HTTPS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain; empty serves plain HTTP.
    pub cert_file: String,
    /// PEM private key of the certificate.
    pub key_file: String,
    /// `none`, `optional` (checked when presented) or `required` (no handshake without one).
    pub client_auth: String,
    /// PEM certificates of the CA client certificates must chain to.
    pub client_ca_file: String,
    /// An agent must present a client certificate valid for `<agent-id>.agents.brokkr`.
    pub bind_agent_certificates: bool,
    /// Seconds between checks of the files for changes (SIGHUP reloads at once).
    pub reload_seconds: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_file: String::new(),
            key_file: String::new(),
            client_auth: "none".into(),
            client_ca_file: String::new(),
            bind_agent_certificates: false,
            reload_seconds: 30,
        }
    }
}

impl TlsSettings {
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("broker.tls: {m}")));
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            return invalid("cert_file and key_file go together");
        }
        if !matches!(self.client_auth.as_str(), "none" | "optional" | "required") {
            return invalid("client_auth must be none, optional or required");
        }
        if self.client_auth != "none"
            && (self.client_ca_file.is_empty() || self.cert_file.is_empty())
        {
            return invalid("client_auth needs cert_file, key_file and client_ca_file");
        }
        if self.bind_agent_certificates && self.client_auth == "none" {
            return invalid("bind_agent_certificates needs client_auth optional or required");
        }
        Ok(())
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://brokkr.db".into(),
            max_connections: 10,
            sqlite_synchronous: SqliteSync::Full,
        }
    }
}

impl Default for BrokerSettings {
    fn default() -> Self {
        Self {
            listen_addr: "127.0.0.1:3000".into(),
            auth_cache_ttl_seconds: 60,
            auth_cache_capacity: 100_000,
            max_body_bytes: 4 * 1024 * 1024,
            auth_failures_per_minute: 60,
            auth_failure_audit_seconds: 60,
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            header_read_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_in_flight: 512,
            admin_pak_file: String::new(),
            tls: TlsSettings::default(),
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .finish()
    }
}

/// Replaces the password of a URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_string(),
    }
}

impl Settings {
    /// Loads defaults, the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let settings: Self = brokkr_types::config::load(file, std::env::vars())?;
        settings.check()?;
        Ok(settings)
    }

    /// Rejects values that deserialise but cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.trusted_proxies()?;
        let broker = &self.broker;
        if broker.max_connections == 0 || broker.max_in_flight == 0 {
            return Err(ConfigError::Invalid(
                "broker.max_connections and broker.max_in_flight must be positive".into(),
            ));
        }
        if broker.header_read_timeout_seconds == 0 || broker.request_timeout_seconds == 0 {
            return Err(ConfigError::Invalid(
                "broker.header_read_timeout_seconds and broker.request_timeout_seconds must be positive"
                    .into(),
            ));
        }
        if self.broker.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "broker.max_body_bytes must be positive".into(),
            ));
        }
        self.log.check()?;
        self.broker.tls.check()?;
        self.webhooks.key_ring()?;
        self.webhooks.allowed_networks()?;
        let hooks = &self.webhooks;
        if hooks.lease_seconds < 12 {
            return Err(ConfigError::Invalid(
                "webhooks.lease_seconds must be at least 12".into(),
            ));
        }
        if hooks.max_concurrency_per_endpoint == 0 || hooks.max_in_flight == 0 {
            return Err(ConfigError::Invalid(
                "webhooks.max_concurrency_per_endpoint and webhooks.max_in_flight must be positive"
                    .into(),
            ));
        }
        brokkr_policy::ReachExpression::parse(&self.tenancy.default_reach).map_err(|e| {
            ConfigError::Invalid(format!("tenancy.default_reach does not compile: {e}"))
        })?;
        Ok(())
    }

    /// `broker.trusted_proxies` as networks (a bare address is a network of one).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        networks(&self.broker.trusted_proxies, "broker.trusted_proxies")
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.broker.listen_addr.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "broker.listen_addr {:?} is not a socket address such as 127.0.0.1:3000",
                self.broker.listen_addr
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keyring::NamedKey;

    #[test]
    fn passwords_are_redacted() {
        let settings = DatabaseSettings {
            url: "postgres://brokkr:s3cret@db:5432/brokkr".into(),
            max_connections: 1,
            sqlite_synchronous: SqliteSync::Full,
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://brokkr:***@db:5432/brokkr"),
            "{shown}"
        );
    }

    #[test]
    fn environment_selects_database_and_address() {
        let settings: Settings = brokkr_types::config::load(
            None,
            [
                (
                    "BROKKR__DATABASE__URL".to_string(),
                    "postgres://x@h/db".to_string(),
                ),
                (
                    "BROKKR__BROKER__LISTEN_ADDR".to_string(),
                    "0.0.0.0:8080".to_string(),
                ),
                ("BROKKR__AGENT__PAK".to_string(), "ignored".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(settings.database.url, "postgres://x@h/db");
        assert_eq!(settings.listen_addr().unwrap().port(), 8080);
        assert_eq!(settings.broker.auth_cache_ttl_seconds, 60);
    }

    #[test]
    fn sqlite_durability_is_full_unless_chosen() {
        let load = |vars: Vec<(String, String)>| brokkr_types::config::load::<Settings>(None, vars);
        let variable = "BROKKR__DATABASE__SQLITE_SYNCHRONOUS".to_string();
        let default = load(vec![]).unwrap();
        assert_eq!(default.database.sqlite_synchronous, SqliteSync::Full);
        let normal = load(vec![(variable.clone(), "normal".into())]).unwrap();
        assert_eq!(normal.database.sqlite_synchronous, SqliteSync::Normal);
        let wrong = load(vec![(variable, "off".into())])
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("sqlite_synchronous") || wrong.contains("off"),
            "{wrong}"
        );
    }

    #[test]
    fn encryption_keys_come_from_the_environment_and_stay_hidden() {
        let (k1, k2) = (NamedKey::generate_base64(), NamedKey::generate_base64());
        let settings: Settings = brokkr_types::config::load(
            None,
            [(
                "BROKKR__WEBHOOKS__ENCRYPTION_KEYS".to_string(),
                format!("k1:{k1}, k2:{k2}:active"),
            )],
        )
        .unwrap();
        settings.check().unwrap();
        let ring = settings.webhooks.key_ring().unwrap().unwrap();
        assert_eq!(ring.active_id(), "k2");
        assert!(ring.contains("k1"));
        let shown = format!("{settings:?}");
        assert!(!shown.contains(&k1) && !shown.contains(&k2), "{shown}");
        let mut two = settings.clone();
        two.webhooks.encryption_keys[0].active = true;
        assert!(two.check().is_err(), "two active keys");
        let mut short = settings;
        short.webhooks.encryption_keys[1].key = "c2hvcnQ=".into();
        assert!(short.check().is_err(), "a short key");
    }
}
