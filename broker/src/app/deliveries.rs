//! Deliveries as use cases: claiming due deliveries with what is needed to send them (the
//! subscription opened from its row, cached per row version; the event), recording how each
//! attempt ended (retry with backoff, or dead: audited, counted and announced as
//! `webhook.dead`), listing them, redelivering, and pruning old history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use brokkr_policy::plugin::Plugin;
use brokkr_types::resources::Page;
use brokkr_types::webhooks::{DeliveryStatus, WebhookDelivery};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::outbox::DomainEvent;
use super::webhook_secrets::{self, open_secret};
use super::{App, AppError, AppResult, Requester};
use crate::db::deliveries::{self, Claim, Completion, DeliveryRow, NewDelivery};
use crate::db::outbox::{self, StoredEvent};
use crate::db::webhooks::{self, WebhookRow};
use crate::db::{Window, plugins};
use crate::domain::signature::SigningSecret;

/// A subscription's notifier: the plugin and its configuration.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub plugin: Arc<Plugin>,
    pub config: String,
}

/// Everything needed to send to one subscription, opened from one version of its row.
pub struct Target {
    pub id: Uuid,
    pub name: String,
    pub owner: Option<Uuid>,
    /// The whole URL, query string included (a secret).
    pub url: String,
    /// Custom headers (values are secrets).
    pub headers: Vec<(String, String)>,
    secrets: Vec<(SigningSecret, Option<DateTime<Utc>>)>,
    /// `Err` when the subscription names a notifier that cannot be loaded.
    pub notifier: Result<Option<Notifier>, String>,
    pub timeout: Duration,
    pub max_attempts: i64,
    version: DateTime<Utc>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The secrets that sign at `now`.
    pub fn secrets_at(&self, now: DateTime<Utc>) -> Vec<SigningSecret> {
        self.secrets
            .iter()
            .filter(|(_, expires)| expires.is_none_or(|at| at > now))
            .map(|(s, _)| s.clone())
            .collect()
    }
}

/// Opened subscriptions, by id, each valid for the row version it was opened from.
#[derive(Debug, Default)]
pub struct Targets(Mutex<HashMap<Uuid, Arc<Target>>>);

/// A claimed delivery: the row (its `attempts` is this attempt's number), where it goes (`None`
/// when the subscription was deleted or disabled; `Err` when this broker cannot open its
/// secrets, say a key it lacks during a rotation) and the event.
#[derive(Debug)]
pub struct Claimed {
    pub delivery: DeliveryRow,
    pub target: Result<Option<Arc<Target>>, String>,
    pub event: Option<StoredEvent>,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Ending {
    Delivered,
    /// The notifier chose not to send the event.
    Dropped,
    /// Worth another attempt (after `after`, when the receiver said so).
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Retrying cannot help.
    Dead {
        error: String,
    },
}

/// One attempt's report.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub delivery: Uuid,
    /// The claim's `attempts`.
    pub attempt: i64,
    /// The subscription's `max_attempts` (1 when it is gone).
    pub max_attempts: i64,
    pub status_code: Option<u16>,
    pub latency: Duration,
    pub ending: Ending,
}

/// The delay before the attempt after `failed` failed attempts: doubling from `base`, capped,
/// with jitter.
pub fn retry_delay(base: Duration, max: Duration, failed: i64) -> Duration {
    let nth = usize::try_from(failed.saturating_sub(1).clamp(0, 60)).unwrap_or(0);
    ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(nth)
        .unwrap_or(max)
        .min(max)
}

