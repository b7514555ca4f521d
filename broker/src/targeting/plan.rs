//! Planning: what the assignment set should hold for one stack (over its candidate agents) or
//! one agent (over its candidate stacks), compared with what it holds. A plan is computed
//! inside the transaction that made the change, so a dry run is the same change rolled back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use brokkr_policy::{AgentFacts, Rule, TargetExpression, Verdict, decide_for_agents};
use brokkr_types::resources::{Named, TargetingPreview};
use uuid::Uuid;

use crate::db::assignments::{self, Scope, StackRow, join_rules, split_rules};
use crate::db::{StoreResult, Tx};

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
}

/// Compiled expressions by source (stored expressions were checked when written).
fn compiled(source: &str) -> Result<TargetExpression, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, TargetExpression>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(source).cloned()) {
        return Ok(found);
    }
    let expression = TargetExpression::parse(source).map_err(|e| e.to_string())?;
    if let Ok(mut c) = cache.lock() {
        if c.len() > 10_000 {
            c.clear();
        }
        c.insert(source.to_string(), expression.clone());
    }
    Ok(expression)
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
        assignments::remove(tx, &self.lost()).await
    }

    /// The plan as a preview. `by_agent`: list agents (a stack changed) or stacks (an agent did).
    pub fn preview(&self, dry_run: bool, by_agent: bool) -> TargetingPreview {
        let named = |pairs: Vec<Pair>| -> Vec<Named> {
            pairs
                .into_iter()
                .map(|(agent, stack)| {
                    let (id, names) = if by_agent {
                        (agent, &self.agent_names)
                    } else {
                        (stack, &self.stack_names)
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
        }
    }

    /// Decides every pair of `agents` × `stacks` (many agents are decided in parallel).
    fn decide_all(&mut self, agents: &[AgentFacts], stacks: &[StackRow], direct: &HashSet<Pair>) {
        let agent_ids: Vec<Uuid> = agents.iter().map(|a| uuid(&a.id)).collect();
        for (agent, id) in agents.iter().zip(&agent_ids) {
            self.agent_names.insert(*id, agent.name.clone());
        }
        for stack in stacks {
            let stack_id = uuid(&stack.facts.id);
            self.stack_names.insert(stack_id, stack.facts.name.clone());
            let verdicts = self.verdicts(agents, &agent_ids, stack, stack_id, direct);
            for (agent, verdict) in agent_ids.iter().zip(verdicts) {
                let pair = (*agent, stack_id);
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
    }

    fn verdicts(
        &self,
        agents: &[AgentFacts],
        ids: &[Uuid],
        stack: &StackRow,
        stack_id: Uuid,
        direct: &HashSet<Pair>,
    ) -> Vec<Verdict> {
        let is_direct = |i: usize| direct.contains(&(ids[i], stack_id));
        let previously = |i: usize| self.current.contains_key(&(ids[i], stack_id));
        match stack.expression.as_deref().map(compiled) {
            // A stored expression that no longer compiles keeps every decision as it was.
            Some(Err(e)) => (0..agents.len())
                .map(|i| Verdict {
                    targeted: previously(i) || is_direct(i),
                    rules: if is_direct(i) {
                        vec![Rule::Direct]
                    } else {
                        Vec::new()
                    },
                    error: Some(e.clone()),
                })
                .collect(),
            Some(Ok(expression)) => decide_for_agents(
                agents,
                &stack.facts,
                Some(&expression),
                &is_direct,
                &previously,
            ),
            None => decide_for_agents(agents, &stack.facts, None, &is_direct, &previously),
        }
    }
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
    let direct_agents = assignments::direct_of_stack(tx, stack).await?;
    let direct: HashSet<Pair> = direct_agents.iter().map(|a| (*a, stack)).collect();
    let agents = if row.expression.is_some() {
        assignments::agent_facts(tx, Scope::All).await?
    } else {
        let mut candidates = assignments::agents_sharing(tx, &row.facts).await?;
        candidates.extend(direct_agents);
        candidates.extend(plan.current.keys().map(|(a, _)| *a));
        candidates.sort();
        candidates.dedup();
        assignments::agent_facts(tx, Scope::Ids(&candidates)).await?
    };
    plan.decide_all(&agents, &[row], &direct);
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
    let direct_stacks = assignments::direct_of_agent(tx, agent).await?;
    let direct: HashSet<Pair> = direct_stacks.iter().map(|s| (agent, *s)).collect();
    let mut candidates = assignments::stacks_sharing(tx, &facts).await?;
    candidates.extend(assignments::stacks_with_expressions(tx).await?);
    candidates.extend(direct_stacks);
    candidates.extend(plan.current.keys().map(|(_, s)| *s));
    candidates.sort();
    candidates.dedup();
    let stacks = assignments::stack_facts(tx, Scope::Ids(&candidates)).await?;
    plan.decide_all(&[facts], &stacks, &direct);
    Ok(plan)
}
