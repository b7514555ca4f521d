//! Typed calls for what platform teams run the broker with: templates, webhooks, plugins,
//! enrollment tokens, and deleting resources.

use brokkr_types::Name;
use brokkr_types::enrollment::{CreateEnrollmentToken, EnrollmentToken, EnrollmentTokenWithSecret};
use brokkr_types::plugins::{DryRunRequest, DryRunResult, NewBinding, PluginBinding, PluginInfo};
use brokkr_types::resources::Page;
use brokkr_types::templates::{RenderRequest, Rendered, Template};
use brokkr_types::webhooks::{
    CreateWebhook, TestEventSent, Webhook, WebhookDelivery, WebhookWithSecret,
};
use reqwest::Method;
use uuid::Uuid;

use crate::{Call, Client, ClientResult};

/// A resource `delete` removes, with its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletable {
    Stack(Uuid),
    Agent(Uuid),
    Generator(Uuid),
    WorkOrder(Uuid),
    Webhook(Uuid),
    Plugin(Uuid),
    Template(Uuid),
    EnrollmentToken(Uuid),
}

impl Deletable {
    fn path(self) -> String {
        match self {
            Self::Stack(id) => format!("/api/v1/stacks/{id}"),
            Self::Agent(id) => format!("/api/v1/agents/{id}"),
            Self::Generator(id) => format!("/api/v1/generators/{id}"),
            Self::WorkOrder(id) => format!("/api/v1/work-orders/{id}"),
            Self::Webhook(id) => format!("/api/v1/webhooks/{id}"),
            Self::Plugin(id) => format!("/api/v1/plugins/{id}"),
            Self::Template(id) => format!("/api/v1/templates/{id}"),
            Self::EnrollmentToken(id) => format!("/api/v1/enrollment-tokens/{id}"),
        }
    }
}

/// A plugin to upload: the component and what describes it.
#[derive(Clone)]
pub struct PluginUpload {
    pub name: String,
    pub description: Option<String>,
    /// JSON text (the broker's default: `{}`).
    pub config: Option<String>,
    pub wasm: Vec<u8>,
}

impl std::fmt::Debug for PluginUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginUpload")
            .field("name", &self.name)
            .field("wasm_bytes", &self.wasm.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Deletes a resource (a work order: cancels its pending runs).
    pub async fn delete(&self, what: Deletable) -> ClientResult<()> {
        self.send(Call::new(Method::DELETE, what.path())).await?;
        Ok(())
    }

    pub async fn templates(&self, limit: u32, offset: u64) -> ClientResult<Page<Template>> {
        self.page("/api/v1/templates".into(), limit, offset).await
    }

    /// A template by id or name.
    pub async fn template(&self, id_or_name: &Name) -> ClientResult<Template> {
        self.get_json(format!("/api/v1/templates/{}", id_or_name.as_str()))
            .await
    }

    /// Renders a template (by id or name) without storing anything.
    pub async fn render_template(
        &self,
        id_or_name: &Name,
        request: &RenderRequest,
    ) -> ClientResult<Rendered> {
        let path = format!("/api/v1/templates/{}/render", id_or_name.as_str());
        let mut call = Call::new(Method::POST, path);
        call.body = Some(crate::api::body(request)?);
        call.repeatable = true; // rendering stores nothing
        self.send(call).await?.json()
    }

    pub async fn webhooks(&self, limit: u32, offset: u64) -> ClientResult<Page<Webhook>> {
        self.page("/api/v1/webhooks".into(), limit, offset).await
    }

    pub async fn webhook(&self, id: Uuid) -> ClientResult<Webhook> {
        self.get_json(format!("/api/v1/webhooks/{id}")).await
    }

    /// Subscribes a URL to events; the answer carries the signing secret, shown once.
    pub async fn create_webhook(&self, request: &CreateWebhook) -> ClientResult<WebhookWithSecret> {
        let mut call = Call::new(Method::POST, "/api/v1/webhooks");
        call.body = Some(crate::api::body(request)?);
        self.send(call).await?.json()
    }

    /// Sends a `webhook.test` event to the subscription.
    pub async fn test_webhook(&self, id: Uuid) -> ClientResult<TestEventSent> {
        let call = Call::new(Method::POST, format!("/api/v1/webhooks/{id}/test"));
        self.send(call).await?.json()
    }

    pub async fn webhook_deliveries(
        &self,
        id: Uuid,
        limit: u32,
        offset: u64,
    ) -> ClientResult<Page<WebhookDelivery>> {
        self.page(format!("/api/v1/webhooks/{id}/deliveries"), limit, offset)
            .await
    }

    pub async fn plugins(&self, limit: u32, offset: u64) -> ClientResult<Page<PluginInfo>> {
        self.page("/api/v1/plugins".into(), limit, offset).await
    }

    pub async fn plugin(&self, id: Uuid) -> ClientResult<PluginInfo> {
        self.get_json(format!("/api/v1/plugins/{id}")).await
    }

    /// Uploads a WASM component (admin); the broker compiles and checks it before storing.
    pub async fn upload_plugin(&self, upload: PluginUpload) -> ClientResult<PluginInfo> {
        let mut call = Call::new(Method::POST, "/api/v1/plugins");
        call.form.push(("name", upload.name.into_bytes(), None));
        if let Some(description) = upload.description {
            call.form
                .push(("description", description.into_bytes(), None));
        }
        if let Some(config) = upload.config {
            call.form.push(("config", config.into_bytes(), None));
        }
        let file = Some("plugin.wasm".to_string());
        call.form.push(("wasm", upload.wasm, file));
        self.send(call).await?.json()
    }

    /// Binds a plugin to a scope in a mode.
    pub async fn bind_plugin(&self, id: Uuid, binding: &NewBinding) -> ClientResult<PluginBinding> {
        let mut call = Call::new(Method::POST, format!("/api/v1/plugins/{id}/bindings"));
        call.body = Some(crate::api::body(binding)?);
        self.send(call).await?.json()
    }

    /// Judges the newest deployment objects of a scope with the plugin; changes nothing.
    pub async fn dry_run_plugin(
        &self,
        id: Uuid,
        request: &DryRunRequest,
        limit: u32,
    ) -> ClientResult<Page<DryRunResult>> {
        let mut call = Call::new(Method::POST, format!("/api/v1/plugins/{id}/dry-run"));
        call.query = vec![("limit".into(), limit.to_string())];
        call.body = Some(crate::api::body(request)?);
        call.repeatable = true; // a dry run changes nothing
        self.send(call).await?.json()
    }

    /// A token agents enroll with (admin); the answer carries its secret, shown once.
    pub async fn create_enrollment_token(
        &self,
        request: &CreateEnrollmentToken,
    ) -> ClientResult<EnrollmentTokenWithSecret> {
        let mut call = Call::new(Method::POST, "/api/v1/enrollment-tokens");
        call.body = Some(crate::api::body(request)?);
        self.send(call).await?.json()
    }

    pub async fn enrollment_tokens(
        &self,
        limit: u32,
        offset: u64,
    ) -> ClientResult<Page<EnrollmentToken>> {
        self.page("/api/v1/enrollment-tokens".into(), limit, offset)
            .await
    }
}
