//! [`EventFilter`]: the CEL expression a webhook subscription uses to choose among the events
//! its types admit. It reads `event` alone (`id`, `type`, `timestamp`, `data`), is checked by
//! the same limits as targeting expressions, and an evaluation error means "not delivered".

use std::collections::HashMap;
use std::fmt;

use cel::Value;
use serde::{Deserialize, Serialize};

use crate::expression::{ExpressionError, TargetExpression};

/// The variables an event filter may read.
pub const EVENT_VARIABLES: &[&str] = &["event"];

/// A checked, compiled event filter.
#[derive(Clone, PartialEq)]
pub struct EventFilter(TargetExpression);

impl fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EventFilter")
            .field(&self.0.source())
            .finish()
    }
}

impl EventFilter {
    /// Checks and compiles `source`, which may read only `event`.
    pub fn parse(source: &str) -> Result<Self, ExpressionError> {
        TargetExpression::parse_with(source, EVENT_VARIABLES).map(Self)
    }

    pub fn source(&self) -> &str {
        self.0.source()
    }

    /// Whether the event (its JSON envelope) passes; an evaluation error is `Err`.
    pub fn admits(&self, envelope: &serde_json::Value) -> Result<bool, String> {
        self.0.evaluate_with(&[("event", &json_to_cel(envelope))])
    }
}

/// A JSON value as CEL sees it (objects become maps with string keys).
pub fn json_to_cel(value: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::UInt(u),
            (_, _, f) => Value::Float(f.unwrap_or_default()),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::List(items.iter().map(json_to_cel).collect::<Vec<_>>().into()),
        Json::Object(fields) => {
            let map: HashMap<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), json_to_cel(v)))
                .collect();
            Value::from(map)
        }
    }
}

impl Serialize for EventFilter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.source())
    }
}

impl<'de> Deserialize<'de> for EventFilter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_on_type_and_data() {
        let filter = EventFilter::parse(
            r#"event.type == "deployment.failed" && event.data.stack_name.startsWith("pay")"#,
        )
        .unwrap();
        let event = |kind: &str, stack: &str| json!({ "id": "e", "type": kind, "timestamp": "t", "data": { "stack_name": stack, "sequence_id": 3 } });
        assert_eq!(
            filter.admits(&event("deployment.failed", "payments")),
            Ok(true)
        );
        assert_eq!(
            filter.admits(&event("deployment.failed", "search")),
            Ok(false)
        );
        assert_eq!(
            filter.admits(&event("stack.created", "payments")),
            Ok(false)
        );
        let numbers = EventFilter::parse("event.data.sequence_id > 2").unwrap();
        assert_eq!(numbers.admits(&event("x", "y")), Ok(true));
        let missing = EventFilter::parse("event.data.agent_name == 'a'").unwrap();
        assert!(missing.admits(&event("x", "y")).is_err());
    }

    #[test]
    fn only_event_is_in_scope_and_limits_hold() {
        let err = EventFilter::parse("agent.name == 'x'").unwrap_err();
        assert!(err.message.contains("only `event` is in scope"), "{err}");
        assert!(EventFilter::parse("event.type ==").is_err());
        assert!(EventFilter::parse("1 + 1").is_err(), "not a boolean");
        assert!(serde_json::from_str::<EventFilter>(r#""event.type == 'a'""#).is_ok());
    }
}
