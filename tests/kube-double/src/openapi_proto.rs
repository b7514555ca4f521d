//! The OpenAPI v2 document as kubectl and Helm fetch it: the protobuf encoding of gnostic's
//! `openapi.v2.Document` (kubectl asks for `application/com.github.proto-openapi.spec.v2@v1.0+
//! protobuf` and cannot read JSON there). Only the messages and fields a schema needs are
//! declared; their field numbers are those of gnostic's OpenAPIv2.proto.

use prost::Message;
use serde_json::{Map, Value};

/// The content type of the answer (that of the request, with `@`, is no valid media type).
pub const CONTENT_TYPE: &str = "application/octet-stream";

#[derive(Clone, PartialEq, Message)]
pub struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Paths {}

#[derive(Clone, PartialEq, Message)]
pub struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "2")]
    pub yaml: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AdditionalPropertiesItem {
    #[prost(message, optional, boxed, tag = "1")]
    pub schema: Option<Box<Schema>>,
    #[prost(bool, optional, tag = "2")]
    pub boolean: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    #[prost(string, tag = "1")]
    pub reference: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, optional, boxed, tag = "21")]
    pub additional_properties: Option<Box<AdditionalPropertiesItem>>,
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

/// The v2 document (as [`crate::openapi::v2`] builds it) in protobuf.
pub fn encode(definitions: &Map<String, Value>) -> Vec<u8> {
    let document = Document {
        swagger: "2.0".into(),
        info: Some(Info {
            title: "Kubernetes".into(),
            version: "v1.32.0-brokkr-double".into(),
        }),
        paths: Some(Paths {}),
        definitions: Some(Definitions {
            additional_properties: named(definitions),
        }),
    };
    document.encode_to_vec()
}

fn named(map: &Map<String, Value>) -> Vec<NamedSchema> {
    map.iter()
        .map(|(name, schema)| NamedSchema {
            name: name.clone(),
            value: Some(schema_of(schema)),
        })
        .collect()
}

fn text(schema: &Value, field: &str) -> String {
    schema[field].as_str().unwrap_or_default().to_string()
}

/// One JSON schema as gnostic's `Schema` message.
fn schema_of(schema: &Value) -> Schema {
    let types = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let additional = match &schema["additionalProperties"] {
        Value::Bool(b) => Some(Box::new(AdditionalPropertiesItem {
            schema: None,
            boolean: Some(*b),
        })),
        v @ Value::Object(_) => Some(Box::new(AdditionalPropertiesItem {
            schema: Some(Box::new(schema_of(v))),
            boolean: None,
        })),
        _ => None,
    };
    Schema {
        reference: text(schema, "$ref"),
        format: text(schema, "format"),
        description: text(schema, "description"),
        required: schema["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        additional_properties: additional,
        r#type: (!types.is_empty()).then_some(TypeItem { value: types }),
        items: schema
            .get("items")
            .filter(|i| i.is_object())
            .map(|i| ItemsItem {
                schema: vec![schema_of(i)],
            }),
        all_of: schema["allOf"]
            .as_array()
            .map(|all| all.iter().map(schema_of).collect())
            .unwrap_or_default(),
        properties: schema["properties"].as_object().map(|p| Properties {
            additional_properties: named(p),
        }),
        vendor_extension: extensions(schema),
    }
}

/// `x-…` fields, each as YAML text (gnostic keeps them so).
fn extensions(schema: &Value) -> Vec<NamedAny> {
    let Some(map) = schema.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| NamedAny {
            name: k.clone(),
            value: Some(Any {
                yaml: serde_yaml_ng::to_string(v).unwrap_or_default(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_document_decodes_with_the_kinds_tagged() {
        let bytes = encode(crate::openapi::builtin());
        let document = Document::decode(bytes.as_slice()).unwrap();
        let definitions = document.definitions.unwrap().additional_properties;
        let deployment = definitions
            .iter()
            .find(|d| d.name == "io.k8s.api.apps.v1.Deployment")
            .and_then(|d| d.value.clone())
            .unwrap();
        let gvk = deployment
            .vendor_extension
            .iter()
            .find(|e| e.name == "x-kubernetes-group-version-kind")
            .unwrap();
        assert!(gvk.value.as_ref().unwrap().yaml.contains("Deployment"));
        let properties = deployment.properties.unwrap().additional_properties;
        let spec = properties.iter().find(|p| p.name == "spec").unwrap();
        let reference = &spec.value.as_ref().unwrap().reference;
        assert!(
            reference.ends_with("io.k8s.api.apps.v1.DeploymentSpec"),
            "{reference}"
        );
        for named in &definitions {
            assert!(!named.name.is_empty());
        }
    }
}
