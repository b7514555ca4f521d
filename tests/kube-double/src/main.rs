//! `kube-double`: the Kubernetes API test double as a program, to try Brokkr without a
//! cluster. It serves on 127.0.0.1, writes a kubeconfig for it, and runs until Ctrl-C.
//!
//! ```sh
//! cargo run -p kube-double -- --port 6443 --kubeconfig kubeconfig.yaml
//! KUBECONFIG=kubeconfig.yaml kubectl get namespaces
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use kube_double::KubeDouble;

#[derive(Debug, Parser)]
#[command(
    name = "kube-double",
    about = "A Kubernetes API test double on 127.0.0.1"
)]
struct Cli {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Where to write a kubeconfig that points at it.
    #[arg(long, default_value = "kubeconfig.yaml")]
    kubeconfig: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let double = KubeDouble::new();
    let served = double
        .serve_on(cli.port)
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", cli.port))?;
    std::fs::write(&cli.kubeconfig, KubeDouble::kubeconfig(served.addr))
        .with_context(|| format!("writing {}", cli.kubeconfig.display()))?;
    println!(
        "Kubernetes API double on http://{}; kubeconfig written to {}",
        served.addr,
        cli.kubeconfig.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
