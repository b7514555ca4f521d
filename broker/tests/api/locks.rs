//! PostgreSQL's writer lock (which keeps the audit chain linear) is held only by changes that
//! commit audit entries: reads, dry runs and agent reports never wait for it. (SQLite has one
//! writer at a time by design, so this is a PostgreSQL test.)

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// The advisory lock id the broker's audited writers take.
const WRITER_LOCK: i64 = 0x6272_6f6b_6b72;

#[tokio::test]
async fn reads_dry_runs_and_reports_never_wait_for_the_writer_lock() {
    let app = spawn_app(Backend::Postgres).await;
    let (_, generator) = app.create_generator("ci").await;
    let (agent, agent_pak) = app
        .create_agent("edge", json!({ "labels": ["prod"] }))
        .await;
    let stack = app
        .create_published_stack(&generator, json!({ "name": "s", "labels": ["prod"] }))
        .await;
    let object = app.targeted_stacks(agent, &agent_pak).await;
    assert_eq!(object, [stack.to_string()]);
    let objects = expect_json(
        app.get(
            &format!("/api/v1/stacks/{stack}/deployment-objects"),
            &generator,
        )
        .await,
        200,
    )
    .await;
    let object = objects["items"][0]["id"].as_str().unwrap().to_string();

    // Someone else holds the writer lock.
    let holder = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let mut held = holder.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(WRITER_LOCK)
        .execute(&mut *held)
        .await
        .unwrap();
    let within = |what: &'static str| {
        move |r: Result<reqwest::Response, tokio::time::error::Elapsed>| {
            r.unwrap_or_else(|_| panic!("{what} waited for the writer lock"))
        }
    };
    let limit = Duration::from_secs(5);
    let dry_run = format!("/api/v1/stacks/{stack}?dry_run=true");
    let preview = app.patch(
        &dry_run,
        &generator,
        json!({ "target_expression": "false" }),
    );
    let preview = within("a dry run")(tokio::time::timeout(limit, preview).await);
    assert_eq!(expect_json(preview, 200).await["lost"][0]["name"], "edge");
    let read =
        within("a read")(tokio::time::timeout(limit, app.get("/api/v1/stacks", &generator)).await);
    assert_eq!(read.status(), 200);
    let event = json!({ "idempotency_key": "k", "deployment_object_id": object, "event_type": "apply", "status": "success" });
    let events = format!("/api/v1/agents/{agent}/events");
    let report = app.post(&events, &agent_pak, event);
    let report = within("an agent report")(tokio::time::timeout(limit, report).await);
    assert_eq!(report.status(), 201);

    // An audited change does wait, and goes through once the lock is released.
    let labels = format!("/api/v1/stacks/{stack}/labels");
    let write = app.post(&labels, &generator, json!({ "label": "x" }));
    let release = async {
        tokio::task::yield_now().await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(WRITER_LOCK)
            .execute(&mut *held)
            .await
            .unwrap();
    };
    let (write, ()) = tokio::join!(write, release);
    assert_eq!(write.status(), 201);
}
