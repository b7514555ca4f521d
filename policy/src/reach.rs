//! [`ReachExpression`]: the tenancy boundary of a generator. A CEL expression over `agent`
//! alone, set by an admin: a generator's stacks can reach only the agents it admits. An agent
//! for which the expression fails to evaluate (it reads an annotation the agent lacks, say) is
//! outside the reach: the boundary fails closed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::expression::{ExpressionError, TargetExpression};
use crate::parallel;
use crate::targeting::AgentFacts;

/// The variables a reach may read.
pub const REACH_VARIABLES: &[&str] = &["agent"];

/// A checked, compiled reach.
#[derive(Clone, PartialEq)]
pub struct ReachExpression(TargetExpression);

impl fmt::Debug for ReachExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReachExpression")
            .field(&self.0.source())
            .finish()
    }
}

impl ReachExpression {
    /// Checks and compiles `source`, which may read only `agent`.
    pub fn parse(source: &str) -> Result<Self, ExpressionError> {
        TargetExpression::parse_with(source, REACH_VARIABLES).map(Self)
    }

    pub fn source(&self) -> &str {
        self.0.source()
    }

    /// The estimated steps of one evaluation.
    pub fn cost(&self) -> u64 {
        self.0.cost()
    }

    /// `Some(b)` when the reach is the literal `true` or `false` (no evaluation needed).
    pub fn constant(&self) -> Option<bool> {
        match self.source().trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// Whether `agent` is inside the reach (an evaluation error means it is not).
    pub fn admits(&self, agent: &AgentFacts) -> bool {
        if let Some(constant) = self.constant() {
            return constant;
        }
        self.0
            .evaluate_with(&[("agent", &agent.to_cel())])
            .unwrap_or(false)
    }

    /// [`ReachExpression::admits`] for many agents, spread over the machine's cores.
    pub fn admits_all(&self, agents: &[AgentFacts]) -> Vec<bool> {
        if let Some(constant) = self.constant() {
            return vec![constant; agents.len()];
        }
        parallel::map_indexed(agents, &|_, agent| self.admits(agent))
    }
}

impl Serialize for ReachExpression {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.source())
    }
}

impl<'de> Deserialize<'de> for ReachExpression {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(labels: &[&str], team: Option<&str>) -> AgentFacts {
        AgentFacts {
            id: "a".into(),
            name: "edge".into(),
            cluster_name: "c".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            annotations: team
                .map(|t| [("team".to_string(), t.to_string())].into())
                .unwrap_or_default(),
        }
    }

    #[test]
    fn admits_by_agent_facts_and_fails_closed() {
        let reach = ReachExpression::parse(r#"agent.annotations.team == "a""#).unwrap();
        assert!(reach.admits(&agent(&[], Some("a"))));
        assert!(!reach.admits(&agent(&[], Some("b"))));
        assert!(
            !reach.admits(&agent(&[], None)),
            "a missing annotation is an evaluation error: outside"
        );
        let labels = ReachExpression::parse(r#""team-a" in agent.labels"#).unwrap();
        let agents = vec![agent(&["team-a"], None), agent(&["team-b"], None)];
        assert_eq!(labels.admits_all(&agents), vec![true, false]);
    }

    #[test]
    fn only_agent_is_in_scope() {
        let err = ReachExpression::parse("stack.name == 'x'").unwrap_err();
        assert!(err.message.contains("unknown variable `stack`"), "{err}");
        assert!(serde_json::from_str::<ReachExpression>(r#""agent.name ==""#).is_err());
        let nothing: ReachExpression = serde_json::from_str(r#""false""#).unwrap();
        assert_eq!(nothing.constant(), Some(false));
        assert!(!nothing.admits(&agent(&[], None)));
        assert_eq!(
            ReachExpression::parse(" true ").unwrap().constant(),
            Some(true)
        );
    }
}
