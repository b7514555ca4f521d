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

/// The value of a counter in the broker's OpenMetrics text.
async fn counter(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics", &app.admin).await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from the metrics"))
}

both_backends!(target_states_come_compressed_when_zstd_is_accepted, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let (agent, agent_pak) = app.create_agent("edge", json!({})).await;
    let (web, db) = (
        app.create_stack(&pak, json!({ "name": "web" })).await,
        app.create_stack(&pak, json!({ "name": "db" })).await,
    );
    let large = format!("{CONFIG_MAP}  more: \"{}\"\n", "abcdef".repeat(4000));
    app.add_object(&pak, web, &large).await;
    app.add_object(&pak, db, CONFIG_MAP).await;
    app.target(&pak, agent, web).await;
    app.target(&pak, agent, db).await;
    // A client that decodes nothing itself, so the bytes on the wire are seen.
    let raw = reqwest::Client::builder().no_zstd().build().unwrap();
    let path = format!("{}/api/v1/agents/{agent}/target-state", app.address);
    let fetch = |accept: Option<&'static str>| {
        let request = raw.get(&path).bearer_auth(&agent_pak);
        match accept {
            Some(accept) => request.header("Accept-Encoding", accept),
            None => request,
        }
        .send()
    };

    let plain = fetch(None).await.unwrap();
    assert_eq!(plain.headers()["vary"], "accept-encoding");
    assert!(plain.headers().get("content-encoding").is_none());
    let etag = plain.headers()["etag"].clone();
    let plain = plain.bytes().await.unwrap();
    let counted = "brokkr_target_state_compressed_responses_total";
    assert_eq!(counter(&app, counted).await, 0.0);

    let packed = fetch(Some("gzip, zstd;q=0.9")).await.unwrap();
    assert_eq!(packed.status(), 200);
    assert_eq!(packed.headers()["content-encoding"], "zstd");
    assert_eq!(packed.headers()["etag"], etag, "the ETag names the state");
    let length: usize = packed.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let packed = packed.bytes().await.unwrap();
    assert_eq!(packed.len(), length);
    assert!(
        packed.len() * 5 < plain.len(),
        "{} of {} bytes",
        packed.len(),
        plain.len()
    );
    let decoded = zstd::stream::decode_all(&packed[..]).unwrap();
    let as_json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    assert_eq!(as_json(&decoded), as_json(&plain));
    assert_eq!(as_json(&plain)["stacks"].as_array().unwrap().len(), 2);
    assert_eq!(counter(&app, counted).await, 1.0);

    let refused = fetch(Some("zstd;q=0, gzip")).await.unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
    assert_eq!(refused.bytes().await.unwrap(), plain);
    let unchanged = raw
        .get(&path)
        .bearer_auth(&agent_pak)
        .header("Accept-Encoding", "zstd")
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["vary"], "accept-encoding");
    assert_eq!(counter(&app, counted).await, 1.0);
});
