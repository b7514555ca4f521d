//! Brokkr policy: decides which stacks reach which agents (labels, annotations, direct
//! assignment and CEL expressions, confined to each generator's reach) and hosts WASM policy
//! plugins. Pure computation: no IO, no HTTP, no database, so the broker and the agent run the
//! same code.

pub mod event_filter;
pub mod expression;
pub mod parallel;
pub mod plugin;
pub mod reach;
pub mod targeting;
pub mod yaml;

pub use event_filter::EventFilter;
pub use expression::{ExpressionError, Facts, TargetExpression};
pub use reach::ReachExpression;
pub use targeting::{
    AgentFacts, Direct, Pairing, Rule, StackFacts, Verdict, decide, decide_for_agents,
};

/// A CEL value (the facts handed to expressions).
pub use cel::Value as CelValue;
