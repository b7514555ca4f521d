//! [`KeyRing`]: the AES-256-GCM keys that encrypt webhook secrets at rest (URL query strings,
//! header values, signing secrets). Each sealed value names the key that sealed it, so keys
//! can be rotated without losing anything: add a new active key, re-encrypt (`rekey`), drop
//! the old one. A value is bound to where it is stored (its associated data), so a sealed
//! secret copied into another row does not open there. Key material never reaches `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::Rng as _;

/// The prefix of a sealed value: format version 1.
const SEALED_PREFIX: &str = "v1";

/// Why a key ring could not be built or a value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("encryption key {id:?}: {reason}")]
    BadKey { id: String, reason: String },
    #[error("no encryption key is configured (webhooks.encryption_keys)")]
    NoKeys,
    #[error("{0}")]
    Active(String),
    #[error("the value was sealed with key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("a sealed value is malformed")]
    Malformed,
    #[error("a sealed value does not open with key {0:?} (wrong key or altered data)")]
    Tampered(String),
}

/// One configured key: its id and 32 bytes of key material.
pub struct NamedKey {
    pub id: String,
    pub material: [u8; 32],
}

impl fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedKey")
            .field("id", &self.id)
            .field("material", &"<redacted>")
            .finish()
    }
}

impl NamedKey {
    /// A key from its id and base64 material (32 bytes once decoded).
    pub fn parse(id: &str, base64_material: &str) -> Result<Self, KeyError> {
        let bad = |reason: &str| KeyError::BadKey {
            id: id.to_string(),
            reason: reason.to_string(),
        };
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad("an id is 1-64 letters, digits, '-', '_' or '.'"));
        }
        let bytes = BASE64
            .decode(base64_material.trim())
            .map_err(|_| bad("the key is not base64"))?;
        let material: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("the key must be 32 bytes (44 characters of base64)"))?;
        Ok(Self {
            id: id.to_string(),
            material,
        })
    }

    /// A fresh random key, as base64 (for `brokkr-broker webhooks generate-key`).
    pub fn generate_base64() -> String {
        let mut material = [0u8; 32];
        rand::rng().fill_bytes(&mut material);
        BASE64.encode(material)
    }
}

/// The configured keys, one of them active (it seals new values).
pub struct KeyRing {
    active: String,
    ciphers: BTreeMap<String, Aes256Gcm>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active)
            .field("keys", &self.ciphers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// A ring of `keys` in which `active` seals new values.
    pub fn new(keys: Vec<NamedKey>, active: &str) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        let mut ciphers = BTreeMap::new();
        for key in keys {
            let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(key.material));
            if ciphers.insert(key.id.clone(), cipher).is_some() {
                return Err(KeyError::Active(format!(
                    "encryption key id {:?} is configured twice",
                    key.id
                )));
            }
        }
        if !ciphers.contains_key(active) {
            return Err(KeyError::Active(format!(
                "the active encryption key {active:?} is not among the configured keys"
            )));
        }
        Ok(Self {
            active: active.to_string(),
            ciphers,
        })
    }

    /// The id of the key that seals new values.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ciphers.contains_key(id)
    }

    /// Seals `plain` with the active key, bound to `context` (where the value is stored).
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<String, KeyError> {
        let cipher = self
            .ciphers
            .get(&self.active)
            .ok_or_else(|| KeyError::UnknownKey(self.active.clone()))?;
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain,
            aad: context.as_bytes(),
        };
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| KeyError::Malformed)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}:{}:{}",
            self.active,
            BASE64.encode(bytes)
        ))
    }

    /// Opens a value sealed by [`KeyRing::seal`] under the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, KeyError> {
        let key_id = sealed_key_id(sealed).ok_or(KeyError::Malformed)?;
        let cipher = self
            .ciphers
            .get(key_id)
            .ok_or_else(|| KeyError::UnknownKey(key_id.to_string()))?;
        let encoded = sealed.rsplit(':').next().ok_or(KeyError::Malformed)?;
        let bytes = BASE64.decode(encoded).map_err(|_| KeyError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(KeyError::Malformed);
        }
        let (nonce, body) = bytes.split_at(12);
        let nonce = Nonce::try_from(nonce).map_err(|_| KeyError::Malformed)?;
        let payload = Payload {
            msg: body,
            aad: context.as_bytes(),
        };
        cipher
            .decrypt(&nonce, payload)
            .map_err(|_| KeyError::Tampered(key_id.to_string()))
    }
}

/// The id of the key a sealed value names, if it is well formed.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    let mut parts = sealed.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(SEALED_PREFIX), Some(id), Some(_)) if !id.is_empty() => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[&str], active: &str) -> KeyRing {
        let keys = ids
            .iter()
            .map(|id| NamedKey::parse(id, &BASE64.encode([id.len() as u8; 32])).unwrap())
            .collect();
        KeyRing::new(keys, active).unwrap()
    }

    #[test]
    fn sealed_values_open_under_their_context_only() {
        let ring = ring(&["k1"], "k1");
        let sealed = ring.seal(b"whsec_abc", "webhook_secret:1").unwrap();
        assert!(sealed.starts_with("v1:k1:"), "{sealed}");
        assert!(!sealed.contains("whsec"));
        assert_eq!(
            ring.open(&sealed, "webhook_secret:1").unwrap(),
            b"whsec_abc"
        );
        assert_eq!(
            ring.open(&sealed, "webhook_secret:2"),
            Err(KeyError::Tampered("k1".into()))
        );
        assert_ne!(ring.seal(b"x", "c").unwrap(), ring.seal(b"x", "c").unwrap());
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = ring(&["k1"], "k1");
        let sealed = old.seal(b"secret", "c").unwrap();
        let both = ring(&["k1", "k22"], "k22");
        assert_eq!(both.open(&sealed, "c").unwrap(), b"secret");
        let resealed = both.seal(b"secret", "c").unwrap();
        assert_eq!(sealed_key_id(&resealed), Some("k22"));
        let new = ring(&["k22"], "k22");
        assert_eq!(
            new.open(&sealed, "c"),
            Err(KeyError::UnknownKey("k1".into()))
        );
        assert_eq!(new.open(&resealed, "c").unwrap(), b"secret");
    }

    #[test]
    fn bad_keys_and_rings_are_refused() {
        assert!(NamedKey::parse("k", "c2hvcnQ=").is_err());
        assert!(NamedKey::parse("bad id", &NamedKey::generate_base64()).is_err());
        let key = NamedKey::parse("k", &NamedKey::generate_base64()).unwrap();
        assert!(!format!("{key:?}").contains(&format!("{:?}", key.material)));
        assert!(matches!(
            KeyRing::new(vec![key], "other"),
            Err(KeyError::Active(_))
        ));
        assert_eq!(KeyRing::new(Vec::new(), "k").unwrap_err(), KeyError::NoKeys);
        assert_eq!(
            ring(&["k"], "k").open("v1:k:!!", "c"),
            Err(KeyError::Malformed)
        );
    }
}
