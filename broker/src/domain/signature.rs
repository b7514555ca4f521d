//! Webhook signing as the Standard Webhooks 1.0 specification defines it: a secret is
//! `whsec_` + base64 of random bytes; a request is signed with HMAC-SHA256 of
//! `{webhook-id}.{webhook-timestamp}.{body}` under the decoded secret, sent as
//! `v1,<base64 signature>`, one per active secret, separated by spaces.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng as _;
use sha2::Sha256;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

impl SigningSecret {
    /// A fresh secret: `whsec_` + base64 of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{SECRET_PREFIX}{}", BASE64.encode(bytes)))
    }

    /// A stored secret; `None` when it is not `whsec_` + base64.
    pub fn parse(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix(SECRET_PREFIX)?;
        BASE64.decode(encoded).ok().filter(|b| !b.is_empty())?;
        Some(Self(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        let encoded = self.0.strip_prefix(SECRET_PREFIX).unwrap_or_default();
        BASE64.decode(encoded).unwrap_or_default()
    }

    /// `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key()) else {
            // HMAC accepts keys of any length; this cannot happen.
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_fresh_and_hidden() {
        let a = SigningSecret::generate();
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(BASE64.decode(&a.expose()[6..]).unwrap().len(), 32);
        assert_ne!(a, SigningSecret::generate());
        assert!(!format!("{a:?}").contains(a.expose()));
        assert!(SigningSecret::parse("nope").is_none());
        let header = signature_header(&[a.clone(), SigningSecret::generate()], "m", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.starts_with(&a.sign("m", 1, b"{}")));
    }
}
