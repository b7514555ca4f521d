//! Validated string newtypes: a value of these types is always well formed ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string was rejected as a name, label, annotation key or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} must be between {min} and {max} characters long (got {len})")]
    Length {
        what: &'static str,
        min: usize,
        max: usize,
        len: usize,
    },
    #[error("{what} may contain only {allowed} (found {found:?} at position {position})")]
    Character {
        what: &'static str,
        allowed: &'static str,
        found: char,
        position: usize,
    },
    #[error("{what} must start and end with a letter or digit")]
    Edge { what: &'static str },
}

/// The character and length rules of one kind of validated string.
struct Rule {
    what: &'static str,
    min: usize,
    max: usize,
    allowed: &'static str,
    is_allowed: fn(char) -> bool,
    alnum_edges: bool,
}

impl Rule {
    fn check(&self, value: &str) -> Result<(), NameError> {
        let len = value.chars().count();
        if len < self.min || len > self.max {
            return Err(NameError::Length {
                what: self.what,
                min: self.min,
                max: self.max,
                len,
            });
        }
        if let Some((position, found)) = value
            .chars()
            .enumerate()
            .find(|(_, c)| !(self.is_allowed)(*c))
        {
            return Err(NameError::Character {
                what: self.what,
                allowed: self.allowed,
                found,
                position,
            });
        }
        let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if self.alnum_edges
            && len > 0
            && !(alnum(value.chars().next()) && alnum(value.chars().last()))
        {
            return Err(NameError::Edge { what: self.what });
        }
        Ok(())
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn key_char(c: char) -> bool {
    name_char(c) || c == '/'
}

fn idempotency_char(c: char) -> bool {
    name_char(c) || c == ':'
}

fn text_char(c: char) -> bool {
    !c.is_control() || c == '\n' || c == '\t'
}

fn value_char(c: char) -> bool {
    !c.is_control()
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $ty:ident, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
        pub struct $ty(String);

        impl $ty {
            const RULE: Rule = $rule;

            /// Parses `value`, returning a readable reason when it is not acceptable.
            pub fn parse(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                Self::RULE.check(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

validated_string!(
    /// The name of a generator, agent, stack or cluster: 1–128 characters of letters, digits,
    /// `.`, `_` and `-`, starting and ending with a letter or digit.
    Name,
    Rule {
        what: "name",
        min: 1,
        max: 128,
        allowed: "letters, digits, '.', '_' and '-'",
        is_allowed: name_char,
        alnum_edges: true,
    }
);

validated_string!(
    /// A label (a plain tag such as `prod`): 1–63 characters of letters, digits, `.`, `_`, `-`,
    /// starting and ending with a letter or digit.
    Label,
    Rule {
        what: "label",
        min: 1,
        max: 63,
        allowed: "letters, digits, '.', '_' and '-'",
        is_allowed: name_char,
        alnum_edges: true,
    }
);

validated_string!(
    /// An annotation key such as `region` or `example.com/tier`: 1–253 characters.
    AnnotationKey,
    Rule {
        what: "annotation key",
        min: 1,
        max: 253,
        allowed: "letters, digits, '.', '_', '-' and '/'",
        is_allowed: key_char,
        alnum_edges: true,
    }
);

validated_string!(
    /// An annotation value: up to 1024 characters, no control characters.
    AnnotationValue,
    Rule {
        what: "annotation value",
        min: 0,
        max: 1024,
        allowed: "printable characters",
        is_allowed: value_char,
        alnum_edges: false,
    }
);

validated_string!(
    /// A free-text description: up to 1024 characters; newlines and tabs are allowed.
    Description,
    Rule {
        what: "description",
        min: 0,
        max: 1024,
        allowed: "printable characters, newlines and tabs",
        is_allowed: text_char,
        alnum_edges: false,
    }
);

validated_string!(
    /// A client-chosen key that makes a retried event post store the event only once:
    /// 1–128 characters of letters, digits, `.`, `_`, `-` and `:`.
    IdempotencyKey,
    Rule {
        what: "idempotency key",
        min: 1,
        max: 128,
        allowed: "letters, digits, '.', '_', '-' and ':'",
        is_allowed: idempotency_char,
        alnum_edges: true,
    }
);

validated_string!(
    /// A human-readable message in an agent event: up to 4096 characters.
    EventMessage,
    Rule {
        what: "message",
        min: 0,
        max: 4096,
        allowed: "printable characters, newlines and tabs",
        is_allowed: text_char,
        alnum_edges: false,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["a", "github-actions-prod", "my_app.v2", "A1"] {
            assert_eq!(Name::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_bad_names_with_reason() {
        assert_eq!(
            Name::parse("").unwrap_err().to_string(),
            "name must be between 1 and 128 characters long (got 0)"
        );
        let err = Name::parse("my app").unwrap_err().to_string();
        assert!(err.contains("' '") && err.contains("position 2"), "{err}");
        assert!(matches!(Name::parse("-x"), Err(NameError::Edge { .. })));
        assert!(Name::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn deserialization_enforces_rules() {
        assert!(serde_json::from_str::<Label>("\"prod\"").is_ok());
        let err = serde_json::from_str::<Label>("\"pr od\"").unwrap_err();
        assert!(err.to_string().contains("label may contain only"), "{err}");
        assert!(serde_json::from_str::<AnnotationKey>("\"example.com/tier\"").is_ok());
        assert!(serde_json::from_str::<AnnotationValue>("\"\"").is_ok());
        assert!(serde_json::from_str::<AnnotationValue>("\"a\\u0000b\"").is_err());
    }
}