fn wire(row: DeliveryRow) -> WebhookDelivery {
    let status = DeliveryStatus::parse(&row.status).unwrap_or(DeliveryStatus::Pending);
    let open = matches!(
        status,
        DeliveryStatus::Pending | DeliveryStatus::Retrying | DeliveryStatus::Delivering
    );
    WebhookDelivery {
        id: row.id,
        webhook_id: row.webhook_id,
        event_id: row.event_id,
        event_type: row.event_type,
        status,
        attempts: u32::try_from(row.attempts).unwrap_or_default(),
        last_status_code: row.last_status_code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.last_error,
        last_latency_ms: row.last_latency_ms.and_then(|ms| u64::try_from(ms).ok()),
        next_attempt_at: open.then_some(row.next_attempt_at),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

impl App {
    /// Opens a subscription for sending (or reuses what was opened from the same row version).
    async fn target(&self, row: WebhookRow) -> AppResult<Arc<Target>> {
        let cached = self
            .webhook_targets
            .0
            .lock()
            .ok()
            .and_then(|t| t.get(&row.id).cloned());
        if let Some(found) = cached.filter(|t| t.version == row.updated_at) {
            return Ok(found);
        }
        let keys = self.keys()?;
        let opened = webhook_secrets::open(&keys, &row)?;
        let stored = webhooks::secrets_of(&self.db, row.id).await?;
        let secrets = stored
            .iter()
            .map(|s| open_secret(&keys, s).map(|secret| (secret, s.expires_at)))
            .collect::<AppResult<Vec<_>>>()?;
        let url = match &opened.url_query {
            Some(query) => format!("{}?{query}", row.url),
            None => row.url.clone(),
        };
        let target = Arc::new(Target {
            id: row.id,
            name: row.name.clone(),
            owner: row.generator_id,
            url,
            headers: opened.headers.into_iter().collect(),
            secrets,
            notifier: self.notifier_of(row.notifier_plugin_id).await,
            timeout: self.request_timeout(row.timeout_seconds),
            max_attempts: row.max_attempts,
            version: row.updated_at,
        });
        if let Ok(mut targets) = self.webhook_targets.0.lock() {
            targets.insert(row.id, target.clone());
        }
        Ok(target)
    }

    /// A subscription's timeout, capped so an attempt ends well within its lease.
    fn request_timeout(&self, seconds: i64) -> Duration {
        let cap = self.settings.webhooks.lease_seconds.saturating_sub(10) / 2;
        Duration::from_secs(u64::try_from(seconds).unwrap_or(10).clamp(1, cap.max(1)))
    }

    async fn notifier_of(&self, id: Option<Uuid>) -> Result<Option<Notifier>, String> {
        let Some(id) = id else { return Ok(None) };
        let info = plugins::get(&self.db, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the subscription's notifier plugin was deleted".to_string())?;
        let plugin = self
            .policies
            .plugin(&self.db, &info.digest)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(Notifier {
            plugin,
            config: info.config.to_string(),
        }))
    }

    /// Leases due deliveries (at most `per_webhook` per subscription, none of `excluded`).
    pub async fn claim_deliveries(
        &self,
        per_webhook: i64,
        limit: i64,
        excluded: &[Uuid],
        lease: Duration,
    ) -> AppResult<Vec<Claimed>> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        let mut work = self.begin_unaudited().await?;
        let claim = Claim {
            now,
            lease_until: now + lease,
            per_webhook,
            limit,
            excluded,
        };
        let rows = deliveries::claim(&mut work.tx, claim).await?;
        work.commit().await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut webhook_ids: Vec<Uuid> = rows.iter().map(|r| r.webhook_id).collect();
        webhook_ids.sort_unstable();
        webhook_ids.dedup();
        let mut targets = HashMap::new();
        for row in webhooks::get_many(&self.db, &webhook_ids).await? {
            if row.enabled {
                let id = row.id;
                let opened = self.target(row).await.map_err(|e| {
                    tracing::warn!(webhook = %id, error = %e, "cannot open a webhook subscription");
                    format!("this broker cannot open the subscription: {e}")
                });
                targets.insert(id, opened);
            }
        }
        let event_ids: Vec<Uuid> = rows.iter().map(|r| r.event_id).collect();
        let events: HashMap<Uuid, StoredEvent> = outbox::get_many(&self.db, &event_ids)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        Ok(rows
            .into_iter()
            .map(|delivery| Claimed {
                target: targets.get(&delivery.webhook_id).cloned().transpose(),
                event: events.get(&delivery.event_id).cloned(),
                delivery,
            })
            .collect())
    }

    /// Records how attempts ended. Failures are retried with backoff until the subscription's
    /// `max_attempts`; a dead delivery is audited and announced as `webhook.dead`.
    pub async fn complete_deliveries(&self, attempts: Vec<Attempt>) -> AppResult<()> {
        let settings = &self.settings.webhooks;
        let base = Duration::from_millis(settings.retry_base_ms.max(1));
        let max = Duration::from_secs(settings.retry_max_seconds.max(1));
        let completions: Vec<Completion> =
            attempts.iter().map(|a| completion(a, base, max)).collect();
        // Only a death is audited: the others need not queue for the audit chain's lock.
        let mut work = if completions.iter().any(|c| c.status == "dead") {
            self.begin().await?
        } else {
            self.begin_unaudited().await?
        };
        let mut outcomes = Vec::with_capacity(completions.len());
        for completion in &completions {
            if !deliveries::complete(&mut work.tx, completion).await? {
                continue;
            }
            if completion.status == "dead" {
                self.announce_dead(&mut work, completion).await?;
            }
            outcomes.push(match completion.status {
                "delivered" | "dropped" => "delivered",
                "retrying" => "retried",
                _ => "dead",
            });
        }
        work.commit().await?;
        for outcome in outcomes {
            self.metrics.webhook_attempt(outcome);
        }
        Ok(())
    }

    async fn announce_dead(&self, work: &mut super::Work, done: &Completion) -> AppResult<()> {
        let Some(row) = deliveries::get_in(&mut work.tx, done.id).await? else {
            return Ok(());
        };
        let webhook = webhooks::get_in(&mut work.tx, row.webhook_id).await?;
        let (name, owner) = webhook
            .map(|w| (w.name, w.generator_id))
            .unwrap_or_default();
        let data = json!({
            "webhook_id": row.webhook_id,
            "webhook_name": name,
            "delivery_id": row.id,
            "event_id": row.event_id,
            "event_type": row.event_type,
            "attempts": done.attempt,
            "last_status_code": done.status_code,
            "last_error": done.error,
        });
        work.audit_as(
            crate::db::audit::Actor::SYSTEM,
            "webhook.delivery_dead",
            ("webhook", Some(row.webhook_id)),
            data.clone(),
        )
        .await?;
        // A dead `webhook.dead` announces nothing more: no chains of deaths.
        if row.event_type != "webhook.dead" {
            work.emit(DomainEvent::webhook_dead(owner, data));
        }
        Ok(())
    }

    /// A subscription's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        by: Requester,
        webhook: Uuid,
        status: Option<DeliveryStatus>,
        window: Window,
    ) -> AppResult<Page<WebhookDelivery>> {
        self.visible_webhook(by, webhook).await?;
        let rows = deliveries::list(
            &self.db,
            webhook,
            status.map(DeliveryStatus::as_str),
            window,
        )
        .await?;
        Ok(window.page(rows.into_iter().map(wire).collect()))
    }

    /// Sends a delivery's event to its subscription once more, as a new delivery.
    pub async fn redeliver(&self, by: Requester, delivery: Uuid) -> AppResult<WebhookDelivery> {
        let row = deliveries::get(&self.db, delivery)
            .await?
            .ok_or(AppError::NotFound("delivery"))?;
        self.visible_webhook(by, row.webhook_id)
            .await
            .map_err(|_| AppError::NotFound("delivery"))?;
        let id = Uuid::new_v4();
        let new = NewDelivery {
            id,
            webhook_id: row.webhook_id,
            event_id: row.event_id,
            event_type: &row.event_type,
        };
        let mut work = self.begin().await?;
        deliveries::insert_many(&mut work.tx, &[new]).await?;
        let details = json!({ "delivery_id": delivery, "new_delivery_id": id });
        work.audit(
            by,
            "webhook.redelivered",
            ("webhook", Some(row.webhook_id)),
            details,
        )
        .await?;
        work.commit().await?;
        self.outbox_wake.notify_one();
        let created = deliveries::get(&self.db, id)
            .await?
            .ok_or(AppError::NotFound("delivery"))?;
        Ok(wire(created))
    }

    /// Deletes delivered, dropped and dead deliveries, and dispatched events, older than
    /// `webhooks.retention_days`. Returns how many rows went.
    pub async fn prune_webhook_history(&self) -> AppResult<u64> {
        let days = i64::try_from(self.settings.webhooks.retention_days).unwrap_or(i64::MAX);
        let cutoff = Utc::now() - chrono::Duration::days(days.min(36_500));
        let mut work = self.begin_unaudited().await?;
        let gone = deliveries::prune(&mut work.tx, cutoff).await?
            + outbox::prune(&mut work.tx, cutoff).await?;
        work.commit().await?;
        Ok(gone)
    }

    /// When the next open delivery is due, if any.
    pub async fn next_delivery_due(&self) -> AppResult<Option<DateTime<Utc>>> {
        Ok(deliveries::next_due(&self.db).await?)
    }

    /// Whether events wait to be fanned out.
    pub async fn events_waiting(&self) -> AppResult<bool> {
        Ok(outbox::any_undispatched(&self.db).await?)
    }
}

