//! Stack templates through the API: the generators guide's commands verbatim, checks when
//! written, parameters validated by the schema, immutable versions, shared admin templates,
//! the sandbox, and rendered objects judged like any submission.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A real `web-service` template: a Deployment and a Service.
const WEB_SERVICE: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ stack.name }}
  labels:
    app: {{ stack.name }}
spec:
  replicas: {{ replicas }}
  selector:
    matchLabels:
      app: {{ stack.name }}
  template:
    metadata:
      labels:
        app: {{ stack.name }}
    spec:
      containers:
      - name: web
        image: {{ image }}
        ports:
        - containerPort: {{ port }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ stack.name }}
spec:
  selector:
    app: {{ stack.name }}
  ports:
  - port: 80
    targetPort: {{ port }}
";

const SCHEMA: &str = r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "required": ["image"], "additionalProperties": false, "properties": {"replicas": {"type": "integer", "minimum": 1, "maximum": 50, "default": 2}, "image": {"type": "string", "pattern": "^[a-z0-9./-]+:[A-Za-z0-9._-]+$"}, "port": {"type": "integer", "default": 8080}}}"#;

async fn create_template(app: &TestApp, pak: &str, name: &str, yaml: &str) -> Value {
    let body = json!({ "name": name, "description": "test", "template_yaml": yaml, "schema_json": SCHEMA });
    expect_json(app.post("/api/v1/templates", pak, body).await, 201).await
}

async fn objects_of(app: &TestApp, pak: &str, stack: Uuid) -> Vec<Value> {
    let path = format!("/api/v1/stacks/{stack}/deployment-objects");
    let page = expect_json(app.get(&path, pak).await, 200).await;
    page["items"].as_array().unwrap().clone()
}

both_backends!(the_generators_guide_commands_work_verbatim, |app| {
    let (_, generator) = app.create_generator("ci").await;
    // The guide's first command, with real template text.
    let template = app
        .request(Method::POST, "/api/v1/templates", Some(&generator))
        .header("Content-Type", "application/json")
        .body(
            json!({
                "name": "web-service",
                "description": "Standard web service deployment",
                "template_yaml": WEB_SERVICE,
                "schema_json": SCHEMA,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let template = expect_json(template, 201).await;
    assert_eq!(template["latest_version"], 1);
    assert_eq!(template["schema_json"]["required"], json!(["image"]));
    // The guide's second command, verbatim.
    let stack = app
        .request(Method::POST, "/api/v1/stacks", Some(&generator))
        .header("Content-Type", "application/json")
        .body(
            r#"{
"name": "my-web-service",
"template_name": "web-service",
"parameters": {
"replicas": 3,
"image": "myapp:v1.2.3"
}
}"#,
        )
        .send()
        .await
        .unwrap();
    let stack = id_of(&expect_json(stack, 201).await);
    let objects = objects_of(&app, &generator, stack).await;
    assert_eq!(objects.len(), 1);
    let object = expect_json(
        app.get(
            &format!(
                "/api/v1/deployment-objects/{}",
                objects[0]["id"].as_str().unwrap()
            ),
            &generator,
        )
        .await,
        200,
    )
    .await;
    let yaml = object["yaml_content"].as_str().unwrap();
    for expected in [
        "kind: Deployment",
        "kind: Service",
        "name: my-web-service",
        "replicas: 3",
        "image: myapp:v1.2.3",
        "targetPort: 8080",
    ] {
        assert!(yaml.contains(expected), "{expected} in:\n{yaml}");
    }
    assert_eq!(object["template"]["template_id"], template["id"]);
    assert_eq!(object["template"]["template_version"], 1);
    assert_eq!(
        object["template"]["parameters"],
        json!({ "replicas": 3, "image": "myapp:v1.2.3", "port": 8080 })
    );
});

both_backends!(templates_are_checked_when_written, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let broken = json!({ "name": "broken", "template_yaml": "kind: Deployment\nreplicas: {{ replicas bad }}\n", "schema_json": SCHEMA });
    let problem = expect_problem(
        app.post("/api/v1/templates", &generator, broken).await,
        422,
        "invalid_template",
    )
    .await;
    assert_eq!(
        problem["errors"][0]["location"], "template_yaml: line 2, column 23",
        "{problem}"
    );
    let schema = json!({ "name": "bad-schema", "template_yaml": "a: 1", "schema_json": { "type": "no-such-type" } });
    expect_problem(
        app.post("/api/v1/templates", &generator, schema).await,
        422,
        "invalid_schema",
    )
    .await;
    let object_schema =
        json!({ "name": "ok", "template_yaml": "a: 1", "schema_json": { "type": "object" } });
    expect_json(
        app.post("/api/v1/templates", &generator, object_schema.clone())
            .await,
        201,
    )
    .await;
    expect_problem(
        app.post("/api/v1/templates", &generator, object_schema)
            .await,
        409,
        "conflict",
    )
    .await;
    let not_json = json!({ "name": "nj", "template_yaml": "a: 1", "schema_json": "{not json" });
    let response = app.post("/api/v1/templates", &generator, not_json).await;
    assert_eq!(response.status(), 422);
    let (_, agent) = app.create_agent("edge", json!({})).await;
    expect_problem(app.get("/api/v1/templates", &agent).await, 403, "forbidden").await;
});

both_backends!(parameters_are_validated_and_nothing_half_written, |app| {
    let (_, generator) = app.create_generator("ci").await;
    create_template(&app, &generator, "web-service", WEB_SERVICE).await;
    let body = json!({ "name": "web", "template_name": "web-service", "parameters": { "replicas": 0, "colour": "red" } });
    let problem = expect_problem(
        app.post("/api/v1/stacks", &generator, body).await,
        422,
        "invalid_parameters",
    )
    .await;
    let locations: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["location"].as_str().unwrap())
        .collect();
    assert!(locations.contains(&"parameters/replicas"), "{problem}");
    assert!(
        locations.contains(&"parameters"),
        "missing image and the extra property: {problem}"
    );
    let stacks = expect_json(app.get("/api/v1/stacks", &generator).await, 200).await;
    assert_eq!(stacks["items"], json!([]), "no stack without its object");
    let missing = json!({ "name": "web", "template_name": "no-such-template", "parameters": {} });
    expect_problem(
        app.post("/api/v1/stacks", &generator, missing).await,
        404,
        "not_found",
    )
    .await;
});

