//! `get`, `describe` and `delete` across kinds, `template render`, `plugin upload|bind|dry-run`,
//! `webhook create|test|deliveries` and `enroll-token create`, with golden tables and JSON.

use brokkr_e2e::broker::TestBroker;
use reqwest::Method;
use serde_json::{Value, json};

use super::{brokkr, golden};

const TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  image: \"{{ image }}\"\n  replicas: \"{{ replicas }}\"\n";
const SCHEMA: &str = r#"{"type": "object", "required": ["image"], "additionalProperties": false, "properties": {"image": {"type": "string"}, "replicas": {"type": "integer", "default": 2}}}"#;

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn stacks_by_name_are_got_described_and_deleted() {
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", generator.as_str()),
    ];
    let stack = broker.plain_stack(&generator, "web").await;
    broker
        .publish(
            &generator,
            stack,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )
        .await;

    let got = brokkr(&["get", "stack", "web", "-o", "json"], &env).await;
    assert_eq!(json_of(&got.stdout)[0]["id"], stack.to_string());
    let described = brokkr(&["describe", "stacks", "web"], &env).await;
    assert_eq!(described.code, 0, "{}", described.stderr);
    golden::check("describe-stack.txt", &described.stdout);
    let as_json = json_of(
        &brokkr(&["describe", "stacks", "web", "-o", "json"], &env)
            .await
            .stdout,
    );
    assert_eq!(as_json["versions"][0]["sequence_id"], 1);
    assert_eq!(
        as_json["rollout"]["state"], "converged",
        "no agent is targeted: nothing to wait for"
    );

    let not_an_id = brokkr(&["get", "agents", "edge"], &env).await;
    assert_eq!(
        (not_an_id.code, not_an_id.stderr.as_str()),
        (1, "error: \"edge\" is not an id\n")
    );
    let deleted = brokkr(&["delete", "stack", "web"], &env).await;
    assert_eq!(deleted.stdout, format!("deleted stacks {}\n", "web"));
    let gone = brokkr(&["get", "stacks", "web"], &env).await;
    assert_eq!(gone.stderr, "error: no stack named \"web\"\n");
}

#[tokio::test]
async fn templates_render_with_parameters_and_are_listed() {
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", generator.as_str()),
    ];
    let body = json!({ "name": "settings", "template_yaml": TEMPLATE, "schema_json": SCHEMA });
    let (status, created) = broker
        .call(Method::POST, "/api/v1/templates", &generator, Some(body))
        .await;
    assert_eq!(status, 201, "{created}");

    let rendered = brokkr(
        &[
            "template",
            "render",
            "settings",
            "--param",
            "image=web:2",
            "--param",
            "replicas=3",
        ],
        &env,
    )
    .await;
    assert_eq!(rendered.code, 0, "{}", rendered.stderr);
    assert_eq!(
        rendered.stdout,
        TEMPLATE
            .replace("{{ image }}", "web:2")
            .replace("{{ replicas }}", "3")
    );
    let defaults = json_of(
        &brokkr(
            &[
                "template",
                "render",
                "settings",
                "--param",
                "image=web:2",
                "-o",
                "json",
            ],
            &env,
        )
        .await
        .stdout,
    );
    assert_eq!(
        defaults["parameters"],
        json!({ "image": "web:2", "replicas": 2 })
    );
    let refused = brokkr(
        &["template", "render", "settings", "--param", "replicas=3"],
        &env,
    )
    .await;
    assert!(
        refused.stderr.starts_with("error: 422 "),
        "{}",
        refused.stderr
    );

    let listed = brokkr(&["get", "templates"], &env).await;
    golden::check("get-templates.txt", &listed.stdout);
    let deleted = brokkr(&["delete", "template", "settings"], &env).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let none = brokkr(&["get", "templates", "-o", "json"], &env).await;
    assert_eq!(none.stdout, "[]\n");
}

