//! Webhook settings: delivery limits, where deliveries may go, and the key ring that seals
//! subscription secrets.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, networks};
use crate::domain::keyring::{KeyRing, NamedKey};

/// One key of `webhooks.encryption_keys`: `{id, key, active}` in a file, or `id:key` (and
/// `id:key:active`) in `BROKKR__WEBHOOKS__ENCRYPTION_KEYS`, comma-separated. `key` is base64
/// of 32 bytes (`brokkr-broker webhooks generate-key` makes one). `Debug` hides it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "KeySettingForm")]
pub struct EncryptionKeySetting {
    pub id: String,
    pub key: String,
    #[serde(default)]
    pub active: bool,
}

impl fmt::Debug for EncryptionKeySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKeySetting")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .field("active", &self.active)
            .finish()
    }
}

/// The two ways a key can be written.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeySettingForm {
    Table {
        id: String,
        key: String,
        #[serde(default)]
        active: bool,
    },
    Text(String),
}

impl TryFrom<KeySettingForm> for EncryptionKeySetting {
    type Error = String;
    fn try_from(form: KeySettingForm) -> Result<Self, Self::Error> {
        match form {
            KeySettingForm::Table { id, key, active } => Ok(Self { id, key, active }),
            KeySettingForm::Text(text) => {
                let mut parts = text.split(':');
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some(id), Some(key), flag, None)
                        if flag.is_none() || flag == Some("active") =>
                    {
                        Ok(Self {
                            id: id.to_string(),
                            key: key.to_string(),
                            active: flag.is_some(),
                        })
                    }
                    _ => Err(
                        "an encryption key is written `id:base64key` or `id:base64key:active`"
                            .into(),
                    ),
                }
            }
        }
    }
}

/// Webhooks: encryption of their secrets, where they may be delivered, retries and retention.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// The key ring sealing URL query strings, header values and signing secrets. Without a
    /// key, subscriptions cannot be created (409 `webhooks_not_configured`).
    pub encryption_keys: Vec<EncryptionKeySetting>,
    /// Networks deliveries may reach beyond public addresses (CIDRs or addresses).
    pub allowed_cidrs: Vec<String>,
    /// Seconds a rotated-out signing secret keeps signing beside the new one.
    pub secret_overlap_seconds: u64,
    /// Days delivered and dead deliveries (and their events) are kept.
    pub retention_days: u64,
    /// Deliveries in progress per subscription, per broker.
    pub max_concurrency_per_endpoint: usize,
    /// Deliveries in progress in all, per broker.
    pub max_in_flight: usize,
    /// First retry delay, in milliseconds (doubling, with jitter, up to `retry_max_seconds`).
    pub retry_base_ms: u64,
    pub retry_max_seconds: u64,
    /// Consecutive failures that open a subscription's circuit here.
    pub circuit_failures: u32,
    /// Seconds an open circuit waits before one trial delivery.
    pub circuit_open_seconds: u64,
    /// Seconds a claimed delivery is held by its broker; if that broker dies, the delivery is
    /// claimed again once this passes. Request timeouts are capped at (lease - 10) / 2.
    pub lease_seconds: u64,
    /// Whether this broker delivers (replicas that should only serve the API can opt out).
    pub deliver: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            encryption_keys: Vec::new(),
            allowed_cidrs: Vec::new(),
            secret_overlap_seconds: 86_400,
            retention_days: 7,
            max_concurrency_per_endpoint: 16,
            max_in_flight: 256,
            retry_base_ms: 1_000,
            retry_max_seconds: 3_600,
            circuit_failures: 5,
            circuit_open_seconds: 30,
            lease_seconds: 130,
            deliver: true,
        }
    }
}

impl WebhookSettings {
    /// The key ring, or `None` when no key is configured.
    pub fn key_ring(&self) -> Result<Option<KeyRing>, ConfigError> {
        if self.encryption_keys.is_empty() {
            return Ok(None);
        }
        let invalid = |e: crate::domain::keyring::KeyError| {
            ConfigError::Invalid(format!("webhooks.encryption_keys: {e}"))
        };
        let keys = self
            .encryption_keys
            .iter()
            .map(|k| NamedKey::parse(&k.id, &k.key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let active: Vec<&str> = self
            .encryption_keys
            .iter()
            .filter(|k| k.active)
            .map(|k| k.id.as_str())
            .collect();
        let active = match (active.as_slice(), self.encryption_keys.as_slice()) {
            ([one], _) => *one,
            ([], [only]) => only.id.as_str(),
            _ => {
                return Err(ConfigError::Invalid(
                    "webhooks.encryption_keys: exactly one key must be marked active".into(),
                ));
            }
        };
        KeyRing::new(keys, active).map(Some).map_err(invalid)
    }

    /// `allowed_cidrs` as networks.
    pub fn allowed_networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        networks(&self.allowed_cidrs, "webhooks.allowed_cidrs")
    }
}
