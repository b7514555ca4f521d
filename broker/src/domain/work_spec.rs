//! A work order's type, spec and limits, parsed once: a [`WorkSpec`] can only be built valid
//! (names Kubernetes would accept, a `batch/v1` Job, bounded log tails and timeouts), and it
//! knows the documents validator plugins bound to the `work-orders` scope judge.

use brokkr_types::FieldError;
use brokkr_types::work_orders::{
    CreateWorkOrder, DEFAULT_LOG_LINES, DiagnosticsSpec, JobSpec, MAX_LOG_LINES, RestartSpec,
    WorkOrderType,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Claims allowed per agent when an order does not say, and the most it may ask for.
pub const DEFAULT_ATTEMPTS: u32 = 3;
pub const MAX_ATTEMPTS: u32 = 10;
/// Lease length when an order does not say, and the range it may ask for.
pub const DEFAULT_CLAIM_TIMEOUT: u32 = 600;
pub const CLAIM_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 5..=86_400;
/// How long an agent waits for a Job when the order does not say, and the most it may ask for.
pub const DEFAULT_JOB_TIMEOUT: u32 = 600;
pub const MAX_JOB_TIMEOUT: u32 = 86_400;

/// A checked work order spec.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkSpec {
    pub work_type: WorkOrderType,
    /// The spec as stored and sent to agents, defaults filled in.
    pub spec: Value,
    pub max_attempts: u32,
    pub claim_timeout_seconds: u32,
    /// The deployment object a `diagnostics` order is about.
    pub deployment_object: Option<Uuid>,
}

fn error(location: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        location: location.into(),
        message: message.into(),
    }
}

/// Whether `name` is a DNS-1123 label (`max` characters at most).
fn is_label(name: &str, max: usize) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Whether `name` is a DNS-1123 subdomain (dot-separated labels, 253 characters at most).
fn is_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(|part| is_label(part, 63))
}

fn check_name(location: &str, name: &str, errors: &mut Vec<FieldError>) {
    if !is_subdomain(name) {
        errors.push(error(location, "must be a lowercase DNS-1123 name"));
    }
}

fn check_namespace(location: &str, namespace: &str, errors: &mut Vec<FieldError>) {
    if !is_label(namespace, 63) {
        errors.push(error(location, "must be a lowercase DNS-1123 label"));
    }
}

fn check_log_lines(lines: Option<u32>, errors: &mut Vec<FieldError>) -> u32 {
    let lines = lines.unwrap_or(DEFAULT_LOG_LINES);
    if lines > MAX_LOG_LINES {
        errors.push(error("spec.log_lines", format!("at most {MAX_LOG_LINES}")));
    }
    lines
}

fn typed<T: serde::de::DeserializeOwned>(spec: &Value) -> Result<T, Vec<FieldError>> {
    serde_json::from_value(spec.clone()).map_err(|e| vec![error("spec", e.to_string())])
}

fn restart(spec: &Value, errors: &mut Vec<FieldError>) -> Result<Value, Vec<FieldError>> {
    let restart: RestartSpec = typed(spec)?;
    check_namespace("spec.namespace", &restart.namespace, errors);
    check_name("spec.name", &restart.name, errors);
    Ok(json!(restart))
}

fn job(spec: &Value, errors: &mut Vec<FieldError>) -> Result<Value, Vec<FieldError>> {
    let mut job: JobSpec = typed(spec)?;
    let manifest = &mut job.job;
    if manifest["apiVersion"] != "batch/v1" || manifest["kind"] != "Job" {
        errors.push(error("spec.job", "must be a batch/v1 Job"));
    }
    match manifest["metadata"]["name"].as_str() {
        Some(name) if is_label(name, 63) => {}
        _ => errors.push(error(
            "spec.job.metadata.name",
            "required: a lowercase DNS-1123 label",
        )),
    }
    match manifest["metadata"]["namespace"].as_str() {
        Some(namespace) => check_namespace("spec.job.metadata.namespace", namespace, errors),
        None if manifest["metadata"].is_object() => {
            manifest["metadata"]["namespace"] = json!("default");
        }
        None => {}
    }
    if !manifest["spec"]["template"].is_object() {
        errors.push(error("spec.job.spec.template", "required"));
    }
    job.log_lines = Some(check_log_lines(job.log_lines, errors));
    let timeout = job.timeout_seconds.unwrap_or(DEFAULT_JOB_TIMEOUT);
    if !(1..=MAX_JOB_TIMEOUT).contains(&timeout) {
        errors.push(error(
            "spec.timeout_seconds",
            format!("between 1 and {MAX_JOB_TIMEOUT}"),
        ));
    }
    job.timeout_seconds = Some(timeout);
    Ok(json!(job))
}

