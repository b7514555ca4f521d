//! `plugin-bench`: what a policy plugin call costs. Measures the fresh store and instance every
//! call gets, and the validation of a 100-object deployment object by the three shipped plugins.
//!
//! ```sh
//! scripts/build-plugins.sh
//! cargo build --release -p brokkr-bench
//! target/release/plugin-bench
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use brokkr_policy::plugin::{
    Deployment, GeneratorInfo, Limits, PluginHost, StackInfo, objects_from_yaml,
};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "plugin-bench", about = "Cost of policy plugin calls")]
struct Args {
    /// Where the guest plugins were built.
    #[arg(long, default_value = "plugins/target/wasm32-wasip2/release")]
    plugins: PathBuf,
    /// Instantiations to time.
    #[arg(long, default_value_t = 20_000)]
    instantiations: usize,
    /// Whole validations to time.
    #[arg(long, default_value_t = 2_000)]
    validations: usize,
}

fn deployment() -> Result<Deployment> {
    let one = |i: usize| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n  namespace: shop\n  labels:\n    team: core\n    app: web-{i}\n\
             spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web-{i}\n  template:\n    metadata:\n      labels:\n        app: web-{i}\n\
             \x20   spec:\n      containers:\n      - name: app\n        image: ghcr.io/acme/web:{i}\n        ports:\n        - containerPort: 8080\n\
             \x20     - name: sidecar\n        image: ghcr.io/acme/proxy:1\n"
        )
    };
    let yaml = (0..100).map(one).collect::<Vec<_>>().join("---\n");
    let objects = objects_from_yaml(&yaml).context("the benchmark manifest")?;
    anyhow::ensure!(objects.len() == 100, "expected 100 objects");
    Ok(Deployment {
        id: None,
        objects,
        stack: StackInfo {
            id: "s".into(),
            name: "shop".into(),
            labels: vec![],
            annotations: vec![],
        },
        generator: GeneratorInfo {
            id: "g".into(),
            name: "ci".into(),
        },
        cluster: None,
    })
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!(
        "mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs ({} samples)",
        us(mean),
        us(at(0.5)),
        us(at(0.99)),
        samples.len()
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    let host = PluginHost::new(Limits::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let specs = [
        ("required_labels", r#"{"keys":["team"]}"#),
        ("no_privileged", "{}"),
        ("allowed_registries", r#"{"registries":["ghcr.io/acme/"]}"#),
    ];
    let mut plugins = Vec::new();
    for (name, config) in specs {
        let path = args.plugins.join(format!("{name}.wasm"));
        let wasm = std::fs::read(&path).with_context(|| {
            format!(
                "{}: build the guests with scripts/build-plugins.sh",
                path.display()
            )
        })?;
        let started = Instant::now();
        let plugin = host
            .load(&wasm)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        println!(
            "| compile {name} ({} KiB) | {:.1} ms (once per digest) |",
            wasm.len() / 1024,
            started.elapsed().as_secs_f64() * 1e3
        );
        plugins.push((plugin, config));
    }
    let mut instantiations = Vec::with_capacity(args.instantiations);
    for i in 0..args.instantiations {
        let started = Instant::now();
        host.instantiate_only(&plugins[i % plugins.len()].0)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        instantiations.push(started.elapsed());
    }
    println!(
        "| fresh store + instance per call | {} |",
        summary(instantiations)
    );
    let deployment = deployment()?;
    let mut validations = Vec::with_capacity(args.validations);
    for _ in 0..args.validations {
        let started = Instant::now();
        for (plugin, config) in &plugins {
            let violations = host
                .validate(plugin, &deployment, config)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            anyhow::ensure!(
                violations.is_empty(),
                "the benchmark manifest should pass: {:?}",
                violations.first().map(|v| &v.message)
            );
        }
        validations.push(started.elapsed());
    }
    println!(
        "| 100-object deployment object, 3 plugins one after another | {} |",
        summary(validations)
    );
    for (i, (name, _)) in specs.iter().enumerate() {
        let (plugin, config) = &plugins[i];
        let mut alone = Vec::with_capacity(args.validations);
        for _ in 0..args.validations {
            let started = Instant::now();
            host.validate(plugin, &deployment, config)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            alone.push(started.elapsed());
        }
        println!(
            "| 100-object deployment object, {name} alone | {} |",
            summary(alone)
        );
    }
    let mut parallel = Vec::with_capacity(args.validations);
    for _ in 0..args.validations {
        let started = Instant::now();
        let passed = std::thread::scope(|scope| {
            let calls: Vec<_> = plugins
                .iter()
                .map(|(plugin, config)| scope.spawn(|| host.validate(plugin, &deployment, config)))
                .collect();
            calls
                .into_iter()
                .all(|c| matches!(c.join(), Ok(Ok(v)) if v.is_empty()))
        });
        anyhow::ensure!(passed, "a plugin failed in parallel");
        parallel.push(started.elapsed());
    }
    println!(
        "| 100-object deployment object, 3 plugins in parallel | {} |",
        summary(parallel)
    );
    Ok(())
}
