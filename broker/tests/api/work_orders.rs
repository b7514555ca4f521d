//! Work orders: runs reach agents through their target state, a claim is won once (also with
//! two replicas racing), leases renew and lapse, results are bounded, generators stay inside
//! their reach, `work-orders` validators judge orders, and diagnostics expire.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

fn restart_for(agents: &[Uuid]) -> Value {
    json!({ "type": "restart", "target": { "agent_ids": agents },
            "spec": { "kind": "Deployment", "namespace": "web", "name": "api" } })
}

async fn target_state(app: &TestApp, agent: Uuid, pak: &str) -> Value {
    expect_json(
        app.get(&format!("/api/v1/agents/{agent}/target-state"), pak)
            .await,
        200,
    )
    .await
}

fn run_path(order: Uuid, agent: Uuid, action: &str) -> String {
    format!("/api/v1/work-orders/{order}/runs/{agent}/{action}")
}

fn run_of(order: &Value, agent: Uuid) -> Value {
    order["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["agent_id"] == json!(agent))
        .cloned()
        .unwrap_or(Value::Null)
}

both_backends!(a_run_is_announced_claimed_once_and_completed, |app| {
    let receiver = crate::receiver::Receiver::start().await;
    crate::webhooks::subscribe(&app, &app.admin, &receiver.url, &["workorder.*"], json!({})).await;
    let (a, a_pak) = app.create_agent("a", json!({})).await;
    let (b, b_pak) = app.create_agent("b", json!({})).await;
    let (c, c_pak) = app.create_agent("c", json!({})).await;
    let before = target_state(&app, a, &a_pak).await;
    assert_eq!(before["work_orders"], json!([]));

    let order = expect_json(
        app.post("/api/v1/work-orders", &app.admin, restart_for(&[a, b]))
            .await,
        201,
    )
    .await;
    let id = id_of(&order);
    assert_eq!(order["counts"]["pending"], 2);
    assert_eq!(order["max_attempts"], 3);
    assert_eq!(order["claim_timeout_seconds"], 600);
    let state = target_state(&app, a, &a_pak).await;
    assert_ne!(
        state["etag"], before["etag"],
        "the waiting run changes the ETag"
    );
    assert_eq!(state["work_orders"][0]["id"], json!(id));
    assert_eq!(state["work_orders"][0]["type"], "restart");
    assert_eq!(state["work_orders"][0]["spec"]["name"], "api");
    assert_eq!(
        target_state(&app, c, &c_pak).await["work_orders"],
        json!([])
    );

    // Only the agent claims its run, and only once.
    let claim = run_path(id, a, "claim");
    assert_eq!(app.post(&claim, &b_pak, json!({})).await.status(), 404);
    assert_eq!(app.post(&claim, &app.admin, json!({})).await.status(), 403);
    let lease = expect_json(app.post(&claim, &a_pak, json!({})).await, 200).await;
    assert_eq!(lease["attempt"], 1);
    expect_problem(
        app.post(&claim, &a_pak, json!({})).await,
        409,
        "not_claimable",
    )
    .await;
    assert_eq!(
        target_state(&app, a, &a_pak).await["work_orders"],
        json!([])
    );

    // Renewal needs the lease.
    let renew = run_path(id, a, "renew");
    let wrong = json!({ "lease_id": Uuid::new_v4() });
    expect_problem(app.post(&renew, &a_pak, wrong).await, 409, "lease_lost").await;
    let renewed = expect_json(
        app.post(&renew, &a_pak, json!({ "lease_id": lease["lease_id"] }))
            .await,
        200,
    )
    .await;
    assert!(renewed["lease_expires_at"].as_str() >= lease["lease_expires_at"].as_str());

    let complete = run_path(id, a, "complete");
    let done = json!({ "lease_id": lease["lease_id"], "outcome": "succeeded",
                       "message": "restarted", "result": { "restarted_at": "now" } });
    let run = expect_json(app.post(&complete, &a_pak, done.clone()).await, 200).await;
    assert_eq!(run["status"], "succeeded");
    expect_problem(app.post(&complete, &a_pak, done).await, 409, "lease_lost").await;

    let order = expect_json(
        app.get(&format!("/api/v1/work-orders/{id}"), &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(order["counts"]["succeeded"], 1);
    assert_eq!(order["counts"]["pending"], 1);
    let run = run_of(&order, a);
    assert_eq!(run["result"]["restarted_at"], "now");
    assert_eq!(run["message"], "restarted");
    assert_eq!(run["attempts"], 1);
    assert_eq!(run_of(&order, b)["status"], "pending");
    assert!(order["expires_at"].is_null(), "b's run is still open");

    let events = receiver.received(2).await;
    let kinds: Vec<Value> = events.iter().map(|e| e.json()["type"].clone()).collect();
    assert_eq!(
        kinds,
        [json!("workorder.created"), json!("workorder.succeeded")]
    );
    let succeeded = events[1].json();
    assert_eq!(succeeded["data"]["work_order_id"], json!(id));
    assert_eq!(succeeded["data"]["agent_id"], json!(a));
});

both_backends!(a_failed_run_and_an_oversized_result, |app| {
    let (a, a_pak) = app.create_agent("a", json!({})).await;
    let app = app.respawn(|s| s.work_orders.max_result_bytes = 64).await;
    let order = expect_json(
        app.post("/api/v1/work-orders", &app.admin, restart_for(&[a]))
            .await,
        201,
    )
    .await;
    let id = id_of(&order);
    let lease = expect_json(
        app.post(&run_path(id, a, "claim"), &a_pak, json!({})).await,
        200,
    )
    .await;
    let complete = run_path(id, a, "complete");
    let big = json!({ "lease_id": lease["lease_id"], "outcome": "failed",
                      "result": { "log": "x".repeat(100) } });
    expect_problem(
        app.post(&complete, &a_pak, big).await,
        422,
        "result_too_large",
    )
    .await;
    let failed = json!({ "lease_id": lease["lease_id"], "outcome": "failed",
                         "message": "deployments.apps \"api\" not found" });
    let run = expect_json(app.post(&complete, &a_pak, failed).await, 200).await;
    assert_eq!(run["status"], "failed");
    let order = expect_json(
        app.get(&format!("/api/v1/work-orders/{id}"), &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(order["counts"]["failed"], 1);
    assert!(
        order["expires_at"].is_string(),
        "a finished order is kept for the retention period"
    );
});

both_backends!(
    bad_orders_are_refused_and_cancelling_stops_waiting_runs,
    |app| {
        let (a, a_pak) = app.create_agent("a", json!({})).await;
        let bad = json!({ "type": "restart", "target": { "agent_ids": [a] },
                      "spec": { "kind": "Deployment", "namespace": "Web", "name": "api" },
                      "max_attempts": 0 });
        let problem = expect_problem(
            app.post("/api/v1/work-orders", &app.admin, bad).await,
            422,
            "validation_failed",
        )
        .await;
        let locations: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["location"].as_str().unwrap())
            .collect();
        assert_eq!(locations, ["spec.namespace", "max_attempts"]);
        let untargeted = json!({ "type": "restart", "target": {},
                             "spec": { "kind": "Deployment", "namespace": "web", "name": "api" } });
        expect_problem(
            app.post("/api/v1/work-orders", &app.admin, untargeted)
                .await,
            422,
            "validation_failed",
        )
        .await;
        let unknown = restart_for(&[Uuid::new_v4()]);
        expect_problem(
            app.post("/api/v1/work-orders", &app.admin, unknown).await,
            422,
            "validation_failed",
        )
        .await;
        let nothing = json!({ "type": "restart", "target": { "expression": "\"none\" in agent.labels" },
                          "spec": { "kind": "Deployment", "namespace": "web", "name": "api" } });
        expect_problem(
            app.post("/api/v1/work-orders", &app.admin, nothing).await,
            422,
            "validation_failed",
        )
        .await;
        let listed = expect_json(app.get("/api/v1/work-orders", &app.admin).await, 200).await;
        assert_eq!(listed["items"], json!([]), "nothing refused was written");

        let order = expect_json(
            app.post("/api/v1/work-orders", &app.admin, restart_for(&[a]))
                .await,
            201,
        )
        .await;
        let id = id_of(&order);
        let cancelled = expect_json(
            app.delete(&format!("/api/v1/work-orders/{id}"), &app.admin)
                .await,
            200,
        )
        .await;
        assert_eq!(cancelled["counts"]["cancelled"], 1);
        assert_eq!(
            target_state(&app, a, &a_pak).await["work_orders"],
            json!([])
        );
        expect_problem(
            app.post(&run_path(id, a, "claim"), &a_pak, json!({})).await,
            409,
            "not_claimable",
        )
        .await;
        let missing = format!("/api/v1/work-orders/{}", Uuid::new_v4());
        expect_problem(app.get(&missing, &app.admin).await, 404, "not_found").await;
    }
);

both_backends!(generators_order_work_inside_their_reach_only, |app| {
    let (_, team) = app
        .create_generator_reaching("team", "\"fleet\" in agent.labels")
        .await;
    let (_, other) = app.create_generator_reaching("other", "true").await;
    let (inside, inside_pak) = app
        .create_agent("inside", json!({ "labels": ["fleet"] }))
        .await;
    let (outside, outside_pak) = app.create_agent("outside", json!({})).await;
    expect_problem(
        app.post("/api/v1/work-orders", &team, restart_for(&[outside]))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let everyone = json!({ "type": "restart", "target": { "expression": "true" },
                           "spec": { "kind": "StatefulSet", "namespace": "db", "name": "pg" } });
    let order = expect_json(app.post("/api/v1/work-orders", &team, everyone).await, 201).await;
    let id = id_of(&order);
    let agents: Vec<Value> = order["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["agent_id"].clone())
        .collect();
    assert_eq!(agents, [json!(inside)]);
    assert_eq!(
        target_state(&app, outside, &outside_pak).await["work_orders"],
        json!([])
    );
    assert_eq!(
        target_state(&app, inside, &inside_pak).await["work_orders"][0]["id"],
        json!(id)
    );

    // Another team neither sees nor cancels it; agents have no say.
    let path = format!("/api/v1/work-orders/{id}");
    assert_eq!(app.get(&path, &other).await.status(), 404);
    assert_eq!(app.delete(&path, &other).await.status(), 404);
    let theirs = expect_json(app.get("/api/v1/work-orders", &other).await, 200).await;
    assert_eq!(theirs["items"], json!([]));
    let ours = expect_json(app.get("/api/v1/work-orders", &team).await, 200).await;
    assert_eq!(ours["items"][0]["id"], json!(id));
    assert_eq!(ours["items"][0]["counts"]["pending"], 1);
    assert_eq!(
        app.get("/api/v1/work-orders", &inside_pak).await.status(),
        403
    );
    assert_eq!(
        app.post("/api/v1/work-orders", &inside_pak, restart_for(&[inside]))
            .await
            .status(),
        403
    );
});

/// Puts every claimed lease in the past, as if the agents holding them had vanished.
async fn lapse_leases(app: &TestApp) {
    app.execute_sql(
        "UPDATE work_runs SET lease_expires_at = '2000-01-01T00:00:00+00:00' WHERE status = 'claimed'",
    )
    .await
    .unwrap();
}

/// Long-polls the agent's target state until a run is listed again.
async fn wait_for_pending(app: &TestApp, agent: Uuid, pak: &str) -> Value {
    let path = format!("/api/v1/agents/{agent}/target-state");
    let mut etag = app.etag_of(&path, pak).await;
    for _ in 0..10 {
        let response = app
            .get_if_none_match(&format!("{path}?wait=10"), pak, &etag)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            let state: Value = response.json().await.unwrap();
            if state["work_orders"]
                .as_array()
                .is_some_and(|w| !w.is_empty())
            {
                return state;
            }
            etag = state["etag"].as_str().unwrap().to_string();
        }
    }
    panic!("the run never came back");
}

both_backends!(
    a_lapsed_lease_returns_the_run_until_attempts_run_out,
    |app| {
        let receiver = crate::receiver::Receiver::start().await;
        crate::webhooks::subscribe(
            &app,
            &app.admin,
            &receiver.url,
            &["workorder.failed"],
            json!({}),
        )
        .await;
        let (a, a_pak) = app.create_agent("a", json!({})).await;
        let mut body = restart_for(&[a]);
        body["max_attempts"] = json!(2);
        let id =
            id_of(&expect_json(app.post("/api/v1/work-orders", &app.admin, body).await, 201).await);
        let claim = run_path(id, a, "claim");
        let first = expect_json(app.post(&claim, &a_pak, json!({})).await, 200).await;
        lapse_leases(&app).await;
        let state = wait_for_pending(&app, a, &a_pak).await;
        assert_eq!(state["work_orders"][0]["attempts"], 1);
        // The first holder's lease is gone: it can neither renew nor complete.
        let late = json!({ "lease_id": first["lease_id"] });
        expect_problem(
            app.post(&run_path(id, a, "renew"), &a_pak, late).await,
            409,
            "lease_lost",
        )
        .await;
        let second = expect_json(app.post(&claim, &a_pak, json!({})).await, 200).await;
        assert_eq!(second["attempt"], 2);
        assert_ne!(second["lease_id"], first["lease_id"]);
        lapse_leases(&app).await;
        let failed = receiver.received(1).await[0].json();
        assert_eq!(failed["type"], "workorder.failed");
        assert_eq!(failed["data"]["status"], "expired");
        let order = expect_json(
            app.get(&format!("/api/v1/work-orders/{id}"), &app.admin)
                .await,
            200,
        )
        .await;
        assert_eq!(run_of(&order, a)["status"], "expired");
        assert_eq!(run_of(&order, a)["attempts"], 2);
        expect_problem(
            app.post(&claim, &a_pak, json!({})).await,
            409,
            "not_claimable",
        )
        .await;
    }
);

async fn claim_race(backend: Backend) {
    let (url, dir) = fresh_database(backend).await;
    let one = spawn_app_with(settings_for(&url), dir).await;
    let admin = one.admin.clone();
    let two = spawn_app_with(settings_for(&url), None)
        .await
        .with_admin(&admin);
    let (agent, pak) = one.create_agent("racer", json!({})).await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        let created = one
            .post("/api/v1/work-orders", &admin, restart_for(&[agent]))
            .await;
        orders.push(id_of(&expect_json(created, 201).await));
    }
    for order in orders {
        let path = run_path(order, agent, "claim");
        let (a, b) = tokio::join!(
            one.request(Method::POST, &path, Some(&pak))
                .json(&json!({}))
                .send(),
            two.request(Method::POST, &path, Some(&pak))
                .json(&json!({}))
                .send(),
        );
        let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 409],
            "exactly one of two racing claims wins"
        );
    }
}

#[tokio::test]
async fn claims_racing_on_two_replicas_yield_one_lease_sqlite() {
    claim_race(Backend::Sqlite).await;
}

#[tokio::test]
async fn claims_racing_on_two_replicas_yield_one_lease_postgres() {
    claim_race(Backend::Postgres).await;
}

both_backends!(validators_bound_to_work_orders_judge_them, |app| {
    let (a, _) = app.create_agent("a", json!({})).await;
    let uploaded = app
        .upload_plugin(
            "registries",
            plugin_wasm("allowed_registries"),
            Some(json!({ "registries": ["ghcr.io/acme/"] })),
        )
        .await;
    let plugin = id_of(&expect_json(uploaded, 201).await);
    let bindings = format!("/api/v1/plugins/{plugin}/bindings");
    let with_id = json!({ "scope": "work-orders", "scope_id": Uuid::new_v4(), "mode": "enforce" });
    expect_problem(
        app.post(&bindings, &app.admin, with_id).await,
        422,
        "validation_failed",
    )
    .await;
    let binding = json!({ "scope": "work-orders", "mode": "enforce" });
    let bound = expect_json(app.post(&bindings, &app.admin, binding).await, 201).await;
    assert_eq!(bound["scope"], "work-orders");
    assert!(bound["scope_id"].is_null());

    let job = |image: &str| {
        json!({ "type": "job", "target": { "agent_ids": [a] }, "spec": { "job": {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "migrate" },
            "spec": { "template": { "spec": { "restartPolicy": "Never",
                "containers": [{ "name": "m", "image": image }] } } } } } })
    };
    let refused = expect_problem(
        app.post(
            "/api/v1/work-orders",
            &app.admin,
            job("evil.example/miner:1"),
        )
        .await,
        422,
        "policy_violation",
    )
    .await;
    assert!(
        refused["errors"].to_string().contains("Job migrate"),
        "{refused}"
    );
    let accepted = expect_json(
        app.post(
            "/api/v1/work-orders",
            &app.admin,
            job("ghcr.io/acme/migrate:2"),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(accepted["spec"]["job"]["metadata"]["namespace"], "default");
    assert_eq!(accepted["spec"]["log_lines"], 50);
    expect_json(
        app.post("/api/v1/work-orders", &app.admin, restart_for(&[a]))
            .await,
        201,
    )
    .await;
    let verdicts = expect_json(
        app.get(&format!("/api/v1/plugins/{plugin}/verdicts"), &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(verdicts["items"][0]["outcome"], "violations");
    let dry_run = json!({ "scope": "work-orders" });
    expect_problem(
        app.post(
            &format!("/api/v1/plugins/{plugin}/dry-run"),
            &app.admin,
            dry_run,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
});

both_backends!(diagnostics_go_to_holders_and_expire, |app| {
    let (generator_id, team) = app.create_generator_reaching("team", "true").await;
    let (_, other) = app.create_generator_reaching("other", "true").await;
    let _ = generator_id;
    let (holder, holder_pak) = app.create_agent("holder", json!({})).await;
    let (stranger, _) = app.create_agent("stranger", json!({})).await;
    let stack = app.create_stack(&team, json!({ "name": "web" })).await;
    let object = id_of(&app.add_object(&team, stack, CONFIG_MAP).await);
    app.target(&team, holder, stack).await;
    let path = format!("/api/v1/deployment-objects/{object}/diagnostics");
    let order = expect_json(
        app.post(&path, &team, json!({ "agent_id": holder, "log_lines": 20 }))
            .await,
        201,
    )
    .await;
    let id = id_of(&order);
    assert_eq!(order["type"], "diagnostics");
    assert_eq!(order["spec"]["deployment_object_id"], json!(object));
    assert_eq!(order["spec"]["log_lines"], 20);
    let created: chrono::DateTime<chrono::Utc> =
        order["created_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        order["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_seconds(), 86_400);
    let pending = target_state(&app, holder, &holder_pak).await;
    assert_eq!(pending["work_orders"][0]["type"], "diagnostics");
    expect_problem(
        app.post(&path, &team, json!({ "agent_id": stranger }))
            .await,
        422,
        "validation_failed",
    )
    .await;
    expect_problem(
        app.post(&path, &other, json!({ "agent_id": holder })).await,
        404,
        "not_found",
    )
    .await;

    // Past its retention the order and its results are gone, and the run stops waiting.
    app.execute_sql("UPDATE work_orders SET expires_at = '2000-01-01T00:00:00+00:00'")
        .await
        .unwrap();
    let order_path = format!("/api/v1/work-orders/{id}");
    eventually("the expired diagnostics to be deleted", || async {
        (app.get(&order_path, &team).await.status() == 404).then_some(())
    })
    .await;
    assert_eq!(
        target_state(&app, holder, &holder_pak).await["work_orders"],
        json!([])
    );
});
