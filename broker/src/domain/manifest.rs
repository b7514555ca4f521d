//! Checks a deployment object's multi-document YAML before it is stored: every document must be
//! a mapping with `apiVersion`, `kind` and `metadata.name`. Error messages name the document
//! index and the field, never the content (it may hold a Secret).

use brokkr_types::problem::FieldError;
use serde::Deserialize;
use serde_yaml_ng::Value;

/// Why a manifest was rejected: one entry per offending document or field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{summary}")]
pub struct ManifestError {
    pub summary: String,
    pub errors: Vec<FieldError>,
}

/// YAML that has been checked; `objects` counts the Kubernetes objects in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedManifest {
    pub objects: usize,
}

const REQUIRED: [&[&str]; 3] = [&["apiVersion"], &["kind"], &["metadata", "name"]];

fn field<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |value, key| value.get(*key))
}

fn check_document(index: usize, doc: &Value, errors: &mut Vec<FieldError>) {
    if doc.as_mapping().is_none() {
        errors.push(FieldError {
            location: format!("documents[{index}]"),
            message: format!("document {index} is not a mapping (a Kubernetes object)"),
        });
        return;
    }
    for path in REQUIRED {
        let dotted = path.join(".");
        let ok = field(doc, path)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        if !ok {
            errors.push(FieldError {
                location: format!("documents[{index}].{dotted}"),
                message: format!("document {index} is missing `{dotted}` (a non-empty string)"),
            });
        }
    }
}

/// Parses every document of `yaml` and checks the required fields.
pub fn check(yaml: &str) -> Result<CheckedManifest, ManifestError> {
    let mut errors = Vec::new();
    let mut objects = 0;
    for (index, document) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let doc = match Value::deserialize(document) {
            Ok(doc) => doc,
            Err(e) => {
                let at = e
                    .location()
                    .map(|l| format!(" at line {} column {}", l.line(), l.column()));
                errors.push(FieldError {
                    location: format!("documents[{index}]"),
                    message: format!(
                        "document {index} is not valid YAML{}",
                        at.unwrap_or_default()
                    ),
                });
                break;
            }
        };
        if doc.is_null() {
            continue;
        }
        objects += 1;
        check_document(index, &doc, &mut errors);
    }
    if errors.is_empty() && objects == 0 {
        errors.push(FieldError {
            location: "documents".into(),
            message: "the YAML holds no Kubernetes object".into(),
        });
    }
    if errors.is_empty() {
        return Ok(CheckedManifest { objects });
    }
    let summary = match errors.as_slice() {
        [only] => only.message.clone(),
        [first, ..] => format!("{} (and {} more problems)", first.message, errors.len() - 1),
        [] => String::new(),
    };
    Err(ManifestError { summary, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    #[test]
    fn accepts_multi_document_yaml() {
        let yaml = format!("{CONFIG_MAP}---\n{CONFIG_MAP}---\n");
        assert_eq!(check(&yaml).unwrap().objects, 2);
    }

    #[test]
    fn names_the_document_and_field() {
        let yaml =
            format!("{CONFIG_MAP}---\napiVersion: v1\nkind: Secret\nmetadata:\n  labels: {{}}\n");
        let err = check(&yaml).unwrap_err();
        assert_eq!(err.errors.len(), 1);
        assert_eq!(err.errors[0].location, "documents[1].metadata.name");
        assert!(err.summary.contains("document 1"), "{}", err.summary);
    }

    #[test]
    fn syntax_errors_do_not_echo_content() {
        let err =
            check("apiVersion: v1\nkind: Secret\nstringData: {password: hunter2\n").unwrap_err();
        assert!(!err.summary.contains("hunter2"), "{}", err.summary);
        assert!(err.summary.contains("not valid YAML"), "{}", err.summary);
    }

    #[test]
    fn empty_and_scalar_documents_are_rejected() {
        assert!(check("").is_err());
        assert!(check("--- just a string\n").is_err());
    }
}
