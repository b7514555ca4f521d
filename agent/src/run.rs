//! The agent's loop: learn who it is, then poll the target state, heartbeat, reconcile when
//! something changed (or a retry or drift re-apply is due), deliver queued events and persist
//! what it did, until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use brokkr_policy::plugin::PluginHost;
use brokkr_types::Pak;
use tokio::sync::watch;
use uuid::Uuid;

use crate::backoff::{self, Retries};
use crate::broker::{BrokerClient, BrokerError, TargetStateFetch, Transport};
use crate::cluster::Cluster;
use crate::config::AgentSettings;
use crate::identity::IdentitySecret;
use crate::metrics::Metrics;
use crate::policy::Enforcer;
use crate::reconcile::Reconciler;
use crate::state::{Persisted, StateError, StateFile};
use brokkr_types::rollouts::{HealthReport, ObjectHealth};

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("shut down before the agent could learn its identity")]
    NoIdentity,
    #[error("cannot start the plugin host: {0}")]
    Plugins(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the broker refused enrollment: {0}")]
    Enrollment(String),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

/// Keys of delivered events kept to avoid re-sending (the broker deduplicates anyway).
const DELIVERED_MEMORY: usize = 10_000;

/// A running agent.
pub struct Agent {
    settings: AgentSettings,
    broker: BrokerClient,
    reconciler: Reconciler,
    state: Persisted,
    file: StateFile,
    metrics: Arc<Metrics>,
    agent_id: Uuid,
    last_poll: Instant,
    broker_failing: bool,
    /// The health last reported, and when.
    last_health: Option<(Vec<ObjectHealth>, Instant)>,
    /// Work orders in progress, and the cluster they act on.
    work: crate::work::Runner,
    kube: kube::Client,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    settings: AgentSettings,
    kube: kube::Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::default());
    let server = serve_probes(&settings.listen_addr, metrics.clone(), stop_rx.clone()).await?;
    let work = async {
        let mut agent = Agent::start(settings, kube, metrics, stop_rx.clone()).await?;
        agent.run_loop(stop_rx).await
    };
    let result = tokio::select! {
        result = work => result,
        () = shutdown => {
            let _ = stop_tx.send(true);
            Ok(())
        }
    };
    let _ = stop_tx.send(true);
    let _ = server.await;
    result
}

async fn serve_probes(
    addr: &str,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, AgentError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Listen {
            addr: addr.into(),
            source,
        })?;
    if let Ok(bound) = listener.local_addr() {
        tracing::info!(addr = %bound, "probes and metrics listening");
    }
    let app = crate::server::router(metrics);
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await;
    }))
}

/// Asks the broker who this PAK belongs to, falling back to the remembered id when the broker
/// cannot be reached (the agent then keeps enforcing its last state).
async fn identify(
    broker: &BrokerClient,
    remembered: Option<Uuid>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Uuid, AgentError> {
    let mut pauses = backoff::delays(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        match broker.own_agent_id().await {
            Ok(id) => return Ok(id),
            Err(e) => {
                if let Some(id) = remembered {
                    tracing::warn!(error = %e, "broker unavailable; enforcing the remembered state");
                    return Ok(id);
                }
                let pause = pauses.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!(error = %e, retry_in = ?pause, "cannot learn this agent's identity yet");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => return Err(AgentError::NoIdentity),
                }
            }
        }
    }
}

/// The broker connection the settings describe (files read once, at start).
fn transport(settings: &AgentSettings) -> Result<Transport, AgentError> {
    let read = |path: &str| {
        std::fs::read(path).map_err(|e| AgentError::Tls(format!("cannot read {path}: {e}")))
    };
    let ca_pem = (!settings.ca_file.is_empty())
        .then(|| read(&settings.ca_file))
        .transpose()?;
    let identity_pem = if settings.client_cert_file.is_empty() {
        None
    } else {
        let mut pem = read(&settings.client_cert_file)?;
        pem.extend(read(&settings.client_key_file)?);
        Some(pem)
    };
    Ok(Transport {
        timeout: Duration::from_secs(settings.request_timeout_seconds.max(1)),
        ca_pem,
        identity_pem,
    })
}

