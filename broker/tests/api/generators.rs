//! The generators guide, end to end.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

both_backends!(create_get_update_list_delete, |app| {
    let created = expect_json(
        app.post(
            "/api/v1/generators",
            &app.admin,
            json!({ "name": "github-actions-prod", "description": "Production deployment pipeline" }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["generator"]["name"], "github-actions-prod");
    let pak = created["pak"].as_str().unwrap().to_string();
    assert!(pak.starts_with("brokkr_BR"));
    let id = id_of(&created["generator"]);

    // A generator reads and updates itself with its own PAK.
    let own = expect_json(
        app.get(&format!("/api/v1/generators/{id}"), &pak).await,
        200,
    )
    .await;
    assert_eq!(own["description"], "Production deployment pipeline");
    let response = app
        .request(Method::PUT, &format!("/api/v1/generators/{id}"), Some(&pak))
        .json(&json!({ "description": "Updated description" }))
        .send()
        .await
        .unwrap();
    let updated = expect_json(response, 200).await;
    assert_eq!(updated["description"], "Updated description");
    assert_eq!(
        updated["name"], "github-actions-prod",
        "absent fields stay unchanged"
    );

    let listed = expect_json(app.get("/api/v1/generators", &app.admin).await, 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    assert_eq!(
        app.delete(&format!("/api/v1/generators/{id}"), &app.admin)
            .await
            .status(),
        204
    );
    expect_problem(
        app.get(&format!("/api/v1/generators/{id}"), &app.admin)
            .await,
        404,
        "not_found",
    )
    .await;
    // Its PAK stopped working with it.
    expect_problem(
        app.get(&format!("/api/v1/generators/{id}"), &pak).await,
        401,
        "invalid_pak",
    )
    .await;
});

both_backends!(null_clears_description, |app| {
    let (id, pak) = app.create_generator("g1").await;
    app.patch(
        &format!("/api/v1/generators/{id}"),
        &pak,
        json!({ "description": "x" }),
    )
    .await;
    let cleared = expect_json(
        app.patch(
            &format!("/api/v1/generators/{id}"),
            &pak,
            json!({ "description": null }),
        )
        .await,
        200,
    )
    .await;
    assert!(cleared["description"].is_null());
});

both_backends!(names_are_validated_and_unique, |app| {
    let bad = expect_problem(
        app.post(
            "/api/v1/generators",
            &app.admin,
            json!({ "name": "has space" }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .contains("name may contain only"),
        "{bad}"
    );
    assert_eq!(bad["errors"][0]["location"], "name");
    let long = "x".repeat(129);
    expect_problem(
        app.post("/api/v1/generators", &app.admin, json!({ "name": long }))
            .await,
        422,
        "validation_failed",
    )
    .await;
    app.create_generator("taken").await;
    expect_problem(
        app.post("/api/v1/generators", &app.admin, json!({ "name": "taken" }))
            .await,
        409,
        "conflict",
    )
    .await;
});

both_backends!(unknown_fields_are_rejected, |app| {
    let body = json!({ "name": "g", "owner": "someone" });
    let problem = expect_problem(
        app.post("/api/v1/generators", &app.admin, body).await,
        422,
        "unknown_field",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("owner"),
        "{problem}"
    );
    let (id, pak) = app.create_generator("g2").await;
    let body = json!({ "id": uuid::Uuid::new_v4() });
    expect_problem(
        app.patch(&format!("/api/v1/generators/{id}"), &pak, body)
            .await,
        422,
        "unknown_field",
    )
    .await;
});

both_backends!(delete_cascades_to_stacks_and_objects, |app| {
    let (id, pak) = app.create_generator("ci").await;
    let (agent, agent_pak) = app.create_agent("edge-1", json!({})).await;
    let first = app.create_stack(&pak, json!({ "name": "one" })).await;
    let second = app.create_stack(&pak, json!({ "name": "two" })).await;
    let object = app.add_object(&pak, first, CONFIG_MAP).await;
    app.target(&app.admin, agent, first).await;

    assert_eq!(
        app.delete(&format!("/api/v1/generators/{id}"), &pak)
            .await
            .status(),
        204
    );

    for stack in [first, second] {
        expect_problem(
            app.get(&format!("/api/v1/stacks/{stack}"), &app.admin)
                .await,
            404,
            "not_found",
        )
        .await;
    }
    let path = format!("/api/v1/deployment-objects/{}", id_of(&object));
    expect_problem(app.get(&path, &app.admin).await, 404, "not_found").await;
    // The agent learns to remove what it applied: its target state holds a deletion marker.
    let state = expect_json(
        app.get(&format!("/api/v1/agents/{agent}/target-state"), &agent_pak)
            .await,
        200,
    )
    .await;
    let stacks = state["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 1);
    assert_eq!(stacks[0]["deployment_object"]["is_deletion_marker"], true);
    assert_eq!(stacks[0]["deployment_object"]["sequence_id"], 2);
});

both_backends!(rotation_invalidates_old_pak_at_once, |app| {
    let (id, old) = app.create_generator("rotating").await;
    // Warm the cache with the old PAK.
    assert_eq!(
        app.status_of(Method::GET, &format!("/api/v1/generators/{id}"), &old)
            .await,
        200
    );
    let rotated = expect_json(
        app.post(
            &format!("/api/v1/generators/{id}/rotate-pak"),
            &old,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let new = rotated["pak"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(rotated["generator"]["id"], id.to_string());
    expect_problem(
        app.get(&format!("/api/v1/generators/{id}"), &old).await,
        401,
        "invalid_pak",
    )
    .await;
    assert_eq!(
        app.status_of(Method::GET, &format!("/api/v1/generators/{id}"), new)
            .await,
        200
    );
    // The admin can rotate too (a lost PAK).
    let again = expect_json(
        app.post(
            &format!("/api/v1/generators/{id}/rotate-pak"),
            &app.admin,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    expect_problem(
        app.get(&format!("/api/v1/generators/{id}"), new).await,
        401,
        "invalid_pak",
    )
    .await;
    assert_ne!(again["pak"], rotated["pak"]);
});

both_backends!(lists_are_paginated, |app| {
    for i in 0..5 {
        app.create_generator(&format!("g{i}")).await;
    }
    let first = expect_json(app.get("/api/v1/generators?limit=2", &app.admin).await, 200).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_offset"], 2);
    let last = expect_json(
        app.get("/api/v1/generators?limit=2&offset=4", &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert!(last["next_offset"].is_null());
    assert_eq!(last["items"][0]["name"], "g4");
    expect_problem(
        app.get("/api/v1/generators?limit=0", &app.admin).await,
        400,
        "invalid_query",
    )
    .await;
    expect_problem(
        app.get("/api/v1/generators?limit=5000", &app.admin).await,
        400,
        "invalid_query",
    )
    .await;
    expect_problem(
        app.get("/api/v1/generators?limit=abc", &app.admin).await,
        400,
        "invalid_query",
    )
    .await;
});
