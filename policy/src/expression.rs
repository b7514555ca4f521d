//! [`TargetExpression`]: a CEL expression that keeps its source and compiled program, and can
//! only be built from input within the size, nesting and cost limits (checked before the CEL
//! parser sees anything that could overflow its stack).

use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Env, Program, Value};
use serde::{Deserialize, Serialize};

/// Longest accepted expression, in bytes.
pub const MAX_SOURCE_BYTES: usize = 2048;
/// Deepest accepted bracket nesting.
pub const MAX_NESTING: usize = 24;
/// Most AST nodes an expression may have.
pub const MAX_NODES: usize = 400;
/// Deepest nesting of comprehensions (`all`, `exists`, `map`, `filter`, …).
pub const MAX_COMPREHENSION_DEPTH: usize = 2;

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

/// The line and column of byte `offset` in `source`.
fn position_of(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Rejects deep bracket nesting before parsing (the parser itself recurses).
fn check_nesting(source: &str) -> Result<(), ExpressionError> {
    let (mut depth, mut quote): (usize, Option<char>) = (0, None);
    let mut escaped = false;
    for (offset, c) in source.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        let at = position_of(source, offset);
                        return Err(ExpressionError::new(
                            format!("nesting deeper than {MAX_NESTING} levels"),
                            Some(at),
                        ));
                    }
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    Ok(())
}

/// Size of the AST and the deepest comprehension nesting.
fn measure(expr: &IdedExpr) -> (usize, usize) {
    let children: Vec<&IdedExpr> = match &expr.expr {
        Expr::Call(call) => call
            .target
            .iter()
            .map(|t| t.as_ref())
            .chain(call.args.iter())
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map
            .entries
            .iter()
            .flat_map(|e| entry_children(&e.expr))
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|e| entry_children(&e.expr))
            .collect(),
        Expr::Select(select) => vec![select.operand.as_ref()],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    };
    let (mut nodes, mut depth) = (1, 0);
    for child in children {
        let (n, d) = measure(child);
        nodes += n;
        depth = depth.max(d);
    }
    let own = usize::from(matches!(expr.expr, Expr::Comprehension(_)));
    (nodes, depth + own)
}

/// Identifiers the expression reads that no comprehension binds, in order of appearance. A
/// function's receiver (`math` in `math.greatest(…)`) is not a variable.
fn free_variables(expr: &IdedExpr, bound: &mut Vec<String>, out: &mut Vec<String>) {
    match &expr.expr {
        Expr::Ident(name) => {
            if !bound.contains(name) && !out.contains(name) {
                out.push(name.clone());
            }
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target
                && !matches!(target.expr, Expr::Ident(_))
            {
                free_variables(target, bound, out);
            }
            for arg in &call.args {
                free_variables(arg, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let before = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                free_variables(part, bound, out);
            }
            bound.truncate(before);
        }
        Expr::List(list) => list
            .elements
            .iter()
            .for_each(|e| free_variables(e, bound, out)),
        Expr::Map(map) => map
            .entries
            .iter()
            .flat_map(|e| entry_children(&e.expr))
            .for_each(|e| free_variables(e, bound, out)),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|e| entry_children(&e.expr))
            .for_each(|e| free_variables(e, bound, out)),
        Expr::Select(select) => free_variables(&select.operand, bound, out),
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn entry_children(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::StructField(f) => vec![&f.value],
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
    }
}

fn environment() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib())).clone()
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
        Ok(Self {
            source: source.into(),
            program: Arc::new(program),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with `agent` and `stack` in scope; anything but a boolean is an error.
    pub fn evaluate(&self, facts: &Facts) -> Result<bool, String> {
        self.evaluate_with(&[("agent", &facts.agent), ("stack", &facts.stack)])
    }

    /// Evaluates with `variables` in scope; anything but a boolean is an error.
    pub fn evaluate_with(&self, variables: &[(&str, &Value)]) -> Result<bool, String> {
        let mut context = Context::with_env(environment());
        for (name, value) in variables {
            context.add_variable_from_value(*name, (*value).clone());
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.program.execute(&context)
        }));
        match outcome {
            Ok(Ok(Value::Bool(b))) => Ok(b),
            Ok(Ok(other)) => Err(format!(
                "the expression must return a boolean, not {:?}",
                other.type_of()
            )),
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
    fn non_boolean_results_are_errors() {
        let e = TargetExpression::parse("agent.name").unwrap();
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
