//! The audit log: who did what, filtered by action (with `pak.*` prefixes) and actor.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

both_backends!(pak_operations_are_recorded_and_filtered, |app| {
    let (generator, pak) = app.create_generator("ci").await;
    app.post(
        &format!("/api/v1/generators/{generator}/rotate-pak"),
        &pak,
        json!({}),
    )
    .await;
    let (agent, _) = app.create_agent("edge", json!({})).await;

    let paks = expect_json(
        app.get("/api/v1/admin/audit-logs?action=pak.*", &app.admin)
            .await,
        200,
    )
    .await;
    let actions: Vec<_> = paks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    // Newest first: agent PAK created, generator PAK rotated, generator PAK created, admin PAK created.
    assert_eq!(
        actions,
        ["pak.created", "pak.rotated", "pak.created", "pak.created"]
    );

    let rotated = expect_json(
        app.get("/api/v1/admin/audit-logs?action=pak.rotated", &app.admin)
            .await,
        200,
    )
    .await;
    let entry = &rotated["items"][0];
    assert_eq!(
        entry["actor_type"], "generator",
        "the real actor is recorded"
    );
    assert_eq!(entry["actor_id"], generator.to_string());
    assert_eq!(entry["resource_id"], generator.to_string());

    let path = format!("/api/v1/admin/audit-logs?actor_type=generator&actor_id={generator}");
    let by_actor = expect_json(app.get(&path, &app.admin).await, 200).await;
    assert_eq!(by_actor["items"].as_array().unwrap().len(), 1);

    let by_admin = expect_json(
        app.get(
            "/api/v1/admin/audit-logs?actor_type=admin&action=agent.*",
            &app.admin,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(by_admin["items"][0]["resource_id"], agent.to_string());

    let page = expect_json(
        app.get("/api/v1/admin/audit-logs?limit=2&offset=1", &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_offset"], 3);

    // `_` and `%` are literal characters, not wildcards.
    let literal = expect_json(
        app.get("/api/v1/admin/audit-logs?action=pak_%25", &app.admin)
            .await,
        200,
    )
    .await;
    assert!(literal["items"].as_array().unwrap().is_empty());
});

both_backends!(the_log_is_append_only, |app| {
    app.create_generator("ci").await;
    let update = app.execute_sql("UPDATE audit_logs SET action = 'x'").await;
    let delete = app.execute_sql("DELETE FROM audit_logs").await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    assert!(delete.unwrap_err().to_string().contains("append-only"));
});

/// Runs `brokkr-broker audit verify`; returns (success, stdout + stderr).
fn verify(database_url: &str) -> (bool, String) {
    let (ok, stdout, stderr) = cli(database_url, &["audit", "verify"]);
    (ok, format!("{stdout}{stderr}"))
}

/// Runs a CLI command off the async workers; returns its stdout, asserting success.
async fn cli_ok(database_url: &str, args: &'static [&'static str]) -> String {
    let url = database_url.to_string();
    tokio::task::spawn_blocking(move || run_cli(&url, args))
        .await
        .unwrap()
}

both_backends!(cli_created_principals_are_audited_and_targeted, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let stack = app
        .create_stack(
            &generator,
            json!({ "name": "s", "target_expression": "agent.cluster_name == 'edge-c'" }),
        )
        .await;
    app.add_object(&generator, stack, CONFIG_MAP).await;
    let args = &[
        "create",
        "agent",
        "--name",
        "edge",
        "--cluster-name",
        "edge-c",
    ];
    let printed = cli_ok(&app.database_url, args).await;
    let agent_pak = printed.lines().last().unwrap();
    let me = expect_json(app.get("/api/v1/whoami", agent_pak).await, 200).await;
    let agent = Uuid::parse_str(me["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        app.targeted_stacks(agent, agent_pak).await,
        [stack.to_string()],
        "a CLI-created agent is targeted like an API-created one"
    );
    let args = &[
        "create",
        "generator",
        "--name",
        "cli-ci",
        "--reach",
        "agent.name == 'edge'",
    ];
    let printed = cli_ok(&app.database_url, args).await;
    assert!(
        printed.contains("(reach: agent.name == 'edge')"),
        "{printed}"
    );

    let audit = app
        .get("/api/v1/admin/audit-logs?actor_type=cli", &app.admin)
        .await;
    let entries = expect_json(audit, 200).await;
    let actions: Vec<&str> = entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "generator.created",
            "pak.created",
            "agent.created",
            "pak.created"
        ],
        "{entries}"
    );
    let agent_entry = &entries["items"][2];
    assert_eq!(agent_entry["resource_id"], agent.to_string());
});

both_backends!(the_log_is_hash_chained_and_verifiable, |app| {
    let (id, pak) = app.create_generator("ci").await;
    app.post(
        &format!("/api/v1/generators/{id}/rotate-pak"),
        &pak,
        json!({}),
    )
    .await;
    // Concurrent writers do not fork the chain.
    let names: Vec<String> = (0..10).map(|i| format!("parallel-{i}")).collect();
    futures::future::join_all(names.iter().map(|n| app.create_generator(n))).await;
    let url = app.database_url.clone();
    let (ok, text) = tokio::task::spawn_blocking(move || verify(&url))
        .await
        .unwrap();
    assert!(
        ok && text.contains("audit log intact: 24 entries checked"),
        "{text}"
    );

    // Someone with database access edits history (getting past the append-only trigger).
    let lift_trigger = if app.database_url.starts_with("postgres") {
        "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_no_update"
    } else {
        "DROP TRIGGER audit_logs_no_update"
    };
    app.execute_sql(lift_trigger).await.unwrap();
    app.execute_sql("UPDATE audit_logs SET actor_type = 'cli' WHERE id = 2")
        .await
        .unwrap();
    let url = app.database_url.clone();
    let (ok, text) = tokio::task::spawn_blocking(move || verify(&url))
        .await
        .unwrap();
    assert!(!ok, "a broken chain fails the command");
    assert!(text.contains("BROKEN at entry 2"), "{text}");
});
