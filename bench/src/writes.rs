//! Writes at fleet scale: publishing to a stack every agent holds (the answer is the commit;
//! the agents' views advance after it), and assigning stacks to agents one target at a time
//! and in bulk (`POST /api/v1/stacks/{id}/targets`).

use std::time::{Duration, Instant};

use anyhow::Result;
use brokkr_bench::fleet::{Fleet, SimAgent, config_map};
use brokkr_bench::load;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

/// Deployment objects published, one after the other.
const PUBLISHES: usize = 100;
/// A pause between publishes, so each answer times its own commit rather than the CPU the
/// previous publish's advance of every view still takes.
const BETWEEN_PUBLISHES: Duration = Duration::from_millis(100);
/// Single assignments timed.
const SINGLE_TARGETS: usize = 200;
/// Most agents per bulk request (the API's bound).
const BULK_CHUNK: usize = 10_000;

/// Each publish's answer time on `stack`, which every agent holds (their views must exist:
/// fetch every agent's state first).
pub async fn publish_cost(fleet: &Fleet, generator: &str, stack: Uuid) -> Result<String> {
    let mut times = Vec::with_capacity(PUBLISHES);
    for i in 0..PUBLISHES {
        let yaml = config_map("small", 400 + i);
        let started = Instant::now();
        fleet.publish(generator, stack, &yaml).await?;
        times.push(started.elapsed());
        tokio::time::sleep(BETWEEN_PUBLISHES).await;
    }
    Ok(load::percentiles(&mut times))
}

/// A new stack without labels (it reaches nobody until assigned), with one object.
async fn unassigned_stack(fleet: &Fleet, generator: &str, name: &str) -> Result<Uuid> {
    let body = json!({ "name": name });
    let stack = fleet
        .call(Method::POST, "/api/v1/stacks", generator, Some(body))
        .await?;
    let stack: Uuid = stack["id"].as_str().unwrap_or_default().parse()?;
    fleet
        .publish(generator, stack, &config_map(name, 200))
        .await?;
    Ok(stack)
}

/// One stack assigned to every agent with bulk requests: the time and the rate.
pub async fn bulk_assign(fleet: &Fleet, agents: &[SimAgent], generator: &str) -> Result<String> {
    let stack = unassigned_stack(fleet, generator, "bulk").await?;
    let path = format!("/api/v1/stacks/{stack}/targets");
    let started = Instant::now();
    for chunk in agents.chunks(BULK_CHUNK) {
        let ids: Vec<Uuid> = chunk.iter().map(|a| a.id).collect();
        let body = json!({ "agent_ids": ids });
        let done = fleet
            .call(Method::POST, &path, generator, Some(body))
            .await?;
        anyhow::ensure!(
            done["added"] == chunk.len(),
            "not every agent was assigned: {done}"
        );
    }
    let elapsed = started.elapsed();
    let rate = agents.len() as f64 / elapsed.as_secs_f64();
    Ok(format!(
        "{} assignments in {:.0} ms: {rate:.0} per second",
        agents.len(),
        elapsed.as_secs_f64() * 1000.0
    ))
}

/// `POST /api/v1/agents/{id}/targets` for one agent at a time: each answer's time.
pub async fn single_targets(fleet: &Fleet, agents: &[SimAgent], generator: &str) -> Result<String> {
    let stack = unassigned_stack(fleet, generator, "single").await?;
    let mut times = Vec::with_capacity(SINGLE_TARGETS);
    for agent in agents.iter().take(SINGLE_TARGETS) {
        let path = format!("/api/v1/agents/{}/targets", agent.id);
        let body = json!({ "stack_id": stack });
        let started = Instant::now();
        fleet
            .call(Method::POST, &path, generator, Some(body))
            .await?;
        times.push(started.elapsed());
    }
    Ok(load::percentiles(&mut times))
}
