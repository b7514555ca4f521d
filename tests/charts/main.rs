//! The Helm charts rendered by real Helm 3 (`scripts/ensure-kube-tools.sh` provides it): lint, then
//! `helm template` with several value sets, checking the objects' names, the references between
//! them, that every `BROKKR__*` variable they set is a setting the binaries know, and that a
//! missing required value fails with a message naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

mod install;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Helm: `BROKKR_HELM`, or what scripts/ensure-kube-tools.sh installed.
fn helm() -> PathBuf {
    let path = std::env::var_os("BROKKR_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/tools/helm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/ensure-kube-tools.sh (scripts/test-all.sh does)",
        path.display()
    );
    path
}

/// `helm template RELEASE charts/CHART --set …`: the objects, or Helm's error.
fn render(chart: &str, release: &str, sets: &[&str]) -> Result<Vec<Value>, String> {
    let mut command = Command::new(helm());
    command
        .args(["template", release])
        .arg(root().join("charts").join(chart))
        .args(["--namespace", "brokkr"]);
    for set in sets {
        command.args(["--set", set]);
    }
    let output = command.output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8(output.stdout).unwrap();
    Ok(serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect())
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {objects:#?}"))
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap()
}

fn container(objects: &[Value]) -> &Value {
    &object(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

/// The container's environment: name → literal value or `secret:NAME/KEY`.
fn env(objects: &[Value]) -> Vec<(String, String)> {
    container(objects)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let value = match e["value"].as_str() {
                Some(v) => v.to_string(),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    format!(
                        "secret:{}/{}",
                        r["name"].as_str().unwrap(),
                        r["key"].as_str().unwrap()
                    )
                }
            };
            (e["name"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

fn value_of(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// Every `BROKKR__*` variable must be a setting the binary reads (its loader refuses unknown
/// keys); secret references stand in with plausible values.
fn settings_accept<T>(env: &[(String, String)])
where
    T: Default + serde::Serialize + serde::de::DeserializeOwned,
{
    let vars = env
        .iter()
        .filter(|(n, _)| n.starts_with("BROKKR__"))
        .map(|(n, v)| {
            let value = if v.starts_with("secret:") {
                "brokkr_BRabcdefgh_x".to_string()
            } else {
                v.clone()
            };
            (n.clone(), value)
        });
    if let Err(e) = brokkr_types::config::load::<T>(None, vars) {
        panic!("the chart sets a variable the binary does not know: {e}");
    }
}

const AGENT_ENROLLING: &[&str] = &[
    "broker.url=https://brokkr.example.com",
    "enrollment.token=brokkr_ETabcdefgh_secret",
    "agent.name=edge-1",
    "agent.clusterName=edge",
];

#[test]
fn both_charts_lint() {
    for (chart, sets) in [
        ("brokkr-agent", AGENT_ENROLLING),
        (
            "brokkr-broker",
            &["database.url=postgres://u:p@db:5432/brokkr"][..],
        ),
    ] {
        let mut command = Command::new(helm());
        command.arg("lint").arg(root().join("charts").join(chart));
        for set in sets {
            command.args(["--set", set]);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{chart}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn the_agent_chart_enrolls_by_default_and_its_objects_refer_to_each_other() {
    let objects = render("brokkr-agent", "brokkr-agent", AGENT_ENROLLING).unwrap();
    let account = name(object(&objects, "ServiceAccount"));
    let secret = name(object(&objects, "Secret"));
    let claim = name(object(&objects, "PersistentVolumeClaim"));
    let role = name(object(&objects, "ClusterRole"));
    assert_eq!(
        (account, secret, claim, role),
        (
            "brokkr-agent",
            "brokkr-agent",
            "brokkr-agent-state",
            "brokkr-agent"
        )
    );
    let binding = object(&objects, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role);
    assert_eq!(binding["subjects"][0]["name"], account);
    let pod = &object(&objects, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], account);
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == claim)
    );
    let env = env(&objects);
    assert_eq!(
        value_of(&env, "BROKKR__AGENT__ENROLLMENT_TOKEN").unwrap(),
        format!("secret:{secret}/enrollment-token")
    );
    assert_eq!(
        value_of(&env, "BROKKR__AGENT__NAME").as_deref(),
        Some("edge-1")
    );
    assert!(value_of(&env, "BROKKR__AGENT__PAK").is_none());
    assert!(object(&objects, "Secret")["stringData"]["enrollment-token"].is_string());
    settings_accept::<brokkr_agent::config::Settings>(&env);
    let rules = object(&objects, "ClusterRole")["rules"].to_string();
    assert!(
        !rules.contains("\"*\""),
        "the default role is narrow: {rules}"
    );
}

#[test]
fn the_agent_chart_takes_a_pak_and_certificates() {
    let sets = [
        "broker.url=https://brokkr.example.com",
        "broker.pak=brokkr_BRabcdefgh_secret",
        "tls.caSecret=brokkr-ca",
        "tls.clientCertSecret=edge-1-cert",
        "rbac.extraRules[0].apiGroups[0]=monitoring.coreos.com",
        "rbac.extraRules[0].resources[0]=servicemonitors",
        "rbac.extraRules[0].verbs[0]=get",
    ];
    let objects = render("brokkr-agent", "prod", &sets).unwrap();
    assert_eq!(name(object(&objects, "Deployment")), "prod-brokkr-agent");
    let env = env(&objects);
    assert_eq!(
        value_of(&env, "BROKKR__AGENT__PAK").unwrap(),
        "secret:prod-brokkr-agent/pak"
    );
    let mounts = container(&objects)["volumeMounts"].to_string();
    for (variable, mount) in [
        ("BROKKR__AGENT__CA_FILE", "/etc/brokkr/ca"),
        ("BROKKR__AGENT__CLIENT_CERT_FILE", "/etc/brokkr/client"),
    ] {
        assert!(value_of(&env, variable).unwrap().starts_with(mount));
        assert!(mounts.contains(mount), "{mounts}");
    }
    let volumes = object(&objects, "Deployment")["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains("brokkr-ca") && volumes.contains("edge-1-cert"),
        "{volumes}"
    );
    assert!(
        object(&objects, "ClusterRole")["rules"]
            .to_string()
            .contains("servicemonitors")
    );
    settings_accept::<brokkr_agent::config::Settings>(&env);
}

#[test]
fn the_agent_chart_names_what_is_missing() {
    for (sets, expected) in [
        (&["broker.pak=x"][..], "set broker.url"),
        (
            &["broker.url=http://brokkr.brokkr.svc:3000", "broker.pak=x"][..],
            "allowInsecureHttp",
        ),
        (
            &["broker.url=https://b.example"][..],
            "give the agent an identity",
        ),
        (
            &["broker.url=https://b.example", "enrollment.token=t"][..],
            "agent.name",
        ),
    ] {
        let err = render("brokkr-agent", "brokkr-agent", sets).unwrap_err();
        assert!(err.contains(expected), "{sets:?}: {err}");
    }
}

#[test]
fn the_broker_chart_serves_its_service_and_keeps_the_admin_pak_out_of_the_logs() {
    let objects = render(
        "brokkr-broker",
        "brokkr-broker",
        &["database.url=postgres://u:p@db:5432/brokkr"],
    )
    .unwrap();
    let deployment = object(&objects, "Deployment");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for selector in [
        &object(&objects, "Service")["spec"]["selector"],
        &object(&objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ] {
        for (key, value) in selector.as_object().unwrap() {
            assert_eq!(&labels[key], value, "{key}");
        }
    }
    assert_eq!(
        name(object(&objects, "Service")),
        "brokkr-broker",
        "the agent chart's example URL names it"
    );
    let port = &container(&objects)["ports"][0]["name"];
    assert_eq!(
        &object(&objects, "Service")["spec"]["ports"][0]["targetPort"],
        port
    );
    let env = env(&objects);
    assert_eq!(
        value_of(&env, "BROKKR__DATABASE__URL").unwrap(),
        format!("secret:{}/url", name(object(&objects, "Secret")))
    );
    // The admin PAK: made by Helm into a Secret kept across uninstalls, mounted where the
    // broker adopts it on a new database; the broker never prints it.
    let admin = objects
        .iter()
        .find(|o| o["kind"] == "Secret" && name(o) == "brokkr-broker-admin")
        .unwrap_or_else(|| panic!("no admin Secret in {objects:#?}"));
    assert_eq!(
        admin["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    use base64::Engine as _;
    let pak = base64::engine::general_purpose::STANDARD
        .decode(admin["data"]["pak"].as_str().unwrap())
        .unwrap();
    let pak = String::from_utf8(pak).unwrap();
    let (short, long) = pak
        .strip_prefix("brokkr_BR")
        .unwrap()
        .split_once('_')
        .unwrap();
    assert!(short.len() == 8 && long.len() == 32, "{pak} is no PAK");
    let args = container(&objects)["args"].to_string();
    assert!(
        args.contains("--admin-pak-file") && args.contains("/var/run/brokkr/admin/pak"),
        "{args}"
    );
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(volumes.contains("brokkr-broker-admin"), "{volumes}");
    assert!(
        container(&objects)["volumeMounts"]
            .to_string()
            .contains("/var/run/brokkr/admin")
    );
    settings_accept::<brokkr_broker::config::Settings>(&env);
}

#[test]
fn the_broker_chart_serves_https_with_client_certificates() {
    let sets = [
        "database.existingSecret=brokkr-db",
        "tls.enabled=true",
        "tls.existingSecret=brokkr-tls",
        "tls.clientAuth=optional",
        "tls.clientCaSecret=agents-ca",
        "tls.bindAgentCertificates=true",
        "webhooks.encryptionKeysSecret=brokkr-webhook-keys",
    ];
    let objects = render("brokkr-broker", "brokkr", &sets).unwrap();
    let secrets: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .map(name)
        .collect();
    assert_eq!(
        secrets,
        ["brokkr-brokkr-broker-admin"],
        "the existing database Secret is used; only the admin PAK's is made"
    );
    let env = env(&objects);
    assert_eq!(
        value_of(&env, "BROKKR__DATABASE__URL").unwrap(),
        "secret:brokkr-db/url"
    );
    assert!(
        value_of(&env, "BROKKR__BROKER__TLS__CERT_FILE")
            .unwrap()
            .starts_with("/etc/brokkr/tls/")
    );
    assert_eq!(
        value_of(&env, "BROKKR__BROKER__TLS__CLIENT_AUTH").as_deref(),
        Some("optional")
    );
    assert_eq!(
        value_of(&env, "BROKKR__WEBHOOKS__ENCRYPTION_KEYS").unwrap(),
        "secret:brokkr-webhook-keys/keys"
    );
    assert_eq!(
        container(&objects)["readinessProbe"]["httpGet"]["scheme"],
        "HTTPS"
    );
    let volumes = object(&objects, "Deployment")["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains("brokkr-tls") && volumes.contains("agents-ca"),
        "{volumes}"
    );
    let mut checked: Vec<(String, String)> = env
        .into_iter()
        .filter(|(n, _)| n != "BROKKR__WEBHOOKS__ENCRYPTION_KEYS")
        .collect();
    checked.push(("BROKKR__BROKER__TLS__RELOAD_SECONDS".into(), "30".into()));
    settings_accept::<brokkr_broker::config::Settings>(&checked);
}

#[test]
fn the_broker_chart_names_what_is_missing() {
    for (sets, expected) in [
        (&[][..], "set database.url"),
        (
            &["database.url=sqlite://b.db"][..],
            "several replicas need PostgreSQL",
        ),
        (
            &["database.url=postgres://db/b", "tls.enabled=true"][..],
            "tls.existingSecret",
        ),
        (
            &["database.url=postgres://db/b", "tls.clientAuth=required"][..],
            "tls.clientCaSecret",
        ),
    ] {
        let err = render("brokkr-broker", "brokkr-broker", sets).unwrap_err();
        assert!(err.contains(expected), "{sets:?}: {err}");
    }
}
