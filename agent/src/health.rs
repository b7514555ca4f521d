//! Health of what was applied, judged from object status the way `kubectl rollout status`
//! does: Deployments, StatefulSets and DaemonSets roll out, Jobs complete or fail, and Pods of
//! a workload reveal CrashLoopBackOff, image pull failures and OOM kills.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Healthy,
    Progressing,
    Degraded,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Progressing => "progressing",
            Self::Degraded => "degraded",
        }
    }
}

/// The health report of every applied deployment object, from the verdicts the agent keeps
/// (`state: message`), at most [`brokkr_types::rollouts::MAX_HEALTH_ENTRIES`].
pub fn report(state: &crate::state::Persisted) -> Vec<brokkr_types::rollouts::ObjectHealth> {
    use brokkr_types::rollouts::{HealthStatus, MAX_HEALTH_ENTRIES, ObjectHealth};
    state
        .stacks
        .values()
        .filter_map(|record| {
            let object = record.applied?;
            let summary = record.health.as_deref()?;
            let (state, message) = summary.split_once(": ").unwrap_or((summary, ""));
            let status = match state {
                "healthy" => HealthStatus::Healthy,
                "progressing" => HealthStatus::Progressing,
                "degraded" => HealthStatus::Degraded,
                _ => HealthStatus::Unknown,
            };
            let message: String = message.chars().take(4000).collect();
            Some(ObjectHealth {
                deployment_object_id: object,
                status,
                message: brokkr_types::EventMessage::parse(message).ok(),
                observed_at: Some(chrono::Utc::now()),
            })
        })
        .take(MAX_HEALTH_ENTRIES)
        .collect()
}

/// A verdict and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub state: State,
    pub message: String,
}

impl Health {
    fn new(state: State, message: impl Into<String>) -> Self {
        Self {
            state,
            message: message.into(),
        }
    }
}

/// Kinds whose health is assessed.
pub fn is_workload(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job")
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Judges one workload from its status.
pub fn workload(kind: &str, name: &str, obj: &Value) -> Health {
    let status = &obj["status"];
    let generation = int(&obj["metadata"]["generation"]);
    if kind != "Job" && int(&status["observedGeneration"]) < generation {
        return Health::new(
            State::Progressing,
            format!("{kind} {name}: waiting for the controller to observe generation {generation}"),
        );
    }
    let wanted = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    match kind {
        "Deployment" => {
            if condition(obj, "Progressing")
                .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
            {
                return Health::new(
                    State::Degraded,
                    format!("Deployment {name}: progress deadline exceeded"),
                );
            }
            let (updated, available) = (
                int(&status["updatedReplicas"]),
                int(&status["availableReplicas"]),
            );
            if updated < wanted || available < wanted {
                return Health::new(
                    State::Progressing,
                    format!(
                        "Deployment {name}: {available} of {wanted} replicas available, {updated} updated"
                    ),
                );
            }
        }
        "StatefulSet" => {
            let (ready, updated) = (
                int(&status["readyReplicas"]),
                int(&status["updatedReplicas"]),
            );
            if ready < wanted || updated < wanted {
                return Health::new(
                    State::Progressing,
                    format!("StatefulSet {name}: {ready} of {wanted} replicas ready"),
                );
            }
        }
        "DaemonSet" => {
            let desired = int(&status["desiredNumberScheduled"]);
            let (ready, updated) = (
                int(&status["numberReady"]),
                int(&status["updatedNumberScheduled"]),
            );
            if ready < desired || updated < desired {
                return Health::new(
                    State::Progressing,
                    format!("DaemonSet {name}: {ready} of {desired} pods ready"),
                );
            }
        }
        "Job" => return job(name, obj),
        _ => {}
    }
    Health::new(State::Healthy, format!("{kind} {name} is rolled out"))
}

fn job(name: &str, obj: &Value) -> Health {
    if let Some(failed) = condition(obj, "Failed").filter(|c| c["status"] == "True") {
        let reason = failed["message"]
            .as_str()
            .or(failed["reason"].as_str())
            .unwrap_or("failed");
        return Health::new(State::Degraded, format!("Job {name} failed: {reason}"));
    }
    if condition(obj, "Complete").is_some_and(|c| c["status"] == "True") {
        return Health::new(State::Healthy, format!("Job {name} completed"));
    }
    Health::new(State::Progressing, format!("Job {name} is running"))
}

const BAD_WAITING: [&str; 5] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "InvalidImageName",
];

