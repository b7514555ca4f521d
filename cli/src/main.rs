//! `brokkr`: the broker's API from a terminal or a pipeline. Configured by contexts in
//! `~/.config/brokkr/config.toml` and by `BROKKR_URL` / `BROKKR_PAK`. Tables for people,
//! `-o json|yaml` for scripts; errors are one line on stderr with the problem's code.
//!
//! Exit codes: 0 done; 1 the broker refused or could not be reached (or the input was
//! unusable); 2 the command line is wrong; 3 the rollout failed; 4 waiting timed out.

mod apply;
mod context;
mod create;
mod diff;
mod follow;
mod manifests;
mod output;
mod platform;
mod platform_tables;
mod resources;
mod show;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use brokkr_client::Client;
use clap::{CommandFactory, Parser, Subcommand};
use output::Format;
use resources::{Kind, LIST_LIMIT};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(name = "brokkr", version, about = "Talk to a Brokkr broker")]
struct Cli {
    /// The context of the configuration file to use (default: its `current_context`).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the files the stack's next deployment object (nothing is submitted when they hold
    /// what its newest version holds).
    Apply(apply::ApplyArgs),
    /// Who the PAK belongs to.
    Whoami,
    /// Register a generator or an agent (admin); prints its PAK once.
    Create {
        #[command(subcommand)]
        command: create::CreateCommand,
    },
    /// List resources, or show one by id (stacks and templates also by name).
    Get {
        #[arg(value_enum)]
        kind: Kind,
        id: Option<String>,
        #[command(flatten)]
        paging: resources::Paging,
    },
    /// One resource in full, with what belongs to it.
    Describe {
        #[arg(value_enum)]
        kind: Kind,
        id: String,
    },
    /// Delete one resource (a work order: cancel its pending runs).
    Delete {
        #[arg(value_enum)]
        kind: Kind,
        id: String,
    },
    /// Render templates.
    Template {
        #[command(subcommand)]
        command: platform::TemplateCommand,
    },
    /// Upload, bind and try WASM policy plugins.
    Plugin {
        #[command(subcommand)]
        command: platform::PluginCommand,
    },
    /// Event subscriptions.
    Webhook {
        #[command(subcommand)]
        command: platform::WebhookCommand,
    },
    /// Tokens agents enroll with.
    EnrollToken {
        #[command(subcommand)]
        command: platform::EnrollTokenCommand,
    },
    /// The fleet: every agent you may see with its heartbeat age, backlog and health.
    Fleet {
        /// A CEL expression over `agent`, such as `"edge" in agent.labels`.
        #[arg(long)]
        expression: Option<String>,
        #[command(flatten)]
        paging: resources::Paging,
    },
    /// Why stacks reach agents: every stack for `--agent`, every agent for `--stack`.
    Targeting {
        #[command(subcommand)]
        command: TargetingCommand,
    },
    /// The audit log, newest first (admin).
    Audit {
        #[command(flatten)]
        paging: resources::Paging,
    },
    /// Follow a stack's newest release.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum TargetingCommand {
    /// Explain one agent's or one stack's targeting.
    Explain {
        #[arg(long, conflicts_with = "stack", required_unless_present = "stack")]
        agent: Option<Uuid>,
        /// The stack, by name or id.
        #[arg(long)]
        stack: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RolloutCommand {
    /// Hold a staged rollout where it is.
    Pause { stack: String },
    /// Gate the current wave again (its soak starts over).
    Resume { stack: String },
    /// Pass the current wave now; the next wave receives the release.
    Promote { stack: String },
    /// Roll back now: every agent that received the release gets its previous version.
    Abort { stack: String },
    /// The rollout of a stack's newest deployment object; `--wait` follows it until every
    /// targeted agent applied it (exit 0), one failed (3) or the timeout passed (4).
    Status {
        /// The stack, by name or id.
        stack: String,
        #[arg(long)]
        wait: bool,
        /// How long to wait at most: seconds, or 90s, 5m, 1h.
        #[arg(long, default_value = "10m", value_parser = follow::parse_duration)]
        timeout: Duration,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<brokkr_client::ClientError>() {
                Some(brokkr_client::ClientError::Problem { problem }) => eprintln!(
                    "error: {} {}: {}",
                    problem.status, problem.code, problem.detail
                ),
                _ => eprintln!("error: {e:#}"),
            }
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "brokkr", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    let context = context::resolve(cli.context.as_deref())?;
    let client = context::client(&context)?;
    match cli.command {
        Command::Apply(args) => return apply::run(&client, cli.output, args).await,
        Command::Whoami => {
            let me = client.whoami().await?;
            output::print(cli.output, &me, show::whoami)?;
        }
        Command::Create { command } => create::run(&client, cli.output, command).await?,
        Command::Get { kind, id, paging } => {
            resources::get(&client, cli.output, (kind, id.as_deref()), paging).await?;
        }
        Command::Describe { kind, id } => {
            resources::describe(&client, cli.output, kind, &id).await?
        }
        Command::Delete { kind, id } => resources::delete(&client, cli.output, kind, &id).await?,
        Command::Template { command } => platform::template(&client, cli.output, command).await?,
        Command::Plugin { command } => platform::plugin(&client, cli.output, command).await?,
        Command::Webhook { command } => platform::webhook(&client, cli.output, command).await?,
        Command::EnrollToken { command } => {
            platform::enroll_token(&client, cli.output, command).await?;
        }
        Command::Targeting {
            command: TargetingCommand::Explain { agent, stack },
        } => explain(&client, cli.output, agent, stack).await?,
        Command::Audit { paging } => {
            let page = client.audit_logs(paging.limit, paging.offset).await?;
            output::print(cli.output, &resources::items_of(page), |e| show::audit(e))?;
        }
        Command::Fleet { expression, paging } => {
            let expression = expression.as_deref();
            let page = client
                .fleet(expression, paging.limit, paging.offset)
                .await?;
            output::print(cli.output, &resources::items_of(page), |f| show::fleet(f))?;
        }
        Command::Rollout { command } => return rollout(&client, cli.output, command).await,
        Command::Completion { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn explain(
    client: &Client,
    format: Format,
    agent: Option<Uuid>,
    stack: Option<String>,
) -> Result<()> {
    match (agent, stack) {
        (Some(agent), _) => {
            let page = client.explain_agent(agent, LIST_LIMIT, 0).await?;
            output::print(format, &page.items, |v| show::stack_verdicts(v))
        }
        (None, Some(stack)) => {
            let stack = resources::stack_id(client, &stack).await?;
            let page = client.explain_stack(stack, LIST_LIMIT, 0).await?;
            output::print(format, &page.items, |r| show::agent_reach(r))
        }
        (None, None) => anyhow::bail!("name --agent or --stack"),
    }
}

impl RolloutCommand {
    /// The steering action and its stack, for every command but `status`.
    fn steering(&self) -> Option<(&'static str, &str)> {
        match self {
            Self::Pause { stack } => Some(("pause", stack)),
            Self::Resume { stack } => Some(("resume", stack)),
            Self::Promote { stack } => Some(("promote", stack)),
            Self::Abort { stack } => Some(("abort", stack)),
            Self::Status { .. } => None,
        }
    }
}

/// `brokkr rollout status|pause|resume|promote|abort`.
async fn rollout(client: &Client, format: Format, command: RolloutCommand) -> Result<ExitCode> {
    if let RolloutCommand::Status {
        stack,
        wait,
        timeout,
    } = command
    {
        return rollout_status(client, format, &stack, wait, timeout).await;
    }
    if let Some((action, stack)) = command.steering() {
        let stack = resources::stack_id(client, stack).await?;
        let rollout = client.steer_rollout(stack, action).await?;
        output::print(format, &rollout, show::rollout)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the rollout; with `wait`, follows it (progress on stderr) until it is decided.
async fn rollout_status(
    client: &Client,
    format: Format,
    stack: &str,
    wait: bool,
    timeout: Duration,
) -> Result<ExitCode> {
    let stack = resources::stack_id(client, stack).await?;
    let limit = wait.then_some(timeout);
    let (rollout, outcome) = follow::rollout(client, follow::Subject::Stack(stack), limit).await?;
    output::print(format, &rollout, show::rollout)?;
    follow::report(&rollout, outcome, timeout);
    Ok(outcome.exit_code())
}
