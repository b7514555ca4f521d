//! The double behaves like an API server for kube-rs (in process) and for kubectl (over a socket).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Discovery;
use kube_double::{Fault, KubeDouble};
use serde_json::json;

fn config_map(name: &str, data: serde_json::Value) -> serde_json::Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name, "labels": { "app": "web" } }, "data": data })
}

#[tokio::test]
async fn server_side_apply_merges_prunes_and_conflicts() {
    let double = KubeDouble::new();
    let api: Api<ConfigMap> = Api::namespaced(double.client(), "default");
    let pp = PatchParams::apply("agent").force();
    let first = api
        .patch(
            "app",
            &pp,
            &Patch::Apply(config_map("app", json!({ "a": "1", "b": "2" }))),
        )
        .await
        .unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    let same = api
        .patch(
            "app",
            &pp,
            &Patch::Apply(config_map("app", json!({ "a": "1", "b": "2" }))),
        )
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version.unwrap(),
        rv,
        "a no-op apply does not bump resourceVersion"
    );

    let dropped = api
        .patch(
            "app",
            &pp,
            &Patch::Apply(config_map("app", json!({ "a": "1" }))),
        )
        .await
        .unwrap();
    assert_eq!(
        dropped.data.unwrap().len(),
        1,
        "a field the applier stops sending disappears"
    );
    assert_ne!(dropped.metadata.resource_version.unwrap(), rv);
    let managers = dropped.metadata.managed_fields.unwrap();
    assert_eq!(managers[0].manager.as_deref(), Some("agent"));
    assert_eq!(managers[0].operation.as_deref(), Some("Apply"));

    let other = PatchParams::apply("someone-else");
    let err = api
        .patch(
            "app",
            &other,
            &Patch::Apply(config_map("app", json!({ "a": "changed" }))),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert!(
                status.message.contains("conflict with \"agent\""),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    let forced = api
        .patch(
            "app",
            &other.force(),
            &Patch::Apply(config_map("app", json!({ "a": "changed" }))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "changed");
}

#[tokio::test]
async fn label_selectors_namespaces_and_deletion() {
    let double = KubeDouble::new();
    let client = double.client();
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let pp = PatchParams::apply("agent");
    let err = missing
        .patch("x", &pp, &Patch::Apply(config_map("x", json!({}))))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message.contains("namespaces \"team\" not found")),
        "{err:?}"
    );

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "team",
            &pp,
            &Patch::Apply(
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "team" } }),
            ),
        )
        .await
        .unwrap();
    missing
        .patch("x", &pp, &Patch::Apply(config_map("x", json!({}))))
        .await
        .unwrap();
    let mut other = config_map("y", json!({}));
    other["metadata"]["labels"] = json!({ "app": "db" });
    missing.patch("y", &pp, &Patch::Apply(other)).await.unwrap();

    let web = missing
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 1);
    let all: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default().labels("app in (web,db)"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    missing.delete("x", &DeleteParams::default()).await.unwrap();
    assert!(missing.get_opt("x").await.unwrap().is_none());
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        all.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "deleting a namespace deletes its contents"
    );
}

fn crd() -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.example.com" },
        "spec": { "group": "example.com", "scope": "Namespaced",
                  "names": { "plural": "widgets", "singular": "widget", "kind": "Widget" },
                  "versions": [{ "name": "v1", "served": true, "storage": true, "schema": { "openAPIV3Schema": { "type": "object" } } }] }
    })
}

#[tokio::test]
async fn crds_add_kinds_after_becoming_established() {
    let double = KubeDouble::new();
    double.set_crd_delay(Duration::from_millis(200));
    let client = double.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let started = Instant::now();
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("agent"),
        &Patch::Apply(crd()),
    )
    .await
    .unwrap();

    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let widget = json!({ "apiVersion": "example.com/v1", "kind": "Widget", "metadata": { "name": "w" }, "spec": { "size": 3 } });
    let early = widgets
        .patch(
            "w",
            &PatchParams::apply("agent"),
            &Patch::Apply(widget.clone()),
        )
        .await;
    assert!(early.is_err(), "not servable before Established");

    loop {
        let current = crds.get("widgets.example.com").await.unwrap();
        let established = current
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "CRD never became Established"
        );
        tokio::task::yield_now().await;
    }
    assert!(started.elapsed() >= Duration::from_millis(200));
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(
        discovery.groups().any(|g| g.name() == "example.com"),
        "discovery lists the new group"
    );
    let stored = widgets
        .patch("w", &PatchParams::apply("agent"), &Patch::Apply(widget))
        .await
        .unwrap();
    assert_eq!(stored.data["spec"]["size"], 3);

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        widgets.get("w").await.is_err(),
        "deleting the CRD deletes its objects"
    );
}

#[tokio::test]
async fn faults_fail_then_clear() {
    let double = KubeDouble::new();
    double.inject(Fault::error(503, "/configmaps", 2));
    let api: Api<ConfigMap> = Api::namespaced(double.client(), "default");
    for _ in 0..2 {
        let err = api.list(&ListParams::default()).await.unwrap_err();
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 503),
            "{err:?}"
        );
    }
    assert!(api.list(&ListParams::default()).await.is_ok());
}

