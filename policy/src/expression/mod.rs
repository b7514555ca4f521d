//! [`TargetExpression`]: a CEL expression that keeps its source and compiled program, and can
//! only be built from input within the size, nesting and cost limits (checked before the CEL
//! parser sees anything that could overflow its stack).

mod analysis;
mod functions;

use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::common::types::{CelBool, CelString};
use cel::{Context, Env, Program, Value};

use analysis::{check_nesting, cost, free_variables, measure};

pub use analysis::ASSUMED_COLLECTION;
use functions::matches;
use serde::{Deserialize, Serialize};

/// Longest accepted expression, in bytes.
pub const MAX_SOURCE_BYTES: usize = brokkr_types::expression::MAX_EXPRESSION_BYTES;
/// Deepest accepted bracket nesting.
pub const MAX_NESTING: usize = 24;
/// Most AST nodes an expression may have.
pub const MAX_NODES: usize = 400;
/// Deepest nesting of comprehensions (`all`, `exists`, `map`, `filter`, …).
pub const MAX_COMPREHENSION_DEPTH: usize = 2;
/// Most steps one evaluation may be estimated to take.
pub const MAX_COST: u64 = 100_000;

/// Why an expression was refused, with the 1-based position when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", position.map(|(l, c)| format!(" (line {l}, column {c})")).unwrap_or_default())]
pub struct ExpressionError {
    pub message: String,
    pub position: Option<(usize, usize)>,
}

impl ExpressionError {
    fn new(message: impl Into<String>, position: Option<(usize, usize)>) -> Self {
        Self {
            message: message.into(),
            position,
        }
    }
}

/// A checked, compiled targeting expression.
#[derive(Clone)]
pub struct TargetExpression {
    source: Arc<str>,
    program: Arc<Program>,
    cost: u64,
}

impl fmt::Debug for TargetExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TargetExpression")
            .field(&self.source)
            .finish()
    }
}

impl PartialEq for TargetExpression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

fn environment() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Declared once, at first use; a failure would mean a duplicate declaration.
        let _ = cel::add_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>, id = "matches");
        let _ = cel::add_member_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>);
        Arc::new(env)
    })
    .clone()
}

/// The variables a targeting expression may read.
pub const TARGETING_VARIABLES: &[&str] = &["agent", "stack"];

impl TargetExpression {
    /// Checks the limits, parses and compiles `source` with `agent` and `stack` in scope.
    pub fn parse(source: &str) -> Result<Self, ExpressionError> {
        Self::parse_with(source, TARGETING_VARIABLES)
    }

