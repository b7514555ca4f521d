//! The submission pipeline every new deployment object goes through, whether its YAML was sent
//! as such or rendered from a template: read within the limits off the async workers, checked
//! (`apiVersion`, `kind`, `metadata.name`), judged by the plugins bound to its stack (an
//! enforcing rejection is recorded and announced, and nothing else is written), then written
//! with its verdicts, audit entry and `deployment.created` event in the caller's transaction.

use std::sync::Arc;

use brokkr_types::plugins::{PluginMode, PolicyFinding};
use brokkr_types::problem::FieldError;
use brokkr_types::resources::{DeploymentObject, Stack};
use brokkr_types::templates::Provenance;
use serde_json::{Value, json};
use uuid::Uuid;

use super::outbox::{DomainEvent, ObjectRef, StackRef};
use super::policies::{self, Subject};
use super::{App, AppError, AppResult, Requester, Work};
use crate::db::{deployment_objects, generators, plugins as db_plugins, stacks};
use crate::domain::manifest;

/// The stack a submission goes to: one that exists, or one being created with it.
#[derive(Debug)]
pub(crate) enum Destination {
    Existing(crate::db::stacks::StackRow),
    New(Stack),
}

impl Destination {
    fn id(&self) -> Uuid {
        match self {
            Self::Existing(row) => row.id,
            Self::New(stack) => stack.id,
        }
    }

    fn generator_id(&self) -> Uuid {
        match self {
            Self::Existing(row) => row.generator_id,
            Self::New(stack) => stack.generator_id,
        }
    }

    fn reference(&self) -> StackRef<'_> {
        match self {
            Self::Existing(row) => StackRef::of(row),
            Self::New(stack) => StackRef {
                id: stack.id,
                name: &stack.name,
                generator_id: stack.generator_id,
            },
        }
    }

    /// The stack as plugins see it.
    async fn stack(&self, app: &App) -> AppResult<Stack> {
        match self {
            Self::Existing(row) => stacks::get(&app.db, row.id)
                .await?
                .ok_or(AppError::NotFound("stack")),
            Self::New(stack) => Ok(stack.clone()),
        }
    }
}

/// A submission that passed every check, ready to be written.
#[derive(Debug)]
pub(crate) struct Checked {
    pub yaml: Arc<String>,
    objects: usize,
    findings: Vec<PolicyFinding>,
    provenance: Option<Provenance>,
}

/// The verdicts worth recording: everything but passes.
pub(crate) fn verdicts(
    findings: &[PolicyFinding],
    stack: Option<Uuid>,
    object: Option<Uuid>,
) -> Vec<db_plugins::NewVerdict> {
    findings
        .iter()
        .filter(|f| policies::outcome(f) != "pass")
        .map(|f| db_plugins::NewVerdict {
            plugin_id: f.plugin_id,
            mode: f.mode,
            stack_id: stack,
            deployment_object_id: object,
            outcome: policies::outcome(f),
            details: json!({ "violations": f.violations, "error": f.error }),
        })
        .collect()
}

/// The refusal listing every violation of every enforcing plugin.
pub(crate) fn rejection(findings: &[PolicyFinding]) -> AppError {
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
    stack: StackRef<'_>,
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
        work.emit(DomainEvent::policy_violation(stack, data));
    }
}

pub(crate) fn manifest_error(e: manifest::ManifestError) -> AppError {
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

    /// Reads, checks and judges `yaml` for `to`; refuses it when a check or an enforcing plugin
    /// does (recording and announcing the rejection).
    pub(crate) async fn check_submission(
        &self,
        to: &Destination,
        yaml: Arc<String>,
        provenance: Option<Provenance>,
    ) -> AppResult<Checked> {
        let documents = self.read_manifest(yaml.clone()).await?;
        let objects = manifest::check(&documents).map_err(manifest_error)?.objects;
        let findings = self.judge(to, &documents).await?;
        Ok(Checked {
            yaml,
            objects,
            findings,
            provenance,
        })
    }

    /// Runs the plugins bound to the stack; refuses the submission when an enforcing plugin
    /// found violations (or could not judge it), recording what it found.
    async fn judge(&self, to: &Destination, documents: &[Value]) -> AppResult<Vec<PolicyFinding>> {
        let bound = db_plugins::policies_for_stack(&self.db, to.id(), to.generator_id()).await?;
        if bound.is_empty() {
            return Ok(Vec::new());
        }
        let stack = to.stack(self).await?;
        let generator = generators::get(&self.db, to.generator_id())
            .await?
            .map(|g| g.name)
            .unwrap_or_default();
        let subject = Subject::new(&stack, &generator);
        let findings = self
            .policies
            .judge(&self.db, &bound, subject, None, documents)
            .await?;
        if !findings.iter().any(policies::blocks) {
            return Ok(findings);
        }
        let mut work = self.begin().await?;
        let recorded_stack = matches!(to, Destination::Existing(_)).then(|| to.id());
        db_plugins::record_verdicts(&mut work.tx, &verdicts(&findings, recorded_stack, None))
            .await?;
        let blocking = findings.iter().filter(|f| policies::blocks(f));
        emit_violations(&mut work, to.reference(), blocking, None);
        work.commit().await?;
        Err(rejection(&findings))
    }

    /// Writes a checked submission in `work`: the object (numbered next), its verdicts, audit
    /// entry and events. Returns it with the warnings to show.
    pub(crate) async fn write_submission(
        &self,
        work: &mut Work,
        by: Requester,
        to: &Destination,
        checked: Checked,
    ) -> AppResult<(DeploymentObject, Vec<PolicyFinding>)> {
        let stack_id = to.id();
        let object = deployment_objects::append(
            &mut work.tx,
            stack_id,
            &checked.yaml,
            false,
            checked.provenance.as_ref(),
        )
        .await?
        .ok_or(AppError::NotFound("stack"))?;
        let found = verdicts(&checked.findings, Some(stack_id), Some(object.id));
        db_plugins::record_verdicts(&mut work.tx, &found).await?;
        let template = checked.provenance.as_ref().map(
            |p| json!({ "template_id": p.template_id, "template_version": p.template_version }),
        );
        let details = json!({ "stack_id": stack_id, "sequence_id": object.sequence_id, "objects": checked.objects, "template": template });
        let resource = ("deployment_object", Some(object.id));
        work.audit(by, "deployment_object.created", resource, details)
            .await?;
        let reference = ObjectRef {
            id: object.id,
            sequence_id: object.sequence_id,
        };
        work.emit(DomainEvent::deployment(
            "deployment.created",
            to.reference(),
            reference,
        ));
        let warned =
            |f: &&PolicyFinding| f.mode == PluginMode::Warn && policies::outcome(f) != "pass";
        emit_violations(
            work,
            to.reference(),
            checked.findings.iter().filter(warned),
            Some(object.id),
        );
        // Warnings are returned; shadow findings are only recorded.
        let warnings = checked
            .findings
            .into_iter()
            .filter(|f| warned(&f))
            .collect();
        Ok((object, warnings))
    }
}
