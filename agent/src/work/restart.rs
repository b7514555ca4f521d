//! `restart`: a rollout restart of a Deployment, StatefulSet or DaemonSet, done as
//! `kubectl rollout restart` does it (a pod template annotation with the time), so the
//! workload's own rollout strategy replaces its pods.

use brokkr_types::work_orders::RestartSpec;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::Finished;

/// The annotation `kubectl rollout restart` sets.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

pub async fn run(spec: &Value, kube: &kube::Client) -> Finished {
    let spec: RestartSpec = match serde_json::from_value(spec.clone()) {
        Ok(spec) => spec,
        Err(e) => {
            return Finished::failed(format!("the restart spec does not parse: {e}"), Value::Null);
        }
    };
    let kind = spec.kind.as_str();
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind));
    let api: Api<DynamicObject> = Api::namespaced_with(kube.clone(), &spec.namespace, &resource);
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch =
        json!({ "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: at } } } } });
    let what = format!("{kind} {}/{}", spec.namespace, spec.name);
    let result =
        json!({ "kind": kind, "namespace": spec.namespace, "name": spec.name, "restarted_at": at });
    // A merge patch never creates: restarting something that is not there fails.
    match api
        .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Finished::succeeded(format!("{what} restarted"), result),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Finished::failed(format!("{what} not found"), result)
        }
        Err(e) => Finished::failed(format!("cannot restart {what}: {e}"), result),
    }
}
