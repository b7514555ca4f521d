//! Targeting by labels, annotations and CEL; explanations, previews, the untargeting guard,
//! evaluation errors, and long polls that wake on change (on every replica).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// Holds a 30 s long poll of `path` on `poller` with `etag` while `publish` runs; asserts the
/// poll was answered by it (`why`), well before its wait ended, with the object it published.
async fn answered_by_publish(
    poller: &TestApp,
    (path, pak, etag): (&str, &str, &str),
    publish: impl std::future::Future<Output = Value>,
    why: &str,
) {
    let poll = poller
        .get_if_none_match(&format!("{path}?wait=30"), pak, etag)
        .send();
    let publish = async {
        tokio::task::yield_now().await;
        publish.await
    };
    let started = Instant::now();
    let (response, published) = tokio::join!(poll, publish);
    assert!(started.elapsed() < Duration::from_secs(10), "{why}");
    let state = expect_json(response.unwrap(), 200).await;
    assert_eq!(
        state["stacks"][0]["deployment_object"]["id"],
        published["id"]
    );
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

both_backends!(labels_and_annotations_target_without_assignment, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let (prod, prod_pak) = app
        .create_agent(
            "prod-1",
            json!({ "labels": ["prod"], "annotations": { "region": "us-east" } }),
        )
        .await;
    let (eu, eu_pak) = app
        .create_agent("eu-1", json!({ "annotations": { "region": "eu" } }))
        .await;
    let by_label = app
        .create_stack(
            &generator,
            json!({ "name": "by-label", "labels": ["prod"] }),
        )
        .await;
    let by_annotation = app
        .create_stack(
            &generator,
            json!({ "name": "by-annotation", "annotations": { "region": "eu" } }),
        )
        .await;
    let untagged = app
        .create_stack(&generator, json!({ "name": "untagged" }))
        .await;
    for stack in [by_label, by_annotation, untagged] {
        app.add_object(&generator, stack, CONFIG_MAP).await;
    }
    assert_eq!(
        app.targeted_stacks(prod, &prod_pak).await,
        vec![by_label.to_string()]
    );
    assert_eq!(
        app.targeted_stacks(eu, &eu_pak).await,
        vec![by_annotation.to_string()]
    );

    // Changing an agent's labels retargets it.
    app.post(
        &format!("/api/v1/agents/{eu}/labels"),
        &app.admin,
        json!({ "label": "prod" }),
    )
    .await;
    let mut both = vec![by_label.to_string(), by_annotation.to_string()];
    both.sort();
    assert_eq!(app.targeted_stacks(eu, &eu_pak).await, both);
    app.delete(
        &format!("/api/v1/agents/{eu}/annotations/region"),
        &app.admin,
    )
    .await;
    assert_eq!(
        app.targeted_stacks(eu, &eu_pak).await,
        vec![by_label.to_string()]
    );
});

