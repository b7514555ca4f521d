//! The webhook dispatcher: a background worker on every broker (unless `webhooks.deliver` is
//! off). Woken when this replica commits domain events, when another replica does (PostgreSQL
//! `NOTIFY`), when a delivery finishes, or when the next retry falls due, it fans committed
//! events out into deliveries, claims due deliveries within its capacity (leaving out busy and
//! failing endpoints), sends each on its own task and records the outcomes in batches. A
//! delivery whose broker dies mid-attempt is claimed again once its lease ends: at least once.

pub mod client;
mod endpoints;
mod send;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::app::deliveries::{Attempt, Claimed, Ending};
use crate::app::{App, Requester};
use crate::domain::address_policy::AddressPolicy;
use endpoints::Endpoints;

/// Events fanned out per transaction.
const FAN_OUT_BATCH: i64 = 200;
/// Outcomes recorded per transaction.
const RECORD_BATCH: usize = 256;
/// Longest sleep when nothing is due (a safety net for changes no one announced, such as the
/// CLI's on SQLite).
const IDLE_WAIT: Duration = Duration::from_secs(2);
/// How often old deliveries and events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The dispatcher's shared parts.
struct Dispatcher {
    app: App,
    client: reqwest::Client,
    policy: AddressPolicy,
    endpoints: Endpoints,
    slots: Arc<Semaphore>,
    /// Woken when a delivery finished (its slot is free).
    freed: Notify,
    lease: Duration,
}

/// Starts the dispatcher (`None` when this broker does not deliver).
pub fn spawn(app: App) -> Option<JoinHandle<()>> {
    let settings = app.settings.webhooks.clone();
    if !settings.deliver {
        return None;
    }
    let policy = app.address_policy();
    let client = match client::build(policy.clone()) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; webhooks are not delivered");
            return None;
        }
    };
    let dispatcher = Arc::new(Dispatcher {
        endpoints: Endpoints::new(
            settings.max_concurrency_per_endpoint,
            settings.circuit_failures,
            Duration::from_secs(settings.circuit_open_seconds),
        ),
        slots: Arc::new(Semaphore::new(settings.max_in_flight)),
        freed: Notify::new(),
        lease: Duration::from_secs(settings.lease_seconds.max(10)),
        app,
        client,
        policy,
    });
    Some(tokio::spawn(dispatcher.run()))
}

impl Dispatcher {
    async fn run(self: Arc<Self>) {
        if self.app.key_ring.is_some()
            && let Err(e) = self.app.rekey_webhooks(Requester::SYSTEM).await
        {
            tracing::warn!(error = %e, "cannot re-encrypt webhook secrets under the active key");
        }
        let (done, outcomes) = mpsc::channel(RECORD_BATCH * 4);
        let recorder = tokio::spawn(self.clone().record(outcomes));
        let mut pruned = None::<Instant>;
        loop {
            self.fan_out().await;
            let due = self.app.next_delivery_due().await.unwrap_or(None);
            let now = chrono::Utc::now();
            let claimed = match due {
                Some(at) if at <= now => self.claim().await,
                _ => Vec::new(),
            };
            let started = claimed.len();
            for delivery in claimed {
                tokio::spawn(self.clone().deliver(delivery, done.clone()));
            }
            if pruned.is_none_or(|at| at.elapsed() > PRUNE_EVERY) {
                self.prune().await;
                pruned = Some(Instant::now());
            }
            if started > 0 && self.slots.available_permits() > 0 {
                continue;
            }
            let wait = wait(due, started);
            tokio::select! {
                () = self.app.outbox_wake.notified() => {}
                () = self.freed.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            if recorder.is_finished() {
                tracing::error!("the webhook outcome recorder stopped");
                return;
            }
        }
    }

    /// Fans out every waiting event (a read first, so an idle broker takes no write lock).
    async fn fan_out(&self) {
        if !self.app.events_waiting().await.unwrap_or(true) {
            return;
        }
        loop {
            match self.app.fan_out(FAN_OUT_BATCH).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fan out webhook events; will retry");
                    return;
                }
            }
        }
    }

    /// Claims what this broker has room for.
    async fn claim(&self) -> Vec<Claimed> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Vec::new();
        }
        let excluded = self.endpoints.excluded(Instant::now());
        let per_webhook = i64::try_from(self.endpoints.per_endpoint()).unwrap_or(1);
        let limit = i64::try_from(free).unwrap_or(1);
        match self
            .app
            .claim_deliveries(per_webhook, limit, &excluded, self.lease)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim webhook deliveries; will retry");
                Vec::new()
            }
        }
    }

    async fn prune(&self) {
        match self.app.prune_webhook_history().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned old webhook deliveries and events"),
            Err(e) => tracing::warn!(error = %e, "cannot prune webhook history"),
        }
    }

    /// Sends one delivery within the global and the endpoint's limits.
    async fn deliver(self: Arc<Self>, claimed: Claimed, done: mpsc::Sender<Attempt>) {
        let Ok(_slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let webhook = claimed.delivery.webhook_id;
        let _endpoint = self.endpoints.acquire(webhook).await;
        let metrics = &self.app.metrics;
        metrics.webhook_in_flight.inc();
        let attempt = send::attempt(&self.app, &self.client, &self.policy, &claimed).await;
        metrics.webhook_in_flight.dec();
        match &attempt.ending {
            Ending::Delivered | Ending::Dropped => {
                self.endpoints.record(webhook, true, Instant::now());
                if let Some(event) = &claimed.event {
                    let age = chrono::Utc::now() - event.occurred_at;
                    let seconds = age.num_microseconds().unwrap_or(0) as f64 / 1e6;
                    metrics.webhook_delivery_latency.observe(seconds.max(0.0));
                }
            }
            Ending::Retry { .. } => self.endpoints.record(webhook, false, Instant::now()),
            Ending::Dead { .. } => {}
        }
        let _ = done.send(attempt).await;
        self.freed.notify_one();
    }

    /// Records outcomes in batches; a batch that cannot be written is retried, and failing
    /// that its deliveries are claimed again when their leases end.
    async fn record(self: Arc<Self>, mut outcomes: mpsc::Receiver<Attempt>) {
        while let Some(first) = outcomes.recv().await {
            let mut batch = vec![first];
            while batch.len() < RECORD_BATCH {
                match outcomes.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            for wait in [0, 200, 1_000, 5_000] {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                match self.app.complete_deliveries(batch.clone()).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!(error = %e, "cannot record webhook outcomes"),
                }
            }
            self.freed.notify_one();
        }
    }
}

/// How long to sleep when nothing more can be started now, given when the next delivery is due.
fn wait(due: Option<chrono::DateTime<chrono::Utc>>, started: usize) -> Duration {
    let now = chrono::Utc::now();
    match due {
        None => IDLE_WAIT,
        // Due but left out (busy or failing endpoints): a finishing delivery wakes us.
        Some(at) if at <= now && started == 0 => Duration::from_millis(500),
        Some(at) => (at - now)
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(10), IDLE_WAIT),
    }
}
