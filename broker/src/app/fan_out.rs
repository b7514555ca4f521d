//! Fan-out: events committed to the outbox become one delivery per matching subscription, in
//! one transaction that also marks them dispatched (claimed with `SKIP LOCKED` on PostgreSQL,
//! so replicas share the work and no event is fanned out twice). A generator's subscription
//! matches only events about its own stacks, PAK or subscriptions and agents in its reach;
//! that is enforced here, never trusted from the subscription's filter.

use std::collections::HashMap;

use brokkr_policy::EventFilter;
use brokkr_types::webhooks::EventTypes;
use uuid::Uuid;

use super::outbox::envelope;
use super::{App, AppError, AppResult};
use crate::db::deliveries::{self, NewDelivery};
use crate::db::outbox::{self, StoredEvent};
use crate::db::webhooks::WebhookRow;
use crate::db::{Tx, reach, webhooks};

/// A subscription, ready to match events.
#[derive(Debug)]
struct Subscription {
    id: Uuid,
    owner: Option<Uuid>,
    types: EventTypes,
    filter: Option<EventFilter>,
}

impl Subscription {
    /// `None` for a stored subscription that no longer parses (it matches nothing).
    fn of(row: &WebhookRow) -> Option<Self> {
        let types: EventTypes = serde_json::from_str(&row.event_types).ok()?;
        let filter = match &row.filter {
            Some(source) => Some(EventFilter::parse(source).ok()?),
            None => None,
        };
        Some(Self {
            id: row.id,
            owner: row.generator_id,
            types,
            filter,
        })
    }
}

/// Reach lookups of one fan-out, remembered.
#[derive(Debug, Default)]
struct ReachCache(HashMap<(Uuid, Uuid), bool>);

impl ReachCache {
    async fn contains(&mut self, tx: &mut Tx, generator: Uuid, agent: Uuid) -> AppResult<bool> {
        if let Some(known) = self.0.get(&(generator, agent)) {
            return Ok(*known);
        }
        let inside = reach::contains_in(tx, generator, agent).await?;
        self.0.insert((generator, agent), inside);
        Ok(inside)
    }
}

/// Whether a generator's subscription may hear of `event`: every scope the event has must be
/// the generator's (its stack, PAK or subscription; an agent in its reach), and it must have one.
async fn within_scope(
    tx: &mut Tx,
    reaches: &mut ReachCache,
    owner: Uuid,
    event: &StoredEvent,
) -> AppResult<bool> {
    if event.generator_id.is_none() && event.agent_id.is_none() {
        return Ok(false);
    }
    if event.generator_id.is_some_and(|g| g != owner) {
        return Ok(false);
    }
    match event.agent_id {
        Some(agent) => reaches.contains(tx, owner, agent).await,
        None => Ok(true),
    }
}

/// The subscriptions whose types and filter admit `event` (pure CEL work, run off the async
/// workers); the scope of generators' subscriptions is checked afterwards.
fn candidates(subscriptions: &[Subscription], event: &StoredEvent) -> Vec<usize> {
    if let Some(only) = event.webhook_id {
        return subscriptions
            .iter()
            .position(|s| s.id == only)
            .into_iter()
            .collect();
    }
    let wire = envelope(event.id, &event.event_type, event.occurred_at, &event.data);
    subscriptions
        .iter()
        .enumerate()
        .filter(|(_, s)| s.types.matches(&event.event_type))
        .filter(|(_, s)| {
            s.filter
                .as_ref()
                .is_none_or(|f| f.admits(&wire).unwrap_or(false))
        })
        .map(|(i, _)| i)
        .collect()
}

impl App {
    /// Fans out up to `limit` undispatched events; returns how many were handled (0: none wait).
    pub async fn fan_out(&self, limit: i64) -> AppResult<usize> {
        let mut work = self.begin_unaudited().await?;
        let events = outbox::claim_undispatched(&mut work.tx, limit).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let rows = webhooks::enabled_in(&mut work.tx).await?;
        let subscriptions: Vec<Subscription> = rows.iter().filter_map(Subscription::of).collect();
        let (subscriptions, events, matched) = tokio::task::spawn_blocking(move || {
            let matched: Vec<Vec<usize>> = events
                .iter()
                .map(|e| candidates(&subscriptions, e))
                .collect();
            (subscriptions, events, matched)
        })
        .await
        .map_err(|e| AppError::Internal(format!("matching events failed: {e}")))?;
        let mut reaches = ReachCache::default();
        let mut planned = Vec::new();
        for (event, chosen) in events.iter().zip(matched) {
            for index in chosen {
                let subscription = &subscriptions[index];
                let in_scope = match (subscription.owner, event.webhook_id) {
                    (Some(owner), None) => {
                        within_scope(&mut work.tx, &mut reaches, owner, event).await?
                    }
                    _ => true,
                };
                if in_scope {
                    planned.push((subscription.id, event));
                }
            }
        }
        let new: Vec<NewDelivery<'_>> = planned
            .iter()
            .map(|(webhook, event)| NewDelivery {
                id: Uuid::new_v4(),
                webhook_id: *webhook,
                event_id: event.id,
                event_type: &event.event_type,
            })
            .collect();
        deliveries::insert_many(&mut work.tx, &new).await?;
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        outbox::mark_dispatched(&mut work.tx, &seqs).await?;
        work.commit().await?;
        Ok(events.len())
    }
}
