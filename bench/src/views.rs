//! The fleet-view and rollout scenarios: every agent reports the `small` stack's object applied
//! and healthy, then pages of `GET /api/v1/fleet` (100 agents each) and the stack's
//! `GET /api/v1/stacks/{id}/rollout` are timed, one request at a time; then the rollout again
//! while agents keep reporting (each read follows a report: the figures are brought up to date
//! from the rows that changed, not shared).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use brokkr_bench::fleet::{Fleet, SimAgent};
use brokkr_bench::load::{self, Summary, run_load};
use serde_json::json;
use uuid::Uuid;

/// `agent` reports `object` in health `status`; fails unless the broker stores it.
async fn put_health(
    client: &reqwest::Client,
    url: &str,
    agent: &SimAgent,
    object: &str,
    status: &str,
) -> Result<()> {
    let health =
        json!({ "deployment_objects": [{ "deployment_object_id": object, "status": status }] });
    let put = client
        .put(format!("{url}/api/v1/agents/{}/health", agent.id))
        .bearer_auth(&agent.pak)
        .json(&health)
        .send()
        .await?;
    if !put.status().is_success() {
        bail!("health report refused: {}", put.status());
    }
    Ok(())
}

/// Every agent reports an apply and a healthy verdict for `object`.
async fn report_everything(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    object: &str,
    concurrency: usize,
) -> Result<()> {
    let (client, url, agents) = (fleet.client.clone(), fleet.url.clone(), agents.clone());
    let object = object.to_string();
    load::each(agents.len(), concurrency, move |i| {
        let (client, url, agent, object) = (
            client.clone(),
            url.clone(),
            agents[i].clone(),
            object.clone(),
        );
        async move {
            let event = json!({ "idempotency_key": "bench-apply", "deployment_object_id": object,
                "event_type": "apply", "status": "success" });
            let posted = client
                .post(format!("{url}/api/v1/agents/{}/events", agent.id))
                .bearer_auth(&agent.pak)
                .json(&event)
                .send()
                .await?;
            if !posted.status().is_success() {
                bail!("apply report refused: {}", posted.status());
            }
            put_health(&client, &url, &agent, &object, "healthy").await
        }
    })
    .await?;
    Ok(())
}

/// One GET, timed by the load runner; fails unless it answers 200.
async fn timed_get(client: reqwest::Client, url: String, pak: String) -> Result<u64> {
    let response = client.get(url).bearer_auth(pak).send().await?;
    if response.status() != 200 {
        bail!("{}", response.status());
    }
    Ok(response.bytes().await?.len() as u64)
}

/// Agents report a health change one after another until `stop` is set; returns how many.
async fn keep_reporting(
    client: reqwest::Client,
    url: String,
    agents: Arc<Vec<SimAgent>>,
    object: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<u64> {
    let mut sent = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let agent = &agents[sent as usize % agents.len()];
        let status = if sent.is_multiple_of(2) {
            "progressing"
        } else {
            "healthy"
        };
        put_health(&client, &url, agent, &object, status).await?;
        sent += 1;
    }
    Ok(sent)
}

/// Rollout reads while agents keep reporting: (read summary, reports sent).
async fn rollout_under_reports(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    generator: &str,
    rollout_path: &str,
    object: &str,
    seconds: u64,
) -> Result<(Summary, u64)> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reporter = {
        let (client, url) = (fleet.client.clone(), fleet.url.clone());
        let (agents, object, stop) = (agents.clone(), object.to_string(), stop.clone());
        tokio::spawn(keep_reporting(client, url, agents, object, stop))
    };
    let (client, url, pak, path) = (
        fleet.client.clone(),
        fleet.url.clone(),
        generator.to_string(),
        rollout_path.to_string(),
    );
    let reads = run_load(1, Duration::from_secs(seconds), move |_| {
        timed_get(client.clone(), format!("{url}{path}"), pak.clone())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = reporter.await??;
    Ok((reads?, sent))
}

/// (fleet pages, rollout, rollout while reports arrive, reports sent meanwhile) over `seconds`
/// each.
pub async fn fleet_and_rollout(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    generator: &str,
    stack: Uuid,
    seconds: u64,
    concurrency: usize,
) -> Result<(Summary, Summary, Summary, u64)> {
    let rollout_path = format!("/api/v1/stacks/{stack}/rollout");
    let rollout = fleet
        .call(reqwest::Method::GET, &rollout_path, generator, None)
        .await?;
    let object = rollout["deployment_object_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    report_everything(fleet, agents, &object, concurrency).await?;
    // What autovacuum does within a minute of a bulk load: fresh planner statistics.
    if fleet.database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&fleet.database_url).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        pool.close().await;
    }
    let (client, url, admin) = (fleet.client.clone(), fleet.url.clone(), fleet.admin.clone());
    let pages = agents.len().div_ceil(100).max(1);
    let fleet_pages = run_load(1, Duration::from_secs(seconds), move |i| {
        let page = format!("{url}/api/v1/fleet?limit=100&offset={}", (i % pages) * 100);
        timed_get(client.clone(), page, admin.clone())
    })
    .await?;
    let (client, url, pak) = (
        fleet.client.clone(),
        fleet.url.clone(),
        generator.to_string(),
    );
    let path = rollout_path.clone();
    let rollouts = run_load(1, Duration::from_secs(seconds), move |_| {
        timed_get(client.clone(), format!("{url}{path}"), pak.clone())
    })
    .await?;
    let (busy, sent) =
        rollout_under_reports(fleet, agents, generator, &rollout_path, &object, seconds).await?;
    Ok((fleet_pages, rollouts, busy, sent))
}