both_backends!(versions_are_immutable_and_recorded, |app| {
    let (_, generator) = app.create_generator("ci").await;
    let template = create_template(&app, &generator, "web-service", WEB_SERVICE).await;
    let id = template["id"].as_str().unwrap().to_string();
    let second = WEB_SERVICE.replace("name: web", "name: web-v2");
    let put = json!({ "template_yaml": second, "schema_json": serde_json::from_str::<Value>(SCHEMA).unwrap() });
    let updated = app
        .request(
            Method::PUT,
            "/api/v1/templates/web-service",
            Some(&generator),
        )
        .json(&put)
        .send()
        .await
        .unwrap();
    let updated = expect_json(updated, 200).await;
    assert_eq!(updated["latest_version"], 2);
    let versions = expect_json(
        app.get(&format!("/api/v1/templates/{id}/versions"), &generator)
            .await,
        200,
    )
    .await;
    let numbers: Vec<u64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    let params = json!({ "image": "app:1" });
    let first = app
        .post(
            &format!("/api/v1/templates/{id}/render"),
            &generator,
            json!({ "parameters": params, "version": 1 }),
        )
        .await;
    let first = expect_json(first, 200).await;
    assert!(first["yaml"].as_str().unwrap().contains("name: preview"));
    assert!(!first["yaml"].as_str().unwrap().contains("web-v2"));
    let latest = expect_json(
        app.post(
            &format!("/api/v1/templates/{id}/render"),
            &generator,
            json!({ "parameters": params }),
        )
        .await,
        200,
    )
    .await;
    assert!(latest["yaml"].as_str().unwrap().contains("web-v2"));
    let stack = app.create_stack(&generator, json!({ "name": "web" })).await;
    let path = format!("/api/v1/stacks/{stack}/deployment-objects/from-template");
    let made = app
        .post(
            &path,
            &generator,
            json!({ "template_id": id, "template_version": 1, "parameters": params }),
        )
        .await;
    let made = expect_json(made, 201).await;
    assert_eq!(made["template"]["template_version"], 1);
    assert_eq!(
        made["template"]["parameters"]["replicas"], 2,
        "defaults applied"
    );
    assert_eq!(
        app.delete(&format!("/api/v1/templates/{id}"), &generator)
            .await
            .status(),
        204
    );
    assert_eq!(
        objects_of(&app, &generator, stack).await.len(),
        1,
        "existing objects stay"
    );
    let gone = app
        .post(
            &path,
            &generator,
            json!({ "template_name": "web-service", "parameters": params }),
        )
        .await;
    expect_problem(gone, 404, "not_found").await;
});

