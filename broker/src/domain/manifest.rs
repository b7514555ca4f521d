//! Checks a deployment object's multi-document YAML before it is stored: it is read once within
//! the configured limits, and every document must be a mapping with `apiVersion`, `kind` and
//! `metadata.name`. Error messages name the document index and the field, never the content
//! (it may hold a Secret).

use brokkr_policy::yaml::{self, YamlError, YamlLimits};
use brokkr_types::problem::FieldError;
use serde_json::Value;

/// Why a manifest was rejected: one entry per offending document or field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{summary}")]
pub struct ManifestError {
    /// `invalid_manifest`, or `manifest_limit_exceeded` when a limit was reached.
    pub code: &'static str,
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
    if !doc.is_object() {
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

/// The documents of `yaml`, read within `limits`.
pub fn read(yaml: &str, limits: &YamlLimits) -> Result<Vec<Value>, ManifestError> {
    yaml::documents(yaml, limits).map_err(|e| {
        let (code, location) = match &e {
            YamlError::Limit { .. } => ("manifest_limit_exceeded", "documents".to_string()),
            other => (
                "invalid_manifest",
                format!("documents[{}]", other.document()),
            ),
        };
        let message = e.to_string();
        ManifestError {
            code,
            summary: message.clone(),
            errors: vec![FieldError { location, message }],
        }
    })
}

/// Checks the required fields of every document.
pub fn check(documents: &[Value]) -> Result<CheckedManifest, ManifestError> {
    let mut errors = Vec::new();
    for (index, doc) in documents.iter().enumerate() {
        check_document(index, doc, &mut errors);
    }
    if errors.is_empty() && documents.is_empty() {
        errors.push(FieldError {
            location: "documents".into(),
            message: "the YAML holds no Kubernetes object".into(),
        });
    }
    if errors.is_empty() {
        return Ok(CheckedManifest {
            objects: documents.len(),
        });
    }
    let summary = match errors.as_slice() {
        [only] => only.message.clone(),
        [first, ..] => format!("{} (and {} more problems)", first.message, errors.len() - 1),
        [] => String::new(),
    };
    Err(ManifestError {
        code: "invalid_manifest",
        summary,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    fn check(yaml: &str) -> Result<CheckedManifest, ManifestError> {
        super::check(&read(yaml, &YamlLimits::default())?)
    }

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
