//! An agent's side of work orders: the runs waiting for it (listed in its target state), a
//! claim that exactly one caller wins, lease renewal, completion with a bounded result, and the
//! sweep that hands lapsed leases back (or expires the run) and deletes orders past their time.

use brokkr_types::work_orders::{
    CompleteRun, Lease, Outcome, PendingWork, RenewLease, RunStatus, WorkOrderType, WorkRun,
};
use bytes::Bytes;
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::json;
use uuid::Uuid;

use super::outbox::DomainEvent;
use super::{App, AppError, AppResult, Requester, Work};
use crate::db::work_orders::{self as store, Completion, OrderRow, RunRow};
use crate::domain::Principal;

/// Most waiting runs listed in one target state (the rest follow as these finish).
pub const MAX_PENDING_LISTED: i64 = 100;

/// The agent itself, or nobody.
fn own_run(by: Requester, agent: Uuid) -> AppResult<()> {
    match by.principal {
        Principal::Agent(own) if own == agent => Ok(()),
        Principal::Agent(_) => Err(AppError::NotFound("work order run")),
        _ => Err(AppError::forbidden("only the agent works on its runs")),
    }
}

fn lease_lost() -> AppError {
    AppError::Conflict {
        code: "lease_lost",
        detail: "this lease is not the run's current one (it ran out, or the run is over)".into(),
    }
}

fn lease_of(row: &RunRow) -> AppResult<Lease> {
    match (row.lease_id, row.lease_expires_at) {
        (Some(lease_id), Some(lease_expires_at)) => Ok(Lease {
            work_order_id: row.work_order_id,
            agent_id: row.agent_id,
            lease_id,
            attempt: u32::try_from(row.attempts).unwrap_or(0),
            lease_expires_at,
        }),
        _ => Err(AppError::Internal("a claimed run without a lease".into())),
    }
}

/// Now, and when a lease taken or renewed now ends.
fn lease_window(order: &OrderRow) -> (DateTime<Utc>, DateTime<Utc>) {
    let now = Utc::now();
    (now, now + Span::seconds(order.claim_timeout_seconds))
}

/// Announces how a run ended (`workorder.succeeded` or `workorder.failed`).
fn announce_end(work: &mut Work, order: &OrderRow, run: &RunRow) {
    let kind = if run.status == RunStatus::Succeeded.as_str() {
        "workorder.succeeded"
    } else {
        "workorder.failed"
    };
    let more = json!({ "status": run.status, "attempts": run.attempts, "message": run.message });
    work.emit(DomainEvent::work_order(
        kind,
        (order.id, &order.work_type),
        order.generator_id,
        Some(run.agent_id),
        more,
    ));
}

impl App {
    /// The runs waiting for `agent`, as the JSON array its target state carries.
    pub(crate) async fn pending_work(&self, agent: Uuid) -> AppResult<Bytes> {
        let rows = store::pending_for_agent(&self.db, agent, MAX_PENDING_LISTED).await?;
        let pending: Vec<PendingWork> = rows
            .into_iter()
            .map(|row| PendingWork {
                id: row.id,
                work_type: WorkOrderType::parse(&row.work_type).unwrap_or(WorkOrderType::Restart),
                spec: serde_json::from_str(&row.spec).unwrap_or_default(),
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                claim_timeout_seconds: u32::try_from(row.claim_timeout_seconds).unwrap_or(0),
            })
            .collect();
        serde_json::to_vec(&pending)
            .map(Bytes::from)
            .map_err(|e| AppError::Internal(format!("cannot serialise pending work: {e}")))
    }

    async fn order_of_run(&self, order: Uuid) -> AppResult<OrderRow> {
        store::get(&self.db, order)
            .await?
            .ok_or(AppError::NotFound("work order"))
    }

