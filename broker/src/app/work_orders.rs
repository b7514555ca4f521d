//! Work orders: created by an admin, or by a generator for agents inside its reach; judged by
//! the validator plugins bound to the `work-orders` scope; one pending run per targeted agent,
//! announced through the agents' target states. Listing, reading and cancelling are confined to
//! the order's creator (and admins).

use std::collections::{BTreeSet, HashMap, HashSet};

use brokkr_policy::plugin::{GeneratorInfo, StackInfo};
use brokkr_types::FieldError;
use brokkr_types::resources::Page;
use brokkr_types::work_orders::{
    CreateWorkOrder, RequestDiagnostics, RunCounts, RunStatus, WorkOrder, WorkOrderType, WorkRun,
    WorkTarget,
};
use chrono::{Duration as Span, Utc};
use serde_json::json;
use uuid::Uuid;

use super::fleet::FleetFilter;
use super::outbox::DomainEvent;
use super::policies::{self, Subject};
use super::submissions::{rejection, verdicts};
use super::{App, AppError, AppResult, Requester};
use crate::db::work_orders::{self as store, OrderRow, RunRow};
use crate::db::{Window, agents, assignments, generators, plugins as db_plugins, reach};
use crate::domain::Principal;
use crate::domain::work_spec::WorkSpec;

fn target_error(message: impl Into<String>) -> AppError {
    AppError::Invalid {
        code: "validation_failed",
        detail: "the work order's target is not acceptable".into(),
        errors: vec![FieldError {
            location: "target".into(),
            message: message.into(),
        }],
    }
}

/// The generator a requester acts for; agents have no say in work orders.
fn creator(by: Requester) -> AppResult<Option<Uuid>> {
    match by.principal {
        Principal::Admin => Ok(None),
        Principal::Generator(id) => Ok(Some(id)),
        Principal::Agent(_) => Err(AppError::forbidden("agents cannot manage work orders")),
    }
}

/// A stored run as the API shows it.
pub(crate) fn run_view(row: RunRow) -> WorkRun {
    WorkRun {
        agent_id: row.agent_id,
        status: RunStatus::parse(&row.status).unwrap_or(RunStatus::Pending),
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        claimed_at: row.claimed_at,
        lease_expires_at: row.lease_expires_at,
        completed_at: row.completed_at,
        message: row.message,
        result: row.result.and_then(|r| serde_json::from_str(&r).ok()),
    }
}

/// A run as it is written: waiting, never claimed.
fn pending_run(agent_id: Uuid) -> WorkRun {
    WorkRun {
        agent_id,
        status: RunStatus::Pending,
        attempts: 0,
        claimed_at: None,
        lease_expires_at: None,
        completed_at: None,
        message: None,
        result: None,
    }
}

/// A stored order as the API shows it.
fn order_view(row: OrderRow, counts: RunCounts, runs: Vec<WorkRun>) -> WorkOrder {
    WorkOrder {
        id: row.id,
        work_type: WorkOrderType::parse(&row.work_type).unwrap_or(WorkOrderType::Restart),
        spec: serde_json::from_str(&row.spec).unwrap_or_default(),
        target: serde_json::from_str(&row.target).unwrap_or_default(),
        generator_id: row.generator_id,
        max_attempts: u32::try_from(row.max_attempts).unwrap_or(0),
        claim_timeout_seconds: u32::try_from(row.claim_timeout_seconds).unwrap_or(0),
        created_at: row.created_at,
        expires_at: row.expires_at,
        counts,
        runs,
    }
}

