//! The tenancy boundary: every generator's stacks reach only agents inside its reach (by every
//! targeting rule), a generator never learns of agents outside it, an admin alone sets a
//! reach, agents report only on stacks given to them, and inactive agents never write.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

const TEAM_A: &str = r#""team-a" in agent.labels"#;

/// Two teams' clusters: `a1` (team-a) and `b1` (team-b), both labelled `prod` and annotated
/// `region=eu`, and generator A reaching team-a's clusters only.
struct TwoTeams {
    generator: (Uuid, String),
    a1: (Uuid, String),
    b1: (Uuid, String),
}

async fn two_teams(app: &TestApp) -> TwoTeams {
    let generator = app.create_generator_reaching("team-a-ci", TEAM_A).await;
    let shared =
        |team: &str| json!({ "labels": [team, "prod"], "annotations": { "region": "eu" } });
    let a1 = app.create_agent("alpha", shared("team-a")).await;
    let b1 = app.create_agent("bravo", shared("team-b")).await;
    TwoTeams { generator, a1, b1 }
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_string())
        .collect()
}

both_backends!(a_generator_without_a_reach_reaches_nothing, |app| {
    let created = app
        .post(
            "/api/v1/generators",
            &app.admin,
            json!({ "name": "ci", "description": "no reach given" }),
        )
        .await;
    let created = expect_json(created, 201).await;
    assert_eq!(created["generator"]["reach"], "false");
    let pak = created["pak"].as_str().unwrap();
    let (agent, agent_pak) = app
        .create_agent("edge", json!({ "labels": ["prod"] }))
        .await;
    let stack = app
        .create_published_stack(pak, json!({ "name": "s", "labels": ["prod"] }))
        .await;
    assert!(app.targeted_stacks(agent, &agent_pak).await.is_empty());
    let target = json!({ "stack_id": stack });
    let path = format!("/api/v1/agents/{agent}/targets");
    expect_problem(app.post(&path, pak, target.clone()).await, 404, "not_found").await;
    let explain = format!("/api/v1/agents/{agent}/targeting");
    expect_problem(app.get(&explain, pak).await, 404, "not_found").await;

    // An admin's direct assignment is not confined, and the explanation says so; the
    // generator still does not see the agent.
    assert_eq!(app.post(&path, &app.admin, target).await.status(), 201);
    assert_eq!(
        app.targeted_stacks(agent, &agent_pak).await,
        [stack.to_string()]
    );
    let verdicts = expect_json(app.get(&explain, &app.admin).await, 200).await;
    let verdict = &verdicts["items"][0];
    assert_eq!(verdict["rules"], json!(["admin_direct"]), "{verdict}");
    assert_eq!(verdict["within_reach"], false);
    let reach = format!("/api/v1/stacks/{stack}/targeting");
    let for_admin = expect_json(app.get(&reach, &app.admin).await, 200).await;
    assert_eq!(for_admin["items"][0]["within_reach"], false);
    let for_generator = expect_json(app.get(&reach, pak).await, 200).await;
    assert_eq!(for_generator["items"], json!([]));
});

both_backends!(every_targeting_rule_is_confined_to_the_reach, |app| {
    let teams = two_teams(&app).await;
    let pak = &teams.generator.1;
    let by_label = app
        .create_published_stack(pak, json!({ "name": "by-label", "labels": ["prod"] }))
        .await;
    let by_annotation = app
        .create_published_stack(
            pak,
            json!({ "name": "by-annotation", "annotations": { "region": "eu" } }),
        )
        .await;
    let by_expression = app
        .create_published_stack(
            pak,
            json!({ "name": "everywhere", "target_expression": "true" }),
        )
        .await;
    let mut all = vec![
        by_label.to_string(),
        by_annotation.to_string(),
        by_expression.to_string(),
    ];
    all.sort();
    assert_eq!(app.targeted_stacks(teams.a1.0, &teams.a1.1).await, all);
    assert!(
        app.targeted_stacks(teams.b1.0, &teams.b1.1)
            .await
            .is_empty()
    );

    // A direct assignment outside the reach: the agent does not exist for the generator.
    let outside = format!("/api/v1/agents/{}/targets", teams.b1.0);
    let target = json!({ "stack_id": by_label });
    expect_problem(app.post(&outside, pak, target).await, 404, "not_found").await;
    for path in [
        format!("/api/v1/agents/{}/targeting", teams.b1.0),
        format!("/api/v1/agents/{}/targets", teams.b1.0),
        format!("/api/v1/agents/{}/events", teams.b1.0),
    ] {
        expect_problem(app.get(&path, pak).await, 404, "not_found").await;
    }
    let reach = format!("/api/v1/stacks/{by_expression}/targeting");
    let reached = expect_json(app.get(&reach, pak).await, 200).await;
    assert_eq!(ids(&reached["items"], "agent_id"), [teams.a1.0.to_string()]);
});

