//! The hub: per agent, the current view of its target state (ETag and which deployment object
//! each stack is at) and a channel that wakes its long polls. Views are dropped when anything
//! relevant changes; a view computed from the database is only kept if nothing changed while
//! it was being computed (a per-agent generation number guards that race).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;
use uuid::Uuid;

const SHARDS: usize = 16;

/// What an agent should converge to, as far as a poll needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub etag: String,
    /// `(stack, deployment object)` ordered by stack.
    pub pairs: Vec<(Uuid, Uuid)>,
    /// The policies the agent must run, as the JSON array sent in the body.
    pub policies: Bytes,
    /// The work order runs waiting for the agent, as the JSON array sent in the body.
    pub work: Bytes,
}

impl View {
    /// A view; the ETag covers the pairs, the policies and the waiting work.
    pub fn new(agent: Uuid, pairs: Vec<(Uuid, Uuid)>, policies: Bytes, work: Bytes) -> Self {
        let etag = crate::domain::target_etag::etag(agent, &pairs, &[&policies, &work]);
        Self {
            etag,
            pairs,
            policies,
            work,
        }
    }
}

#[derive(Debug)]
struct Slot {
    generation: u64,
    view: Option<Arc<View>>,
    /// Wakes the agent's long polls; made by the first poll that waits and dropped by the first
    /// change after the last of them left, so an agent that polls without waiting (or stopped
    /// waiting) carries no channel (a watch channel is ~350 bytes, most of a slot).
    wake: Option<watch::Sender<u64>>,
}

impl Slot {
    fn new() -> Self {
        Self {
            generation: 0,
            view: None,
            wake: None,
        }
    }

    /// Moves the slot on one generation and wakes the polls waiting on it.
    fn move_on(&mut self) {
        self.generation += 1;
        if let Some(wake) = &self.wake {
            if wake.receiver_count() == 0 {
                self.wake = None;
            } else {
                wake.send_replace(self.generation);
            }
        }
    }

    /// Whether a poll waits on this slot.
    fn waited_on(&self) -> bool {
        self.wake
            .as_ref()
            .is_some_and(|wake| wake.receiver_count() > 0)
    }

    fn subscribe(&mut self) -> watch::Receiver<u64> {
        let generation = self.generation;
        self.wake
            .get_or_insert_with(|| watch::channel(generation).0)
            .subscribe()
    }
}

#[derive(Debug)]
pub struct Hub {
    shards: Vec<Mutex<HashMap<Uuid, Slot>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

fn lock(shard: &Mutex<HashMap<Uuid, Slot>>) -> MutexGuard<'_, HashMap<Uuid, Slot>> {
    match shard.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Hub {
    fn shard(&self, agent: Uuid) -> MutexGuard<'_, HashMap<Uuid, Slot>> {
        let index = (agent.as_u128() % SHARDS as u128) as usize;
        lock(&self.shards[index])
    }

    /// The generation to compute against, and the current view if one is known.
    pub fn snapshot(&self, agent: Uuid) -> (u64, Option<Arc<View>>) {
        let mut shard = self.shard(agent);
        let slot = shard.entry(agent).or_insert_with(Slot::new);
        (slot.generation, slot.view.clone())
    }

    /// Keeps a computed view unless the agent changed since `generation` was read.
    pub fn store(&self, agent: Uuid, generation: u64, view: Arc<View>) -> bool {
        let mut shard = self.shard(agent);
        match shard.get_mut(&agent) {
            Some(slot) if slot.generation == generation => {
                slot.view = Some(view);
                true
            }
            _ => false,
        }
    }

    /// A receiver that changes whenever the agent's target state does.
    pub fn subscribe(&self, agent: Uuid) -> watch::Receiver<u64> {
        self.shard(agent)
            .entry(agent)
            .or_insert_with(Slot::new)
            .subscribe()
    }

    pub fn invalidate(&self, agents: impl IntoIterator<Item = Uuid>) {
        for agent in agents {
            let mut shard = self.shard(agent);
            if let Some(slot) = shard.get_mut(&agent) {
                slot.view = None;
                slot.move_on();
            }
        }
    }

