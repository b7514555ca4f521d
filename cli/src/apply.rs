//! `brokkr apply`: the files become the stack's next deployment object, unless they hold what
//! its newest version already holds. Prints what changes (objects and fields), submits with an
//! `Idempotency-Key` derived from the content, and with `--wait` follows the rollout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use brokkr_client::Client;
use brokkr_types::requests::CreateStack;
use brokkr_types::resources::Stack;
use brokkr_types::rollouts::Rollout;
use brokkr_types::{AnnotationKey, AnnotationValue, Label};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::diff::Diff;
use crate::follow::{self, Outcome, Subject};
use crate::manifests::Manifest;
use crate::output::Format;

/// `brokkr apply`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Files or directories (every .yaml/.yml file under it, in name order).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// The stack, by name or id.
    #[arg(long)]
    stack: String,
    /// Create the stack when none has this name.
    #[arg(long)]
    create: bool,
    /// The generator that owns a stack an admin creates.
    #[arg(long)]
    generator: Option<Uuid>,
    /// A label the stack must carry (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// An annotation KEY=VALUE the stack must carry (repeatable).
    #[arg(long = "annotation")]
    annotations: Vec<String>,
    /// Show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Follow the rollout until every targeted agent applied (exit 0), one failed (3) or the
    /// timeout passed (4).
    #[arg(long)]
    wait: bool,
    /// How long `--wait` waits: seconds, or 90s, 5m, 1h.
    #[arg(long, default_value = "10m", value_parser = follow::parse_duration)]
    timeout: Duration,
}

/// What apply did, as `-o json|yaml` prints it.
#[derive(Debug, Serialize)]
struct Applied {
    stack: Option<Stack>,
    /// The stack did not exist and was (or, in a dry run, would be) created.
    created: bool,
    /// Labels added and annotations set on the stack.
    stack_changes: Vec<String>,
    diff: Diff,
    /// The version the stack had before.
    base_version: Option<i64>,
    /// The version submitted; absent when nothing changed or in a dry run.
    submitted: Option<Submitted>,
    dry_run: bool,
    rollout: Option<Rollout>,
}

#[derive(Debug, Serialize)]
struct Submitted {
    id: Uuid,
    sequence_id: i64,
    yaml_checksum: String,
}

/// The newest version of a stack: its id, number, checksum and objects.
struct Base {
    id: Uuid,
    sequence: i64,
    checksum: String,
    manifest: Manifest,
}

pub async fn run(client: &Client, format: Format, args: ApplyArgs) -> Result<ExitCode> {
    let manifest = Manifest::read(&args.files)?;
    let yaml = manifest.to_yaml()?;
    let wanted = StackMetadata::parse(&args.labels, &args.annotations)?;
    let found = find_stack(client, &args.stack).await?;
    if found.is_none() && !args.create {
        bail!("no stack named {:?}: add --create to create it", args.stack);
    }
    let base = match &found {
        Some(stack) => newest(client, stack.id).await?,
        None => None,
    };
    let old = base.as_ref().map(|b| b.manifest.objects.as_slice());
    let mut applied = Applied {
        created: found.is_none(),
        stack_changes: found
            .as_ref()
            .map(|s| wanted.missing_from(s))
            .unwrap_or_default(),
        diff: Diff::between(old.unwrap_or_default(), &manifest.objects),
        base_version: base.as_ref().map(|b| b.sequence),
        stack: found,
        submitted: None,
        dry_run: args.dry_run,
        rollout: None,
    };
    announce(format, &applied, &args.stack);
    if args.dry_run {
        return finish(format, &applied, ExitCode::SUCCESS);
    }
    let stack = match applied.stack.clone() {
        Some(stack) => update_metadata(client, stack, &wanted).await?,
        None => create(client, &args, &wanted).await?,
    };
    let mut subject = base.as_ref().map(|b| Subject::Object(b.id));
    if !applied.diff.is_empty() || base.is_none() {
        let checksum = base.as_ref().map(|b| b.checksum.as_str());
        let key = Manifest::idempotency_key(&yaml, stack.id, checksum);
        let created = client
            .append_deployment_object(stack.id, &yaml, Some(&key))
            .await?;
        for finding in &created.policy {
            eprintln!("warning: {}", serde_json::to_string(finding)?);
        }
        let object = created.object;
        if format == Format::Table {
            println!("submitted version {} ({})", object.sequence_id, object.id);
        }
        subject = Some(Subject::Object(object.id));
        applied.submitted = Some(Submitted {
            id: object.id,
            sequence_id: object.sequence_id,
            yaml_checksum: object.yaml_checksum,
        });
    }
    applied.stack = Some(stack);
    let Some(subject) = subject.filter(|_| args.wait) else {
        return finish(format, &applied, ExitCode::SUCCESS);
    };
    let (rollout, outcome) = follow::rollout(client, subject, Some(args.timeout)).await?;
    follow::report(&rollout, outcome, args.timeout);
    if format == Format::Table && outcome == Outcome::Converged {
        println!("{}", crate::show::progress(&rollout));
    }
    applied.rollout = Some(rollout);
    finish(format, &applied, outcome.exit_code())
}

