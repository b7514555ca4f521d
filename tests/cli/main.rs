//! The `brokkr` binary against a broker on a port-0 listener: output formats, errors as one line
//! with the problem's code, exit codes, contexts, and `rollout status --wait` following a
//! release while an agent reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apply;
mod golden;
mod platform;

use std::process::Command;

use brokkr_e2e::binary;
use brokkr_e2e::broker::TestBroker;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// What a run printed and how it ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `brokkr args` with only the given environment (a HOME of its own, so no real
/// configuration is read), off the async workers.
async fn brokkr(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(binary("brokkr"));
    command.args(args).env_clear().env("HOME", home.path());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[tokio::test]
async fn whoami_and_get_in_every_format() {
    let broker = TestBroker::start().await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", broker.admin.as_str()),
    ];
    let table = brokkr(&["whoami"], &env).await;
    assert_eq!(
        (table.code, table.stdout.as_str()),
        (0, "PRINCIPAL  ID\nadmin      -\n")
    );
    let json: Value =
        serde_json::from_str(&brokkr(&["whoami", "-o", "json"], &env).await.stdout).unwrap();
    assert_eq!(json, json!({ "principal_type": "admin", "id": null }));

    let generator = broker.generator("ci").await;
    broker.plain_stack(&generator, "web").await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", generator.as_str()),
    ];
    let listed: Value =
        serde_json::from_str(&brokkr(&["get", "stacks", "-o", "json"], &env).await.stdout).unwrap();
    assert_eq!(listed[0]["name"], "web");
    let yaml = brokkr(&["get", "stacks", "-o", "yaml"], &env).await;
    assert!(yaml.stdout.starts_with("- id: "), "{}", yaml.stdout);
    let table = brokkr(&["get", "stacks"], &env).await;
    let header = table.stdout.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "ID", "LABELS", "EXPRESSION"]
    );
    assert!(table.stdout.lines().nth(1).unwrap().starts_with("web "));
}

#[tokio::test]
async fn refusals_are_one_line_with_the_problem_code() {
    let broker = TestBroker::start().await;
    let env = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", broker.admin.as_str()),
    ];
    let missing = Uuid::new_v4().to_string();
    let ran = brokkr(&["get", "stacks", &missing], &env).await;
    assert_eq!(ran.code, 1);
    assert!(ran.stdout.is_empty());
    assert!(
        ran.stderr.starts_with("error: 404 not_found: "),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.lines().count(), 1);

    let wrong = brokkr(
        &["whoami"],
        &[
            ("BROKKR_URL", broker.url.as_str()),
            ("BROKKR_PAK", "brokkr_BRnope"),
        ],
    )
    .await;
    assert!(wrong.stderr.starts_with("error: 401 "), "{}", wrong.stderr);
    let nowhere = brokkr(&["whoami"], &[]).await;
    assert_eq!(nowhere.code, 1);
    assert!(
        nowhere.stderr.contains("no broker: set BROKKR_URL"),
        "{}",
        nowhere.stderr
    );
    let usage = brokkr(&["get", "clusters"], &env).await;
    assert_eq!(usage.code, 2, "a wrong command line");
}

#[tokio::test]
async fn contexts_name_where_the_pak_is_kept() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pak_file = dir.path().join("lab.pak");
    std::fs::write(&pak_file, format!("{}\n", broker.admin)).unwrap();
    let config = dir.path().join("config.toml");
    let text = format!(
        "current_context = \"other\"\n[contexts.lab]\nurl = \"{}\"\npak_file = \"{}\"\n[contexts.other]\nurl = \"http://127.0.0.1:9\"\n",
        broker.url,
        pak_file.display()
    );
    std::fs::write(&config, text).unwrap();
    let path = config.to_str().unwrap();
    let ran = brokkr(
        &["--context", "lab", "whoami", "-o", "json"],
        &[("BROKKR_CONFIG", path)],
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("\"admin\""));
    let unknown = brokkr(&["--context", "prod", "whoami"], &[("BROKKR_CONFIG", path)]).await;
    assert!(
        unknown.stderr.contains("no context \"prod\""),
        "{}",
        unknown.stderr
    );
}

