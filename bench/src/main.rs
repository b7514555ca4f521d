//! `fleet-bench`: simulates a fleet of agents against a real broker process and prints
//! throughput and latency percentiles as Markdown rows (see docs/benchmarks.md).
//!
//! ```sh
//! cargo build --release -p brokkr-broker -p brokkr-bench
//! target/release/fleet-bench --backend sqlite --agents 10000
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use brokkr_bench::fleet::{self, Fleet, SimAgent, config_map};
use brokkr_bench::load::{self, Summary, run_load};
use brokkr_policy::{AgentFacts, Pairing, StackFacts, TargetExpression, decide_for_agents};
use clap::Parser;

mod bare_http;
mod console;
mod long_polls;
mod scale;
mod views;
mod waves;
mod writes;

#[derive(Debug, Parser)]
#[command(name = "fleet-bench", about = "Simulated agents against a broker")]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Registered agents.
    #[arg(long, default_value_t = 10_000)]
    agents: usize,
    /// Comma-separated: poll, longpoll, body, cel, memory, wake-large, views, waves, console,
    /// publish, targets, scale, replicas (PostgreSQL only).
    #[arg(long, value_delimiter = ',', default_value = "poll,longpoll,body,cel")]
    scenarios: Vec<String>,
    /// Seconds of load per throughput scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes of each of the ten stacks the `body` scenario publishes (its answers are about
    /// ten times this).
    #[arg(long, default_value_t = 20 * 1024)]
    stack_bytes: usize,
    /// Concurrent requests of the throughput scenarios.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Agents ask for zstd-compressed target states (`Accept-Encoding: zstd`); bytes are
    /// counted as sent.
    #[arg(long)]
    zstd: bool,
    /// Server for fresh PostgreSQL databases.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// The broker binary (default: next to this one).
    #[arg(long)]
    broker: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let database_url = fleet::fresh_database(&args.backend, &args.postgres, dir.path()).await?;
    let broker = fleet::broker_binary(args.broker.clone())?;
    let mut fleet = Fleet::start(&broker, &database_url, args.agents, dir)?;
    fleet.accept_encoding = args.zstd.then_some("zstd");
    let outcome = run(&args, &fleet, &broker).await;
    drop(fleet);
    fleet::drop_database(&args.postgres, &database_url).await?;
    outcome
}

/// Registers the fleet, then runs each scenario of `args` and prints its row.
async fn run(args: &Args, fleet: &Fleet, broker: &std::path::Path) -> Result<()> {
    let idle_rss = fleet.rss_mib();
    let started = Instant::now();
    let agents = Arc::new(fleet.register(args.agents).await?);
    eprintln!(
        "registered {} agents in {:.1?}",
        agents.len(),
        started.elapsed()
    );
    let generator = fleet.generator().await?;
    let small = fleet.stack(&generator, "small").await?;
    fleet
        .publish(&generator, small, &config_map("small", 200))
        .await?;
    println!("| backend | agents | scenario | result |\n| --- | --- | --- | --- |");
    let row = |scenario: &str, result: String| {
        println!(
            "| {} | {} | {scenario} | {result} |",
            args.backend, args.agents
        )
    };
    for scenario in &args.scenarios {
        match scenario.as_str() {
            "poll" => {
                let (summary, per_poll) = poll(fleet, &agents, args).await?;
                row(
                    "unchanged polls (304)",
                    format!("{}; {per_poll}", summary.describe()),
                );
            }
            "longpoll" => row(
                "long-poll fan-out, write → every answer",
                long_polls::propagation(fleet, fleet, &agents, &generator, small).await?,
            ),
            "scale" => {
                for (scenario, result) in
                    scale::registered_fleet(fleet, &agents, &generator, small).await?
                {
                    row(scenario, result);
                }
            }
            "replicas" => row(
                "long-poll fan-out, write on replica A → every answer on replica B",
                scale::two_replicas(fleet, broker, &agents, &generator, small).await?,
            ),
            "body" => {
                let (summary, per_poll) = body(fleet, &agents, &generator, args).await?;
                row(
                    &format!("polls returning 10 × {} B stacks (200)", args.stack_bytes),
                    format!("{}; {per_poll}", summary.describe()),
                );
            }
            "cel" => row(
                "CEL recompute of one stack",
                cel(fleet, &generator, small, agents.len()).await?,
            ),
            "memory" => row(
                "broker memory",
                memory(fleet, &agents, args, idle_rss).await?,
            ),
            "wake-large" => row(
                "long polls woken by one 3.9 MB object",
                wake_large(fleet, &agents, &generator).await?,
            ),
            "views" => {
                let (pages, rollout, busy, sent) = views::fleet_and_rollout(
                    fleet,
                    &agents,
                    &generator,
                    small,
                    args.seconds,
                    args.concurrency,
                )
                .await?;
                row("GET /api/v1/fleet, pages of 100", pages.describe());
                row("GET /api/v1/stacks/{id}/rollout", rollout.describe());
                row(
                    "GET /api/v1/stacks/{id}/rollout while agents report",
                    format!("{}; {sent} health reports meanwhile", busy.describe()),
                );
            }
            "console" => row(
                "GET /ui/fleet (console page of 100 agents)",
                console::fleet_pages(fleet, agents.len(), args.seconds)
                    .await?
                    .describe(),
            ),
            "waves" => row(
                "staged rollout: canary wave passed → every other agent's answer",
                waves::wave_fan_out(fleet, &agents, &generator).await?,
            ),
            "publish" => {
                etags(fleet, &agents, 64).await?;
                row(
                    "publish to a stack every agent holds: the write's answer",
                    writes::publish_cost(fleet, &generator, small).await?,
                );
            }
            "targets" => {
                row(
                    "POST /api/v1/agents/{id}/targets, one at a time",
                    writes::single_targets(fleet, &agents, &generator).await?,
                );
                row(
                    "POST /api/v1/stacks/{id}/targets, every agent",
                    writes::bulk_assign(fleet, &agents, &generator).await?,
                );
            }
            other => bail!("unknown scenario {other}"),
        }
    }
    Ok(())
}

