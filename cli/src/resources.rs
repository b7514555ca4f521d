//! `brokkr get`, `describe` and `delete`: the broker's resources by kind, named by id (stacks
//! and templates also by name).

use anyhow::{Context, Result, anyhow};
use brokkr_client::{Client, ClientResult, Deletable};
use brokkr_types::Name;
use brokkr_types::resources::Page;
use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::output::{self, Format};
use crate::{platform_tables, show};

/// Most items a list shows (one page).
pub const LIST_LIMIT: u32 = 1000;
/// Versions and deliveries `describe` shows.
const RECENT: u32 = 10;

/// What `get`, `describe` and `delete` work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    #[value(alias = "stack")]
    Stacks,
    #[value(alias = "agent")]
    Agents,
    #[value(alias = "generator")]
    Generators,
    #[value(alias = "template")]
    Templates,
    #[value(alias = "webhook")]
    Webhooks,
    #[value(alias = "plugin")]
    Plugins,
    #[value(alias = "work-order")]
    WorkOrders,
    #[value(alias = "enrollment-token")]
    EnrollmentTokens,
}

fn id_of(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| anyhow!("{text:?} is not an id"))
}

fn name_of(text: &str) -> Result<Name> {
    Name::parse(text).with_context(|| format!("{text:?} is neither an id nor a name"))
}

/// A stack by id or name.
pub async fn stack_id(client: &Client, text: &str) -> Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(id);
    }
    let name = name_of(text)?;
    let stack = client.stack_named(name.as_str()).await?;
    stack
        .map(|s| s.id)
        .ok_or_else(|| anyhow!("no stack named {text:?}"))
}

/// `--limit` and `--offset` of a listing.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Paging {
    /// Items per page, 1 to 1000.
    #[arg(long, default_value_t = LIST_LIMIT, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Items to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

/// The items of a page; says on stderr where the next one starts, if there is one.
pub fn items_of<T>(page: Page<T>) -> Vec<T> {
    if let Some(next) = page.next_offset {
        eprintln!("more: repeat with --offset {next}");
    }
    page.items
}

/// One item when `id` is given, else one page.
async fn one_or_page<T, One, List>(id: Option<&str>, one: One, list: List) -> Result<Vec<T>>
where
    One: AsyncFnOnce(&str) -> Result<T>,
    List: AsyncFnOnce() -> ClientResult<Page<T>>,
{
    Ok(match id {
        Some(id) => vec![one(id).await?],
        None => items_of(list().await?),
    })
}

/// Prints a page of the resources of a kind, or the one named.
pub async fn get(
    client: &Client,
    format: Format,
    (kind, id): (Kind, Option<&str>),
    paging: Paging,
) -> Result<()> {
    let c = client;
    let (n, o) = (paging.limit, paging.offset);
    match kind {
        Kind::Stacks => {
            let one = async |i: &str| Ok(c.stack(stack_id(c, i).await?).await?);
            let items = one_or_page(id, one, async || c.stacks(n, o).await).await?;
            output::print(format, &items, |s| show::stacks(s))
        }
        Kind::Agents => {
            let one = async |i: &str| Ok(c.agent(id_of(i)?).await?);
            let items = one_or_page(id, one, async || c.agents(n, o).await).await?;
            output::print(format, &items, |a| show::agents(a))
        }
        Kind::Generators => {
            let one = async |i: &str| Ok(c.generator(id_of(i)?).await?);
            let items = one_or_page(id, one, async || c.generators(n, o).await).await?;
            output::print(format, &items, |g| show::generators(g))
        }
        Kind::Templates => {
            let one = async |i: &str| Ok(c.template(&name_of(i)?).await?);
            let items = one_or_page(id, one, async || c.templates(n, o).await).await?;
            output::print(format, &items, |t| platform_tables::templates(t))
        }
        Kind::Webhooks => {
            let one = async |i: &str| Ok(c.webhook(id_of(i)?).await?);
            let items = one_or_page(id, one, async || c.webhooks(n, o).await).await?;
            output::print(format, &items, |w| platform_tables::webhooks(w))
        }
        Kind::Plugins => {
            let one = async |i: &str| Ok(c.plugin(id_of(i)?).await?);
            let items = one_or_page(id, one, async || c.plugins(n, o).await).await?;
            output::print(format, &items, |p| platform_tables::plugins(p))
        }
        Kind::WorkOrders => {
            let one = async |i: &str| Ok(c.work_order(id_of(i)?).await?);
            let items = one_or_page(id, one, async || c.work_orders(n, o).await).await?;
            output::print(format, &items, |w| show::work_orders(w))
        }
        Kind::EnrollmentTokens => {
            if id.is_some() {
                anyhow::bail!("enrollment tokens are only listed: leave out the id");
            }
            let items = items_of(c.enrollment_tokens(n, o).await?);
            output::print(format, &items, |t| platform_tables::enrollment_tokens(t))
        }
    }
}

