//! `webhook-bench`: webhook delivery throughput and latency against a real broker process and
//! two local receivers (see docs/benchmarks.md).
//!
//! ```sh
//! cargo build --release -p brokkr-broker -p brokkr-bench
//! target/release/webhook-bench --backend postgres --events 5000
//! ```
//!
//! 1. Backlog: the broker starts with delivery off, `--events` stacks are created (one
//!    `stack.created` event each, two subscriptions, so twice as many deliveries), then the
//!    broker restarts with delivery on; the figure is deliveries per second from the restart to
//!    the last one received.
//! 2. Idle latency: one stack at a time; the time from the API's answer (the change is
//!    committed) to the receiver getting the POST.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::extract::State;
use axum::http::HeaderMap;
use clap::Parser;
use serde_json::json;
use tokio::sync::Notify;

use brokkr_bench::fleet;

#[derive(Debug, Parser)]
#[command(
    name = "webhook-bench",
    about = "Webhook delivery throughput and latency"
)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Events in the backlog (each delivered to two receivers).
    #[arg(long, default_value_t = 5000)]
    events: usize,
    /// Events of the idle-latency run.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// The broker binary (default: next to this one).
    #[arg(long)]
    broker: Option<PathBuf>,
}

/// When each request arrived, in order.
#[derive(Default)]
struct Arrivals {
    times: Mutex<Vec<Instant>>,
    arrived: Notify,
}

async fn receive(State(arrivals): State<Arc<Arrivals>>, headers: HeaderMap) -> &'static str {
    if headers.contains_key("webhook-signature")
        && let Ok(mut times) = arrivals.times.lock()
    {
        times.push(Instant::now());
    }
    arrivals.arrived.notify_waiters();
    "ok"
}

async fn receiver() -> Result<(String, Arc<Arrivals>)> {
    let arrivals = Arc::new(Arrivals::default());
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, arrivals))
}

impl Arrivals {
    fn count(&self) -> usize {
        self.times.lock().map(|t| t.len()).unwrap_or_default()
    }

    /// When the `n`-th request (1-based) arrived.
    fn nth(&self, n: usize) -> Option<Instant> {
        self.times.lock().ok().and_then(|t| t.get(n - 1).copied())
    }

    /// Waits until `n` requests arrived (at most `limit`).
    async fn wait_for(&self, n: usize, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.count() >= n {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, arrived).await.is_err() {
                bail!("{} of {n} deliveries arrived", self.count());
            }
        }
    }
}

/// A broker process.
struct Broker {
    child: Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KEY: &str = "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:active";

/// Starts the broker; returns it and, on a first start, the admin PAK it printed.
async fn start(
    binary: &Path,
    database_url: &str,
    deliver: bool,
) -> Result<(Broker, Option<String>)> {
    let port = fleet::free_port()?;
    let mut child = Command::new(binary)
        .args(["serve", "--listen-addr", &format!("127.0.0.1:{port}")])
        .env("BROKKR__DATABASE__URL", database_url)
        .env("BROKKR__DATABASE__MAX_CONNECTIONS", "16")
        .env("BROKKR__WEBHOOKS__ENCRYPTION_KEYS", KEY)
        .env("BROKKR__WEBHOOKS__ALLOWED_CIDRS", "127.0.0.0/8")
        .env("BROKKR__WEBHOOKS__DELIVER", deliver.to_string())
        .env("BROKKR__BROKER__MAX_IN_FLIGHT", "4096")
        .env("BROKKR__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("broker stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("brokkr_BR") {
                let _ = tx.send(line);
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{url}/readyz")).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("the broker did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let admin = rx.recv_timeout(Duration::from_millis(500)).ok();
    Ok((Broker { child, url }, admin))
}

async fn post(
    client: &reqwest::Client,
    url: String,
    pak: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let response = client.post(url).bearer_auth(pak).json(&body).send().await?;
    let status = response.status();
    let value: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("{status}: {value}");
    }
    Ok(value)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let database_url = fleet::fresh_database(&args.backend, &args.postgres, dir.path()).await?;
    let binary = fleet::broker_binary(args.broker.clone())?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let (quiet, admin) = start(&binary, &database_url, false).await?;
    let admin = admin.context("no admin PAK printed")?;
    let (first_url, first) = receiver().await?;
    let (second_url, second) = receiver().await?;
    let generator = post(
        &client,
        format!("{}/api/v1/generators", quiet.url),
        &admin,
        json!({ "name": "bench", "reach": "true" }),
    )
    .await?;
    let pak = generator["pak"]
        .as_str()
        .context("generator PAK")?
        .to_string();
    for (name, url) in [("first", &first_url), ("second", &second_url)] {
        let body = json!({ "name": name, "url": url, "event_types": ["stack.created"] });
        post(
            &client,
            format!("{}/api/v1/webhooks", quiet.url),
            &admin,
            body,
        )
        .await?;
    }
    let made = Instant::now();
    let stacks = format!("{}/api/v1/stacks", quiet.url);
    let bodies: Vec<_> = (0..args.events)
        .map(|n| json!({ "name": format!("s{n}") }))
        .collect();
    for chunk in bodies.chunks(32) {
        let sends = chunk
            .iter()
            .map(|b| post(&client, stacks.clone(), &pak, b.clone()));
        for result in futures::future::join_all(sends).await {
            result?;
        }
    }
    eprintln!("{} events committed in {:.1?}", args.events, made.elapsed());
    drop(quiet);
    let restarted = Instant::now();
    let (broker, _) = start(&binary, &database_url, true).await?;
    let total = args.events;
    first.wait_for(total, Duration::from_secs(600)).await?;
    second.wait_for(total, Duration::from_secs(600)).await?;
    let drained = restarted.elapsed();
    let rate = (2 * total) as f64 / drained.as_secs_f64();
    let mut latencies = Vec::with_capacity(args.samples);
    let stacks = format!("{}/api/v1/stacks", broker.url);
    for n in 0..args.samples {
        post(
            &client,
            stacks.clone(),
            &pak,
            json!({ "name": format!("idle{n}") }),
        )
        .await?;
        let committed = Instant::now();
        let expected = total + n + 1;
        first.wait_for(expected, Duration::from_secs(30)).await?;
        let arrived = first.nth(expected).context("an arrival")?;
        latencies.push(arrived.saturating_duration_since(committed));
    }
    latencies.sort();
    println!("| backend | measurement | result |\n| --- | --- | --- |");
    println!(
        "| {} | backlog of {total} events × 2 subscriptions | {} deliveries in {:.2} s after the restart: {rate:.0} deliveries/s |",
        args.backend,
        2 * total,
        drained.as_secs_f64()
    );
    println!(
        "| {} | idle commit → delivery ({} events) | p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        args.backend,
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    Ok(())
}
