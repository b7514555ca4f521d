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
    /// Assigned directly by the generator owning the stack (confined to its reach).
    Direct,
    /// Assigned directly by an admin: not confined to the generator's reach.
    AdminDirect,
    Label {
        label: String,
    },
    Annotation {
        key: String,
        value: String,
    },
    Expression,
}

impl Rule {
    /// A compact text form, as stored (`direct`, `admin_direct`, `label:prod`,
    /// `annotation:region=us`, `expression`).
    pub fn code(&self) -> String {
        match self {
            Self::Direct => "direct".into(),
            Self::AdminDirect => "admin_direct".into(),
            Self::Label { label } => format!("label:{label}"),
            Self::Annotation { key, value } => format!("annotation:{key}={value}"),
            Self::Expression => "expression".into(),
        }
    }
}

/// Whether, and by whom, a stack is assigned directly to an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direct {
    #[default]
    No,
    /// By the generator owning the stack.
    ByGenerator,
    /// By an admin.
    ByAdmin,
}

/// What is known about one (agent, stack) pair besides the facts of both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pairing {
    pub direct: Direct,
    /// The current decision, kept when the expression fails to evaluate.
    pub previously: bool,
    /// Whether the agent is inside the reach of the generator owning the stack.
    pub within_reach: bool,
}

/// The decision for one (agent, stack) pair and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub targeted: bool,
    pub rules: Vec<Rule>,
    /// The evaluation error, when the expression could not be evaluated.
    pub error: Option<String>,
    /// Whether the agent is inside the owning generator's reach. Outside it only an admin's
    /// direct assignment holds; no other rule is even evaluated.
    pub within_reach: bool,
}

/// The rules of labels and annotations shared by the stack and the agent.
fn shared_metadata(agent: &AgentFacts, stack: &StackFacts) -> Vec<Rule> {
    let labels = stack
        .labels
        .iter()
        .filter(|l| agent.labels.contains(l))
        .map(|label| Rule::Label {
            label: label.clone(),
        });
    let annotations = stack
        .annotations
        .iter()
        .filter(|(k, v)| agent.annotations.get(*k) == Some(*v))
        .map(|(key, value)| Rule::Annotation {
            key: key.clone(),
            value: value.clone(),
        });
    labels.chain(annotations).collect()
}

/// Decides whether `stack` reaches `agent`. `cel` carries the precomputed CEL values of both.
pub fn decide(
    agent: &AgentFacts,
    stack: &StackFacts,
    expression: Option<&TargetExpression>,
    pairing: Pairing,
    cel: Option<&Facts>,
) -> Verdict {
    if !pairing.within_reach {
        let admin = pairing.direct == Direct::ByAdmin;
        return Verdict {
            targeted: admin,
            rules: if admin {
                vec![Rule::AdminDirect]
            } else {
                Vec::new()
            },
            error: None,
            within_reach: false,
        };
    }
    let mut rules = match pairing.direct {
        Direct::No => Vec::new(),
        Direct::ByGenerator => vec![Rule::Direct],
        Direct::ByAdmin => vec![Rule::AdminDirect],
    };
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
        None => rules.extend(shared_metadata(agent, stack)),
    }
    let targeted = !rules.is_empty() || (error.is_some() && pairing.previously);
    Verdict {
        targeted,
        rules,
        error,
        within_reach: true,
    }
}

