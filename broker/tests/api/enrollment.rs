//! Agent enrollment: tokens made by an admin and shown once; an agent enrolling gets its record
//! and PAK; unknown, wrong, expired, used-up and revoked tokens are refused without using
//! anything, and concurrent enrollments never exceed a token's uses.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::*;

async fn token(app: &TestApp, body: Value) -> (String, String) {
    let response = app
        .post("/api/v1/enrollment-tokens", &app.admin, body)
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let made = expect_json(response, 201).await;
    (
        made["token"].as_str().unwrap().to_string(),
        made["enrollment_token"]["id"].as_str().unwrap().to_string(),
    )
}

async fn enroll(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    let body = json!({ "token": token, "name": name, "cluster_name": "edge" });
    app.request(reqwest::Method::POST, "/api/v1/enroll", None)
        .json(&body)
        .send()
        .await
        .unwrap()
}

both_backends!(an_agent_enrolls_once_with_a_token, |app| {
    let body =
        json!({ "name_prefix": "edge-", "labels": ["edge"], "annotations": { "region": "eu" } });
    let (token, _) = token(&app, body).await;
    assert!(token.starts_with("brokkr_ET"), "{token}");
    let listed = app
        .get("/api/v1/enrollment-tokens", &app.admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&token[9..]), "the secret is shown once");
    let response = enroll(&app, &token, "berlin-1").await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created = expect_json(response, 201).await;
    assert_eq!(created["agent"]["name"], "edge-berlin-1");
    assert_eq!(created["agent"]["labels"], json!(["edge"]));
    assert_eq!(created["agent"]["annotations"]["region"], "eu");
    let pak = created["pak"].as_str().unwrap();
    let whoami = expect_json(app.get("/api/v1/whoami", pak).await, 200).await;
    assert_eq!(whoami["id"], created["agent"]["id"]);
    expect_problem(
        enroll(&app, &token, "berlin-2").await,
        401,
        "invalid_enrollment_token",
    )
    .await;
    let audit = expect_json(
        app.get("/api/v1/admin/audit-logs?action=agent.enrolled", &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(audit["items"][0]["actor_type"], "system");
});

both_backends!(bad_tokens_are_refused_without_using_anything, |app| {
    let (token, id) = token(&app, json!({ "uses": 5 })).await;
    let wrong_secret = format!("{}{}", &token[..18], "x".repeat(token.len() - 18));
    for bad in ["", "brokkr_ETnot-a-token", wrong_secret.as_str()] {
        expect_problem(
            enroll(&app, bad, "a").await,
            401,
            "invalid_enrollment_token",
        )
        .await;
    }
    let listed = expect_json(app.get("/api/v1/enrollment-tokens", &app.admin).await, 200).await;
    assert_eq!(listed["items"][0]["uses_left"], 5, "refusals use nothing");
    expect_json(enroll(&app, &token, "first").await, 201).await;
    assert_eq!(
        app.delete(&format!("/api/v1/enrollment-tokens/{id}"), &app.admin)
            .await
            .status(),
        204
    );
    expect_problem(
        enroll(&app, &token, "second").await,
        401,
        "invalid_enrollment_token",
    )
    .await;
    let (expiring, _) = token_for_expiry(&app).await;
    app.execute_sql("UPDATE enrollment_tokens SET expires_at = '2000-01-01T00:00:00+00:00' WHERE name_prefix = 'exp-'")
        .await
        .unwrap();
    expect_problem(
        enroll(&app, &expiring, "late").await,
        401,
        "invalid_enrollment_token",
    )
    .await;
    let (_, generator) = app.create_generator("ci").await;
    expect_problem(
        app.post("/api/v1/enrollment-tokens", &generator, json!({}))
            .await,
        403,
        "forbidden",
    )
    .await;
});

async fn token_for_expiry(app: &TestApp) -> (String, String) {
    token(app, json!({ "name_prefix": "exp-" })).await
}

both_backends!(concurrent_enrollments_never_exceed_the_uses, |app| {
    let (token, _) = token(&app, json!({ "uses": 3 })).await;
    let names: Vec<String> = (0..8).map(|n| format!("n{n}")).collect();
    let attempts = names.iter().map(|name| enroll(&app, &token, name));
    let statuses: Vec<u16> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 401),
        "{statuses:?}"
    );
});

both_backends!(
    a_token_puts_its_agents_inside_the_reach_of_the_generators_it_names,
    |app| {
        // A team whose reach admits nobody, with a stack for every "edge" agent.
        let (generator, pak) = app.create_generator_reaching("team", "false").await;
        let stack = app
            .create_published_stack(&pak, json!({ "name": "edge-apps", "labels": ["edge"] }))
            .await;
        let refused = app
            .post(
                "/api/v1/enrollment-tokens",
                &app.admin,
                json!({ "reach_generators": [uuid::Uuid::new_v4()] }),
            )
            .await;
        expect_problem(refused, 422, "validation_failed").await;

        let granting = json!({ "labels": ["edge"], "reach_generators": [generator] });
        let (with_grant, _) = token(&app, granting).await;
        let (without, _) = token(&app, json!({ "labels": ["edge"] })).await;
        let inside = expect_json(enroll(&app, &with_grant, "inside").await, 201).await;
        let outside = expect_json(enroll(&app, &without, "outside").await, 201).await;
        let targeted = |agent: &Value| {
            (
                id_of(&agent["agent"]),
                agent["pak"].as_str().unwrap().to_string(),
            )
        };
        let (inside_id, inside_pak) = targeted(&inside);
        let (outside_id, outside_pak) = targeted(&outside);
        assert_eq!(
            app.targeted_stacks(inside_id, &inside_pak).await,
            vec![stack.to_string()]
        );
        assert!(
            app.targeted_stacks(outside_id, &outside_pak)
                .await
                .is_empty()
        );

        // The grant outlives a change of the agent's facts and of the generator's reach.
        let relabel = app
            .post(
                &format!("/api/v1/agents/{inside_id}/labels"),
                &app.admin,
                json!({ "label": "berlin" }),
            )
            .await;
        assert!(relabel.status().is_success(), "{}", relabel.status());
        let reach = app
            .patch(
                &format!("/api/v1/generators/{generator}"),
                &app.admin,
                json!({ "reach": "\"nowhere\" in agent.labels" }),
            )
            .await;
        assert!(reach.status().is_success(), "{}", reach.status());
        assert_eq!(
            app.targeted_stacks(inside_id, &inside_pak).await,
            vec![stack.to_string()]
        );
    }
);
