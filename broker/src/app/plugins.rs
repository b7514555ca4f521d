//! WASM policy plugins (admin): upload a validator with its configuration, inspect, reconfigure
//! and delete it, bind it to scopes with a mode, read what it recorded, and try it against
//! stored deployment objects. Agents fetch modules by digest. Any change to what agents must
//! enforce wakes every agent.

use std::collections::HashMap;
use std::sync::Arc;

use brokkr_policy::plugin::{PluginError, PluginKind, digest};
use brokkr_types::plugins::{
    DryRunRequest, DryRunResult, NewBinding, PluginBinding, PluginInfo, PluginMode, PluginScope,
    PluginVerdict, TargetPolicy, UpdateBinding, UpdatePlugin,
};
use brokkr_types::resources::Page;
use brokkr_types::{Description, Name};
use serde_json::json;
use uuid::Uuid;

use super::policies::{self, Subject};
use super::{App, AppError, AppResult, Requester};
use crate::db::plugins::{self as store, NewPlugin};
use crate::db::{Window, generators, stacks};
use crate::domain::Principal;

/// An uploaded plugin, as read from the form.
#[derive(Debug)]
pub struct Upload {
    pub name: Name,
    pub description: Option<Description>,
    pub config: serde_json::Value,
    pub wasm: Vec<u8>,
}

fn plugin_error(err: PluginError) -> AppError {
    match err {
        PluginError::Config(reason) => AppError::invalid(
            "invalid_plugin_config",
            format!("the plugin rejected its configuration: {reason}"),
        ),
        PluginError::NotAComponent(_)
        | PluginError::UnknownImport(_)
        | PluginError::WrongInterface(_) => AppError::invalid("invalid_plugin", err.to_string()),
        other => AppError::invalid("plugin_failed", other.to_string()),
    }
}

impl App {
    async fn plugin_info(&self, id: Uuid) -> AppResult<PluginInfo> {
        store::get(&self.db, id)
            .await?
            .ok_or(AppError::NotFound("plugin"))
    }

    pub async fn upload_plugin(&self, by: Requester, upload: Upload) -> AppResult<PluginInfo> {
        by.require_admin("install plugins")?;
        let wasm = Arc::new(upload.wasm);
        let plugin = self
            .policies
            .compile(wasm.clone())
            .await
            .map_err(plugin_error)?;
        let config = upload.config.to_string();
        self.policies
            .check_config(plugin.clone(), config.clone())
            .await
            .map_err(plugin_error)?;
        let mut work = self.begin().await?;
        store::store_module(&mut work.tx, &plugin.digest, &wasm).await?;
        let new = NewPlugin {
            name: upload.name.as_str(),
            description: upload.description.as_ref().map(|d| d.as_str()),
            kind: plugin.kind().as_str(),
            digest: &plugin.digest,
            config: &config,
        };
        let id = store::insert(&mut work.tx, new).await?;
        let details =
            json!({ "name": upload.name, "digest": plugin.digest, "kind": plugin.kind().as_str() });
        work.audit(by, "plugin.created", ("plugin", Some(id)), details)
            .await?;
        work.commit().await?;
        self.plugin_info(id).await
    }

    pub async fn list_plugins(&self, by: Requester, window: Window) -> AppResult<Page<PluginInfo>> {
        by.require_admin("list plugins")?;
        Ok(window.page(store::list(&self.db, window).await?))
    }

    pub async fn plugin(&self, by: Requester, id: Uuid) -> AppResult<PluginInfo> {
        by.require_admin("inspect plugins")?;
        self.plugin_info(id).await
    }