/// The broker's CPU per request of a run that started when the broker had used `cpu_before`.
fn broker_cpu_per_request(fleet: &Fleet, cpu_before: f64, summary: &Summary) -> String {
    let seconds = fleet.cpu_seconds() - cpu_before;
    let micros = seconds * 1e6 / summary.requests.max(1) as f64;
    format!("broker CPU {micros:.1} µs per request")
}

/// Every agent's current ETag (this also fills the broker's caches).
pub(crate) async fn etags(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    concurrency: usize,
) -> Result<Arc<Vec<String>>> {
    let client = fleet.client.clone();
    let (url, accept) = (fleet.url.clone(), fleet.accept_encoding);
    let agents = agents.clone();
    let fetched = load::each(agents.len(), concurrency, move |i| {
        let request = fleet::target_state_request(&client, (&url, accept), &agents[i], "");
        async move {
            let response = request.send().await?;
            let etag = response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            response.bytes().await?;
            Ok(etag)
        }
    })
    .await?;
    Ok(Arc::new(fetched))
}

async fn poll(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    args: &Args,
) -> Result<(Summary, String)> {
    let tags = etags(fleet, agents, args.concurrency).await?;
    let (client, url, agents) = (fleet.client.clone(), fleet.url.clone(), agents.clone());
    let accept = fleet.accept_encoding;
    let cpu = fleet.cpu_seconds();
    let summary = run_load(
        args.concurrency,
        Duration::from_secs(args.seconds),
        move |i| {
            let n = i % agents.len();
            let request = fleet::target_state_request(&client, (&url, accept), &agents[n], "")
                .header("If-None-Match", &tags[n]);
            async move {
                let response = request.send().await?;
                if response.status() != 304 {
                    bail!("expected 304, got {}", response.status());
                }
                Ok(0)
            }
        },
    )
    .await?;
    let per_poll = broker_cpu_per_request(fleet, cpu, &summary);
    Ok((summary, per_poll))
}

async fn body(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    generator: &str,
    args: &Args,
) -> Result<(Summary, String)> {
    for k in 0..10 {
        let stack = fleet.stack(generator, &format!("big-{k}")).await?;
        fleet
            .publish(
                generator,
                stack,
                &config_map(&format!("big-{k}"), args.stack_bytes),
            )
            .await?;
    }
    let (client, url, agents) = (fleet.client.clone(), fleet.url.clone(), agents.clone());
    let accept = fleet.accept_encoding;
    let cpu = fleet.cpu_seconds();
    let summary = run_load(
        args.concurrency,
        Duration::from_secs(args.seconds),
        move |i| {
            let n = i % agents.len();
            let request = fleet::target_state_request(&client, (&url, accept), &agents[n], "");
            async move {
                let response = request.send().await?;
                if response.status() != 200 {
                    bail!("expected 200, got {}", response.status());
                }
                Ok(response.bytes().await?.len() as u64)
            }
        },
    )
    .await?;
    let per_poll = broker_cpu_per_request(fleet, cpu, &summary);
    Ok((summary, per_poll))
}

