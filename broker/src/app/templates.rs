//! Stack templates: created and versioned by a generator (its own) or an admin (shared with
//! every generator), checked when written (template syntax with line and column, a valid JSON
//! Schema), rendered in the sandbox of `domain::template` off the async workers with their
//! parameters checked against the schema (defaults applied) first.

use std::sync::Arc;

use brokkr_types::Name;
use brokkr_types::problem::FieldError;
use brokkr_types::resources::{Page, Stack};
use brokkr_types::templates::{
    CreateTemplate, NewTemplateVersion, Parameters, Provenance, RenderRequest, Rendered,
    SchemaJson, Template, TemplateText, TemplateVersion,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{App, AppError, AppResult, Requester};
use crate::db::Window;
use crate::db::templates::{self, Content, TemplateRow};
use crate::domain::Principal;
use crate::domain::template::{self as engine, RenderLimits, Schema, TemplateError};

/// Deepest macro recursion a template may use.
const RECURSION_LIMIT: usize = 32;

/// A template named by id or by name.
#[derive(Debug, Clone)]
pub enum TemplateRef {
    Id(Uuid),
    Name(Name),
}

/// The compiled schemas of template versions and the slots renderings run in.
#[derive(Debug)]
pub struct TemplateEngine {
    schemas: moka::sync::Cache<(Uuid, u32), Arc<Schema>>,
    slots: tokio::sync::Semaphore,
}

impl TemplateEngine {
    pub fn new(concurrent_renders: usize) -> Self {
        Self {
            schemas: moka::sync::Cache::new(1_000),
            slots: tokio::sync::Semaphore::new(concurrent_renders.max(1)),
        }
    }
}

fn template_error(code: &'static str, err: &TemplateError) -> AppError {
    let location = match (err.line, err.column) {
        (Some(line), Some(column)) => format!("template_yaml: line {line}, column {column}"),
        (Some(line), None) => format!("template_yaml: line {line}"),
        _ => "template_yaml".into(),
    };
    AppError::Invalid {
        code,
        detail: err.to_string(),
        errors: vec![FieldError {
            location,
            message: err.message.clone(),
        }],
    }
}

fn invalid_parameters(errors: Vec<FieldError>) -> AppError {
    AppError::Invalid {
        code: "invalid_parameters",
        detail: format!(
            "the parameters break the template's schema: {} problem(s); see errors",
            errors.len()
        ),
        errors,
    }
}

/// A version's content as stored.
fn content<'a>(
    description: Option<&'a brokkr_types::Description>,
    yaml: &'a TemplateText,
    schema: &'a SchemaJson,
) -> Content<'a> {
    Content {
        description: description.map(|d| d.as_str()),
        template_yaml: yaml.as_str(),
        schema_json: schema.value(),
    }
}

/// The owner a new template gets: none for an admin's (shared), the generator itself.
fn owner_of(by: Requester) -> AppResult<Option<Uuid>> {
    match by.principal {
        Principal::Admin => Ok(None),
        Principal::Generator(own) => Ok(Some(own)),
        Principal::Agent(_) => Err(AppError::forbidden("agents cannot use templates")),
    }
}

impl App {
    fn render_limits(&self) -> RenderLimits {
        RenderLimits {
            fuel: self.settings.templates.fuel,
            max_output_bytes: usize::try_from(self.settings.broker.max_body_bytes)
                .unwrap_or(usize::MAX),
            recursion: RECURSION_LIMIT,
        }
    }

