//! Which wave of a staged rollout each agent of a stack falls in: the first wave whose CEL
//! expression admits it, or whose cumulative percentage covers the agent's bucket, a hash of
//! agent and stack ids (so a wave's members stay the same from one release to the next). An
//! agent in no wave is released when the last wave passes.

use std::collections::BTreeMap;

use brokkr_policy::AgentFacts;
use brokkr_types::staged::{RolloutStrategy, StagedState};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::compiled;
use crate::db::assignments::{self, Scope};
use crate::db::staged::{self, Member};
use crate::db::{StoreResult, Tx};

/// Buckets an agent can fall in: a percentage is `percent * 100` of them.
const BUCKETS: u32 = 10_000;

/// The agent's bucket for this stack, in `0..10_000`.
pub fn bucket(agent: Uuid, stack: Uuid) -> u32 {
    let digest = Sha256::new()
        .chain_update(agent.as_bytes())
        .chain_update(stack.as_bytes())
        .finalize();
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    first % BUCKETS
}

/// The wave of each agent (`strategy.waves.len()` for none), in the order given. A wave's
/// expression that no longer compiles admits nobody (it compiled when it was written).
pub fn waves_of(strategy: &RolloutStrategy, stack: Uuid, agents: &[AgentFacts]) -> Vec<i64> {
    let rules: Vec<Rule> = strategy
        .waves
        .iter()
        .map(|w| match (&w.agents, w.percent) {
            (Some(text), _) => Rule::Expression(compiled::reach(text.as_str()).ok()),
            (None, Some(percent)) => Rule::Below(u32::from(percent) * (BUCKETS / 100)),
            (None, None) => Rule::Expression(None),
        })
        .collect();
    agents
        .iter()
        .map(|agent| {
            let id = Uuid::parse_str(&agent.id).unwrap_or_default();
            let bucket = bucket(id, stack);
            let wave = rules.iter().position(|rule| match rule {
                Rule::Expression(Some(expression)) => expression.admits(agent),
                Rule::Expression(None) => false,
                Rule::Below(limit) => bucket < *limit,
            });
            wave.unwrap_or(rules.len()) as i64
        })
        .collect()
}

/// Agents that gained a stack whose newest release is staged get the version of the wave they
/// fall in: the release once their wave started, else the version before it (and that one
/// after a rollback).
pub async fn admit(tx: &mut Tx, gained: &[(Uuid, Uuid)]) -> StoreResult<()> {
    let mut by_stack: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (agent, stack) in gained {
        by_stack.entry(*stack).or_default().push(*agent);
    }
    for (stack, agents) in by_stack {
        let Some(row) = staged::of_newest(tx, stack).await? else {
            continue;
        };
        let state = row.state();
        let Ok(strategy) = serde_json::from_str::<RolloutStrategy>(&row.strategy) else {
            continue;
        };
        if !state.is_live() && state != StagedState::RolledBack {
            continue;
        }
        let facts = assignments::agent_facts(tx, Scope::Ids(&agents)).await?;
        let waves = waves_of(&strategy, stack, &facts);
        let members: Vec<Member> = facts
            .iter()
            .zip(waves)
            .filter_map(|(facts, wave)| {
                let agent = Uuid::parse_str(&facts.id).ok()?;
                let waiting = state == StagedState::RolledBack || wave > row.wave;
                Some(Member {
                    agent,
                    wave,
                    base: row.previous_object_id,
                    held: waiting.then_some(row.previous_object_id),
                })
            })
            .collect();
        staged::add_members(tx, stack, &members).await?;
    }
    Ok(())
}

enum Rule {
    Expression(Option<brokkr_policy::ReachExpression>),
    Below(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(labels: &[&str]) -> AgentFacts {
        AgentFacts {
            id: Uuid::new_v4().to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ..AgentFacts::default()
        }
    }

    #[test]
    fn agents_fall_in_the_first_wave_that_takes_them() {
        let strategy: RolloutStrategy = serde_json::from_str(
            r#"{"waves": [{"name": "canary", "agents": "\"canary\" in agent.labels"},
                {"name": "half", "percent": 50}, {"name": "all", "percent": 100}]}"#,
        )
        .unwrap();
        let stack = Uuid::new_v4();
        let mut agents = vec![agent(&["canary"]), agent(&[])];
        agents.extend((0..2000).map(|_| agent(&[])));
        let waves = waves_of(&strategy, stack, &agents);
        assert_eq!(waves[0], 0);
        assert!(waves[1..].iter().all(|w| *w == 1 || *w == 2));
        let half = waves[1..].iter().filter(|w| **w == 1).count();
        assert!((800..1200).contains(&half), "about half: {half}");
        assert_eq!(waves, waves_of(&strategy, stack, &agents), "stable");
    }

    #[test]
    fn an_agent_in_no_wave_waits_for_the_last() {
        let strategy: RolloutStrategy = serde_json::from_str(
            r#"{"waves": [{"name": "edge", "agents": "\"edge\" in agent.labels"}]}"#,
        )
        .unwrap();
        assert_eq!(waves_of(&strategy, Uuid::new_v4(), &[agent(&[])]), [1]);
    }
}
