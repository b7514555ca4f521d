//! Webhook deliveries to real HTTP receivers: signed as Standard Webhooks specifies (checked by
//! an independent implementation), retried and given up as documented, confined to what a
//! generator may know, shaped by notifier plugins, and refused for internal addresses.

use crate::helpers::*;
use crate::receiver::{Receiver, Reply, signed_with};
use crate::webhooks::subscribe;
use serde_json::{Value, json};
use uuid::Uuid;

/// The deliveries of a subscription, as admin.
async fn deliveries(app: &TestApp, hook: Uuid, query: &str) -> Vec<Value> {
    let path = format!("/api/v1/webhooks/{hook}/deliveries{query}");
    let page = expect_json(app.get(&path, &app.admin).await, 200).await;
    page["items"].as_array().unwrap().clone()
}

/// Waits until the subscription has a delivery in `status`; returns it.
async fn delivery_in(app: &TestApp, hook: Uuid, status: &str) -> Value {
    eventually(&format!("a {status} delivery"), || async {
        deliveries(app, hook, &format!("?status={status}"))
            .await
            .into_iter()
            .next()
    })
    .await
}

both_backends!(deliveries_are_signed_standard_webhooks, |app| {
    let receiver = Receiver::start().await;
    let (_, generator) = app.create_generator("ci").await;
    let (_, secret) = subscribe(
        &app,
        &app.admin,
        &receiver.url,
        &["stack.*", "deployment.created"],
        json!({}),
    )
    .await;
    let before = chrono::Utc::now().timestamp();
    let stack = app.create_stack(&generator, json!({ "name": "web" })).await;
    app.add_object(&generator, stack, CONFIG_MAP).await;
    let got = receiver.received(2).await;
    let created = got
        .iter()
        .find(|r| r.json()["type"] == "stack.created")
        .expect("stack.created");
    assert!(
        signed_with(&secret, created),
        "signature: {:?}",
        created.headers
    );
    assert_eq!(created.header("content-type"), "application/json");
    let envelope = created.json();
    assert_eq!(
        created.header("webhook-id"),
        envelope["id"].as_str().unwrap()
    );
    let timestamp: i64 = created.header("webhook-timestamp").parse().unwrap();
    assert!(
        (before - 5..=before + 30).contains(&timestamp),
        "{timestamp}"
    );
    assert_eq!(envelope["data"]["stack_id"], stack.to_string());
    assert_eq!(envelope["data"]["stack_name"], "web");
    assert!(envelope["timestamp"].as_str().unwrap().ends_with('Z'));
    let object = got
        .iter()
        .find(|r| r.json()["type"] == "deployment.created")
        .expect("deployment.created");
    assert!(signed_with(&secret, object));
    assert_eq!(object.json()["data"]["sequence_id"], 1);
    assert!(
        !object.text().contains("ConfigMap"),
        "manifest contents never leave: {}",
        object.text()
    );
    let wrong = format!("whsec_{}", "A".repeat(44));
    assert!(!signed_with(&wrong, created));
});

both_backends!(failures_are_retried_then_given_up_and_announced, |app| {
    let flaky = Receiver::start().await;
    flaky.script([Reply::Status(503), Reply::RetryAfter(429, 1)]);
    let gone = Receiver::answering(Reply::Status(410)).await;
    let watcher = Receiver::start().await;
    let (_, generator) = app.create_generator("ci").await;
    let (flaky_hook, _) =
        subscribe(&app, &app.admin, &flaky.url, &["stack.created"], json!({})).await;
    let (gone_hook, _) = subscribe(
        &app,
        &app.admin,
        &gone.url,
        &["stack.created"],
        json!({ "max_attempts": 5 }),
    )
    .await;
    subscribe(&app, &app.admin, &watcher.url, &["webhook.dead"], json!({})).await;
    let stack = app.create_stack(&generator, json!({ "name": "web" })).await;
    let attempts = flaky.received(3).await;
    let ids: Vec<&str> = attempts.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event id across retries: {ids:?}"
    );
    let delivered = delivery_in(&app, flaky_hook, "delivered").await;
    assert_eq!(delivered["attempts"], 3);
    assert_eq!(delivered["last_status_code"], 204);
    let dead = delivery_in(&app, gone_hook, "dead").await;
    assert_eq!(dead["attempts"], 1, "a 410 is not retried");
    assert_eq!(gone.count(), 1);
    let announced = watcher
        .first_matching(|e| e["type"] == "webhook.dead")
        .await
        .json();
    assert_eq!(announced["data"]["webhook_id"], gone_hook.to_string());
    assert_eq!(announced["data"]["event_type"], "stack.created");
    assert_eq!(announced["data"]["last_status_code"], 410);
    let audit = expect_json(
        app.get(
            "/api/v1/admin/audit-logs?action=webhook.delivery_dead",
            &app.admin,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    let metrics = app.get("/metrics", &app.admin).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"brokkr_webhook_attempts_total{outcome="dead"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"brokkr_webhook_attempts_total{outcome="retried"} 2"#),
        "{metrics}"
    );
    gone.answer(Reply::Status(200));
    let redelivery = app
        .post(
            &format!(
                "/api/v1/webhook-deliveries/{}/redeliver",
                dead["id"].as_str().unwrap()
            ),
            &app.admin,
            json!({}),
        )
        .await;
    let redelivery = expect_json(redelivery, 202).await;
    assert_ne!(redelivery["id"], dead["id"]);
    let again = gone.received(2).await;
    assert_eq!(again[1].json()["data"]["stack_id"], stack.to_string());
    assert_eq!(again[1].header("webhook-id"), again[0].header("webhook-id"));
});