/// One resource in full, with what belongs to it: a stack's recent versions and rollout, an
/// agent's stacks, a webhook's recent deliveries.
pub async fn describe(client: &Client, format: Format, kind: Kind, id: &str) -> Result<()> {
    let c = client;
    let described = match kind {
        Kind::Stacks => {
            let stack = c.stack(stack_id(c, id).await?).await?;
            let versions = c.deployment_objects(stack.id, RECENT, 0).await?.items;
            let rollout = match versions.is_empty() {
                true => None,
                false => Some(
                    crate::follow::rollout(c, crate::follow::Subject::Stack(stack.id), None)
                        .await?
                        .0,
                ),
            };
            vec![
                part("stack", &stack),
                part("versions", &versions),
                part("rollout", &rollout),
            ]
        }
        Kind::Agents => {
            let agent = c.agent(id_of(id)?).await?;
            let stacks = c.explain_agent(agent.id, LIST_LIMIT, 0).await?.items;
            vec![part("agent", &agent), part("stacks", &stacks)]
        }
        Kind::Webhooks => {
            let webhook = c.webhook(id_of(id)?).await?;
            let deliveries = c.webhook_deliveries(webhook.id, RECENT, 0).await?.items;
            vec![part("webhook", &webhook), part("deliveries", &deliveries)]
        }
        Kind::Generators => vec![part("generator", &c.generator(id_of(id)?).await?)],
        Kind::Templates => vec![part("template", &c.template(&name_of(id)?).await?)],
        Kind::Plugins => vec![part("plugin", &c.plugin(id_of(id)?).await?)],
        Kind::WorkOrders => vec![part("work_order", &c.work_order(id_of(id)?).await?)],
        Kind::EnrollmentTokens => anyhow::bail!("enrollment tokens are only listed"),
    };
    match format {
        Format::Table => {
            anstream::print!("{}", as_text(&described));
            Ok(())
        }
        _ => {
            let document: serde_json::Map<String, Value> = described.into_iter().collect();
            output::print(format, &document, |_| String::new())
        }
    }
}

/// One part of what `describe` shows, under its name.
fn part(name: &str, value: &impl Serialize) -> (String, Value) {
    (
        name.to_string(),
        serde_json::to_value(value).unwrap_or(Value::Null),
    )
}

/// `describe` for people: each part under its heading, as YAML, in order.
fn as_text(described: &[(String, Value)]) -> String {
    let mut text = String::new();
    for (part, value) in described {
        if value.is_null() || value.as_array().is_some_and(Vec::is_empty) {
            continue;
        }
        let body = serde_yaml_ng::to_string(value).unwrap_or_default();
        text.push_str(&format!("{}:\n", part.replace('_', " ")));
        for line in body.lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

/// Deletes one resource; prints what went.
pub async fn delete(client: &Client, format: Format, kind: Kind, id: &str) -> Result<()> {
    let what = match kind {
        Kind::Stacks => Deletable::Stack(stack_id(client, id).await?),
        Kind::Agents => Deletable::Agent(id_of(id)?),
        Kind::Generators => Deletable::Generator(id_of(id)?),
        Kind::WorkOrders => Deletable::WorkOrder(id_of(id)?),
        Kind::Webhooks => Deletable::Webhook(id_of(id)?),
        Kind::Plugins => Deletable::Plugin(id_of(id)?),
        Kind::EnrollmentTokens => Deletable::EnrollmentToken(id_of(id)?),
        Kind::Templates => Deletable::Template(client.template(&name_of(id)?).await?.id),
    };
    client.delete(what).await?;
    #[derive(Serialize)]
    struct Deleted<'a> {
        deleted: &'a str,
        id: &'a str,
    }
    let kind_name = kind.to_possible_value().map(|v| v.get_name().to_string());
    let kind_name = kind_name.unwrap_or_default();
    let done = Deleted {
        deleted: &kind_name,
        id,
    };
    output::print(format, &done, |d| {
        format!("deleted {} {}\n", d.deleted, d.id)
    })
}
