//! `brokkr-broker`: serve the API, migrate the database, create principals and rotate PAKs.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use brokkr_broker::app::{App, AppError, Requester};
use brokkr_broker::config::Settings;
use brokkr_broker::domain::keyring::NamedKey;
use brokkr_broker::startup::{self, Application};
use brokkr_types::requests::{CreateAgent, CreateGenerator};
use brokkr_types::{Description, Name, Pak};
use clap::{Parser, Subcommand};
use uuid::Uuid;

/// mimalloc: a change woken into thousands of long polls allocates and frees for every answer;
/// with it the broker spends about a third less CPU per answer than with glibc's allocator, and
/// memory freed after a burst is often handed back (docs/benchmarks.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "brokkr-broker", version, about = "The Brokkr broker")]
struct Cli {
    /// TOML configuration file (environment variables BROKKR__SECTION__KEY override it).
    #[arg(long, global = true, env = "BROKKR_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides database.url (sqlite://FILE or postgres://…).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (creates and migrates the database; hands over the admin PAK on first
    /// start).
    Serve {
        /// Overrides broker.listen_addr.
        #[arg(long)]
        listen_addr: Option<String>,
        /// Overrides broker.admin_pak_file: a new database adopts the PAK this file holds, or
        /// writes its new admin PAK there (mode 0600) instead of printing it.
        #[arg(long)]
        admin_pak_file: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Replace a PAK; the new one is printed alone on the last line of stdout.
    Rotate {
        #[command(subcommand)]
        who: RotateTarget,
    },
    /// Create a principal; its PAK is printed alone on the last line of stdout.
    Create {
        #[command(subcommand)]
        what: CreateTarget,
    },
    /// Check the audit log's hash chain (exit status 1 when it is broken).
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Manage the keys that encrypt webhook secrets.
    Webhooks {
        #[command(subcommand)]
        action: WebhookAction,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookAction {
    /// Print a new random encryption key, ready for webhooks.encryption_keys.
    GenerateKey {
        /// The key's id (named by every value it seals).
        #[arg(long, default_value = "k1")]
        id: String,
    },
    /// Re-encrypt every webhook secret under the active key, so older keys can be dropped.
    Rekey,
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Recompute every entry's hash and link.
    Verify,
}

#[derive(Debug, Subcommand)]
enum RotateTarget {
    Admin,
    Agent {
        #[arg(long)]
        uuid: Uuid,
    },
    Generator {
        #[arg(long)]
        uuid: Uuid,
    },
}

#[derive(Debug, Subcommand)]
enum CreateTarget {
    Agent {
        #[arg(long)]
        name: String,
        #[arg(long)]
        cluster_name: String,
    },
    Generator {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// The agents its stacks may reach: a CEL expression over `agent` (default:
        /// tenancy.default_reach).
        #[arg(long)]
        reach: Option<String>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref()).context("loading configuration")?;
    if let Some(url) = cli.database_url {
        settings.database.url = url;
    }
    if let Command::Serve {
        listen_addr,
        admin_pak_file,
    } = &cli.command
    {
        if let Some(addr) = listen_addr {
            settings.broker.listen_addr = addr.clone();
        }
        if let Some(file) = admin_pak_file {
            settings.broker.admin_pak_file = file.clone();
        }
    }
    settings.check().context("checking configuration")?;
    settings.log.init();
    match cli.command {
        Command::Serve { .. } => serve(settings).await,
        Command::Migrate => migrate(&settings).await,
        Command::Rotate { who } => rotate(settings, who).await,
        Command::Create { what } => create(settings, what).await,
        Command::Audit {
            action: AuditAction::Verify,
        } => verify_audit(&settings).await,
        Command::Webhooks { action } => webhooks(settings, action).await,
    }
}

async fn webhooks(settings: Settings, action: WebhookAction) -> Result<()> {
    match action {
        WebhookAction::GenerateKey { id } => {
            let key = NamedKey::generate_base64();
            NamedKey::parse(&id, &key).context("--id")?;
            eprintln!(
                "Add it to the key ring, in the config file:\n  [[webhooks.encryption_keys]]\n  \
                 id = \"{id}\"\n  key = \"<the key below>\"\n  active = true\nor in the environment: \
                 BROKKR__WEBHOOKS__ENCRYPTION_KEYS={id}:<key>:active (comma-separate several keys)."
            );
            println!("{key}");
            Ok(())
        }
        WebhookAction::Rekey => {
            let app = startup::open_existing_app(settings).await?;
            let resealed = app
                .rekey_webhooks(Requester::CLI)
                .await
                .context("re-encrypting webhook secrets")?;
            let active = app.key_ring.as_ref().map(|k| k.active_id().to_string());
            println!(
                "re-encrypted {resealed} webhook secret(s) under key {}",
                active.unwrap_or_default()
            );
            Ok(())
        }
    }
}

async fn migrate(settings: &Settings) -> Result<()> {
    let shown = brokkr_broker::config::redact_url(&settings.database.url);
    let db = brokkr_broker::db::Db::connect(&settings.database.url, 1)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    let before = db.applied_migrations().await?;
    db.migrate().await.context("migrating")?;
    let after = db.applied_migrations().await?;
    match after - before {
        0 => println!("{shown}: already up to date ({after} migrations)"),
        n => println!("{shown}: applied {n} migration(s); {after} in all"),
    }
    Ok(())
}

async fn serve(settings: Settings) -> Result<()> {
    let pak_file = settings.broker.admin_pak_file.clone();
    let app = Application::build(settings)
        .await
        .context("starting the broker")?;
    if let Some(pak) = &app.admin_pak {
        startup::deliver_first_admin_pak(pak, &pak_file).with_context(|| {
            format!(
                "writing the admin PAK to {pak_file}; rotate it with `brokkr-broker rotate admin`"
            )
        })?;
    }
    let addr = app.local_addr().context("reading the listen address")?;
    tracing::info!(%addr, "broker listening");
    app.run_until(startup::shutdown_signal())
        .await
        .context("serving")
}

async fn rotate(settings: Settings, who: RotateTarget) -> Result<()> {
    let app = startup::open_existing_app(settings).await?;
    let (what, pak) = match who {
        RotateTarget::Admin => ("admin", app.rotate_admin_pak(Requester::CLI).await),
        RotateTarget::Agent { uuid } => (
            "agent",
            app.rotate_agent_pak(Requester::CLI, uuid)
                .await
                .map(|a| a.pak),
        ),
        RotateTarget::Generator { uuid } => (
            "generator",
            app.rotate_generator_pak(Requester::CLI, uuid)
                .await
                .map(|g| g.pak),
        ),
    };
    let pak = match pak {
        Ok(pak) => pak,
        Err(AppError::NotFound(_)) => bail!("no such {what} (deleted, or never created)"),
        Err(e) => return Err(e).context(format!("rotating the {what} PAK")),
    };
    eprintln!(
        "Rotated the {what} PAK. The old one stops working within broker.auth_cache_ttl_seconds, \
         or at once after POST /api/v1/admin/config/reload."
    );
    println!("{}", pak.expose());
    Ok(())
}

async fn verify_audit(settings: &Settings) -> Result<()> {
    let app = startup::open_existing_app(settings.clone()).await?;
    let outcome = brokkr_broker::db::audit_chain::verify(&app.db)
        .await
        .context("reading the audit log")?;
    match outcome.broken_at {
        None => {
            println!(
                "audit log intact: {} entries checked ({} written before the log was chained)",
                outcome.checked, outcome.unchained
            );
            Ok(())
        }
        Some(id) => bail!(
            "audit log BROKEN at entry {id}: it was altered, or an entry before it was removed ({} entries checked before it)",
            outcome.checked
        ),
    }
}

async fn create(settings: Settings, what: CreateTarget) -> Result<()> {
    let app = startup::open_existing_app(settings).await?;
    let (label, pak) = match what {
        CreateTarget::Agent { name, cluster_name } => {
            create_agent(&app, &name, &cluster_name).await?
        }
        CreateTarget::Generator {
            name,
            description,
            reach,
        } => create_generator(&app, &name, description.as_deref(), reach.as_deref()).await?,
    };
    println!("{label}");
    println!("{}", pak.expose());
    Ok(())
}

/// Registers an agent exactly as the API does: audited (actor `cli`), placed in every
/// generator's reach that admits it, and targeted.
async fn create_agent(app: &App, name: &str, cluster_name: &str) -> Result<(String, Pak)> {
    let body = CreateAgent {
        name: Name::parse(name).context("--name")?,
        cluster_name: Name::parse(cluster_name).context("--cluster-name")?,
        labels: Vec::new(),
        annotations: Default::default(),
        status: None,
    };
    let created = app
        .create_agent(Requester::CLI, body)
        .await
        .context("creating the agent")?;
    let agent = created.agent;
    Ok((
        format!("created agent {} with id {}", agent.name, agent.id),
        created.pak,
    ))
}

async fn create_generator(
    app: &App,
    name: &str,
    description: Option<&str>,
    reach: Option<&str>,
) -> Result<(String, Pak)> {
    let body = CreateGenerator {
        name: Name::parse(name).context("--name")?,
        description: description
            .map(Description::parse)
            .transpose()
            .context("--description")?,
        reach: reach
            .map(brokkr_types::ExpressionText::parse)
            .transpose()
            .map_err(anyhow::Error::msg)
            .context("--reach")?,
    };
    let created = app
        .create_generator(Requester::CLI, body)
        .await
        .context("creating the generator")?;
    let generator = created.generator;
    Ok((
        format!(
            "created generator {} with id {} (reach: {})",
            generator.name, generator.id, generator.reach
        ),
        created.pak,
    ))
}
