//! Policy plugins at the broker: compiling uploaded modules once per digest, asking plugins to
//! check their configuration, and judging submissions with every plugin bound to the stack.
//! Plugin calls run on the blocking pool: a slow plugin never stalls other requests.

use std::sync::Arc;

use brokkr_policy::plugin::{
    Deployment, GeneratorInfo, Plugin, PluginError, PluginHost, StackInfo, Violation,
    objects_from_documents, pairs,
};
use brokkr_types::plugins::{PolicyFinding, PolicyViolation, TargetPolicy, ViolationObject};
use uuid::Uuid;

use super::{AppError, AppResult};
use crate::db::{Db, plugins};

/// The broker's plugin host.
#[derive(Debug)]
pub struct Policies {
    host: Arc<PluginHost>,
}

/// Converts a plugin's violation to the wire form.
pub fn wire(violation: Violation) -> PolicyViolation {
    PolicyViolation {
        object: violation.object.map(|o| ViolationObject {
            api_version: o.api_version,
            kind: o.kind,
            namespace: o.namespace,
            name: o.name,
        }),
        message: violation.message,
        path: violation.path,
    }
}

/// The stack a submission belongs to, as plugins see it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub stack: StackInfo,
    pub generator: GeneratorInfo,
}

impl Subject {
    pub fn new(stack: &brokkr_types::resources::Stack, generator_name: &str) -> Self {
        Self {
            stack: StackInfo {
                id: stack.id.to_string(),
                name: stack.name.clone(),
                labels: stack.labels.clone(),
                annotations: pairs(&stack.annotations),
            },
            generator: GeneratorInfo {
                id: stack.generator_id.to_string(),
                name: generator_name.to_string(),
            },
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
) -> Result<T, PluginError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(PluginError::Host(format!("plugin task failed: {e}"))))
}

impl Policies {
    pub fn new(limits: brokkr_policy::plugin::Limits) -> Result<Self, PluginError> {
        Ok(Self {
            host: Arc::new(PluginHost::new(limits)?),
        })
    }

    /// Compiles uploaded bytes (refusing anything that is not a validator component).
    pub async fn compile(&self, wasm: Arc<Vec<u8>>) -> Result<Arc<Plugin>, PluginError> {
        let host = self.host.clone();
        blocking(move || host.load(&wasm)).await
    }

    /// The plugin with this digest, compiled from the stored module on first use.
    pub async fn plugin(&self, db: &Db, digest: &str) -> AppResult<Arc<Plugin>> {
        if let Some(found) = self.host.get(digest) {
            return Ok(found);
        }
        let wasm = plugins::module(db, digest)
            .await?
            .ok_or_else(|| AppError::Internal(format!("module {digest} is missing")))?;
        self.compile(Arc::new(wasm))
            .await
            .map_err(|e| AppError::Internal(format!("stored module {digest} does not load: {e}")))
    }

    pub async fn check_config(
        &self,
        plugin: Arc<Plugin>,
        config: String,
    ) -> Result<(), PluginError> {
        let host = self.host.clone();
        blocking(move || host.check_config(&plugin, &config)).await
    }

    pub async fn validate(
        &self,
        plugin: Arc<Plugin>,
        deployment: Arc<Deployment>,
        config: String,
    ) -> Result<Vec<Violation>, PluginError> {
        let host = self.host.clone();
        blocking(move || host.validate(&plugin, &deployment, &config)).await
    }

    /// What a notifier makes of an event (`None`: drop it).
    pub async fn notify(
        &self,
        plugin: Arc<Plugin>,
        event: brokkr_policy::plugin::Event,
        config: String,
    ) -> Result<Option<brokkr_policy::plugin::Outgoing>, PluginError> {
        let host = self.host.clone();
        blocking(move || host.notify(&plugin, &event, &config)).await
    }

    /// Runs `policies` over a deployment object's documents; one finding per policy.
    pub async fn judge(
        &self,
        db: &Db,
        policies: &[TargetPolicy],
        subject: Subject,
        id: Option<Uuid>,
        documents: &[serde_json::Value],
    ) -> AppResult<Vec<PolicyFinding>> {
        let objects = objects_from_documents(documents)
            .map_err(|e| AppError::invalid("invalid_manifest", e.to_string()))?;
        let deployment = Arc::new(Deployment {
            id: id.map(|i| i.to_string()),
            objects,
            stack: subject.stack,
            generator: subject.generator,
            cluster: None,
        });
        let mut findings = Vec::with_capacity(policies.len());
        for policy in policies {
            let plugin = self.plugin(db, &policy.digest).await?;
            let outcome = self
                .validate(plugin, deployment.clone(), policy.config.clone())
                .await;
            let (violations, error) = match outcome {
                Ok(found) => (found.into_iter().map(wire).collect(), None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            findings.push(PolicyFinding {
                plugin_id: policy.plugin_id,
                plugin: policy.plugin.clone(),
                mode: policy.mode,
                violations,
                error,
            });
        }
        Ok(findings)
    }
}

/// Whether a finding blocks the submission: an enforcing plugin found violations or failed.
pub fn blocks(finding: &PolicyFinding) -> bool {
    let passed_cleanly = finding.violations.is_empty() && finding.error.is_none();
    finding.mode.blocks(passed_cleanly)
}

/// `pass`, `violations` or `error`.
pub fn outcome(finding: &PolicyFinding) -> &'static str {
    match (&finding.error, finding.violations.is_empty()) {
        (Some(_), _) => "error",
        (None, false) => "violations",
        (None, true) => "pass",
    }
}
