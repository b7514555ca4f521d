//! Where releases stand: health reported per deployment object (worst wins), rollout figures
//! computed from a timeline the test controls, `?wait=` holding until the rollout changes, and
//! the fleet view with its filters, backlog and reach.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// A generator reaching every agent labelled `fleet`, a stack for them, three such agents and
/// the stack's first deployment object.
struct Release {
    generator: String,
    stack: Uuid,
    object: Uuid,
    created_at: DateTime<Utc>,
    agents: Vec<(Uuid, String)>,
}

async fn release(app: &TestApp) -> Release {
    let (_, generator) = app
        .create_generator_reaching("team", "\"fleet\" in agent.labels")
        .await;
    let mut agents = Vec::new();
    for name in ["a", "b", "c"] {
        agents.push(app.create_agent(name, json!({ "labels": ["fleet"] })).await);
    }
    let stack = app
        .create_stack(&generator, json!({ "name": "web", "labels": ["fleet"] }))
        .await;
    let object = app.add_object(&generator, stack, CONFIG_MAP).await;
    Release {
        generator,
        stack,
        object: id_of(&object),
        created_at: object["created_at"].as_str().unwrap().parse().unwrap(),
        agents,
    }
}

/// An apply report that happened `after` the object was created.
async fn applied(app: &TestApp, r: &Release, agent: usize, after: i64, failure: Option<&str>) {
    let (id, pak) = &r.agents[agent];
    let body = json!({
        "idempotency_key": format!("apply-{}-{after}", Uuid::new_v4()),
        "deployment_object_id": r.object,
        "event_type": "apply",
        "status": if failure.is_some() { "failure" } else { "success" },
        "message": failure,
        "occurred_at": r.created_at + Duration::milliseconds(after),
    });
    expect_json(
        app.post(&format!("/api/v1/agents/{id}/events"), pak, body)
            .await,
        201,
    )
    .await;
}

