//! `spawn_app` and request helpers shared by the API tests.

use std::time::Duration;

use brokkr_broker::config::{EncryptionKeySetting, Settings};
use brokkr_broker::startup::Application;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Generates `mod $name { sqlite, postgres }`, running `$body(app)` on each backend.
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::helpers::TestApp) $body

            #[tokio::test]
            async fn sqlite() {
                run($crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await).await
            }

            #[tokio::test]
            async fn postgres() {
                run($crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await).await
            }
        }
    };
}
pub(crate) use both_backends;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What [`TestApp::labelled_stack`] creates: PAKs, the stack and the agent's target-state path.
pub struct LabelledStack {
    pub generator: String,
    pub agent_pak: String,
    pub stack: Uuid,
    pub target_state: String,
}

/// A running broker with its own database.
pub struct TestApp {
    pub address: String,
    pub admin: String,
    pub database_url: String,
    pub client: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
    /// Dropped with the `TestApp`: the broker shuts down.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("BROKKR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Creates an empty database and returns its URL (and the folder holding it, for SQLite).
pub async fn fresh_database(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("brokkr.db").display());
            (url, Some(dir))
        }
        Backend::Postgres => {
            let admin_url = postgres_admin_url();
            let name = format!("brokkr_test_{}", Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required by the test suite and could not be reached at {admin_url}: {e}. \
                     Start it (see README: Testing) or set BROKKR_TEST_POSTGRES_URL."
                )
            });
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin_url);
            (format!("{base}/{name}"), None)
        }
    }
}

pub fn settings_for(database_url: &str) -> Settings {
    let mut settings = Settings::default();
    settings.database.url = database_url.to_string();
    settings.database.max_connections = 5;
    settings.broker.listen_addr = "127.0.0.1:0".into();
    // The matrix presents hundreds of bad PAKs from one address; throttling has its own test.
    settings.broker.auth_failures_per_minute = 0;
    // Webhooks: a key ring, receivers on this machine, quick retries.
    settings.webhooks.encryption_keys = vec![test_key("test-key")];
    settings.webhooks.allowed_cidrs = vec!["127.0.0.0/8".into()];
    settings.webhooks.retry_base_ms = 50;
    settings.webhooks.retry_max_seconds = 2;
    settings
}

/// A webhook encryption key with a fixed id, active (its material derives from the id).
pub fn test_key(id: &str) -> EncryptionKeySetting {
    use base64::Engine as _;
    use sha2::Digest as _;
    let material = sha2::Sha256::digest(id.as_bytes());
    EncryptionKeySetting {
        id: id.to_string(),
        key: base64::engine::general_purpose::STANDARD.encode(material),
        active: true,
    }
}

/// Starts a broker on a fresh database.
pub async fn spawn_app(backend: Backend) -> TestApp {
    let (url, dir) = fresh_database(backend).await;
    spawn_app_with(settings_for(&url), dir).await
}

/// Starts a broker with explicit settings (the database may already hold data).
pub async fn spawn_app_with(settings: Settings, dir: Option<tempfile::TempDir>) -> TestApp {
    // reqwest is built without a default TLS provider in this workspace; pick ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let database_url = settings.database.url.clone();
    let app = Application::build(settings).await.expect("broker starts");
    let admin = app
        .admin_pak
        .as_ref()
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    let address = format!("http://{}", app.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        admin,
        database_url,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        _dir: dir,
        stop: Some(stop),
        served: Some(served),
    }
}

impl TestApp {
    /// Runs one statement straight against this broker's database, bypassing the API.
    pub async fn execute_sql(&self, sql: &'static str) -> Result<(), sqlx::Error> {
        use brokkr_broker::db::Db;
        let db = Db::connect(&self.database_url, 1)
            .await
            .expect("the test database accepts a connection");
        match &db {
            Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str, pak: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match pak {
            Some(pak) => builder.header("Authorization", format!("Bearer {pak}")),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, pak: &str) -> Response {
        self.request(Method::GET, path, Some(pak))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, pak: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(pak))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, pak: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(pak))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str, pak: &str) -> Response {
        self.request(Method::DELETE, path, Some(pak))
            .send()
            .await
            .unwrap()
    }

    /// Creates a generator that reaches every agent, as admin; returns `(id, pak)`.
    pub async fn create_generator(&self, name: &str) -> (Uuid, String) {
        self.create_generator_reaching(name, "true").await
    }

    /// Creates a generator with the given reach, as admin; returns `(id, pak)`.
    pub async fn create_generator_reaching(&self, name: &str, reach: &str) -> (Uuid, String) {
        let body = json!({ "name": name, "reach": reach });
        let body = expect_json(
            self.post("/api/v1/generators", &self.admin, body).await,
            201,
        )
        .await;
        (
            id_of(&body["generator"]),
            body["pak"].as_str().unwrap().to_string(),
        )
    }

