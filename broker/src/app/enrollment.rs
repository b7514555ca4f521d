//! Agent enrollment: an admin makes a token (shown once; it expires, and enrolls at most
//! `uses` agents); an agent presents it with its name and cluster and is registered exactly as
//! an admin would register it (audited, placed in reaches, targeted), receiving its PAK. A
//! token that is unknown, wrong, expired, used up or revoked is refused without using anything.

use brokkr_types::enrollment::{
    CreateEnrollmentToken, Enroll, EnrollmentToken, EnrollmentTokenWithSecret, MAX_TOKEN_SECONDS,
    MAX_TOKEN_USES,
};
use brokkr_types::requests::CreateAgent;
use brokkr_types::resources::{AgentWithPak, Page};
use brokkr_types::{Label, Name};
use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{App, AppError, AppResult, Requester};
use crate::auth::pak::{self, ENROLLMENT_PREFIX};
use crate::db::Window;
use crate::db::enrollment::{self, NewToken};

fn refused() -> AppError {
    AppError::Unauthenticated {
        code: "invalid_enrollment_token",
        detail: "the enrollment token is not valid (unknown, expired, used up or revoked)",
    }
}

/// A name prefix: letters, digits, `.`, `_`, `-`, at most 64 characters.
fn check_prefix(prefix: &str) -> AppResult<()> {
    let fine = prefix.len() <= 64
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if fine {
        Ok(())
    } else {
        Err(AppError::invalid(
            "validation_failed",
            "name_prefix: at most 64 letters, digits, '.', '_' and '-'",
        ))
    }
}

/// Most generators one token may name.
const MAX_REACH_GENERATORS: usize = 32;

impl App {
    /// Refuses a token naming more than [`MAX_REACH_GENERATORS`] generators, or one that does
    /// not exist (or was deleted).
    async fn generators_exist(&self, ids: &[Uuid]) -> AppResult<()> {
        if ids.len() > MAX_REACH_GENERATORS {
            return Err(AppError::invalid(
                "validation_failed",
                format!("reach_generators: at most {MAX_REACH_GENERATORS} generators"),
            ));
        }
        for id in ids {
            if crate::db::generators::get(&self.db, *id).await?.is_none() {
                return Err(AppError::invalid(
                    "validation_failed",
                    format!("reach_generators: there is no generator {id}"),
                ));
            }
        }
        Ok(())
    }

    pub async fn create_enrollment_token(
        &self,
        by: Requester,
        body: CreateEnrollmentToken,
    ) -> AppResult<EnrollmentTokenWithSecret> {
        by.require_admin("make enrollment tokens")?;
        let prefix = body.name_prefix.unwrap_or_default();
        check_prefix(&prefix)?;
        self.metadata_within_limits(body.labels.len(), body.annotations.len())?;
        let seconds = body.expires_in_seconds.unwrap_or(3600);
        let uses = body.uses.unwrap_or(1);
        if !(1..=MAX_TOKEN_SECONDS).contains(&seconds) || !(1..=MAX_TOKEN_USES).contains(&uses) {
            return Err(AppError::invalid(
                "validation_failed",
                format!(
                    "expires_in_seconds must be 1 to {MAX_TOKEN_SECONDS} and uses 1 to {MAX_TOKEN_USES}"
                ),
            ));
        }
        self.generators_exist(&body.reach_generators).await?;
        let reach_generators =
            serde_json::to_string(&body.reach_generators).unwrap_or_else(|_| "[]".into());
        let labels: Vec<&str> = body.labels.iter().map(Label::as_str).collect();
        let annotations = serde_json::to_string(&body.annotations).unwrap_or_else(|_| "{}".into());
        let secret = pak::generate_with(ENROLLMENT_PREFIX);
        let new = NewToken {
            short: &secret.short,
            token_hash: &secret.long_hash,
            name_prefix: &prefix,
            labels: &serde_json::to_string(&labels).unwrap_or_else(|_| "[]".into()),
            annotations: &annotations,
            uses: i64::from(uses),
            expires_at: Utc::now() + Duration::seconds(i64::try_from(seconds).unwrap_or(3600)),
            reach_generators: &reach_generators,
        };
        let mut work = self.begin().await?;
        let row = enrollment::insert(&mut work.tx, new).await?;
        let details = json!({ "name_prefix": prefix, "uses": uses, "expires_at": row.expires_at,
            "short_token": secret.short, "reach_generators": body.reach_generators });
        work.audit(
            by,
            "enrollment_token.created",
            ("enrollment_token", Some(row.id)),
            details,
        )
        .await?;
        work.commit().await?;
        Ok(EnrollmentTokenWithSecret {
            enrollment_token: row.shown(),
            token: secret.pak.expose().to_string(),
        })
    }

    pub async fn list_enrollment_tokens(
        &self,
        by: Requester,
        window: Window,
    ) -> AppResult<Page<EnrollmentToken>> {
        by.require_admin("list enrollment tokens")?;
        let rows = enrollment::list(&self.db, window).await?;
        Ok(window.page(rows.iter().map(|r| r.shown()).collect()))
    }

    pub async fn revoke_enrollment_token(&self, by: Requester, id: Uuid) -> AppResult<()> {
        by.require_admin("revoke enrollment tokens")?;
        let mut work = self.begin().await?;
        if !enrollment::revoke(&mut work.tx, id).await? {
            return Err(AppError::NotFound("enrollment token"));
        }
        work.audit(
            by,
            "enrollment_token.revoked",
            ("enrollment_token", Some(id)),
            json!({}),
        )
        .await?;
        work.commit().await
    }

    /// Registers the agent presenting a valid token; the token loses one use.
    pub async fn enroll(&self, body: Enroll) -> AppResult<AgentWithPak> {
        let parsed = pak::parse_with(ENROLLMENT_PREFIX, &body.token).ok_or_else(refused)?;
        let mut work = self.begin().await?;
        let token = enrollment::take_use(&mut work.tx, parsed.short, Utc::now())
            .await?
            .ok_or_else(refused)?;
        if !pak::verify(parsed.long, &token.token_hash) {
            // Dropping the work gives the use back.
            return Err(refused());
        }
        let name = Name::parse(format!("{}{}", token.name_prefix, body.name))
            .map_err(|e| AppError::invalid("validation_failed", format!("name: {e}")))?;
        let labels: Vec<Label> = serde_json::from_str(&token.labels).unwrap_or_default();
        let annotations = serde_json::from_str(&token.annotations).unwrap_or_default();
        let agent = CreateAgent {
            name,
            cluster_name: body.cluster_name,
            labels,
            annotations,
            status: None,
        };
        let grants = token.reach_generators();
        let created = super::agents::register(&mut work, Requester::SYSTEM, agent, &grants).await?;
        let details = json!({ "enrollment_token_id": token.id, "short_token": parsed.short });
        work.audit(
            Requester::SYSTEM,
            "agent.enrolled",
            ("agent", Some(created.agent.id)),
            details,
        )
        .await?;
        work.commit().await?;
        Ok(created)
    }
}