impl App {
    /// Creates a work order with one pending run per targeted agent.
    pub async fn create_work_order(
        &self,
        by: Requester,
        request: CreateWorkOrder,
    ) -> AppResult<WorkOrder> {
        let generator = creator(by)?;
        let spec = WorkSpec::parse(&request).map_err(|errors| AppError::Invalid {
            code: "validation_failed",
            detail: format!("the {} work order is not valid", request.work_type.as_str()),
            errors,
        })?;
        // The object first: another team's object is not found, whatever the target says.
        let object = match spec.deployment_object {
            Some(id) => Some(self.deployment_object(by, id).await?.stack_id),
            None => None,
        };
        let agents = self.work_targets(by, &request.target).await?;
        if let Some(stack) = object {
            self.check_holders(stack, &agents).await?;
        }
        let target = json!(request.target);
        self.judge_work_order(generator, &spec, &target).await?;
        let now = Utc::now();
        let retention = self.settings.diagnostics.retention_seconds;
        let row = OrderRow {
            id: Uuid::new_v4(),
            work_type: spec.work_type.as_str().into(),
            spec: spec.spec.to_string(),
            target: target.to_string(),
            generator_id: generator,
            max_attempts: i64::from(spec.max_attempts),
            claim_timeout_seconds: i64::from(spec.claim_timeout_seconds),
            created_at: now,
            expires_at: (spec.work_type == WorkOrderType::Diagnostics)
                .then(|| now + Span::seconds(i64::try_from(retention).unwrap_or(i64::MAX / 2))),
        };
        let mut work = self.begin().await?;
        store::insert(&mut work.tx, &row, &agents).await?;
        let details = json!({ "type": row.work_type, "agents": agents.len() });
        work.audit(
            by,
            "workorder.create",
            ("work_order", Some(row.id)),
            details,
        )
        .await?;
        let more = json!({ "agents": agents.len() });
        work.emit(DomainEvent::work_order(
            "workorder.created",
            (row.id, &row.work_type),
            generator,
            None,
            more,
        ));
        work.agents_changed(agents.iter().copied());
        work.commit().await?;
        // Every run was just written pending: nothing to read back.
        let runs: Vec<WorkRun> = agents.iter().map(|&agent| pending_run(agent)).collect();
        let counts = RunCounts {
            pending: runs.len() as u64,
            ..RunCounts::default()
        };
        Ok(order_view(row, counts, runs))
    }

    /// `POST /api/v1/deployment-objects/{id}/diagnostics`: a `diagnostics` order for one agent.
    pub async fn request_diagnostics(
        &self,
        by: Requester,
        object: Uuid,
        body: RequestDiagnostics,
    ) -> AppResult<WorkOrder> {
        let request = CreateWorkOrder {
            work_type: WorkOrderType::Diagnostics,
            target: WorkTarget {
                agent_ids: Some(vec![body.agent_id]),
                expression: None,
            },
            spec: json!({ "deployment_object_id": object, "log_lines": body.log_lines }),
            max_attempts: None,
            claim_timeout_seconds: None,
        };
        self.create_work_order(by, request).await
    }

    /// The agents a target names: listed ids and the agents an expression admits (a generator:
    /// inside its reach only), at least one and at most `work_orders.max_agents`.
    async fn work_targets(&self, by: Requester, target: &WorkTarget) -> AppResult<Vec<Uuid>> {
        let listed = target.agent_ids.clone().unwrap_or_default();
        let max = self.settings.work_orders.max_agents;
        if listed.is_empty() && target.expression.is_none() {
            return Err(target_error("name agent_ids, an expression, or both"));
        }
        if listed.len() > max {
            return Err(target_error(format!("at most {max} agents")));
        }
        let mut chosen: BTreeSet<Uuid> = BTreeSet::new();
        if !listed.is_empty() {
            let live: HashSet<Uuid> = agents::rows_with_labels(&self.db, &listed)
                .await?
                .into_iter()
                .map(|(row, _)| row.id())
                .collect();
            let inside = match by.principal {
                Principal::Generator(generator) => {
                    let mut tx = self.db.begin_read().await?;
                    Some(reach::agents_of(&mut tx, generator).await?)
                }
                _ => None,
            };
            for (i, id) in listed.iter().enumerate() {
                let allowed = live.contains(id) && inside.as_ref().is_none_or(|r| r.contains(id));
                if !allowed {
                    // Not echoed: whether an agent outside the reach exists is not the caller's.
                    return Err(target_error(format!(
                        "agent_ids[{i}]: no such agent inside your reach"
                    )));
                }
                chosen.insert(*id);
            }
        }
        if let Some(expression) = &target.expression {
            let filter = FleetFilter {
                expression: Some(expression.clone()),
                ..FleetFilter::default()
            };
            for facts in self.fleet_candidates(by, &filter).await? {
                chosen.extend(Uuid::parse_str(&facts.id).ok());
            }
        }
        match chosen.len() {
            0 => Err(target_error("the target matches no agent")),
            n if n > max => Err(target_error(format!("{n} agents match; at most {max}"))),
            _ => Ok(chosen.into_iter().collect()),
        }
    }

    /// A diagnostics order goes to agents the deployment object's stack is assigned to.
    async fn check_holders(&self, stack: Uuid, targets: &[Uuid]) -> AppResult<()> {
        let mut tx = self.db.begin_read().await?;
        let holders: HashSet<Uuid> = assignments::agents_of_stack(&mut tx, stack)
            .await?
            .into_iter()
            .collect();
        drop(tx);
        match targets.iter().find(|a| !holders.contains(a)) {
            Some(agent) => Err(target_error(format!(
                "agent {agent} does not hold the deployment object's stack"
            ))),
            None => Ok(()),
        }
    }