both_backends!(
    previews_and_errors_name_only_agents_inside_the_reach,
    |app| {
        let teams = two_teams(&app).await;
        let pak = &teams.generator.1;
        let stack = app.create_stack(pak, json!({ "name": "s" })).await;
        let preview = app
            .patch(
                &format!("/api/v1/stacks/{stack}?dry_run=true"),
                pak,
                json!({ "target_expression": "true" }),
            )
            .await;
        let preview = expect_json(preview, 200).await;
        assert_eq!(ids(&preview["gained"], "id"), [teams.a1.0.to_string()]);

        let failing = app
            .patch(
                &format!("/api/v1/stacks/{stack}?dry_run=true"),
                pak,
                json!({ "target_expression": "agent.annotations.zone == 'z1'" }),
            )
            .await;
        let failing = expect_json(failing, 200).await.to_string();
        assert!(failing.contains(&teams.a1.0.to_string()), "{failing}");
        assert!(!failing.contains(&teams.b1.0.to_string()), "{failing}");
        assert!(!failing.contains("bravo"), "{failing}");
    }
);

both_backends!(only_an_admin_sets_a_reach, |app| {
    let teams = two_teams(&app).await;
    let (id, pak) = &teams.generator;
    let path = format!("/api/v1/generators/{id}");
    let own = app.patch(&path, pak, json!({ "reach": "true" })).await;
    expect_problem(own, 403, "forbidden").await;
    let bad = app
        .patch(&path, &app.admin, json!({ "reach": "stack.name == 'x'" }))
        .await;
    let bad = expect_problem(bad, 422, "validation_failed").await;
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .contains("unknown variable `stack`"),
        "{bad}"
    );
    let generator = expect_json(app.get(&path, pak).await, 200).await;
    assert_eq!(
        generator["reach"], TEAM_A,
        "the generator sees its own reach"
    );
});

