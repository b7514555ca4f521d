//! Wire types of stack templates: versioned Jinja-style YAML with a JSON Schema for its
//! parameters, and what a deployment object made from one records.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::{Description, Name};

/// Longest template text, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// Longest JSON Schema, in bytes (as JSON text).
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Longest parameters object, in bytes (as JSON text).
pub const MAX_PARAMETERS_BYTES: usize = 64 * 1024;

/// A template's text: at most [`MAX_TEMPLATE_BYTES`], no NUL. `Debug` shows only its size.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct TemplateText(String);

impl fmt::Debug for TemplateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TemplateText({} bytes)", self.0.len())
    }
}

impl TemplateText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TemplateText {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.trim().is_empty() {
            return Err("template_yaml is empty".into());
        }
        if value.len() > MAX_TEMPLATE_BYTES {
            return Err(format!(
                "template_yaml is longer than {MAX_TEMPLATE_BYTES} bytes"
            ));
        }
        if value.contains('\0') {
            return Err("template_yaml contains a NUL character".into());
        }
        Ok(Self(value))
    }
}

impl From<TemplateText> for String {
    fn from(value: TemplateText) -> String {
        value.0
    }
}

/// A JSON Schema, given as an object or as a string holding one (the generators guide sends a
/// string). At most [`MAX_SCHEMA_BYTES`]; whether it is a valid schema is checked when written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = Object))]
pub struct SchemaJson(serde_json::Value);

impl SchemaJson {
    pub fn value(&self) -> &serde_json::Value {
        &self.0
    }

    pub fn into_value(self) -> serde_json::Value {
        self.0
    }
}

impl<'de> Deserialize<'de> for SchemaJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        let value = match value {
            serde_json::Value::String(text) => {
                if text.len() > MAX_SCHEMA_BYTES {
                    return Err(D::Error::custom(format!(
                        "schema_json is longer than {MAX_SCHEMA_BYTES} bytes"
                    )));
                }
                serde_json::from_str(&text)
                    .map_err(|e| D::Error::custom(format!("schema_json is not JSON: {e}")))?
            }
            other => other,
        };
        if !value.is_object() && !value.is_boolean() {
            return Err(D::Error::custom(
                "schema_json must be a JSON Schema (an object), or a string holding one",
            ));
        }
        if value.to_string().len() > MAX_SCHEMA_BYTES {
            return Err(D::Error::custom(format!(
                "schema_json is longer than {MAX_SCHEMA_BYTES} bytes"
            )));
        }
        Ok(Self(value))
    }
}

/// A template's parameters: a JSON object of at most [`MAX_PARAMETERS_BYTES`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = Object))]
pub struct Parameters(serde_json::Map<String, serde_json::Value>);

impl Parameters {
    pub fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }

    pub fn into_value(self) -> serde_json::Value {
        serde_json::Value::Object(self.0)
    }
}

impl<'de> Deserialize<'de> for Parameters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = serde_json::Map::deserialize(deserializer)?;
        if serde_json::Value::Object(map.clone()).to_string().len() > MAX_PARAMETERS_BYTES {
            return Err(D::Error::custom(format!(
                "parameters are longer than {MAX_PARAMETERS_BYTES} bytes"
            )));
        }
        Ok(Self(map))
    }
}

/// `POST /api/v1/templates`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateTemplate {
    pub name: Name,
    #[serde(default)]
    pub description: Option<Description>,
    pub template_yaml: TemplateText,
    pub schema_json: SchemaJson,
}

/// `PUT /api/v1/templates/{id or name}`: the next version.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTemplateVersion {
    #[serde(default)]
    pub description: Option<Description>,
    pub template_yaml: TemplateText,
    pub schema_json: SchemaJson,
}

/// `POST /api/v1/templates/{id}/render`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenderRequest {
    #[serde(default)]
    pub parameters: Parameters,
    /// Defaults to the latest version.
    #[serde(default)]
    pub version: Option<u32>,
}

/// `POST /api/v1/stacks/{id}/deployment-objects/from-template`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FromTemplate {
    #[serde(default)]
    pub template_name: Option<Name>,
    #[serde(default)]
    pub template_id: Option<Uuid>,
    /// Defaults to the latest version.
    #[serde(default)]
    pub template_version: Option<u32>,
    #[serde(default)]
    pub parameters: Parameters,
}

/// A template (its latest version's content included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Template {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// The owning generator; absent for an admin's template, which every generator can use.
    pub generator_id: Option<Uuid>,
    pub latest_version: u32,
    pub template_yaml: String,
    pub schema_json: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One immutable version of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateVersion {
    pub template_id: Uuid,
    pub version: u32,
    pub description: Option<String>,
    pub template_yaml: String,
    pub schema_json: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A rendering (nothing stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rendered {
    pub template_id: Uuid,
    pub version: u32,
    /// The parameters after the schema's defaults were applied.
    pub parameters: serde_json::Value,
    pub yaml: String,
}

/// Where a deployment object made from a template came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provenance {
    pub template_id: Uuid,
    pub template_version: u32,
    /// The parameters it was rendered with (defaults applied).
    pub parameters: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_come_as_strings_or_objects() {
        let body =
            r#"{"name": "web", "template_yaml": "a: 1", "schema_json": "{\"type\": \"object\"}"}"#;
        let created: CreateTemplate = serde_json::from_str(body).unwrap();
        assert_eq!(created.schema_json.value()["type"], "object");
        let object =
            r#"{"name": "web", "template_yaml": "a: 1", "schema_json": {"type": "object"}}"#;
        assert!(serde_json::from_str::<CreateTemplate>(object).is_ok());
        for bad in [r#""{not json""#, "3", r#""[1]""#] {
            let body = format!(r#"{{"name": "w", "template_yaml": "a", "schema_json": {bad}}}"#);
            assert!(
                serde_json::from_str::<CreateTemplate>(&body).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let huge = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(TemplateText::try_from(huge).is_err());
        assert!(TemplateText::try_from(" ".to_string()).is_err());
        let many = format!(r#"{{"p": "{}"}}"#, "y".repeat(MAX_PARAMETERS_BYTES));
        assert!(serde_json::from_str::<Parameters>(&many).is_err());
        assert!(serde_json::from_str::<Parameters>("[1]").is_err());
    }
}