    /// Runs the validators bound to the `work-orders` scope; an enforcing refusal is recorded
    /// and answered with every violation (422), nothing else is written.
    async fn judge_work_order(
        &self,
        generator: Option<Uuid>,
        spec: &WorkSpec,
        target: &serde_json::Value,
    ) -> AppResult<()> {
        let bound = db_plugins::policies_for_work_orders(&self.db).await?;
        if bound.is_empty() {
            return Ok(());
        }
        let generator_name = match generator {
            Some(id) => generators::get_any_name(&self.db, id)
                .await?
                .unwrap_or_default(),
            None => "admin".into(),
        };
        let subject = Subject {
            stack: StackInfo {
                id: String::new(),
                name: "work-orders".into(),
                labels: Vec::new(),
                annotations: Vec::new(),
            },
            generator: GeneratorInfo {
                id: generator.map(|g| g.to_string()).unwrap_or_default(),
                name: generator_name,
            },
        };
        let documents = spec.documents(target);
        let findings = self
            .policies
            .judge(&self.db, &bound, subject, None, &documents)
            .await?;
        let recorded = verdicts(&findings, None, None);
        if !findings.iter().any(policies::blocks) {
            if !recorded.is_empty() {
                let mut work = self.begin_unaudited().await?;
                db_plugins::record_verdicts(&mut work.tx, &recorded).await?;
                work.commit().await?;
            }
            return Ok(());
        }
        let mut work = self.begin_unaudited().await?;
        db_plugins::record_verdicts(&mut work.tx, &recorded).await?;
        work.commit().await?;
        Err(rejection(&findings))
    }

    /// The stored order, if `by` may see it (its creator or an admin).
    async fn visible_order(&self, by: Requester, id: Uuid) -> AppResult<OrderRow> {
        let generator = creator(by)?;
        let row = store::get(&self.db, id)
            .await?
            .ok_or(AppError::NotFound("work order"))?;
        match generator {
            Some(own) if row.generator_id != Some(own) => Err(AppError::NotFound("work order")),
            _ => Ok(row),
        }
    }

    /// Run counts per order.
    async fn counts_of(&self, ids: &[Uuid]) -> AppResult<HashMap<Uuid, RunCounts>> {
        let mut counts: HashMap<Uuid, RunCounts> = HashMap::new();
        for (order, status, n) in store::status_counts(&self.db, ids).await? {
            let status = RunStatus::parse(&status).unwrap_or(RunStatus::Pending);
            counts
                .entry(order)
                .or_default()
                .add_many(status, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    /// Work orders newest first: every one for an admin, its own for a generator.
    pub async fn work_orders(&self, by: Requester, window: Window) -> AppResult<Page<WorkOrder>> {
        let generator = creator(by)?;
        let rows = store::list(&self.db, generator, window).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut counts = self.counts_of(&ids).await?;
        let items = rows
            .into_iter()
            .map(|row| {
                let c = counts.remove(&row.id).unwrap_or_default();
                order_view(row, c, Vec::new())
            })
            .collect();
        Ok(window.page(items))
    }

    /// One work order with every run.
    pub async fn work_order(&self, by: Requester, id: Uuid) -> AppResult<WorkOrder> {
        let row = self.visible_order(by, id).await?;
        let runs: Vec<WorkRun> = store::runs(&self.db, id)
            .await?
            .into_iter()
            .map(run_view)
            .collect();
        let mut counts = RunCounts::default();
        for run in &runs {
            counts.add(run.status);
        }
        Ok(order_view(row, counts, runs))
    }

    /// Cancels the runs no agent claimed yet; claimed runs finish.
    pub async fn cancel_work_order(&self, by: Requester, id: Uuid) -> AppResult<WorkOrder> {
        self.visible_order(by, id).await?;
        let now = Utc::now();
        let mut work = self.begin().await?;
        let cancelled = store::cancel_pending(&mut work.tx, Some(id), None, now).await?;
        let retention = self.work_retention();
        store::expire_when_done(&mut work.tx, id, now + retention).await?;
        let details = json!({ "cancelled_runs": cancelled.len() });
        work.audit(by, "workorder.cancel", ("work_order", Some(id)), details)
            .await?;
        work.agents_changed(cancelled.into_iter().map(|(_, agent)| agent));
        work.commit().await?;
        self.work_order(by, id).await
    }

    /// How long a finished order is kept.
    pub(crate) fn work_retention(&self) -> Span {
        let seconds = self.settings.work_orders.retention_seconds;
        Span::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 2))
    }
}
