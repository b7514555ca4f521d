//! Brokkr policy: decides which stacks reach which agents (labels, annotations, direct
//! assignment and CEL expressions). Pure computation: no IO, no HTTP, no database, so the
//! broker and the agent run the same code.

pub mod expression;
pub mod plugin;
pub mod targeting;

pub use expression::{ExpressionError, Facts, TargetExpression};
pub use targeting::{AgentFacts, Rule, StackFacts, Verdict, decide, decide_for_agents};

/// A CEL value (the facts handed to expressions).
pub use cel::Value as CelValue;
