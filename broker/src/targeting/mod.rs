//! Targeting at the broker: every rule (direct, labels, annotations, CEL) resolves into one
//! materialized assignment set, recomputed for the agent or stack that changed and never per
//! poll; an in-memory hub answers unchanged polls and wakes long-polling agents.
//!
//! Replicas learn of each other's changes through PostgreSQL notifications on
//! [`CHANGED_CHANNEL`], whose payload is `<replica>|<ids>` (these agents changed),
//! `<replica>|*` (everything changed) or `<replica>|@<stack>=<object>#<sequence>` (a stack
//! moved to a new deployment object). A replica ignores its own notifications.
//!
//! A new deployment object is committed without touching the agents' views: they advance after
//! the commit, off the request path, on a blocking thread ([`Targeting::advance_later`]), in
//! sequence order per stack (an advance that arrives after a newer one is dropped).

pub mod compiled;
pub mod content;
pub mod encoding;
pub mod hub;
pub mod plan;
pub mod waves;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use uuid::Uuid;

use crate::db::{Db, StoreResult, Tx};

pub use content::Fragments;
pub use hub::{Hub, View};
pub use plan::Plan;

/// The PostgreSQL channel announcing target-state changes.
pub const CHANGED_CHANNEL: &str = "brokkr_targets_changed";

/// Agent ids per notification (payloads stay under PostgreSQL's 8000-byte limit).
const IDS_PER_NOTIFICATION: usize = 200;
/// Above this many agents one "everything changed" notification replaces the id lists.
const MAX_LISTED: usize = 20_000;
/// Stacks whose newest advanced sequence is remembered (advances are reordered by at most the
/// time between a commit and its advance, milliseconds).
const ADVANCES_REMEMBERED: u64 = 100_000;

/// Targeting state shared by the handlers.
#[derive(Debug)]
pub struct Targeting {
    pub hub: Hub,
    pub fragments: Fragments,
    /// This process's identity in notifications.
    replica: Uuid,
    /// Where a new deployment object's entry is read from before the polls it wakes ask for it
    /// (none in unit tests: the polls then read it themselves).
    store: Option<Db>,
    /// The newest sequence each stack's views were advanced to; held while advancing, so
    /// advances of one stack never overtake each other.
    advanced: std::sync::Mutex<moka::sync::Cache<Uuid, i64>>,
    /// Advances committed but not yet made, by stack: a poll whose view holds such a stack
    /// waits for it, so a publish is seen by the next poll after its answer.
    pending: std::sync::Mutex<HashMap<Uuid, Pending>>,
    /// How many advances are pending (the polls' fast path reads only this).
    in_flight: AtomicUsize,
    /// Ticks when an advance is done.
    settled: tokio::sync::watch::Sender<u64>,
    /// Counts the changes of who is targeted with what seen here (this replica's and the ones
    /// other replicas announced): kept rollout figures are read whole again when it moved.
    generation: std::sync::atomic::AtomicU64,
}

impl Default for Targeting {
    fn default() -> Self {
        Self {
            hub: Hub::default(),
            fragments: Fragments::default(),
            replica: Uuid::new_v4(),
            store: None,
            generation: std::sync::atomic::AtomicU64::new(0),
            advanced: std::sync::Mutex::new(
                moka::sync::Cache::builder()
                    .max_capacity(ADVANCES_REMEMBERED)
                    .time_to_idle(std::time::Duration::from_secs(600))
                    .build(),
            ),
            pending: std::sync::Mutex::default(),
            in_flight: AtomicUsize::new(0),
            settled: tokio::sync::watch::Sender::new(0),
        }
    }
}