both_backends!(rotated_secrets_sign_beside_the_new_one, |app| {
    let receiver = Receiver::start().await;
    let (hook, old) = subscribe(
        &app,
        &app.admin,
        &receiver.url,
        &["stack.created"],
        json!({}),
    )
    .await;
    let rotated = app
        .post(
            &format!("/api/v1/webhooks/{hook}/rotate-secret"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    let rotated = expect_json(rotated, 200).await;
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    let secrets = rotated["webhook"]["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert_eq!(
        secrets.iter().filter(|s| s["expires_at"].is_null()).count(),
        1
    );
    let sent = expect_json(
        app.post(
            &format!("/api/v1/webhooks/{hook}/test"),
            &app.admin,
            json!({}),
        )
        .await,
        202,
    )
    .await;
    let got = receiver.received(1).await;
    assert_eq!(got[0].json()["type"], "webhook.test");
    assert_eq!(got[0].json()["id"], sent["event_id"]);
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(signed_with(&old, &got[0]) && signed_with(new, &got[0]));
});

both_backends!(test_events_and_filters_choose_the_recipients, |app| {
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let (_, generator) = app.create_generator("ci").await;
    let (hook, _) = subscribe(&app, &app.admin, &first.url, &["webhook.test"], json!({})).await;
    let filter = json!({ "filter": "event.data.stack_name == 'keep'" });
    subscribe(&app, &app.admin, &second.url, &["*"], filter).await;
    app.post(
        &format!("/api/v1/webhooks/{hook}/test"),
        &app.admin,
        json!({}),
    )
    .await;
    app.create_stack(&generator, json!({ "name": "drop" }))
        .await;
    app.create_stack(&generator, json!({ "name": "keep" }))
        .await;
    let kept = second
        .first_matching(|e| e["data"]["stack_name"] == "keep")
        .await;
    assert_eq!(kept.json()["type"], "stack.created");
    assert_eq!(
        first.received(1).await[0].json()["data"]["webhook_id"],
        hook.to_string()
    );
    for request in second.all() {
        let event = request.json();
        assert_ne!(
            event["type"], "webhook.test",
            "a test goes to its subscription only"
        );
        assert_eq!(event["data"]["stack_name"], "keep", "{event}");
    }
});

both_backends!(generators_hear_only_of_their_own_stacks_and_reach, |app| {
    let receiver = Receiver::start().await;
    let (a_id, a) = app
        .create_generator_reaching("a", r#""a" in agent.labels"#)
        .await;
    let (_, b) = app.create_generator("b").await;
    let (hook, _) = subscribe(&app, &a, &receiver.url, &["*"], json!({})).await;
    let (inside, _) = app
        .create_agent("inside", json!({ "labels": ["a", "all"] }))
        .await;
    let (outside, outside_pak) = app
        .create_agent("outside", json!({ "labels": ["all"] }))
        .await;
    let foreign = app
        .create_published_stack(&b, json!({ "name": "b-stack", "labels": ["all"] }))
        .await;
    let object = app.add_object(&b, foreign, CONFIG_MAP).await;
    let failure = json!({ "idempotency_key": "f1", "deployment_object_id": object["id"], "event_type": "apply", "status": "failure", "message": "boom" });
    expect_json(
        app.post(
            &format!("/api/v1/agents/{outside}/events"),
            &outside_pak,
            failure,
        )
        .await,
        201,
    )
    .await;
    let rotated = app
        .post(
            &format!("/api/v1/generators/{a_id}/rotate-pak"),
            &app.admin,
            json!({}),
        )
        .await;
    let a = expect_json(rotated, 200).await["pak"]
        .as_str()
        .unwrap()
        .to_string();
    let own = app
        .create_published_stack(&a, json!({ "name": "a-stack", "labels": ["all"] }))
        .await;
    // The last event committed: once it is delivered, every earlier one was fanned out.
    let marker = receiver
        .first_matching(|e| {
            e["type"] == "deployment.created" && e["data"]["stack_id"] == own.to_string()
        })
        .await;
    assert!(marker.json()["data"]["generator_id"].is_string());
    let expected = deliveries(&app, hook, "?limit=1000").await.len();
    let got = receiver.received(expected).await;
    let texts: Vec<String> = got.iter().map(|r| r.text()).collect();
    for leaked in [
        outside.to_string(),
        foreign.to_string(),
        "outside".into(),
        "b-stack".into(),
    ] {
        assert!(
            texts.iter().all(|t| !t.contains(&leaked)),
            "{leaked} reached A: {texts:#?}"
        );
    }
    let kinds: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    for expected in [
        "agent.created",
        "pak.rotated",
        "stack.created",
        "targeting.changed",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "{expected} in {kinds:?}"
        );
    }
    assert!(texts.iter().any(|t| t.contains(&inside.to_string())));
});

both_backends!(notifier_plugins_shape_and_drop_deliveries, |app| {
    let receiver = Receiver::start().await;
    let plugin = app
        .upload_plugin(
            "slack",
            plugin_wasm("slack_notifier"),
            Some(json!({ "prefix": "[brokkr]" })),
        )
        .await;
    let plugin = expect_json(plugin, 201).await;
    assert_eq!(plugin["kind"], "notifier");
    let bind = json!({ "scope": "global", "mode": "enforce" });
    let refused = app
        .post(
            &format!(
                "/api/v1/plugins/{}/bindings",
                plugin["id"].as_str().unwrap()
            ),
            &app.admin,
            bind,
        )
        .await;
    expect_problem(refused, 422, "validation_failed").await;
    let notifier = json!({ "notifier_plugin_id": plugin["id"] });
    let (hook, secret) =
        subscribe(&app, &app.admin, &receiver.url, &["deployment.*"], notifier).await;
    let labelled = app.labelled_stack().await;
    let object = app
        .add_object(&labelled.generator, labelled.stack, CONFIG_MAP)
        .await;
    let agent = labelled.target_state.split('/').nth(4).unwrap().to_string();
    let failure = json!({ "idempotency_key": "f1", "deployment_object_id": object["id"], "event_type": "apply", "status": "failure", "message": "no" });
    let reported = app
        .post(
            &format!("/api/v1/agents/{agent}/events"),
            &labelled.agent_pak,
            failure,
        )
        .await;
    expect_json(reported, 201).await;
    let got = receiver.received(1).await;
    let text = got[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        text.starts_with("[brokkr]") && text.contains("`s`") && text.contains("`edge`"),
        "{text}"
    );
    assert!(
        signed_with(&secret, &got[0]),
        "what the plugin returns is signed"
    );
    let dropped = delivery_in(&app, hook, "dropped").await;
    assert_eq!(dropped["event_type"], "deployment.created");
});

both_backends!(internal_addresses_are_refused_when_connecting, |app| {
    let receiver = Receiver::start().await;
    let app = app.respawn(|s| s.webhooks.allowed_cidrs.clear()).await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let (hook, _) = subscribe(&app, &app.admin, &by_name, &["webhook.test"], json!({})).await;
    app.post(
        &format!("/api/v1/webhooks/{hook}/test"),
        &app.admin,
        json!({}),
    )
    .await;
    let dead = delivery_in(&app, hook, "dead").await;
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("localhost"),
        "{error}"
    );
    assert_eq!(dead["attempts"], 1);
    let literal = json!({ "name": "l", "url": receiver.url, "event_types": ["*"] });
    expect_problem(
        app.post("/api/v1/webhooks", &app.admin, literal).await,
        422,
        "webhook_address_refused",
    )
    .await;
    assert_eq!(receiver.count(), 0);
});

both_backends!(a_hanging_endpoint_does_not_hold_up_a_healthy_one, |app| {
    let hanging = Receiver::answering(Reply::Hang).await;
    let healthy = Receiver::start().await;
    let (_, generator) = app.create_generator("ci").await;
    subscribe(
        &app,
        &app.admin,
        &hanging.url,
        &["stack.created"],
        json!({ "timeout_seconds": 60 }),
    )
    .await;
    subscribe(
        &app,
        &app.admin,
        &healthy.url,
        &["stack.created"],
        json!({}),
    )
    .await;
    for n in 0..40 {
        app.create_stack(&generator, json!({ "name": format!("s{n}") }))
            .await;
    }
    let got = healthy.received(40).await;
    assert_eq!(got.len(), 40);
    let stuck = hanging.count();
    assert!(
        stuck <= 16,
        "at most max_concurrency_per_endpoint at once: {stuck}"
    );
});

both_backends!(
    webhook_secrets_survive_a_rekey_and_a_missing_key_stops_the_broker,
    |app| {
        let receiver = Receiver::start().await;
        let url = format!("{}?token=query-secret", receiver.url);
        let headers = json!({ "headers": { "x-token": "header-secret" } });
        let (hook, secret) = subscribe(&app, &app.admin, &url, &["webhook.test"], headers).await;
        let old_key = test_key("test-key");
        let new_key = test_key("rotated-key");
        let two_keys = format!(
            "{}:{},{}:{}:active",
            old_key.id, old_key.key, new_key.id, new_key.key
        );
        // The CLI blocks this thread: run it beside the broker's runtime, not on it.
        let url = app.database_url.clone();
        let rekeyed = tokio::task::spawn_blocking(move || {
            let env = [("BROKKR__WEBHOOKS__ENCRYPTION_KEYS", two_keys.as_str())];
            run_cli_with(&url, &["webhooks", "rekey"], &env)
        })
        .await
        .unwrap();
        assert!(
            rekeyed.contains("re-encrypted 2 webhook secret(s) under key rotated-key"),
            "{rekeyed}"
        );
        let database_url = app.database_url.clone();
        let app = app
            .respawn(|s| s.webhooks.encryption_keys = vec![new_key.clone()])
            .await;
        app.post(
            &format!("/api/v1/webhooks/{hook}/test"),
            &app.admin,
            json!({}),
        )
        .await;
        let got = receiver.received(1).await;
        assert!(signed_with(&secret, &got[0]));
        assert_eq!(got[0].header("x-token"), "header-secret");
        assert_eq!(got[0].uri, "/hook?token=query-secret");
        let mut settings = settings_for(&database_url);
        settings.webhooks.encryption_keys = vec![test_key("unrelated-key")];
        let refused = brokkr_broker::startup::Application::build(settings)
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("rotated-key"), "{refused}");
    }
);

