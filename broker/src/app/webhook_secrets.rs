//! What webhook subscriptions keep secret, sealed at rest by the key ring: the URL's query
//! string, the values of custom headers and the signing secrets. Each sealed value is bound to
//! its row; `rekey` re-seals everything under the active key so an old key can be dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::{App, AppError, AppResult, Requester, Work};
use crate::db::webhooks::{self, SecretRow, WebhookRow};
use crate::domain::keyring::{KeyError, KeyRing};
use crate::domain::signature::SigningSecret;

/// A subscription's secrets, opened.
#[derive(Clone, Default)]
pub struct Opened {
    pub url_query: Option<String>,
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn url_context(id: Uuid) -> String {
    format!("webhook:{id}:url_query")
}

fn headers_context(id: Uuid) -> String {
    format!("webhook:{id}:headers")
}

fn secret_context(id: Uuid) -> String {
    format!("webhook_secret:{id}")
}

fn key_error(e: KeyError) -> AppError {
    AppError::Internal(format!("webhook secrets: {e}"))
}

impl App {
    /// The key ring; without one, subscriptions cannot be made.
    pub(crate) fn keys(&self) -> AppResult<Arc<KeyRing>> {
        self.key_ring.clone().ok_or_else(|| {
            AppError::conflict(
                "webhooks_not_configured",
                "webhooks need an encryption key: set webhooks.encryption_keys \
                 (`brokkr-broker webhooks generate-key` prints one)",
            )
        })
    }
}

/// Seals `opened` into `row` under the active key.
pub(crate) fn seal(keys: &KeyRing, row: &mut WebhookRow, opened: &Opened) -> AppResult<()> {
    row.url_query = opened
        .url_query
        .as_deref()
        .map(|q| keys.seal(q.as_bytes(), &url_context(row.id)))
        .transpose()
        .map_err(key_error)?;
    row.headers = if opened.headers.is_empty() {
        None
    } else {
        let plain = serde_json::to_vec(&opened.headers).unwrap_or_default();
        Some(
            keys.seal(&plain, &headers_context(row.id))
                .map_err(key_error)?,
        )
    };
    row.key_id =
        (row.url_query.is_some() || row.headers.is_some()).then(|| keys.active_id().to_string());
    Ok(())
}

/// Opens the sealed columns of `row`.
pub(crate) fn open(keys: &KeyRing, row: &WebhookRow) -> AppResult<Opened> {
    let url_query = row
        .url_query
        .as_deref()
        .map(|sealed| keys.open(sealed, &url_context(row.id)))
        .transpose()
        .map_err(key_error)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let headers = match row.headers.as_deref() {
        Some(sealed) => {
            let bytes = keys
                .open(sealed, &headers_context(row.id))
                .map_err(key_error)?;
            serde_json::from_slice(&bytes).unwrap_or_default()
        }
        None => BTreeMap::new(),
    };
    Ok(Opened { url_query, headers })
}

/// A fresh signing secret for `webhook`, stored sealed in `work`.
pub(crate) async fn add_secret(
    work: &mut Work,
    keys: &KeyRing,
    webhook: Uuid,
) -> AppResult<SigningSecret> {
    let secret = SigningSecret::generate();
    let id = Uuid::new_v4();
    let row = SecretRow {
        id,
        webhook_id: webhook,
        secret: keys
            .seal(secret.expose().as_bytes(), &secret_context(id))
            .map_err(key_error)?,
        key_id: keys.active_id().to_string(),
        created_at: Utc::now(),
        expires_at: None,
    };
    webhooks::insert_secret(&mut work.tx, &row).await?;
    Ok(secret)
}

/// A stored signing secret, opened.
pub(crate) fn open_secret(keys: &KeyRing, row: &SecretRow) -> AppResult<SigningSecret> {
    let bytes = keys
        .open(&row.secret, &secret_context(row.id))
        .map_err(key_error)?;
    SigningSecret::parse(&String::from_utf8_lossy(&bytes))
        .ok_or_else(|| AppError::Internal("a stored signing secret is malformed".into()))
}

/// How many rows a rekey pass re-seals per transaction.
const REKEY_BATCH: i64 = 200;

impl App {
    /// Re-seals every subscription and secret sealed with another key than the active one, so
    /// the old key can be dropped from the ring. Returns how many values were re-sealed.
    pub async fn rekey_webhooks(&self, by: Requester) -> AppResult<u64> {
        by.require_admin("re-encrypt webhook secrets")?;
        let keys = self.keys()?;
        let mut total = 0;
        loop {
            let mut work = self.begin().await?;
            let active = keys.active_id().to_string();
            let rows = webhooks::sealed_with_other_key(&mut work.tx, &active, REKEY_BATCH).await?;
            let secrets =
                webhooks::secrets_with_other_key(&mut work.tx, &active, REKEY_BATCH).await?;
            if rows.is_empty() && secrets.is_empty() {
                return Ok(total);
            }
            for mut row in rows {
                let opened = open(&keys, &row)?;
                seal(&keys, &mut row, &opened)?;
                let key = row.key_id.clone().unwrap_or_default();
                webhooks::reseal(
                    &mut work.tx,
                    row.id,
                    row.url_query.as_deref(),
                    row.headers.as_deref(),
                    &key,
                )
                .await?;
                total += 1;
            }
            for secret in secrets {
                let context = secret_context(secret.id);
                let plain = keys.open(&secret.secret, &context).map_err(key_error)?;
                let sealed = keys.seal(&plain, &context).map_err(key_error)?;
                webhooks::reseal_secret(&mut work.tx, secret.id, &sealed, &active).await?;
                total += 1;
            }
            let details = json!({ "active_key": active, "resealed_so_far": total });
            work.audit(by, "webhook.rekeyed", ("webhook", None), details)
                .await?;
            work.commit().await?;
        }
    }

    /// Refuses to run when stored values were sealed with a key the ring lacks (naming it).
    pub async fn check_webhook_keys(&self) -> AppResult<()> {
        let used = webhooks::key_ids_in_use(&self.db).await?;
        let missing: Vec<&String> = used
            .iter()
            .filter(|id| !self.key_ring.as_ref().is_some_and(|k| k.contains(id)))
            .collect();
        match missing.first() {
            None => Ok(()),
            Some(id) => Err(AppError::Internal(format!(
                "webhook secrets are encrypted with key {id:?}, which is not in webhooks.encryption_keys; \
                 configure it (and run `brokkr-broker webhooks rekey` before dropping it)"
            ))),
        }
    }
}
