//! CEL expression text as requests carry it. It is bounded here (size, and no NUL) so nothing
//! holds a hostile string, but it is compiled by the broker (`brokkr-policy`), which refuses
//! what does not compile with 422: keeping the CEL interpreter out of this crate keeps the
//! client and the CLI quick to build.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest expression accepted, in bytes (the broker's compiler holds the same limit).
pub const MAX_EXPRESSION_BYTES: usize = 2048;

/// The text of a CEL expression: not empty, at most [`MAX_EXPRESSION_BYTES`], no NUL.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ExpressionText(String);

impl ExpressionText {
    pub fn parse(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err("the expression is empty".into());
        }
        if text.len() > MAX_EXPRESSION_BYTES {
            return Err(format!(
                "the expression is longer than {MAX_EXPRESSION_BYTES} bytes"
            ));
        }
        if text.contains('\0') {
            return Err("the expression holds a NUL character".into());
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ExpressionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ExpressionText").field(&self.0).finish()
    }
}

impl fmt::Display for ExpressionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExpressionText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_when_deserialising() {
        let ok: ExpressionText = serde_json::from_str("\"'prod' in agent.labels\"").unwrap();
        assert_eq!(ok.as_str(), "'prod' in agent.labels");
        assert!(serde_json::from_str::<ExpressionText>("\"  \"").is_err());
        let long = format!("\"{}\"", "x".repeat(MAX_EXPRESSION_BYTES + 1));
        assert!(serde_json::from_str::<ExpressionText>(&long).is_err());
        assert!(serde_json::from_str::<ExpressionText>("\"a\\u0000b\"").is_err());
    }
}