async fn notify(tx: &mut Tx, payloads: Vec<String>) -> StoreResult<()> {
    if let Tx::Postgres(t) = tx {
        for payload in payloads {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGED_CHANNEL)
                .bind(payload)
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(())
}

impl Targeting {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Targeting whose advances read the new object's entry from `store` before waking anyone.
    pub fn with_store(store: Db) -> Arc<Self> {
        Arc::new(Self {
            store: Some(store),
            ..Self::default()
        })
    }

    /// Notification payloads saying these agents changed.
    fn payloads(&self, agents: &[Uuid]) -> Vec<String> {
        if agents.len() > MAX_LISTED {
            return vec![format!("{}|*", self.replica)];
        }
        agents
            .chunks(IDS_PER_NOTIFICATION)
            .map(|c| {
                format!(
                    "{}|{}",
                    self.replica,
                    c.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",")
                )
            })
            .collect()
    }

    /// Announces, inside `tx`, that these agents' target states changed: other replicas learn
    /// it when the transaction commits. Call [`Targeting::changed`] after the commit.
    pub async fn announce(&self, tx: &mut Tx, agents: &[Uuid]) -> StoreResult<()> {
        notify(tx, self.payloads(agents)).await
    }

    /// Announces, inside `tx`, that every agent's target state changed.
    pub async fn announce_all(&self, tx: &mut Tx) -> StoreResult<()> {
        notify(tx, vec![format!("{}|*", self.replica)]).await
    }

    /// Announces, inside `tx`, that `stack` moved to deployment object `object`, its
    /// `sequence`th.
    pub async fn announce_advance(
        &self,
        tx: &mut Tx,
        stack: Uuid,
        (object, sequence): (Uuid, i64),
    ) -> StoreResult<()> {
        let payload = format!("{}|@{stack}={object}#{sequence}", self.replica);
        notify(tx, vec![payload]).await
    }

    /// Advances the views holding `stack` to `object` on a blocking thread, unless a newer
    /// object of the stack was advanced to already; returns at once. The object's serialized
    /// entry is read first, so the thousands of polls the advance wakes find it ready instead
    /// of queueing behind one read.
    pub fn advance_later(self: &Arc<Self>, stack: Uuid, (object, sequence): (Uuid, i64)) {
        lock(&self.pending)
            .entry(stack)
            .or_insert(Pending {
                count: 0,
                newest: (object, sequence),
            })
            .add((object, sequence));
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let targeting = self.clone();
        let advance = move || {
            targeting.advance_in_order(stack, object, sequence);
            targeting.advanced(stack);
        };
        match self.store.clone() {
            Some(store) => {
                let targeting = self.clone();
                tokio::spawn(async move {
                    // A failed read is left to the polls, which report it.
                    let _ = targeting.fragments.prefetch(&store, object).await;
                    tokio::task::spawn_blocking(advance);
                });
            }
            None => {
                tokio::task::spawn_blocking(advance);
            }
        }
    }

    /// One pending advance of `stack` is done.
    fn advanced(&self, stack: Uuid) {
        let mut pending = lock(&self.pending);
        if let Some(entry) = pending.get_mut(&stack) {
            entry.count -= 1;
            if entry.count == 0 {
                pending.remove(&stack);
            }
        }
        drop(pending);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.settled
            .send_modify(|tick| *tick = tick.wrapping_add(1));
    }

    /// Ticks when a pending advance is done; subscribe before asking [`Targeting::advancing`].
    pub fn settled(&self) -> tokio::sync::watch::Receiver<u64> {
        self.settled.subscribe()
    }

    /// Whether one of these stacks has a newer object committed than the one in `pairs` and
    /// not yet advanced to.
    pub fn advancing(&self, pairs: &[(Uuid, Uuid)]) -> bool {
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let pending = lock(&self.pending);
        pairs.iter().any(|(stack, object)| {
            pending
                .get(stack)
                .is_some_and(|entry| entry.newest.0 != *object)
        })
    }

    /// [`Targeting::advance_later`]'s work, done now.
    pub fn advance_in_order(&self, stack: Uuid, object: Uuid, sequence: i64) {
        let newest = lock(&self.advanced);
        if newest.get(&stack).is_some_and(|seen| seen >= sequence) {
            return;
        }
        newest.insert(stack, sequence);
        self.hub.advance_stack(stack, object);
    }

    /// This replica's part of a change: forget the agents' views and wake their long polls.
    pub fn changed(&self, agents: &[Uuid]) {
        if !agents.is_empty() {
            self.bump();
        }
        self.hub.invalidate(agents.iter().copied());
    }

    /// [`Targeting::changed`] for every agent.
    pub fn changed_all(&self) {
        self.bump();
        self.hub.invalidate_all();
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The number of targeting changes seen so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A notification on [`CHANGED_CHANNEL`].
    pub fn on_notification(self: &Arc<Self>, payload: &str) {
        let (from, rest) = payload.split_once('|').unwrap_or(("", payload));
        if from == self.replica.to_string() {
            return;
        }
        if rest == "*" {
            self.changed_all();
        } else if let Some(advance) = rest.strip_prefix('@') {
            match parse_advance(advance) {
                Some((stack, object)) => self.advance_later(stack, object),
                None => self.changed_all(),
            }
        } else {
            let agents: Vec<Uuid> = rest
                .split(',')
                .filter_map(|s| Uuid::parse_str(s.trim()).ok())
                .collect();
            self.changed(&agents);
        }
    }
}

/// Advances of one stack committed and not yet made.
#[derive(Debug)]
struct Pending {
    count: usize,
    /// The newest of them: `(object, sequence)`.
    newest: (Uuid, i64),
}

impl Pending {
    fn add(&mut self, advance: (Uuid, i64)) {
        self.count += 1;
        if advance.1 > self.newest.1 {
            self.newest = advance;
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// `<stack>=<object>#<sequence>`.
fn parse_advance(text: &str) -> Option<(Uuid, (Uuid, i64))> {
    let (stack, rest) = text.split_once('=')?;
    let (object, sequence) = rest.split_once('#')?;
    let object = (Uuid::parse_str(object).ok()?, sequence.parse().ok()?);
    Some((Uuid::parse_str(stack).ok()?, object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(targeting: &Targeting, agent: Uuid, stack: Uuid, object: Uuid) {
        let (generation, _) = targeting.hub.snapshot(agent);
        let view = View::new(
            agent,
            vec![(stack, object)],
            bytes::Bytes::from_static(b"[]"),
            bytes::Bytes::from_static(b"[]"),
        );
        targeting.hub.store(agent, generation, Arc::new(view));
    }

    #[tokio::test]
    async fn notifications_from_other_replicas_apply() {
        let (here, there) = (Targeting::new(), Targeting::new());
        let (agent, stack, old, new) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        held(&here, agent, stack, old);
        let mut woken = here.hub.subscribe(agent);
        here.on_notification(&format!("{}|@{stack}={new}#2", there.replica));
        woken.changed().await.unwrap();
        assert_eq!(
            here.hub.snapshot(agent).1.unwrap().pairs,
            vec![(stack, new)]
        );
        for payload in there.payloads(&[agent]) {
            here.on_notification(&payload);
        }
        assert!(here.hub.snapshot(agent).1.is_none());
    }

    #[test]
    fn an_advance_never_goes_back_to_an_older_object() {
        let here = Targeting::default();
        let (agent, stack) = (Uuid::new_v4(), Uuid::new_v4());
        let (first, second, third) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        held(&here, agent, stack, first);
        here.advance_in_order(stack, third, 3);
        here.advance_in_order(stack, second, 2);
        let view = here.hub.snapshot(agent).1.unwrap();
        assert_eq!(
            view.pairs,
            vec![(stack, third)],
            "the late, older advance was dropped"
        );
        assert_eq!(
            parse_advance(&format!("{stack}={first}#7")),
            Some((stack, (first, 7)))
        );
        assert_eq!(parse_advance(&format!("{stack}={first}")), None);
    }

    #[test]
    fn own_notifications_are_ignored_and_payloads_fit() {
        let here = Targeting::new();
        let (agent, stack, object) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        held(&here, agent, stack, object);
        for payload in here.payloads(&[agent]) {
            here.on_notification(&payload);
        }
        assert!(here.hub.snapshot(agent).1.is_some());
        let many: Vec<Uuid> = (0..450).map(|_| Uuid::new_v4()).collect();
        let payloads = here.payloads(&many);
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() < 8000));
    }
}
