//! The fleet under test: a `brokkr-broker serve` child process on a fresh database, agents
//! registered in batches through the broker's application layer on that database (one
//! transaction per 500 agents, each audited and placed exactly as the API would), and HTTP
//! helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use brokkr_broker::app::{App, Requester};
use brokkr_broker::config::Settings;
use brokkr_broker::db::Db;
use brokkr_types::requests::CreateAgent;
use brokkr_types::{Label, Name};
use serde_json::{Value, json};
use uuid::Uuid;

/// One simulated agent.
#[derive(Debug, Clone)]
pub struct SimAgent {
    pub id: Uuid,
    pub pak: String,
}

/// A broker process and what the benchmark knows about it.
#[derive(Debug)]
pub struct Fleet {
    pub url: String,
    pub admin: String,
    pub database_url: String,
    pub client: reqwest::Client,
    /// The `Accept-Encoding` of agents' target-state requests (`--zstd`).
    pub accept_encoding: Option<&'static str>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database of `backend` (`sqlite` or `postgres`).
pub async fn fresh_database(backend: &str, postgres: &str, dir: &Path) -> Result<String> {
    match backend {
        "sqlite" => Ok(format!("sqlite://{}", dir.join("bench.db").display())),
        "postgres" => {
            let name = format!("brokkr_bench_{}", Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(postgres)
                .await
                .context("connecting to PostgreSQL")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .context("creating the benchmark database")?;
            pool.close().await;
            let base = postgres
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(postgres);
            Ok(format!("{base}/{name}"))
        }
        other => bail!("unknown backend {other} (sqlite or postgres)"),
    }
}

/// Drops the database [`fresh_database`] made on `postgres` (a SQLite file goes with its
/// folder).
pub async fn drop_database(postgres: &str, database_url: &str) -> Result<()> {
    let name = match database_url.rsplit_once('/') {
        Some((_, name)) if database_url.starts_with("postgres") => name,
        _ => return Ok(()),
    };
    let pool = sqlx::PgPool::connect(postgres)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .context("dropping the benchmark database")?;
    pool.close().await;
    Ok(())
}

/// Most agents a scenario keeps long-polling at once.
const LONG_POLLS_AT_MOST: usize = 10_000;

pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A `brokkr-broker serve` child on `database_url` listening on `port`, its stdout piped.
fn spawn_broker(broker: &Path, database_url: &str, agents: usize, port: u16) -> Result<Child> {
    Command::new(broker)
        .args(["serve", "--listen-addr", &format!("127.0.0.1:{port}")])
        .env("BROKKR__DATABASE__URL", database_url)
        .env("BROKKR__DATABASE__MAX_CONNECTIONS", "16")
        .env("BROKKR__BROKER__AUTH_CACHE_TTL_SECONDS", "3600")
        .env(
            "BROKKR__BROKER__AUTH_CACHE_CAPACITY",
            (agents * 2 + 100).to_string(),
        )
        // Every agent long-polls at once, beside the benchmark's own connections.
        .env(
            "BROKKR__BROKER__MAX_CONNECTIONS",
            (agents.min(LONG_POLLS_AT_MOST) + 1000).to_string(),
        )
        // Quiet unless the caller chose a filter (`BROKKR__LOG__LEVEL=sqlx::query=debug`, say).
        .env(
            "BROKKR__LOG__LEVEL",
            std::env::var("BROKKR__LOG__LEVEL").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", broker.display()))
}

/// A client of many connections that asks for no compression of its own accord (agents' target
/// states ask for zstd only with `--zstd`, and their bytes are then counted as sent).
pub fn agents_client(timeout: Option<std::time::Duration>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .no_zstd();
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    Ok(builder.build()?)
}

impl Fleet {
    /// Starts `broker` on `database_url` and waits for its admin PAK.
    pub fn start(
        broker: &Path,
        database_url: &str,
        agents: usize,
        dir: tempfile::TempDir,
    ) -> Result<Self> {
        let port = free_port()?;
        let mut child = spawn_broker(broker, database_url, agents, port)?;
        let stdout = child.stdout.take().context("broker stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("brokkr_BR") {
                    let _ = tx.send(line);
                }
            }
        });
        let admin = rx.recv().context("the broker printed no admin PAK")?;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            admin,
            database_url: database_url.into(),
            client: agents_client(None)?,
            accept_encoding: None,
            child,
            _dir: dir,
        })
    }

    /// A second broker process on the same database (PostgreSQL: replicas learn of each
    /// other's writes through `NOTIFY`), ready once its `/readyz` answers.
    pub async fn replica(&self, broker: &Path, agents: usize) -> Result<Self> {
        let port = free_port()?;
        let mut child = spawn_broker(broker, &self.database_url, agents, port)?;
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut BufReader::new(stdout), &mut std::io::sink());
            });
        }
        let replica = Self {
            url: format!("http://127.0.0.1:{port}"),
            admin: self.admin.clone(),
            database_url: self.database_url.clone(),
            client: agents_client(None)?,
            accept_encoding: self.accept_encoding,
            child,
            _dir: tempfile::tempdir()?,
        };
        for _ in 0..600 {
            let ready = replica
                .client
                .get(format!("{}/readyz", replica.url))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(replica);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        bail!("the second replica did not become ready in 60 s")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user and system) the broker process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&self.pid().to_string())
    }

    /// Resident memory of the broker process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        pak: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(pak);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {value}");
        }
        Ok(value)
    }

    /// Registers `count` agents labelled `fleet`, 500 per transaction.
    pub async fn register(&self, count: usize) -> Result<Vec<SimAgent>> {
        let db = Db::connect(&self.database_url, 4).await?;
        let app = App::new(db.clone(), Settings::default())?;
        let mut agents_out = Vec::with_capacity(count);
        for batch in 0..count.div_ceil(500) {
            let bodies = (batch * 500..((batch + 1) * 500).min(count))
                .map(|i| {
                    Ok(CreateAgent {
                        name: Name::parse(format!("agent-{i}"))?,
                        cluster_name: Name::parse("bench")?,
                        labels: vec![Label::parse("fleet")?],
                        annotations: Default::default(),
                        status: None,
                    })
                })
                .collect::<Result<Vec<_>, brokkr_types::NameError>>()?;
            for created in app.create_agents(Requester::CLI, bodies).await? {
                agents_out.push(SimAgent {
                    id: created.agent.id,
                    pak: created.pak.expose().to_string(),
                });
            }
        }
        db.close().await;
        Ok(agents_out)
    }

    /// A generator; returns its PAK.
    pub async fn generator(&self) -> Result<String> {
        let created = self
            .call(
                reqwest::Method::POST,
                "/api/v1/generators",
                &self.admin,
                Some(json!({ "name": "bench", "reach": "true" })),
            )
            .await?;
        Ok(created["pak"].as_str().unwrap_or_default().to_string())
    }

    /// A stack labelled `fleet` (so it reaches every agent); returns its id.
    pub async fn stack(&self, generator: &str, name: &str) -> Result<Uuid> {
        let body = json!({ "name": name, "labels": ["fleet"] });
        let stack = self
            .call(
                reqwest::Method::POST,
                "/api/v1/stacks",
                generator,
                Some(body),
            )
            .await?;
        Ok(stack["id"].as_str().unwrap_or_default().parse()?)
    }

    pub async fn publish(&self, generator: &str, stack: Uuid, yaml: &str) -> Result<()> {
        let path = format!("/api/v1/stacks/{stack}/deployment-objects");
        self.call(
            reqwest::Method::POST,
            &path,
            generator,
            Some(json!({ "yaml_content": yaml })),
        )
        .await?;
        Ok(())
    }

    /// Publishes raw YAML (no JSON escaping, so large objects stay under the body limit).
    pub async fn publish_yaml(&self, generator: &str, stack: Uuid, yaml: &str) -> Result<()> {
        let response = self
            .client
            .post(format!(
                "{}/api/v1/stacks/{stack}/deployment-objects",
                self.url
            ))
            .bearer_auth(generator)
            .header("Content-Type", "application/yaml")
            .body(yaml.to_string())
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("publish: {} {}", response.status(), response.text().await?);
        }
        Ok(())
    }

    /// A target-state request of `agent` as the simulated agents make it.
    pub fn target_state(
        &self,
        client: &reqwest::Client,
        agent: &SimAgent,
        query: &str,
    ) -> reqwest::RequestBuilder {
        target_state_request(client, (&self.url, self.accept_encoding), agent, query)
    }

    /// A broker metric's value.
    pub async fn metric(&self, name: &str) -> Result<f64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.url))
            .bearer_auth(&self.admin)
            .send()
            .await?
            .text()
            .await?;
        let value = text
            .lines()
            .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok());
        value.with_context(|| format!("metric {name} missing"))
    }
}

