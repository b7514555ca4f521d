//! `diagnostics`: for one deployment object the agent holds, each object's presence and (for
//! workloads) health, the status and log tail of its pods, and recent events about them, all
//! bounded (objects, pods, events, log bytes).

use std::collections::{BTreeSet, HashSet};

use brokkr_types::work_orders::{DEFAULT_LOG_LINES, DiagnosticsSpec};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Context, Finished, pods};
use crate::cluster::Cluster;
use crate::health;

/// Most objects described, and most events reported.
const MAX_OBJECTS: usize = 100;
const MAX_EVENTS: usize = 50;

pub async fn run(spec: &Value, context: &Context) -> Finished {
    let spec: DiagnosticsSpec = match serde_json::from_value(spec.clone()) {
        Ok(spec) => spec,
        Err(e) => {
            return Finished::failed(
                format!("the diagnostics spec does not parse: {e}"),
                Value::Null,
            );
        }
    };
    let Some(yaml) = &context.object_yaml else {
        let message = format!(
            "this agent does not hold deployment object {}",
            spec.deployment_object_id
        );
        return Finished::failed(message, Value::Null);
    };
    let desired =
        match crate::objects::parse(yaml, Uuid::nil(), Uuid::nil(), spec.deployment_object_id) {
            Ok(desired) => desired,
            Err(e) => {
                return Finished::failed(
                    format!("the deployment object does not parse: {e}"),
                    Value::Null,
                );
            }
        };
    let lines = spec.log_lines.unwrap_or(DEFAULT_LOG_LINES);
    let mut cluster = Cluster::new(context.kube.clone());
    let mut objects = Vec::new();
    let mut described_pods = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    for item in desired.iter().take(MAX_OBJECTS) {
        let target = match cluster.locate(item).await {
            Ok(target) => target,
            Err(e) => {
                objects
                    .push(json!({ "kind": item.kind.kind, "name": item.name, "error": e.message }));
                continue;
            }
        };
        names.insert(item.name.clone());
        namespaces.extend(target.namespace.clone());
        let live = match cluster.get(&target).await {
            Ok(live) => live,
            Err(e) => {
                objects.push(json!({ "kind": item.kind.kind, "namespace": target.namespace, "name": item.name, "error": e.message }));
                continue;
            }
        };
        let mut entry = json!({ "kind": item.kind.kind, "namespace": target.namespace,
                                "name": item.name, "found": live.is_some() });
        if let Some(live) = live
            .as_ref()
            .filter(|_| health::is_workload(&item.kind.kind))
        {
            let verdict = health::workload(&item.kind.kind, &item.name, live);
            entry["health"] =
                json!({ "state": verdict.state.as_str(), "message": verdict.message });
            let selector = health::pod_selector(live)
                .or_else(|| (item.kind.kind == "Job").then(|| format!("job-name={}", item.name)));
            if let (Some(ns), Some(selector)) = (&target.namespace, selector) {
                let room = pods::MAX_PODS.saturating_sub(described_pods.len());
                for pod in pods::list(&context.kube, ns, &selector)
                    .await
                    .unwrap_or_default()
                    .iter()
                    .take(room)
                {
                    names.extend(pod["metadata"]["name"].as_str().map(str::to_string));
                    described_pods.push(pods::describe(&context.kube, pod, lines).await);
                }
            }
        }
        objects.push(entry);
    }
    let events = recent_events(&context.kube, &namespaces, &names).await;
    let unhealthy = objects
        .iter()
        .any(|o| o["health"]["state"] == "degraded" || o["found"] == false);
    let result = json!({
        "deployment_object_id": spec.deployment_object_id,
        "objects": objects, "pods": described_pods, "events": events,
    });
    let summary = format!(
        "{} object(s), {} pod(s), {} event(s){}",
        result["objects"].as_array().map_or(0, Vec::len),
        result["pods"].as_array().map_or(0, Vec::len),
        result["events"].as_array().map_or(0, Vec::len),
        if unhealthy {
            "; something is missing or degraded"
        } else {
            ""
        }
    );
    Finished::succeeded(summary, result)
}

/// The newest events in `namespaces` about any of `names`, oldest first.
async fn recent_events(
    kube: &kube::Client,
    namespaces: &BTreeSet<String>,
    names: &HashSet<String>,
) -> Vec<Value> {
    let mut found = Vec::new();
    for namespace in namespaces {
        let api: Api<Event> = Api::namespaced(kube.clone(), namespace);
        let Ok(list) = api.list(&ListParams::default().limit(500)).await else {
            continue;
        };
        for event in list.items {
            let about = event.involved_object.name.clone().unwrap_or_default();
            if !names.contains(&about) {
                continue;
            }
            let when = event
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| event.event_time.as_ref().map(|t| t.0.to_string()))
                .unwrap_or_default();
            found.push(json!({
                "namespace": namespace, "object": format!("{} {about}", event.involved_object.kind.clone().unwrap_or_default()),
                "type": event.type_, "reason": event.reason, "message": event.message,
                "count": event.count, "last_seen": when,
            }));
        }
    }
    found.sort_by(|a, b| a["last_seen"].as_str().cmp(&b["last_seen"].as_str()));
    let skip = found.len().saturating_sub(MAX_EVENTS);
    found.into_iter().skip(skip).collect()
}
