//! WASM policy plugins through the API: upload checks, bindings in enforce, warn and shadow
//! modes, recorded verdicts, trying a plugin on history, limits, and what agents receive.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

const UNLABELLED: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  k: v\n";
const LABELLED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  labels:\n    team: core\ndata:\n  k: v\n";

/// Uploads `required_labels` (keys: team) and binds it to `stack` in `mode`; returns the plugin.
async fn required_team(app: &TestApp, stack: Uuid, mode: &str) -> Value {
    let plugin = expect_json(
        app.upload_plugin(
            "required-labels",
            plugin_wasm("required_labels"),
            Some(json!({ "keys": ["team"] })),
        )
        .await,
        201,
    )
    .await;
    let binding = json!({ "scope": "stack", "scope_id": stack, "mode": mode });
    expect_json(
        app.post(
            &format!("/api/v1/plugins/{}/bindings", id_of(&plugin)),
            &app.admin,
            binding,
        )
        .await,
        201,
    )
    .await;
    plugin
}

async fn submit(app: &TestApp, pak: &str, stack: Uuid, yaml: &str) -> reqwest::Response {
    app.post(
        &format!("/api/v1/stacks/{stack}/deployment-objects"),
        pak,
        json!({ "yaml_content": yaml }),
    )
    .await
}