    /// Creates an agent as admin; returns `(id, pak)`.
    pub async fn create_agent(&self, name: &str, extra: Value) -> (Uuid, String) {
        let mut body = json!({ "name": name, "cluster_name": format!("{name}-cluster") });
        if let (Some(target), Value::Object(more)) = (body.as_object_mut(), extra) {
            target.extend(more);
        }
        let body = expect_json(self.post("/api/v1/agents", &self.admin, body).await, 201).await;
        (
            id_of(&body["agent"]),
            body["pak"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a stack with a generator's PAK; returns its id.
    pub async fn create_stack(&self, pak: &str, body: Value) -> Uuid {
        id_of(&expect_json(self.post("/api/v1/stacks", pak, body).await, 201).await)
    }

    /// Creates a stack with one deployment object (so it shows in target states).
    pub async fn create_published_stack(&self, pak: &str, body: Value) -> Uuid {
        let stack = self.create_stack(pak, body).await;
        self.add_object(pak, stack, CONFIG_MAP).await;
        stack
    }

    /// Appends a deployment object; returns the stored object.
    pub async fn add_object(&self, pak: &str, stack: Uuid, yaml: &str) -> Value {
        let path = format!("/api/v1/stacks/{stack}/deployment-objects");
        expect_json(
            self.post(&path, pak, json!({ "yaml_content": yaml })).await,
            201,
        )
        .await
    }

    /// Targets a stack at an agent.
    pub async fn target(&self, pak: &str, agent: Uuid, stack: Uuid) {
        let path = format!("/api/v1/agents/{agent}/targets");
        let response = self.post(&path, pak, json!({ "stack_id": stack })).await;
        assert!(
            response.status().is_success(),
            "target: {}",
            response.status()
        );
    }

    /// The same broker, told the admin PAK of an earlier start on its database.
    /// The ETag of the current answer to `path`.
    pub async fn etag_of(&self, path: &str, pak: &str) -> String {
        let response = self.get(path, pak).await;
        let etag = response.headers()["etag"].to_str().unwrap();
        etag.to_string()
    }

    /// A GET that carries `If-None-Match: etag`, ready to send.
    pub fn get_if_none_match(&self, path: &str, pak: &str, etag: &str) -> RequestBuilder {
        self.request(Method::GET, path, Some(pak))
            .header("If-None-Match", etag)
    }

    /// A generator and a `prod`-labelled agent whose `prod`-labelled stack reaches it by label.
    pub async fn labelled_stack(&self) -> LabelledStack {
        let (_, generator) = self.create_generator("ci").await;
        let (agent, agent_pak) = self
            .create_agent("edge", json!({ "labels": ["prod"] }))
            .await;
        let stack = self
            .create_stack(&generator, json!({ "name": "s", "labels": ["prod"] }))
            .await;
        LabelledStack {
            generator,
            agent_pak,
            stack,
            target_state: format!("/api/v1/agents/{agent}/target-state"),
        }
    }

    /// The stack ids in an agent's target state, sorted.
    pub async fn targeted_stacks(&self, agent: Uuid, pak: &str) -> Vec<String> {
        let path = format!("/api/v1/agents/{agent}/target-state");
        let state = expect_json(self.get(&path, pak).await, 200).await;
        let mut ids: Vec<String> = state["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stack_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The same database served by a new broker whose settings `configure` changed; this one
    /// stops (the database's folder moves to the new one).
    pub async fn respawn(mut self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = settings_for(&self.database_url);
        configure(&mut settings);
        self.stop.take();
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
        spawn_app_with(settings, self._dir.take())
            .await
            .with_admin(&self.admin)
    }

    pub fn with_admin(mut self, admin: &str) -> Self {
        self.admin = admin.to_string();
        self
    }

    pub async fn status_of(&self, method: Method, path: &str, pak: &str) -> StatusCode {
        self.request(method, path, Some(pak))
            .send()
            .await
            .unwrap()
            .status()
    }
}

pub fn id_of(value: &Value) -> Uuid {
    value["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// Polls `probe` until it yields a value (at most 30 s): for state the broker reaches in the
/// background, such as deliveries.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Asserts an RFC 7807 problem with the given status and code; returns it.
pub async fn expect_problem(response: Response, status: u16, code: &str) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let body = expect_json(response, status).await;
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
    assert_eq!(
        body["request_id"].as_str().map(str::to_string),
        request_id,
        "request id in body and header"
    );
    body
}

/// A guest plugin built by scripts/build-plugins.sh.
pub fn plugin_wasm(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../plugins/target/wasm32-wasip2/release/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; build the guests with scripts/build-plugins.sh"))
}

impl TestApp {
    /// Uploads a plugin as admin; returns the response.
    pub async fn upload_plugin(
        &self,
        name: &str,
        wasm: Vec<u8>,
        config: Option<Value>,
    ) -> Response {
        let mut form = reqwest::multipart::Form::new()
            .text("name", name.to_string())
            .part(
                "wasm",
                reqwest::multipart::Part::bytes(wasm).file_name("plugin.wasm"),
            );
        if let Some(config) = config {
            form = form.text("config", config.to_string());
        }
        self.request(Method::POST, "/api/v1/plugins", Some(&self.admin))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }
}

pub const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: default\ndata:\n  key: value\n";

/// Runs `brokkr-broker <args>` on a database; returns (success, stdout, stderr).
pub fn cli(database_url: &str, args: &[&str]) -> (bool, String, String) {
    cli_with(database_url, args, &[])
}

/// [`cli`] with more environment variables.
pub fn cli_with(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_brokkr-broker"))
        .args(args)
        .env("BROKKR__DATABASE__URL", database_url)
        .env("BROKKR__LOG__LEVEL", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("brokkr-broker runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.success(), stdout, stderr)
}

/// Runs `brokkr-broker <args>` on a database, asserting success; returns stdout.
pub fn run_cli(database_url: &str, args: &[&str]) -> String {
    run_cli_with(database_url, args, &[])
}

/// [`run_cli`] with more environment variables.
pub fn run_cli_with(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let (ok, stdout, stderr) = cli_with(database_url, args, env);
    assert!(ok, "brokkr-broker {args:?} failed: {stderr}");
    stdout
}