async fn health(app: &TestApp, r: &Release, agent: usize, status: &str, after: i64) -> u16 {
    let (id, pak) = &r.agents[agent];
    let body = json!({ "deployment_objects": [{
        "deployment_object_id": r.object, "status": status, "message": format!("{status} here"),
        "observed_at": r.created_at + Duration::milliseconds(after),
    }] });
    app.request(
        reqwest::Method::PUT,
        &format!("/api/v1/agents/{id}/health"),
        Some(pak),
    )
    .json(&body)
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

both_backends!(rollout_figures_follow_the_timeline, |app| {
    let r = release(&app).await;
    let path = format!("/api/v1/deployment-objects/{}/rollout", r.object);
    let start = expect_json(app.get(&path, &r.generator).await, 200).await;
    assert_eq!(
        (start["targeted"].as_u64(), start["pending"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(start["state"], "progressing");
    assert!(
        start.get("convergence").is_none(),
        "no curve before an apply"
    );

    applied(&app, &r, 0, 1_000, None).await;
    applied(&app, &r, 1, 3_000, None).await;
    applied(&app, &r, 2, 2_000, Some("forbidden: configmaps")).await;
    assert_eq!(health(&app, &r, 0, "healthy", 5_000).await, 204);
    assert_eq!(health(&app, &r, 1, "degraded", 6_000).await, 204);

    let rollout = expect_json(app.get(&path, &r.generator).await, 200).await;
    assert_eq!(rollout["state"], "failed");
    assert_eq!(
        [&rollout["applied"], &rollout["failed"], &rollout["pending"]],
        [&json!(2), &json!(1), &json!(0)]
    );
    assert_eq!(rollout["failures"][0]["reason"], "forbidden: configmaps");
    assert_eq!(rollout["failures"][0]["agent_id"], json!(r.agents[2].0));
    assert_eq!(
        rollout["time_to_applied"],
        json!({ "count": 2, "p50_ms": 1000, "p95_ms": 3000, "max_ms": 3000 })
    );
    assert_eq!(rollout["time_to_healthy"]["max_ms"], 5000);
    assert_eq!(
        rollout["convergence"],
        json!([{ "after_ms": 1000, "applied": 1 }, { "after_ms": 3000, "applied": 2 }]),
        "the curve: one agent after 1 s, the second after 3 s (the failed one is not applied)"
    );
    assert_eq!(rollout["health"]["healthy"], 1);
    assert_eq!(rollout["health"]["degraded"], 1);
    let latest = format!("/api/v1/stacks/{}/rollout", r.stack);
    let by_stack = expect_json(app.get(&latest, &r.generator).await, 200).await;
    assert_eq!(by_stack, rollout, "the stack's newest release");

    let health_path = format!("/api/v1/deployment-objects/{}/health", r.object);
    let aggregated = expect_json(app.get(&health_path, &app.admin).await, 200).await;
    assert_eq!(aggregated["status"], "degraded", "the worst state wins");
    assert_eq!(aggregated["agents"][0]["message"], "degraded here");
});

both_backends!(a_rollout_request_waits_for_a_change, |app| {
    let r = release(&app).await;
    let path = format!("/api/v1/stacks/{}/rollout", r.stack);
    let first = app.get(&path, &r.generator).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let held = app
        .request(
            reqwest::Method::GET,
            &format!("{path}?wait=20"),
            Some(&r.generator),
        )
        .header("if-none-match", &etag)
        .send();
    let waiting = tokio::spawn(held);
    for agent in 0..3 {
        applied(&app, &r, agent, 500, None).await;
    }
    let answer = waiting.await.unwrap().unwrap();
    assert_ne!(answer.headers()["etag"].to_str().unwrap(), etag);
    let body: Value = answer.json().await.unwrap();
    let converged = if body["state"] == "converged" {
        body
    } else {
        // The hold ended at the first report; the next one sees them all.
        expect_json(app.get(&path, &r.generator).await, 200).await
    };
    assert_eq!(converged["state"], "converged");
    let too_long = app.get(&format!("{path}?wait=3600"), &r.generator).await;
    expect_problem(too_long, 400, "invalid_query").await;
});

both_backends!(health_reports_are_bounded_to_the_agents_objects, |app| {
    let r = release(&app).await;
    let (outsider, outsider_pak) = app.create_agent("outsider", json!({})).await;
    let body = json!({ "deployment_objects": [{ "deployment_object_id": r.object, "status": "healthy" }] });
    let refused = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/agents/{outsider}/health"),
            Some(&outsider_pak),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(refused, 403, "forbidden").await;
    assert_eq!(health(&app, &r, 0, "sideways", 0).await, 422);
    let far = r.created_at + Duration::days(1);
    let (id, pak) = &r.agents[0];
    let future = json!({ "deployment_objects": [{ "deployment_object_id": r.object, "status": "healthy", "observed_at": far }] });
    let refused = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/agents/{id}/health"),
            Some(pak),
        )
        .json(&future)
        .send()
        .await
        .unwrap();
    expect_problem(refused, 422, "validation_failed").await;
    let (_, stranger) = app.create_generator_reaching("stranger", "true").await;
    let hidden = app
        .get(
            &format!("/api/v1/deployment-objects/{}/health", r.object),
            &stranger,
        )
        .await;
    expect_problem(hidden, 404, "not_found").await;
});

both_backends!(the_fleet_view_filters_and_shows_backlog, |app| {
    let r = release(&app).await;
    applied(&app, &r, 0, 100, None).await;
    applied(&app, &r, 1, 100, Some("quota exceeded")).await;
    // A second release: agent a is one version behind, the others two.
    app.add_object(&r.generator, r.stack, CONFIG_MAP).await;
    let page = expect_json(app.get("/api/v1/fleet", &app.admin).await, 200).await;
    let items = page["items"].as_array().unwrap();
    let a = items.iter().find(|i| i["name"] == "a").unwrap();
    assert_eq!(a["stacks"][0]["applied_sequence"], 1);
    assert_eq!(a["stacks"][0]["latest_sequence"], 2);
    assert_eq!(a["backlog"], 1);
    let b = items.iter().find(|i| i["name"] == "b").unwrap();
    assert_eq!(b["backlog"], 2);
    assert_eq!(b["last_error"], "quota exceeded");

    let by_expression = expect_json(
        app.get(
            "/api/v1/fleet?expression=agent.name%20%3D%3D%20%22c%22",
            &app.admin,
        )
        .await,
        200,
    )
    .await;
    let names: Vec<&Value> = by_expression["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["name"])
        .collect();
    assert_eq!(names, [&json!("c")]);
    let labelled = expect_json(
        app.get("/api/v1/fleet?labels=fleet&limit=2", &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(labelled["items"].as_array().unwrap().len(), 2);
    let bad = app
        .get("/api/v1/fleet?expression=agent.%28", &app.admin)
        .await;
    expect_problem(bad, 422, "invalid_expression").await;

    // A generator sees the agents inside its reach only.
    app.create_agent("elsewhere", json!({})).await;
    let seen = expect_json(app.get("/api/v1/fleet", &r.generator).await, 200).await;
    let text = seen.to_string();
    assert!(!text.contains("elsewhere"), "{text}");
    assert_eq!(seen["items"].as_array().unwrap().len(), 3);
    let (_, pak) = &r.agents[0];
    assert_eq!(app.get("/api/v1/fleet", pak).await.status(), 403);
});

both_backends!(
    rollouts_announce_their_failure_and_their_convergence,
    |app| {
        let receiver = crate::receiver::Receiver::start().await;
        crate::webhooks::subscribe(&app, &app.admin, &receiver.url, &["rollout.*"], json!({}))
            .await;
        let r = release(&app).await;
        applied(&app, &r, 0, 100, None).await;
        applied(&app, &r, 1, 200, Some("quota exceeded")).await;
        applied(&app, &r, 2, 300, Some("quota exceeded")).await;
        let failed = receiver.received(1).await;
        let event = failed[0].json();
        assert_eq!(event["type"], "rollout.failed");
        assert_eq!(event["data"]["deployment_object_id"], json!(r.object));
        assert_eq!(
            event["data"]["agent_id"],
            json!(r.agents[1].0),
            "the first failure"
        );
        // The failing agents recover: the last success converges the release, once.
        applied(&app, &r, 1, 400, None).await;
        applied(&app, &r, 2, 500, None).await;
        applied(&app, &r, 2, 600, None).await;
        let all = receiver.received(2).await;
        let kinds: Vec<Value> = all.iter().map(|d| d.json()["type"].clone()).collect();
        assert_eq!(kinds, [json!("rollout.failed"), json!("rollout.converged")]);
        assert_eq!(all[1].json()["data"]["agent_id"], json!(r.agents[2].0));
    }
);

both_backends!(
    the_fleet_gauges_count_agents_by_state_and_the_backlog,
    |app| {
        let r = release(&app).await;
        let beat = |reachable: bool| json!({ "kubernetes_reachable": reachable });
        for (agent, reachable) in [(0, true), (1, false)] {
            let (id, pak) = &r.agents[agent];
            let response = app
                .post(
                    &format!("/api/v1/agents/{id}/heartbeat"),
                    pak,
                    beat(reachable),
                )
                .await;
            assert!(response.status().is_success(), "{}", response.status());
        }
        applied(&app, &r, 0, 100, None).await;
        assert_eq!(health(&app, &r, 0, "degraded", 200).await, 204);
        let text = app.get("/metrics", &app.admin).await.text().await.unwrap();
        for line in [
            r#"brokkr_fleet_agents{state="degraded"} 1"#,
            r#"brokkr_fleet_agents{state="unreachable"} 1"#,
            r#"brokkr_fleet_agents{state="stale"} 1"#,
            r#"brokkr_fleet_agents{state="healthy"} 0"#,
            // b and c have not applied the stack's one version.
            "brokkr_fleet_backlog 2",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
);

both_backends!(
    a_generator_sees_no_agent_outside_its_reach_in_a_rollout,
    |app| {
        let r = release(&app).await;
        // An admin targets the generator's stack at an agent outside the generator's reach.
        let (outsider, outsider_pak) = app.create_agent("outsider", json!({})).await;
        app.target(&app.admin, outsider, r.stack).await;
        let body = json!({ "idempotency_key": "outsider-apply", "deployment_object_id": r.object,
        "event_type": "apply", "status": "failure", "message": "outside" });
        let path = format!("/api/v1/agents/{outsider}/events");
        expect_json(app.post(&path, &outsider_pak, body).await, 201).await;
        let report = json!({ "deployment_objects": [{ "deployment_object_id": r.object, "status": "failing" }] });
        let put = app
            .request(
                reqwest::Method::PUT,
                &format!("/api/v1/agents/{outsider}/health"),
                Some(&outsider_pak),
            )
            .json(&report)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 204);

        let rollout = format!("/api/v1/deployment-objects/{}/rollout", r.object);
        let health = format!("/api/v1/deployment-objects/{}/health", r.object);
        let as_admin = expect_json(app.get(&rollout, &app.admin).await, 200).await;
        assert_eq!(
            (as_admin["targeted"].as_u64(), as_admin["failed"].as_u64()),
            (Some(4), Some(1))
        );
        let admin_health = expect_json(app.get(&health, &app.admin).await, 200).await;
        assert_eq!(admin_health["status"], "failing");
        let as_owner = expect_json(app.get(&rollout, &r.generator).await, 200).await;
        assert_eq!(
            (as_owner["targeted"].as_u64(), as_owner["failed"].as_u64()),
            (Some(3), Some(0))
        );
        let owner_health = expect_json(app.get(&health, &r.generator).await, 200).await;
        assert_eq!(
            owner_health["status"],
            Value::Null,
            "nobody inside the reach reported"
        );
        for text in [as_owner.to_string(), owner_health.to_string()] {
            assert!(!text.contains(&outsider.to_string()), "{text}");
        }
    }
);

both_backends!(kept_figures_follow_every_report_and_new_targets, |app| {
    let r = release(&app).await;
    let path = format!("/api/v1/deployment-objects/{}/rollout", r.object);
    let read = || async { expect_json(app.get(&path, &r.generator).await, 200).await };
    assert_eq!(read().await["targeted"], 3);
    applied(&app, &r, 0, 100, Some("quota exceeded")).await;
    assert_eq!(read().await["failed"], 1);
    // The same agent's row changes again: the kept figures take the newer row.
    applied(&app, &r, 0, 200, None).await;
    let now = read().await;
    assert_eq!(
        (now["failed"].as_u64(), now["applied"].as_u64()),
        (Some(0), Some(1))
    );
    // An agent that joins the stack joins its figures.
    app.create_agent("d", json!({ "labels": ["fleet"] })).await;
    let grown = read().await;
    assert_eq!(
        (grown["targeted"].as_u64(), grown["pending"].as_u64()),
        (Some(4), Some(3))
    );
});