#[tokio::test]
async fn plugins_are_uploaded_bound_and_tried() {
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let admin = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", broker.admin.as_str()),
    ];
    let stack = broker.plain_stack(&generator, "web").await;
    broker
        .publish(
            &generator,
            stack,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"keys": ["team"]}"#).unwrap();
    let wasm = format!(
        "{}/../plugins/target/wasm32-wasip2/release/required_labels.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    let upload = [
        "plugin",
        "upload",
        "--name",
        "required-labels",
        "--file",
        &wasm,
        "--config",
        config.to_str().unwrap(),
        "-o",
        "json",
    ];
    let uploaded = brokkr(&upload, &admin).await;
    assert_eq!(uploaded.code, 0, "{}", uploaded.stderr);
    let plugin = json_of(&uploaded.stdout)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let tried = brokkr(
        &[
            "plugin",
            "dry-run",
            &plugin,
            "--scope",
            "stack",
            "--scope-id",
            "web",
        ],
        &admin,
    )
    .await;
    assert_eq!(tried.code, 0, "{}", tried.stderr);
    golden::check("plugin-dry-run.txt", &tried.stdout);
    let bound = brokkr(
        &[
            "plugin",
            "bind",
            &plugin,
            "--scope",
            "stack",
            "--scope-id",
            "web",
            "--mode",
            "enforce",
            "-o",
            "json",
        ],
        &admin,
    )
    .await;
    assert_eq!(
        json_of(&bound.stdout)[0]["scope_id"],
        stack.to_string(),
        "{}",
        bound.stderr
    );
    let listed = brokkr(&["get", "plugins"], &admin).await;
    golden::check(
        "get-plugins.txt",
        &listed.stdout.replace(
            &listed
                .stdout
                .lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .nth(3)
                .unwrap()
                .to_string(),
            "dddddddddddd",
        ),
    );
    let bad_mode = brokkr(
        &[
            "plugin", "bind", &plugin, "--scope", "global", "--mode", "block",
        ],
        &admin,
    )
    .await;
    assert_eq!(bad_mode.code, 2, "clap refuses a mode it does not know");
}

#[tokio::test]
async fn webhooks_are_created_tested_and_their_deliveries_listed() {
    let broker = TestBroker::start_with(|settings| {
        let key = r#"{"id": "test", "key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "active": true}"#;
        settings.webhooks.encryption_keys = vec![serde_json::from_str(key).unwrap()];
    })
    .await;
    let admin = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", broker.admin.as_str()),
    ];
    let create = [
        "webhook",
        "create",
        "--name",
        "ops",
        "--url",
        "https://hooks.example.com/brokkr",
        "--event-type",
        "rollout.*",
        "--header",
        "X-Team=ops",
    ];
    let created = brokkr(&create, &admin).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let secret_line = created.stdout.lines().last().unwrap();
    assert!(
        secret_line.starts_with("signing secret (shown once): "),
        "{}",
        created.stdout
    );
    let id = created
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let listed = brokkr(&["get", "webhooks"], &admin).await;
    golden::check("get-webhooks.txt", &listed.stdout);
    let as_json = brokkr(&["get", "webhooks", "-o", "json"], &admin).await;
    golden::check("get-webhooks.json", &as_json.stdout);

    let sent = brokkr(&["webhook", "test", &id, "-o", "json"], &admin).await;
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let event = json_of(&sent.stdout)["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deliveries = brokkr(&["webhook", "deliveries", &id, "-o", "json"], &admin).await;
    let first = &json_of(&deliveries.stdout)[0];
    assert_eq!(
        (first["event_id"].as_str(), first["event_type"].as_str()),
        (Some(event.as_str()), Some("webhook.test"))
    );
    let bad = brokkr(
        &[
            "webhook",
            "create",
            "--name",
            "x",
            "--url",
            "ftp://nowhere",
            "--event-type",
            "rollout.*",
        ],
        &admin,
    )
    .await;
    assert!(
        bad.stderr.starts_with("error: the webhook is not valid: "),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn enrollment_tokens_are_created_and_enroll_an_agent() {
    let broker = TestBroker::start().await;
    let admin = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", broker.admin.as_str()),
    ];
    let create = [
        "enroll-token",
        "create",
        "--name-prefix",
        "edge-",
        "--label",
        "edge",
        "--uses",
        "2",
        "--expires-in",
        "10m",
        "-o",
        "json",
    ];
    let created = brokkr(&create, &admin).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let created = json_of(&created.stdout);
    assert_eq!(created["enrollment_token"]["uses_left"], 2);
    let token = created["token"].as_str().unwrap();
    let enroll = json!({ "token": token, "name": "berlin-1", "cluster_name": "berlin" });
    let (status, agent) = broker
        .call(Method::POST, "/api/v1/enroll", "", Some(enroll))
        .await;
    assert_eq!(status, 201, "{agent}");
    assert_eq!(agent["agent"]["name"], "edge-berlin-1");
    let listed = brokkr(&["get", "enrollment-tokens"], &admin).await;
    golden::check("get-enrollment-tokens.txt", &listed.stdout);
}

#[tokio::test]
async fn generators_and_agents_are_created_with_their_pak_shown_once() {
    let broker = TestBroker::start().await;
    let admin = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", broker.admin.as_str()),
    ];
    let reach = "\"prod\" in agent.labels";
    let generator = brokkr(
        &["create", "generator", "ci", "--reach", reach, "-o", "json"],
        &admin,
    )
    .await;
    assert_eq!(generator.code, 0, "{}", generator.stderr);
    let generator = json_of(&generator.stdout);
    let pak = generator["pak"].as_str().unwrap().to_string();
    let table = brokkr(
        &[
            "create",
            "agent",
            "prod-1",
            "--cluster",
            "prod",
            "--label",
            "prod",
        ],
        &admin,
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table
            .stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("pak (shown once): brokkr_BR"),
        "{}",
        table.stdout
    );
    let bad = brokkr(
        &[
            "create",
            "agent",
            "x",
            "--cluster",
            "prod",
            "--annotation",
            "nokey",
        ],
        &admin,
    )
    .await;
    assert_eq!(
        bad.stderr,
        "error: --annotation \"nokey\": write KEY=VALUE\n"
    );

    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", pak.as_str()),
    ];
    let me = json_of(&brokkr(&["whoami", "-o", "json"], &env).await.stdout);
    assert_eq!(me["id"], generator["generator"]["id"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let applied = brokkr(
        &[
            "apply", "-f", path, "--stack", "my-app", "--create", "--label", "prod",
        ],
        &env,
    )
    .await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let status = brokkr(&["rollout", "status", "my-app", "-o", "json"], &env).await;
    let rollout = json_of(&status.stdout);
    assert_eq!(
        (rollout["targeted"].clone(), rollout["state"].clone()),
        (json!(1), json!("progressing"))
    );
    let reached = brokkr(&["targeting", "explain", "--stack", "my-app"], &env).await;
    assert!(
        reached
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("prod-1 "),
        "{}",
        reached.stdout
    );
}

#[tokio::test]
async fn lists_are_paged_and_say_where_the_next_page_starts() {
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", generator.as_str()),
    ];
    for name in ["a", "b", "c"] {
        broker.plain_stack(&generator, name).await;
    }
    let first = brokkr(&["get", "stacks", "--limit", "2", "-o", "json"], &env).await;
    let names: Vec<Value> = json_of(&first.stdout)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("a"), json!("b")]);
    assert_eq!(first.stderr, "more: repeat with --offset 2\n");
    let rest = brokkr(&["get", "stacks", "--limit", "2", "--offset", "2"], &env).await;
    assert_eq!(
        rest.stdout.lines().count(),
        2,
        "the header and c: {}",
        rest.stdout
    );
    assert!(rest.stderr.is_empty(), "{}", rest.stderr);
    let zero = brokkr(&["get", "stacks", "--limit", "0"], &env).await;
    assert_eq!(zero.code, 2);
}