/// The first pod failure among `pods`, if any.
pub fn pod_failure(pods: &[Value]) -> Option<Health> {
    for pod in pods {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or("?");
        let statuses = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten();
        for container in statuses {
            let name = container["name"].as_str().unwrap_or("?");
            if let Some(reason) = container["state"]["waiting"]["reason"]
                .as_str()
                .filter(|r| BAD_WAITING.contains(r))
            {
                return Some(Health::new(
                    State::Degraded,
                    format!("pod {pod_name}: container {name}: {reason}"),
                ));
            }
            let oom = |state: &Value| state["terminated"]["reason"] == "OOMKilled";
            if oom(&container["state"]) || oom(&container["lastState"]) {
                return Some(Health::new(
                    State::Degraded,
                    format!("pod {pod_name}: container {name} was OOMKilled"),
                ));
            }
        }
    }
    None
}

/// The worst verdict wins; messages of equally bad verdicts are joined.
pub fn combine(verdicts: &[Health]) -> Option<Health> {
    let worst = verdicts.iter().map(|h| h.state).max()?;
    let messages: Vec<&str> = verdicts
        .iter()
        .filter(|h| h.state == worst)
        .map(|h| h.message.as_str())
        .collect();
    Some(Health::new(worst, messages.join("; ")))
}

/// The `matchLabels` of a workload's selector as a label-selector string.
pub fn pod_selector(obj: &Value) -> Option<String> {
    let labels = obj["spec"]["selector"]["matchLabels"].as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deployment_rollout() {
        let rolling = json!({ "metadata": { "generation": 2 }, "spec": { "replicas": 3 },
            "status": { "observedGeneration": 2, "updatedReplicas": 3, "availableReplicas": 1 } });
        assert_eq!(
            workload("Deployment", "web", &rolling).state,
            State::Progressing
        );
        let done = json!({ "metadata": { "generation": 2 }, "spec": { "replicas": 3 },
            "status": { "observedGeneration": 2, "updatedReplicas": 3, "availableReplicas": 3 } });
        assert_eq!(workload("Deployment", "web", &done).state, State::Healthy);
        let stuck = json!({ "metadata": { "generation": 1 }, "status": { "observedGeneration": 1,
            "conditions": [{ "type": "Progressing", "reason": "ProgressDeadlineExceeded" }] } });
        assert_eq!(workload("Deployment", "web", &stuck).state, State::Degraded);
        let unobserved =
            json!({ "metadata": { "generation": 3 }, "status": { "observedGeneration": 2 } });
        assert_eq!(
            workload("Deployment", "web", &unobserved).state,
            State::Progressing
        );
    }

    #[test]
    fn jobs_and_sets() {
        let failed = json!({ "status": { "conditions": [{ "type": "Failed", "status": "True", "message": "BackoffLimitExceeded" }] } });
        assert_eq!(workload("Job", "j", &failed).state, State::Degraded);
        let complete =
            json!({ "status": { "conditions": [{ "type": "Complete", "status": "True" }] } });
        assert_eq!(workload("Job", "j", &complete).state, State::Healthy);
        let ds = json!({ "metadata": { "generation": 1 }, "status": { "observedGeneration": 1, "desiredNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2 } });
        assert_eq!(workload("DaemonSet", "d", &ds).state, State::Progressing);
        let sts = json!({ "metadata": { "generation": 1 }, "spec": { "replicas": 2 }, "status": { "observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2 } });
        assert_eq!(workload("StatefulSet", "s", &sts).state, State::Healthy);
    }

    #[test]
    fn pod_failures() {
        let crash = json!([{ "metadata": { "name": "web-1" }, "status": { "containerStatuses": [
            { "name": "app", "state": { "waiting": { "reason": "CrashLoopBackOff" } } }] } }]);
        let found = pod_failure(crash.as_array().unwrap()).unwrap();
        assert_eq!(found.state, State::Degraded);
        assert!(found.message.contains("CrashLoopBackOff"));
        let oom = json!([{ "metadata": { "name": "w" }, "status": { "containerStatuses": [
            { "name": "app", "state": { "running": {} }, "lastState": { "terminated": { "reason": "OOMKilled" } } }] } }]);
        assert!(
            pod_failure(oom.as_array().unwrap())
                .unwrap()
                .message
                .contains("OOMKilled")
        );
        assert!(
            pod_failure(&[
                json!({ "status": { "containerStatuses": [{ "state": { "running": {} } }] } })
            ])
            .is_none()
        );
    }

    #[test]
    fn worst_wins() {
        let verdicts = [
            Health::new(State::Healthy, "a"),
            Health::new(State::Degraded, "b"),
            Health::new(State::Progressing, "c"),
        ];
        assert_eq!(
            combine(&verdicts).unwrap(),
            Health::new(State::Degraded, "b")
        );
        assert!(combine(&[]).is_none());
    }
}