#[tokio::test]
async fn latency_can_be_injected() {
    let double = KubeDouble::new();
    double.inject(Fault {
        path_contains: Some("/configmaps".into()),
        delay: Duration::from_millis(200),
        times: Some(1),
        ..Fault::default()
    });
    let api: Api<ConfigMap> = Api::namespaced(double.client(), "default");
    let started = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the request was held"
    );
    let started = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(200), "only once");
}

#[tokio::test]
async fn invalid_objects_are_refused_with_the_api_servers_message() {
    let double = KubeDouble::new();
    let api: Api<ConfigMap> = Api::namespaced(double.client(), "default");
    let err = api
        .patch(
            "Bad_Name",
            &PatchParams::apply("agent"),
            &Patch::Apply(config_map("Bad_Name", json!({}))),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422);
            assert!(
                status
                    .message
                    .contains("ConfigMap \"Bad_Name\" is invalid: metadata.name"),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_applies_and_deletes() {
    // kubectl is part of every development and CI machine; without it the double's honesty is
    // unchecked, so its absence fails the test rather than passing it.
    let client = std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output();
    assert!(
        client.is_ok_and(|o| o.status.success()),
        "kubectl is required to check the double against a client nobody here wrote"
    );
    let double = KubeDouble::new();
    let served = double.serve().await.unwrap();
    let dir = tempfile_dir();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, KubeDouble::kubeconfig(served.addr)).unwrap();
    let manifest =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-kubectl\ndata:\n  k: v\n";
    let kc = kubeconfig.clone();
    let (applied, out) = tokio::task::spawn_blocking(move || {
        kubectl(&kc, &["apply", "--server-side", "-f", "-"], Some(manifest))
    })
    .await
    .unwrap();
    assert!(applied, "kubectl apply --server-side: {out}");
    let stored = double
        .object("", "configmaps", Some("default"), "from-kubectl")
        .expect("stored");
    assert_eq!(stored["data"]["k"], "v");
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "kubectl");

    let kc = kubeconfig.clone();
    let (got, out) = tokio::task::spawn_blocking(move || {
        kubectl(&kc, &["get", "configmaps", "-o", "name"], None)
    })
    .await
    .unwrap();
    assert!(
        got && out.contains("configmap/from-kubectl"),
        "kubectl get: {out}"
    );
    let kc = kubeconfig.clone();
    let (deleted, out) = tokio::task::spawn_blocking(move || {
        kubectl(&kc, &["delete", "configmap", "from-kubectl"], None)
    })
    .await
    .unwrap();
    assert!(deleted, "kubectl delete: {out}");
    assert!(
        double
            .object("", "configmaps", Some("default"), "from-kubectl")
            .is_none()
    );
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kube-double-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_binary_serves_kubectl_including_persistent_volume_claims() {
    let dir = tempfile_dir();
    let kubeconfig = dir.join("kubeconfig.yaml");
    /// Stops the double even when an assertion fails.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut double = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_kube-double"))
            .args(["--port", "0", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(double.0.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.contains("kubeconfig written"), "{line}");
    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: default\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";
    let (ok, out) = kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(claim),
    );
    assert!(ok, "{out}");
    let get = [
        "get",
        "persistentvolumeclaims",
        "data",
        "-n",
        "default",
        "-o",
        "name",
    ];
    let (ok, out) = kubectl(&kubeconfig, &get, None);
    assert!(ok && out.contains("persistentvolumeclaim/data"), "{out}");
}

#[tokio::test]
async fn watches_resume_from_a_version_and_send_bookmarks() {
    use futures::StreamExt;
    use kube::api::{PostParams, WatchEvent, WatchParams};
    let double = KubeDouble::new();
    let api: Api<ConfigMap> = Api::namespaced(double.client(), "default");
    let create =
        |name: &str| serde_json::from_value::<ConfigMap>(config_map(name, json!({}))).unwrap();
    api.create(&PostParams::default(), &create("before"))
        .await
        .unwrap();
    let version = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.create(&PostParams::default(), &create("after"))
        .await
        .unwrap();
    let params = WatchParams {
        bookmarks: true,
        ..WatchParams::default()
    }
    .timeout(20);
    let mut events = api.watch(&params, &version).await.unwrap().boxed();
    match events.next().await.unwrap().unwrap() {
        WatchEvent::Added(map) => assert_eq!(
            map.metadata.name.as_deref(),
            Some("after"),
            "only what changed after the version"
        ),
        other => panic!("{other:?}"),
    }
    api.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    match events.next().await.unwrap().unwrap() {
        WatchEvent::Deleted(map) => assert_eq!(map.metadata.name.as_deref(), Some("before")),
        other => panic!("{other:?}"),
    }
    match events.next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(mark) => assert!(!mark.metadata.resource_version.is_empty()),
        other => panic!("{other:?}"),
    }
}