async fn cel(fleet: &Fleet, generator: &str, stack: uuid::Uuid, agents: usize) -> Result<String> {
    let expression = TargetExpression::parse(
        r#""fleet" in agent.labels && agent.annotations.region == stack.annotations.region"#,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let facts: Vec<AgentFacts> = (0..agents)
        .map(|i| AgentFacts {
            id: uuid::Uuid::new_v4().to_string(),
            name: format!("agent-{i}"),
            cluster_name: "bench".into(),
            labels: vec!["fleet".into(), format!("rack-{}", i % 40)],
            annotations: [(
                "region".to_string(),
                ["us-east", "eu-west", "ap-south"][i % 3].to_string(),
            )]
            .into(),
        })
        .collect();
    let target = StackFacts {
        annotations: [("region".to_string(), "us-east".to_string())].into(),
        ..StackFacts::default()
    };
    let inside = |_: usize| Pairing {
        within_reach: true,
        ..Pairing::default()
    };
    let mut runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let verdicts = decide_for_agents(&facts, &target, Some(&expression), &inside);
        let matched = verdicts.iter().filter(|v| v.targeted).count();
        runs.push(started.elapsed());
        if matched != agents.div_ceil(3) {
            bail!("expected a third of the agents to match, got {matched}");
        }
    }
    runs.sort();
    let started = Instant::now();
    let body = serde_json::json!({ "target_expression": "\"fleet\" in agent.labels" });
    fleet
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/stacks/{stack}?confirm=true"),
            generator,
            Some(body),
        )
        .await
        .context("PATCH")?;
    let api = started.elapsed();
    Ok(format!(
        "evaluation over {agents} agents: median {:.1} ms (5 runs); whole API change incl. database: {:.0} ms",
        runs[2].as_secs_f64() * 1e3,
        api.as_secs_f64() * 1e3
    ))
}

/// Every agent long-polls; one 3.9 MB deployment object wakes them all. Reports the broker's
/// peak RSS while they fetch it, over its RSS before.
async fn wake_large(fleet: &Fleet, agents: &Arc<Vec<SimAgent>>, generator: &str) -> Result<String> {
    let stack = fleet.stack(generator, "large").await?;
    fleet
        .publish_yaml(generator, stack, &config_map("large", 1000))
        .await?;
    let tags = etags(fleet, agents, 64).await?;
    let client = fleet::agents_client(Some(Duration::from_secs(300)))?;
    let mut waiting = Vec::with_capacity(agents.len());
    for (agent, tag) in agents.iter().zip(tags.iter()) {
        let request = fleet
            .target_state(&client, agent, "?wait=60")
            .header("If-None-Match", tag);
        waiting.push(tokio::spawn(async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?.len();
            anyhow::Ok((status, bytes))
        }));
    }
    while fleet.metric("brokkr_target_state_waiting").await? < agents.len() as f64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = fleet.rss_mib();
    let started = Instant::now();
    fleet
        .publish_yaml(generator, stack, &config_map("large", 3_900_000))
        .await?;
    let mut peak = before;
    while waiting.iter().any(|w| !w.is_finished()) {
        peak = peak.max(fleet.rss_mib());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let mut total = 0;
    for handle in waiting {
        let (status, bytes) = handle.await??;
        // Compressed, the repeated test data shrinks far below its size.
        let least = if fleet.accept_encoding.is_some() {
            1
        } else {
            3_900_000
        };
        if status != 200 || bytes < least {
            bail!("a woken poll answered {status} with {bytes} bytes");
        }
        total += bytes;
    }
    Ok(format!(
        "{} agents fetched {:.0} MB in {:.1} s; broker RSS {before:.0} MiB before, peak {peak:.0} MiB (+{:.0} MiB)",
        agents.len(),
        total as f64 / 1e6,
        took.as_secs_f64(),
        peak - before
    ))
}

async fn memory(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    args: &Args,
    idle: f64,
) -> Result<String> {
    let registered = fleet.rss_mib();
    etags(fleet, agents, args.concurrency).await?;
    let polled = fleet.rss_mib();
    Ok(format!(
        "RSS at start {idle:.0} MiB; with {} agents registered {registered:.0} MiB; after every agent polled once (auth cache and views filled) {polled:.0} MiB",
        agents.len()
    ))
}