both_backends!(finished_deliveries_are_pruned_after_the_retention, |app| {
    let receiver = Receiver::start().await;
    let (hook, _) = subscribe(
        &app,
        &app.admin,
        &receiver.url,
        &["webhook.test"],
        json!({}),
    )
    .await;
    let test = format!("/api/v1/webhooks/{hook}/test");
    expect_json(app.post(&test, &app.admin, json!({})).await, 202).await;
    delivery_in(&app, hook, "delivered").await;
    let app = app.respawn(|s| s.webhooks.retention_days = 0).await;
    eventually("the delivered delivery to be pruned", || async {
        deliveries(&app, hook, "").await.is_empty().then_some(())
    })
    .await;
});

both_backends!(targeting_events_name_the_agent_and_the_stack, |app| {
    let receiver = Receiver::start().await;
    let types = ["targeting.changed"];
    subscribe(&app, &app.admin, &receiver.url, &types, json!({})).await;
    let (one, _) = app.create_agent("edge-1", json!({})).await;
    let (two, _) = app.create_agent("edge-2", json!({})).await;
    let (owner, generator) = app.create_generator("ci").await;
    let stack = app
        .create_published_stack(&generator, json!({ "name": "web" }))
        .await;
    // One agent at a time (planned for the agent), many at once (planned for the stack), and
    // a removal (the agent loses the stack).
    let single = json!({ "stack_id": stack });
    let path = format!("/api/v1/agents/{one}/targets");
    expect_json(app.post(&path, &app.admin, single).await, 201).await;
    let bulk = json!({ "agent_ids": [two] });
    let path = format!("/api/v1/stacks/{stack}/targets");
    expect_json(app.post(&path, &app.admin, bulk).await, 200).await;
    let path = format!("/api/v1/agents/{one}/targets/{stack}");
    assert_eq!(app.delete(&path, &app.admin).await.status(), 204);

    let text = |v: &Value| v.as_str().unwrap_or("(missing)").to_string();
    let mut seen: Vec<[String; 5]> = receiver
        .received(3)
        .await
        .iter()
        .map(|r| {
            let data = &r.json()["data"];
            [
                text(&data["agent_name"]),
                text(&data["agent_id"]),
                text(&data["stack_name"]),
                text(&data["generator_id"]),
                text(&data["change"]),
            ]
        })
        .collect();
    seen.sort();
    let event = |name: &str, id: Uuid, change: &str| {
        [name, &id.to_string(), "web", &owner.to_string(), change].map(String::from)
    };
    assert_eq!(
        seen,
        [
            event("edge-1", one, "gained"),
            event("edge-1", one, "lost"),
            event("edge-2", two, "gained"),
        ]
    );
});
