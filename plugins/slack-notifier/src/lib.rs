//! Slack-style notifier: turns `deployment.failed` into `{"text": "…"}` for an incoming-webhook
//! URL and drops every other event. Configuration (optional): `{"prefix": ":rotating_light:"}`.
// The glue wit-bindgen generates for `notify` passes the event's fields one by one.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../../wit/plugin-0.2.0", world: "notifier" });

use serde::Deserialize;

struct SlackNotifier;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    prefix: Option<String>,
}

/// The fields of a `deployment.failed` event this plugin reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Failure {
    stack_name: String,
    agent_name: String,
    cluster_name: String,
    deployment_object_id: String,
    sequence_id: Option<i64>,
}

fn config(text: &str) -> Result<Config, String> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    serde_json::from_str(text).map_err(|e| format!("configuration: {e}"))
}

impl Guest for SlackNotifier {
    fn check_config(config_text: String) -> Result<(), String> {
        config(&config_text).map(|_| ())
    }

    fn notify(event: Event, config_text: String) -> Result<Option<Outgoing>, String> {
        if event.event_type != "deployment.failed" {
            return Ok(None);
        }
        let config = config(&config_text)?;
        let failure: Failure =
            serde_json::from_str(&event.data).map_err(|e| format!("event data: {e}"))?;
        let version = failure
            .sequence_id
            .map(|n| format!(" version {n}"))
            .unwrap_or_default();
        let mut text = format!(
            "Deployment of stack `{}`{version} failed on agent `{}` (cluster `{}`). Deployment object {}.",
            failure.stack_name,
            failure.agent_name,
            failure.cluster_name,
            failure.deployment_object_id
        );
        if let Some(prefix) = config.prefix {
            text = format!("{prefix} {text}");
        }
        let body = serde_json::json!({ "text": text }).to_string();
        Ok(Some(Outgoing {
            body,
            content_type: "application/json".into(),
            headers: Vec::new(),
        }))
    }
}

export!(SlackNotifier);
