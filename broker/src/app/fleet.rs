//! The fleet view: every agent (a generator: those inside its reach), filtered by labels, a CEL
//! expression over agent facts and status, with its heartbeat, each assigned stack's applied
//! version against the newest (its backlog), health, and the last error.

use std::collections::{HashMap, HashSet};

use brokkr_policy::AgentFacts;
use brokkr_types::Label;
use brokkr_types::resources::{AgentStatus, Page};
use brokkr_types::rollouts::{FleetAgent, FleetStack, HealthCounts, HealthStatus};
use chrono::Utc;
use uuid::Uuid;

use super::{App, AppError, AppResult, Requester};
use crate::db::assignments::{self, Scope};
use crate::db::rollouts::{self, AgentVersion};
use crate::db::{Window, agents, reach};
use crate::domain::Principal;
use crate::targeting::compiled;

/// What the fleet view shows.
#[derive(Debug, Clone, Default)]
pub struct FleetFilter {
    /// Agents carrying every one of these labels.
    pub labels: Vec<Label>,
    /// A CEL expression over `agent`, as in a generator's reach.
    pub expression: Option<String>,
    pub status: Option<AgentStatus>,
}

impl App {
    pub async fn fleet(
        &self,
        by: Requester,
        filter: FleetFilter,
        window: Window,
    ) -> AppResult<Page<FleetAgent>> {
        let ids = match &filter.expression {
            // Without an expression the database pages (the common case, and the cheap one).
            None => {
                let reach_of = match by.principal {
                    Principal::Admin => None,
                    Principal::Generator(generator) => Some(generator),
                    Principal::Agent(_) => {
                        return Err(AppError::forbidden("agents have no fleet view"));
                    }
                };
                let labels: Vec<&str> = filter.labels.iter().map(Label::as_str).collect();
                agents::page_ids(&self.db, reach_of, &labels, filter.status, window).await?
            }
            Some(_) => self.fleet_by_expression(by, &filter, window).await?,
        };
        let agents = self.fleet_rows(&ids).await?;
        Ok(window.page(agents))
    }

    /// One page of the agents a CEL expression admits (every candidate is evaluated).
    async fn fleet_by_expression(
        &self,
        by: Requester,
        filter: &FleetFilter,
        window: Window,
    ) -> AppResult<Vec<Uuid>> {
        let mut candidates = self.fleet_candidates(by, filter).await?;
        candidates.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        let start = usize::try_from(window.offset).unwrap_or(usize::MAX);
        let probe = usize::try_from(window.probe_limit()).unwrap_or(usize::MAX);
        Ok(candidates
            .iter()
            .skip(start)
            .take(probe)
            .filter_map(|f| Uuid::parse_str(&f.id).ok())
            .collect())
    }

    /// The agents `by` may see that pass the filter.
    pub(crate) async fn fleet_candidates(
        &self,
        by: Requester,
        filter: &FleetFilter,
    ) -> AppResult<Vec<AgentFacts>> {
        let inside = match by.principal {
            Principal::Admin => None,
            Principal::Generator(generator) => {
                let mut tx = self.db.begin_read().await?;
                Some(reach::agents_of(&mut tx, generator).await?)
            }
            Principal::Agent(_) => return Err(AppError::forbidden("agents have no fleet view")),
        };
        let mut tx = self.db.begin_read().await?;
        let mut facts = assignments::agent_facts(&mut tx, Scope::All).await?;
        drop(tx);
        let visible = |f: &AgentFacts| {
            let id = Uuid::parse_str(&f.id).ok();
            inside
                .as_ref()
                .is_none_or(|set| id.is_some_and(|id| set.contains(&id)))
        };
        facts.retain(|f| {
            visible(f)
                && filter
                    .labels
                    .iter()
                    .all(|l| f.labels.iter().any(|x| x == l.as_str()))
        });
        if let Some(status) = filter.status {
            let matching: HashSet<Uuid> = agents::with_status(&self.db, status).await?;
            facts.retain(|f| Uuid::parse_str(&f.id).is_ok_and(|id| matching.contains(&id)));
        }
        if let Some(source) = &filter.expression {
            facts = self.admitted(source, facts).await?;
        }
        Ok(facts)
    }

    /// The agents an expression admits, evaluated off the async workers within the budget.
    async fn admitted(&self, source: &str, facts: Vec<AgentFacts>) -> AppResult<Vec<AgentFacts>> {
        let expression = compiled::reach(source)
            .map_err(|e| AppError::invalid("invalid_expression", format!("expression: {e}")))?;
        self.within_budget("expression", expression.cost(), facts.len() as u64)?;
        tokio::task::spawn_blocking(move || {
            let verdicts = expression.admits_all(&facts);
            facts
                .into_iter()
                .zip(verdicts)
                .filter_map(|(f, admitted)| admitted.then_some(f))
                .collect()
        })
        .await
        .map_err(|e| AppError::Internal(format!("expression evaluation failed: {e}")))
    }

