//! Every route against every kind of caller. Each authenticated case gets a fresh world, so a
//! destructive call by one caller cannot change what the next one sees.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

mod cases;
use cases::cases;

/// Principals and resources every case starts from: generator A (reaching agents labelled
/// `prod`) owns stacks SA (targeted at agent X, labelled `prod`, annotated `region`) and SA2
/// (untargeted); B is another generator, reaching nothing; Y another agent, outside A's reach;
/// Z an agent outside A's reach that an admin targeted SA at, and that reported on SA; C's PAK
/// was rotated and D was deleted.
struct World {
    gen_a: (Uuid, String),
    gen_b: String,
    agent_x: (Uuid, String),
    agent_y: String,
    stack_a: Uuid,
    stack_a2: Uuid,
    object_a: Uuid,
    rotated: String,
    deleted: String,
    /// A plugin, one of its bindings, and its digest.
    plugin: (Uuid, Uuid, String),
    /// A's webhook subscription and one of its deliveries.
    webhook: (Uuid, Uuid),
    /// A's template.
    template: Uuid,
    /// An enrollment token's id.
    enrollment: Uuid,
    /// A's work order for X.
    work_order: Uuid,
    /// Ids and names of agents A must never learn of (Y, Z), and B (those and X).
    foreign_to_a: Vec<String>,
    foreign_to_b: Vec<String>,
}

