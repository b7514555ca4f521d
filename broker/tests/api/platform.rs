//! Probes, the OpenAPI document, request ids, fallbacks, security headers and first start.

use reqwest::Method;

use crate::helpers::*;

both_backends!(probes_and_openapi, |app| {
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(expect_json(health, 200).await["status"], "ok");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(expect_json(ready, 200).await["status"], "ready");
    let document = expect_json(
        app.client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/generators",
        "/api/v1/agents/{id}/target-state",
        "/api/v1/admin/audit-logs",
    ] {
        assert!(paths.contains_key(path), "{path} documented");
    }
    assert!(document["components"]["schemas"]["Problem"].is_object());
});

both_backends!(request_ids_and_fallbacks, |app| {
    let echoed = app
        .request(Method::GET, "/api/v1/stacks", Some(&app.admin))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-123");
    assert_eq!(echoed.headers()["x-content-type-options"], "nosniff");
    let replaced = app
        .request(Method::GET, "/api/v1/stacks", Some(&app.admin))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "bad id with spaces");

    expect_problem(
        app.get("/api/v1/nothing-here", &app.admin).await,
        404,
        "not_found",
    )
    .await;
    let wrong_method = app
        .request(Method::PUT, "/api/v1/generators", Some(&app.admin))
        .send()
        .await
        .unwrap();
    expect_problem(wrong_method, 405, "method_not_allowed").await;
    expect_problem(
        app.get("/api/v1/stacks/not-a-uuid", &app.admin).await,
        404,
        "not_found",
    )
    .await;
});

both_backends!(admin_pak_is_created_once, |app| {
    assert!(app.admin.starts_with("brokkr_BR"));
    // A second broker on the same database creates no new admin PAK; the first still works.
    let again = spawn_app_with(settings_for(&app.database_url), None).await;
    assert!(
        again.admin.is_empty(),
        "no admin PAK is printed on later starts"
    );
    assert_eq!(
        again.get("/api/v1/generators", &app.admin).await.status(),
        200
    );
});

both_backends!(metrics_count_target_state_answers, |app| {
    let (agent, pak) = app.create_agent("edge", serde_json::json!({})).await;
    let path = format!("/api/v1/agents/{agent}/target-state");
    let etag = app.etag_of(&path, &pak).await;
    let unchanged = app
        .get_if_none_match(&path, &pak, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    app.get("/api/v1/stacks", "brokkr_BRnot-a-key").await;
    let response = app.get("/metrics", &app.admin).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for line in [
        "brokkr_target_state_responses_total 1",
        "brokkr_target_state_not_modified_total 1",
        "brokkr_auth_failures_total 1",
        "brokkr_target_state_views 1",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
});