    /// Checks the limits, parses and compiles `source`, which may read only `variables`.
    pub fn parse_with(source: &str, variables: &[&str]) -> Result<Self, ExpressionError> {
        if source.trim().is_empty() {
            return Err(ExpressionError::new("the expression is empty", None));
        }
        if source.len() > MAX_SOURCE_BYTES {
            return Err(ExpressionError::new(
                format!("the expression is longer than {MAX_SOURCE_BYTES} bytes"),
                None,
            ));
        }
        check_nesting(source)?;
        let parsed = cel::parser::Parser::new()
            .max_recursion_depth(MAX_NESTING as u16 * 2)
            .parse(source)
            .map_err(|errors| {
                let first = errors.errors.first();
                let message = first
                    .map(|e| e.msg.clone())
                    .unwrap_or_else(|| "the expression does not parse".into());
                let position = first
                    .map(|e| e.pos)
                    .filter(|p| p.0 > 0)
                    .map(|(l, c)| (l as usize, c as usize + 1));
                ExpressionError::new(format!("syntax error: {message}"), position)
            })?;
        let (nodes, comprehensions) = measure(&parsed);
        if nodes > MAX_NODES {
            return Err(ExpressionError::new(
                format!("the expression has {nodes} terms; at most {MAX_NODES} are allowed"),
                None,
            ));
        }
        if comprehensions > MAX_COMPREHENSION_DEPTH {
            return Err(ExpressionError::new(
                format!(
                    "comprehensions (all, exists, map, filter) nest {comprehensions} deep; at most {MAX_COMPREHENSION_DEPTH} are allowed"
                ),
                None,
            ));
        }
        let cost = cost(&parsed);
        if cost > MAX_COST {
            return Err(ExpressionError::new(
                format!(
                    "the expression may take about {cost} steps per evaluation; at most {MAX_COST} \
                     are allowed (a comprehension over labels or annotations counts {ASSUMED_COLLECTION} \
                     iterations)"
                ),
                None,
            ));
        }
        let (mut bound, mut free) = (Vec::new(), Vec::new());
        free_variables(&parsed, &mut bound, &mut free);
        if let Some(unknown) = free.iter().find(|v| !variables.contains(&v.as_str())) {
            let known = variables
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" and ");
            let verb = if variables.len() == 1 { "is" } else { "are" };
            return Err(ExpressionError::new(
                format!("unknown variable `{unknown}`: only {known} {verb} in scope"),
                None,
            ));
        }
        let program = environment()
            .compile(source)
            .map_err(|e| ExpressionError::new(format!("syntax error: {e}"), None))?;
        let expression = Self {
            source: source.into(),
            program: Arc::new(program),
            cost,
        };
        expression.check_result_type(variables)?;
        Ok(expression)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The estimated steps of one evaluation.
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// Evaluates once over facts with every field empty: an expression that then yields
    /// something other than a boolean (say `agent.name`) can never target anything, so it is
    /// refused when written. Evaluation errors (a missing annotation) say nothing about the
    /// type and pass.
    fn check_result_type(&self, variables: &[&str]) -> Result<(), ExpressionError> {
        let agent = crate::targeting::AgentFacts::default().to_cel();
        let stack = crate::targeting::StackFacts::default().to_cel();
        let bound: Vec<(&str, &Value)> = variables
            .iter()
            .map(|v| (*v, if *v == "stack" { &stack } else { &agent }))
            .collect();
        match self.run(&bound) {
            Ok(Value::Bool(_)) | Err(_) => Ok(()),
            Ok(other) => Err(ExpressionError::new(
                format!(
                    "the expression must return a boolean, not {:?}",
                    other.type_of()
                ),
                None,
            )),
        }
    }

    /// Evaluates with `agent` and `stack` in scope; anything but a boolean is an error.
    pub fn evaluate(&self, facts: &Facts) -> Result<bool, String> {
        self.evaluate_with(&[("agent", &facts.agent), ("stack", &facts.stack)])
    }

    /// Evaluates with `variables` in scope; anything but a boolean is an error.
    pub fn evaluate_with(&self, variables: &[(&str, &Value)]) -> Result<bool, String> {
        match self.run(variables)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!(
                "the expression must return a boolean, not {:?}",
                other.type_of()
            )),
        }
    }

    fn run(&self, variables: &[(&str, &Value)]) -> Result<Value, String> {
        let mut context = Context::with_env(environment());
        for (name, value) in variables {
            context.add_variable_from_value(*name, (*value).clone());
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.program.execute(&context)
        }));
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the expression could not be evaluated".into()),
        }
    }
}

/// The CEL values of `agent` and `stack` for one evaluation.
#[derive(Debug, Clone)]
pub struct Facts {
    pub agent: Value,
    pub stack: Value,
}

impl Serialize for TargetExpression {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for TargetExpression {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_and_program_travel_together() {
        let e = TargetExpression::parse("'prod' in agent.labels").unwrap();
        assert_eq!(e.source(), "'prod' in agent.labels");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<TargetExpression>(&json).unwrap(), e);
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let err = TargetExpression::parse("agent.labels ==").unwrap_err();
        assert!(err.message.starts_with("syntax error"), "{err}");
        assert_eq!(err.position.map(|p| p.0), Some(1), "{err}");
        assert!(serde_json::from_str::<TargetExpression>("\"1 +\"").is_err());
    }

