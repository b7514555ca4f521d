//! Which stacks reach which agents. A stack reaches an agent when it is assigned directly, or
//! (for a stack without a `target_expression`) when the two share a label or an annotation
//! pair, or (for a stack with one) when its expression holds. An expression that fails to
//! evaluate keeps whatever was decided before: an error never untargets a stack.

use std::collections::{BTreeMap, HashMap};

use cel::Value;
use serde::{Deserialize, Serialize};

use crate::expression::{Facts, TargetExpression};

/// What the targeting rules know about an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFacts {
    pub id: String,
    pub name: String,
    pub cluster_name: String,
    pub labels: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}

/// What the targeting rules know about a stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackFacts {
    pub id: String,
    pub name: String,
    /// The owning generator's name.
    pub generator: String,
    pub labels: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}

fn strings(items: &[String]) -> Value {
    Value::List(std::sync::Arc::new(
        items.iter().map(|s| Value::from(s.as_str())).collect(),
    ))
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    let entries: HashMap<String, Value> = map
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    Value::from(entries)
}

impl AgentFacts {
    /// `agent` as CEL sees it: `id`, `name`, `cluster_name`, `labels` (list), `annotations` (map).
    pub fn to_cel(&self) -> Value {
        let fields: HashMap<&str, Value> = HashMap::from([
            ("id", Value::from(self.id.as_str())),
            ("name", Value::from(self.name.as_str())),
            ("cluster_name", Value::from(self.cluster_name.as_str())),
            ("labels", strings(&self.labels)),
            ("annotations", string_map(&self.annotations)),
        ]);
        Value::from(fields)
    }
}

impl StackFacts {
    /// `stack` as CEL sees it: `id`, `name`, `generator`, `labels`, `annotations`.
    pub fn to_cel(&self) -> Value {
        let fields: HashMap<&str, Value> = HashMap::from([
            ("id", Value::from(self.id.as_str())),
            ("name", Value::from(self.name.as_str())),
            ("generator", Value::from(self.generator.as_str())),
            ("labels", strings(&self.labels)),
            ("annotations", string_map(&self.annotations)),
        ]);
        Value::from(fields)
    }
}

/// One reason a stack reaches an agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    Direct,
    Label { label: String },
    Annotation { key: String, value: String },
    Expression,
}

impl Rule {
    /// A compact text form, as stored (`direct`, `label:prod`, `annotation:region=us`, `expression`).
    pub fn code(&self) -> String {
        match self {
            Self::Direct => "direct".into(),
            Self::Label { label } => format!("label:{label}"),
            Self::Annotation { key, value } => format!("annotation:{key}={value}"),
            Self::Expression => "expression".into(),
        }
    }
}

/// The decision for one (agent, stack) pair and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub targeted: bool,
    pub rules: Vec<Rule>,
    /// The evaluation error, when the expression could not be evaluated.
    pub error: Option<String>,
}