#[tokio::test]
async fn staged_rollouts_are_shown_and_steered() {
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", generator.as_str()),
    ];
    let (agent, _) = broker.agent("edge").await;
    let rollout = json!({ "waves": [{ "name": "canary", "agents": "\"canary\" in agent.labels" },
                                    { "name": "all", "percent": 100 }] });
    let body = json!({ "name": "web", "rollout": rollout });
    let (status, stack) = broker
        .call(Method::POST, "/api/v1/stacks", &generator, Some(body))
        .await;
    assert_eq!(status, 201, "{stack}");
    let stack: uuid::Uuid = stack["id"].as_str().unwrap().parse().unwrap();
    broker.target(&generator, agent, stack).await;
    let none = brokkr(&["rollout", "pause", "web"], &env).await;
    assert!(
        none.stderr.starts_with("error: 409 no_staged_rollout: "),
        "{}",
        none.stderr
    );
    broker
        .publish(
            &generator,
            stack,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )
        .await;
    broker
        .publish(
            &generator,
            stack,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
        )
        .await;

    let shown = brokkr(&["rollout", "status", "web"], &env).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("staged: progressing\nWAVE "),
        "{}",
        shown.stdout
    );
    let paused = brokkr(&["rollout", "pause", "web", "-o", "json"], &env).await;
    assert_eq!(
        json_of(&paused.stdout)["staged"]["state"],
        "paused",
        "{}",
        paused.stderr
    );
    let aborted = brokkr(&["rollout", "abort", "web", "-o", "json"], &env).await;
    let aborted = json_of(&aborted.stdout);
    assert_eq!(aborted["staged"]["state"], "rolled_back");
    assert!(
        aborted["staged"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("aborted by generator")
    );
}