    pub async fn update_plugin(
        &self,
        by: Requester,
        id: Uuid,
        patch: UpdatePlugin,
    ) -> AppResult<PluginInfo> {
        let current = self.plugin(by, id).await?;
        let config = patch.config.as_ref().map(|c| c.to_string());
        if let Some(config) = &config {
            let plugin = self.policies.plugin(&self.db, &current.digest).await?;
            self.policies
                .check_config(plugin, config.clone())
                .await
                .map_err(plugin_error)?;
        }
        let mut work = self.begin().await?;
        let description = patch.description.as_ref().map(|d| d.as_str());
        if !store::update(&mut work.tx, id, description, config.as_deref()).await? {
            return Err(AppError::NotFound("plugin"));
        }
        let details = json!({ "config_changed": config.is_some() });
        work.audit(by, "plugin.updated", ("plugin", Some(id)), details)
            .await?;
        work.everyone_changed();
        work.commit().await?;
        self.plugin_info(id).await
    }

    pub async fn delete_plugin(&self, by: Requester, id: Uuid) -> AppResult<()> {
        by.require_admin("delete plugins")?;
        let mut work = self.begin().await?;
        if !store::delete(&mut work.tx, id).await? {
            return Err(AppError::NotFound("plugin"));
        }
        work.audit(by, "plugin.deleted", ("plugin", Some(id)), json!({}))
            .await?;
        work.everyone_changed();
        work.commit().await
    }

    /// Checks a scope and returns its id (the nil UUID for the global scope).
    async fn scope_id(&self, scope: PluginScope, id: Option<Uuid>) -> AppResult<Uuid> {
        let missing = |what: &str| {
            AppError::invalid("validation_failed", format!("scope_id: no such {what}"))
        };
        match (scope, id) {
            (PluginScope::Global | PluginScope::WorkOrders, None) => Ok(Uuid::nil()),
            (PluginScope::Global | PluginScope::WorkOrders, Some(_)) => Err(AppError::invalid(
                "validation_failed",
                "scope_id: the global and work-orders scopes take none",
            )),
            (_, None) => Err(AppError::invalid(
                "validation_failed",
                "scope_id: required for the generator and stack scopes",
            )),
            (PluginScope::Generator, Some(id)) => generators::get(&self.db, id)
                .await?
                .map(|_| id)
                .ok_or_else(|| missing("generator")),
            (PluginScope::Stack, Some(id)) => stacks::get_row(&self.db, id)
                .await?
                .map(|_| id)
                .ok_or_else(|| missing("stack")),
        }
    }

    pub async fn bind_plugin(
        &self,
        by: Requester,
        id: Uuid,
        body: NewBinding,
    ) -> AppResult<PluginBinding> {
        let plugin = self.plugin(by, id).await?;
        if plugin.kind != PluginKind::Validator.as_str() {
            return Err(AppError::invalid(
                "validation_failed",
                "only validator plugins can be bound; a notifier is named by a webhook subscription",
            ));
        }
        let scope = self.scope_id(body.scope, body.scope_id).await?;
        let scope_id = body.scope.takes_id().then_some(scope);
        let mut work = self.begin().await?;
        let binding = store::bind(&mut work.tx, id, body.scope, scope_id, body.mode).await?;
        let details = json!({ "scope": body.scope, "scope_id": scope_id, "mode": body.mode });
        work.audit(by, "plugin.bound", ("plugin", Some(id)), details)
            .await?;
        work.everyone_changed();
        work.commit().await?;
        Ok(binding)
    }

    /// Changes a binding's mode in one transaction: there is no moment without the binding.
    pub async fn update_binding(
        &self,
        by: Requester,
        id: Uuid,
        binding: Uuid,
        body: UpdateBinding,
    ) -> AppResult<PluginBinding> {
        by.require_admin("change bindings")?;
        let mut work = self.begin().await?;
        let updated = store::set_mode(&mut work.tx, id, binding, body.mode)
            .await?
            .ok_or(AppError::NotFound("binding"))?;
        let details = json!({ "binding_id": binding, "mode": body.mode });
        work.audit(by, "plugin.binding_updated", ("plugin", Some(id)), details)
            .await?;
        work.everyone_changed();
        work.commit().await?;
        Ok(updated)
    }