both_backends!(shared_templates_and_ownership, |app| {
    let (_, a) = app.create_generator("a").await;
    let (_, b) = app.create_generator("b").await;
    let shared = create_template(
        &app,
        &app.admin,
        "base",
        "kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: shared-{{ image }}\n",
    )
    .await;
    create_template(
        &app,
        &b,
        "base",
        "kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: own-{{ image }}\n",
    )
    .await;
    let a_own = create_template(&app, &a, "a-only", WEB_SERVICE).await;
    for (pak, expected) in [(&a, "name: shared-x:1"), (&b, "name: own-x:1")] {
        let body =
            json!({ "name": "s", "template_name": "base", "parameters": { "image": "x:1" } });
        let stack = id_of(&expect_json(app.post("/api/v1/stacks", pak, body).await, 201).await);
        let object = &objects_of(&app, pak, stack).await[0];
        let full = expect_json(
            app.get(
                &format!(
                    "/api/v1/deployment-objects/{}",
                    object["id"].as_str().unwrap()
                ),
                pak,
            )
            .await,
            200,
        )
        .await;
        assert!(
            full["yaml_content"].as_str().unwrap().contains(expected),
            "{full}"
        );
    }
    let shared_path = format!("/api/v1/templates/{}", shared["id"].as_str().unwrap());
    expect_json(app.get(&shared_path, &a).await, 200).await;
    let put = json!({ "template_yaml": "a: 1", "schema_json": {} });
    let refused = app
        .request(Method::PUT, &shared_path, Some(&a))
        .json(&put)
        .send()
        .await
        .unwrap();
    expect_problem(refused, 403, "forbidden").await;
    expect_problem(app.delete(&shared_path, &a).await, 403, "forbidden").await;
    let foreign = format!("/api/v1/templates/{}", a_own["id"].as_str().unwrap());
    expect_problem(app.get(&foreign, &b).await, 404, "not_found").await;
    let listed = expect_json(app.get("/api/v1/templates", &b).await, 200).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["base", "base"],
        "B's own and the shared one, not A's"
    );
});

both_backends!(the_sandbox_holds_through_the_api, |app| {
    let (_, generator) = app.create_generator("ci").await;
    for (yaml, fragment) in [
        ("secret: {{ env }}\n", "undefined variable `env`"),
        ("n: {{ range(10**9) }}\n", "too many"),
        (
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}x: {{ f(1) }}\n",
            "recursion",
        ),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "more work",
        ),
    ] {
        let name = format!("t-{}", Uuid::new_v4().simple());
        let body = json!({ "name": name, "template_yaml": yaml, "schema_json": {} });
        let template =
            expect_json(app.post("/api/v1/templates", &generator, body).await, 201).await;
        let path = format!(
            "/api/v1/templates/{}/render",
            template["id"].as_str().unwrap()
        );
        let problem = expect_problem(
            app.post(&path, &generator, json!({})).await,
            422,
            "template_render_failed",
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().contains(fragment),
            "{yaml}: {problem}"
        );
    }
    let include =
        json!({ "name": "inc", "template_yaml": "{% include '/etc/passwd' %}", "schema_json": {} });
    expect_problem(
        app.post("/api/v1/templates", &generator, include).await,
        422,
        "invalid_template",
    )
    .await;
});

both_backends!(rendered_objects_meet_the_same_policies, |app| {
    let (_, generator) = app.create_generator("ci").await;
    create_template(&app, &generator, "web-service", WEB_SERVICE).await;
    let plugin = app
        .upload_plugin(
            "labels",
            plugin_wasm("required_labels"),
            Some(json!({ "keys": ["team"] })),
        )
        .await;
    let plugin = expect_json(plugin, 201).await;
    let bind = json!({ "scope": "global", "mode": "enforce" });
    expect_json(
        app.post(
            &format!(
                "/api/v1/plugins/{}/bindings",
                plugin["id"].as_str().unwrap()
            ),
            &app.admin,
            bind,
        )
        .await,
        201,
    )
    .await;
    let body = json!({ "name": "web", "template_name": "web-service", "parameters": { "image": "app:1" } });
    let problem = expect_problem(
        app.post("/api/v1/stacks", &generator, body).await,
        422,
        "policy_violation",
    )
    .await;
    assert!(problem["errors"].to_string().contains("team"), "{problem}");
    let stacks = expect_json(app.get("/api/v1/stacks", &generator).await, 200).await;
    assert_eq!(
        stacks["items"],
        json!([]),
        "a refused object leaves no stack behind"
    );
    let bad_yaml = json!({ "name": "bad", "template_yaml": "kind: ConfigMap\nmetadata:\n  name: {{ image }}\n", "schema_json": {} });
    expect_json(
        app.post("/api/v1/templates", &generator, bad_yaml).await,
        201,
    )
    .await;
    let stack = app.create_stack(&generator, json!({ "name": "s2" })).await;
    let path = format!("/api/v1/stacks/{stack}/deployment-objects/from-template");
    let missing_api_version = app
        .post(
            &path,
            &generator,
            json!({ "template_name": "bad", "parameters": { "image": "x" } }),
        )
        .await;
    expect_problem(missing_api_version, 422, "invalid_manifest").await;
});
