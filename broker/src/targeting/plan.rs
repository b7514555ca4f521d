//! Planning: what the assignment set should hold for one stack (over its candidate agents) or
//! one agent (over its candidate stacks), compared with what it holds. A plan is computed
//! inside the transaction that made the change, so a dry run is the same change rolled back.
//! Every pair is confined to the reach of the generator owning the stack: outside it no rule
//! is evaluated, and only an admin's direct assignment holds.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use brokkr_policy::{AgentFacts, Direct, Pairing, Rule, Verdict, decide_for_agents};
use brokkr_types::resources::{Named, TargetingPreview};
use uuid::Uuid;

use super::compiled::target_expression as compiled;
use crate::db::assignments::{self, Scope, StackRow, join_rules, split_rules};
use crate::db::{StoreError, StoreResult, Tx, generators, reach, stacks};

/// A pair: `(agent, stack)`.
pub type Pair = (Uuid, Uuid);

/// Desired and current assignments of the pairs a change can affect.
#[derive(Debug, Default)]
pub struct Plan {
    pub desired: BTreeMap<Pair, Vec<String>>,
    pub current: BTreeMap<Pair, Vec<String>>,
    pub errors: Vec<(Pair, String)>,
    agent_names: HashMap<Uuid, String>,
    stack_names: HashMap<Uuid, String>,
    stack_owners: HashMap<Uuid, Uuid>,
}

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap_or_default()
}

impl Plan {
    pub fn gained(&self) -> Vec<Pair> {
        self.desired
            .keys()
            .filter(|p| !self.current.contains_key(p))
            .copied()
            .collect()
    }

    pub fn lost(&self) -> Vec<Pair> {
        self.current
            .keys()
            .filter(|p| !self.desired.contains_key(p))
            .copied()
            .collect()
    }

    /// How many distinct agents lose a stack.
    pub fn agents_losing(&self) -> usize {
        self.lost()
            .into_iter()
            .map(|(agent, _)| agent)
            .collect::<HashSet<_>>()
            .len()
    }

