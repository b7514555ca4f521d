//! The application layer: one function per use case. Each takes the [`Requester`] and input
//! that is already valid by construction, applies the row rules (who may see and change what,
//! confined to generators' reach), writes the change and its audit entry in one transaction
//! ([`Work`]), and announces it to the hub and caches only after the commit. Nothing here knows
//! HTTP: failures are [`AppError`]s. The API and the `brokkr-broker` CLI call the same
//! functions.

pub mod admin;
pub mod agents;
pub mod auth_failures;
pub mod credentials;
pub mod deliveries;
pub mod deployment_objects;
pub mod enrollment;
pub mod error;
pub mod events;
pub mod explain;
pub mod expressions;
pub mod fan_out;
pub mod fleet;
pub mod generators;
pub mod metadata;
pub mod outbox;
pub mod plugins;
pub mod policies;
pub mod reach;
pub mod retarget;
pub mod rollout_figures;
pub mod rollouts;
pub mod stacks;
pub mod staged;
pub mod staged_gate;
pub mod submissions;
pub mod target_state;
pub mod targets;
pub mod templates;
pub mod visibility;
pub mod webhook_secrets;
pub mod webhooks;
pub mod work;
pub mod work_orders;
pub mod work_runs;

use std::sync::Arc;
use std::time::Duration;

pub use error::{AppError, AppResult};
pub use retarget::{Guard, Retargeted};
pub use work::Work;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::db::Db;
use crate::db::audit::Actor;
use crate::domain::Principal;
use crate::domain::keyring::KeyRing;
use crate::metrics::Metrics;
use crate::targeting::Targeting;

/// Who asks for a use case: what they may do, and how the audit log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requester {
    pub principal: Principal,
    pub actor: Actor,
}

impl Requester {
    /// The operator at the broker host, through the `brokkr-broker` CLI: an admin's powers,
    /// audited as `cli`.
    pub const CLI: Self = Self {
        principal: Principal::Admin,
        actor: Actor::CLI,
    };

    /// The broker itself (background work such as re-encryption): an admin's powers, audited
    /// as `system`.
    pub const SYSTEM: Self = Self {
        principal: Principal::Admin,
        actor: Actor::SYSTEM,
    };

    pub fn is_admin(self) -> bool {
        self.principal == Principal::Admin
    }
}

impl From<Principal> for Requester {
    fn from(principal: Principal) -> Self {
        Self {
            principal,
            actor: principal.into(),
        }
    }
}

/// Everything the use cases need; cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    pub db: Db,
    pub auth: Authenticator,
    pub settings: Arc<Settings>,
    pub targeting: Arc<Targeting>,
    pub policies: Arc<policies::Policies>,
    pub metrics: Arc<Metrics>,
    pub auth_failures: Arc<auth_failures::FailureLedger>,
    /// Seals and opens webhook secrets; `None` when no key is configured.
    pub key_ring: Option<Arc<KeyRing>>,
    /// Woken when this replica commits domain events (the webhook dispatcher waits on it).
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Webhook subscriptions opened for sending.
    pub webhook_targets: Arc<deliveries::Targets>,
    /// Compiled template schemas and rendering slots.
    pub templates: Arc<templates::TemplateEngine>,
    /// Ticks when this replica stores an apply or health report (rollout long polls wait on it).
    rollout_tick: Arc<tokio::sync::watch::Sender<u64>>,
    /// Rollout figures by (object, the generator whose reach bounds them), with the tick they
    /// were computed at; a second at most, so other replicas' reports show.
    rollout_cache: rollouts::RolloutCache,
    /// Releases' progress kept in memory and brought up to date from the rows that changed.
    rollout_trackers: rollout_figures::Trackers,
}

impl App {
    /// The application over an open, migrated database.
    pub fn new(db: Db, settings: Settings) -> AppResult<Self> {
        let auth = Authenticator::new(
            db.clone(),
            Duration::from_secs(settings.broker.auth_cache_ttl_seconds),
            settings.broker.auth_cache_capacity,
        );
        let policies = policies::Policies::new(settings.plugins.limits())
            .map_err(|e| AppError::Internal(format!("cannot start the plugin host: {e}")))?;
        let templates = Arc::new(templates::TemplateEngine::new(
            settings.templates.max_concurrent_renders,
        ));
        let key_ring = settings
            .webhooks
            .key_ring()
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map(Arc::new);
        let targeting = Targeting::with_store(db.clone());
        Ok(Self {
            db,
            auth,
            settings: Arc::new(settings),
            targeting,
            policies: Arc::new(policies),
            metrics: Arc::default(),
            auth_failures: Arc::default(),
            key_ring,
            outbox_wake: Arc::default(),
            webhook_targets: Arc::default(),
            templates,
            rollout_tick: Arc::new(tokio::sync::watch::Sender::new(0)),
            rollout_cache: rollouts::new_cache(),
            rollout_trackers: rollout_figures::new_trackers(),
        })
    }

    /// Wakes the rollout long polls of this replica.
    pub(crate) fn rollouts_changed(&self) {
        self.rollout_tick
            .send_modify(|tick| *tick = tick.wrapping_add(1));
    }

    pub(crate) fn rollout_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.rollout_tick.subscribe()
    }
}
