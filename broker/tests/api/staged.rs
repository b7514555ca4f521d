//! Staged rollouts through the API: waves receive a release one after the other as their gates
//! pass, a failing wave rolls back, people pause, resume, promote and abort, agents that join
//! mid-rollout get their wave's version, and a restart resumes where the rollout was.

use crate::helpers::*;
use serde_json::{Value, json};
use uuid::Uuid;

const V1: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: \"1\"\n";
const V2: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: \"2\"\n";

/// A canary wave and everyone else; soaking `soak` seconds; `on_failure`.
fn strategy(soak: u32, on_failure: &str) -> Value {
    json!({ "waves": [{ "name": "canary", "agents": "\"canary\" in agent.labels" },
                      { "name": "rest", "percent": 100 }],
            "gate": { "min_healthy_percent": 100, "max_failed": 0, "soak_seconds": soak },
            "on_failure": on_failure })
}

/// A world: a generator, a canary agent and two others, a stack labelled `prod` reaching all
/// three with `strategy`, at version 1.
struct World {
    app: TestApp,
    generator: String,
    stack: Uuid,
    agents: Vec<(Uuid, String)>,
    v1: Uuid,
}

async fn world(app: TestApp, strategy: Value) -> World {
    let app = app.respawn(|s| s.rollouts.tick_millis = 50).await;
    let (_, generator) = app.create_generator("ci").await;
    let mut agents = Vec::new();
    for (name, labels) in [
        ("canary-1", json!(["prod", "canary"])),
        ("a", json!(["prod"])),
        ("b", json!(["prod"])),
    ] {
        agents.push(app.create_agent(name, json!({ "labels": labels })).await);
    }
    let body = json!({ "name": "web", "labels": ["prod"], "rollout": strategy });
    let stack = app.create_stack(&generator, body).await;
    let v1 = id_of(&app.add_object(&generator, stack, V1).await);
    World {
        app,
        generator,
        stack,
        agents,
        v1,
    }
}

impl World {
    /// The deployment object an agent's target state holds for the stack.
    async fn held(&self, agent: usize) -> Uuid {
        let (id, pak) = &self.agents[agent];
        let state = expect_json(
            self.app
                .get(&format!("/api/v1/agents/{id}/target-state"), pak)
                .await,
            200,
        )
        .await;
        id_of(&state["stacks"][0]["deployment_object"])
    }

    async fn rollout(&self) -> Value {
        expect_json(
            self.app
                .get(
                    &format!("/api/v1/stacks/{}/rollout", self.stack),
                    &self.generator,
                )
                .await,
            200,
        )
        .await
    }

    /// Waits until the staged rollout satisfies `check`.
    async fn until(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(what, || async {
            let rollout = self.rollout().await;
            check(&rollout["staged"]).then_some(rollout)
        })
        .await
    }

    /// The agent applied `object` (or failed to) and reports it healthy (or failing).
    async fn report(&self, agent: usize, object: Uuid, ok: bool) {
        let (id, pak) = &self.agents[agent];
        let event = json!({ "idempotency_key": format!("apply-{object}-{ok}"), "deployment_object_id": object,
            "event_type": "apply", "status": if ok { "success" } else { "failure" }, "message": (!ok).then_some("CrashLoopBackOff") });
        expect_json(
            self.app
                .post(&format!("/api/v1/agents/{id}/events"), pak, event)
                .await,
            201,
        )
        .await;
        let health = json!({ "deployment_objects": [{ "deployment_object_id": object, "status": if ok { "healthy" } else { "failing" } }] });
        let answer = self
            .app
            .request(
                reqwest::Method::PUT,
                &format!("/api/v1/agents/{id}/health"),
                Some(pak),
            )
            .json(&health)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204, "{}", answer.text().await.unwrap());
    }

    async fn steer(&self, action: &str) -> reqwest::Response {
        self.app
            .post(
                &format!("/api/v1/stacks/{}/rollout/{action}", self.stack),
                &self.generator,
                json!({}),
            )
            .await
    }
}

