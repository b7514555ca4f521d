//! Webhook subscriptions through the API: created with a secret shown once, never shown again
//! (nor the URL's query string or header values), managed by their owner only, refused when
//! they could never work.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// Subscribes `url` to `types` as `pak`; returns the id and the signing secret.
pub async fn subscribe(
    app: &TestApp,
    pak: &str,
    url: &str,
    types: &[&str],
    extra: Value,
) -> (Uuid, String) {
    let mut body = json!({
        "name": format!("hook-{}", Uuid::new_v4().simple()),
        "url": url,
        "event_types": types,
    });
    if let (Some(target), Value::Object(more)) = (body.as_object_mut(), extra) {
        target.extend(more);
    }
    let created = expect_json(app.post("/api/v1/webhooks", pak, body).await, 201).await;
    (
        id_of(&created["webhook"]),
        created["secret"].as_str().unwrap().to_string(),
    )
}

both_backends!(subscriptions_show_their_secret_once, |app| {
    let body = json!({
        "name": "ci-alerts",
        "url": "https://hooks.example.com/services/T0?token=s3cret-query",
        "event_types": ["deployment.*", "stack.created"],
        "headers": { "Authorization": "Bearer h3ader-value" },
        "filter": "event.data.stack_name != 'ignored'",
        "max_attempts": 3,
        "timeout_seconds": 5,
    });
    let response = app.post("/api/v1/webhooks", &app.admin, body).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created = expect_json(response, 201).await;
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 44,
        "{secret}"
    );
    let id = id_of(&created["webhook"]);
    let shown = expect_json(
        app.get(&format!("/api/v1/webhooks/{id}"), &app.admin).await,
        200,
    )
    .await;
    assert_eq!(shown["url"], "https://hooks.example.com/services/T0?…");
    assert_eq!(shown["header_names"], json!(["Authorization"]));
    assert_eq!(shown["max_attempts"], 3);
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 1);
    let listed = app
        .get("/api/v1/webhooks", &app.admin)
        .await
        .text()
        .await
        .unwrap();
    for text in [shown.to_string(), listed] {
        for hidden in [secret, "s3cret-query", "h3ader-value"] {
            assert!(!text.contains(hidden), "{hidden} shown in {text}");
        }
    }
    let patched = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &app.admin,
            json!({ "enabled": false, "filter": null, "event_types": ["*"] }),
        )
        .await;
    let patched = expect_json(patched, 200).await;
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["filter"], Value::Null);
    assert_eq!(patched["event_types"], json!(["*"]));
    assert_eq!(
        patched["url"], shown["url"],
        "the sealed query survives other changes"
    );
    let types = expect_json(
        app.get("/api/v1/webhooks/event-types", &app.admin).await,
        200,
    )
    .await;
    let names: Vec<&str> = types["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    for expected in [
        "agent.created",
        "deployment.failed",
        "targeting.changed",
        "policy.violation",
        "pak.rotated",
        "webhook.dead",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}"), &app.admin)
            .await
            .status(),
        204
    );
    expect_problem(
        app.get(&format!("/api/v1/webhooks/{id}"), &app.admin).await,
        404,
        "not_found",
    )
    .await;
});

both_backends!(subscriptions_that_cannot_work_are_refused, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let base =
        || json!({ "name": "h", "url": "https://hooks.example.com/x", "event_types": ["*"] });
    let with = |key: &str, value: Value| {
        let mut body = base();
        body[key] = value;
        body
    };
    for (body, code) in [
        (with("url", json!("ftp://x/y")), "validation_failed"),
        (
            with("url", json!("https://user:pw@x/y")),
            "validation_failed",
        ),
        (
            with("event_types", json!(["stack.exploded"])),
            "validation_failed",
        ),
        (with("event_types", json!([])), "validation_failed"),
        (with("filter", json!("event.type ==")), "validation_failed"),
        (
            with("filter", json!("agent.name == 'x'")),
            "validation_failed",
        ),
        (
            with("headers", json!({ "webhook-signature": "v1,forged" })),
            "validation_failed",
        ),
        (with("max_attempts", json!(0)), "validation_failed"),
        (with("timeout_seconds", json!(600)), "validation_failed"),
        (
            with("url", json!("http://169.254.169.254/latest/meta-data")),
            "webhook_address_refused",
        ),
        (
            with("url", json!("http://10.1.2.3/hook")),
            "webhook_address_refused",
        ),
        (
            with("notifier_plugin_id", json!(Uuid::new_v4())),
            "validation_failed",
        ),
    ] {
        let response = app.post("/api/v1/webhooks", &generator, body.clone()).await;
        let status = response.status().as_u16();
        assert!(status == 422 || status == 400, "{body}: {status}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["code"] == code || status == 400,
            "{body}: {problem}"
        );
    }
    let (_, agent) = app.create_agent("edge", json!({})).await;
    expect_problem(
        app.post("/api/v1/webhooks", &agent, base()).await,
        403,
        "forbidden",
    )
    .await;
    let required_labels = expect_json(
        app.upload_plugin(
            "labels",
            plugin_wasm("required_labels"),
            Some(json!({ "keys": ["team"] })),
        )
        .await,
        201,
    )
    .await;
    let validator = with("notifier_plugin_id", required_labels["id"].clone());
    let problem = expect_problem(
        app.post("/api/v1/webhooks", &generator, validator).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not a notifier"),
        "{problem}"
    );
});

both_backends!(a_generator_manages_only_its_own, |app| {
    let (_, a) = app.create_generator("a").await;
    let (_, b) = app.create_generator("b").await;
    let (hook, _) = subscribe(&app, &a, "https://hooks.example.com/a", &["*"], json!({})).await;
    subscribe(&app, &b, "https://hooks.example.com/b", &["*"], json!({})).await;
    let path = format!("/api/v1/webhooks/{hook}");
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::PATCH, ""),
        (Method::DELETE, ""),
        (Method::POST, "/rotate-secret"),
        (Method::POST, "/test"),
        (Method::GET, "/deliveries"),
    ] {
        let request = app.request(method.clone(), &format!("{path}{suffix}"), Some(&b));
        let response = request.json(&json!({})).send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {suffix}");
    }
    let own = expect_json(app.get("/api/v1/webhooks", &a).await, 200).await;
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    assert_eq!(own["items"][0]["id"], hook.to_string());
    let all = expect_json(app.get("/api/v1/webhooks", &app.admin).await, 200).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let audit = expect_json(
        app.get("/api/v1/admin/audit-logs?action=webhook.*", &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
});

both_backends!(
    without_an_encryption_key_webhooks_are_not_configured,
    |app| {
        let app = app.respawn(|s| s.webhooks.encryption_keys.clear()).await;
        let body =
            json!({ "name": "h", "url": "https://hooks.example.com/x", "event_types": ["*"] });
        let problem = expect_problem(
            app.post("/api/v1/webhooks", &app.admin, body).await,
            409,
            "webhooks_not_configured",
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("webhooks.encryption_keys"),
            "{problem}"
        );
    }
);
