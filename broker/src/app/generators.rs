//! Generators: created by an admin (through the API or the CLI) with a reach; read, updated,
//! deleted and rotated by an admin or the generator itself. Only an admin changes a reach, and
//! a new reach retargets the generator's stacks at once.

use brokkr_policy::ReachExpression;
use brokkr_types::requests::{CreateGenerator, UpdateGenerator};
use brokkr_types::resources::{Generator, GeneratorWithPak, Page};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::retarget::Subject;
use super::{App, AppError, AppResult, Guard, Requester, Retargeted, credentials, reach};
use crate::db::generators::NewGenerator;
use crate::db::{Window, assignments, generators, reach as reach_rows, stacks};
use crate::domain::Principal;

impl Requester {
    /// Refuses anyone but an admin (or the CLI).
    pub(crate) fn require_admin(self, what: &str) -> AppResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden(format!("only an admin may {what}")))
        }
    }
}

impl App {
    /// The reach of a generator created without one: `tenancy.default_reach`.
    fn default_reach(&self) -> AppResult<ReachExpression> {
        ReachExpression::parse(&self.settings.tenancy.default_reach)
            .map_err(|e| AppError::Internal(format!("tenancy.default_reach does not compile: {e}")))
    }

    pub async fn create_generator(
        &self,
        by: Requester,
        body: CreateGenerator,
    ) -> AppResult<GeneratorWithPak> {
        by.require_admin("create generators")?;
        let reach = match &body.reach {
            Some(text) => super::expressions::reach(text)?,
            None => self.default_reach()?,
        };
        self.reach_within_budget(&reach).await?;
        let mut work = self.begin().await?;
        let new = NewGenerator {
            name: body.name.as_str(),
            description: body.description.as_ref().map(|d| d.as_str()),
            reach: reach.source(),
        };
        let generator = generators::insert(&mut work.tx, new).await?;
        let principal = Principal::Generator(generator.id);
        let pak = credentials::issue(&mut work, by.actor, principal).await?;
        let details = json!({ "name": generator.name, "reach": generator.reach });
        let resource = ("generator", Some(generator.id));
        work.audit(by, "generator.created", resource, details)
            .await?;
        reach::refresh_generator(&mut work, generator.id, &reach).await?;
        work.commit().await?;
        Ok(GeneratorWithPak { generator, pak })
    }

    pub async fn list_generators(
        &self,
        by: Requester,
        window: Window,
    ) -> AppResult<Page<Generator>> {
        by.require_admin("list generators")?;
        Ok(window.page(generators::list(&self.db, window).await?))
    }

    pub async fn generator(&self, by: Requester, id: Uuid) -> AppResult<Generator> {
        self.visible_generator(by, id).await
    }

    /// Applies a partial update. A new name or reach retargets the generator's stacks (with
    /// the dry-run and confirmation guard).
    pub async fn update_generator(
        &self,
        by: Requester,
        id: Uuid,
        patch: UpdateGenerator,
        guard: Guard,
    ) -> AppResult<Retargeted<Generator>> {
        let before = self.visible_generator(by, id).await?;
        let new_reach = match &patch.reach {
            Some(text) => {
                by.require_admin("change a generator's reach")?;
                let reach = super::expressions::reach(text)?;
                self.reach_within_budget(&reach).await?;
                Some(reach)
            }
            None => None,
        };
        let mut work = self.begin_guarded(guard).await?;
        let updated = generators::update(&mut work.tx, id, &patch)
            .await?
            .ok_or(AppError::NotFound("generator"))?;
        let resource = ("generator", Some(id));
        work.audit(
            by,
            "generator.updated",
            resource,
            json!({ "name": updated.name }),
        )
        .await?;
        if let Some(new) = &new_reach {
            let details = json!({ "from": before.reach, "to": new.source() });
            work.audit(by, "generator.reach_changed", resource, details)
                .await?;
            reach::refresh_generator(&mut work, id, new).await?;
        }
        // Expressions may read `stack.generator`, the generator's name.
        if patch.reach.is_none() && patch.name.is_none() && !guard.dry_run {
            work.commit().await?;
            return Ok(Retargeted::Applied(updated));
        }
        let settled = self.settle(work, Subject::Generator(id), guard).await?;
        Ok(settled.or(|| updated))
    }

    /// Soft-deletes the generator, its stacks and their deployment objects in one transaction;
    /// every deleted stack gets a deletion marker so agents remove what they applied.
    pub async fn delete_generator(&self, by: Requester, id: Uuid) -> AppResult<()> {
        self.visible_generator(by, id).await?;
        let now = Utc::now();
        let mut work = self.begin().await?;
        let stack_ids = stacks::live_ids_of_generator(&mut work.tx, id).await?;
        for stack_id in &stack_ids {
            if let Some(deleted) = stacks::soft_delete(&mut work.tx, *stack_id, now).await? {
                super::outbox::stack_deleted(&mut work, &deleted);
            }
            let reached = assignments::agents_of_stack(&mut work.tx, *stack_id).await?;
            work.agents_changed(reached);
        }
        if !generators::soft_delete(&mut work.tx, id, now).await? {
            return Err(AppError::NotFound("generator"));
        }
        reach_rows::forget_generator(&mut work.tx, id).await?;
        crate::db::webhooks::delete_of_generator(&mut work.tx, id).await?;
        credentials::revoke(&mut work, by.actor, Principal::Generator(id)).await?;
        let details = json!({ "stacks_deleted": stack_ids.len() });
        work.audit(by, "generator.deleted", ("generator", Some(id)), details)
            .await?;
        work.commit().await
    }

    pub async fn rotate_generator_pak(
        &self,
        by: Requester,
        id: Uuid,
    ) -> AppResult<GeneratorWithPak> {
        self.visible_generator(by, id).await?;
        let mut work = self.begin().await?;
        let pak = credentials::rotate(&mut work, by.actor, Principal::Generator(id))
            .await?
            .ok_or(AppError::NotFound("generator"))?;
        let generator = generators::get_in(&mut work.tx, id)
            .await?
            .ok_or(AppError::NotFound("generator"))?;
        work.commit().await?;
        Ok(GeneratorWithPak { generator, pak })
    }
}
