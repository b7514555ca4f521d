//! The broker's resources as typed calls.

use std::time::Duration;

use brokkr_types::requests::{CreateAgent, CreateGenerator, CreateStack};
use brokkr_types::resources::{
    Agent, AgentReach, AgentWithPak, AuditLogEntry, CreatedDeploymentObject, DeploymentObject,
    DeploymentObjectSummary, Generator, GeneratorWithPak, Page, Stack, StackVerdict, WhoAmI,
};
use brokkr_types::rollouts::{FleetAgent, Rollout};
use brokkr_types::work_orders::{CreateWorkOrder, WorkOrder};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

use crate::{Call, Client, ClientError, ClientResult};

/// What a rollout long poll found.
#[derive(Debug, Clone, PartialEq)]
pub enum RolloutWatch {
    /// The rollout (changed, or the first look) and its ETag.
    Changed { rollout: Box<Rollout>, etag: String },
    /// Still as `seen` when the wait ended.
    Unchanged,
}

pub(crate) fn body<T: serde::Serialize>(value: &T) -> ClientResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| ClientError::Decode(e.to_string()))
}

impl Client {
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: String) -> ClientResult<T> {
        self.send(Call::new(Method::GET, path)).await?.json()
    }

    pub(crate) async fn page<T: DeserializeOwned>(
        &self,
        path: String,
        limit: u32,
        offset: u64,
    ) -> ClientResult<Page<T>> {
        let mut call = Call::new(Method::GET, path);
        call.query = vec![
            ("limit".into(), limit.to_string()),
            ("offset".into(), offset.to_string()),
        ];
        self.send(call).await?.json()
    }

    /// Who the PAK belongs to.
    pub async fn whoami(&self) -> ClientResult<WhoAmI> {
        self.get_json("/api/v1/whoami".into()).await
    }

    pub async fn create_generator(
        &self,
        request: &CreateGenerator,
    ) -> ClientResult<GeneratorWithPak> {
        let mut call = Call::new(Method::POST, "/api/v1/generators");
        call.body = Some(body(request)?);
        self.send(call).await?.json()
    }

    pub async fn generators(&self, limit: u32, offset: u64) -> ClientResult<Page<Generator>> {
        self.page("/api/v1/generators".into(), limit, offset).await
    }

    pub async fn generator(&self, id: Uuid) -> ClientResult<Generator> {
        self.get_json(format!("/api/v1/generators/{id}")).await
    }

    /// Registers an agent (admin); the answer carries its PAK, shown once.
    pub async fn create_agent(&self, request: &CreateAgent) -> ClientResult<AgentWithPak> {
        let mut call = Call::new(Method::POST, "/api/v1/agents");
        call.body = Some(body(request)?);
        self.send(call).await?.json()
    }

    pub async fn agent(&self, id: Uuid) -> ClientResult<Agent> {
        self.get_json(format!("/api/v1/agents/{id}")).await
    }

    pub async fn agents(&self, limit: u32, offset: u64) -> ClientResult<Page<Agent>> {
        self.page("/api/v1/agents".into(), limit, offset).await
    }

    pub async fn create_stack(&self, request: &CreateStack) -> ClientResult<Stack> {
        let mut call = Call::new(Method::POST, "/api/v1/stacks");
        call.body = Some(body(request)?);
        self.send(call).await?.json()
    }

    pub async fn stacks(&self, limit: u32, offset: u64) -> ClientResult<Page<Stack>> {
        self.page("/api/v1/stacks".into(), limit, offset).await
    }

    pub async fn stack(&self, id: Uuid) -> ClientResult<Stack> {
        self.get_json(format!("/api/v1/stacks/{id}")).await
    }

    pub async fn deployment_objects(
        &self,
        stack: Uuid,
        limit: u32,
        offset: u64,
    ) -> ClientResult<Page<DeploymentObjectSummary>> {
        self.page(
            format!("/api/v1/stacks/{stack}/deployment-objects"),
            limit,
            offset,
        )
        .await
    }

    pub async fn deployment_object(&self, id: Uuid) -> ClientResult<DeploymentObject> {
        self.get_json(format!("/api/v1/deployment-objects/{id}"))
            .await
    }

    /// Appends a deployment object. With an `idempotency_key`, a repeat (a retry after a lost
    /// answer, say) returns the object the first call stored instead of a second one, so the
    /// call is retried like any idempotent one.
    pub async fn append_deployment_object(
        &self,
        stack: Uuid,
        yaml: &str,
        idempotency_key: Option<&str>,
    ) -> ClientResult<CreatedDeploymentObject> {
        let mut call = Call::new(
            Method::POST,
            format!("/api/v1/stacks/{stack}/deployment-objects"),
        );
        call.body = Some(json!({ "yaml_content": yaml }));
        if let Some(key) = idempotency_key {
            call.headers.push(("idempotency-key", key.to_string()));
        }
        self.send(call).await?.json()
    }

    /// The live stack of this name the caller may see (a generator: its own); `None` when
    /// there is none. Names are unique per generator, so an admin may find several: an error.
    pub async fn stack_named(&self, name: &str) -> ClientResult<Option<Stack>> {
        let mut call = Call::new(Method::GET, "/api/v1/stacks");
        call.query = vec![
            ("name".into(), name.to_string()),
            ("limit".into(), "2".into()),
        ];
        let mut page: Page<Stack> = self.send(call).await?.json()?;
        if page.items.len() > 1 {
            return Err(ClientError::Ambiguous(format!(
                "several generators have a stack named {name:?}: name it by id"
            )));
        }
        Ok(page.items.pop())
    }

    /// Adds a label to a stack (a change that may retarget it).
    pub async fn add_stack_label(&self, stack: Uuid, label: &str) -> ClientResult<Stack> {
        let mut call = Call::new(Method::POST, format!("/api/v1/stacks/{stack}/labels"));
        call.body = Some(json!({ "label": label }));
        self.send(call).await?.json()
    }

    /// Sets an annotation of a stack (a change that may retarget it).
    pub async fn set_stack_annotation(
        &self,
        stack: Uuid,
        key: &str,
        value: &str,
    ) -> ClientResult<Stack> {
        let mut call = Call::new(Method::POST, format!("/api/v1/stacks/{stack}/annotations"));
        call.body = Some(json!({ "key": key, "value": value }));
        self.send(call).await?.json()
    }

    /// The stack's newest rollout. With `seen` (an ETag from an earlier answer) and a `wait`,
    /// the broker holds the request until the rollout differs from it or the wait ends.
    pub async fn watch_stack_rollout(
        &self,
        stack: Uuid,
        seen: Option<&str>,
        wait: Duration,
    ) -> ClientResult<RolloutWatch> {
        self.watch_rollout(format!("/api/v1/stacks/{stack}/rollout"), seen, wait)
            .await
    }

    /// Steers the stack's staged rollout: `pause`, `resume`, `promote` (pass the current wave
    /// now) or `abort` (roll back now); answers the rollout as it then stands.
    pub async fn steer_rollout(&self, stack: Uuid, action: &str) -> ClientResult<Rollout> {
        let path = format!("/api/v1/stacks/{stack}/rollout/{action}");
        let mut call = Call::new(Method::POST, path);
        call.body = Some(json!({}));
        self.send(call).await?.json()
    }

    /// One deployment object's rollout, long-polled like [`Client::watch_stack_rollout`].
    pub async fn watch_deployment_object_rollout(
        &self,
        object: Uuid,
        seen: Option<&str>,
        wait: Duration,
    ) -> ClientResult<RolloutWatch> {
        self.watch_rollout(
            format!("/api/v1/deployment-objects/{object}/rollout"),
            seen,
            wait,
        )
        .await
    }

    async fn watch_rollout(
        &self,
        path: String,
        seen: Option<&str>,
        wait: Duration,
    ) -> ClientResult<RolloutWatch> {
        let mut call = Call::new(Method::GET, path);
        if let Some(etag) = seen {
            call.headers.push(("if-none-match", etag.to_string()));
            call.query = vec![("wait".into(), wait.as_secs().to_string())];
            call.timeout = Some(wait + Duration::from_secs(30));
        }
        let answer = self.send(call).await?;
        let etag = answer.etag.clone().unwrap_or_default();
        if answer.status == StatusCode::NOT_MODIFIED || seen == Some(etag.as_str()) {
            return Ok(RolloutWatch::Unchanged);
        }
        Ok(RolloutWatch::Changed {
            rollout: Box::new(answer.json()?),
            etag,
        })
    }

    /// One page of the fleet view; `expression` is CEL over `agent`.
    pub async fn fleet(
        &self,
        expression: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> ClientResult<Page<FleetAgent>> {
        let mut call = Call::new(Method::GET, "/api/v1/fleet");
        call.query = vec![
            ("limit".into(), limit.to_string()),
            ("offset".into(), offset.to_string()),
        ];
        if let Some(expression) = expression {
            call.query
                .push(("expression".into(), expression.to_string()));
        }
        self.send(call).await?.json()
    }

    /// Why each stack does or does not reach an agent.
    pub async fn explain_agent(
        &self,
        agent: Uuid,
        limit: u32,
        offset: u64,
    ) -> ClientResult<Page<StackVerdict>> {
        self.page(format!("/api/v1/agents/{agent}/targeting"), limit, offset)
            .await
    }

    /// Which agents a stack reaches, and by which rules.
    pub async fn explain_stack(
        &self,
        stack: Uuid,
        limit: u32,
        offset: u64,
    ) -> ClientResult<Page<AgentReach>> {
        self.page(format!("/api/v1/stacks/{stack}/targeting"), limit, offset)
            .await
    }

    /// The audit log, newest first (admin).
    pub async fn audit_logs(&self, limit: u32, offset: u64) -> ClientResult<Page<AuditLogEntry>> {
        self.page("/api/v1/admin/audit-logs".into(), limit, offset)
            .await
    }

    pub async fn create_work_order(&self, request: &CreateWorkOrder) -> ClientResult<WorkOrder> {
        let mut call = Call::new(Method::POST, "/api/v1/work-orders");
        call.body = Some(body(request)?);
        self.send(call).await?.json()
    }

    pub async fn work_orders(&self, limit: u32, offset: u64) -> ClientResult<Page<WorkOrder>> {
        self.page("/api/v1/work-orders".into(), limit, offset).await
    }

    pub async fn work_order(&self, id: Uuid) -> ClientResult<WorkOrder> {
        self.get_json(format!("/api/v1/work-orders/{id}")).await
    }
}