    /// A stack moved to a new deployment object: the views of `agents` that hold the stack are
    /// updated in place (no database work), and their long polls are woken.
    pub fn advance(&self, agents: impl IntoIterator<Item = Uuid>, stack: Uuid, object: Uuid) {
        for agent in agents {
            let mut shard = self.shard(agent);
            let Some(slot) = shard.get_mut(&agent) else {
                continue;
            };
            slot.view = slot
                .view
                .take()
                .and_then(|view| advanced(agent, &view, stack, object));
            slot.move_on();
        }
    }

    /// [`Hub::advance`] for every agent holding `stack`, found by looking at every view (no
    /// list of agents needed). A slot without a view may be computing one from before the
    /// change: its generation moves too, so that view is not kept. Each shard is locked briefly
    /// twice (to find the views, then to swap them in); the new views are made in between, so
    /// the polls this wakes are not held up behind the rest of the shard. Views with a poll
    /// waiting on them go first: agents that polled once and went away (their views stay) do
    /// not hold up the answers of those that wait.
    pub fn advance_stack(&self, stack: Uuid, object: Uuid) {
        for waited_on in [true, false] {
            for shard in &self.shards {
                advance_shard(shard, stack, object, waited_on);
            }
        }
    }

    pub fn invalidate_all(&self) {
        for shard in &self.shards {
            let mut shard = match shard.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            for slot in shard.values_mut() {
                slot.view = None;
                slot.move_on();
            }
        }
    }