    /// Agents whose target state this plan changes.
    pub fn affected_agents(&self) -> Vec<Uuid> {
        let changed = self.gained().into_iter().chain(self.lost());
        changed
            .map(|(agent, _)| agent)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Writes the plan: new and re-ruled pairs are upserted, lost pairs removed.
    pub async fn apply(&self, tx: &mut Tx) -> StoreResult<()> {
        let upserts: Vec<(Uuid, Uuid, String)> = self
            .desired
            .iter()
            .filter(|(pair, rules)| self.current.get(pair) != Some(rules))
            .map(|((agent, stack), rules)| (*agent, *stack, join_rules(rules)))
            .collect();
        assignments::upsert(tx, &upserts).await?;
        assignments::remove(tx, &self.lost()).await?;
        super::waves::admit(tx, &self.gained()).await
    }

    /// The plan as a preview. `by_agent`: list agents (a stack changed) or stacks (an agent did).
    pub fn preview(&self, dry_run: bool, by_agent: bool) -> TargetingPreview {
        let named = |pairs: Vec<Pair>| -> Vec<Named> {
            let mut seen = HashSet::new();
            pairs
                .into_iter()
                .map(|(agent, stack)| if by_agent { agent } else { stack })
                .filter(|id| seen.insert(*id))
                .map(|id| {
                    let names = if by_agent {
                        &self.agent_names
                    } else {
                        &self.stack_names
                    };
                    Named {
                        id,
                        name: names.get(&id).cloned().unwrap_or_default(),
                    }
                })
                .collect()
        };
        TargetingPreview {
            dry_run,
            gained: named(self.gained()),
            lost: named(self.lost()),
            errors: self
                .errors
                .iter()
                .map(|((a, s), e)| format!("agent {a}, stack {s}: {e}"))
                .collect(),
            waves: Vec::new(),
        }
    }

    /// Adds the pairs of another plan (of other stacks).
    pub fn merge(&mut self, other: Plan) {
        self.desired.extend(other.desired);
        self.current.extend(other.current);
        self.errors.extend(other.errors);
        self.agent_names.extend(other.agent_names);
        self.stack_names.extend(other.stack_names);
        self.stack_owners.extend(other.stack_owners);
    }

    /// The name of an agent this plan decided for.
    pub fn agent_name(&self, agent: Uuid) -> Option<&str> {
        self.agent_names.get(&agent).map(String::as_str)
    }

    /// The name and owning generator of a stack this plan decided for.
    pub fn stack_named(&self, stack: Uuid) -> Option<(&str, Uuid)> {
        let name = self.stack_names.get(&stack)?;
        Some((name, *self.stack_owners.get(&stack)?))
    }

    /// Decides every pair of `agents` × `stacks` (many agents are decided in parallel).
    fn decide_all(&mut self, agents: &[AgentFacts], stacks: &[StackRow], known: &Known) {
        let agent_ids: Vec<Uuid> = agents.iter().map(|a| uuid(&a.id)).collect();
        for (agent, id) in agents.iter().zip(&agent_ids) {
            self.agent_names.insert(*id, agent.name.clone());
        }
        for stack in stacks {
            let stack_id = uuid(&stack.facts.id);
            self.stack_names.insert(stack_id, stack.facts.name.clone());
            self.stack_owners.insert(stack_id, stack.generator_id);
            let pairing = |i: usize| Pairing {
                direct: known.direct(agent_ids[i], stack_id),
                previously: self.current.contains_key(&(agent_ids[i], stack_id)),
                within_reach: known.reach.admits(agent_ids[i], stack.generator_id),
            };
            let verdicts = verdicts(agents, stack, &pairing);
            for (agent, verdict) in agent_ids.iter().zip(verdicts) {
                self.record((*agent, stack_id), verdict);
            }
        }
    }

    fn record(&mut self, pair: Pair, verdict: Verdict) {
        if let Some(error) = verdict.error {
            self.errors.push((pair, error));
        }
        if verdict.targeted {
            let rules: Vec<String> = verdict.rules.iter().map(|r| r.code()).collect();
            let kept = if rules.is_empty() {
                self.current.get(&pair).cloned().unwrap_or_default()
            } else {
                rules
            };
            self.desired.insert(pair, kept);
        }
    }
}

fn verdicts(
    agents: &[AgentFacts],
    stack: &StackRow,
    pairing: &(dyn Fn(usize) -> Pairing + Sync),
) -> Vec<Verdict> {
    match stack.expression.as_deref().map(compiled) {
        // A stored expression that no longer compiles keeps every decision as it was (within
        // the reach); an admin's direct assignment holds regardless.
        Some(Err(e)) => (0..agents.len())
            .map(|i| {
                let p = pairing(i);
                let admin = p.direct == Direct::ByAdmin;
                let direct = p.direct != Direct::No && (p.within_reach || admin);
                Verdict {
                    targeted: direct || (p.within_reach && p.previously),
                    rules: match p.direct {
                        Direct::ByAdmin => vec![Rule::AdminDirect],
                        Direct::ByGenerator if p.within_reach => vec![Rule::Direct],
                        _ => Vec::new(),
                    },
                    error: p.within_reach.then(|| e.clone()),
                    within_reach: p.within_reach,
                }
            })
            .collect(),
        Some(Ok(expression)) => decide_for_agents(agents, &stack.facts, Some(&expression), pairing),
        None => decide_for_agents(agents, &stack.facts, None, pairing),
    }
}

/// Who may be reached: everyone (a generator whose reach is `true`), the agents in one
/// generator's reach, or (for one agent) the generators whose reach holds it.
#[derive(Debug)]
pub(crate) enum ReachSet {
    Everyone,
    Agents(HashSet<Uuid>),
    Generators(HashSet<Uuid>),
}

impl ReachSet {
    pub(crate) fn admits(&self, agent: Uuid, generator: Uuid) -> bool {
        match self {
            Self::Everyone => true,
            Self::Agents(agents) => agents.contains(&agent),
            Self::Generators(generators) => generators.contains(&generator),
        }
    }
}

/// Direct assignments (and whether an admin made them) and the reach of the pairs planned.
#[derive(Debug)]
struct Known {
    direct: HashMap<Pair, bool>,
    reach: ReachSet,
}

impl Known {
    fn direct(&self, agent: Uuid, stack: Uuid) -> Direct {
        match self.direct.get(&(agent, stack)) {
            None => Direct::No,
            Some(false) => Direct::ByGenerator,
            Some(true) => Direct::ByAdmin,
        }
    }
}

/// The reach of one generator: everyone for the literal `true`, else the materialized set.
pub(crate) async fn reach_of_generator(tx: &mut Tx, generator: Uuid) -> StoreResult<ReachSet> {
    let source = generators::reach_of(tx, generator).await?;
    if source.as_deref().map(str::trim) == Some("true") {
        return Ok(ReachSet::Everyone);
    }
    Ok(ReachSet::Agents(reach::agents_of(tx, generator).await?))
}

/// The plan for one stack over every agent it could reach.
pub async fn for_stack(tx: &mut Tx, stack: Uuid) -> StoreResult<Plan> {
    let mut plan = Plan::default();
    let Some(row) = assignments::stack_facts(tx, Scope::Ids(&[stack]))
        .await?
        .pop()
    else {
        return Ok(plan);
    };
    plan.current = assignments::current_of_stack(tx, stack)
        .await?
        .into_iter()
        .map(|(a, r)| ((a, stack), split_rules(&r)))
        .collect();
    let direct = assignments::direct_of_stack(tx, stack).await?;
    let known = Known {
        direct: direct
            .iter()
            .map(|(a, admin)| ((*a, stack), *admin))
            .collect(),
        reach: reach_of_generator(tx, row.generator_id).await?,
    };
    let mut candidates: Vec<Uuid> = direct.iter().map(|(a, _)| *a).collect();
    candidates.extend(plan.current.keys().map(|(a, _)| *a));
    let agents = match (&row.expression, &known.reach) {
        (Some(_), ReachSet::Everyone) => assignments::agent_facts(tx, Scope::All).await?,
        (Some(_), ReachSet::Agents(reach)) => {
            candidates.extend(reach.iter().copied());
            facts_of(tx, candidates).await?
        }
        // A stack's plan holds one generator's reach; this arm only keeps the match total.
        (Some(_), ReachSet::Generators(_)) => facts_of(tx, candidates).await?,
        (None, reach) => {
            let sharing = assignments::agents_sharing(tx, &row.facts).await?;
            let generator = row.generator_id;
            candidates.extend(sharing.into_iter().filter(|a| reach.admits(*a, generator)));
            facts_of(tx, candidates).await?
        }
    };
    decide_off_the_workers(plan, agents, row, known).await
}

/// Decides one stack over many agents on the blocking pool: CEL over a fleet is CPU work
/// that must not stall the async workers.
async fn decide_off_the_workers(
    mut plan: Plan,
    agents: Vec<AgentFacts>,
    row: StackRow,
    known: Known,
) -> StoreResult<Plan> {
    tokio::task::spawn_blocking(move || {
        plan.decide_all(&agents, &[row], &known);
        plan
    })
    .await
    .map_err(|e| StoreError::Integrity(format!("targeting decisions failed: {e}")))
}

async fn facts_of(tx: &mut Tx, mut ids: Vec<Uuid>) -> StoreResult<Vec<AgentFacts>> {
    ids.sort();
    ids.dedup();
    assignments::agent_facts(tx, Scope::Ids(&ids)).await
}

/// The plans of every live stack of a generator (its reach or its name changed), as one.
pub async fn for_generator(tx: &mut Tx, generator: Uuid) -> StoreResult<Plan> {
    let mut plan = Plan::default();
    for stack in stacks::live_ids_of_generator(tx, generator).await? {
        plan.merge(for_stack(tx, stack).await?);
    }
    Ok(plan)
}

/// The plan for one agent over every stack that could reach it.
pub async fn for_agent(tx: &mut Tx, agent: Uuid) -> StoreResult<Plan> {
    let mut plan = Plan::default();
    let Some(facts) = assignments::agent_facts(tx, Scope::Ids(&[agent]))
        .await?
        .pop()
    else {
        return Ok(plan);
    };
    plan.current = assignments::current_of_agent(tx, agent)
        .await?
        .into_iter()
        .map(|(s, r)| ((agent, s), split_rules(&r)))
        .collect();
    let direct = assignments::direct_of_agent(tx, agent).await?;
    let known = Known {
        direct: direct
            .iter()
            .map(|(s, admin)| ((agent, *s), *admin))
            .collect(),
        reach: ReachSet::Generators(reach::generators_of(tx, agent).await?),
    };
    let mut candidates = assignments::stacks_sharing(tx, &facts).await?;
    candidates.extend(assignments::stacks_with_expressions_reaching(tx, agent).await?);
    candidates.extend(direct.iter().map(|(s, _)| *s));
    candidates.extend(plan.current.keys().map(|(_, s)| *s));
    candidates.sort();
    candidates.dedup();
    let stacks = assignments::stack_facts(tx, Scope::Ids(&candidates)).await?;
    plan.decide_all(&[facts], &stacks, &known);
    Ok(plan)
}
