//! Values that must never reach logs or `Debug` output.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A prefixed API key as shown once to its owner. `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct Pak(String);

impl Pak {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The key itself, for the one place that must show or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pak(<redacted>)")
    }
}

/// Stands in for manifest text in `Debug` output (it may hold a Kubernetes Secret).
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let pak = Pak::new("brokkr_BRabc_secret".into());
        assert_eq!(format!("{pak:?}"), "Pak(<redacted>)");
        assert_eq!(
            serde_json::to_string(&pak).unwrap(),
            "\"brokkr_BRabc_secret\""
        );
    }
}
