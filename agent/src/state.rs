//! What the agent remembers across restarts: the last target state and its ETag, what it
//! applied per stack, every kind it ever applied (the prune search space), the events it has
//! delivered and those still waiting. Written atomically to a file with mode 0600 (it holds
//! manifests, which may contain Secrets).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use brokkr_types::requests::NewAgentEvent;
use brokkr_types::target_state::TargetState;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::objects::{KindRef, ObjectRef};

/// What was applied for one stack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StackRecord {
    /// The deployment object whose objects are in the cluster (after a complete apply).
    pub applied: Option<Uuid>,
    /// The objects of that apply.
    pub objects: BTreeSet<ObjectRef>,
    /// The deployment object that failed to apply, with the reason.
    pub failing: Option<(Uuid, String)>,
    /// The last health verdict reported, as `state: message`.
    pub health: Option<String>,
    /// How many health verdicts were reported for the applied deployment object.
    #[serde(default)]
    pub health_reports: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Persisted {
    pub agent_id: Option<Uuid>,
    /// The PAK this agent received when it enrolled (the file is readable by its owner only).
    #[serde(default)]
    pub pak: Option<brokkr_types::Pak>,
    pub target: Option<TargetState>,
    pub stacks: BTreeMap<Uuid, StackRecord>,
    pub kinds: BTreeSet<KindRef>,
    /// Idempotency keys of events already delivered.
    pub delivered: BTreeSet<String>,
    /// Events queued but not yet acknowledged by the broker.
    pub outbox: Vec<NewAgentEvent>,
}

impl Persisted {
    pub fn etag(&self) -> Option<&str> {
        self.target.as_ref().map(|t| t.etag.as_str())
    }

    /// Queues an event unless one with its key was delivered or is already queued.
    pub fn queue(&mut self, event: NewAgentEvent) {
        let key = event.idempotency_key.as_str();
        if self.delivered.contains(key)
            || self
                .outbox
                .iter()
                .any(|e| e.idempotency_key.as_str() == key)
        {
            return;
        }
        self.outbox.push(event);
    }
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid agent state file: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
}

/// The state file.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn io(&self, source: std::io::Error) -> StateError {
        StateError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Reads the state; a missing file is a fresh start.
    pub fn load(&self) -> Result<Persisted, StateError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                path: self.path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Persisted::default()),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Writes the state to a temporary file and renames it over the old one.
    pub fn save(&self, state: &Persisted) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(state).map_err(|source| StateError::Corrupt {
            path: self.path.display().to_string(),
            source,
        })?;
        let tmp = temporary_path(&self.path);
        write_private(&tmp, &bytes).map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use brokkr_types::IdempotencyKey;
    use brokkr_types::resources::{EventStatus, EventType};

    use super::*;

    fn event(key: &str) -> NewAgentEvent {
        NewAgentEvent {
            idempotency_key: IdempotencyKey::parse(key).unwrap(),
            deployment_object_id: None,
            event_type: EventType::Apply,
            status: EventStatus::Success,
            message: None,
            occurred_at: None,
        }
    }

    #[test]
    fn round_trips_and_is_private() {
        let dir = std::env::temp_dir().join(format!("brokkr-agent-state-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = StateFile::new(dir.join("state.json"));
        assert!(
            file.load().unwrap().target.is_none(),
            "a missing file is a fresh start"
        );
        let mut state = Persisted {
            agent_id: Some(Uuid::new_v4()),
            ..Persisted::default()
        };
        state.queue(event("apply:1"));
        file.save(&state).unwrap();
        let back = file.load().unwrap();
        assert_eq!(back.agent_id, state.agent_id);
        assert_eq!(back.outbox.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("state.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn events_are_queued_once() {
        let mut state = Persisted::default();
        state.queue(event("k"));
        state.queue(event("k"));
        assert_eq!(state.outbox.len(), 1);
        state.outbox.clear();
        state.delivered.insert("k".into());
        state.queue(event("k"));
        assert!(
            state.outbox.is_empty(),
            "a delivered event is never queued again"
        );
    }
}
