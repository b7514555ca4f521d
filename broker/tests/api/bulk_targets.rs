//! `POST /api/v1/stacks/{id}/targets`: one stack assigned to many agents in one transaction with
//! one retarget pass; repeats and existing assignments count once, a dry run previews, and an
//! unknown agent (or, for a generator, one outside its reach) fails the whole request.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

both_backends!(a_stack_is_assigned_to_many_agents_at_once, |app| {
    let mut agents = Vec::new();
    for name in ["a", "b", "c"] {
        agents.push(app.create_agent(name, json!({})).await);
    }
    let (_, generator) = app.create_generator("ci").await;
    let stack = app
        .create_published_stack(&generator, json!({ "name": "web" }))
        .await;
    let path = format!("/api/v1/stacks/{stack}/targets");
    let (a, b, c) = (agents[0].0, agents[1].0, agents[2].0);

    let preview = expect_json(
        app.post(
            &format!("{path}?dry_run=true"),
            &app.admin,
            json!({ "agent_ids": [a, b] }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(preview["dry_run"], true);
    let mut gained: Vec<&str> = preview["gained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    gained.sort();
    assert_eq!(gained, ["a", "b"]);
    assert!(
        app.targeted_stacks(a, &agents[0].1).await.is_empty(),
        "a dry run assigns nothing"
    );

    let body = json!({ "agent_ids": [a, b, a] });
    let done = expect_json(app.post(&path, &app.admin, body).await, 200).await;
    assert_eq!(
        done,
        json!({ "stack_id": stack, "requested": 2, "added": 2, "unchanged": 0 })
    );
    let again = json!({ "agent_ids": [a, b, c] });
    let done = expect_json(app.post(&path, &generator, again).await, 200).await;
    assert_eq!(
        (done["added"].as_u64(), done["unchanged"].as_u64()),
        (Some(1), Some(2))
    );
    for (agent, pak) in &agents {
        assert_eq!(app.targeted_stacks(*agent, pak).await, [stack.to_string()]);
    }
    let listed = expect_json(
        app.get(&format!("/api/v1/agents/{a}/targets"), &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(listed["items"][0]["assigned_by"], "admin");
    let audit = expect_json(
        app.get("/api/v1/admin/audit-logs?action=targets.added", &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
});

both_backends!(an_unknown_agent_fails_the_whole_request, |app| {
    let (inside, inside_pak) = app
        .create_agent("inside", json!({ "labels": ["payments"] }))
        .await;
    let (outside, _) = app
        .create_agent("outside", json!({ "labels": ["search"] }))
        .await;
    let (_, generator) = app
        .create_generator_reaching("payments-ci", "\"payments\" in agent.labels")
        .await;
    let stack = app
        .create_published_stack(&generator, json!({ "name": "api" }))
        .await;
    let path = format!("/api/v1/stacks/{stack}/targets");

    let ghost = Uuid::new_v4();
    let refused = app
        .post(&path, &app.admin, json!({ "agent_ids": [inside, ghost] }))
        .await;
    let problem = expect_problem(refused, 422, "unknown_agents").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&ghost.to_string())
    );
    let refused = app
        .post(&path, &generator, json!({ "agent_ids": [inside, outside] }))
        .await;
    let problem = expect_problem(refused, 422, "unknown_agents").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&outside.to_string()),
        "an agent outside the reach is refused like an unknown one"
    );
    assert!(
        app.targeted_stacks(inside, &inside_pak).await.is_empty(),
        "nothing was assigned"
    );

    let empty = app
        .post(&path, &app.admin, json!({ "agent_ids": [] }))
        .await;
    assert_eq!(empty.status(), 422);
    let too_many: Vec<Uuid> = (0..10_001).map(|_| Uuid::new_v4()).collect();
    let refused = app
        .post(&path, &app.admin, json!({ "agent_ids": too_many }))
        .await;
    assert_eq!(refused.status(), 422);
    let done = app
        .post(&path, &generator, json!({ "agent_ids": [inside] }))
        .await;
    expect_json(done, 200).await;
    assert_eq!(
        app.targeted_stacks(inside, &inside_pak).await,
        [stack.to_string()]
    );
});