    #[test]
    fn hostile_input_is_refused_before_parsing() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let err = TargetExpression::parse(&deep).unwrap_err();
        assert!(
            err.message.contains("too long")
                || err.message.contains("longer")
                || err.message.contains("nesting"),
            "{err}"
        );
        let nested = format!("{}true{}", "(".repeat(30), ")".repeat(30));
        assert!(
            TargetExpression::parse(&nested)
                .unwrap_err()
                .message
                .contains("nesting")
        );
        let chain = vec!["1"; 1000].join("+");
        assert!(TargetExpression::parse(&chain).is_err(), "too many terms");
        let loops = "agent.labels.all(a, agent.labels.all(b, agent.labels.all(c, a == b)))";
        assert!(
            TargetExpression::parse(loops)
                .unwrap_err()
                .message
                .contains("comprehensions")
        );
        assert!(TargetExpression::parse(&"x".repeat(MAX_SOURCE_BYTES + 1)).is_err());
        assert!(TargetExpression::parse("  ").is_err());
    }

    #[test]
    fn unknown_variables_are_refused_when_written() {
        let err = TargetExpression::parse("cluster.name == 'x'").unwrap_err();
        assert!(err.message.contains("unknown variable `cluster`"), "{err}");
        let scoped = "agent.labels.exists(l, l == stack.name) && math.greatest(1, 2) == 2";
        assert!(TargetExpression::parse(scoped).is_ok());
        let err = TargetExpression::parse_with("stack.name == 'x'", &["agent"]).unwrap_err();
        assert!(err.message.contains("only `agent` is in scope"), "{err}");
        assert!(TargetExpression::parse_with("agent.labels.all(l, l != 'x')", &["agent"]).is_ok());
    }

    #[test]
    fn costly_expressions_and_wrong_types_are_refused_when_written() {
        let range = (0..150)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let nested = format!("[{range}].exists(x, [{range}].exists(y, x*y == -1))");
        let err = TargetExpression::parse(&nested).unwrap_err();
        assert!(err.message.contains("steps per evaluation"), "{err}");
        let labels = "agent.labels.exists(l, agent.labels.exists(m, l == m))";
        let fine = TargetExpression::parse(labels).unwrap();
        assert!(
            fine.cost() > 10_000 && fine.cost() <= MAX_COST,
            "{}",
            fine.cost()
        );
        for not_bool in ["agent.name", "1 + 2", "'prod'"] {
            let err = TargetExpression::parse(not_bool).unwrap_err();
            assert!(
                err.message.contains("must return a boolean"),
                "{not_bool}: {err}"
            );
        }
        assert!(TargetExpression::parse("agent.annotations.region == 'eu'").is_ok());
    }

    #[test]
    fn matches_uses_a_compiled_pattern() {
        let e = TargetExpression::parse(
            "agent.name.matches('^edge-[0-9]+$') && matches(agent.name, 'edge')",
        )
        .unwrap();
        let facts = |name: &str| Facts {
            agent: Value::from(std::collections::HashMap::from([(
                "name",
                Value::from(name),
            )])),
            stack: Value::Null,
        };
        assert_eq!(e.evaluate(&facts("edge-12")), Ok(true));
        assert_eq!(e.evaluate(&facts("core-1")), Ok(false));
        let bad = TargetExpression::parse("agent.name.matches('(')").unwrap();
        assert!(
            bad.evaluate(&facts("x"))
                .unwrap_err()
                .contains("regular expression")
        );
    }

    #[test]
    fn non_boolean_results_are_errors() {
        let e = TargetExpression::parse("agent.name == 'a' ? agent.name : true").unwrap();
        let facts = Facts {
            agent: Value::from(std::collections::HashMap::from([(
                "name",
                Value::from("a"),
            )])),
            stack: Value::Null,
        };
        assert!(e.evaluate(&facts).unwrap_err().contains("boolean"));
    }
}
