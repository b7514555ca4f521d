//! Wire types of events and webhooks: the event catalogue, subscriptions (requests that can
//! only hold valid values), deliveries.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ExpressionText, Name};

/// Every domain event type, with what it means.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("agent.created", "an agent was registered"),
    (
        "agent.updated",
        "an agent's name, cluster or status changed",
    ),
    ("agent.deleted", "an agent was deleted"),
    (
        "agent.unhealthy",
        "an agent reported degraded or failing health of a deployment",
    ),
    ("stack.created", "a stack was created"),
    (
        "stack.updated",
        "a stack's name, description or targeting expression changed",
    ),
    ("stack.deleted", "a stack was deleted"),
    (
        "deployment.created",
        "a deployment object was appended to a stack",
    ),
    ("deployment.applied", "an agent applied a deployment object"),
    (
        "deployment.failed",
        "an agent failed to apply a deployment object",
    ),
    (
        "deployment.deleted",
        "a deletion marker was appended to a deleted stack",
    ),
    ("targeting.changed", "an agent gained or lost a stack"),
    (
        "rollout.converged",
        "every agent a deployment object targets applied it",
    ),
    (
        "rollout.failed",
        "the first targeted agent failed to apply a deployment object, or a staged rollout's wave failed its gate",
    ),
    (
        "rollout.started",
        "a deployment object started a staged rollout (only its first wave receives it)",
    ),
    (
        "rollout.wave_passed",
        "a wave of a staged rollout passed its gate; the next wave receives the release",
    ),
    (
        "rollout.paused",
        "a staged rollout paused (by a person, or a failed gate with on_failure: pause)",
    ),
    (
        "rollout.rolled_back",
        "a staged rollout was rolled back: its agents have the previous version again",
    ),
    (
        "rollout.succeeded",
        "every wave of a staged rollout passed; every agent has the release",
    ),
    ("workorder.created", "a work order was created"),
    (
        "workorder.succeeded",
        "an agent completed its run of a work order",
    ),
    (
        "workorder.failed",
        "an agent's run of a work order failed, or its last lease ran out",
    ),
    (
        "policy.violation",
        "a policy plugin rejected a submission or warned about it",
    ),
    ("pak.rotated", "a PAK was rotated"),
    (
        "webhook.dead",
        "a webhook delivery gave up after its last attempt",
    ),
    (
        "webhook.test",
        "a test event sent by POST /api/v1/webhooks/{id}/test",
    ),
];

/// Whether `kind` is in the catalogue.
pub fn is_event_type(kind: &str) -> bool {
    EVENT_TYPES.iter().any(|(k, _)| *k == kind)
}

/// One entry of `GET /api/v1/webhooks/event-types`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventTypeInfo {
    #[serde(rename = "type")]
    pub event_type: String,
    pub description: String,
}

/// The event types a subscription names: an exact type (`deployment.failed`), a family
/// (`deployment.*`) or everything (`*`). Only patterns that can match a known type are valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct EventTypePattern(String);

impl EventTypePattern {
    pub fn parse(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        let known = if text == "*" {
            true
        } else if let Some(family) = text.strip_suffix(".*") {
            EVENT_TYPES
                .iter()
                .any(|(k, _)| k.split_once('.').is_some_and(|(f, _)| f == family))
        } else {
            is_event_type(&text)
        };
        if known {
            Ok(Self(text))
        } else {
            Err(format!(
                "{text:?} matches no event type; use a type from GET /api/v1/webhooks/event-types, a family such as \"deployment.*\", or \"*\""
            ))
        }
    }

    /// Whether this pattern admits events of type `kind`.
    pub fn matches(&self, kind: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some("") => true,
            Some(prefix) => kind.starts_with(prefix),
            None => self.0 == kind,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventTypePattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<EventTypePattern> for String {
    fn from(value: EventTypePattern) -> String {
        value.0
    }
}

/// Most event type patterns per subscription.
pub const MAX_PATTERNS: usize = 32;
/// Most custom headers per subscription.
pub const MAX_HEADERS: usize = 16;

/// Headers neither a subscription nor a notifier may set: the signing headers and HTTP framing.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
];

/// Whether header `name` may be set on a delivery (a token of letters, digits, `-` and `_`,
/// not reserved).
pub fn header_allowed(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        && !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str())
}
/// Longest webhook URL.
pub const MAX_URL_BYTES: usize = 2048;

/// The patterns of a subscription: 1 to [`MAX_PATTERNS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<EventTypePattern>", into = "Vec<EventTypePattern>")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = Vec<String>))]
pub struct EventTypes(Vec<EventTypePattern>);

impl EventTypes {
    pub fn matches(&self, kind: &str) -> bool {
        self.0.iter().any(|p| p.matches(kind))
    }

