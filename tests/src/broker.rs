//! A broker running in the test process on a fixed port, which can be stopped and started again.

use std::net::SocketAddr;

use brokkr_broker::config::Settings;
use brokkr_broker::startup::Application;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A broker on a SQLite file in a temporary directory.
#[allow(missing_debug_implementations)]
pub struct TestBroker {
    pub url: String,
    pub admin: String,
    addr: SocketAddr,
    settings: Settings,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A broker with settings of the test's own (`configure` sees the defaults).
    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.database.url = format!("sqlite://{}", dir.path().join("broker.db").display());
        settings.broker.listen_addr = "127.0.0.1:0".into();
        configure(&mut settings);
        let app = Application::build(settings.clone())
            .await
            .expect("broker starts");
        let addr = app.local_addr().unwrap();
        let admin = app.admin_pak.as_ref().unwrap().expose().to_string();
        settings.broker.listen_addr = addr.to_string();
        let mut broker = Self {
            url: format!("http://{addr}"),
            admin,
            addr,
            settings,
            stop: None,
            task: None,
            client: reqwest::Client::new(),
            _dir: dir,
        };
        broker.run(app);
        broker
    }

    fn run(&mut self, app: Application) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            let _ = app
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        }));
    }

    /// Stops serving; the port refuses connections until [`TestBroker::restart`].
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serves again on the same port and database.
    pub async fn restart(&mut self) {
        let app = Application::build(self.settings.clone())
            .await
            .expect("broker restarts");
        assert_eq!(app.local_addr().unwrap(), self.addr);
        self.run(app);
    }

    /// A second broker on the same database (PostgreSQL), serving on a port of its own.
    pub async fn replica(&self) -> Self {
        let mut settings = self.settings.clone();
        settings.broker.listen_addr = "127.0.0.1:0".into();
        let app = Application::build(settings.clone())
            .await
            .expect("the replica starts");
        let addr = app.local_addr().unwrap();
        settings.broker.listen_addr = addr.to_string();
        let mut replica = Self {
            url: format!("http://{addr}"),
            admin: self.admin.clone(),
            addr,
            settings,
            stop: None,
            task: None,
            client: reqwest::Client::new(),
            _dir: tempfile::tempdir().unwrap(),
        };
        replica.run(app);
        replica
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        pak: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(pak);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("broker answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn created(&self, path: &str, pak: &str, body: Value) -> Value {
        let (status, value) = self.call(Method::POST, path, pak, Some(body)).await;
        assert!(
            status == 201 || status == 200,
            "POST {path}: {status} {value}"
        );
        value
    }

    /// A generator reaching every agent; returns its PAK.
    pub async fn generator(&self, name: &str) -> String {
        let body = json!({ "name": name, "reach": "true" });
        let body = self.created("/api/v1/generators", &self.admin, body).await;
        body["pak"].as_str().unwrap().to_string()
    }

    /// An agent; returns `(id, pak)`.
    pub async fn agent(&self, name: &str) -> (Uuid, String) {
        let body = self
            .created(
                "/api/v1/agents",
                &self.admin,
                json!({ "name": name, "cluster_name": "e2e" }),
            )
            .await;
        (
            body["agent"]["id"].as_str().unwrap().parse().unwrap(),
            body["pak"].as_str().unwrap().to_string(),
        )
    }

    /// Sets an agent's status (`active` or `inactive`) as admin.
    pub async fn set_status(&self, agent: Uuid, status: &str) {
        let path = format!("/api/v1/agents/{agent}");
        let body = json!({ "status": status });
        let (code, value) = self
            .call(Method::PATCH, &path, &self.admin, Some(body))
            .await;
        assert_eq!(code, 200, "PATCH {path}: {value}");
    }

    /// A stack targeted at nobody yet; returns its id.
    pub async fn plain_stack(&self, pak: &str, name: &str) -> Uuid {
        let stack = self
            .created("/api/v1/stacks", pak, json!({ "name": name }))
            .await;
        stack["id"].as_str().unwrap().parse().unwrap()
    }

    /// Targets a stack at an agent.
    pub async fn target(&self, pak: &str, agent: Uuid, stack: Uuid) {
        self.created(
            &format!("/api/v1/agents/{agent}/targets"),
            pak,
            json!({ "stack_id": stack }),
        )
        .await;
    }

    /// Uploads a plugin built by scripts/build-plugins.sh and binds it to a stack; returns its id.
    pub async fn enforce_plugin(&self, name: &str, config: Value, stack: Uuid, mode: &str) -> Uuid {
        let path = format!(
            "{}/../plugins/target/wasm32-wasip2/release/{name}.wasm",
            env!("CARGO_MANIFEST_DIR")
        );
        let wasm = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{path}: {e}; build the guests with scripts/build-plugins.sh")
        });
        let form = reqwest::multipart::Form::new()
            .text("name", name.replace('_', "-"))
            .text("config", config.to_string())
            .part(
                "wasm",
                reqwest::multipart::Part::bytes(wasm).file_name("plugin.wasm"),
            );
        let response = self
            .client
            .post(format!("{}/api/v1/plugins", self.url))
            .bearer_auth(&self.admin)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let plugin: Value = response.json().await.unwrap();
        let id: Uuid = plugin["id"].as_str().unwrap().parse().unwrap();
        let binding = json!({ "scope": "stack", "scope_id": stack, "mode": mode });
        self.created(
            &format!("/api/v1/plugins/{id}/bindings"),
            &self.admin,
            binding,
        )
        .await;
        id
    }

    /// A stack targeted at `agent`; returns its id.
    pub async fn stack(&self, pak: &str, name: &str, agent: Uuid) -> Uuid {
        let stack = self
            .created("/api/v1/stacks", pak, json!({ "name": name }))
            .await;
        let id: Uuid = stack["id"].as_str().unwrap().parse().unwrap();
        self.created(
            &format!("/api/v1/agents/{agent}/targets"),
            pak,
            json!({ "stack_id": id }),
        )
        .await;
        id
    }

    /// Publishes a deployment object; returns its id.
    pub async fn publish(&self, pak: &str, stack: Uuid, yaml: &str) -> Uuid {
        let object = self
            .created(
                &format!("/api/v1/stacks/{stack}/deployment-objects"),
                pak,
                json!({ "yaml_content": yaml }),
            )
            .await;
        object["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn untarget(&self, pak: &str, agent: Uuid, stack: Uuid) {
        let (status, _) = self
            .call(
                Method::DELETE,
                &format!("/api/v1/agents/{agent}/targets/{stack}"),
                pak,
                None,
            )
            .await;
        assert_eq!(status, 204);
    }

    pub async fn delete_stack(&self, pak: &str, stack: Uuid) {
        let (status, _) = self
            .call(
                Method::DELETE,
                &format!("/api/v1/stacks/{stack}"),
                pak,
                None,
            )
            .await;
        assert_eq!(status, 204);
    }

    /// Every event the agent reported, oldest first.
    pub async fn events(&self, agent: Uuid) -> Vec<Value> {
        let (status, page) = self
            .call(
                Method::GET,
                &format!("/api/v1/agents/{agent}/events?limit=1000"),
                &self.admin,
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let mut items = page["items"].as_array().cloned().unwrap_or_default();
        items.reverse();
        items
    }

    /// Events about one deployment object of one type.
    pub async fn events_for(&self, agent: Uuid, object: Uuid, event_type: &str) -> Vec<Value> {
        self.events(agent)
            .await
            .into_iter()
            .filter(|e| {
                e["deployment_object_id"] == object.to_string() && e["event_type"] == event_type
            })
            .collect()
    }
}
