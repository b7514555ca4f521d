//! `brokkr create generator|agent`: the principals an admin registers. The answer holds the new
//! PAK, shown once: keep it where a context's `pak_env` or `pak_file` can find it.

use anyhow::{Context, Result, bail};
use brokkr_client::Client;
use brokkr_types::requests::{CreateAgent, CreateGenerator};
use clap::Subcommand;
use serde_json::json;

use crate::output::{self, Format};
use crate::show;

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// A generator (a CI/CD pipeline) and its PAK (admin).
    Generator {
        name: String,
        /// The agents its stacks may reach: CEL over `agent`, such as `"prod" in agent.labels`.
        #[arg(long)]
        reach: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// An agent (one per cluster) and its PAK (admin).
    Agent {
        name: String,
        /// The cluster it runs in.
        #[arg(long)]
        cluster: String,
        /// A label (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// An annotation KEY=VALUE (repeatable).
        #[arg(long = "annotation")]
        annotations: Vec<String>,
    },
}

pub async fn run(client: &Client, format: Format, command: CreateCommand) -> Result<()> {
    match command {
        CreateCommand::Generator {
            name,
            reach,
            description,
        } => {
            let body = json!({ "name": name, "reach": reach, "description": description });
            let request: CreateGenerator =
                serde_json::from_value(body).context("the generator is not valid")?;
            let created = client.create_generator(&request).await?;
            output::print(format, &created, |c| {
                let mut text = show::generators(std::slice::from_ref(&c.generator));
                text.push_str(&format!("pak (shown once): {}\n", c.pak.expose()));
                text
            })
        }
        CreateCommand::Agent {
            name,
            cluster,
            labels,
            annotations,
        } => {
            let mut pairs = serde_json::Map::new();
            for pair in &annotations {
                let Some((key, value)) = pair.split_once('=') else {
                    bail!("--annotation {pair:?}: write KEY=VALUE");
                };
                pairs.insert(key.into(), value.into());
            }
            let body = json!({ "name": name, "cluster_name": cluster, "labels": labels,
                               "annotations": pairs });
            let request: CreateAgent =
                serde_json::from_value(body).context("the agent is not valid")?;
            let created = client.create_agent(&request).await?;
            output::print(format, &created, |c| {
                let mut text = show::agents(std::slice::from_ref(&c.agent));
                text.push_str(&format!("pak (shown once): {}\n", c.pak.expose()));
                text
            })
        }
    }
}
