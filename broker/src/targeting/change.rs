//! Finishing a change that can retarget stacks: plan it inside the change's transaction, then
//! preview and roll back (`?dry_run=true`), refuse it when it would untarget a stack from more
//! agents than the guard allows without `?confirm=true`, or apply, announce and commit.

use axum::Json;
use axum::response::{IntoResponse, Response};
use brokkr_types::resources::TargetingPreview;
use serde::Deserialize;
use uuid::Uuid;

use super::plan::{self, Plan};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `?dry_run=` and `?confirm=` of changes that can retarget.
#[derive(Debug, Default, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChangeOptions {
    /// Only report which agents (or stacks) would gain and lose the stack; change nothing.
    pub dry_run: Option<bool>,
    /// Accept a change that untargets a stack from more agents than the guard allows.
    pub confirm: Option<bool>,
}

impl ChangeOptions {
    pub fn dry_run(self) -> bool {
        self.dry_run.unwrap_or(false)
    }
}

/// What was changed.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Stack(Uuid),
    Agent(Uuid),
}

/// The outcome of [`settle`].
#[derive(Debug)]
pub enum Settled {
    /// A dry run: nothing was written.
    Preview(TargetingPreview),
    /// The change and its retargeting were committed.
    Applied(Plan),
}

impl Settled {
    /// The preview for dry runs, or `applied` (the handler's usual answer) otherwise.
    pub fn respond(self, applied: impl FnOnce() -> Response) -> Response {
        match self {
            Self::Preview(preview) => Json(preview).into_response(),
            Self::Applied(_) => applied(),
        }
    }
}

/// Plans the change written in `tx`, then previews, refuses or commits it.
pub async fn settle(
    state: &AppState,
    mut tx: Tx,
    subject: Subject,
    options: ChangeOptions,
) -> ApiResult<Settled> {
    let plan = match subject {
        Subject::Stack(id) => plan::for_stack(&mut tx, id).await?,
        Subject::Agent(id) => plan::for_agent(&mut tx, id).await?,
    };
    let by_agent = matches!(subject, Subject::Stack(_));
    if options.dry_run() {
        drop(tx);
        return Ok(Settled::Preview(plan.preview(true, by_agent)));
    }
    let threshold = state.settings.targeting.confirm_threshold;
    let lost = plan.lost().len();
    if by_agent && lost > threshold && options.confirm != Some(true) {
        drop(tx);
        return Err(ApiError::conflict(
            "confirmation_required",
            format!(
                "this change would remove the stack from {lost} agents (more than {threshold}); \
                 preview it with ?dry_run=true and repeat with ?confirm=true to proceed"
            ),
        ));
    }
    commit(state, tx, plan).await.map(Settled::Applied)
}

/// Applies a plan, announces the changed agents and commits.
pub async fn commit(state: &AppState, mut tx: Tx, plan: Plan) -> ApiResult<Plan> {
    plan.apply(&mut tx).await?;
    let affected = plan.affected_agents();
    state.targeting.announce(&mut tx, &affected).await?;
    tx.commit().await?;
    state.targeting.changed(&affected);
    Ok(plan)
}

/// Replans `stacks` (their facts changed indirectly), applies, announces and commits.
pub async fn retarget_stacks(state: &AppState, mut tx: Tx, stacks: &[Uuid]) -> ApiResult<()> {
    let mut affected = Vec::new();
    for stack in stacks {
        let plan = plan::for_stack(&mut tx, *stack).await?;
        plan.apply(&mut tx).await?;
        affected.extend(plan.affected_agents());
    }
    affected.sort();
    affected.dedup();
    commit_for_agents(state, tx, &affected).await
}

/// Commits a new deployment object of `stack`: the agents it reaches advance to `object`.
pub async fn commit_advance(
    state: &AppState,
    mut tx: Tx,
    stack: Uuid,
    object: Uuid,
    agents: &[Uuid],
) -> ApiResult<()> {
    state
        .targeting
        .announce_advance(&mut tx, stack, object)
        .await?;
    tx.commit().await?;
    state
        .targeting
        .hub
        .advance(agents.iter().copied(), stack, object);
    Ok(())
}

/// Commits a change that altered what these agents must apply, without retargeting.
pub async fn commit_for_agents(state: &AppState, mut tx: Tx, agents: &[Uuid]) -> ApiResult<()> {
    state.targeting.announce(&mut tx, agents).await?;
    tx.commit().await?;
    state.targeting.changed(agents);
    Ok(())
}
