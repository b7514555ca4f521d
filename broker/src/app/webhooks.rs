//! Webhook subscriptions: created, listed, read, changed and deleted by an admin (any
//! subscription) or a generator (its own, which only ever hear of its own stacks and the
//! agents in its reach). The signing secret is shown once, at creation and rotation; the URL's
//! query string and header values are never shown again.

use brokkr_policy::plugin::PluginKind;
use brokkr_types::resources::Page;
use brokkr_types::webhooks::{
    CreateWebhook, EVENT_TYPES, EventTypeInfo, MaxAttempts, SecretInfo, TestEventSent,
    TimeoutSeconds, UpdateWebhook, Webhook, WebhookUrl, WebhookWithSecret,
};
use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::outbox::DomainEvent;
use super::webhook_secrets::{self, Opened};
use super::{App, AppError, AppResult, Requester};
use crate::db::webhooks::{self, WebhookRow};
use crate::db::{Window, plugins};
use crate::domain::Principal;
use crate::domain::address_policy::AddressPolicy;

/// The owner a new subscription gets: none for an admin, the generator itself.
fn owner_of(by: Requester) -> AppResult<Option<Uuid>> {
    match by.principal {
        Principal::Admin => Ok(None),
        Principal::Generator(own) => Ok(Some(own)),
        Principal::Agent(_) => Err(AppError::forbidden("agents cannot manage webhooks")),
    }
}

