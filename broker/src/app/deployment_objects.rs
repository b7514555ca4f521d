//! Deployment objects: appended to a stack by an admin or the owning generator (checked, then
//! judged by the plugins bound to the stack), listed per stack, and read by the owner, an
//! admin or an agent the stack is assigned to.

use brokkr_types::IdempotencyKey;
use brokkr_types::plugins::{PluginMode, PolicyFinding};
use brokkr_types::problem::FieldError;
use brokkr_types::requests::CreateDeploymentObject;
use brokkr_types::resources::{
    CreatedDeploymentObject, DeploymentObject, DeploymentObjectSummary, Page,
};
use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;

use super::outbox::{DomainEvent, ObjectRef, StackRef};
use super::policies::{self, Subject};
use super::{App, AppError, AppResult, Requester, Work};
use crate::db::stacks::StackRow;
use crate::db::{
    Window, assignments, deployment_objects, generators, plugins as db_plugins, stacks,
    submission_keys,
};
use crate::domain::{Principal, manifest};

/// A stored deployment object, and whether it was stored by an earlier submission under the
/// same idempotency key.
#[derive(Debug)]
pub struct Appended {
    pub created: CreatedDeploymentObject,
    pub replayed: bool,
}

/// The verdicts worth recording: everything but passes.
fn verdicts(
    findings: &[PolicyFinding],
    stack: Uuid,
    object: Option<Uuid>,
) -> Vec<db_plugins::NewVerdict> {
    findings
        .iter()
        .filter(|f| policies::outcome(f) != "pass")
        .map(|f| db_plugins::NewVerdict {
            plugin_id: f.plugin_id,
            mode: f.mode,
            stack_id: Some(stack),
            deployment_object_id: object,
            outcome: policies::outcome(f),
            details: json!({ "violations": f.violations, "error": f.error }),
        })
        .collect()
}

/// The refusal listing every violation of every enforcing plugin.
fn rejection(findings: &[PolicyFinding]) -> AppError {
    let mut errors = Vec::new();
    for finding in findings.iter().filter(|f| policies::blocks(f)) {
        if let Some(error) = &finding.error {
            errors.push(FieldError {
                location: format!("plugins.{}", finding.plugin),
                message: format!("the plugin failed: {error}"),
            });
        }
        for v in &finding.violations {
            let object = v
                .object
                .as_ref()
                .map(|o| format!("{} {}", o.kind, o.name))
                .unwrap_or_default();
            let path = v
                .path
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            errors.push(FieldError {
                location: format!("plugins.{}: {object}{path}", finding.plugin),
                message: v.message.clone(),
            });
        }
    }
    let failed = findings
        .iter()
        .any(|f| policies::blocks(f) && f.error.is_some() && f.violations.is_empty());
    let code = if failed {
        "policy_error"
    } else {
        "policy_violation"
    };
    let detail = format!(
        "rejected by policy: {} problem(s); see errors",
        errors.len()
    );
    AppError::Invalid {
        code,
        detail,
        errors,
    }
}

/// One `policy.violation` per finding (an enforcing rejection or a warning).
fn emit_violations<'a>(
    work: &mut Work,
    stack: &StackRow,
    findings: impl Iterator<Item = &'a PolicyFinding>,
    object: Option<Uuid>,
) {
    for finding in findings {
        let data = json!({
            "plugin_id": finding.plugin_id,
            "plugin_name": finding.plugin,
            "mode": finding.mode,
            "outcome": policies::outcome(finding),
            "violations": finding.violations.len(),
            "deployment_object_id": object,
        });
        work.emit(DomainEvent::policy_violation(StackRef::of(stack), data));
    }
}

fn manifest_error(e: manifest::ManifestError) -> AppError {
    AppError::Invalid {
        code: e.code,
        detail: e.summary,
        errors: e.errors,
    }
}

impl App {
    /// Reads a manifest within the configured limits, off the async workers.
    pub(crate) async fn read_manifest(&self, yaml: Arc<String>) -> AppResult<Vec<Value>> {
        let limits = self.settings.limits.yaml();
        tokio::task::spawn_blocking(move || manifest::read(&yaml, &limits))
            .await
            .map_err(|e| AppError::Internal(format!("reading a manifest failed: {e}")))?
            .map_err(manifest_error)
    }

    /// Runs the plugins bound to the stack; refuses the submission when an enforcing plugin
    /// found violations (or could not judge it), recording what it found.
    async fn judge(&self, stack: &StackRow, documents: &[Value]) -> AppResult<Vec<PolicyFinding>> {
        let bound = db_plugins::policies_for_stack(&self.db, stack.id, stack.generator_id).await?;
        if bound.is_empty() {
            return Ok(Vec::new());
        }
        let full = stacks::get(&self.db, stack.id)
            .await?
            .ok_or(AppError::NotFound("stack"))?;
        let generator = generators::get(&self.db, stack.generator_id)
            .await?
            .map(|g| g.name)
            .unwrap_or_default();
        let subject = Subject::new(&full, &generator);
        let findings = self
            .policies
            .judge(&self.db, &bound, subject, None, documents)
            .await?;
        if !findings.iter().any(policies::blocks) {
            return Ok(findings);
        }
        let mut work = self.begin().await?;
        db_plugins::record_verdicts(&mut work.tx, &verdicts(&findings, stack.id, None)).await?;
        let blocking = findings.iter().filter(|f| policies::blocks(f));
        emit_violations(&mut work, stack, blocking, None);
        work.commit().await?;
        Err(rejection(&findings))
    }

