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

    // Every answer, errors and probes included, carries the security headers and a request id.
    for (method, path) in [
        (Method::GET, "/api/v1/nothing-here"),
        (Method::PUT, "/api/v1/generators"),
        (Method::GET, "/api/v1/stacks/not-a-uuid"),
        (Method::GET, "/healthz"),
    ] {
        let response = app
            .request(method, path, Some(&app.admin))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert!(!headers["x-request-id"].is_empty(), "{path}");
    }
});

both_backends!(
    an_older_broker_starts_on_a_database_migrated_further,
    |app| {
        let newer = if app.database_url.starts_with("sqlite") {
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from a newer broker', TRUE, X'00', 0)"
        } else {
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from a newer broker', TRUE, '\\x00'::bytea, 0)"
        };
        app.execute_sql(newer).await.unwrap();
        let again = spawn_app_with(settings_for(&app.database_url), None).await;
        assert_eq!(
            again.get("/api/v1/generators", &app.admin).await.status(),
            200
        );
    }
);

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

both_backends!(hostile_parameters_answer_problems, |app| {
    for (path, status) in [
        ("/api/v1/plugins/modules/%00", 404),
        ("/api/v1/plugins/modules/%FF%FE", 404),
        ("/api/v1/stacks/%FF", 404),
        ("/api/v1/admin/audit-logs?action=%00", 400),
        ("/api/v1/admin/audit-logs?actor_type=a%00b", 400),
        ("/api/v1/stacks?limit=%FF", 400),
    ] {
        let response = app.get(path, &app.admin).await;
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(content_type, "application/problem+json", "{path}");
    }
    let bearer = app
        .request(Method::GET, "/api/v1/whoami", None)
        .header("Authorization", format!("BEARER {}", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200, "the auth scheme is case-insensitive");
});

both_backends!(answers_carrying_a_pak_are_never_cached, |app| {
    let created = app
        .post(
            "/api/v1/generators",
            &app.admin,
            serde_json::json!({ "name": "ci" }),
        )
        .await;
    assert_eq!(created.headers()["cache-control"], "no-store");
    let generator = expect_json(created, 201).await;
    let id = id_of(&generator["generator"]);
    let rotated = app
        .post(
            &format!("/api/v1/generators/{id}/rotate-pak"),
            &app.admin,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    let agent = app
        .post(
            "/api/v1/agents",
            &app.admin,
            serde_json::json!({ "name": "edge", "cluster_name": "c" }),
        )
        .await;
    assert_eq!(agent.headers()["cache-control"], "no-store");
    let read = app
        .get(&format!("/api/v1/generators/{id}"), &app.admin)
        .await;
    assert!(read.headers().get("cache-control").is_none());
});

both_backends!(the_openapi_document_declares_what_is_served, |app| {
    let document = expect_json(
        app.client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let text = document.to_string();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let content = response["content"].as_object();
                let problem = content.is_some_and(|c| c.contains_key("application/problem+json"));
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(problem, "{method} {path} {status}: {response}");
                }
            }
            assert!(
                operation["responses"].get("5XX").is_some(),
                "{method} {path}"
            );
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if ["dry_run", "confirm", "limit", "offset", "wait"]
                    .contains(&parameter["name"].as_str().unwrap())
                {
                    assert_eq!(parameter["in"], "query", "{method} {path}: {parameter}");
                }
            }
        }
    }
    assert!(text.contains("/api/v1/plugins/{id}/bindings/{binding_id}"));
});

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(Backend::Sqlite).await;
    let path = app.database_url.trim_start_matches("sqlite://").to_string();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{path}");
}
