//! Expressions arrive as bounded text (`brokkr-types` keeps the CEL interpreter out of clients)
//! and are compiled here, before anything else happens: what does not compile is refused with
//! 422 naming the field, as if the body itself had been refused.

use brokkr_policy::{EventFilter, ExpressionError, ReachExpression, TargetExpression};
use brokkr_types::{ExpressionText, FieldError};

use super::{AppError, AppResult};

fn refused(code: &'static str, field: &str, error: ExpressionError) -> AppError {
    let message = error.to_string();
    AppError::Invalid {
        code,
        detail: format!("{field}: {message}"),
        errors: vec![FieldError {
            location: field.into(),
            message,
        }],
    }
}

/// A stack's `target_expression` (over `agent` and `stack`).
pub fn target(text: &ExpressionText) -> AppResult<TargetExpression> {
    TargetExpression::parse(text.as_str())
        .map_err(|e| refused("invalid_expression", "target_expression", e))
}

/// A generator's `reach` (over `agent`).
pub fn reach(text: &ExpressionText) -> AppResult<ReachExpression> {
    ReachExpression::parse(text.as_str()).map_err(|e| refused("validation_failed", "reach", e))
}

/// A rollout wave's `agents` (over `agent`).
pub fn wave(text: &ExpressionText, wave: &str) -> AppResult<ReachExpression> {
    let field = format!("rollout.waves[{wave}].agents");
    ReachExpression::parse(text.as_str()).map_err(|e| refused("validation_failed", &field, e))
}

/// A webhook's `filter` (over `event`).
pub fn event_filter(text: &ExpressionText) -> AppResult<EventFilter> {
    EventFilter::parse(text.as_str()).map_err(|e| refused("validation_failed", "filter", e))
}
