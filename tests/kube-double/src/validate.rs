//! The checks a real API server makes that agents must cope with: names, namespaces, and a few
//! required fields of common kinds.

use serde_json::Value;

use crate::kinds::Kind;
use crate::status::{ApiErr, ApiResult};

fn dns_subdomain(name: &str) -> bool {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    !name.is_empty()
        && name.len() <= 253
        && ok_chars
        && alnum(name.bytes().next())
        && alnum(name.bytes().last())
}

fn dns_label(name: &str) -> bool {
    dns_subdomain(name) && name.len() <= 63 && !name.contains('.')
}

/// Checks an object about to be stored.
pub fn object(kind: &Kind, name: &str, obj: &Value) -> ApiResult<()> {
    let name_ok = if kind.kind == "Namespace" {
        dns_label(name)
    } else {
        dns_subdomain(name)
    };
    if !name_ok {
        return Err(ApiErr::invalid(
            &kind.kind,
            name,
            &format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case \
                 alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    match kind.kind.as_str() {
        "ConfigMap" => config_map(name, obj),
        "Deployment" | "StatefulSet" | "DaemonSet" => workload(&kind.kind, name, obj),
        _ => Ok(()),
    }
}

fn config_map(name: &str, obj: &Value) -> ApiResult<()> {
    if let Some(data) = obj.get("data").and_then(Value::as_object)
        && let Some((key, _)) = data.iter().find(|(_, v)| !v.is_string())
    {
        return Err(ApiErr::invalid(
            "ConfigMap",
            name,
            &format!("data[{key}]: Invalid value: must be a string"),
        ));
    }
    Ok(())
}

fn workload(kind: &str, name: &str, obj: &Value) -> ApiResult<()> {
    let spec = &obj["spec"];
    if spec.get("selector").is_none() {
        return Err(ApiErr::invalid(kind, name, "spec.selector: Required value"));
    }
    if spec.get("template").is_none() {
        return Err(ApiErr::invalid(kind, name, "spec.template: Required value"));
    }
    Ok(())
}

/// Checks that a body's `apiVersion` and `kind`, when given, match the endpoint.
pub fn type_meta(kind: &Kind, body: &Value, required: bool) -> ApiResult<()> {
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    let body_kind = body.get("kind").and_then(Value::as_str);
    if required && (api_version.is_none() || body_kind.is_none()) {
        return Err(ApiErr::bad_request("apiVersion and kind must be set"));
    }
    if api_version.is_some_and(|v| v != kind.api_version())
        || body_kind.is_some_and(|k| k != kind.kind)
    {
        return Err(ApiErr::bad_request(format!(
            "the body's type ({} {}) does not match the endpoint ({} {})",
            api_version.unwrap_or("?"),
            body_kind.unwrap_or("?"),
            kind.api_version(),
            kind.kind
        )));
    }
    Ok(())
}
