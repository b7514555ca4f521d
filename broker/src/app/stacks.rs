//! Stacks: created, listed, read, updated and deleted by an admin or the owning generator.
//! Deleting a stack appends a deletion marker so agents remove its objects; changes that can
//! retarget take the dry-run and confirmation guard.

use brokkr_types::Name;
use brokkr_types::requests::{CreateStack, UpdateStack};
use brokkr_types::resources::{Page, Stack};
use brokkr_types::staged::RolloutStrategy;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use std::sync::Arc;

use super::metadata::inline_metadata;
use super::outbox::{self, DomainEvent, StackRef};
use super::retarget::{Settled, Subject};
use super::submissions::{Checked, Destination};
use super::templates::TemplateRef;
use super::{App, AppError, AppResult, Guard, Requester, Retargeted};
use crate::db::metadata::{self, Metadata, Owner};
use crate::db::stacks::NewStack;
use crate::db::{Window, assignments, deployment_objects, generators, stacks};
use crate::domain::Principal;

/// The generator that will own a new stack.
fn owner_of_new_stack(by: Requester, requested: Option<Uuid>) -> AppResult<Uuid> {
    match (by.principal, requested) {
        (Principal::Generator(own), None) => Ok(own),
        (Principal::Generator(own), Some(asked)) if asked == own => Ok(own),
        (Principal::Generator(_), Some(_)) => Err(AppError::forbidden(
            "a generator can only create stacks it owns",
        )),
        (Principal::Admin, Some(asked)) => Ok(asked),
        (Principal::Admin, None) => Err(AppError::invalid(
            "validation_failed",
            "generator_id: an admin must name the generator that will own the stack",
        )),
        (Principal::Agent(_), _) => Err(AppError::forbidden("agents cannot create stacks")),
    }
}

/// A rollout strategy as stored, once each wave's expression compiled as CEL over `agent`.
fn stored_strategy(strategy: &RolloutStrategy) -> AppResult<String> {
    for wave in &strategy.waves {
        if let Some(text) = &wave.agents {
            super::expressions::wave(text, wave.name.as_str())?;
        }
    }
    serde_json::to_string(strategy)
        .map_err(|e| AppError::Internal(format!("cannot store a strategy: {e}")))
}

impl App {
    /// Creates a stack; with `template_name`, its first deployment object is rendered from the
    /// template, checked and judged before anything is written, and stored in the same
    /// transaction (no stack without its object).
    pub async fn create_stack(&self, by: Requester, body: CreateStack) -> AppResult<Stack> {
        let owner = owner_of_new_stack(by, body.generator_id)?;
        self.metadata_within_limits(body.labels.len(), body.annotations.len())?;
        if let Some(text) = &body.target_expression {
            let expression = super::expressions::target(text)?;
            self.stack_expression_within_budget(owner, &expression)
                .await?;
        }
        let strategy = body.rollout.as_ref().map(stored_strategy).transpose()?;
        let id = Uuid::new_v4();
        let metadata = inline_metadata(&body.labels, &body.annotations);
        let first = self.first_object(id, owner, &body, &metadata).await?;
        let mut work = self.begin().await?;
        if generators::get_in(&mut work.tx, owner).await?.is_none() {
            return Err(AppError::invalid(
                "validation_failed",
                "generator_id: no such generator",
            ));
        }
        let new = NewStack {
            id,
            generator_id: owner,
            name: body.name.as_str(),
            description: body.description.as_ref().map(|d| d.as_str()),
            target_expression: body.target_expression.as_ref().map(|e| e.as_str()),
            rollout_strategy: strategy.as_deref(),
        };
        let row = stacks::insert(&mut work.tx, new).await?;
        metadata::write_all(&mut work.tx, Owner::Stack, id, &metadata).await?;
        let details = json!({ "generator_id": owner, "template": body.template_name });
        work.audit(by, "stack.created", ("stack", Some(id)), details)
            .await?;
        work.emit(DomainEvent::stack("stack.created", StackRef::of(&row)));
        if let Some(checked) = first {
            let destination = Destination::Existing(
                stacks::get_row_in(&mut work.tx, id)
                    .await?
                    .ok_or(AppError::NotFound("stack"))?,
            );
            self.write_submission(&mut work, by, &destination, checked)
                .await?;
        }
        self.settle(work, Subject::Stack(id), Guard::default())
            .await?;
        Ok(row.with_metadata(metadata))
    }