/// Tells people what will change (for scripts, everything goes into the final document).
fn announce(format: Format, applied: &Applied, named: &str) {
    if format != Format::Table {
        return;
    }
    let name = applied.stack.as_ref().map_or(named, |s| s.name.as_str());
    match (applied.created, applied.base_version) {
        (true, _) if applied.dry_run => println!("stack {name}: would be created, version 1"),
        (true, _) => println!("stack {name}: created, version 1"),
        (false, None) => println!("stack {name}: first version"),
        (false, Some(version)) if applied.diff.is_empty() => {
            println!("no change: stack {name} is at version {version}");
        }
        (false, Some(version)) => println!("stack {name}: version {version} → {}", version + 1),
    }
    for change in &applied.stack_changes {
        println!("stack {name}: {change}");
    }
    anstream::print!("{}", crate::diff::render(&applied.diff));
    if applied.dry_run {
        println!("dry run: nothing submitted");
    }
}

fn finish(format: Format, applied: &Applied, code: ExitCode) -> Result<ExitCode> {
    if format != Format::Table {
        crate::output::print(format, applied, |_| String::new())?;
    }
    Ok(code)
}

async fn find_stack(client: &Client, stack: &str) -> Result<Option<Stack>> {
    match Uuid::parse_str(stack) {
        Ok(id) => Ok(Some(client.stack(id).await?)),
        Err(_) => Ok(client.stack_named(stack).await?),
    }
}

/// The stack's newest deployment object with its objects, if it has one.
async fn newest(client: &Client, stack: Uuid) -> Result<Option<Base>> {
    let page = client.deployment_objects(stack, 1, 0).await?;
    let Some(summary) = page.items.into_iter().next() else {
        return Ok(None);
    };
    let object = client.deployment_object(summary.id).await?;
    let manifest = Manifest::parse_stored(&object.yaml_content)
        .with_context(|| format!("reading version {} of the stack", object.sequence_id))?;
    Ok(Some(Base {
        id: object.id,
        sequence: object.sequence_id,
        checksum: object.yaml_checksum,
        manifest,
    }))
}

async fn create(client: &Client, args: &ApplyArgs, wanted: &StackMetadata) -> Result<Stack> {
    let request: CreateStack = serde_json::from_value(json!({
        "name": args.stack,
        "generator_id": args.generator,
        "labels": wanted.labels,
        "annotations": wanted.annotations,
    }))
    .context("the stack cannot be created")?;
    Ok(client.create_stack(&request).await?)
}

async fn update_metadata(client: &Client, stack: Stack, wanted: &StackMetadata) -> Result<Stack> {
    let mut stack = stack;
    for label in &wanted.labels {
        if !stack.labels.contains(label) {
            stack = client.add_stack_label(stack.id, label).await?;
        }
    }
    for (key, value) in &wanted.annotations {
        if stack.annotations.get(key) != Some(value) {
            stack = client.set_stack_annotation(stack.id, key, value).await?;
        }
    }
    Ok(stack)
}

/// The labels and annotations `--label` and `--annotation` ask for.
#[derive(Debug, Default)]
struct StackMetadata {
    labels: Vec<String>,
    annotations: BTreeMap<String, String>,
}

impl StackMetadata {
    fn parse(labels: &[String], annotations: &[String]) -> Result<Self> {
        let mut parsed = Self {
            labels: labels.to_vec(),
            ..Self::default()
        };
        for label in labels {
            Label::parse(label.clone()).with_context(|| format!("--label {label:?}"))?;
        }
        for pair in annotations {
            let Some((key, value)) = pair.split_once('=') else {
                bail!("--annotation {pair:?}: write KEY=VALUE");
            };
            AnnotationKey::parse(key).with_context(|| format!("--annotation {pair:?}"))?;
            AnnotationValue::parse(value).with_context(|| format!("--annotation {pair:?}"))?;
            parsed.annotations.insert(key.into(), value.into());
        }
        Ok(parsed)
    }

    /// What the stack lacks, in words.
    fn missing_from(&self, stack: &Stack) -> Vec<String> {
        let labels = self
            .labels
            .iter()
            .filter(|l| !stack.labels.contains(l))
            .map(|l| format!("label {l} added"));
        let annotations = self
            .annotations
            .iter()
            .filter(|(k, v)| stack.annotations.get(*k) != Some(*v))
            .map(|(k, v)| format!("annotation {k}={v} set"));
        labels.chain(annotations).collect()
    }
}