/// A target-state request of `agent` to the broker at `url`, asking for `accept_encoding`.
pub fn target_state_request(
    client: &reqwest::Client,
    (url, accept_encoding): (&str, Option<&'static str>),
    agent: &SimAgent,
    query: &str,
) -> reqwest::RequestBuilder {
    let url = format!("{url}/api/v1/agents/{}/target-state{query}", agent.id);
    let request = client.get(url).bearer_auth(&agent.pak);
    match accept_encoding {
        Some(coding) => request.header("Accept-Encoding", coding),
        None => request,
    }
}

/// The `brokkr-broker` binary next to this executable.
pub fn broker_binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .context("executable directory")?
        .join("brokkr-broker");
    if !path.exists() {
        bail!(
            "{} is missing: cargo build --release -p brokkr-broker -p brokkr-bench",
            path.display()
        );
    }
    Ok(path)
}

/// A ConfigMap of about `bytes` bytes.
pub fn config_map(name: &str, bytes: usize) -> String {
    let line = "abcdefghijklmnopqrstuvwxyz0123456789";
    let mut data = String::new();
    let mut i = 0;
    while data.len() < bytes {
        data.push_str(&format!("  key{i}: \"{line}\"\n"));
        i += 1;
    }
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{data}")
}

/// CPU seconds (user and system) a process has used, from `/proc/<pid>/stat` (`self` for this
/// one); Linux counts them in ticks of 1/100 s.
pub fn cpu_seconds_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after its `)`.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}