    /// Appends the stack's next deployment object; the agents the stack reaches advance to it.
    /// With an idempotency key, a repeat of the same body within a day returns the object the
    /// first submission stored, and a different body under the same key is refused.
    pub async fn append_deployment_object(
        &self,
        by: Requester,
        stack_id: Uuid,
        body: CreateDeploymentObject,
        key: Option<IdempotencyKey>,
    ) -> AppResult<Appended> {
        let stack = self.visible_stack(by, stack_id).await?;
        let yaml = Arc::new(body.yaml_content);
        let checksum = deployment_objects::checksum(&yaml);
        if let Some(key) = &key {
            let mut work = self.begin_unaudited().await?;
            let earlier = submission_keys::find(&mut work.tx, stack_id, key.as_str()).await?;
            drop(work);
            if let Some(earlier) = earlier {
                return self.replay(earlier, &checksum).await;
            }
        }
        let documents = self.read_manifest(yaml.clone()).await?;
        let checked = manifest::check(&documents).map_err(manifest_error)?;
        let findings = self.judge(&stack, &documents).await?;
        drop(documents);
        let mut work = self.begin().await?;
        if let Some(key) = &key
            && let Some(earlier) =
                submission_keys::find(&mut work.tx, stack_id, key.as_str()).await?
        {
            // Another submission under this key committed while this one was being checked.
            drop(work);
            return self.replay(earlier, &checksum).await;
        }
        let object = deployment_objects::append(&mut work.tx, stack_id, &yaml, false)
            .await?
            .ok_or(AppError::NotFound("stack"))?;
        if let Some(key) = &key {
            let remembered = submission_keys::Remembered {
                body_sha256: checksum,
                deployment_object_id: object.id,
            };
            submission_keys::remember(&mut work.tx, stack_id, key.as_str(), &remembered).await?;
        }
        let found = verdicts(&findings, stack_id, Some(object.id));
        db_plugins::record_verdicts(&mut work.tx, &found).await?;
        let reference = ObjectRef {
            id: object.id,
            sequence_id: object.sequence_id,
        };
        work.emit(DomainEvent::deployment(
            "deployment.created",
            StackRef::of(&stack),
            reference,
        ));
        let warned = findings
            .iter()
            .filter(|f| f.mode == PluginMode::Warn && policies::outcome(f) != "pass");
        emit_violations(&mut work, &stack, warned, Some(object.id));
        let details = json!({ "stack_id": stack_id, "sequence_id": object.sequence_id, "objects": checked.objects });
        let resource = ("deployment_object", Some(object.id));
        work.audit(by, "deployment_object.created", resource, details)
            .await?;
        let reached = assignments::agents_of_stack(&mut work.tx, stack_id).await?;
        work.advanced(stack_id, object.id, reached);
        work.commit().await?;
        // Warnings are returned; shadow findings are only recorded.
        let policy = findings
            .into_iter()
            .filter(|f| f.mode == PluginMode::Warn && policies::outcome(f) != "pass")
            .collect();
        Ok(Appended {
            created: CreatedDeploymentObject { object, policy },
            replayed: false,
        })
    }

    /// The answer to a repeated submission: the first one's object, if the body is the same.
    async fn replay(
        &self,
        earlier: submission_keys::Remembered,
        checksum: &str,
    ) -> AppResult<Appended> {
        if earlier.body_sha256 != checksum {
            return Err(AppError::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was used in the last 24 hours with a different body",
            ));
        }
        let object = deployment_objects::get(&self.db, earlier.deployment_object_id)
            .await?
            .ok_or(AppError::NotFound("deployment object"))?;
        Ok(Appended {
            created: CreatedDeploymentObject {
                object,
                policy: Vec::new(),
            },
            replayed: true,
        })
    }

    pub async fn list_deployment_objects(
        &self,
        by: Requester,
        stack: Uuid,
        window: Window,
    ) -> AppResult<Page<DeploymentObjectSummary>> {
        self.visible_stack(by, stack).await?;
        let items = deployment_objects::list_for_stack(&self.db, stack, window).await?;
        Ok(window.page(items))
    }

    /// One deployment object with its YAML, for an admin, the owner or an assigned agent.
    pub async fn deployment_object(&self, by: Requester, id: Uuid) -> AppResult<DeploymentObject> {
        let object = deployment_objects::get(&self.db, id)
            .await?
            .ok_or(AppError::NotFound("deployment object"))?;
        let visible = match by.principal {
            Principal::Admin => true,
            Principal::Generator(own) => {
                stacks::owner_of_any(&self.db, object.stack_id).await? == Some(own)
            }
            Principal::Agent(agent) => {
                assignments::assigned(&self.db, agent, object.stack_id).await?
            }
        };
        if visible {
            Ok(object)
        } else {
            Err(AppError::NotFound("deployment object"))
        }
    }
}