    pub fn patterns(&self) -> &[EventTypePattern] {
        &self.0
    }
}

impl TryFrom<Vec<EventTypePattern>> for EventTypes {
    type Error = String;
    fn try_from(value: Vec<EventTypePattern>) -> Result<Self, Self::Error> {
        if value.is_empty() || value.len() > MAX_PATTERNS {
            return Err(format!(
                "event_types must list between 1 and {MAX_PATTERNS} patterns"
            ));
        }
        Ok(Self(value))
    }
}

impl From<EventTypes> for Vec<EventTypePattern> {
    fn from(value: EventTypes) -> Self {
        value.0
    }
}

/// A webhook URL: `http` or `https`, a host, no user information or fragment, at most
/// [`MAX_URL_BYTES`]. Its query string is a secret (encrypted at rest, never shown again).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct WebhookUrl(String);

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebhookUrl").field(&self.shown()).finish()
    }
}

impl WebhookUrl {
    pub fn parse(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        if text.len() > MAX_URL_BYTES {
            return Err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("the URL may not contain spaces or control characters".into());
        }
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .ok_or("the URL must start with http:// or https://")?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.is_empty() || authority.starts_with(':') {
            return Err("the URL must name a host".into());
        }
        if authority.contains('@') {
            return Err(
                "the URL may not carry user information; send credentials in headers".into(),
            );
        }
        if text.contains('#') {
            return Err("the URL may not have a fragment".into());
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL without its query string.
    pub fn base(&self) -> &str {
        self.0.split_once('?').map_or(&self.0, |(base, _)| base)
    }

    /// The query string (without `?`), a secret.
    pub fn query(&self) -> Option<&str> {
        self.0
            .split_once('?')
            .map(|(_, q)| q)
            .filter(|q| !q.is_empty())
    }

    /// The URL as it may be shown: the query string replaced by `?…`.
    pub fn shown(&self) -> String {
        match self.query() {
            Some(_) => format!("{}?…", self.base()),
            None => self.base().to_string(),
        }
    }

    /// The host part (a name, an IPv4 address or a bracketed IPv6 address without brackets).
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next().unwrap_or_default();
        }
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    }
}

impl TryFrom<String> for WebhookUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<WebhookUrl> for String {
    fn from(value: WebhookUrl) -> String {
        value.0
    }
}

/// Custom request headers of a subscription (values are secrets: encrypted at rest, never
/// shown again). At most [`MAX_HEADERS`]; names are tokens other than the signing headers and
/// HTTP framing; values are printable and at most 4096 bytes.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = BTreeMap<String, String>))]
pub struct WebhookHeaders(BTreeMap<String, String>);

