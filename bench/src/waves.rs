//! The `waves` scenario: a staged release over the whole fleet. A canary wave of one agent
//! applies it; when its gate passes, the next wave (every other agent) receives the release.
//! Measured: from the moment the broker recorded the canary wave as passed (`passed_at`) to
//! each long-polling agent of the next wave holding its answer.

use std::sync::Arc;

use anyhow::{Context, Result};
use brokkr_bench::fleet::{Fleet, SimAgent, config_map};
use brokkr_bench::load;

use crate::long_polls::{self, LongPolls};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

/// A stack over every agent whose canary is the first agent, passing on apply alone.
async fn staged_stack(fleet: &Fleet, generator: &str, canary: Uuid) -> Result<Uuid> {
    let rollout = json!({ "waves": [{ "name": "canary", "agents": format!("agent.id == '{canary}'") },
                                    { "name": "everyone", "percent": 100 }],
                          "gate": { "min_healthy_percent": 0, "max_failed": 0, "soak_seconds": 0 } });
    let body = json!({ "name": "staged", "labels": ["fleet"], "rollout": rollout });
    let stack = fleet
        .call(
            reqwest::Method::POST,
            "/api/v1/stacks",
            generator,
            Some(body),
        )
        .await?;
    Ok(stack["id"].as_str().unwrap_or_default().parse()?)
}

/// Latency percentiles from the canary wave passing to every other agent's answer.
pub async fn wave_fan_out(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    generator: &str,
) -> Result<String> {
    let canary = agents.first().context("no agents")?;
    let stack = staged_stack(fleet, generator, canary.id).await?;
    fleet
        .publish(generator, stack, &config_map("staged", 200))
        .await?;
    let tags = super::etags(fleet, agents, 64).await?;
    fleet
        .publish(generator, stack, &config_map("staged", 300))
        .await?;
    let polls = LongPolls::open(fleet, agents.iter().zip(tags.iter()).skip(1)).await?;
    let object = latest_object(fleet, generator, stack).await?;
    let event = json!({ "idempotency_key": "canary-applied", "deployment_object_id": object,
                        "event_type": "apply", "status": "success" });
    let path = format!("/api/v1/agents/{}/events", canary.id);
    fleet
        .call(reqwest::Method::POST, &path, &canary.pak, Some(event))
        .await?;
    let answers = polls.answers().await?;
    let passed = passed_at(fleet, generator, stack).await?;
    let mut latencies = long_polls::latencies(&answers.times, passed);
    Ok(load::percentiles(&mut latencies))
}

async fn latest_object(fleet: &Fleet, generator: &str, stack: Uuid) -> Result<Uuid> {
    let path = format!("/api/v1/stacks/{stack}/deployment-objects?limit=1");
    let page = fleet
        .call(reqwest::Method::GET, &path, generator, None)
        .await?;
    Ok(page["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .parse()?)
}

async fn passed_at(fleet: &Fleet, generator: &str, stack: Uuid) -> Result<DateTime<Utc>> {
    let path = format!("/api/v1/stacks/{stack}/rollout");
    let rollout = fleet
        .call(reqwest::Method::GET, &path, generator, None)
        .await?;
    let text = rollout["staged"]["waves"][0]["passed_at"]
        .as_str()
        .context("the canary wave has not passed")?;
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}
