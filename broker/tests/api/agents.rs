//! Agents as an admin manages them, heartbeats and events.

use serde_json::json;

use crate::helpers::*;

both_backends!(create_update_and_delete, |app| {
    let body = json!({ "name": "prod-1", "cluster_name": "prod", "labels": ["prod"], "annotations": { "region": "us-east" } });
    let created = expect_json(app.post("/api/v1/agents", &app.admin, body).await, 201).await;
    assert_eq!(created["agent"]["status"], "active");
    assert_eq!(created["agent"]["labels"], json!(["prod"]));
    assert_eq!(created["agent"]["annotations"]["region"], "us-east");
    let id = id_of(&created["agent"]);
    let pak = created["pak"].as_str().unwrap().to_string();

    let own = expect_json(app.get(&format!("/api/v1/agents/{id}"), &pak).await, 200).await;
    assert_eq!(own["name"], "prod-1");

    // The agent may not change anything about itself, least of all its status.
    expect_problem(
        app.patch(
            &format!("/api/v1/agents/{id}"),
            &pak,
            json!({ "status": "active" }),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let updated = expect_json(
        app.patch(
            &format!("/api/v1/agents/{id}"),
            &app.admin,
            json!({ "status": "inactive", "cluster_name": "prod-eu" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["status"], "inactive");
    assert_eq!(updated["cluster_name"], "prod-eu");
    assert_eq!(updated["labels"], json!(["prod"]));
    let bad = app
        .patch(
            &format!("/api/v1/agents/{id}"),
            &app.admin,
            json!({ "status": "sleeping" }),
        )
        .await;
    expect_problem(bad, 422, "validation_failed").await;

    let labelled = expect_json(
        app.post(
            &format!("/api/v1/agents/{id}/labels"),
            &app.admin,
            json!({ "label": "gpu" }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(labelled["labels"], json!(["gpu", "prod"]));
    let annotated = app
        .post(
            &format!("/api/v1/agents/{id}/annotations"),
            &app.admin,
            json!({ "key": "tier", "value": "1" }),
        )
        .await;
    assert_eq!(
        expect_json(annotated, 201).await["annotations"]["tier"],
        "1"
    );
    assert_eq!(
        app.delete(&format!("/api/v1/agents/{id}/labels/gpu"), &app.admin)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&format!("/api/v1/agents/{id}/annotations/tier"), &app.admin)
            .await
            .status(),
        204
    );

    // Warm the cache, delete, and the PAK stops working at once.
    assert_eq!(
        app.get(&format!("/api/v1/agents/{id}"), &pak)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.delete(&format!("/api/v1/agents/{id}"), &app.admin)
            .await
            .status(),
        204
    );
    expect_problem(
        app.get(&format!("/api/v1/agents/{id}"), &pak).await,
        401,
        "invalid_pak",
    )
    .await;
    expect_problem(
        app.get(&format!("/api/v1/agents/{id}"), &app.admin).await,
        404,
        "not_found",
    )
    .await;
});

both_backends!(agent_rotates_its_own_pak, |app| {
    let (id, pak) = app.create_agent("edge", json!({})).await;
    let rotated = expect_json(
        app.post(&format!("/api/v1/agents/{id}/rotate-pak"), &pak, json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(rotated["agent"]["id"], id.to_string());
    expect_problem(
        app.get(&format!("/api/v1/agents/{id}"), &pak).await,
        401,
        "invalid_pak",
    )
    .await;
    let new = rotated["pak"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/agents/{id}"), new).await.status(),
        200
    );
});

both_backends!(heartbeat_records_reachability, |app| {
    let (id, pak) = app.create_agent("edge", json!({})).await;
    let beat = json!({ "kubernetes_reachable": false, "agent_version": "0.1.0" });
    assert_eq!(
        app.post(&format!("/api/v1/agents/{id}/heartbeat"), &pak, beat)
            .await
            .status(),
        204
    );
    let agent = expect_json(
        app.get(&format!("/api/v1/agents/{id}"), &app.admin).await,
        200,
    )
    .await;
    assert_eq!(agent["kubernetes_reachable"], false);
    assert_eq!(agent["agent_version"], "0.1.0");
    assert!(agent["last_heartbeat_at"].is_string());
});

both_backends!(events_are_stored_once_per_key, |app| {
    let (gen_a, pak_a) = app.create_generator("team-a").await;
    let (_, pak_b) = app.create_generator("team-b").await;
    let (agent, agent_pak) = app.create_agent("edge", json!({})).await;
    let stack = app.create_stack(&pak_a, json!({ "name": "s" })).await;
    let object = id_of(&app.add_object(&pak_a, stack, CONFIG_MAP).await);
    app.target(&pak_a, agent, stack).await;

    let event = json!({
        "idempotency_key": format!("apply:{object}"),
        "deployment_object_id": object,
        "event_type": "apply",
        "status": "failure",
        "message": "admission webhook denied the request",
    });
    let path = format!("/api/v1/agents/{agent}/events");
    let first = expect_json(app.post(&path, &agent_pak, event.clone()).await, 201).await;
    let retry = expect_json(app.post(&path, &agent_pak, event).await, 200).await;
    assert_eq!(first["id"], retry["id"], "a retried post is stored once");
    assert_eq!(first["stack_id"], stack.to_string());

    let unknown = json!({ "idempotency_key": "k2", "deployment_object_id": uuid::Uuid::new_v4(), "event_type": "apply", "status": "success" });
    expect_problem(
        app.post(&path, &agent_pak, unknown).await,
        422,
        "validation_failed",
    )
    .await;

    let by_admin = expect_json(app.get(&path, &app.admin).await, 200).await;
    assert_eq!(by_admin["items"].as_array().unwrap().len(), 1);
    let by_owner = expect_json(app.get(&path, &pak_a).await, 200).await;
    assert_eq!(by_owner["items"].as_array().unwrap().len(), 1);
    let by_other = expect_json(app.get(&path, &pak_b).await, 200).await;
    assert!(
        by_other["items"].as_array().unwrap().is_empty(),
        "other generators see none of it"
    );
    let by_stack = expect_json(
        app.get(&format!("/api/v1/stacks/{stack}/events"), &pak_a)
            .await,
        200,
    )
    .await;
    assert_eq!(
        by_stack["items"][0]["message"],
        "admission webhook denied the request"
    );
    assert_eq!(by_stack["items"][0]["agent_id"], agent.to_string());
    let _ = gen_a;
});