    /// Runs template work on the blocking pool, a few at a time.
    async fn off_workers<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        let _slot = self
            .templates
            .slots
            .acquire()
            .await
            .map_err(|_| AppError::Internal("the template engine is closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::Internal(format!("template work failed: {e}")))
    }

    /// Refuses a template that does not compile or a schema that is not a valid JSON Schema.
    async fn check_template(&self, text: &TemplateText, schema: &SchemaJson) -> AppResult<()> {
        let (text, schema, limits) = (
            text.as_str().to_string(),
            schema.value().clone(),
            self.render_limits(),
        );
        let (syntax, compiled) = self
            .off_workers(move || {
                (
                    engine::check_syntax(&text, limits),
                    Schema::compile(&schema),
                )
            })
            .await?;
        syntax.map_err(|e| template_error("invalid_template", &e))?;
        compiled.map_err(|e| AppError::invalid("invalid_schema", format!("schema_json: {e}")))?;
        Ok(())
    }

    /// A live template `by` may read: admins all, a generator its own and the shared ones.
    async fn visible_template(&self, by: Requester, id: Uuid) -> AppResult<TemplateRow> {
        let row = templates::get(&self.db, id)
            .await?
            .ok_or(AppError::NotFound("template"))?;
        match by.principal {
            Principal::Admin => Ok(row),
            Principal::Generator(own) if row.generator_id.is_none_or(|g| g == own) => Ok(row),
            _ => Err(AppError::NotFound("template")),
        }
    }

    /// A template `by` may change: admins any, a generator its own.
    async fn owned_template(&self, by: Requester, id: Uuid) -> AppResult<TemplateRow> {
        let row = self.visible_template(by, id).await?;
        match (by.principal, row.generator_id) {
            (Principal::Admin, _) => Ok(row),
            (Principal::Generator(own), Some(owner)) if own == owner => Ok(row),
            _ => Err(AppError::forbidden(
                "only an admin may change a shared template",
            )),
        }
    }

    /// A template by id or name, as the generator `owner` (or an admin, `None`) sees it: by
    /// name, its own first, then a shared one.
    pub(crate) async fn resolve_template(
        &self,
        owner: Option<Uuid>,
        named: &TemplateRef,
    ) -> AppResult<TemplateRow> {
        let by = match owner {
            Some(g) => Requester::from(Principal::Generator(g)),
            None => Requester::SYSTEM,
        };
        match named {
            TemplateRef::Id(id) => self.visible_template(by, *id).await,
            TemplateRef::Name(name) => {
                templates::find_by_name(&self.db, owner, name.as_str(), true)
                    .await?
                    .ok_or(AppError::NotFound("template"))
            }
        }
    }

    /// The id of the template `by` names (by name: its own first, then a shared one).
    pub async fn template_id(&self, by: Requester, named: TemplateRef) -> AppResult<Uuid> {
        Ok(self.resolve_template(owner_of(by)?, &named).await?.id)
    }

    async fn version_of(
        &self,
        row: &TemplateRow,
        version: Option<u32>,
    ) -> AppResult<TemplateVersion> {
        let wanted = version.unwrap_or(u32::try_from(row.latest_version).unwrap_or(0));
        templates::version(&self.db, row.id, wanted)
            .await?
            .ok_or(AppError::NotFound("template version"))
    }

    async fn shown_template(&self, row: TemplateRow) -> AppResult<Template> {
        let latest = self.version_of(&row, None).await?;
        Ok(row.with_latest(latest))
    }

    pub async fn create_template(
        &self,
        by: Requester,
        body: CreateTemplate,
    ) -> AppResult<Template> {
        let owner = owner_of(by)?;
        self.check_template(&body.template_yaml, &body.schema_json)
            .await?;
        let content = content(
            body.description.as_ref(),
            &body.template_yaml,
            &body.schema_json,
        );
        let mut work = self.begin().await?;
        let row = templates::insert(&mut work.tx, owner, body.name.as_str(), content).await?;
        let details = json!({ "name": row.name, "version": 1 });
        work.audit(by, "template.created", ("template", Some(row.id)), details)
            .await?;
        work.commit().await?;
        self.shown_template(row).await
    }

    pub async fn list_templates(&self, by: Requester, window: Window) -> AppResult<Page<Template>> {
        let rows = templates::list(&self.db, owner_of(by)?, window).await?;
        let mut shown = Vec::with_capacity(rows.len());
        for row in rows {
            shown.push(self.shown_template(row).await?);
        }
        Ok(window.page(shown))
    }

    pub async fn template(&self, by: Requester, id: Uuid) -> AppResult<Template> {
        let row = self.visible_template(by, id).await?;
        self.shown_template(row).await
    }

    pub async fn template_versions(
        &self,
        by: Requester,
        id: Uuid,
        window: Window,
    ) -> AppResult<Page<TemplateVersion>> {
        self.visible_template(by, id).await?;
        Ok(window.page(templates::versions(&self.db, id, window).await?))
    }

    /// Adds the next version (a template is never edited in place).
    pub async fn add_template_version(
        &self,
        by: Requester,
        named: TemplateRef,
        body: NewTemplateVersion,
    ) -> AppResult<Template> {
        let found = self.resolve_template(owner_of(by)?, &named).await?;
        let row = self.owned_template(by, found.id).await?;
        self.check_template(&body.template_yaml, &body.schema_json)
            .await?;
        let content = content(
            body.description.as_ref(),
            &body.template_yaml,
            &body.schema_json,
        );
        let mut work = self.begin().await?;
        let version = templates::add_version(&mut work.tx, row.id, content)
            .await?
            .ok_or(AppError::NotFound("template"))?;
        let details = json!({ "name": row.name, "version": version });
        work.audit(
            by,
            "template.version_created",
            ("template", Some(row.id)),
            details,
        )
        .await?;
        work.commit().await?;
        self.template(by, row.id).await
    }

    /// Soft-deletes a template; stacks made from it keep their objects and provenance.
    pub async fn delete_template(&self, by: Requester, id: Uuid) -> AppResult<()> {
        self.owned_template(by, id).await?;
        let mut work = self.begin().await?;
        if !templates::delete(&mut work.tx, id).await? {
            return Err(AppError::NotFound("template"));
        }
        work.audit(by, "template.deleted", ("template", Some(id)), json!({}))
            .await?;
        work.commit().await
    }

    /// The compiled schema of a version (compiled once).
    async fn schema(&self, version: &TemplateVersion) -> AppResult<Arc<Schema>> {
        let key = (version.template_id, version.version);
        if let Some(found) = self.templates.schemas.get(&key) {
            return Ok(found);
        }
        let source = version.schema_json.clone();
        let compiled = self
            .off_workers(move || Schema::compile(&source))
            .await?
            .map_err(|e| AppError::Internal(format!("a stored schema does not compile: {e}")))?;
        let compiled = Arc::new(compiled);
        self.templates.schemas.insert(key, compiled.clone());
        Ok(compiled)
    }

    /// Checks the parameters (defaults applied) and renders a version for `stack`.
    async fn render_version(
        &self,
        version: &TemplateVersion,
        parameters: Parameters,
        stack: Value,
    ) -> AppResult<(String, Value)> {
        let schema = self.schema(version).await?;
        let source = version.template_yaml.clone();
        let limits = self.render_limits();
        let (filled, rendered) = self
            .off_workers(move || match schema.check(&parameters.into_value()) {
                Err(errors) => (Err(errors), None),
                Ok(filled) => {
                    let rendered = engine::render(&source, &filled, &stack, limits);
                    (Ok(filled), Some(rendered))
                }
            })
            .await?;
        let filled = filled.map_err(invalid_parameters)?;
        let yaml = rendered
            .unwrap_or_else(|| Ok(String::new()))
            .map_err(|e| template_error("template_render_failed", &e))?;
        Ok((yaml, filled))
    }

    /// Renders a template without storing anything (the `stack` variable is a placeholder).
    pub async fn render_template(
        &self,
        by: Requester,
        id: Uuid,
        request: RenderRequest,
    ) -> AppResult<Rendered> {
        let row = self.visible_template(by, id).await?;
        let version = self.version_of(&row, request.version).await?;
        let stack = json!({ "name": "preview", "labels": [], "annotations": {} });
        let (yaml, parameters) = self
            .render_version(&version, request.parameters, stack)
            .await?;
        Ok(Rendered {
            template_id: row.id,
            version: version.version,
            parameters,
            yaml,
        })
    }

    /// Renders the template `named` (as the stack's owner sees it) for `stack`: the YAML and
    /// where it came from.
    pub(crate) async fn render_for_stack(
        &self,
        stack: &Stack,
        named: &TemplateRef,
        version: Option<u32>,
        parameters: Parameters,
    ) -> AppResult<(String, Provenance)> {
        let row = self
            .resolve_template(Some(stack.generator_id), named)
            .await?;
        let version = self.version_of(&row, version).await?;
        let context =
            json!({ "name": stack.name, "labels": stack.labels, "annotations": stack.annotations });
        let (yaml, filled) = self.render_version(&version, parameters, context).await?;
        let provenance = Provenance {
            template_id: row.id,
            template_version: version.version,
            parameters: filled,
        };
        Ok((yaml, provenance))
    }
}
