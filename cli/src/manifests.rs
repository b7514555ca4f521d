//! The Kubernetes objects `brokkr apply` submits: read from files and directories (every
//! `.yaml`/`.yml` file under a directory, in name order), checked to be objects, and joined
//! into one multi-document YAML whose text depends only on their content.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The most bytes read from all files together; the broker refuses far less (4 MiB default).
const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// The objects of one apply, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub objects: Vec<Value>,
}

impl Manifest {
    /// Reads every path (a file, or a directory searched recursively) in the order given.
    pub fn read(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::new();
        for path in paths {
            collect(path, &mut files)?;
        }
        let mut total = 0u64;
        let mut objects = Vec::new();
        for file in &files {
            total += std::fs::metadata(file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            if total > MAX_TOTAL_BYTES {
                bail!("the files given hold more than {MAX_TOTAL_BYTES} bytes");
            }
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            objects.extend(parse(&text).with_context(|| file.display().to_string())?);
        }
        if objects.is_empty() {
            bail!("the files given hold no Kubernetes objects");
        }
        Ok(Self { objects })
    }

    /// The objects of a stored deployment object's YAML.
    pub fn parse_stored(yaml: &str) -> Result<Self> {
        Ok(Self {
            objects: parse(yaml)?,
        })
    }

    /// The multi-document YAML submitted: each object re-serialised, so comments and layout
    /// do not make two equal manifests differ.
    pub fn to_yaml(&self) -> Result<String> {
        let mut out = String::new();
        for object in &self.objects {
            out.push_str("---\n");
            out.push_str(&serde_yaml_ng::to_string(object)?);
        }
        Ok(out)
    }

    /// The `Idempotency-Key` of submitting this manifest to `stack` on top of `base` (the
    /// checksum of the stack's newest version): a retry after a lost answer repeats it, while
    /// returning to an earlier content later is a new submission.
    pub fn idempotency_key(yaml: &str, stack: uuid::Uuid, base: Option<&str>) -> String {
        let mut hash = Sha256::new();
        hash.update(stack.as_bytes());
        hash.update(base.unwrap_or("").as_bytes());
        hash.update([0]);
        hash.update(yaml.as_bytes());
        format!("brokkr-apply:{}", hex::encode(hash.finalize()))
    }
}

/// Adds `path` (or, for a directory, the YAML files under it in name order) to `files`.
fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", path.display()))?;
    entries.sort();
    for entry in entries {
        let yaml = entry.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if entry.is_dir() || yaml {
            collect(&entry, files)?;
        }
    }
    Ok(())
}

/// The objects of a multi-document YAML text; empty documents are skipped.
fn parse(text: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .with_context(|| format!("document {} is not valid YAML", index + 1))?;
        if value.is_null() {
            continue;
        }
        identity(&value).with_context(|| format!("document {}", index + 1))?;
        objects.push(value);
    }
    Ok(objects)
}

/// How an object is told apart from the others: `kind apiVersion namespace/name`.
pub fn identity(object: &Value) -> Result<String> {
    if let Some(identity) = brokkr_types::manifest_diff::identity(object) {
        return Ok(identity);
    }
    let kind = object.get("kind").and_then(Value::as_str);
    match (object.get("apiVersion").and_then(Value::as_str), kind) {
        (Some(_), Some(kind)) => bail!("{kind} without metadata.name"),
        _ => bail!("not a Kubernetes object: apiVersion and kind are required"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_documents_are_skipped_and_objects_need_a_name() {
        let objects =
            parse("---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n").unwrap();
        assert_eq!(objects.len(), 1);
        let err = parse("apiVersion: v1\nkind: ConfigMap\n").unwrap_err();
        assert!(format!("{err:#}").contains("metadata.name"), "{err:#}");
        let err = parse("just: text\n").unwrap_err();
        assert!(format!("{err:#}").contains("apiVersion"), "{err:#}");
    }

    #[test]
    fn layout_and_comments_do_not_change_the_submitted_text() {
        let a = parse("# hi\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n").unwrap();
        let b = parse("kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: a\n").unwrap();
        let (a, b) = (Manifest { objects: a }, Manifest { objects: b });
        assert_eq!(a.to_yaml().unwrap(), b.to_yaml().unwrap());
    }

    #[test]
    fn the_key_changes_with_the_base_and_the_content() {
        let stack = uuid::Uuid::new_v4();
        let one = Manifest::idempotency_key("a", stack, None);
        assert_eq!(one, Manifest::idempotency_key("a", stack, None));
        assert_ne!(one, Manifest::idempotency_key("b", stack, None));
        assert_ne!(one, Manifest::idempotency_key("a", stack, Some("x")));
        assert!(one.len() <= 128 && one.starts_with("brokkr-apply:"));
    }
}
