//! The client against a real broker on a port-0 listener (SQLite and PostgreSQL), and against a
//! stub that fails on purpose to show which calls are retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brokkr_broker::config::Settings;
use brokkr_broker::startup::Application;
use brokkr_client::{Client, ClientError, RolloutWatch, TargetStateFetch};
use brokkr_types::requests::{CreateAgent, CreateGenerator, CreateStack};
use brokkr_types::{Name, Pak};

/// A broker on a fresh database; returns its URL, the admin PAK and what keeps it alive.
async fn broker(database_url: String) -> (String, Pak, tokio::sync::oneshot::Sender<()>) {
    let mut settings = Settings::default();
    settings.database.url = database_url;
    settings.broker.listen_addr = "127.0.0.1:0".into();
    let app = Application::build(settings).await.unwrap();
    let admin = app.admin_pak.clone().unwrap();
    let url = format!("http://{}", app.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (url, admin, stop)
}

async fn sqlite() -> (
    String,
    Pak,
    tokio::sync::oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("brokkr.db").display());
    let (url, admin, stop) = broker(url).await;
    (url, admin, stop, dir)
}

async fn postgres() -> (String, Pak, tokio::sync::oneshot::Sender<()>) {
    let server = std::env::var("BROKKR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("brokkr_client_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    broker(format!("{base}/{name}")).await
}

async fn exercise(url: &str, admin_pak: Pak) {
    let admin = Client::builder(url).pak(admin_pak.clone()).build().unwrap();
    assert_eq!(admin.whoami().await.unwrap().principal_type, "admin");
    let created = admin
        .create_generator(
            &serde_json::from_value::<CreateGenerator>(
                serde_json::json!({ "name": "ci", "reach": "true" }),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let ci = Client::builder(url)
        .pak(created.pak.clone())
        .build()
        .unwrap();
    let stack = ci
        .create_stack(
            &serde_json::from_value::<CreateStack>(serde_json::json!({ "name": "web" })).unwrap(),
        )
        .await
        .unwrap();
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
    let first = ci
        .append_deployment_object(stack.id, yaml, Some("build-1"))
        .await
        .unwrap();
    let again = ci
        .append_deployment_object(stack.id, yaml, Some("build-1"))
        .await
        .unwrap();
    assert_eq!(
        first.object.id, again.object.id,
        "one object per idempotency key"
    );
    let listed = ci.deployment_objects(stack.id, 10, 0).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    // A refusal is the broker's problem, typed.
    let missing = ci.stack(uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!(
        (missing.status(), missing.code()),
        (Some(404), Some("not_found"))
    );
    assert!(!missing.is_retryable());
    let bad = ci
        .append_deployment_object(stack.id, "kind: [", None)
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(422), "{bad}");
    let ClientError::Problem { problem } = bad else {
        panic!("a problem")
    };
    assert!(!problem.detail.is_empty());

    // The rollout, then a long poll that ends unchanged.
    let RolloutWatch::Changed { rollout, etag } = ci
        .watch_stack_rollout(stack.id, None, Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("the first look is a rollout")
    };
    assert_eq!(rollout.deployment_object_id, first.object.id);
    let unchanged = ci
        .watch_stack_rollout(stack.id, Some(&etag), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(unchanged, RolloutWatch::Unchanged);
    let name = Name::parse("web".to_string()).unwrap();
    assert_eq!(ci.stacks(10, 0).await.unwrap().items[0].name, name.as_str());
    agent_reads_its_state_compressed(url, &admin, &admin_pak, &ci, stack.id).await;
}

/// An agent's client asks for its target state compressed, and reads it.
async fn agent_reads_its_state_compressed(
    url: &str,
    admin: &Client,
    admin_pak: &Pak,
    ci: &Client,
    stack: uuid::Uuid,
) {
    let request = serde_json::json!({ "name": "edge-1", "cluster_name": "c", "labels": ["edge"] });
    let agent = admin
        .create_agent(&serde_json::from_value::<CreateAgent>(request).unwrap())
        .await
        .unwrap();
    ci.add_stack_label(stack, "edge").await.unwrap();
    let edge = Client::builder(url).pak(agent.pak).build().unwrap();
    let TargetStateFetch::Changed(state) =
        edge.target_state(agent.agent.id, None, None).await.unwrap()
    else {
        panic!("a first fetch is a state")
    };
    assert_eq!(state.stacks.len(), 1);
    let metrics = reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .bearer_auth(admin_pak.expose())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("brokkr_target_state_compressed_responses_total 1\n"),
        "the agent's client asked for zstd: {metrics}"
    );
}

#[tokio::test]
async fn typed_calls_against_a_broker_on_sqlite() {
    let (url, admin, _stop, _dir) = sqlite().await;
    exercise(&url, admin).await;
}

#[tokio::test]
async fn typed_calls_against_a_broker_on_postgres() {
    let (url, admin, _stop) = postgres().await;
    exercise(&url, admin).await;
}

/// A server answering 503 to its first `failures` requests, counting them all.
async fn flaky(failures: usize) -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < failures {
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, [("content-type", "application/problem+json")],
                 r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"overloaded","code":"overloaded"}"#)
            } else {
                (axum::http::StatusCode::OK, [("content-type", "application/json")],
                 r#"{"principal_type":"admin","id":null}"#)
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn idempotent_calls_are_retried_and_others_are_not() {
    let (url, seen) = flaky(2).await;
    let client = Client::builder(&url).build().unwrap();
    assert_eq!(client.whoami().await.unwrap().principal_type, "admin");
    assert_eq!(seen.load(Ordering::SeqCst), 3, "two 503s, then the answer");

    let (url, seen) = flaky(1).await;
    let client = Client::builder(&url).build().unwrap();
    let request =
        serde_json::from_value::<CreateGenerator>(serde_json::json!({ "name": "x" })).unwrap();
    let refused = client.create_generator(&request).await.unwrap_err();
    assert_eq!(refused.code(), Some("overloaded"));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "a POST without an idempotency key is sent once"
    );

    let (url, seen) = flaky(10).await;
    let client = Client::builder(&url).attempts(3).build().unwrap();
    assert_eq!(client.whoami().await.unwrap_err().status(), Some(503));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "gives up after its attempts"
    );
}

#[test]
fn bad_settings_are_refused_and_secrets_stay_out_of_debug() {
    assert!(matches!(
        Client::builder("ftp://x").build(),
        Err(ClientError::Settings(_))
    ));
    let bad_ca = Client::builder("https://x")
        .ca_pem(b"not a certificate".to_vec())
        .build();
    assert!(
        matches!(bad_ca, Err(ClientError::Settings(_))),
        "{bad_ca:?}"
    );
    let pak = Pak::new("brokkr_BR0123456789abcdef_0123456789abcdef0123456789abcdef".to_string());
    let builder = Client::builder("https://x").pak(pak.clone());
    assert!(!format!("{builder:?}").contains(pak.expose()));
    let client = builder.build().unwrap();
    assert!(!format!("{client:?}").contains(pak.expose()));
}
