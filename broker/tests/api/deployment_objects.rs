//! Deployment objects: JSON and YAML bodies, validation that names the document and field,
//! numbering per stack, size limits and content types.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

both_backends!(json_and_yaml_bodies_are_numbered, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let stack = app.create_stack(&pak, json!({ "name": "s" })).await;
    let first = app.add_object(&pak, stack, CONFIG_MAP).await;
    assert_eq!(first["sequence_id"], 1);
    assert_eq!(first["yaml_content"], CONFIG_MAP);
    assert_eq!(first["yaml_checksum"].as_str().unwrap().len(), 64);

    let yaml =
        format!("{CONFIG_MAP}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n");
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/stacks/{stack}/deployment-objects"),
            Some(&pak),
        )
        .header("Content-Type", "application/yaml")
        .body(yaml.clone())
        .send()
        .await
        .unwrap();
    let second = expect_json(response, 201).await;
    assert_eq!(second["sequence_id"], 2);
    assert_eq!(second["yaml_content"], yaml.as_str());

    let listed = expect_json(
        app.get(&format!("/api/v1/stacks/{stack}/deployment-objects"), &pak)
            .await,
        200,
    )
    .await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["sequence_id"], 2, "newest first");
    assert!(
        items[0].get("yaml_content").is_none(),
        "lists carry no content"
    );

    let fetched = expect_json(
        app.get(
            &format!("/api/v1/deployment-objects/{}", id_of(&first)),
            &pak,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(fetched, first);
});

both_backends!(invalid_documents_are_named, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let stack = app.create_stack(&pak, json!({ "name": "s" })).await;
    let path = format!("/api/v1/stacks/{stack}/deployment-objects");
    let yaml = format!(
        "{CONFIG_MAP}---\napiVersion: v1\nkind: Secret\nmetadata:\n  namespace: x\nstringData:\n  password: hunter2\n"
    );
    let problem = expect_problem(
        app.post(&path, &pak, json!({ "yaml_content": yaml })).await,
        422,
        "invalid_manifest",
    )
    .await;
    assert_eq!(
        problem["errors"][0]["location"],
        "documents[1].metadata.name"
    );
    assert!(
        !problem.to_string().contains("hunter2"),
        "the problem never echoes content"
    );

    let no_kind = "apiVersion: v1\nmetadata:\n  name: x\n";
    let problem = expect_problem(
        app.post(&path, &pak, json!({ "yaml_content": no_kind }))
            .await,
        422,
        "invalid_manifest",
    )
    .await;
    assert_eq!(problem["errors"][0]["location"], "documents[0].kind");

    let broken = "apiVersion: v1\nkind: [\n";
    expect_problem(
        app.post(&path, &pak, json!({ "yaml_content": broken }))
            .await,
        422,
        "invalid_manifest",
    )
    .await;
    expect_problem(
        app.post(&path, &pak, json!({ "yaml_content": "" })).await,
        422,
        "invalid_manifest",
    )
    .await;

    // Nothing was stored by the rejected submissions.
    let listed = expect_json(app.get(&path, &pak).await, 200).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
});

both_backends!(body_limits_and_media_types, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let stack = app.create_stack(&pak, json!({ "name": "s" })).await;
    let path = format!("/api/v1/stacks/{stack}/deployment-objects");
    let huge = format!(
        "{CONFIG_MAP}  padding: \"{}\"\n",
        "x".repeat(5 * 1024 * 1024)
    );
    let problem = expect_problem(
        app.post(&path, &pak, json!({ "yaml_content": huge })).await,
        413,
        "payload_too_large",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("4194304"),
        "{problem}"
    );

    let response = app
        .request(Method::POST, &path, Some(&pak))
        .header("Content-Type", "text/plain")
        .body(CONFIG_MAP)
        .send()
        .await
        .unwrap();
    expect_problem(response, 415, "unsupported_media_type").await;

    let response = app
        .request(Method::POST, &path, Some(&pak))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_problem(response, 400, "malformed_json").await;
});

both_backends!(hostile_yaml_is_refused_by_its_limits, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let stack = app.create_stack(&pak, json!({ "name": "s" })).await;
    let path = format!("/api/v1/stacks/{stack}/deployment-objects");
    let post_yaml = |yaml: String| {
        app.request(Method::POST, &path, Some(&pak))
            .header("Content-Type", "application/yaml")
            .body(yaml)
            .send()
    };
    // 100,000 levels of flow nesting in a 500 KB body: refused at the 65th.
    let n = 100_000;
    let nested = format!("{CONFIG_MAP}x: {}1{}", "{a: ".repeat(n), "}".repeat(n));
    let problem = expect_problem(
        post_yaml(nested).await.unwrap(),
        422,
        "manifest_limit_exceeded",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("64 levels of nesting"),
        "{problem}"
    );

    let many = (0..1001)
        .map(|i| CONFIG_MAP.replace("app-config", &format!("c{i}")))
        .collect::<Vec<_>>()
        .join("---\n");
    let problem = expect_problem(
        post_yaml(many).await.unwrap(),
        422,
        "manifest_limit_exceeded",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("1000 documents"),
        "{problem}"
    );

    let mut bomb = format!("{CONFIG_MAP}a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let problem = expect_problem(
        post_yaml(bomb).await.unwrap(),
        422,
        "manifest_limit_exceeded",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("nodes"),
        "{problem}"
    );

    let listed = expect_json(app.get(&path, &pak).await, 200).await;
    assert!(
        listed["items"].as_array().unwrap().is_empty(),
        "nothing was stored"
    );
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
});

both_backends!(a_retried_submission_is_stored_once, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let stack = app.create_stack(&pak, json!({ "name": "s" })).await;
    let path = format!("/api/v1/stacks/{stack}/deployment-objects");
    let submit = |key: &'static str, yaml: &str| {
        app.request(Method::POST, &path, Some(&pak))
            .header("Idempotency-Key", key)
            .json(&json!({ "yaml_content": yaml }))
            .send()
    };
    let first = expect_json(submit("ci-run-42", CONFIG_MAP).await.unwrap(), 201).await;
    let again = expect_json(submit("ci-run-42", CONFIG_MAP).await.unwrap(), 200).await;
    assert_eq!(
        first["id"], again["id"],
        "the retry returns the first result"
    );
    let changed = CONFIG_MAP.replace("value", "other");
    let reused = submit("ci-run-42", &changed).await.unwrap();
    expect_problem(reused, 409, "idempotency_key_reused").await;
    let other = expect_json(submit("ci-run-43", &changed).await.unwrap(), 201).await;
    assert_eq!(other["sequence_id"], 2);
    let bad = submit("no spaces allowed", CONFIG_MAP).await.unwrap();
    expect_problem(bad, 400, "invalid_idempotency_key").await;
    let listed = expect_json(app.get(&path, &pak).await, 200).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "no duplicate version"
    );
});