both_backends!(cel_expressions_target_and_explain, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let (east, east_pak) = app
        .create_agent(
            "east",
            json!({ "labels": ["prod"], "annotations": { "region": "us-east" } }),
        )
        .await;
    let (west, west_pak) = app
        .create_agent(
            "west",
            json!({ "labels": ["prod"], "annotations": { "region": "us-west" } }),
        )
        .await;
    let expression =
        r#""prod" in agent.labels && agent.annotations.region == stack.annotations.region"#;
    let body = json!({ "name": "regional", "labels": ["prod"], "annotations": { "region": "us-east" }, "target_expression": expression });
    let stack = expect_json(app.post("/api/v1/stacks", &generator, body).await, 201).await;
    assert_eq!(stack["target_expression"], expression);
    let stack = id_of(&stack);
    app.add_object(&generator, stack, CONFIG_MAP).await;
    assert_eq!(
        app.targeted_stacks(east, &east_pak).await,
        vec![stack.to_string()]
    );
    assert!(
        app.targeted_stacks(west, &west_pak).await.is_empty(),
        "shared labels do not apply when an expression is set"
    );

    let reach = expect_json(
        app.get(&format!("/api/v1/stacks/{stack}/targeting"), &generator)
            .await,
        200,
    )
    .await;
    assert_eq!(reach["items"].as_array().unwrap().len(), 1);
    assert_eq!(reach["items"][0]["agent_name"], "east");
    assert_eq!(reach["items"][0]["rules"], json!(["expression"]));

    let why_not = expect_json(
        app.get(&format!("/api/v1/agents/{west}/targeting"), &app.admin)
            .await,
        200,
    )
    .await;
    let verdict = &why_not["items"][0];
    assert_eq!(
        (verdict["targeted"].as_bool(), verdict["assigned"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(verdict["target_expression"], expression);

    // Removing the expression brings label matching back.
    let cleared = app
        .patch(
            &format!("/api/v1/stacks/{stack}"),
            &generator,
            json!({ "target_expression": null }),
        )
        .await;
    assert!(expect_json(cleared, 200).await["target_expression"].is_null());
    assert_eq!(
        app.targeted_stacks(west, &west_pak).await,
        vec![stack.to_string()]
    );
});

both_backends!(bad_expressions_are_refused_with_a_position, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let bad = json!({ "name": "s", "target_expression": "agent.labels.exists(l, l ==" });
    let problem = expect_problem(
        app.post("/api/v1/stacks", &generator, bad).await,
        422,
        "invalid_expression",
    )
    .await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("target_expression: syntax error") && detail.contains("line 1, column"),
        "{detail}"
    );
    assert_eq!(problem["errors"][0]["location"], "target_expression");

    let deep = json!({ "name": "s", "target_expression": format!("{}true{}", "(".repeat(100), ")".repeat(100)) });
    expect_problem(
        app.post("/api/v1/stacks", &generator, deep).await,
        422,
        "invalid_expression",
    )
    .await;
    let long = json!({ "name": "s", "target_expression": format!("'{}' == agent.name", "x".repeat(3000)) });
    expect_problem(
        app.post("/api/v1/stacks", &generator, long).await,
        422,
        "invalid_expression",
    )
    .await;
    let stack = app.create_stack(&generator, json!({ "name": "s" })).await;
    let costly = json!({ "target_expression": "agent.labels.all(a, agent.labels.all(b, agent.labels.exists(c, a == c)))" });
    expect_problem(
        app.patch(&format!("/api/v1/stacks/{stack}"), &generator, costly)
            .await,
        422,
        "invalid_expression",
    )
    .await;
});

both_backends!(evaluation_errors_never_untarget, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let (agent, pak) = app
        .create_agent("gold", json!({ "annotations": { "tier": "gold" } }))
        .await;
    let body = json!({ "name": "s", "target_expression": "agent.annotations.tier == 'gold'" });
    let stack = app.create_stack(&generator, body).await;
    app.add_object(&generator, stack, CONFIG_MAP).await;
    assert_eq!(
        app.targeted_stacks(agent, &pak).await,
        vec![stack.to_string()]
    );

    // Without the annotation the expression cannot be evaluated: the stack stays.
    app.delete(
        &format!("/api/v1/agents/{agent}/annotations/tier"),
        &app.admin,
    )
    .await;
    assert_eq!(
        app.targeted_stacks(agent, &pak).await,
        vec![stack.to_string()]
    );
    let why = expect_json(
        app.get(&format!("/api/v1/agents/{agent}/targeting"), &app.admin)
            .await,
        200,
    )
    .await;
    assert!(
        why["items"][0]["error"].as_str().unwrap().contains("tier"),
        "{why}"
    );
    assert_eq!(why["items"][0]["targeted"], true);

    // An agent that was never targeted is not targeted by an error either.
    let (other, other_pak) = app.create_agent("plain", json!({})).await;
    assert!(app.targeted_stacks(other, &other_pak).await.is_empty());
});