/// Decides one stack for many agents, spreading the work over the machine's cores when there
/// are enough agents. `pairing` is looked up per agent index.
pub fn decide_for_agents(
    agents: &[AgentFacts],
    stack: &StackFacts,
    expression: Option<&TargetExpression>,
    pairing: &(dyn Fn(usize) -> Pairing + Sync),
) -> Vec<Verdict> {
    let stack_cel = expression.map(|_| stack.to_cel());
    let one = |index: usize, agent: &AgentFacts| {
        let pairing = pairing(index);
        let facts = stack_cel
            .as_ref()
            .filter(|_| pairing.within_reach)
            .map(|s| Facts {
                agent: agent.to_cel(),
                stack: s.clone(),
            });
        decide(agent, stack, expression, pairing, facts.as_ref())
    };
    if expression.is_none() {
        return agents.iter().enumerate().map(|(i, a)| one(i, a)).collect();
    }
    crate::parallel::map_indexed(agents, &one)
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

    /// Inside the reach, with the given direct assignment.
    fn inside(direct: Direct) -> Pairing {
        Pairing {
            direct,
            previously: false,
            within_reach: true,
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
        let v = decide(&a, &stack(&["prod"], &[]), None, inside(Direct::No), None);
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
            inside(Direct::No),
            None,
        );
        assert!(v.targeted);
        assert!(
            !decide(
                &a,
                &stack(&["staging"], &[("region", "eu")]),
                None,
                inside(Direct::No),
                None
            )
            .targeted
        );
        assert!(
            !decide(&a, &stack(&[], &[]), None, inside(Direct::No), None).targeted,
            "an unlabelled stack needs a direct assignment"
        );
        assert_eq!(
            decide(
                &a,
                &stack(&[], &[]),
                None,
                inside(Direct::ByGenerator),
                None
            )
            .rules,
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
            decide(&a, &s, Some(&e), inside(Direct::No), None).rules,
            vec![Rule::Expression]
        );
        let never = TargetExpression::parse("agent.cluster_name == 'nowhere'").unwrap();
        assert!(
            !decide(&a, &s, Some(&never), inside(Direct::No), None).targeted,
            "labels do not apply when an expression is set"
        );
    }

    #[test]
    fn many_agents_are_decided_in_order() {
        let agents: Vec<AgentFacts> = (0..5000)
            .map(|i| agent(if i % 2 == 0 { &["prod"] } else { &["dev"] }, &[]))
            .collect();
        let e = TargetExpression::parse("'prod' in agent.labels").unwrap();
        let direct_second = |i: usize| {
            inside(if i == 1 {
                Direct::ByGenerator
            } else {
                Direct::No
            })
        };
        let verdicts = decide_for_agents(&agents, &stack(&[], &[]), Some(&e), &direct_second);
        assert_eq!(verdicts.len(), 5000);
        assert!(verdicts[0].targeted && verdicts[1].targeted && !verdicts[3].targeted);
        assert_eq!(verdicts[1].rules, vec![Rule::Direct]);
        assert_eq!(verdicts.iter().filter(|v| v.targeted).count(), 2501);
    }

    #[test]
    fn evaluation_errors_keep_the_previous_decision() {
        let a = agent(&[], &[]);
        let e = TargetExpression::parse("agent.annotations.missing == 'x'").unwrap();
        let previously = Pairing {
            previously: true,
            ..inside(Direct::No)
        };
        let kept = decide(&a, &stack(&[], &[]), Some(&e), previously, None);
        assert!(kept.targeted && kept.error.is_some());
        assert!(!decide(&a, &stack(&[], &[]), Some(&e), inside(Direct::No), None).targeted);
    }

    #[test]
    fn outside_the_reach_only_an_admin_assignment_holds() {
        let a = agent(&["prod"], &[("region", "us-east")]);
        let s = stack(&["prod"], &[("region", "us-east")]);
        let always = TargetExpression::parse("true").unwrap();
        for direct in [Direct::No, Direct::ByGenerator] {
            let outside = Pairing {
                direct,
                previously: true,
                within_reach: false,
            };
            for expression in [None, Some(&always)] {
                let v = decide(&a, &s, expression, outside, None);
                assert!(
                    !v.targeted && v.rules.is_empty() && !v.within_reach,
                    "{v:?}"
                );
            }
        }
        let admin = Pairing {
            direct: Direct::ByAdmin,
            ..Pairing::default()
        };
        let v = decide(&a, &s, Some(&always), admin, None);
        assert!(v.targeted && !v.within_reach);
        assert_eq!(v.rules, vec![Rule::AdminDirect]);
        assert_eq!(v.rules[0].code(), "admin_direct");
    }
}