both_backends!(waves_receive_the_release_one_after_the_other, |app| {
    let w = world(app, strategy(0, "rollback")).await;
    for agent in 0..3 {
        assert_eq!(
            w.held(agent).await,
            w.v1,
            "the first version reaches everyone at once"
        );
    }
    let v2 = id_of(&w.app.add_object(&w.generator, w.stack, V2).await);
    assert_eq!(w.held(0).await, v2, "the canary receives the release");
    assert_eq!(
        (w.held(1).await, w.held(2).await),
        (w.v1, w.v1),
        "the rest keep what they hold"
    );
    let staged = &w.rollout().await["staged"];
    assert_eq!(staged["state"], "progressing");
    assert_eq!(
        (
            staged["waves"][0]["members"].clone(),
            staged["waves"][1]["members"].clone()
        ),
        (json!(1), json!(2))
    );
    assert_eq!(
        (
            staged["waves"][0]["state"].clone(),
            staged["waves"][1]["state"].clone()
        ),
        (json!("progressing"), json!("pending"))
    );

    w.report(0, v2, true).await;
    w.until("the canary wave passing", |s| {
        s["waves"][0]["state"] == "passed"
    })
    .await;
    assert_eq!(
        (w.held(1).await, w.held(2).await),
        (v2, v2),
        "the next wave receives it"
    );
    w.report(1, v2, true).await;
    w.report(2, v2, true).await;
    let done = w.until("success", |s| s["state"] == "succeeded").await;
    assert!(
        done["staged"]["waves"][1]["passed_at"].is_string(),
        "{done}"
    );
    let audit = expect_json(
        w.app
            .get("/api/v1/admin/audit-logs?action=rollout.*", &w.app.admin)
            .await,
        200,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["rollout.wave_passed", "rollout.wave_passed"],
        "newest first"
    );
});

both_backends!(a_failing_wave_rolls_back_and_the_rest_never_leave, |app| {
    let w = world(app, strategy(0, "rollback")).await;
    let receiver = crate::receiver::Receiver::start().await;
    let admin = w.app.admin.clone();
    crate::webhooks::subscribe(&w.app, &admin, &receiver.url, &["rollout.*"], json!({})).await;
    let v2 = id_of(&w.app.add_object(&w.generator, w.stack, V2).await);
    w.report(0, v2, false).await;
    let rolled = w
        .until("the rollback", |s| s["state"] == "rolled_back")
        .await;
    // Heard by a webhook: started, the agent's failure, the wave's failure, the rollback.
    let heard: Vec<Value> = receiver
        .received(4)
        .await
        .iter()
        .map(|d| d.json())
        .collect();
    let mut staged: Vec<&str> = heard
        .iter()
        .filter(|e| e["data"]["staged"] == true)
        .filter_map(|e| e["type"].as_str())
        .collect();
    staged.sort_unstable(); // deliveries may overtake each other
    assert_eq!(
        staged,
        ["rollout.failed", "rollout.rolled_back", "rollout.started"],
        "{heard:?}"
    );
    let staged = &rolled["staged"];
    assert_eq!(staged["waves"][0]["state"], "failed");
    assert!(
        staged["reason"].as_str().unwrap().contains("canary"),
        "{staged}"
    );
    for agent in 0..3 {
        assert_eq!(
            w.held(agent).await,
            w.v1,
            "agent {agent} holds the previous version"
        );
    }
    // A newer submission starts a new rollout.
    let v3 = id_of(
        &w.app
            .add_object(&w.generator, w.stack, V1.replace("\"1\"", "\"3\"").as_str())
            .await,
    );
    assert_eq!((w.held(0).await, w.held(1).await), (v3, w.v1));
    assert_eq!(w.rollout().await["staged"]["state"], "progressing");
});