/// Decides whether `stack` reaches `agent`. `previously` is the current decision, kept when
/// the expression fails to evaluate. `cel` carries the precomputed CEL values of both.
pub fn decide(
    agent: &AgentFacts,
    stack: &StackFacts,
    expression: Option<&TargetExpression>,
    direct: bool,
    previously: bool,
    cel: Option<&Facts>,
) -> Verdict {
    let mut rules = Vec::new();
    if direct {
        rules.push(Rule::Direct);
    }
    let mut error = None;
    match expression {
        Some(expression) => {
            let computed;
            let facts = match cel {
                Some(facts) => facts,
                None => {
                    computed = Facts {
                        agent: agent.to_cel(),
                        stack: stack.to_cel(),
                    };
                    &computed
                }
            };
            match expression.evaluate(facts) {
                Ok(true) => rules.push(Rule::Expression),
                Ok(false) => {}
                Err(e) => error = Some(e),
            }
        }
        None => {
            for label in stack.labels.iter().filter(|l| agent.labels.contains(l)) {
                rules.push(Rule::Label {
                    label: label.clone(),
                });
            }
            for (key, value) in stack
                .annotations
                .iter()
                .filter(|(k, v)| agent.annotations.get(*k) == Some(*v))
            {
                rules.push(Rule::Annotation {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
    }
    let targeted = !rules.is_empty() || (error.is_some() && previously);
    Verdict {
        targeted,
        rules,
        error,
    }
}

/// Below this many agents, one thread decides them all.
const PARALLEL_FROM: usize = 2048;

/// Decides one stack for many agents, spreading the work over the machine's cores when there
/// are enough agents. `direct` and `previously` are looked up per agent index.
pub fn decide_for_agents(
    agents: &[AgentFacts],
    stack: &StackFacts,
    expression: Option<&TargetExpression>,
    direct: &(dyn Fn(usize) -> bool + Sync),
    previously: &(dyn Fn(usize) -> bool + Sync),
) -> Vec<Verdict> {
    let stack_cel = expression.map(|_| stack.to_cel());
    let one = |index: usize, agent: &AgentFacts| {
        let facts = stack_cel.as_ref().map(|s| Facts {
            agent: agent.to_cel(),
            stack: s.clone(),
        });
        decide(
            agent,
            stack,
            expression,
            direct(index),
            previously(index),
            facts.as_ref(),
        )
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if expression.is_none() || agents.len() < PARALLEL_FROM || threads < 2 {
        return agents.iter().enumerate().map(|(i, a)| one(i, a)).collect();
    }
    let chunk = agents.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = agents
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                let one = &one;
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, a)| one(n * chunk + i, a))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(labels: &[&str], annotations: &[(&str, &str)]) -> AgentFacts {
        AgentFacts {
            id: "a1".into(),
            name: "edge-1".into(),
            cluster_name: "prod-eu".into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn stack(labels: &[&str], annotations: &[(&str, &str)]) -> StackFacts {
        StackFacts {
            id: "s1".into(),
            name: "web".into(),
            generator: "ci".into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn labels_and_annotations_match_by_sharing() {
        let a = agent(&["prod", "gpu"], &[("region", "us-east")]);
        let v = decide(&a, &stack(&["prod"], &[]), None, false, false, None);
        assert_eq!(
            v.rules,
            vec![Rule::Label {
                label: "prod".into()
            }]
        );
        let v = decide(
            &a,
            &stack(&[], &[("region", "us-east")]),
            None,
            false,
            false,
            None,
        );
        assert!(v.targeted);
        assert!(
            !decide(
                &a,
                &stack(&["staging"], &[("region", "eu")]),
                None,
                false,
                false,
                None
            )
            .targeted
        );
        assert!(
            !decide(&a, &stack(&[], &[]), None, false, false, None).targeted,
            "an unlabelled stack needs a direct assignment"
        );
        assert_eq!(
            decide(&a, &stack(&[], &[]), None, true, false, None).rules,
            vec![Rule::Direct]
        );
    }

    #[test]
    fn an_expression_replaces_label_matching() {
        let a = agent(&["prod"], &[("region", "us-east")]);
        let s = stack(&["prod"], &[("region", "us-east")]);
        let e = TargetExpression::parse(
            r#""prod" in agent.labels && agent.annotations.region == stack.annotations.region"#,
        )
        .unwrap();
        assert_eq!(
            decide(&a, &s, Some(&e), false, false, None).rules,
            vec![Rule::Expression]
        );
        let never = TargetExpression::parse("agent.cluster_name == 'nowhere'").unwrap();
        assert!(
            !decide(&a, &s, Some(&never), false, false, None).targeted,
            "labels do not apply when an expression is set"
        );
    }

    #[test]
    fn many_agents_are_decided_in_order() {
        let agents: Vec<AgentFacts> = (0..5000)
            .map(|i| agent(if i % 2 == 0 { &["prod"] } else { &["dev"] }, &[]))
            .collect();
        let e = TargetExpression::parse("'prod' in agent.labels").unwrap();
        let verdicts =
            decide_for_agents(&agents, &stack(&[], &[]), Some(&e), &|i| i == 1, &|_| false);
        assert_eq!(verdicts.len(), 5000);
        assert!(verdicts[0].targeted && verdicts[1].targeted && !verdicts[3].targeted);
        assert_eq!(verdicts[1].rules, vec![Rule::Direct]);
        assert_eq!(verdicts.iter().filter(|v| v.targeted).count(), 2501);
    }

    #[test]
    fn evaluation_errors_keep_the_previous_decision() {
        let a = agent(&[], &[]);
        let e = TargetExpression::parse("agent.annotations.missing == 'x'").unwrap();
        let kept = decide(&a, &stack(&[], &[]), Some(&e), false, true, None);
        assert!(kept.targeted && kept.error.is_some());
        assert!(!decide(&a, &stack(&[], &[]), Some(&e), false, false, None).targeted);
    }
}
