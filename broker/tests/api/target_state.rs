//! `GET /api/v1/agents/{id}/target-state`: the full desired state, ETag and 304.

use serde_json::json;

use crate::helpers::*;

both_backends!(latest_object_per_stack_with_etag, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let (agent, agent_pak) = app.create_agent("edge", json!({})).await;
    let path = format!("/api/v1/agents/{agent}/target-state");

    let empty = app.get(&path, &agent_pak).await;
    let empty_etag = empty.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(expect_json(empty, 200).await["stacks"], json!([]));

    let web = app.create_stack(&pak, json!({ "name": "web" })).await;
    let db = app.create_stack(&pak, json!({ "name": "db" })).await;
    app.create_stack(&pak, json!({ "name": "untargeted" }))
        .await;
    app.add_object(&pak, web, CONFIG_MAP).await;
    let web_v2 = app
        .add_object(&pak, web, &CONFIG_MAP.replace("value", "v2"))
        .await;
    let db_v1 = app.add_object(&pak, db, CONFIG_MAP).await;
    app.target(&pak, agent, web).await;
    app.target(&app.admin, agent, db).await;

    let response = app.get(&path, &agent_pak).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag, empty_etag);
    let state = expect_json(response, 200).await;
    assert_eq!(format!("\"{}\"", state["etag"].as_str().unwrap()), etag);
    let stacks = state["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 2);
    let objects: Vec<_> = stacks
        .iter()
        .map(|s| s["deployment_object"].clone())
        .collect();
    assert!(objects.contains(&web_v2), "the latest object of web");
    assert!(objects.contains(&db_v1));

    let unchanged = app
        .get_if_none_match(&path, &agent_pak, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"].to_str().unwrap(), etag);

    // Deleting a stack keeps it in the target state as a deletion marker.
    assert_eq!(
        app.delete(&format!("/api/v1/stacks/{db}"), &pak)
            .await
            .status(),
        204
    );
    let changed = app
        .get_if_none_match(&path, &agent_pak, &etag)
        .send()
        .await
        .unwrap();
    let state = expect_json(changed, 200).await;
    let marker = state["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack_id"] == db.to_string())
        .unwrap();
    assert_eq!(marker["deployment_object"]["is_deletion_marker"], true);

    // Untargeting removes the stack from the state.
    assert_eq!(
        app.delete(&format!("/api/v1/agents/{agent}/targets/{web}"), &pak)
            .await
            .status(),
        204
    );
    let state = expect_json(app.get(&path, &agent_pak).await, 200).await;
    assert_eq!(state["stacks"].as_array().unwrap().len(), 1);
});

both_backends!(a_confirmed_deletion_leaves_the_target_state, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let (agent, agent_pak) = app.create_agent("edge", json!({})).await;
    let stack = app.create_stack(&pak, json!({ "name": "s" })).await;
    app.add_object(&pak, stack, CONFIG_MAP).await;
    app.target(&pak, agent, stack).await;
    assert_eq!(
        app.delete(&format!("/api/v1/stacks/{stack}"), &pak)
            .await
            .status(),
        204
    );
    let path = format!("/api/v1/agents/{agent}/target-state");
    let state = expect_json(app.get(&path, &agent_pak).await, 200).await;
    let marker = state["stacks"][0]["deployment_object"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A failed prune keeps the marker; a successful one retires it.
    let failed = json!({ "idempotency_key": "prune-1", "deployment_object_id": marker, "event_type": "prune", "status": "failure" });
    app.post(
        &format!("/api/v1/agents/{agent}/events"),
        &agent_pak,
        failed,
    )
    .await;
    assert_eq!(
        expect_json(app.get(&path, &agent_pak).await, 200).await["stacks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let done = json!({ "idempotency_key": "prune-2", "deployment_object_id": marker, "event_type": "prune", "status": "success" });
    assert_eq!(
        app.post(&format!("/api/v1/agents/{agent}/events"), &agent_pak, done)
            .await
            .status(),
        201
    );
    let state = expect_json(app.get(&path, &agent_pak).await, 200).await;
    assert!(state["stacks"].as_array().unwrap().is_empty(), "{state}");
});