/// The row update for an attempt.
fn completion(attempt: &Attempt, base: Duration, max: Duration) -> Completion {
    let now = Utc::now();
    let exhausted = attempt.attempt >= attempt.max_attempts;
    let (status, error, next) = match &attempt.ending {
        Ending::Delivered => ("delivered", None, now),
        Ending::Dropped => (
            "dropped",
            Some("dropped by the notifier plugin".to_string()),
            now,
        ),
        Ending::Dead { error } => ("dead", Some(error.clone()), now),
        Ending::Retry { error, .. } if exhausted => (
            "dead",
            Some(format!(
                "{error} (gave up after {} attempts)",
                attempt.attempt
            )),
            now,
        ),
        Ending::Retry { error, after } => {
            let wait = after
                .map(|d| d.min(max))
                .unwrap_or_else(|| retry_delay(base, max, attempt.attempt));
            let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1));
            ("retrying", Some(error.clone()), now + wait)
        }
    };
    Completion {
        id: attempt.delivery,
        attempt: attempt.attempt,
        status,
        next_attempt_at: next,
        status_code: attempt.status_code.map(i64::from),
        error: error.map(|e| e.chars().take(1000).collect()),
        latency_ms: i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_within_bounds() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(5));
        let first = retry_delay(base, max, 1);
        assert!(first >= base && first <= base * 2, "{first:?}");
        let later = retry_delay(base, max, 5);
        assert!(later >= base * 16 && later <= max, "{later:?}");
        assert!(retry_delay(base, max, 40) <= max);
    }

    #[test]
    fn attempts_end_in_the_right_state() {
        let attempt = |n: i64, ending: Ending| Attempt {
            delivery: Uuid::nil(),
            attempt: n,
            max_attempts: 3,
            status_code: Some(503),
            latency: Duration::from_millis(3),
            ending,
        };
        let retry = || Ending::Retry {
            error: "503".into(),
            after: Some(Duration::from_secs(2)),
        };
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let again = completion(&attempt(1, retry()), base, max);
        assert_eq!(again.status, "retrying");
        let wait = again.next_attempt_at - Utc::now();
        assert!(
            wait > chrono::Duration::milliseconds(1500),
            "Retry-After honoured: {wait}"
        );
        assert_eq!(completion(&attempt(3, retry()), base, max).status, "dead");
        let dead = Ending::Dead {
            error: "404".into(),
        };
        assert_eq!(completion(&attempt(1, dead), base, max).status, "dead");
        assert_eq!(
            completion(&attempt(1, Ending::Delivered), base, max).status,
            "delivered"
        );
    }
}