/// Where the PAK got by enrolling is kept: the state file, or a Secret in the cluster.
struct Keeper<'a> {
    file: &'a StateFile,
    secret: Option<IdentitySecret>,
}

impl Keeper<'_> {
    /// The agent id and PAK kept by an earlier enrollment.
    async fn recall(&self, state: &mut Persisted) -> Result<Option<Pak>, AgentError> {
        let Some(secret) = &self.secret else {
            return Ok(state.pak.clone());
        };
        if let Some((agent, pak)) = secret.load().await? {
            state.agent_id.get_or_insert(agent);
            return Ok(Some(pak));
        }
        // A PAK from the days of the state file moves into the Secret.
        match (state.agent_id, state.pak.clone()) {
            (Some(agent), Some(pak)) => {
                self.keep(state, agent, &pak).await?;
                Ok(Some(pak))
            }
            _ => Ok(None),
        }
    }

    /// Remembers a new identity before anything else happens.
    async fn keep(&self, state: &mut Persisted, agent: Uuid, pak: &Pak) -> Result<(), AgentError> {
        state.agent_id = Some(agent);
        match &self.secret {
            Some(secret) => {
                secret.save(agent, pak).await?;
                state.pak = None;
            }
            None => state.pak = Some(pak.clone()),
        }
        self.file.save(state)?;
        Ok(())
    }
}

/// The PAK to use: configured, remembered from an earlier enrollment, or got now by enrolling
/// with the token (and remembered at once, so the token is never needed again).
async fn pak(
    settings: &AgentSettings,
    transport: &Transport,
    keeper: &Keeper<'_>,
    state: &mut Persisted,
    stop: &mut watch::Receiver<bool>,
) -> Result<Pak, AgentError> {
    if !settings.pak.trim().is_empty() {
        return Ok(Pak::new(settings.pak.trim().to_string()));
    }
    if let Some(pak) = keeper.recall(state).await? {
        return Ok(pak);
    }
    let mut pauses = backoff::delays(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let enrolled = crate::broker::enroll(
            &settings.broker_url,
            transport,
            settings.enrollment_token.trim(),
            &settings.name,
            &settings.cluster_name,
        )
        .await;
        match enrolled {
            Ok((agent, pak)) => {
                tracing::info!(%agent, "enrolled with the broker");
                *state = Persisted::default();
                keeper.keep(state, agent, &pak).await?;
                return Ok(pak);
            }
            Err(e @ BrokerError::Problem { .. }) if !e.is_retryable() => {
                return Err(AgentError::Enrollment(e.to_string()));
            }
            Err(e) => {
                let pause = pauses.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!(error = %e, retry_in = ?pause, "cannot enroll yet");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s) => return Err(AgentError::NoIdentity),
                }
            }
        }
    }
}