both_backends!(people_pause_resume_promote_and_abort, |app| {
    let w = world(app, strategy(3600, "rollback")).await;
    expect_problem(w.steer("pause").await, 409, "no_staged_rollout").await;
    let v2 = id_of(&w.app.add_object(&w.generator, w.stack, V2).await);
    w.report(0, v2, true).await;
    let soaking = w
        .until("soaking", |s| s["waves"][0]["state"] == "soaking")
        .await;
    let soak_started = soaking["staged"]["waves"][0]["soak_started_at"].clone();

    let paused = expect_json(w.steer("pause").await, 200).await;
    assert_eq!(paused["staged"]["state"], "paused");
    expect_problem(w.steer("pause").await, 409, "rollout_state").await;
    let resumed = expect_json(w.steer("resume").await, 200).await;
    assert_eq!(resumed["staged"]["state"], "progressing");
    let restarted = &resumed["staged"]["waves"][0]["soak_started_at"];
    assert!(
        restarted.is_null() || restarted.as_str() > soak_started.as_str(),
        "the soak starts over: {restarted} after {soak_started}"
    );

    let promoted = expect_json(w.steer("promote").await, 200).await;
    assert_eq!(promoted["staged"]["current_wave"], 1);
    assert_eq!(w.held(1).await, v2, "promoting releases the next wave");
    let (_, other) = w.app.create_generator("other").await;
    let path = format!("/api/v1/stacks/{}/rollout/abort", w.stack);
    expect_problem(w.app.post(&path, &other, json!({})).await, 404, "not_found").await;

    let aborted = expect_json(w.steer("abort").await, 200).await;
    assert_eq!(aborted["staged"]["state"], "rolled_back");
    assert!(
        aborted["staged"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("aborted by generator")
    );
    for agent in 0..3 {
        assert_eq!(w.held(agent).await, w.v1);
    }
});

both_backends!(agents_joining_mid_rollout_get_their_waves_version, |app| {
    let w = world(app, strategy(3600, "pause")).await;
    let v2 = id_of(&w.app.add_object(&w.generator, w.stack, V2).await);
    let (late, late_pak) = w
        .app
        .create_agent("late", json!({ "labels": ["prod"] }))
        .await;
    let (canary, canary_pak) = w
        .app
        .create_agent("canary-2", json!({ "labels": ["prod", "canary"] }))
        .await;
    let held = |agent: Uuid, pak: String| {
        let app = &w.app;
        async move {
            let state = expect_json(
                app.get(&format!("/api/v1/agents/{agent}/target-state"), &pak)
                    .await,
                200,
            )
            .await;
            id_of(&state["stacks"][0]["deployment_object"])
        }
    };
    assert_eq!(
        held(late, late_pak).await,
        w.v1,
        "a later wave: the previous version"
    );
    assert_eq!(
        held(canary, canary_pak).await,
        v2,
        "the canary wave: the release"
    );
    // With on_failure: pause, a failed gate waits for a person.
    w.report(0, v2, false).await;
    let paused = w.until("a pause", |s| s["state"] == "paused").await;
    assert!(
        paused["staged"]["reason"]
            .as_str()
            .unwrap()
            .contains("failed to apply"),
        "{paused}"
    );
    assert_eq!(w.held(0).await, v2, "nothing rolled back");
});

both_backends!(a_restart_resumes_the_rollout, |app| {
    let w = world(app, strategy(1, "rollback")).await;
    let v2 = id_of(&w.app.add_object(&w.generator, w.stack, V2).await);
    w.report(0, v2, true).await;
    w.until("soaking", |s| s["waves"][0]["state"] == "soaking")
        .await;
    let World {
        app,
        generator,
        stack,
        agents,
        v1,
    } = w;
    let app = app.respawn(|s| s.rollouts.tick_millis = 50).await;
    let w = World {
        app,
        generator,
        stack,
        agents,
        v1,
    };
    w.until("the canary wave passing after the restart", |s| {
        s["waves"][0]["state"] == "passed"
    })
    .await;
    assert_eq!(w.held(1).await, v2);
});

both_backends!(strategies_are_checked_when_written, |app| {
    let (_, generator) = app.create_generator("ci").await;
    for (rollout, says) in [
        (json!({ "waves": [] }), "1 to 10 waves"),
        (
            json!({ "waves": [{ "name": "a", "agents": "agent.name ==" }] }),
            "rollout.waves[a].agents",
        ),
        (
            json!({ "waves": [{ "name": "a", "percent": 10 }], "gate": { "soak_seconds": 100000 } }),
            "soak_seconds",
        ),
    ] {
        let answer = app
            .post(
                "/api/v1/stacks",
                &generator,
                json!({ "name": "s", "rollout": rollout }),
            )
            .await;
        let problem = expect_problem(answer, 422, "validation_failed").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{problem}"
        );
    }
    let stack = app.create_stack(&generator, json!({ "name": "s" })).await;
    let path = format!("/api/v1/stacks/{stack}");
    let set = expect_json(
        app.patch(
            &path,
            &generator,
            json!({ "rollout": strategy(60, "pause") }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(set["rollout"]["gate"]["soak_seconds"], 60);
    let removed = expect_json(
        app.patch(&path, &generator, json!({ "rollout": null }))
            .await,
        200,
    )
    .await;
    assert!(removed.get("rollout").is_none(), "{removed}");
});

/// Two brokers on one database (PostgreSQL: SQLite serves one replica): either may drive the
/// rollout, each wave passes once, and agents polling the other replica see their wave's
/// release.
async fn two_replicas(backend: Backend) {
    let (url, dir) = fresh_database(backend).await;
    let fast = |url: &str| {
        let mut settings = settings_for(url);
        settings.rollouts.tick_millis = 50;
        settings
    };
    let a = spawn_app_with(fast(&url), None).await;
    let b = spawn_app_with(fast(&url), None).await.with_admin(&a.admin);
    let (_, generator) = a.create_generator("ci").await;
    let mut agents = Vec::new();
    for (name, labels) in [
        ("canary-1", json!(["prod", "canary"])),
        ("a", json!(["prod"])),
    ] {
        agents.push(a.create_agent(name, json!({ "labels": labels })).await);
    }
    let body = json!({ "name": "web", "labels": ["prod"], "rollout": strategy(0, "rollback") });
    let stack = a.create_stack(&generator, body).await;
    let v1 = id_of(&a.add_object(&generator, stack, V1).await);
    let held_on_b = |agent: usize| {
        let (id, pak) = agents[agent].clone();
        let b = &b;
        async move {
            let state = expect_json(
                b.get(&format!("/api/v1/agents/{id}/target-state"), &pak)
                    .await,
                200,
            )
            .await;
            id_of(&state["stacks"][0]["deployment_object"])
        }
    };
    assert_eq!(held_on_b(1).await, v1);
    let v2 = id_of(&a.add_object(&generator, stack, V2).await);
    eventually("the canary seeing the release on b", || async {
        (held_on_b(0).await == v2).then_some(())
    })
    .await;
    assert_eq!(held_on_b(1).await, v1);
    let (canary, canary_pak) = &agents[0];
    let event = json!({ "idempotency_key": "apply-v2", "deployment_object_id": v2, "event_type": "apply", "status": "success" });
    expect_json(
        b.post(
            &format!("/api/v1/agents/{canary}/events"),
            canary_pak,
            event,
        )
        .await,
        201,
    )
    .await;
    let health =
        json!({ "deployment_objects": [{ "deployment_object_id": v2, "status": "healthy" }] });
    let answer = b
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/agents/{canary}/health"),
            Some(canary_pak),
        )
        .json(&health)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    eventually("the rest seeing the release on b", || async {
        (held_on_b(1).await == v2).then_some(())
    })
    .await;
    let audit = expect_json(
        a.get(
            "/api/v1/admin/audit-logs?action=rollout.wave_passed",
            &a.admin,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        audit["items"].as_array().unwrap().len(),
        1,
        "the canary wave passed once: {audit}"
    );
    drop(dir);
}

#[tokio::test]
async fn two_replicas_on_postgres() {
    two_replicas(Backend::Postgres).await;
}

both_backends!(a_strategy_change_previews_each_waves_agents, |app| {
    let w = world(app, Value::Null).await;
    let path = format!("/api/v1/stacks/{}?dry_run=true", w.stack);
    let body = json!({ "rollout": strategy(60, "rollback") });
    let preview = expect_json(w.app.patch(&path, &w.generator, body).await, 200).await;
    let names = |i: usize| -> Vec<String> {
        let mut names: Vec<String> = preview["waves"][i]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(preview["waves"][0]["name"], "canary");
    assert_eq!(names(0), ["canary-1"]);
    assert_eq!(names(1), ["a", "b"]);
    assert_eq!(
        (preview["waves"][2]["name"].clone(), names(2).len()),
        (json!("(rest)"), 0)
    );
    let stack = expect_json(
        w.app
            .get(&format!("/api/v1/stacks/{}", w.stack), &w.generator)
            .await,
        200,
    )
    .await;
    assert!(
        stack.get("rollout").is_none(),
        "a dry run changes nothing: {stack}"
    );
});