    pub async fn unbind_plugin(&self, by: Requester, id: Uuid, binding: Uuid) -> AppResult<()> {
        by.require_admin("unbind plugins")?;
        let mut work = self.begin().await?;
        if !store::unbind(&mut work.tx, id, binding).await? {
            return Err(AppError::NotFound("binding"));
        }
        let details = json!({ "binding_id": binding });
        work.audit(by, "plugin.unbound", ("plugin", Some(id)), details)
            .await?;
        work.everyone_changed();
        work.commit().await
    }

    pub async fn plugin_verdicts(
        &self,
        by: Requester,
        id: Uuid,
        window: Window,
    ) -> AppResult<Page<PluginVerdict>> {
        self.plugin(by, id).await?;
        Ok(window.page(store::verdicts(&self.db, id, window).await?))
    }

    /// Replays the stored deployment objects of a scope through a plugin without binding it.
    pub async fn dry_run_plugin(
        &self,
        by: Requester,
        id: Uuid,
        body: DryRunRequest,
        window: Window,
    ) -> AppResult<Page<DryRunResult>> {
        let info = self.plugin(by, id).await?;
        if body.scope == PluginScope::WorkOrders {
            return Err(AppError::invalid(
                "validation_failed",
                "scope: dry runs replay stored deployment objects; the work-orders scope has none",
            ));
        }
        let scope = self.scope_id(body.scope, body.scope_id).await?;
        let policy = TargetPolicy {
            binding_id: Uuid::nil(),
            plugin_id: id,
            plugin: info.name.clone(),
            digest: info.digest.clone(),
            config: info.config.to_string(),
            mode: PluginMode::Enforce,
            scope: body.scope,
            scope_id: body.scope_id,
        };
        let mut subjects: HashMap<Uuid, Subject> = HashMap::new();
        let mut results = Vec::new();
        for object in store::objects_in_scope(&self.db, body.scope, scope, window).await? {
            let Some(subject) = self.subject_of(&mut subjects, object.stack_id).await? else {
                continue;
            };
            let documents = self.read_manifest(Arc::new(object.yaml_content)).await?;
            let one = std::slice::from_ref(&policy);
            let mut findings = self
                .policies
                .judge(&self.db, one, subject, Some(object.id), &documents)
                .await?;
            let finding = findings
                .pop()
                .ok_or_else(|| AppError::Internal("the plugin gave no finding".into()))?;
            results.push(DryRunResult {
                deployment_object_id: object.id,
                stack_id: object.stack_id,
                sequence_id: object.sequence_id,
                would_reject: policies::blocks(&finding),
                violations: finding.violations,
                error: finding.error,
            });
        }
        Ok(window.page(results))
    }

    /// The stack (deleted or not) as plugins see it, remembered per stack.
    async fn subject_of(
        &self,
        known: &mut HashMap<Uuid, Subject>,
        stack_id: Uuid,
    ) -> AppResult<Option<Subject>> {
        if let Some(found) = known.get(&stack_id) {
            return Ok(Some(found.clone()));
        }
        let Some(stack) = stacks::get_any(&self.db, stack_id).await? else {
            return Ok(None);
        };
        let generator = generators::get_any_name(&self.db, stack.generator_id)
            .await?
            .unwrap_or_default();
        let subject = Subject::new(&stack, &generator);
        known.insert(stack_id, subject.clone());
        Ok(Some(subject))
    }

    /// A stored module's bytes, for an admin or an agent.
    pub async fn plugin_module(&self, by: Requester, wanted: &str) -> AppResult<Vec<u8>> {
        if matches!(by.principal, Principal::Generator(_)) {
            return Err(AppError::forbidden(
                "generators cannot fetch plugin modules",
            ));
        }
        let wasm = store::module(&self.db, wanted)
            .await?
            .ok_or(AppError::NotFound("module"))?;
        if digest(&wasm) != wanted {
            return Err(AppError::Internal(format!(
                "stored module {wanted} does not match its digest"
            )));
        }
        Ok(wasm)
    }
}