impl Agent {
    async fn start(
        settings: AgentSettings,
        kube: kube::Client,
        metrics: Arc<Metrics>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Self, AgentError> {
        let transport = transport(&settings)?;
        let file = StateFile::new(&settings.state_path);
        let mut state = file.load()?;
        let secret = match settings.identity_secret.trim() {
            "" => None,
            name => Some(IdentitySecret::new(kube.clone(), name)?),
        };
        let keeper = Keeper {
            file: &file,
            secret,
        };
        let pak = pak(&settings, &transport, &keeper, &mut state, &mut stop).await?;
        let broker = transport.client(&settings.broker_url, Some(pak))?;
        let agent_id = identify(&broker, state.agent_id, &mut stop).await?;
        if state.agent_id.is_some_and(|known| known != agent_id) {
            tracing::warn!("the state file belongs to another agent; starting afresh");
            state = Persisted::default();
        }
        state.agent_id = Some(agent_id);
        tracing::info!(agent = %agent_id, stacks = state.stacks.len(), "agent starting");
        let retries = Retries::new(
            Duration::from_millis(settings.retry_base_ms.max(1)),
            Duration::from_secs(settings.retry_max_seconds.max(1)),
        );
        let crd_timeout = Duration::from_secs(settings.crd_timeout_seconds.max(1));
        let host = PluginHost::new(settings.plugin_limits())
            .map_err(|e| AgentError::Plugins(e.to_string()))?;
        let modules = std::path::Path::new(&settings.state_path)
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("modules");
        let reconciler =
            Reconciler::new(Cluster::new(kube.clone()), agent_id, retries, crd_timeout)
                .with_enforcer(Enforcer::new(host, modules));
        Ok(Self {
            settings,
            broker,
            reconciler,
            state,
            file,
            metrics,
            agent_id,
            last_poll: Instant::now(),
            broker_failing: false,
            last_health: None,
            work: crate::work::Runner::new(Duration::from_secs(1)),
            kube,
        })
    }

    async fn run_loop(&mut self, mut stop: watch::Receiver<bool>) -> Result<(), AgentError> {
        let interval = self.settings.polling_interval();
        let mut reapply_at = Instant::now();
        let mut next_beat = Instant::now();
        // Modules of a remembered state come from disk even when the broker is away.
        self.refresh_policies().await;
        let mut changed = self.poll(None).await;
        loop {
            let now = Instant::now();
            if now >= next_beat {
                self.heartbeat().await;
                self.reconciler.assess_health(&mut self.state).await;
                self.report_health(now).await;
                next_beat = now + interval;
            }
            let force = now >= reapply_at;
            if changed || force || self.reconciler.retry_due(now) {
                self.pass(force, now).await;
                if force {
                    reapply_at = now + self.settings.reapply_interval();
                }
            }
            self.deliver_events().await;
            self.start_work();
            self.save();
            let wake = [
                Some(next_beat),
                Some(reapply_at),
                self.reconciler.next_retry(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_beat);
            changed = tokio::select! {
                changed = self.wait_for_change(wake) => changed,
                _ = stop.wait_for(|s| *s) => break,
            };
        }
        self.save();
        tracing::info!("agent stopped");
        Ok(())
    }

    /// Reports the health of each applied deployment object when it changed since the last
    /// report, at most every `health_interval`.
    async fn report_health(&mut self, now: Instant) {
        let entries = crate::health::report(&self.state);
        if let Some((last, at)) = &self.last_health {
            let same = last.len() == entries.len()
                && last.iter().zip(&entries).all(|(a, b)| {
                    a.deployment_object_id == b.deployment_object_id
                        && a.status == b.status
                        && a.message == b.message
                });
            if same || now < *at + self.settings.health_interval() {
                return;
            }
        }
        let report = HealthReport {
            deployment_objects: entries,
        };
        match self.broker.put_health(self.agent_id, &report).await {
            Ok(()) => self.last_health = Some((report.deployment_objects, now)),
            Err(e) => tracing::debug!(error = %e, "health not reported yet"),
        }
    }

    /// Waits for the target state to change, at most until `wake`: a long poll when the broker
    /// answers, plain polls every `polling_interval` otherwise. Returns whether it changed.
    async fn wait_for_change(&mut self, wake: Instant) -> bool {
        let left = wake.saturating_duration_since(Instant::now());
        let wait = left.min(Duration::from_secs(self.settings.long_poll_seconds));
        if wait >= Duration::from_secs(1) && !self.broker_failing {
            return self.poll(Some(Duration::from_secs(wait.as_secs()))).await;
        }
        let next_poll = self.last_poll + self.settings.polling_interval();
        tokio::time::sleep_until(next_poll.min(wake).into()).await;
        if Instant::now() >= next_poll {
            return self.poll(None).await;
        }
        false
    }

    /// Fetches the target state (holding up to `wait` for a change); returns whether it changed.
    async fn poll(&mut self, wait: Option<Duration>) -> bool {
        self.last_poll = Instant::now();
        let result = self
            .broker
            .target_state(self.agent_id, self.state.etag(), wait)
            .await;
        self.broker_failing = result.is_err();
        match result {
            Ok(TargetStateFetch::Changed(target)) => {
                tracing::info!(etag = %target.etag, stacks = target.stacks.len(), "new target state");
                self.state.target = Some(target);
                self.refresh_policies().await;
                true
            }
            Ok(TargetStateFetch::Unchanged) => false,
            Err(e) => {
                Metrics::add(&self.metrics.broker_errors, 1);
                tracing::warn!(error = %e, "cannot fetch the target state; keeping the last one");
                false
            }
        }
    }

    /// Loads the modules of the target state's policies and refreshes the cluster facts
    /// plugins see (the agent's names, labels and annotations).
    async fn refresh_policies(&mut self) {
        let policies = self
            .state
            .target
            .as_ref()
            .map(|t| t.policies.clone())
            .unwrap_or_default();
        let Some(enforcer) = self.reconciler.enforcer.as_mut() else {
            return;
        };
        if policies.is_empty() {
            return;
        }
        match self.broker.agent(self.agent_id).await {
            Ok(agent) => enforcer.set_cluster(&agent),
            Err(e) => tracing::debug!(error = %e, "cannot refresh this agent's facts"),
        }
        enforcer.prepare(&self.broker, &policies).await;
    }

    async fn heartbeat(&mut self) {
        let reachable = self.reconciler.cluster.reachable().await;
        self.metrics.kubernetes_reachable.set(i64::from(reachable));
        if let Err(e) = self
            .broker
            .heartbeat(self.agent_id, &crate::broker::heartbeat(reachable))
            .await
        {
            Metrics::add(&self.metrics.broker_errors, 1);
            tracing::debug!(error = %e, "heartbeat failed");
        }
    }

    async fn pass(&mut self, force: bool, now: Instant) {
        let outcome = self.reconciler.reconcile(&mut self.state, force, now).await;
        Metrics::add(&self.metrics.reconciles, 1);
        Metrics::add(&self.metrics.applies, outcome.applied);
        Metrics::add(&self.metrics.apply_failures, outcome.failed);
        Metrics::add(&self.metrics.pruned, outcome.pruned);
        self.metrics
            .last_reconcile_unix
            .set(chrono::Utc::now().timestamp());
        if self.state.target.is_some() {
            self.metrics.ready.store(true, Ordering::Relaxed);
        }
        if outcome != Default::default() {
            tracing::info!(
                applied = outcome.applied,
                failed = outcome.failed,
                pruned = outcome.pruned,
                "reconciled"
            );
        }
    }

    /// Starts the work order runs the target state lists (claimed and carried out in the
    /// background).
    fn start_work(&self) {
        if let Some(target) = &self.state.target {
            self.work.start(target, &self.broker, &self.kube);
        }
    }

    /// Sends queued events in order; stops at the first failure that a retry could fix.
    async fn deliver_events(&mut self) {
        while let Some(event) = self.state.outbox.first().cloned() {
            match self.broker.post_event(self.agent_id, &event).await {
                Ok(()) => {
                    self.state.outbox.remove(0);
                    self.state
                        .delivered
                        .insert(event.idempotency_key.to_string());
                }
                Err(e) if e.is_inactive() => {
                    tracing::debug!(
                        pending = self.state.outbox.len(),
                        "inactive: events wait until an admin activates this agent"
                    );
                    break;
                }
                Err(BrokerError::Problem { problem })
                    if (400..500).contains(&problem.status)
                        && ![401, 408, 429].contains(&problem.status) =>
                {
                    let (status, detail) = (problem.status, &problem.detail);
                    tracing::warn!(%status, %detail, key = %event.idempotency_key, "the broker refused an event; dropping it");
                    self.state.outbox.remove(0);
                }
                Err(e) => {
                    tracing::debug!(error = %e, pending = self.state.outbox.len(), "events not delivered yet");
                    break;
                }
            }
        }
        if self.state.delivered.len() > DELIVERED_MEMORY {
            let excess = self.state.delivered.len() - DELIVERED_MEMORY / 2;
            let drop: Vec<String> = self.state.delivered.iter().take(excess).cloned().collect();
            for key in drop {
                self.state.delivered.remove(&key);
            }
        }
        self.metrics
            .events_pending
            .set(i64::try_from(self.state.outbox.len()).unwrap_or(i64::MAX));
    }

    fn save(&self) {
        if let Err(e) = self.file.save(&self.state) {
            tracing::error!(error = %e, "cannot persist the agent state");
        }
    }
}
