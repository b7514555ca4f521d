//! Stacks: creation with inline labels and annotations, the metadata subresources, updates,
//! isolation between generators, and deletion markers.

use serde_json::json;

use crate::helpers::*;

both_backends!(inline_and_subresource_metadata, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let body = json!({ "name": "web", "labels": ["prod", "prod"], "annotations": { "region": "us-east" } });
    let stack = expect_json(app.post("/api/v1/stacks", &pak, body).await, 201).await;
    assert_eq!(stack["labels"], json!(["prod"]));
    assert_eq!(stack["annotations"]["region"], "us-east");
    let id = id_of(&stack);

    let added = expect_json(
        app.post(
            &format!("/api/v1/stacks/{id}/labels"),
            &pak,
            json!({ "label": "blue" }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(added["labels"], json!(["blue", "prod"]));
    let again = app
        .post(
            &format!("/api/v1/stacks/{id}/labels"),
            &pak,
            json!({ "label": "blue" }),
        )
        .await;
    assert_eq!(
        again.status(),
        200,
        "adding an existing label changes nothing"
    );

    let annotated = expect_json(
        app.post(
            &format!("/api/v1/stacks/{id}/annotations"),
            &pak,
            json!({ "key": "region", "value": "eu-west" }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(annotated["annotations"]["region"], "eu-west");

    assert_eq!(
        app.delete(&format!("/api/v1/stacks/{id}/labels/prod"), &pak)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&format!("/api/v1/stacks/{id}/annotations/region"), &pak)
            .await
            .status(),
        204
    );
    expect_problem(
        app.delete(&format!("/api/v1/stacks/{id}/labels/prod"), &pak)
            .await,
        404,
        "not_found",
    )
    .await;
    let now = expect_json(app.get(&format!("/api/v1/stacks/{id}"), &pak).await, 200).await;
    assert_eq!(now["labels"], json!(["blue"]));
    assert_eq!(now["annotations"], json!({}));

    let bad = app
        .post(
            &format!("/api/v1/stacks/{id}/labels"),
            &pak,
            json!({ "label": "not ok" }),
        )
        .await;
    expect_problem(bad, 422, "validation_failed").await;
});

both_backends!(generators_are_isolated, |app| {
    let (a, pak_a) = app.create_generator("team-a").await;
    let (_, pak_b) = app.create_generator("team-b").await;
    let stack = app.create_stack(&pak_a, json!({ "name": "a-stack" })).await;
    app.create_stack(&pak_b, json!({ "name": "b-stack" })).await;

    let mine = expect_json(app.get("/api/v1/stacks", &pak_a).await, 200).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["generator_id"], a.to_string());
    let all = expect_json(app.get("/api/v1/stacks", &app.admin).await, 200).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);

    expect_problem(
        app.get(&format!("/api/v1/stacks/{stack}"), &pak_b).await,
        404,
        "not_found",
    )
    .await;
    expect_problem(
        app.delete(&format!("/api/v1/stacks/{stack}"), &pak_b).await,
        404,
        "not_found",
    )
    .await;
    let stolen = app
        .post(
            "/api/v1/stacks",
            &pak_b,
            json!({ "name": "x", "generator_id": a }),
        )
        .await;
    expect_problem(stolen, 403, "forbidden").await;
});

both_backends!(
    stacks_are_found_by_name_inside_what_the_caller_sees,
    |app| {
        let (a, pak_a) = app.create_generator("team-a").await;
        let (_, pak_b) = app.create_generator("team-b").await;
        let web_a = app.create_stack(&pak_a, json!({ "name": "web" })).await;
        app.create_stack(&pak_a, json!({ "name": "db" })).await;
        app.create_stack(&pak_b, json!({ "name": "web" })).await;

        let mine = expect_json(app.get("/api/v1/stacks?name=web", &pak_a).await, 200).await;
        let ids: Vec<&str> = mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect();
        assert_eq!(ids, [web_a.to_string()]);
        assert_eq!(mine["items"][0]["generator_id"], a.to_string());
        let both = expect_json(app.get("/api/v1/stacks?name=web", &app.admin).await, 200).await;
        assert_eq!(both["items"].as_array().unwrap().len(), 2);
        let none = expect_json(app.get("/api/v1/stacks?name=cache", &pak_a).await, 200).await;
        assert_eq!(none["items"], json!([]));
        expect_problem(
            app.get("/api/v1/stacks?name=not%20a%20name", &pak_a).await,
            400,
            "invalid_query",
        )
        .await;
        expect_problem(
            app.get("/api/v1/stacks?nmae=web", &pak_a).await,
            400,
            "invalid_query",
        )
        .await;
    }
);

both_backends!(admin_creates_stacks_for_a_generator, |app| {
    let (a, pak_a) = app.create_generator("team-a").await;
    let missing = app
        .post("/api/v1/stacks", &app.admin, json!({ "name": "s" }))
        .await;
    expect_problem(missing, 422, "validation_failed").await;
    let unknown = app
        .post(
            "/api/v1/stacks",
            &app.admin,
            json!({ "name": "s", "generator_id": uuid::Uuid::new_v4() }),
        )
        .await;
    expect_problem(unknown, 422, "validation_failed").await;
    let id = app
        .create_stack(&app.admin, json!({ "name": "s", "generator_id": a }))
        .await;
    let seen = expect_json(app.get(&format!("/api/v1/stacks/{id}"), &pak_a).await, 200).await;
    assert_eq!(seen["generator_id"], a.to_string());
});

both_backends!(update_cannot_change_owner, |app| {
    let (_, pak) = app.create_generator("team-a").await;
    let (b, _) = app.create_generator("team-b").await;
    let id = app
        .create_stack(&pak, json!({ "name": "s", "description": "d" }))
        .await;
    let moved = app
        .patch(
            &format!("/api/v1/stacks/{id}"),
            &pak,
            json!({ "generator_id": b }),
        )
        .await;
    expect_problem(moved, 422, "unknown_field").await;
    let renamed = expect_json(
        app.patch(
            &format!("/api/v1/stacks/{id}"),
            &pak,
            json!({ "name": "s2" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "s2");
    assert_eq!(renamed["description"], "d");
    app.create_stack(&pak, json!({ "name": "s3" })).await;
    let clash = app
        .patch(
            &format!("/api/v1/stacks/{id}"),
            &pak,
            json!({ "name": "s3" }),
        )
        .await;
    expect_problem(clash, 409, "conflict").await;
});

both_backends!(delete_appends_a_deletion_marker, |app| {
    let (_, pak) = app.create_generator("ci").await;
    let id = app.create_stack(&pak, json!({ "name": "s" })).await;
    app.add_object(&pak, id, CONFIG_MAP).await;
    assert_eq!(
        app.delete(&format!("/api/v1/stacks/{id}"), &pak)
            .await
            .status(),
        204
    );
    expect_problem(
        app.get(&format!("/api/v1/stacks/{id}"), &pak).await,
        404,
        "not_found",
    )
    .await;
    let late = app
        .post(
            &format!("/api/v1/stacks/{id}/deployment-objects"),
            &pak,
            json!({ "yaml_content": CONFIG_MAP }),
        )
        .await;
    expect_problem(late, 404, "not_found").await;
    expect_problem(
        app.delete(&format!("/api/v1/stacks/{id}"), &pak).await,
        404,
        "not_found",
    )
    .await;
    // The name is free again for a new stack.
    app.create_stack(&pak, json!({ "name": "s" })).await;
});
