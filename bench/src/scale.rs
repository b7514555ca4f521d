//! Fleet size and replicas: a broker with many registered agents of which 10,000 long-poll
//! (its memory per agent, its RSS with the long polls open, and the propagation to them), and
//! two replicas on one PostgreSQL database (the write on one, the agents on the other).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use brokkr_bench::fleet::{Fleet, SimAgent};
use uuid::Uuid;

use crate::long_polls::{self, LongPolls};

/// Long polls held open at once in the fleet-size scenario.
const LONG_POLLING: usize = 10_000;

/// Every registered agent polls once (each gets a view in the hub and an entry in the
/// authentication cache), then the first 10,000 long-poll and one object is published.
pub async fn registered_fleet(
    fleet: &Fleet,
    agents: &Arc<Vec<SimAgent>>,
    generator: &str,
    stack: Uuid,
) -> Result<Vec<(&'static str, String)>> {
    let registered = fleet.rss_mib();
    crate::etags(fleet, agents, 64).await?;
    let polled = fleet.rss_mib();
    let per_agent = (polled - registered) * 1024.0 * 1024.0 / agents.len().max(1) as f64;
    let polling = Arc::new(agents[..agents.len().min(LONG_POLLING)].to_vec());
    let polls = LongPolls::current(fleet, &polling).await?;
    let waiting = fleet.rss_mib();
    let fan_out = polls
        .publish_and_time(fleet, fleet, generator, stack)
        .await?;
    let after = fleet.rss_mib();
    let memory = format!(
        "RSS {registered:.0} MiB with {} agents registered; {polled:.0} MiB once each polled \
         ({per_agent:.0} bytes per agent: its hub view and its cached PAK check); {waiting:.0} MiB \
         with {} long polls open; {after:.0} MiB after they were answered",
        agents.len(),
        polling.len()
    );
    Ok(vec![
        ("broker memory by fleet size", memory),
        (
            "long-poll fan-out to 10,000 of them, write → every answer",
            fan_out,
        ),
    ])
}

/// A second broker on the same PostgreSQL database: the agents long-poll it, the object is
/// published through the first.
pub async fn two_replicas(
    fleet: &Fleet,
    broker: &Path,
    agents: &Arc<Vec<SimAgent>>,
    generator: &str,
    stack: Uuid,
) -> Result<String> {
    if !fleet.database_url.starts_with("postgres") {
        bail!("the replicas scenario needs --backend postgres (replicas share one database)");
    }
    let replica = fleet.replica(broker, agents.len()).await?;
    long_polls::propagation(fleet, &replica, agents, generator, stack).await
}