both_backends!(dry_runs_preview_without_changing, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let (a, a_pak) = app.create_agent("a", json!({ "labels": ["prod"] })).await;
    app.create_agent("b", json!({ "labels": ["staging"] }))
        .await;
    let stack = app
        .create_stack(&generator, json!({ "name": "s", "labels": ["prod"] }))
        .await;
    app.add_object(&generator, stack, CONFIG_MAP).await;

    let preview = app
        .patch(
            &format!("/api/v1/stacks/{stack}?dry_run=true"),
            &generator,
            json!({ "target_expression": "'staging' in agent.labels" }),
        )
        .await;
    let preview = expect_json(preview, 200).await;
    assert_eq!(preview["dry_run"], true);
    assert_eq!(names(&preview["gained"]), ["b"]);
    assert_eq!(names(&preview["lost"]), ["a"]);
    let unchanged = expect_json(
        app.get(&format!("/api/v1/stacks/{stack}"), &generator)
            .await,
        200,
    )
    .await;
    assert!(
        unchanged["target_expression"].is_null(),
        "nothing was written"
    );
    assert_eq!(
        app.targeted_stacks(a, &a_pak).await,
        vec![stack.to_string()]
    );

    let label_preview = app
        .post(
            &format!("/api/v1/stacks/{stack}/labels?dry_run=true"),
            &generator,
            json!({ "label": "staging" }),
        )
        .await;
    assert_eq!(
        names(&expect_json(label_preview, 200).await["gained"]),
        ["b"]
    );
    let removal = app
        .delete(
            &format!("/api/v1/stacks/{stack}/labels/prod?dry_run=true"),
            &generator,
        )
        .await;
    assert_eq!(names(&expect_json(removal, 200).await["lost"]), ["a"]);
    let agent_preview = app
        .post(
            &format!("/api/v1/agents/{a}/labels?dry_run=true"),
            &app.admin,
            json!({ "label": "x" }),
        )
        .await;
    assert!(
        expect_json(agent_preview, 200).await["gained"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.targeted_stacks(a, &a_pak).await,
        vec![stack.to_string()]
    );
});

both_backends!(mass_untargeting_needs_confirmation, |app| {
    let app = app
        .respawn(|s| {
            s.targeting.confirm_threshold = 2;
        })
        .await;
    let (_, generator) = app.create_generator("ci").await;
    for i in 0..3 {
        app.create_agent(&format!("edge-{i}"), json!({ "labels": ["fleet"] }))
            .await;
    }
    let stack = app
        .create_stack(&generator, json!({ "name": "s", "labels": ["fleet"] }))
        .await;
    let path = format!("/api/v1/stacks/{stack}");
    let body = json!({ "target_expression": "false" });
    let refused = expect_problem(
        app.patch(&path, &generator, body.clone()).await,
        409,
        "confirmation_required",
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("3 agents"),
        "{refused}"
    );
    let reach = expect_json(app.get(&format!("{path}/targeting"), &generator).await, 200).await;
    assert_eq!(
        reach["items"].as_array().unwrap().len(),
        3,
        "a refused change changes nothing"
    );
    assert_eq!(
        app.patch(&format!("{path}?confirm=true"), &generator, body)
            .await
            .status(),
        200
    );
    let reach = expect_json(app.get(&format!("{path}/targeting"), &generator).await, 200).await;
    assert!(reach["items"].as_array().unwrap().is_empty());
});

both_backends!(long_polls_return_on_change, |app| {
    let LabelledStack {
        generator,
        agent_pak: pak,
        stack,
        target_state: path,
    } = app.labelled_stack().await;
    app.add_object(&generator, stack, CONFIG_MAP).await;
    let etag = app.etag_of(&path, &pak).await;

    // Nothing changes: the poll is held, then answers 304.
    let started = Instant::now();
    let idle = app
        .get_if_none_match(&format!("{path}?wait=1"), &pak, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(idle.status(), 304);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "held for the wait"
    );

    // A change answers the waiting poll at once.
    let v2 = CONFIG_MAP.replace("value", "v2");
    let publish = app.add_object(&generator, stack, &v2);
    let why = "returned on change, not at the timeout";
    answered_by_publish(&app, (&path, &pak, &etag), publish, why).await;
    expect_problem(
        app.get(&format!("{path}?wait=61"), &pak).await,
        400,
        "invalid_query",
    )
    .await;
});

