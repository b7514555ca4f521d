//! Static checks of a parsed expression, run before it is compiled: bracket nesting (before the
//! parser recurses), AST size and comprehension depth, the variables it reads, and an estimate
//! of the steps one evaluation can take.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};

use super::{ExpressionError, MAX_NESTING};

/// The line and column of byte `offset` in `source`.
pub(super) fn position_of(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Rejects deep bracket nesting before parsing (the parser itself recurses).
pub(super) fn check_nesting(source: &str) -> Result<(), ExpressionError> {
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

/// The direct sub-expressions of `expr`.
fn children(expr: &IdedExpr) -> Vec<&IdedExpr> {
    match &expr.expr {
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
    }
}

/// Size of the AST and the deepest comprehension nesting.
pub(super) fn measure(expr: &IdedExpr) -> (usize, usize) {
    let (mut nodes, mut depth) = (1, 0);
    for child in children(expr) {
        let (n, d) = measure(child);
        nodes += n;
        depth = depth.max(d);
    }
    let own = usize::from(matches!(expr.expr, Expr::Comprehension(_)));
    (nodes, depth + own)
}

/// Elements assumed in a collection whose size the expression does not spell out (labels and
/// annotations, which the broker bounds, or lists computed while evaluating).
pub const ASSUMED_COLLECTION: u64 = 100;

/// Iterations of a comprehension over `range`.
fn iterations(range: &IdedExpr) -> u64 {
    match &range.expr {
        Expr::List(list) => list.elements.len() as u64,
        Expr::Map(map) => map.entries.len() as u64,
        _ => ASSUMED_COLLECTION,
    }
}

/// An upper estimate of the steps one evaluation takes: one per node, with the body of every
/// comprehension counted once per iteration.
pub(super) fn cost(expr: &IdedExpr) -> u64 {
    match &expr.expr {
        Expr::Comprehension(c) => {
            let once = cost(&c.iter_range) + cost(&c.accu_init) + cost(&c.result);
            let per_iteration = cost(&c.loop_cond) + cost(&c.loop_step);
            once.saturating_add(iterations(&c.iter_range).saturating_mul(per_iteration))
        }
        _ => children(expr)
            .into_iter()
            .map(cost)
            .fold(1, u64::saturating_add),
    }
}

/// Identifiers the expression reads that no comprehension binds, in order of appearance. A
/// function's receiver (`math` in `math.greatest(…)`) is not a variable.
pub(super) fn free_variables(expr: &IdedExpr, bound: &mut Vec<String>, out: &mut Vec<String>) {
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