fn json_list(items: impl IntoIterator<Item = String>) -> String {
    serde_json::to_string(&items.into_iter().collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl App {
    /// Where deliveries may go: public addresses and `webhooks.allowed_cidrs`.
    pub fn address_policy(&self) -> AddressPolicy {
        AddressPolicy::new(
            self.settings
                .webhooks
                .allowed_networks()
                .unwrap_or_default(),
        )
    }

    pub fn event_types(&self) -> Vec<EventTypeInfo> {
        EVENT_TYPES
            .iter()
            .map(|(kind, description)| EventTypeInfo {
                event_type: (*kind).to_string(),
                description: (*description).to_string(),
            })
            .collect()
    }

    /// A live subscription `by` may manage (admins all, a generator its own).
    pub(crate) async fn visible_webhook(&self, by: Requester, id: Uuid) -> AppResult<WebhookRow> {
        let row = webhooks::get(&self.db, id)
            .await?
            .ok_or(AppError::NotFound("webhook"))?;
        match by.principal {
            Principal::Admin => Ok(row),
            Principal::Generator(own) if row.generator_id == Some(own) => Ok(row),
            _ => Err(AppError::NotFound("webhook")),
        }
    }

    /// The subscription as shown (secrets never).
    async fn shown(&self, row: WebhookRow) -> AppResult<Webhook> {
        let now = Utc::now();
        let secrets = webhooks::secrets_of(&self.db, row.id)
            .await?
            .into_iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| SecretInfo {
                created_at: s.created_at,
                expires_at: s.expires_at,
            })
            .collect();
        let url = match row.url_query {
            Some(_) => format!("{}?…", row.url),
            None => row.url.clone(),
        };
        Ok(Webhook {
            id: row.id,
            name: row.name,
            generator_id: row.generator_id,
            url,
            event_types: parse_list(&row.event_types),
            filter: row.filter,
            header_names: parse_list(&row.header_names),
            notifier_plugin_id: row.notifier_plugin_id,
            max_attempts: u32::try_from(row.max_attempts).unwrap_or_default(),
            timeout_seconds: u32::try_from(row.timeout_seconds).unwrap_or_default(),
            enabled: row.enabled,
            secrets,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// A URL whose host is an address deliveries may not reach is refused when written (a
    /// name is checked again, resolved, at every connection).
    fn check_destination(&self, url: &WebhookUrl) -> AppResult<()> {
        match url.host().parse::<std::net::IpAddr>() {
            Ok(ip) if !self.address_policy().permits(ip) => Err(AppError::invalid(
                "webhook_address_refused",
                format!(
                    "url: {ip} is a loopback, private, link-local or otherwise internal address; \
                     deliveries go only to public addresses unless webhooks.allowed_cidrs admits it"
                ),
            )),
            _ => Ok(()),
        }
    }

    async fn check_notifier(&self, id: Option<Uuid>) -> AppResult<()> {
        let Some(id) = id else { return Ok(()) };
        let plugin = plugins::get(&self.db, id).await?.ok_or_else(|| {
            AppError::invalid("validation_failed", "notifier_plugin_id: no such plugin")
        })?;
        if plugin.kind != PluginKind::Notifier.as_str() {
            return Err(AppError::invalid(
                "validation_failed",
                format!(
                    "notifier_plugin_id: {:?} is a {}, not a notifier",
                    plugin.name, plugin.kind
                ),
            ));
        }
        Ok(())
    }

    pub async fn create_webhook(
        &self,
        by: Requester,
        body: CreateWebhook,
    ) -> AppResult<WebhookWithSecret> {
        let owner = owner_of(by)?;
        if let Some(filter) = &body.filter {
            super::expressions::event_filter(filter)?;
        }
        let keys = self.keys()?;
        self.check_destination(&body.url)?;
        self.check_notifier(body.notifier_plugin_id).await?;
        let now = Utc::now();
        let mut row = WebhookRow {
            id: Uuid::new_v4(),
            generator_id: owner,
            name: body.name.into_inner(),
            url: body.url.base().to_string(),
            url_query: None,
            event_types: json_list(
                body.event_types
                    .patterns()
                    .iter()
                    .map(|p| p.as_str().to_string()),
            ),
            filter: body.filter.map(|f| f.as_str().to_string()),
            header_names: json_list(body.headers.names()),
            headers: None,
            key_id: None,
            notifier_plugin_id: body.notifier_plugin_id,
            max_attempts: body
                .max_attempts
                .unwrap_or(MaxAttempts::DEFAULT)
                .get()
                .into(),
            timeout_seconds: body
                .timeout_seconds
                .unwrap_or(TimeoutSeconds::DEFAULT)
                .get()
                .into(),
            enabled: body.enabled.unwrap_or(true),
            created_at: now,
            updated_at: now,
        };
        let opened = Opened {
            url_query: body.url.query().map(str::to_string),
            headers: body.headers.into(),
        };
        webhook_secrets::seal(&keys, &mut row, &opened)?;
        let mut work = self.begin().await?;
        webhooks::insert(&mut work.tx, &row).await?;
        let secret = webhook_secrets::add_secret(&mut work, &keys, row.id).await?;
        let details = json!({ "name": row.name, "url": row.url, "event_types": parse_list(&row.event_types) });
        work.audit(by, "webhook.created", ("webhook", Some(row.id)), details)
            .await?;
        work.commit().await?;
        Ok(WebhookWithSecret {
            webhook: self.shown(row).await?,
            secret: secret.expose().to_string(),
        })
    }

    pub async fn list_webhooks(&self, by: Requester, window: Window) -> AppResult<Page<Webhook>> {
        let owner = owner_of(by)?;
        let rows = webhooks::list(&self.db, owner, window).await?;
        let mut shown = Vec::with_capacity(rows.len());
        for row in rows {
            shown.push(self.shown(row).await?);
        }
        Ok(window.page(shown))
    }

    pub async fn webhook(&self, by: Requester, id: Uuid) -> AppResult<Webhook> {
        let row = self.visible_webhook(by, id).await?;
        self.shown(row).await
    }

    /// A partial update. A new URL or new headers are sealed anew (with the active key).
    pub async fn update_webhook(
        &self,
        by: Requester,
        id: Uuid,
        patch: UpdateWebhook,
    ) -> AppResult<Webhook> {
        let mut row = self.visible_webhook(by, id).await?;
        if let Some(Some(filter)) = &patch.filter {
            super::expressions::event_filter(filter)?;
        }
        if let Some(url) = &patch.url {
            self.check_destination(url)?;
        }
        if let Some(plugin) = patch.notifier_plugin_id {
            self.check_notifier(plugin).await?;
        }
        if patch.url.is_some() || patch.headers.is_some() {
            let keys = self.keys()?;
            let mut opened = webhook_secrets::open(&keys, &row)?;
            if let Some(url) = &patch.url {
                row.url = url.base().to_string();
                opened.url_query = url.query().map(str::to_string);
            }
            if let Some(headers) = patch.headers.clone() {
                row.header_names = json_list(headers.names());
                opened.headers = headers.into();
            }
            webhook_secrets::seal(&keys, &mut row, &opened)?;
        }
        apply_plain_fields(&mut row, patch);
        row.updated_at = Utc::now();
        let mut work = self.begin().await?;
        webhooks::update(&mut work.tx, &row).await?;
        let details = json!({ "name": row.name, "url": row.url, "enabled": row.enabled });
        work.audit(by, "webhook.updated", ("webhook", Some(id)), details)
            .await?;
        work.commit().await?;
        self.shown(row).await
    }

    pub async fn delete_webhook(&self, by: Requester, id: Uuid) -> AppResult<()> {
        self.visible_webhook(by, id).await?;
        let mut work = self.begin().await?;
        if !webhooks::delete(&mut work.tx, id).await? {
            return Err(AppError::NotFound("webhook"));
        }
        work.audit(by, "webhook.deleted", ("webhook", Some(id)), json!({}))
            .await?;
        work.commit().await
    }

    /// A new signing secret; the old ones keep signing for `webhooks.secret_overlap_seconds`.
    pub async fn rotate_webhook_secret(
        &self,
        by: Requester,
        id: Uuid,
    ) -> AppResult<WebhookWithSecret> {
        self.visible_webhook(by, id).await?;
        let keys = self.keys()?;
        let now = Utc::now();
        let overlap =
            i64::try_from(self.settings.webhooks.secret_overlap_seconds).unwrap_or(i64::MAX);
        let until = now + Duration::seconds(overlap.min(365 * 86_400));
        let mut work = self.begin().await?;
        webhooks::expire_secrets(&mut work.tx, id, until, now).await?;
        let secret = webhook_secrets::add_secret(&mut work, &keys, id).await?;
        webhooks::touch(&mut work.tx, id).await?;
        let details = json!({ "old_secrets_expire_at": until });
        work.audit(by, "webhook.secret_rotated", ("webhook", Some(id)), details)
            .await?;
        work.commit().await?;
        Ok(WebhookWithSecret {
            webhook: self.webhook(by, id).await?,
            secret: secret.expose().to_string(),
        })
    }

    /// Sends a `webhook.test` event to this subscription through the normal delivery path.
    pub async fn test_webhook(&self, by: Requester, id: Uuid) -> AppResult<TestEventSent> {
        let row = self.visible_webhook(by, id).await?;
        let mut work = self.begin_unaudited().await?;
        let event = DomainEvent::webhook_test(id, &row.name, row.generator_id);
        let event_id = work.emit(event);
        work.commit().await?;
        Ok(TestEventSent { event_id })
    }
}

/// Applies the fields of a patch that are stored as they are.
fn apply_plain_fields(row: &mut WebhookRow, patch: UpdateWebhook) {
    if let Some(name) = patch.name {
        row.name = name.into_inner();
    }
    if let Some(types) = patch.event_types {
        row.event_types = json_list(types.patterns().iter().map(|p| p.as_str().to_string()));
    }
    if let Some(filter) = patch.filter {
        row.filter = filter.map(|f| f.as_str().to_string());
    }
    if let Some(plugin) = patch.notifier_plugin_id {
        row.notifier_plugin_id = plugin;
    }
    if let Some(attempts) = patch.max_attempts {
        row.max_attempts = attempts.get().into();
    }
    if let Some(timeout) = patch.timeout_seconds {
        row.timeout_seconds = timeout.get().into();
    }
    if let Some(enabled) = patch.enabled {
        row.enabled = enabled;
    }
}
