//! Finishing a change that can retarget stacks: plan it inside the change's transaction, then
//! preview and roll back (a dry run), refuse it when it would untarget a stack from more agents
//! than `targeting.confirm_threshold` without confirmation, or apply it and commit.

use brokkr_types::resources::TargetingPreview;
use uuid::Uuid;

use super::{App, AppError, AppResult, Work};
use crate::targeting::plan::{self, Plan};

/// How a change that can retarget is to be finished.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// Only report which agents (or stacks) would gain and lose stacks; change nothing.
    pub dry_run: bool,
    /// Accept a change that untargets stacks from more agents than the guard allows.
    pub confirm: bool,
}

/// The outcome of a change that can retarget: a preview (nothing was written) or the result.
#[derive(Debug)]
pub enum Retargeted<T> {
    Preview(TargetingPreview),
    Applied(T),
}

/// What a change retargets.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    /// One stack, over the agents it could reach.
    Stack(Uuid),
    /// One agent, over the stacks that could reach it.
    Agent(Uuid),
    /// Every stack of one generator (its reach or its name changed).
    Generator(Uuid),
}

/// How [`App::settle`] ended.
#[derive(Debug)]
pub enum Settled {
    Preview(TargetingPreview),
    Applied,
}

impl Settled {
    /// The preview, or `applied()` when the change was committed.
    pub fn or<T>(self, applied: impl FnOnce() -> T) -> Retargeted<T> {
        match self {
            Self::Preview(preview) => Retargeted::Preview(preview),
            Self::Applied => Retargeted::Applied(applied()),
        }
    }
}

impl App {
    /// Plans the change written in `work`, then previews, refuses or commits it.
    pub(crate) async fn settle(
        &self,
        mut work: Work,
        subject: Subject,
        guard: Guard,
    ) -> AppResult<Settled> {
        let plan = match subject {
            Subject::Stack(id) => plan::for_stack(&mut work.tx, id).await?,
            Subject::Agent(id) => plan::for_agent(&mut work.tx, id).await?,
            Subject::Generator(id) => plan::for_generator(&mut work.tx, id).await?,
        };
        let by_agent = !matches!(subject, Subject::Agent(_));
        if guard.dry_run {
            return Ok(Settled::Preview(plan.preview(true, by_agent)));
        }
        let threshold = self.settings.targeting.confirm_threshold;
        let losing = plan.agents_losing();
        if by_agent && losing > threshold && !guard.confirm {
            return Err(AppError::conflict(
                "confirmation_required",
                format!(
                    "this change would remove stacks from {losing} agents (more than {threshold}); \
                     preview it with ?dry_run=true and repeat with ?confirm=true to proceed"
                ),
            ));
        }
        self.apply(work, &plan).await?;
        Ok(Settled::Applied)
    }

    /// Writes a plan and commits it with the rest of `work`.
    pub(crate) async fn apply(&self, mut work: Work, plan: &Plan) -> AppResult<()> {
        plan.apply(&mut work.tx).await?;
        super::outbox::targeting_changed(&mut work, plan).await?;
        work.agents_changed(plan.affected_agents());
        work.commit().await
    }
}
