//! Deployment objects: appended to a stack by an admin or the owning generator (through the
//! submission pipeline), listed per stack, and read by the owner, an admin or an agent the
//! stack is assigned to.

use std::sync::Arc;

use brokkr_types::IdempotencyKey;
use brokkr_types::manifest_diff::Diff;
use brokkr_types::requests::CreateDeploymentObject;
use brokkr_types::resources::{
    CreatedDeploymentObject, DeploymentObject, DeploymentObjectSummary, Page,
};
use brokkr_types::templates::FromTemplate;
use uuid::Uuid;

use super::submissions::Destination;
use super::templates::TemplateRef;
use super::{App, AppError, AppResult, Requester};
use crate::db::{Window, assignments, deployment_objects, stacks, submission_keys};
use crate::domain::Principal;

/// A stored deployment object, and whether it was stored by an earlier submission under the
/// same idempotency key.
#[derive(Debug)]
pub struct Appended {
    pub created: CreatedDeploymentObject,
    pub replayed: bool,
}

impl App {
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
        let destination = Destination::Existing(stack);
        let checked = self.check_submission(&destination, yaml, None).await?;
        let mut work = self.begin().await?;
        if let Some(key) = &key
            && let Some(earlier) =
                submission_keys::find(&mut work.tx, stack_id, key.as_str()).await?
        {
            // Another submission under this key committed while this one was being checked.
            drop(work);
            return self.replay(earlier, &checksum).await;
        }
        let (object, policy) = self
            .write_submission(&mut work, by, &destination, checked)
            .await?;
        if let Some(key) = &key {
            let remembered = submission_keys::Remembered {
                body_sha256: checksum,
                deployment_object_id: object.id,
            };
            submission_keys::remember(&mut work.tx, stack_id, key.as_str(), &remembered).await?;
        }
        self.published(work, stack_id, object, policy).await
    }

    /// Appends the next deployment object rendered from a template (by name, as the stack's
    /// owner sees it, or by id); it goes through the same checks and plugins as any submission
    /// and records where it came from.
    pub async fn append_from_template(
        &self,
        by: Requester,
        stack_id: Uuid,
        body: FromTemplate,
    ) -> AppResult<Appended> {
        let row = self.visible_stack(by, stack_id).await?;
        let named = match (body.template_id, body.template_name) {
            (Some(id), None) => TemplateRef::Id(id),
            (None, Some(name)) => TemplateRef::Name(name),
            _ => {
                return Err(AppError::invalid(
                    "validation_failed",
                    "give exactly one of template_name and template_id",
                ));
            }
        };
        let stack = stacks::get(&self.db, stack_id)
            .await?
            .ok_or(AppError::NotFound("stack"))?;
        let (yaml, provenance) = self
            .render_for_stack(&stack, &named, body.template_version, body.parameters)
            .await?;
        let destination = Destination::Existing(row);
        let checked = self
            .check_submission(&destination, Arc::new(yaml), Some(provenance))
            .await?;
        let mut work = self.begin().await?;
        let (object, policy) = self
            .write_submission(&mut work, by, &destination, checked)
            .await?;
        self.published(work, stack_id, object, policy).await
    }

    /// Commits a new object: the agents its stack reaches advance to it (with a rollout
    /// strategy, only its first wave's).
    async fn published(
        &self,
        mut work: super::Work,
        stack_id: Uuid,
        object: DeploymentObject,
        policy: Vec<brokkr_types::plugins::PolicyFinding>,
    ) -> AppResult<Appended> {
        let stack = stacks::get_row_in(&mut work.tx, stack_id)
            .await?
            .ok_or(AppError::NotFound("stack"))?;
        match self.stage(&mut work, &stack, &object).await? {
            Some(first_wave) => work.advanced_only(stack_id, object.id, first_wave),
            // No view holds a stack before its first object: its agents' views are recomputed
            // (the only publish whose cost grows with the fleet).
            None if object.sequence_id == 1 => {
                let reached = assignments::agents_of_stack(&mut work.tx, stack_id).await?;
                work.agents_changed(reached);
            }
            None => work.advanced(stack_id, object.id, object.sequence_id),
        }
        work.commit().await?;
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

    /// What changed between two versions of one stack, object by object and field by field
    /// (a Secret's values are never carried). Both are read with the caller's rights.
    pub async fn diff_versions(
        &self,
        by: Requester,
        stack_id: Uuid,
        from: Uuid,
        to: Uuid,
    ) -> AppResult<Diff> {
        let mut sides = Vec::with_capacity(2);
        for id in [from, to] {
            let object = self.deployment_object(by, id).await?;
            if object.stack_id != stack_id {
                return Err(AppError::NotFound("deployment object"));
            }
            sides.push(self.read_manifest(Arc::new(object.yaml_content)).await?);
        }
        let new = sides.pop().unwrap_or_default();
        let old = sides.pop().unwrap_or_default();
        tokio::task::spawn_blocking(move || Diff::between(&old, &new))
            .await
            .map_err(|e| AppError::Internal(format!("comparing versions failed: {e}")))
    }
}
