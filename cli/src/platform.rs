//! What platform teams run the broker with: `template render`, `plugin upload|bind|dry-run`,
//! `webhook create|test|deliveries` and `enroll-token create`. Requests are built with the
//! broker's own request types, so bad input is refused before anything is sent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use brokkr_client::{Client, PluginUpload};
use brokkr_types::enrollment::CreateEnrollmentToken;
use brokkr_types::plugins::{DryRunRequest, NewBinding};
use brokkr_types::templates::RenderRequest;
use brokkr_types::webhooks::CreateWebhook;
use clap::Subcommand;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::output::{self, Format};
use crate::platform_tables as tables;
use crate::resources::{LIST_LIMIT, stack_id};

/// The most bytes of a WASM component or a parameters file read.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Render a template (by id or name) with parameters; nothing is stored.
    Render {
        template: String,
        /// A parameter NAME=VALUE (repeatable); VALUE is read as JSON when it parses, else text.
        #[arg(long = "param")]
        params: Vec<String>,
        /// A JSON or YAML file of parameters (`--param` wins over it).
        #[arg(long)]
        parameters: Option<PathBuf>,
        /// The version to render (default: the latest).
        #[arg(long)]
        version: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Upload a WASM component (admin).
    Upload {
        #[arg(long)]
        name: String,
        /// The component (.wasm).
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        description: Option<String>,
        /// A JSON file: the plugin's configuration.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Bind a plugin to a scope.
    Bind {
        plugin: Uuid,
        #[arg(long, value_parser = ["global", "generator", "stack", "work-orders"])]
        scope: String,
        /// The generator (id) or stack (id or name) of the scope.
        #[arg(long)]
        scope_id: Option<String>,
        #[arg(long, value_parser = ["enforce", "warn", "shadow"])]
        mode: String,
    },
    /// Judge the newest deployment objects of a scope with a plugin; changes nothing.
    DryRun {
        plugin: Uuid,
        #[arg(long, value_parser = ["global", "generator", "stack"])]
        scope: String,
        #[arg(long)]
        scope_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Subscribe a URL to events; prints the signing secret once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        url: String,
        /// An event type or pattern such as `rollout.*` (repeatable).
        #[arg(long = "event-type", required = true)]
        event_types: Vec<String>,
        /// A CEL expression over `event`.
        #[arg(long)]
        filter: Option<String>,
        /// A header NAME=VALUE sent with every delivery (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
    },
    /// Send a test event to a subscription.
    Test { webhook: Uuid },
    /// A subscription's recent deliveries.
    Deliveries { webhook: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum EnrollTokenCommand {
    /// A token agents enroll with (admin); prints its secret once.
    Create {
        /// Put before the name an agent enrolls with.
        #[arg(long)]
        name_prefix: Option<String>,
        /// A label enrolled agents get (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// An annotation KEY=VALUE enrolled agents get (repeatable).
        #[arg(long = "annotation")]
        annotations: Vec<String>,
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it is valid: seconds, or 90s, 5m, 1h.
        #[arg(long, default_value = "1h", value_parser = crate::follow::parse_duration)]
        expires_in: Duration,
        /// A generator whose reach enrolled agents join (repeatable).
        #[arg(long = "reach-generator")]
        reach_generators: Vec<Uuid>,
    },
}

/// A request body checked by the broker's own types before it is sent.
fn request<T: DeserializeOwned>(body: Value, what: &str) -> Result<T> {
    serde_json::from_value(body).with_context(|| format!("the {what} is not valid"))
}

/// `NAME=VALUE` pairs as a map; `typed` reads values as JSON when they parse.
fn pairs(items: &[String], flag: &str, typed: bool) -> Result<BTreeMap<String, Value>> {
    let mut map = BTreeMap::new();
    for item in items {
        let Some((name, value)) = item.split_once('=') else {
            bail!("{flag} {item:?}: write NAME=VALUE");
        };
        let value = match typed {
            true => serde_json::from_str(value).unwrap_or_else(|_| json!(value)),
            false => json!(value),
        };
        map.insert(name.to_string(), value);
    }
    Ok(map)
}

fn read_bounded(path: &PathBuf) -> Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!("{} is larger than {MAX_FILE_BYTES} bytes", path.display());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

pub async fn template(client: &Client, format: Format, command: TemplateCommand) -> Result<()> {
    let TemplateCommand::Render {
        template,
        params,
        parameters,
        version,
    } = command;
    let mut all: serde_json::Map<String, Value> = match parameters {
        Some(path) => serde_yaml_ng::from_slice(&read_bounded(&path)?)
            .with_context(|| format!("{} is not a JSON or YAML object", path.display()))?,
        None => serde_json::Map::new(),
    };
    all.extend(pairs(&params, "--param", true)?);
    let body: RenderRequest = request(
        json!({ "parameters": all, "version": version }),
        "rendering",
    )?;
    let name = brokkr_types::Name::parse(template.as_str())
        .with_context(|| format!("{template:?} is neither an id nor a name"))?;
    let rendered = client.render_template(&name, &body).await?;
    output::print(format, &rendered, |r| r.yaml.clone())
}

/// The scope id a binding or dry run names: a generator by id, a stack by id or name.
async fn scope_id(client: &Client, scope: &str, id: Option<&str>) -> Result<Option<Uuid>> {
    match (scope, id) {
        ("stack", Some(id)) => Ok(Some(stack_id(client, id).await?)),
        (_, Some(id)) => Ok(Some(
            Uuid::parse_str(id).context("--scope-id is not an id")?,
        )),
        (_, None) => Ok(None),
    }
}

pub async fn plugin(client: &Client, format: Format, command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::Upload {
            name,
            file,
            description,
            config,
        } => {
            let config = match config {
                Some(path) => {
                    Some(String::from_utf8(read_bounded(&path)?).context("--config is not UTF-8")?)
                }
                None => None,
            };
            let wasm = read_bounded(&file)?;
            let upload = PluginUpload {
                name,
                description,
                config,
                wasm,
            };
            let info = client.upload_plugin(upload).await?;
            output::print(format, &vec![info], |p| tables::plugins(p))
        }
        PluginCommand::Bind {
            plugin,
            scope,
            scope_id: id,
            mode,
        } => {
            let id = scope_id(client, &scope, id.as_deref()).await?;
            let body: NewBinding = request(
                json!({ "scope": scope, "scope_id": id, "mode": mode }),
                "binding",
            )?;
            let binding = client.bind_plugin(plugin, &body).await?;
            output::print(format, &vec![binding], |b| tables::bindings(b))
        }
        PluginCommand::DryRun {
            plugin,
            scope,
            scope_id: id,
        } => {
            let id = scope_id(client, &scope, id.as_deref()).await?;
            let body: DryRunRequest =
                request(json!({ "scope": scope, "scope_id": id }), "dry run")?;
            let results = client
                .dry_run_plugin(plugin, &body, LIST_LIMIT)
                .await?
                .items;
            output::print(format, &results, |r| tables::dry_run(r))
        }
    }
}

pub async fn webhook(client: &Client, format: Format, command: WebhookCommand) -> Result<()> {
    match command {
        WebhookCommand::Create {
            name,
            url,
            event_types,
            filter,
            headers,
        } => {
            let headers = pairs(&headers, "--header", false)?;
            let body = json!({ "name": name, "url": url, "event_types": event_types,
                               "filter": filter, "headers": headers });
            let body: CreateWebhook = request(body, "webhook")?;
            let created = client.create_webhook(&body).await?;
            output::print(format, &created, tables::webhook_with_secret)
        }
        WebhookCommand::Test { webhook } => {
            let sent = client.test_webhook(webhook).await?;
            output::print(format, &sent, |s| {
                format!("sent test event {}\n", s.event_id)
            })
        }
        WebhookCommand::Deliveries { webhook } => {
            let page = client.webhook_deliveries(webhook, LIST_LIMIT, 0).await?;
            output::print(format, &page.items, |d| tables::deliveries(d))
        }
    }
}

pub async fn enroll_token(
    client: &Client,
    format: Format,
    command: EnrollTokenCommand,
) -> Result<()> {
    let EnrollTokenCommand::Create {
        name_prefix,
        labels,
        annotations,
        uses,
        expires_in,
        reach_generators,
    } = command;
    let annotations = pairs(&annotations, "--annotation", false)?;
    let body = json!({ "name_prefix": name_prefix, "labels": labels, "annotations": annotations,
                       "uses": uses, "expires_in_seconds": expires_in.as_secs(),
                       "reach_generators": reach_generators });
    let body: CreateEnrollmentToken = request(body, "enrollment token")?;
    let created = client.create_enrollment_token(&body).await?;
    output::print(format, &created, tables::token_with_secret)
}