/// The agent reports applying `object` (`failure`: that it failed, and why).
async fn report(broker: &TestBroker, agent: (Uuid, &str), object: Uuid, failure: Option<&str>) {
    let event = json!({ "idempotency_key": format!("apply-{object}"), "deployment_object_id": object,
                        "event_type": "apply", "status": if failure.is_some() { "failure" } else { "success" },
                        "message": failure });
    let path = format!("/api/v1/agents/{}/events", agent.0);
    let (status, body) = broker.call(Method::POST, &path, agent.1, Some(event)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn rollout_status_waits_for_the_release_to_converge_or_fail() {
    let broker = TestBroker::start().await;
    let generator = broker.generator("ci").await;
    let (agent, agent_pak) = broker.agent("edge").await;
    let stack = broker.stack(&generator, "web", agent).await;
    let object = broker
        .publish(
            &generator,
            stack,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )
        .await;
    let env = [
        ("BROKKR_URL", broker.url.clone()),
        ("BROKKR_PAK", generator.clone()),
    ];
    let stack_id = stack.to_string();
    let waiting = {
        let (env, stack_id) = (env.clone(), stack_id.clone());
        tokio::spawn(async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            brokkr(
                &[
                    "rollout",
                    "status",
                    &stack_id,
                    "--wait",
                    "--timeout",
                    "60",
                    "-o",
                    "json",
                ],
                &env,
            )
            .await
        })
    };
    // The agent applies it while the command waits.
    report(&broker, (agent, &agent_pak), object, None).await;
    let ran = waiting.await.unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let rollout: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(rollout["state"], "converged");

    let failing = broker
        .publish(
            &generator,
            stack,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
        )
        .await;
    report(
        &broker,
        (agent, &agent_pak),
        failing,
        Some("quota exceeded"),
    )
    .await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let failed = brokkr(&["rollout", "status", &stack_id, "--wait"], &env).await;
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert!(
        failed.stdout.contains("quota exceeded"),
        "{}",
        failed.stdout
    );

    // The fleet view shows the failure and the backlog (the agent never applied the newest).
    let fleet: Value =
        serde_json::from_str(&brokkr(&["fleet", "-o", "json"], &env).await.stdout).unwrap();
    assert_eq!(fleet[0]["name"], "edge");
    assert_eq!(fleet[0]["backlog"], 1);
    assert_eq!(fleet[0]["last_error"], "quota exceeded");
    let table = brokkr(&["fleet", "--expression", "agent.name == 'edge'"], &env).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let row = table.stdout.lines().nth(1).unwrap();
    assert!(
        row.starts_with("edge ") && row.ends_with("quota exceeded"),
        "{row}"
    );
    let bad = brokkr(&["fleet", "--expression", "agent.name =="], &env).await;
    assert!(
        bad.stderr.starts_with("error: 422 invalid_expression: "),
        "{}",
        bad.stderr
    );

    // Targeting explained both ways, and the audit log (admin only).
    let agent_id = agent.to_string();
    let why: Value = serde_json::from_str(
        &brokkr(
            &["targeting", "explain", "--agent", &agent_id, "-o", "json"],
            &env,
        )
        .await
        .stdout,
    )
    .unwrap();
    assert_eq!(
        (why[0]["stack_name"].as_str(), why[0]["rules"][0].as_str()),
        (Some("web"), Some("direct"))
    );
    let reached = brokkr(&["targeting", "explain", "--stack", &stack_id], &env).await;
    assert!(
        reached.stdout.lines().nth(1).unwrap().starts_with("edge "),
        "{}",
        reached.stdout
    );
    let neither = brokkr(&["targeting", "explain"], &env).await;
    assert_eq!(neither.code, 2, "one of --agent or --stack is required");
    let refused = brokkr(&["audit"], &env).await;
    assert!(
        refused.stderr.starts_with("error: 403 "),
        "{}",
        refused.stderr
    );
    let admin = [
        ("BROKKR_URL", broker.url.as_str()),
        ("BROKKR_PAK", broker.admin.as_str()),
    ];
    let audit: Value =
        serde_json::from_str(&brokkr(&["audit", "-o", "json"], &admin).await.stdout).unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"stack.created"), "{actions:?}");

    let completion = brokkr(&["completion", "bash"], &[]).await;
    assert_eq!(completion.code, 0);
    assert!(completion.stdout.contains("brokkr"));
}