both_backends!(
    changing_a_reach_previews_guards_retargets_and_is_audited,
    |app| {
        let app = app
            .respawn(|s| {
                s.targeting.confirm_threshold = 1;
            })
            .await;
        let teams = two_teams(&app).await;
        let (id, pak) = &teams.generator;
        let a2 = app
            .create_agent("a2", json!({ "labels": ["team-a", "prod"] }))
            .await;
        let stack = app
            .create_published_stack(pak, json!({ "name": "s", "labels": ["prod"] }))
            .await;
        let path = format!("/api/v1/generators/{id}");

        let widen = json!({ "reach": r#""prod" in agent.labels"# });
        let preview = app
            .patch(&format!("{path}?dry_run=true"), &app.admin, widen.clone())
            .await;
        let preview = expect_json(preview, 200).await;
        assert_eq!(ids(&preview["gained"], "id"), [teams.b1.0.to_string()]);
        assert!(
            app.targeted_stacks(teams.b1.0, &teams.b1.1)
                .await
                .is_empty()
        );
        let widened = expect_json(app.patch(&path, &app.admin, widen).await, 200).await;
        assert_eq!(widened["reach"], r#""prod" in agent.labels"#);
        assert_eq!(
            app.targeted_stacks(teams.b1.0, &teams.b1.1).await,
            [stack.to_string()]
        );

        // Narrowing to nothing would take the stack from three agents: more than the guard allows.
        let nothing = json!({ "reach": "false" });
        let refused = app.patch(&path, &app.admin, nothing.clone()).await;
        expect_problem(refused, 409, "confirmation_required").await;
        assert_eq!(app.targeted_stacks(a2.0, &a2.1).await, [stack.to_string()]);
        let confirmed = app
            .patch(&format!("{path}?confirm=true"), &app.admin, nothing)
            .await;
        assert_eq!(confirmed.status(), 200);
        assert!(app.targeted_stacks(a2.0, &a2.1).await.is_empty());

        let audit = app
            .get(
                "/api/v1/admin/audit-logs?action=generator.reach_changed",
                &app.admin,
            )
            .await;
        let entries = expect_json(audit, 200).await;
        let changes: Vec<&Value> = entries["items"].as_array().unwrap().iter().collect();
        assert_eq!(changes.len(), 2, "{entries}");
        assert_eq!(changes[0]["details"]["to"], "false");
        assert_eq!(changes[1]["details"]["from"], TEAM_A);
    }
);

both_backends!(
    an_agent_moves_in_and_out_of_a_reach_with_its_labels,
    |app| {
        let teams = two_teams(&app).await;
        let stack = app
            .create_published_stack(
                &teams.generator.1,
                json!({ "name": "s", "labels": ["prod"] }),
            )
            .await;
        let (b1, b1_pak) = &teams.b1;
        let labels = format!("/api/v1/agents/{b1}/labels");
        let joined = app
            .post(&labels, &app.admin, json!({ "label": "team-a" }))
            .await;
        assert_eq!(joined.status(), 201);
        assert_eq!(app.targeted_stacks(*b1, b1_pak).await, [stack.to_string()]);
        let left = app.delete(&format!("{labels}/team-a"), &app.admin).await;
        assert_eq!(left.status(), 204);
        assert!(app.targeted_stacks(*b1, b1_pak).await.is_empty());
    }
);

both_backends!(agents_report_only_on_stacks_given_to_them, |app| {
    let teams = two_teams(&app).await;
    let pak = &teams.generator.1;
    let stack = app.create_stack(pak, json!({ "name": "s" })).await;
    let object = id_of(&app.add_object(pak, stack, CONFIG_MAP).await);
    let event = |key: &str| json!({ "idempotency_key": key, "deployment_object_id": object, "event_type": "apply", "status": "success" });
    let (a1, a1_pak) = &teams.a1;
    let events = format!("/api/v1/agents/{a1}/events");
    let foreign = app.post(&events, a1_pak, event("k1")).await;
    expect_problem(foreign, 403, "forbidden").await;
    let listed = expect_json(
        app.get(&format!("/api/v1/stacks/{stack}/events"), pak)
            .await,
        200,
    )
    .await;
    assert_eq!(listed["items"], json!([]), "nothing was stored");

    // Once the stack was targeted at the agent, it may report on it, even after untargeting.
    app.target(pak, *a1, stack).await;
    assert_eq!(app.post(&events, a1_pak, event("k2")).await.status(), 201);
    let untarget = format!("/api/v1/agents/{a1}/targets/{stack}");
    assert_eq!(app.delete(&untarget, pak).await.status(), 204);
    assert_eq!(app.post(&events, a1_pak, event("k3")).await.status(), 201);
    let (b1, b1_pak) = &teams.b1;
    let other = app
        .post(&format!("/api/v1/agents/{b1}/events"), b1_pak, event("k4"))
        .await;
    expect_problem(other, 403, "forbidden").await;
});

both_backends!(inactive_agents_read_but_never_write, |app| {
    let (agent, pak) = app
        .create_agent("edge", json!({ "status": "inactive" }))
        .await;
    let state = format!("/api/v1/agents/{agent}/target-state");
    assert_eq!(app.get(&state, &pak).await.status(), 200, "it may drain");
    assert_eq!(
        app.get(&format!("/api/v1/agents/{agent}"), &pak)
            .await
            .status(),
        200
    );
    let writes = [
        (
            format!("/api/v1/agents/{agent}/heartbeat"),
            json!({ "kubernetes_reachable": true }),
        ),
        (
            format!("/api/v1/agents/{agent}/events"),
            json!({ "idempotency_key": "k", "event_type": "health", "status": "success" }),
        ),
        (format!("/api/v1/agents/{agent}/rotate-pak"), json!({})),
    ];
    for (path, body) in &writes {
        let refused = app.post(path, &pak, body.clone()).await;
        expect_problem(refused, 403, "agent_inactive").await;
    }
    let activate = app
        .patch(
            &format!("/api/v1/agents/{agent}"),
            &app.admin,
            json!({ "status": "active" }),
        )
        .await;
    assert_eq!(activate.status(), 200);
    let (heartbeat, body) = &writes[0];
    assert_eq!(app.post(heartbeat, &pak, body.clone()).await.status(), 204);
    let (events, body) = &writes[1];
    assert_eq!(app.post(events, &pak, body.clone()).await.status(), 201);
});

both_backends!(labels_and_annotations_are_bounded, |app| {
    let app = app
        .respawn(|s| {
            s.limits.max_labels = 2;
            s.limits.max_annotations = 1;
        })
        .await;
    let (_, pak) = app.create_generator("ci").await;
    let too_many = json!({ "name": "s", "labels": ["a", "b", "c"] });
    let refused = app.post("/api/v1/stacks", &pak, too_many).await;
    expect_problem(refused, 422, "limit_exceeded").await;
    let stack = app
        .create_stack(&pak, json!({ "name": "s", "labels": ["a", "b"] }))
        .await;
    let more = app
        .post(
            &format!("/api/v1/stacks/{stack}/labels"),
            &pak,
            json!({ "label": "c" }),
        )
        .await;
    expect_problem(more, 422, "limit_exceeded").await;
    let notes = format!("/api/v1/stacks/{stack}/annotations");
    assert_eq!(
        app.post(&notes, &pak, json!({ "key": "k", "value": "v" }))
            .await
            .status(),
        201
    );
    let replaced = app
        .post(&notes, &pak, json!({ "key": "k", "value": "w" }))
        .await;
    assert_eq!(replaced.status(), 201, "replacing a value adds nothing");
    let second = app
        .post(&notes, &pak, json!({ "key": "k2", "value": "v" }))
        .await;
    expect_problem(second, 422, "limit_exceeded").await;
    let agent =
        json!({ "name": "edge", "cluster_name": "c", "annotations": { "a": "1", "b": "2" } });
    expect_problem(
        app.post("/api/v1/agents", &app.admin, agent).await,
        422,
        "limit_exceeded",
    )
    .await;
    let stored = expect_json(app.get(&format!("/api/v1/stacks/{stack}"), &pak).await, 200).await;
    assert_eq!(stored["labels"], json!(["a", "b"]), "nothing half-written");
});
