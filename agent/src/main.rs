//! `brokkr-agent`: run the agent against the cluster of the in-cluster config or `KUBECONFIG`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use brokkr_agent::config::Settings;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "brokkr-agent", version, about = "The Brokkr agent")]
struct Cli {
    /// TOML configuration file (environment variables BROKKR__AGENT__* override it).
    #[arg(long, env = "BROKKR_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides agent.broker_url.
    #[arg(long)]
    broker_url: Option<String>,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref()).context("loading configuration")?;
    if let Some(url) = cli.broker_url {
        settings.agent.broker_url = url;
    }
    settings.check().context("checking configuration")?;
    settings.log.init();
    brokkr_agent::broker::install_crypto_provider();
    let kube = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    brokkr_agent::run::run(settings.agent, kube, shutdown_signal())
        .await
        .context("running the agent")
}