both_backends!(uploads_are_checked, |app| {
    let ok = expect_json(
        app.upload_plugin(
            "labels",
            plugin_wasm("required_labels"),
            Some(json!({ "keys": ["team"] })),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(ok["digest"].as_str().unwrap().len(), 64);
    assert_eq!(ok["config"], json!({ "keys": ["team"] }));
    assert!(ok["size"].as_i64().unwrap() > 1000);
    let listed = expect_json(app.get("/api/v1/plugins", &app.admin).await, 200).await;
    assert_eq!(listed["items"][0]["name"], "labels");

    let refused = [
        (
            "g",
            b"not wasm".to_vec(),
            None,
            "invalid_plugin",
            "not a WebAssembly component",
        ),
        (
            "w",
            plugin_wasm("wrong_world"),
            None,
            "invalid_plugin",
            "brokkr:plugin/validator",
        ),
        (
            "u",
            plugin_wasm("unknown_import"),
            None,
            "invalid_plugin",
            "open-socket",
        ),
        (
            "c",
            plugin_wasm("required_labels"),
            Some(json!({ "keys": [] })),
            "invalid_plugin_config",
            "at least one",
        ),
    ];
    for (name, wasm, config, code, says) in refused {
        let response = app.upload_plugin(name, wasm, config).await;
        let problem = expect_problem(response, 422, code).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{name}: {problem}");
    }
    expect_problem(
        app.upload_plugin(
            "labels",
            plugin_wasm("required_labels"),
            Some(json!({ "keys": ["x"] })),
        )
        .await,
        409,
        "conflict",
    )
    .await;

    let id = id_of(&ok);
    let reconfigured = app
        .request(
            Method::PATCH,
            &format!("/api/v1/plugins/{id}"),
            Some(&app.admin),
        )
        .json(&json!({ "config": { "keys": [] } }))
        .send()
        .await
        .unwrap();
    expect_problem(reconfigured, 422, "invalid_plugin_config").await;
    assert_eq!(
        app.delete(&format!("/api/v1/plugins/{id}"), &app.admin)
            .await
            .status(),
        204
    );
    expect_problem(
        app.get(&format!("/api/v1/plugins/{id}"), &app.admin).await,
        404,
        "not_found",
    )
    .await;
});

both_backends!(enforce_rejects_with_every_violation, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let stack = app.create_stack(&generator, json!({ "name": "s" })).await;
    let plugin = required_team(&app, stack, "enforce").await;
    let rejected = expect_problem(
        submit(
            &app,
            &generator,
            stack,
            &format!("{UNLABELLED}---\n{CONFIG_MAP}"),
        )
        .await,
        422,
        "policy_violation",
    )
    .await;
    let errors = rejected["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{rejected}");
    assert_eq!(
        errors[0]["location"],
        "plugins.required-labels: ConfigMap plain metadata.labels.team"
    );
    assert_eq!(errors[0]["message"], "missing required label `team`");
    let listed = expect_json(
        app.get(
            &format!("/api/v1/stacks/{stack}/deployment-objects"),
            &generator,
        )
        .await,
        200,
    )
    .await;
    assert!(
        listed["items"].as_array().unwrap().is_empty(),
        "nothing was stored"
    );
    assert_eq!(
        expect_json(submit(&app, &generator, stack, LABELLED).await, 201).await["sequence_id"],
        1
    );
    let verdicts = expect_json(
        app.get(
            &format!("/api/v1/plugins/{}/verdicts", id_of(&plugin)),
            &app.admin,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(verdicts["items"][0]["outcome"], "violations");
    assert!(
        verdicts["items"][0]["deployment_object_id"].is_null(),
        "the rejected submission was never stored"
    );
});

both_backends!(warn_and_shadow_accept_and_record, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let warned = app
        .create_stack(&generator, json!({ "name": "warned" }))
        .await;
    let shadowed = app
        .create_stack(&generator, json!({ "name": "shadowed" }))
        .await;
    let plugin = required_team(&app, warned, "warn").await;
    let binding = json!({ "scope": "stack", "scope_id": shadowed, "mode": "shadow" });
    app.post(
        &format!("/api/v1/plugins/{}/bindings", id_of(&plugin)),
        &app.admin,
        binding,
    )
    .await;

    let accepted = expect_json(submit(&app, &generator, warned, UNLABELLED).await, 201).await;
    assert_eq!(accepted["policy"][0]["plugin"], "required-labels");
    assert_eq!(accepted["policy"][0]["mode"], "warn");
    assert_eq!(
        accepted["policy"][0]["violations"][0]["path"],
        "metadata.labels.team"
    );
    let quiet = expect_json(submit(&app, &generator, shadowed, UNLABELLED).await, 201).await;
    assert!(
        quiet.get("policy").is_none(),
        "shadow findings are only recorded: {quiet}"
    );

    let verdicts = expect_json(
        app.get(
            &format!("/api/v1/plugins/{}/verdicts", id_of(&plugin)),
            &app.admin,
        )
        .await,
        200,
    )
    .await;
    let modes: Vec<&str> = verdicts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes.len(), 2);
    assert!(modes.contains(&"warn") && modes.contains(&"shadow"));
    assert!(
        verdicts["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["deployment_object_id"].is_string())
    );
});

both_backends!(a_plugin_can_be_tried_on_history, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let stack = app.create_stack(&generator, json!({ "name": "s" })).await;
    let good = id_of(&app.add_object(&generator, stack, LABELLED).await);
    let bad = id_of(&app.add_object(&generator, stack, UNLABELLED).await);
    let plugin = expect_json(
        app.upload_plugin(
            "labels",
            plugin_wasm("required_labels"),
            Some(json!({ "keys": ["team"] })),
        )
        .await,
        201,
    )
    .await;
    let path = format!("/api/v1/plugins/{}/dry-run", id_of(&plugin));
    let results = expect_json(
        app.post(
            &path,
            &app.admin,
            json!({ "scope": "stack", "scope_id": stack }),
        )
        .await,
        200,
    )
    .await;
    let by_id = |id: Uuid| {
        results["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["deployment_object_id"] == id.to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(by_id(good)["would_reject"], false);
    assert_eq!(by_id(bad)["would_reject"], true);
    assert_eq!(
        by_id(bad)["violations"][0]["message"],
        "missing required label `team`"
    );
    let bindings = expect_json(
        app.get(&format!("/api/v1/plugins/{}", id_of(&plugin)), &app.admin)
            .await,
        200,
    )
    .await;
    assert!(
        bindings["bindings"].as_array().unwrap().is_empty(),
        "trying binds nothing"
    );
    expect_problem(
        app.post(&path, &app.admin, json!({ "scope": "stack" }))
            .await,
        422,
        "validation_failed",
    )
    .await;
});

both_backends!(agents_receive_the_policies_of_their_stacks, |app| {
    let LabelledStack {
        generator,
        agent_pak: pak,
        stack,
        target_state: path,
    } = app.labelled_stack().await;
    app.add_object(&generator, stack, LABELLED).await;
    let before = app.etag_of(&path, &pak).await;
    let plugin = required_team(&app, stack, "enforce").await;
    let response = app
        .get_if_none_match(&path, &pak, &before)
        .send()
        .await
        .unwrap();
    let state = expect_json(response, 200).await;
    let policy = &state["policies"][0];
    assert_eq!(policy["plugin"], "required-labels");
    assert_eq!(policy["mode"], "enforce");
    assert_eq!(policy["scope_id"], stack.to_string());
    let digest = policy["digest"].as_str().unwrap();
    assert_eq!(digest, plugin["digest"]);
    let module = app
        .get(&format!("/api/v1/plugins/modules/{digest}"), &pak)
        .await;
    assert_eq!(module.status(), 200);
    assert_eq!(
        module.bytes().await.unwrap().to_vec(),
        plugin_wasm("required_labels")
    );
});

both_backends!(runaway_plugins_fail_closed_while_the_broker_serves, |app| {
    let app = app
        .respawn(|s| {
            s.plugins.timeout_ms = 300;
            s.plugins.fuel = 50_000_000_000;
        })
        .await;
    let (_, generator) = app.create_generator("ci").await;
    let stack = app.create_stack(&generator, json!({ "name": "s" })).await;
    let plugin = expect_json(
        app.upload_plugin("spin", plugin_wasm("spin"), None).await,
        201,
    )
    .await;
    let binding = json!({ "scope": "global", "mode": "enforce" });
    app.post(
        &format!("/api/v1/plugins/{}/bindings", id_of(&plugin)),
        &app.admin,
        binding,
    )
    .await;

    let slow = submit(&app, &generator, stack, LABELLED);
    let meanwhile = async {
        tokio::task::yield_now().await;
        let started = Instant::now();
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        (health.status(), started.elapsed())
    };
    let started = Instant::now();
    let (rejected, (health, health_took)) = tokio::join!(slow, meanwhile);
    assert_eq!(health, 200);
    assert!(
        health_took < Duration::from_millis(250),
        "other requests are served meanwhile ({health_took:?})"
    );
    let problem = expect_problem(rejected, 422, "policy_error").await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("time limit"),
        "{problem}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
});

both_backends!(uploads_have_their_own_size_limit, |app| {
    let app = app
        .respawn(|s| {
            s.plugins.max_upload_bytes = 10 * 1024;
        })
        .await;
    let problem = expect_problem(
        app.upload_plugin("big", plugin_wasm("required_labels"), None)
            .await,
        413,
        "payload_too_large",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("10240"),
        "{problem}"
    );
});

both_backends!(a_binding_changes_mode_in_place, |app| {
    let plugin = expect_json(
        app.upload_plugin(
            "labels",
            plugin_wasm("required_labels"),
            Some(json!({ "keys": ["team"] })),
        )
        .await,
        201,
    )
    .await;
    let id = id_of(&plugin);
    let binding = json!({ "scope": "global", "mode": "shadow" });
    let binding = expect_json(
        app.post(
            &format!("/api/v1/plugins/{id}/bindings"),
            &app.admin,
            binding,
        )
        .await,
        201,
    )
    .await;
    let path = format!("/api/v1/plugins/{id}/bindings/{}", id_of(&binding));
    let changed = expect_json(
        app.patch(&path, &app.admin, json!({ "mode": "enforce" }))
            .await,
        200,
    )
    .await;
    assert_eq!(
        (changed["id"].clone(), changed["mode"].clone()),
        (binding["id"].clone(), json!("enforce"))
    );
    let info = expect_json(
        app.get(&format!("/api/v1/plugins/{id}"), &app.admin).await,
        200,
    )
    .await;
    assert_eq!(info["bindings"].as_array().unwrap().len(), 1);
    assert_eq!(info["bindings"][0]["mode"], "enforce");
    let missing = format!("/api/v1/plugins/{id}/bindings/{}", uuid::Uuid::new_v4());
    expect_problem(
        app.patch(&missing, &app.admin, json!({ "mode": "warn" }))
            .await,
        404,
        "not_found",
    )
    .await;
});
