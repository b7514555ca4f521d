//! Policy plugins at the agent: the modules of the bound plugins are fetched by digest (and kept
//! on disk), and every plugin covering a stack judges its deployment object, with this
//! cluster's facts, before anything is applied. An enforcing plugin that finds violations, or
//! whose module cannot be had, blocks the apply.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use brokkr_policy::plugin::{
    ClusterInfo, Deployment, GeneratorInfo, PluginError, PluginHost, StackInfo, Violation, digest,
    objects_from_yaml, pairs,
};
use brokkr_types::plugins::TargetPolicy;
use brokkr_types::resources::Agent;
use brokkr_types::target_state::TargetStack;

use crate::broker::BrokerClient;

/// What one plugin said about a stack.
#[derive(Debug, Clone)]
pub struct Finding {
    pub policy: TargetPolicy,
    pub outcome: Result<Vec<Violation>, String>,
}

impl Finding {
    /// Whether this finding stops the apply.
    pub fn blocks(&self) -> bool {
        let passed_cleanly = matches!(&self.outcome, Ok(v) if v.is_empty());
        self.policy.mode.blocks(passed_cleanly)
    }

    /// A readable summary for an event.
    pub fn summary(&self) -> String {
        let mode = self.policy.mode.as_str();
        match &self.outcome {
            Ok(violations) => {
                let listed: Vec<String> = violations
                    .iter()
                    .map(|v| {
                        let at = v
                            .object
                            .as_ref()
                            .map(|o| format!("{} {}: ", o.kind, o.name))
                            .unwrap_or_default();
                        let path = v
                            .path
                            .as_deref()
                            .map(|p| format!(" ({p})"))
                            .unwrap_or_default();
                        format!("{at}{}{path}", v.message)
                    })
                    .collect();
                format!(
                    "policy {} ({mode}): {}",
                    self.policy.plugin,
                    listed.join("; ")
                )
            }
            Err(e) => format!(
                "policy {} ({mode}) could not judge: {e}",
                self.policy.plugin
            ),
        }
    }
}

/// Runs the plugins of the target state.
pub struct Enforcer {
    host: Arc<PluginHost>,
    modules: PathBuf,
    cluster: Option<ClusterInfo>,
}

impl std::fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcer")
            .field("modules", &self.modules)
            .finish_non_exhaustive()
    }
}

impl Enforcer {
    pub fn new(host: PluginHost, modules: PathBuf) -> Self {
        Self {
            host: Arc::new(host),
            modules,
            cluster: None,
        }
    }

    /// The facts of this cluster that plugins see.
    pub fn set_cluster(&mut self, agent: &Agent) {
        self.cluster = Some(ClusterInfo {
            agent_id: agent.id.to_string(),
            agent_name: agent.name.clone(),
            cluster_name: agent.cluster_name.clone(),
            labels: agent.labels.clone(),
            annotations: pairs(&agent.annotations),
        });
    }

    /// Loads a module from bytes (verified against nothing: for modules already trusted).
    pub fn insert(&self, wasm: &[u8]) -> Result<String, PluginError> {
        self.host.load(wasm).map(|p| p.digest.clone())
    }

    /// Makes sure every module the policies name is loaded: from disk, else from the broker.
    pub async fn prepare(&self, broker: &BrokerClient, policies: &[TargetPolicy]) {
        let wanted: HashSet<&str> = policies.iter().map(|p| p.digest.as_str()).collect();
        for wanted in wanted {
            if self.host.get(wanted).is_some() {
                continue;
            }
            let path = self.modules.join(format!("{wanted}.wasm"));
            let bytes = match std::fs::read(&path).ok().filter(|b| digest(b) == wanted) {
                Some(bytes) => bytes,
                None => match broker.module(wanted).await {
                    Ok(bytes) if digest(&bytes) == wanted => {
                        let _ = std::fs::create_dir_all(&self.modules)
                            .and_then(|()| std::fs::write(&path, &bytes));
                        bytes
                    }
                    Ok(_) => {
                        tracing::error!(
                            digest = wanted,
                            "the broker sent a module that does not match its digest"
                        );
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(digest = wanted, error = %e, "cannot fetch a policy module yet");
                        continue;
                    }
                },
            };
            if let Err(e) = self.host.load(&bytes) {
                tracing::error!(digest = wanted, error = %e, "a policy module does not load");
            }
        }
    }

    /// Every plugin of `policies` covering `stack` judges its deployment object.
    pub async fn judge(&self, stack: &TargetStack, policies: &[TargetPolicy]) -> Vec<Finding> {
        let covering: Vec<TargetPolicy> = policies
            .iter()
            .filter(|p| p.applies_to(stack.stack_id, stack.generator_id))
            .cloned()
            .collect();
        if covering.is_empty() {
            return Vec::new();
        }
        let object = &stack.deployment_object;
        let objects = match objects_from_yaml(&object.yaml_content) {
            Ok(objects) => objects,
            Err(e) => {
                return covering
                    .into_iter()
                    .map(|policy| Finding {
                        policy,
                        outcome: Err(e.to_string()),
                    })
                    .collect();
            }
        };
        let deployment = Arc::new(Deployment {
            id: Some(object.id.to_string()),
            objects,
            stack: StackInfo {
                id: stack.stack_id.to_string(),
                name: stack.stack_name.clone(),
                labels: Vec::new(),
                annotations: Vec::new(),
            },
            generator: GeneratorInfo {
                id: stack.generator_id.to_string(),
                name: String::new(),
            },
            cluster: self.cluster.clone(),
        });
        let mut findings = Vec::with_capacity(covering.len());
        for policy in covering {
            let outcome = self.run(&policy, deployment.clone()).await;
            findings.push(Finding { policy, outcome });
        }
        findings
    }

    async fn run(
        &self,
        policy: &TargetPolicy,
        deployment: Arc<Deployment>,
    ) -> Result<Vec<Violation>, String> {
        let plugin = self
            .host
            .get(&policy.digest)
            .ok_or_else(|| format!("module {} is not available", policy.digest))?;
        let (host, config) = (self.host.clone(), policy.config.clone());
        let call =
            tokio::task::spawn_blocking(move || host.validate(&plugin, &deployment, &config));
        match call.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the plugin task failed: {e}")),
        }
    }
}
