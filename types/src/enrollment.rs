//! Wire types of agent enrollment: tokens an admin makes, and what an agent presents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::requests::Annotations;
use crate::{Label, Name};

/// Longest token lifetime, in seconds (30 days).
pub const MAX_TOKEN_SECONDS: u64 = 30 * 86_400;
/// Most agents one token may enroll.
pub const MAX_TOKEN_USES: u32 = 10_000;

/// `POST /api/v1/enrollment-tokens` (admin).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateEnrollmentToken {
    /// Put before the name an agent enrolls with (`edge-` + `berlin-1`).
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Labels and annotations every agent enrolled with the token gets.
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, String>))]
    pub annotations: Annotations,
    /// Default 3600; at most 30 days.
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
    /// How many agents may enroll with it (default 1).
    #[serde(default)]
    pub uses: Option<u32>,
    /// Generators whose reach every agent enrolled with the token joins, whatever their reach
    /// expressions say (at most 32).
    #[serde(default)]
    pub reach_generators: Vec<Uuid>,
}

/// An enrollment token, as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentToken {
    pub id: Uuid,
    pub name_prefix: String,
    pub labels: Vec<String>,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub uses_left: u32,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
    /// Generators whose reach the enrolled agents join.
    pub reach_generators: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A new token with its secret, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentTokenWithSecret {
    pub enrollment_token: EnrollmentToken,
    /// `brokkr_ET…`: give it to the agent as `BROKKR__AGENT__ENROLLMENT_TOKEN`.
    pub token: String,
}

/// `POST /api/v1/enroll`: an agent registering itself.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Enroll {
    pub token: String,
    pub name: Name,
    pub cluster_name: Name,
}

impl std::fmt::Debug for Enroll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enroll")
            .field("token", &"<redacted>")
            .field("name", &self.name)
            .field("cluster_name", &self.cluster_name)
            .finish()
    }
}