    /// Agents with a slot (polled at least once).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|g| g.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`Hub::advance_stack`] in one shard: with `waited_on`, only the views a poll waits on;
/// otherwise every slot still behind.
fn advance_shard(shard: &Mutex<HashMap<Uuid, Slot>>, stack: Uuid, object: Uuid, waited_on: bool) {
    let found: Vec<(Uuid, u64, Option<Arc<View>>)> = lock(shard)
        .iter()
        .filter_map(|(agent, slot)| {
            let affected = match &slot.view {
                Some(view) => view.pairs.iter().any(|(s, o)| *s == stack && *o != object),
                None => !waited_on,
            };
            let wanted = affected && (!waited_on || slot.waited_on());
            wanted.then(|| (*agent, slot.generation, slot.view.clone()))
        })
        .collect();
    if found.is_empty() {
        return;
    }
    let advanced: Vec<(Uuid, u64, Option<Arc<View>>)> = found
        .into_iter()
        .map(|(agent, generation, view)| {
            let view = view.and_then(|v| advanced(agent, &v, stack, object));
            (agent, generation, view)
        })
        .collect();
    let mut shard = lock(shard);
    for (agent, generation, view) in advanced {
        let Some(slot) = shard.get_mut(&agent) else {
            continue;
        };
        // A slot that changed meanwhile is left as that change made it, but moved on.
        let view = if slot.generation == generation {
            view
        } else {
            None
        };
        slot.view = view;
        slot.move_on();
    }
}

/// `view` with `stack` at `object`; `None` when the view does not hold the stack (it must then
/// be recomputed, since the stack may have just been assigned).
fn advanced(agent: Uuid, view: &View, stack: Uuid, object: Uuid) -> Option<Arc<View>> {
    let index = view.pairs.iter().position(|(s, _)| *s == stack)?;
    let mut pairs = view.pairs.clone();
    pairs[index].1 = object;
    Some(Arc::new(View::new(
        agent,
        pairs,
        view.policies.clone(),
        view.work.clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(etag: &str) -> Arc<View> {
        Arc::new(View {
            etag: etag.into(),
            pairs: Vec::new(),
            policies: Bytes::from_static(b"[]"),
            work: Bytes::from_static(b"[]"),
        })
    }

    #[test]
    fn a_view_computed_before_a_change_is_not_kept() {
        let hub = Hub::default();
        let agent = Uuid::new_v4();
        let (generation, none) = hub.snapshot(agent);
        assert!(none.is_none());
        hub.invalidate([agent]);
        assert!(!hub.store(agent, generation, view("stale")));
        let (generation, _) = hub.snapshot(agent);
        assert!(hub.store(agent, generation, view("fresh")));
        assert_eq!(hub.snapshot(agent).1.unwrap().etag, "fresh");
    }

    #[test]
    fn advancing_updates_views_in_place() {
        let hub = Hub::default();
        let (agent, stack, old, new) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let (generation, _) = hub.snapshot(agent);
        hub.store(
            agent,
            generation,
            Arc::new(View::new(
                agent,
                vec![(stack, old)],
                Bytes::from_static(b"[]"),
                Bytes::from_static(b"[]"),
            )),
        );
        hub.advance([agent], stack, new);
        let view = hub.snapshot(agent).1.expect("kept");
        assert_eq!(view.pairs, vec![(stack, new)]);
        assert_eq!(
            view.etag,
            View::new(
                agent,
                vec![(stack, new)],
                Bytes::from_static(b"[]"),
                Bytes::from_static(b"[]")
            )
            .etag
        );
        hub.advance([agent], Uuid::new_v4(), new);
        assert!(
            hub.snapshot(agent).1.is_none(),
            "an unknown stack forces a recomputation"
        );
    }

    fn holding(hub: &Hub, agent: Uuid, stack: Uuid, object: Uuid) {
        let (generation, _) = hub.snapshot(agent);
        let empty = || Bytes::from_static(b"[]");
        let view = View::new(agent, vec![(stack, object)], empty(), empty());
        assert!(hub.store(agent, generation, Arc::new(view)));
    }

    #[test]
    fn advancing_a_stack_reaches_waited_on_idle_and_viewless_slots() {
        let hub = Hub::default();
        let (stack, old, new) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (waiting, idle, viewless) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        holding(&hub, waiting, stack, old);
        holding(&hub, idle, stack, old);
        let woken = hub.subscribe(waiting);
        let (before, _) = hub.snapshot(viewless);
        hub.advance_stack(stack, new);
        assert!(woken.has_changed().unwrap());
        for agent in [waiting, idle] {
            let view = hub.snapshot(agent).1.expect("advanced in place");
            assert_eq!(view.pairs, vec![(stack, new)]);
        }
        let (after, view) = hub.snapshot(viewless);
        assert!(view.is_none());
        assert_eq!(after, before + 1, "a view being computed is not kept");
        let (generation, _) = hub.snapshot(waiting);
        hub.advance_stack(stack, new);
        assert_eq!(
            hub.snapshot(waiting).0,
            generation,
            "nothing behind: untouched"
        );
    }

    #[test]
    fn only_slots_a_poll_waits_on_carry_a_wake_channel() {
        let hub = Hub::default();
        let agent = Uuid::new_v4();
        let has_channel = |hub: &Hub| {
            hub.shard(agent)
                .get(&agent)
                .is_some_and(|s| s.wake.is_some())
        };
        hub.snapshot(agent);
        assert!(!has_channel(&hub), "a poll that does not wait makes none");
        let first = hub.subscribe(agent);
        hub.invalidate([agent]);
        assert!(first.has_changed().unwrap());
        assert!(has_channel(&hub), "kept while a poll waits");
        drop(first);
        hub.invalidate([agent]);
        assert!(
            !has_channel(&hub),
            "dropped by the first change after the last poll left"
        );
        let mut again = hub.subscribe(agent);
        assert!(!again.has_changed().unwrap());
        hub.invalidate([agent]);
        assert!(again.has_changed().unwrap());
        assert_eq!(*again.borrow_and_update(), hub.snapshot(agent).0);
    }

    #[tokio::test]
    async fn changes_wake_subscribers() {
        let hub = Hub::default();
        let agent = Uuid::new_v4();
        let mut rx = hub.subscribe(agent);
        hub.invalidate([agent]);
        rx.changed().await.unwrap();
        hub.invalidate_all();
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 2);
    }
}