impl fmt::Debug for WebhookHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl WebhookHeaders {
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<String, String>> for WebhookHeaders {
    type Error = String;
    fn try_from(value: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        if value.len() > MAX_HEADERS {
            return Err(format!("at most {MAX_HEADERS} headers are allowed"));
        }
        for (name, header) in &value {
            if !header_allowed(name) {
                return Err(format!(
                    "header {name:?} may not be set (a token of letters, digits, '-' and '_', not a signing or framing header)"
                ));
            }
            if header.len() > 4096 || header.chars().any(|c| c.is_control() && c != '\t') {
                return Err(format!(
                    "the value of header {name:?} must be printable and at most 4096 bytes"
                ));
            }
        }
        Ok(Self(value))
    }
}

impl From<WebhookHeaders> for BTreeMap<String, String> {
    fn from(value: WebhookHeaders) -> Self {
        value.0
    }
}

/// A `u32` setting that can only hold a value within its bounds.
macro_rules! bounded_u32 {
    ($(#[$doc:meta])* $ty:ident, $field:literal, $min:literal ..= $max:literal, default $default:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "u32", into = "u32")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = u32))]
        pub struct $ty(u32);

        impl $ty {
            pub const DEFAULT: Self = Self($default);
            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl TryFrom<u32> for $ty {
            type Error = String;
            fn try_from(value: u32) -> Result<Self, Self::Error> {
                if ($min..=$max).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err(format!("{} must be between {} and {}", $field, $min, $max))
                }
            }
        }

        impl From<$ty> for u32 {
            fn from(value: $ty) -> u32 {
                value.0
            }
        }
    };
}

bounded_u32!(
    /// A bounded count of delivery attempts (1–50).
    MaxAttempts, "max_attempts", 1..=50, default 8
);
bounded_u32!(
    /// A bounded request timeout in seconds (1–60).
    TimeoutSeconds, "timeout_seconds", 1..=60, default 10
);

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateWebhook {
    pub name: Name,
    pub url: WebhookUrl,
    pub event_types: EventTypes,
    /// A CEL expression over `event` (`id`, `type`, `timestamp`, `data`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub filter: Option<ExpressionText>,
    #[serde(default)]
    pub headers: WebhookHeaders,
    /// A notifier plugin that shapes (or drops) each request.
    #[serde(default)]
    pub notifier_plugin_id: Option<Uuid>,
    #[serde(default)]
    pub max_attempts: Option<MaxAttempts>,
    #[serde(default)]
    pub timeout_seconds: Option<TimeoutSeconds>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /api/v1/webhooks/{id}`: absent fields stay; `filter` and `notifier_plugin_id`
/// accept `null` to remove them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateWebhook {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub url: Option<WebhookUrl>,
    #[serde(default)]
    pub event_types: Option<EventTypes>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub filter: Option<Option<ExpressionText>>,
    /// Replaces every custom header.
    #[serde(default)]
    pub headers: Option<WebhookHeaders>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Uuid>))]
    pub notifier_plugin_id: Option<Option<Uuid>>,
    #[serde(default)]
    pub max_attempts: Option<MaxAttempts>,
    #[serde(default)]
    pub timeout_seconds: Option<TimeoutSeconds>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A signing secret's lifetime (the secret itself is shown only once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretInfo {
    pub created_at: DateTime<Utc>,
    /// When a rotated-out secret stops signing; absent for the current one.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A subscription, as shown: never its secrets, query string or header values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: Uuid,
    pub name: String,
    /// The generator that owns it; absent for an admin's subscription.
    pub generator_id: Option<Uuid>,
    /// The URL with its query string hidden (`?…`).
    pub url: String,
    pub event_types: Vec<String>,
    pub filter: Option<String>,
    /// Names of the custom headers (values are never returned).
    pub header_names: Vec<String>,
    pub notifier_plugin_id: Option<Uuid>,
    pub max_attempts: u32,
    pub timeout_seconds: u32,
    pub enabled: bool,
    pub secrets: Vec<SecretInfo>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A subscription with its new signing secret, shown once (creation, rotation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookWithSecret {
    pub webhook: Webhook,
    /// `whsec_` + base64 of 32 random bytes: verify `webhook-signature` with it.
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    /// Waiting for its first attempt.
    Pending,
    /// An attempt is in progress.
    Delivering,
    /// An attempt failed; another is scheduled.
    Retrying,
    /// The receiver answered 2xx.
    Delivered,
    /// The subscription's notifier plugin chose not to send this event.
    Dropped,
    /// Given up: attempts exhausted, or a refusal retrying cannot fix.
    Dead,
}

text_enum!(DeliveryStatus {
    Pending => "pending",
    Delivering => "delivering",
    Retrying => "retrying",
    Delivered => "delivered",
    Dropped => "dropped",
    Dead => "dead",
});

/// One event's delivery to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
    /// When the next attempt is due (pending and retrying deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The answer to `POST /api/v1/webhooks/{id}/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestEventSent {
    pub event_id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_types_families_and_everything() {
        let family = EventTypePattern::parse("deployment.*").unwrap();
        assert!(family.matches("deployment.failed"));
        assert!(!family.matches("stack.created"));
        assert!(EventTypePattern::parse("*").unwrap().matches("pak.rotated"));
        assert!(
            EventTypePattern::parse("stack.created")
                .unwrap()
                .matches("stack.created")
        );
        for bad in ["stack.exploded", "nothing.*", "deploy*", ""] {
            assert!(EventTypePattern::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<EventTypes>("[]").is_err());
    }

    #[test]
    fn urls_keep_their_query_secret() {
        let url = WebhookUrl::parse("https://hooks.example.com:8443/x?token=s3cret").unwrap();
        assert_eq!(url.host(), "hooks.example.com");
        assert_eq!(url.base(), "https://hooks.example.com:8443/x");
        assert_eq!(url.query(), Some("token=s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.shown(), "https://hooks.example.com:8443/x?…");
        assert_eq!(WebhookUrl::parse("http://[::1]:80/").unwrap().host(), "::1");
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@x/",
            "https://x/#f",
            "https://x /",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_and_bounds_are_checked() {
        let ok: WebhookHeaders = serde_json::from_str(r#"{"Authorization": "Bearer t"}"#).unwrap();
        assert!(!format!("{ok:?}").contains("Bearer"));
        assert!(serde_json::from_str::<WebhookHeaders>(r#"{"webhook-signature": "x"}"#).is_err());
        assert!(serde_json::from_str::<MaxAttempts>("0").is_err());
        assert!(serde_json::from_str::<TimeoutSeconds>("61").is_err());
        assert!(
            serde_json::from_str::<CreateWebhook>(
                r#"{"name": "n", "url": "https://x", "event_types": ["*"], "surprise": 1}"#
            )
            .is_err()
        );
    }
}