both_backends!(a_stacks_first_object_wakes_its_waiting_agents, |app| {
    let LabelledStack {
        generator,
        agent_pak: pak,
        stack,
        target_state: path,
    } = app.labelled_stack().await;
    // The stack has no object yet: the agent's state holds nothing.
    let etag = app.etag_of(&path, &pak).await;
    let publish = app.add_object(&generator, stack, CONFIG_MAP);
    let why = "returned on the first object, not at the timeout";
    answered_by_publish(&app, (&path, &pak, &etag), publish, why).await;
});

both_backends!(unchanged_polls_never_touch_the_database, |app| {
    let LabelledStack {
        generator,
        agent_pak: pak,
        stack,
        target_state: path,
    } = app.labelled_stack().await;
    app.add_object(&generator, stack, CONFIG_MAP).await;
    let etag = app.etag_of(&path, &pak).await;

    // Take away what target-state reads from the database.
    for sql in [
        "ALTER TABLE assignments RENAME TO assignments_away",
        "ALTER TABLE deployment_objects RENAME TO objects_away",
    ] {
        app.execute_sql(sql).await.unwrap();
    }
    let cached = app
        .get_if_none_match(&path, &pak, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304, "answered from memory");
});

#[tokio::test]
async fn a_change_on_one_replica_wakes_polls_on_another() {
    let (url, _) = fresh_database(Backend::Postgres).await;
    let a = spawn_app_with(settings_for(&url), None).await;
    let b = spawn_app_with(settings_for(&url), None)
        .await
        .with_admin(&a.admin);
    let LabelledStack {
        generator,
        agent_pak: pak,
        stack,
        target_state: path,
    } = a.labelled_stack().await;
    a.add_object(&generator, stack, CONFIG_MAP).await;
    let etag = b.etag_of(&path, &pak).await;
    let v2 = CONFIG_MAP.replace("value", "v2");
    let publish = a.add_object(&generator, stack, &v2);
    let why = "woken by the other replica's change";
    answered_by_publish(&b, (&path, &pak, &etag), publish, why).await;
}

both_backends!(
    costly_and_mistyped_expressions_are_refused_when_written,
    |app| {
        let app = app
            .respawn(|s| s.targeting.max_evaluation_steps = 1_000)
            .await;
        let (_, generator) = app.create_generator("ci").await;
        for i in 0..3 {
            app.create_agent(&format!("edge-{i}"), json!({})).await;
        }
        let stack = app.create_stack(&generator, json!({ "name": "s" })).await;
        let path = format!("/api/v1/stacks/{stack}");
        let range = (0..150)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let costly = format!("[{range}].exists(x, [{range}].exists(y, x*y == -1))");
        let refusals = [
            (costly, "steps per evaluation"),
            ("agent.name".to_string(), "must return a boolean"),
            (
                "cluster.name == 'x'".to_string(),
                "unknown variable `cluster`",
            ),
            (
                "agent.labels.exists(l, l.startsWith('x'))".to_string(),
                "targeting.max_evaluation_steps",
            ),
        ];
        for (expression, reason) in refusals {
            let body = json!({ "target_expression": expression });
            let refused = app.patch(&path, &generator, body).await;
            let problem = expect_problem(refused, 422, "invalid_expression").await;
            assert!(
                problem["detail"].as_str().unwrap().contains(reason),
                "{problem}"
            );
        }
        let fine = json!({ "target_expression": "agent.name.matches('^edge-[0-9]$')" });
        assert_eq!(app.patch(&path, &generator, fine).await.status(), 200);
    }
);
