//! Labels and annotations of agents (admin) and stacks (admin or the owning generator). Every
//! change can retarget: it is planned in its transaction, previewed on a dry run, and guarded.
//! An agent's metadata also decides which generators' reach holds it.

use brokkr_types::requests::{AddAnnotation, Annotations};
use brokkr_types::resources::{Agent, Stack};
use brokkr_types::{AnnotationKey, Label};
use serde_json::json;
use uuid::Uuid;

use super::retarget::{Settled, Subject};
use super::{App, AppError, AppResult, Guard, Requester, Retargeted, Work, reach};
use crate::db::metadata::{self, Metadata, Owner};
use crate::db::{agents, stacks};

/// One change to the labels or annotations of an agent or a stack.
#[derive(Debug, Clone)]
pub enum MetadataChange {
    AddLabel(Label),
    RemoveLabel(Label),
    SetAnnotation(AddAnnotation),
    RemoveAnnotation(AnnotationKey),
}

/// A metadata change's outcome: whether anything changed, and the owner afterwards (or the
/// preview of a dry run).
#[derive(Debug)]
pub struct MetadataChanged<T> {
    pub changed: bool,
    pub outcome: Retargeted<T>,
}

impl MetadataChange {
    fn action(&self, owner: Owner) -> &'static str {
        match (owner, self) {
            (Owner::Agent, Self::AddLabel(_)) => "agent.label_added",
            (Owner::Agent, Self::RemoveLabel(_)) => "agent.label_removed",
            (Owner::Agent, Self::SetAnnotation(_)) => "agent.annotation_set",
            (Owner::Agent, Self::RemoveAnnotation(_)) => "agent.annotation_removed",
            (Owner::Stack, Self::AddLabel(_)) => "stack.label_added",
            (Owner::Stack, Self::RemoveLabel(_)) => "stack.label_removed",
            (Owner::Stack, Self::SetAnnotation(_)) => "stack.annotation_set",
            (Owner::Stack, Self::RemoveAnnotation(_)) => "stack.annotation_removed",
        }
    }

    /// Applies the change; returns whether anything changed.
    async fn apply(&self, work: &mut Work, owner: Owner, id: Uuid) -> AppResult<bool> {
        let tx = &mut work.tx;
        Ok(match self {
            Self::AddLabel(label) => metadata::add_label(tx, owner, id, label.as_str()).await?,
            Self::RemoveLabel(label) => {
                metadata::remove_label(tx, owner, id, label.as_str()).await?
            }
            Self::SetAnnotation(a) => {
                metadata::set_annotation(tx, owner, id, a.key.as_str(), a.value.as_str()).await?;
                true
            }
            Self::RemoveAnnotation(key) => {
                metadata::remove_annotation(tx, owner, id, key.as_str()).await?
            }
        })
    }

    fn detail(&self) -> serde_json::Value {
        match self {
            Self::AddLabel(l) | Self::RemoveLabel(l) => json!({ "label": l }),
            Self::SetAnnotation(a) => json!({ "key": a.key }),
            Self::RemoveAnnotation(k) => json!({ "key": k }),
        }
    }
}

/// The labels and annotations given inline at creation, deduplicated and sorted.
pub(crate) fn inline_metadata(labels: &[Label], annotations: &Annotations) -> Metadata {
    let mut labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    labels.sort();
    labels.dedup();
    Metadata {
        labels,
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

impl App {
    /// Refuses more labels or annotations than `limits.max_labels` / `limits.max_annotations`.
    pub(crate) fn metadata_within_limits(
        &self,
        labels: usize,
        annotations: usize,
    ) -> AppResult<()> {
        let limits = &self.settings.limits;
        let over = |what: &str, count: usize, max: usize| {
            AppError::invalid(
                "limit_exceeded",
                format!("{count} {what}; at most {max} are allowed per agent or stack"),
            )
        };
        if labels > limits.max_labels {
            return Err(over("labels", labels, limits.max_labels));
        }
        if annotations > limits.max_annotations {
            return Err(over("annotations", annotations, limits.max_annotations));
        }
        Ok(())
    }

    pub async fn change_agent_metadata(
        &self,
        by: Requester,
        id: Uuid,
        change: MetadataChange,
        guard: Guard,
    ) -> AppResult<MetadataChanged<Agent>> {
        by.require_admin("change an agent's labels or annotations")?;
        let mut work = self.begin_guarded(guard).await?;
        if agents::get_row_in(&mut work.tx, id).await?.is_none() {
            return Err(AppError::NotFound("agent"));
        }
        let changed = self
            .write_change(&mut work, by, (Owner::Agent, id), &change)
            .await?;
        if changed {
            reach::refresh_agent(&mut work, id).await?;
        }
        let outcome = match self.settle(work, Subject::Agent(id), guard).await? {
            Settled::Preview(preview) => Retargeted::Preview(preview),
            Settled::Applied => Retargeted::Applied(self.agent(by, id).await?),
        };
        Ok(MetadataChanged { changed, outcome })
    }

    pub async fn change_stack_metadata(
        &self,
        by: Requester,
        id: Uuid,
        change: MetadataChange,
        guard: Guard,
    ) -> AppResult<MetadataChanged<Stack>> {
        self.visible_stack(by, id).await?;
        let mut work = self.begin_guarded(guard).await?;
        if stacks::get_row_in(&mut work.tx, id).await?.is_none() {
            return Err(AppError::NotFound("stack"));
        }
        let changed = self
            .write_change(&mut work, by, (Owner::Stack, id), &change)
            .await?;
        let outcome = match self.settle(work, Subject::Stack(id), guard).await? {
            Settled::Preview(preview) => Retargeted::Preview(preview),
            Settled::Applied => Retargeted::Applied(self.stack(by, id).await?),
        };
        Ok(MetadataChanged { changed, outcome })
    }

    async fn write_change(
        &self,
        work: &mut Work,
        by: Requester,
        (owner, id): (Owner, Uuid),
        change: &MetadataChange,
    ) -> AppResult<bool> {
        let changed = change.apply(work, owner, id).await?;
        let (labels, annotations) = metadata::count(&mut work.tx, owner, id).await?;
        self.metadata_within_limits(labels, annotations)?;
        if changed {
            let kind = match owner {
                Owner::Agent => "agent",
                Owner::Stack => "stack",
            };
            work.audit(by, change.action(owner), (kind, Some(id)), change.detail())
                .await?;
        }
        Ok(changed)
    }
}