    /// The fleet rows of one page of agents.
    async fn fleet_rows(&self, ids: &[Uuid]) -> AppResult<Vec<FleetAgent>> {
        let rows = agents::rows_with_labels(&self.db, ids).await?;
        let mut stacks: HashMap<Uuid, Vec<(Uuid, String, i64)>> = HashMap::new();
        for (agent, stack, name, latest) in rollouts::stacks_of(&self.db, ids).await? {
            stacks.entry(agent).or_default().push((stack, name, latest));
        }
        let mut progress: HashMap<Uuid, Vec<AgentVersion>> = HashMap::new();
        for row in rollouts::of_agents(&self.db, ids).await? {
            progress.entry(row.agent_id).or_default().push(row);
        }
        let now = Utc::now();
        let mut out = Vec::with_capacity(rows.len());
        for (row, labels) in rows {
            let id = row.id();
            let versions = progress.remove(&id).unwrap_or_default();
            let assigned = stacks.remove(&id).unwrap_or_default();
            let fleet_stacks: Vec<FleetStack> = assigned
                .into_iter()
                .map(|(stack, name, latest)| fleet_stack(stack, name, latest, &versions))
                .collect();
            let mut health = HealthCounts::default();
            for status in fleet_stacks.iter().filter_map(|s| s.health) {
                health.add(status);
            }
            let last_error = versions
                .iter()
                .filter(|v| v.failed_at.is_some())
                .max_by_key(|v| v.failed_at)
                .and_then(|v| v.failure.clone());
            out.push(FleetAgent {
                id,
                name: row.name().to_string(),
                cluster_name: row.cluster_name().to_string(),
                status: row.status(),
                labels,
                last_heartbeat_at: row.last_heartbeat_at(),
                heartbeat_age_seconds: row.last_heartbeat_at().map(|at| (now - at).num_seconds()),
                kubernetes_reachable: row.kubernetes_reachable(),
                backlog: fleet_stacks.iter().map(|s| s.backlog).sum(),
                stacks: fleet_stacks,
                health,
                last_error,
            });
        }
        Ok(out)
    }
}

/// One assigned stack: the newest version the agent applied, how far behind it is, and the
/// health it reports for that version.
fn fleet_stack(stack: Uuid, name: String, latest: i64, versions: &[AgentVersion]) -> FleetStack {
    let newest_applied = versions
        .iter()
        .filter(|v| v.stack_id == stack && v.applied_at.is_some())
        .max_by_key(|v| v.sequence_id);
    let applied_sequence = newest_applied.map(|v| v.sequence_id);
    let latest_sequence = (latest > 0).then_some(latest);
    FleetStack {
        stack_id: stack,
        name,
        latest_sequence,
        applied_sequence,
        backlog: (latest - applied_sequence.unwrap_or(0)).max(0),
        health: newest_applied
            .and_then(|v| v.health.as_deref())
            .and_then(HealthStatus::parse),
    }
}

impl App {
    /// Sets `brokkr_fleet_agents` (each active agent in one state: stale, unreachable,
    /// degraded, healthy) and `brokkr_fleet_backlog`.
    pub async fn refresh_fleet_gauges(&self) -> AppResult<()> {
        let stale_after =
            i64::try_from(self.settings.fleet.stale_after_seconds).unwrap_or(i64::MAX);
        let stale_before = Utc::now() - chrono::Duration::seconds(stale_after);
        let mut newest: HashMap<(Uuid, Uuid), (i64, String)> = HashMap::new();
        for (agent, stack, sequence, health) in rollouts::reported_health(&self.db).await? {
            let slot = newest
                .entry((agent, stack))
                .or_insert((sequence, health.clone()));
            if sequence > slot.0 {
                *slot = (sequence, health);
            }
        }
        let degraded: HashSet<Uuid> = newest
            .into_iter()
            .filter(|(_, (_, h))| h == "degraded" || h == "failing")
            .map(|((agent, _), _)| agent)
            .collect();
        let mut counts: HashMap<&'static str, i64> = HashMap::new();
        for (id, beat, reachable) in rollouts::active_agents(&self.db).await? {
            let state = if beat.is_none_or(|at| at < stale_before) {
                "stale"
            } else if reachable == Some(false) {
                "unreachable"
            } else if degraded.contains(&id) {
                "degraded"
            } else {
                "healthy"
            };
            *counts.entry(state).or_default() += 1;
        }
        let metrics = &self.metrics;
        for state in ["healthy", "degraded", "stale", "unreachable"] {
            let gauge = metrics
                .fleet_agents
                .get_or_create(&crate::metrics::FleetState { state });
            gauge.set(counts.get(state).copied().unwrap_or(0));
        }
        metrics
            .fleet_backlog
            .set(rollouts::total_backlog(&self.db).await?);
        Ok(())
    }
}