async fn world(app: &TestApp) -> World {
    let tag = Uuid::new_v4().simple().to_string();
    let gen_a = app
        .create_generator_reaching(&format!("a-{tag}"), r#""prod" in agent.labels"#)
        .await;
    let (_, gen_b) = app
        .create_generator_reaching(&format!("b-{tag}"), "false")
        .await;
    let (c, rotated) = app.create_generator(&format!("c-{tag}")).await;
    app.post(
        &format!("/api/v1/generators/{c}/rotate-pak"),
        &app.admin,
        json!({}),
    )
    .await;
    let (d, deleted) = app.create_generator(&format!("d-{tag}")).await;
    app.delete(&format!("/api/v1/generators/{d}"), &app.admin)
        .await;
    let agent_x = app
        .create_agent(
            &format!("x-{tag}"),
            json!({ "labels": ["prod"], "annotations": { "region": "us" } }),
        )
        .await;
    let (y, agent_y) = app.create_agent(&format!("y-{tag}"), json!({})).await;
    let (z, agent_z) = app.create_agent(&format!("z-{tag}"), json!({})).await;
    let template = json!({ "name": "t", "template_yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: t\n", "schema_json": {} });
    let template =
        id_of(&expect_json(app.post("/api/v1/templates", &gen_a.1, template).await, 201).await);
    let enrollment = app
        .post("/api/v1/enrollment-tokens", &app.admin, json!({}))
        .await;
    let enrollment = id_of(&expect_json(enrollment, 201).await["enrollment_token"]);
    let receiver = crate::receiver::Receiver::start().await;
    let hook = json!({ "name": "hook", "url": receiver.url, "event_types": ["webhook.test"] });
    let hook = id_of(
        &expect_json(app.post("/api/v1/webhooks", &gen_a.1, hook).await, 201).await["webhook"],
    );
    let test = format!("/api/v1/webhooks/{hook}/test");
    expect_json(app.post(&test, &gen_a.1, json!({})).await, 202).await;
    let stack_body = json!({ "name": "sa", "labels": ["prod"], "annotations": { "region": "us" } });
    let stack_a = app.create_stack(&gen_a.1, stack_body).await;
    let stack_a2 = app.create_stack(&gen_a.1, json!({ "name": "sa2" })).await;
    let object_a = id_of(&app.add_object(&gen_a.1, stack_a, CONFIG_MAP).await);
    app.target(&gen_a.1, agent_x.0, stack_a).await;
    app.target(&app.admin, z, stack_a).await;
    let event = json!({ "idempotency_key": "z1", "deployment_object_id": object_a, "event_type": "apply", "status": "success" });
    let reported = app
        .post(&format!("/api/v1/agents/{z}/events"), &agent_z, event)
        .await;
    assert_eq!(
        reported.status(),
        201,
        "Z reports on the stack it was given"
    );
    let foreign_to_a = vec![
        y.to_string(),
        format!("y-{tag}"),
        z.to_string(),
        format!("z-{tag}"),
    ];
    let mut foreign_to_b = foreign_to_a.clone();
    foreign_to_b.extend([agent_x.0.to_string(), format!("x-{tag}")]);
    let uploaded = app
        .upload_plugin(
            &format!("p-{tag}"),
            plugin_wasm("required_labels"),
            Some(json!({ "keys": ["team"] })),
        )
        .await;
    let uploaded = expect_json(uploaded, 201).await;
    let plugin_id = id_of(&uploaded);
    let binding = json!({ "scope": "stack", "scope_id": stack_a2, "mode": "shadow" });
    let binding = expect_json(
        app.post(
            &format!("/api/v1/plugins/{plugin_id}/bindings"),
            &app.admin,
            binding,
        )
        .await,
        201,
    )
    .await;
    let plugin = (
        plugin_id,
        id_of(&binding),
        uploaded["digest"].as_str().unwrap().to_string(),
    );
    let order = json!({ "type": "restart", "target": { "agent_ids": [agent_x.0] },
                        "spec": { "kind": "Deployment", "namespace": "web", "name": "api" } });
    let work_order =
        id_of(&expect_json(app.post("/api/v1/work-orders", &gen_a.1, order).await, 201).await);
    let deliveries = format!("/api/v1/webhooks/{hook}/deliveries");
    let delivery = eventually("a delivery of A's webhook", || async {
        let page = expect_json(app.get(&deliveries, &app.admin).await, 200).await;
        page["items"]
            .as_array()
            .and_then(|items| items.first().map(id_of))
    })
    .await;
    World {
        gen_a,
        gen_b,
        agent_x,
        agent_y,
        stack_a,
        stack_a2,
        object_a,
        rotated,
        deleted,
        plugin,
        webhook: (hook, delivery),
        template,
        enrollment,
        work_order,
        foreign_to_a,
        foreign_to_b,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Admin,
    OwningGenerator,
    OtherGenerator,
    AgentItself,
    OtherAgent,
    NoPak,
    MalformedPak,
    RotatedPak,
    DeletedPrincipal,
}

const AUTHENTICATED: [Who; 5] = [
    Who::Admin,
    Who::OwningGenerator,
    Who::OtherGenerator,
    Who::AgentItself,
    Who::OtherAgent,
];
const UNAUTHENTICATED: [Who; 4] = [
    Who::NoPak,
    Who::MalformedPak,
    Who::RotatedPak,
    Who::DeletedPrincipal,
];

fn pak_of(who: Who, admin: &str, w: &World) -> Option<String> {
    match who {
        Who::Admin => Some(admin.to_string()),
        Who::OwningGenerator => Some(w.gen_a.1.clone()),
        Who::OtherGenerator => Some(w.gen_b.clone()),
        Who::AgentItself => Some(w.agent_x.1.clone()),
        Who::OtherAgent => Some(w.agent_y.clone()),
        Who::NoPak => None,
        Who::MalformedPak => Some("brokkr_BRnot-a-key".into()),
        Who::RotatedPak => Some(w.rotated.clone()),
        Who::DeletedPrincipal => Some(w.deleted.clone()),
    }
}

/// One route: method, path and body built from the world, and the status expected for
/// admin, owning generator, other generator, the agent itself and another agent.
struct Case {
    method: Method,
    path: fn(&World) -> String,
    body: fn(&World) -> Option<Value>,
    expect: [u16; 5],
    public: bool,
}

/// Calls a case's route as `who`; returns the status and the body.
async fn call(app: &TestApp, case: &Case, who: Who, w: &World) -> (u16, String) {
    let path = (case.path)(w);
    let pak = pak_of(who, &app.admin, w);
    let mut request = app.request(case.method.clone(), &path, pak.as_deref());
    request = match (case.body)(w) {
        Some(body) if body.get("multipart").is_some() => {
            let form = reqwest::multipart::Form::new()
                .text("name", format!("up-{}", Uuid::new_v4().simple()))
                .text("config", r#"{"keys":["team"]}"#)
                .part(
                    "wasm",
                    reqwest::multipart::Part::bytes(plugin_wasm("required_labels"))
                        .file_name("p.wasm"),
                );
            request.multipart(form)
        }
        Some(body) => request.json(&body),
        None if case.method == Method::POST => request.json(&json!({})),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// What a generator may never see in a response: the agents outside its reach.
fn disclosed<'a>(who: Who, body: &str, w: &'a World) -> Option<&'a str> {
    let foreign = match who {
        Who::OwningGenerator => &w.foreign_to_a,
        Who::OtherGenerator => &w.foreign_to_b,
        _ => return None,
    };
    foreign
        .iter()
        .map(String::as_str)
        .find(|f| body.contains(f))
}

/// Runs one case for every caller; returns mismatches as readable lines.
async fn check(app: &TestApp, case: &Case) -> Vec<String> {
    let mut failures = Vec::new();
    let shared = world(app).await;
    let fresh_worlds = join_all(AUTHENTICATED.iter().map(|_| world(app))).await;
    let authenticated = AUTHENTICATED.iter().zip(&fresh_worlds).zip(case.expect);
    let results = join_all(authenticated.map(|((who, w), expected)| async move {
        let (status, body) = call(app, case, *who, w).await;
        (
            *who,
            expected,
            status,
            disclosed(*who, &body, w).map(str::to_string),
        )
    }))
    .await;
    for who in UNAUTHENTICATED {
        let expected = if case.public { 200 } else { 401 };
        let (actual, _) = call(app, case, who, &shared).await;
        if actual != expected {
            failures.push(format!("{who:?}: expected {expected}, got {actual}"));
        }
    }
    for (who, expected, actual, leaked) in results {
        if actual != expected {
            failures.push(format!("{who:?}: expected {expected}, got {actual}"));
        }
        if let Some(leaked) = leaked {
            failures.push(format!(
                "{who:?}: the answer names {leaked}, outside its reach"
            ));
        }
    }
    let label = format!("{} {}", case.method, (case.path)(&shared));
    failures
        .into_iter()
        .map(|f| format!("{label}: {f}"))
        .collect()
}

both_backends!(every_route_against_every_caller, |app| {
    let mut failures = Vec::new();
    for case in cases() {
        failures.extend(check(&app, &case).await);
    }
    assert!(
        failures.is_empty(),
        "access matrix violations:\n{}",
        failures.join("\n")
    );
});

both_backends!(every_documented_route_is_in_the_matrix, |app| {
    let document = expect_json(
        app.client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let shared = world(&app).await;
    let covered: Vec<(String, String)> = cases()
        .iter()
        .map(|c| {
            (
                c.method.to_string().to_lowercase(),
                normalise(&(c.path)(&shared), &shared),
            )
        })
        .collect();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let entry = (method.clone(), path.clone());
            assert!(
                covered.contains(&entry),
                "{method} {path} is not in the access matrix"
            );
        }
    }
});

/// Turns a concrete path back into its template (`/api/v1/agents/{id}/targets/{stack_id}`).
fn normalise(path: &str, w: &World) -> String {
    path.replace(&w.plugin.1.to_string(), "{binding_id}")
        .replace(&w.webhook.0.to_string(), "{id}")
        .replace(&w.template.to_string(), "{id}")
        .replace(&w.enrollment.to_string(), "{id}")
        .replace(&w.webhook.1.to_string(), "{id}")
        .replace(&w.plugin.0.to_string(), "{id}")
        .replace(&w.plugin.2, "{digest}")
        .replace(&w.work_order.to_string(), "{id}")
        .replace(&format!("/runs/{}", w.agent_x.0), "/runs/{agent_id}")
        .replace(&w.agent_x.0.to_string(), "{id}")
        .replace(
            &format!("{{id}}/targets/{}", w.stack_a),
            "{id}/targets/{stack_id}",
        )
        .replace(&w.stack_a.to_string(), "{id}")
        .replace(&w.stack_a2.to_string(), "{id}")
        .replace(&w.gen_a.0.to_string(), "{id}")
        .replace(&w.object_a.to_string(), "{id}")
        .replace("/labels/prod", "/labels/{label}")
        .replace("/annotations/region", "/annotations/{key}")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string()
}
