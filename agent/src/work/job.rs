//! `job`: applies a Job once (labelled with the work order, not with a stack, so pruning never
//! touches it), waits for it to complete or fail within the order's timeout, and reports its
//! status with the end of its pods' logs.

use std::time::{Duration, Instant};

use brokkr_types::work_orders::{DEFAULT_LOG_LINES, JobSpec};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Context, Finished, pods};

/// Label naming the work order a Job was created for.
pub const WORK_ORDER_LABEL: &str = "brokkr.io/work-order";
/// The field manager of Jobs run for work orders.
const FIELD_MANAGER: &str = "brokkr-work-orders";

/// Whether the Job's status says it is over: `Some(true)` complete, `Some(false)` failed.
fn ended(job: &Value) -> Option<(bool, String)> {
    let conditions = job["status"]["conditions"].as_array()?;
    conditions.iter().find_map(|c| {
        let done = c["status"] == "True";
        let message = c["message"]
            .as_str()
            .or(c["reason"].as_str())
            .unwrap_or_default();
        match c["type"].as_str() {
            Some("Complete") if done => Some((true, message.to_string())),
            Some("Failed") if done => Some((false, message.to_string())),
            _ => None,
        }
    })
}

pub async fn run(order: Uuid, spec: &Value, context: &Context) -> Finished {
    let spec: JobSpec = match serde_json::from_value(spec.clone()) {
        Ok(spec) => spec,
        Err(e) => {
            return Finished::failed(format!("the job spec does not parse: {e}"), Value::Null);
        }
    };
    let mut job = spec.job.clone();
    let name = job["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = job["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    job["metadata"]["labels"][WORK_ORDER_LABEL] = json!(order.to_string());
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1", "Job"));
    let api: Api<DynamicObject> = Api::namespaced_with(context.kube.clone(), &namespace, &resource);
    let what = format!("Job {namespace}/{name}");
    let params = PatchParams::apply(FIELD_MANAGER).force();
    if let Err(e) = api.patch(&name, &params, &Patch::Apply(&job)).await {
        return Finished::failed(format!("cannot apply {what}: {e}"), Value::Null);
    }
    let timeout = Duration::from_secs(u64::from(spec.timeout_seconds.unwrap_or(600)));
    let deadline = Instant::now() + timeout;
    let (live, outcome) = loop {
        let live = match api.get(&name).await {
            Ok(live) => serde_json::to_value(live).unwrap_or_default(),
            Err(e) => return Finished::failed(format!("cannot read {what}: {e}"), Value::Null),
        };
        if let Some(outcome) = ended(&live) {
            break (live, Some(outcome));
        }
        if Instant::now() >= deadline {
            break (live, None);
        }
        tokio::time::sleep(context.poll).await;
    };
    let lines = spec.log_lines.unwrap_or(DEFAULT_LOG_LINES);
    let mut described = Vec::new();
    match pods::list(&context.kube, &namespace, &format!("job-name={name}")).await {
        Ok(found) => {
            for pod in &found {
                described.push(pods::describe(&context.kube, pod, lines).await);
            }
        }
        Err(e) => described.push(json!({ "error": e })),
    }
    let status = &live["status"];
    let result = json!({
        "job": { "namespace": namespace, "name": name },
        "succeeded": outcome.as_ref().is_some_and(|(ok, _)| *ok),
        "status": { "succeeded": status["succeeded"], "failed": status["failed"],
                    "conditions": status["conditions"] },
        "pods": described,
    });
    match outcome {
        Some((true, _)) => Finished::succeeded(format!("{what} completed"), result),
        Some((false, why)) => Finished::failed(format!("{what} failed: {why}"), result),
        None => Finished::failed(
            format!("{what} did not finish within {} s", timeout.as_secs()),
            result,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_ends_on_its_complete_or_failed_condition() {
        assert_eq!(ended(&json!({ "status": {} })), None);
        let running =
            json!({ "status": { "conditions": [{ "type": "Complete", "status": "False" }] } });
        assert_eq!(ended(&running), None);
        let complete =
            json!({ "status": { "conditions": [{ "type": "Complete", "status": "True" }] } });
        assert_eq!(ended(&complete), Some((true, String::new())));
        let failed = json!({ "status": { "conditions": [
            { "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded" }] } });
        assert_eq!(ended(&failed), Some((false, "BackoffLimitExceeded".into())));
    }
}