    /// Claims the agent's run: of concurrent claims (on any replica) exactly one wins; the
    /// others get 409 `not_claimable`.
    pub async fn claim_run(&self, by: Requester, order: Uuid, agent: Uuid) -> AppResult<Lease> {
        own_run(by, agent)?;
        let row = self.order_of_run(order).await?;
        let (now, until) = lease_window(&row);
        let mut work = self.begin_unaudited().await?;
        let claimed = store::claim(&mut work.tx, order, agent, Uuid::new_v4(), now, until).await?;
        let Some(claimed) = claimed else {
            drop(work);
            return Err(match store::run_of(&self.db, order, agent).await? {
                None => AppError::NotFound("work order run"),
                Some(run) => AppError::Conflict {
                    code: "not_claimable",
                    detail: format!(
                        "the run is {} after {} of {} attempts",
                        run.status, run.attempts, row.max_attempts
                    ),
                },
            });
        };
        work.agents_changed([agent]);
        work.commit().await?;
        lease_of(&claimed)
    }

    /// Extends the lease by the order's claim timeout.
    pub async fn renew_lease(
        &self,
        by: Requester,
        order: Uuid,
        agent: Uuid,
        body: RenewLease,
    ) -> AppResult<Lease> {
        own_run(by, agent)?;
        let row = self.order_of_run(order).await?;
        let (now, until) = lease_window(&row);
        let mut work = self.begin_unaudited().await?;
        let renewed = store::renew(&mut work.tx, order, agent, body.lease_id, now, until)
            .await?
            .ok_or_else(lease_lost)?;
        work.commit().await?;
        lease_of(&renewed)
    }

    /// Ends the run with the agent's outcome and result (at most `work_orders.max_result_bytes`).
    pub async fn complete_run(
        &self,
        by: Requester,
        order: Uuid,
        agent: Uuid,
        body: CompleteRun,
    ) -> AppResult<WorkRun> {
        own_run(by, agent)?;
        let row = self.order_of_run(order).await?;
        let result = (!body.result.is_null()).then(|| body.result.to_string());
        let max = self.settings.work_orders.max_result_bytes;
        if result.as_ref().is_some_and(|r| r.len() > max) {
            return Err(AppError::invalid(
                "result_too_large",
                format!("result: at most {max} bytes of JSON"),
            ));
        }
        let status = match body.outcome {
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::Failed => RunStatus::Failed,
        };
        let now = Utc::now();
        let done = Completion {
            lease: body.lease_id,
            status: status.as_str(),
            message: body.message.as_ref().map(|m| m.as_str()),
            result: result.as_deref(),
            at: now,
        };
        let mut work = self.begin_unaudited().await?;
        let run = store::complete(&mut work.tx, order, agent, done)
            .await?
            .ok_or_else(lease_lost)?;
        store::expire_when_done(&mut work.tx, order, now + self.work_retention()).await?;
        announce_end(&mut work, &row, &run);
        work.commit().await?;
        Ok(super::work_orders::run_view(run))
    }

    /// Hands lapsed leases back (or expires runs out of attempts) and deletes orders past their
    /// time. Safe on every replica at once: each change is one conditional statement.
    pub async fn sweep_work_orders(&self, now: DateTime<Utc>) -> AppResult<()> {
        let (lapsed, due) = store::sweep_due(&self.db, now).await?;
        if !lapsed && !due {
            return Ok(());
        }
        let mut work = self.begin_unaudited().await?;
        if lapsed {
            let released = store::release_lapsed(&mut work.tx, now).await?;
            for run in &released {
                if run.status == RunStatus::Expired.as_str() {
                    if let Some(order) = store::get_in(&mut work.tx, run.work_order_id).await? {
                        announce_end(&mut work, &order, run);
                    }
                    let at = now + self.work_retention();
                    store::expire_when_done(&mut work.tx, run.work_order_id, at).await?;
                } else {
                    work.agents_changed([run.agent_id]);
                }
            }
        }
        if due {
            let purged = store::purge(&mut work.tx, now).await?;
            work.agents_changed(purged);
        }
        work.commit().await
    }
}
