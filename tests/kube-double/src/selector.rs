//! Label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`; field
//! selectors on `metadata.name` and `metadata.namespace` (what kubectl sends).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Missing(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector; an empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn set_values(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn requirement(text: &str) -> Option<Requirement> {
    if let Some((k, v)) = text.split_once("!=") {
        return Some(Requirement::NotEquals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = text.split_once("==").or_else(|| text.split_once('=')) {
        return Some(Requirement::Equals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = text.split_once(" notin ") {
        return Some(Requirement::NotIn(k.trim().into(), set_values(v)?));
    }
    if let Some((k, v)) = text.split_once(" in ") {
        return Some(Requirement::In(k.trim().into(), set_values(v)?));
    }
    match text.strip_prefix('!') {
        Some(k) => Some(Requirement::Missing(k.trim().into())),
        None => Some(Requirement::Exists(text.trim().into())),
    }
}

impl Selector {
    /// Parses a selector; `None` when it is malformed.
    pub fn parse(text: &str) -> Option<Self> {
        split_top_level(text)
            .iter()
            .map(|p| requirement(p))
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::Missing(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        })
    }
}

/// A field selector: equality or inequality on `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses a field selector; `None` for fields the double cannot select on.
    pub fn parse(text: &str) -> Option<Self> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = match part.split_once("!=") {
                Some((f, v)) => (f, false, v),
                None => {
                    let (f, v) = part.split_once("==").or_else(|| part.split_once('='))?;
                    (f, true, v)
                }
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return None;
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Some(Self(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = match field.as_str() {
                "metadata.name" => &object["metadata"]["name"],
                _ => &object["metadata"]["namespace"],
            };
            (actual.as_str() == Some(value.as_str())) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn selector_forms() {
        let obj = json!({ "metadata": { "labels": { "app": "web", "tier": "front" } } });
        for (text, expected) in [
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app!=web", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("tier in (front,back)", true),
            ("tier notin (front)", false),
            ("app=web,tier in (back)", false),
            ("", true),
        ] {
            assert_eq!(
                Selector::parse(text).unwrap().matches(&obj),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn field_selectors_on_names() {
        let obj = json!({ "metadata": { "name": "a", "namespace": "n" } });
        assert!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse("metadata.namespace==n,metadata.name=a")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("status.phase=Running").is_none());
    }
}