fn diagnostics(
    spec: &Value,
    errors: &mut Vec<FieldError>,
) -> Result<(Value, Uuid), Vec<FieldError>> {
    let mut diagnostics: DiagnosticsSpec = typed(spec)?;
    diagnostics.log_lines = Some(check_log_lines(diagnostics.log_lines, errors));
    Ok((json!(diagnostics), diagnostics.deployment_object_id))
}

impl WorkSpec {
    /// Checks a request's type, spec and limits (not its target: that takes the database).
    pub fn parse(request: &CreateWorkOrder) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut deployment_object = None;
        let spec = match request.work_type {
            WorkOrderType::Restart => restart(&request.spec, &mut errors)?,
            WorkOrderType::Job => job(&request.spec, &mut errors)?,
            WorkOrderType::Diagnostics => {
                let (spec, object) = diagnostics(&request.spec, &mut errors)?;
                deployment_object = Some(object);
                spec
            }
        };
        let max_attempts = request.max_attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            errors.push(error(
                "max_attempts",
                format!("between 1 and {MAX_ATTEMPTS}"),
            ));
        }
        let claim_timeout_seconds = request
            .claim_timeout_seconds
            .unwrap_or(DEFAULT_CLAIM_TIMEOUT);
        if !CLAIM_TIMEOUT_RANGE.contains(&claim_timeout_seconds) {
            errors.push(error(
                "claim_timeout_seconds",
                format!(
                    "between {} and {}",
                    CLAIM_TIMEOUT_RANGE.start(),
                    CLAIM_TIMEOUT_RANGE.end()
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            work_type: request.work_type,
            spec,
            max_attempts,
            claim_timeout_seconds,
            deployment_object,
        })
    }

    /// What validator plugins judge: a `brokkr.io/v1 WorkOrder` document describing the order,
    /// and for a `job` order the Job itself (so image and security rules written for
    /// deployments hold for jobs too).
    pub fn documents(&self, target: &Value) -> Vec<Value> {
        let mut documents = vec![json!({
            "apiVersion": "brokkr.io/v1",
            "kind": "WorkOrder",
            "metadata": { "name": self.work_type.as_str() },
            "spec": { "type": self.work_type, "target": target, "spec": self.spec },
        })];
        if self.work_type == WorkOrderType::Job {
            documents.push(self.spec["job"].clone());
        }
        documents
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(work_type: &str, spec: Value) -> CreateWorkOrder {
        serde_json::from_value(json!({ "type": work_type, "target": {}, "spec": spec })).unwrap()
    }

    #[test]
    fn restart_names_must_be_kubernetes_names() {
        let ok = WorkSpec::parse(&request(
            "restart",
            json!({"kind": "Deployment", "namespace": "web", "name": "api.v2"}),
        ))
        .unwrap();
        assert_eq!(ok.max_attempts, DEFAULT_ATTEMPTS);
        let bad = WorkSpec::parse(&request(
            "restart",
            json!({"kind": "Deployment", "namespace": "Web", "name": "-api"}),
        ))
        .unwrap_err();
        let locations: Vec<&str> = bad.iter().map(|e| e.location.as_str()).collect();
        assert_eq!(locations, ["spec.namespace", "spec.name"]);
        assert!(
            WorkSpec::parse(&request(
                "restart",
                json!({"kind": "Pod", "namespace": "a", "name": "b"})
            ))
            .is_err()
        );
    }

    #[test]
    fn a_job_gets_its_defaults_and_is_judged_as_itself() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
                         "spec": {"template": {"spec": {"containers": []}}}});
        let parsed = WorkSpec::parse(&request("job", json!({ "job": job }))).unwrap();
        assert_eq!(parsed.spec["job"]["metadata"]["namespace"], "default");
        assert_eq!(parsed.spec["log_lines"], DEFAULT_LOG_LINES);
        assert_eq!(parsed.spec["timeout_seconds"], DEFAULT_JOB_TIMEOUT);
        let documents = parsed.documents(&json!({}));
        assert_eq!(documents[0]["kind"], "WorkOrder");
        assert_eq!(documents[1]["kind"], "Job");
        let not_a_job =
            json!({"job": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}});
        assert!(WorkSpec::parse(&request("job", not_a_job)).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let id = Uuid::new_v4();
        let too_many_lines = json!({"deployment_object_id": id, "log_lines": MAX_LOG_LINES + 1});
        assert!(WorkSpec::parse(&request("diagnostics", too_many_lines)).is_err());
        let mut r = request("diagnostics", json!({"deployment_object_id": id}));
        r.max_attempts = Some(0);
        r.claim_timeout_seconds = Some(1);
        assert_eq!(WorkSpec::parse(&r).unwrap_err().len(), 2);
        r.max_attempts = None;
        r.claim_timeout_seconds = None;
        assert_eq!(WorkSpec::parse(&r).unwrap().deployment_object, Some(id));
    }
}