    /// The first deployment object of a stack created from a template, checked and judged.
    async fn first_object(
        &self,
        id: Uuid,
        owner: Uuid,
        body: &CreateStack,
        metadata: &Metadata,
    ) -> AppResult<Option<Checked>> {
        let Some(name) = &body.template_name else {
            if body.parameters.is_some() || body.template_version.is_some() {
                return Err(AppError::invalid(
                    "validation_failed",
                    "parameters and template_version need template_name",
                ));
            }
            return Ok(None);
        };
        let now = chrono::Utc::now();
        let stack = Stack {
            id,
            generator_id: owner,
            name: body.name.as_str().to_string(),
            description: body.description.as_ref().map(|d| d.as_str().to_string()),
            target_expression: body
                .target_expression
                .as_ref()
                .map(|e| e.as_str().to_string()),
            labels: metadata.labels.clone(),
            annotations: metadata.annotations.clone(),
            rollout: body.rollout.clone(),
            created_at: now,
            updated_at: now,
        };
        let parameters = body.parameters.clone().unwrap_or_default();
        let named = TemplateRef::Name(name.clone());
        let (yaml, provenance) = self
            .render_for_stack(&stack, &named, body.template_version, parameters)
            .await?;
        let checked = self
            .check_submission(&Destination::New(stack), Arc::new(yaml), Some(provenance))
            .await?;
        Ok(Some(checked))
    }

    /// Every stack (admin) or the requester's own (generator).
    /// The stacks the caller may see (a generator: its own), optionally only the one named.
    pub async fn list_stacks(
        &self,
        by: Requester,
        name: Option<&Name>,
        window: Window,
    ) -> AppResult<Page<Stack>> {
        let only = match by.principal {
            Principal::Admin => None,
            Principal::Generator(own) => Some(own),
            Principal::Agent(_) => return Err(AppError::forbidden("agents cannot list stacks")),
        };
        let name = name.map(Name::as_str);
        Ok(window.page(stacks::list(&self.db, only, name, window).await?))
    }

    pub async fn stack(&self, by: Requester, id: Uuid) -> AppResult<Stack> {
        let row = self.visible_stack(by, id).await?;
        let metadata = metadata::load_one(&self.db, Owner::Stack, id).await?;
        Ok(row.with_metadata(metadata))
    }

    /// A partial update; a new expression retargets (with the dry-run and confirmation guard).
    pub async fn update_stack(
        &self,
        by: Requester,
        id: Uuid,
        patch: UpdateStack,
        guard: Guard,
    ) -> AppResult<Retargeted<Stack>> {
        let stack = self.visible_stack(by, id).await?;
        if let Some(Some(strategy)) = &patch.rollout {
            stored_strategy(strategy)?;
        }
        if let Some(Some(text)) = &patch.target_expression {
            let expression = super::expressions::target(text)?;
            self.stack_expression_within_budget(stack.generator_id, &expression)
                .await?;
        }
        let mut work = self.begin_guarded(guard).await?;
        let row = stacks::update(&mut work.tx, id, &patch)
            .await?
            .ok_or(AppError::NotFound("stack"))?;
        work.emit(DomainEvent::stack("stack.updated", StackRef::of(&row)));
        let expression = patch
            .target_expression
            .as_ref()
            .map(|e| e.as_ref().map(|e| e.as_str()));
        let details = json!({ "target_expression": expression, "rollout": patch.rollout });
        work.audit(by, "stack.updated", ("stack", Some(id)), details)
            .await?;
        // Target-state entries carry the stack's name.
        if patch.name.is_some()
            && let Some(latest) = deployment_objects::latest_of_stack(&self.db, id).await?
        {
            work.fragment_stale(latest);
        }
        Ok(match self.settle(work, Subject::Stack(id), guard).await? {
            Settled::Preview(mut preview) => {
                if let Some(Some(strategy)) = &patch.rollout {
                    preview.waves = self.preview_waves(id, strategy, &preview).await?;
                }
                Retargeted::Preview(preview)
            }
            Settled::Applied => Retargeted::Applied(self.stack(by, id).await?),
        })
    }

    /// Soft-deletes the stack and its deployment objects and appends the deletion marker.
    pub async fn delete_stack(&self, by: Requester, id: Uuid) -> AppResult<()> {
        self.visible_stack(by, id).await?;
        let mut work = self.begin().await?;
        let deleted = stacks::soft_delete(&mut work.tx, id, Utc::now())
            .await?
            .ok_or(AppError::NotFound("stack"))?;
        outbox::stack_deleted(&mut work, &deleted);
        let reached = assignments::agents_of_stack(&mut work.tx, id).await?;
        let details = json!({ "agents": reached.len() });
        work.audit(by, "stack.deleted", ("stack", Some(id)), details)
            .await?;
        work.agents_changed(reached);
        work.commit().await
    }
}
