//! Rotation and deletion on one replica invalidate the authentication cache of every replica
//! (PostgreSQL), and CLI rotation is honoured after the TTL or at once after a reload.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

/// Polls until `path` answers `status` for `pak`, failing after `deadline`.
async fn wait_for_status(app: &TestApp, path: &str, pak: &str, status: u16, deadline: Duration) {
    let start = Instant::now();
    loop {
        let actual = app.get(path, pak).await.status().as_u16();
        if actual == status {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "{path} still answers {actual} after {deadline:?}"
        );
        tokio::task::yield_now().await;
    }
}

fn long_ttl(url: &str) -> brokkr_broker::config::Settings {
    let mut settings = settings_for(url);
    settings.broker.auth_cache_ttl_seconds = 3600;
    settings
}

#[tokio::test]
async fn rotation_on_one_replica_reaches_the_other() {
    let (url, _) = fresh_database(Backend::Postgres).await;
    let a = spawn_app_with(long_ttl(&url), None).await;
    let b = spawn_app_with(long_ttl(&url), None).await;
    let (generator, old) = a.create_generator("ci").await;
    let (agent, agent_pak) = a.create_agent("edge", json!({})).await;
    let path = format!("/api/v1/generators/{generator}");
    let agent_path = format!("/api/v1/agents/{agent}");
    // Both keys are now cached on replica b for an hour.
    assert_eq!(b.get(&path, &old).await.status(), 200);
    assert_eq!(b.get(&agent_path, &agent_pak).await.status(), 200);

    let rotated = expect_json(
        a.post(&format!("{path}/rotate-pak"), &old, json!({})).await,
        200,
    )
    .await;
    assert_eq!(a.delete(&agent_path, &a.admin).await.status(), 204);
    wait_for_status(&b, &path, &old, 401, Duration::from_secs(10)).await;
    wait_for_status(&b, &agent_path, &agent_pak, 401, Duration::from_secs(10)).await;
    assert_eq!(
        b.get(&path, rotated["pak"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().trim().to_string()
}

both_backends!(cli_rotation_honours_ttl_and_reload, |app| {
    let mut settings = long_ttl(&app.database_url);
    settings.broker.listen_addr = "127.0.0.1:0".into();
    let first = app;
    let app = spawn_app_with(settings, None)
        .await
        .with_admin(&first.admin);
    let (generator, old) = app.create_generator("ci").await;
    let path = format!("/api/v1/generators/{generator}");
    assert_eq!(app.get(&path, &old).await.status(), 200);

    let url = app.database_url.clone();
    let id = generator.to_string();
    let out =
        tokio::task::spawn_blocking(move || run_cli(&url, &["rotate", "generator", "--uuid", &id]))
            .await
            .unwrap();
    let new = last_line(&out);
    assert!(
        new.starts_with("brokkr_BR"),
        "the PAK alone on the last line: {out:?}"
    );
    assert_eq!(app.get(&path, &new).await.status(), 200);

    if app.database_url.starts_with("postgres") {
        // PostgreSQL: the CLI's notification reaches the running broker at once.
        wait_for_status(&app, &path, &old, 401, Duration::from_secs(10)).await;
    } else {
        assert_eq!(
            app.get(&path, &old).await.status(),
            200,
            "still cached until the TTL"
        );
    }
    let reload = app
        .post("/api/v1/admin/config/reload", &app.admin, json!({}))
        .await;
    assert_eq!(expect_json(reload, 200).await["auth_cache_flushed"], true);
    expect_problem(app.get(&path, &old).await, 401, "invalid_pak").await;
});

both_backends!(cli_creates_principals_and_rotates_admin, |app| {
    let url = app.database_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let agent = run_cli(
            &url,
            &["create", "agent", "--name", "edge", "--cluster-name", "c1"],
        );
        let generator = run_cli(&url, &["create", "generator", "--name", "ci"]);
        let admin = run_cli(&url, &["rotate", "admin"]);
        (agent, generator, admin)
    })
    .await
    .unwrap();
    let (agent, generator, admin) = (last_line(&out.0), last_line(&out.1), last_line(&out.2));
    assert_eq!(app.get("/api/v1/stacks", &generator).await.status(), 200);
    let reload = app
        .post("/api/v1/admin/config/reload", &admin, json!({}))
        .await;
    assert_eq!(reload.status(), 200, "the rotated admin PAK works");
    expect_problem(
        app.get("/api/v1/generators", &app.admin).await,
        401,
        "invalid_pak",
    )
    .await;
    let agents = expect_json(app.get("/api/v1/agents", &admin).await, 200).await;
    assert_eq!(agents["items"][0]["name"], "edge");
    let id = agents["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/agents/{id}"), &agent)
            .await
            .status(),
        200
    );
});
