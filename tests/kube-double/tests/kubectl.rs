//! The double as kubectl sees it, with every kubectl at hand: v1.20 from
//! `scripts/ensure-kube-tools.sh` (always) and the one on PATH (when there is one). Validation
//! against the published OpenAPI (built-in kinds and CRDs), no-op apply, strategic merge patch,
//! resourceVersion preconditions, watch, PersistentVolumeClaims and OpenAPI v3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use kube_double::KubeDouble;

/// Every kubectl to check with; the pinned one must exist.
fn kubectls() -> Vec<PathBuf> {
    let pinned = std::env::var_os("BROKKR_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/kubectl")
        });
    assert!(
        pinned.exists(),
        "{} is missing: run scripts/ensure-kube-tools.sh (scripts/test-all.sh does)",
        pinned.display()
    );
    let mut all = vec![pinned];
    let on_path = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        all.push(PathBuf::from("kubectl"));
    }
    all
}

/// One kubectl against one double, with a private home (kubectl caches discovery there).
struct Kubectl {
    binary: PathBuf,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn new(binary: PathBuf, addr: std::net::SocketAddr) -> Self {
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = home.path().join("kubeconfig");
        std::fs::write(&kubeconfig, KubeDouble::kubeconfig(addr)).unwrap();
        Self {
            binary,
            home,
            kubeconfig,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("HOME", self.home.path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args);
        command
    }

    /// Runs kubectl with `stdin`; (success, stdout + stderr).
    fn run(&self, args: &[&str], stdin: &str) -> (bool, String) {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let (ok, out) = self.run(args, stdin);
        assert!(ok, "{} {args:?}: {out}", self.binary.display());
        out
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all, "")).unwrap()
    }
}

/// Serves a double and runs `check` with each kubectl against a fresh one, off the runtime.
async fn with_each_kubectl(check: fn(&KubeDouble, &Kubectl)) {
    for binary in kubectls() {
        let double = KubeDouble::new();
        // Long enough that `kubectl wait` finds the CRD not yet Established and must watch.
        double.set_crd_delay(Duration::from_millis(300));
        let served = double.serve().await.unwrap();
        let kubectl = Kubectl::new(binary, served.addr);
        tokio::task::spawn_blocking(move || check(&double, &kubectl))
            .await
            .unwrap();
        drop(served);
    }
}

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n        ports:\n        - containerPort: 8080\n        env:\n        - name: MODE\n          value: prod\n        resources:\n          requests: {{cpu: 100m, memory: 64Mi}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_validates_is_idempotent_and_merges_strategically() {
    with_each_kubectl(|_, kubectl| {
        kubectl.ok(&["apply", "-f", "-"], &deployment("web:1"));
        let first = kubectl.json(&["get", "deployment", "web"]);
        let again = kubectl.ok(&["apply", "-f", "-"], &deployment("web:1"));
        assert!(again.contains("unchanged"), "{again}");
        let same = kubectl.json(&["get", "deployment", "web"]);
        assert_eq!(
            first["metadata"]["resourceVersion"], same["metadata"]["resourceVersion"],
            "re-applying an unchanged manifest changes nothing"
        );

        kubectl.ok(&["apply", "-f", "-"], &deployment("web:2"));
        let changed = kubectl.json(&["get", "deployment", "web"]);
        let container = &changed["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "web:2");
        assert_eq!(container["ports"][0]["containerPort"], 8080, "{container}");
        assert_eq!(container["env"][0]["name"], "MODE", "{container}");

        let extra = r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"EXTRA","value":"1"}]}]}}}}"#;
        kubectl.ok(&["patch", "deployment", "web", "-p", extra], "");
        let patched = kubectl.json(&["get", "deployment", "web"]);
        let env = &patched["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env.as_array().unwrap().len(), 2, "env merged by name: {env}");

        // The schemas are used: a misspelt field and a wrong type are refused before sending.
        let typo = deployment("web:3").replace("replicas: 2", "replica: 2");
        let (ok, out) = kubectl.run(&["apply", "-f", "-"], &typo);
        assert!(!ok && out.contains("replica"), "{out}");
        let wrong = deployment("web:3").replace("replicas: 2", "replicas: two");
        let (ok, out) = kubectl.run(&["apply", "-f", "-"], &wrong);
        assert!(!ok && out.contains("replicas"), "{out}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_are_validated_against_their_crd() {
    with_each_kubectl(|_, kubectl| {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              size: {type: integer}\n";
        kubectl.ok(&["apply", "-f", "-"], crd);
        kubectl.ok(
            &["wait", "--for=condition=Established", "crd/widgets.example.com"],
            "",
        );
        let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: default\nspec:\n  size: 3\n";
        kubectl.ok(&["apply", "-f", "-"], widget);
        let (ok, out) = kubectl.run(&["apply", "-f", "-"], &widget.replace("size: 3", "size: big"));
        assert!(!ok && out.contains("size"), "{out}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_with_a_stale_resource_version_is_refused() {
    with_each_kubectl(|_, kubectl| {
        let map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  a: \"1\"\n";
        kubectl.ok(&["create", "-f", "-"], map);
        let stale = kubectl.json(&["get", "configmap", "settings"]);
        kubectl.ok(
            &["patch", "configmap", "settings", "--type=merge", "-p", r#"{"data":{"a":"2"}}"#],
            "",
        );
        let (ok, out) = kubectl.run(&["replace", "-f", "-"], &stale.to_string());
        assert!(!ok && out.contains("the object has been modified"), "{out}");
        let current = kubectl.json(&["get", "configmap", "settings"]);
        assert_eq!(current["data"]["a"], "2", "the stale replace changed nothing");
        kubectl.ok(&["replace", "-f", "-"], &current.to_string());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_changes_and_claims_are_served() {
    with_each_kubectl(|_, kubectl| {
        let map = |name: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n")
        };
        kubectl.ok(&["apply", "-f", "-"], &map("first"));
        let mut watch = kubectl
            .command(&["get", "configmaps", "--watch", "-o", "name"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (lines, seen) = std::sync::mpsc::channel();
        let stdout = watch.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let next = || seen.recv_timeout(Duration::from_secs(20)).expect("kubectl printed a line");
        assert_eq!(next(), "configmap/first", "the list comes first");
        kubectl.ok(&["apply", "-f", "-"], &map("second"));
        assert_eq!(next(), "configmap/second", "then the changes, as they happen");
        watch.kill().unwrap();
        watch.wait().unwrap();

        let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: default\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";
        kubectl.ok(&["apply", "-f", "-"], claim);
        let out = kubectl.ok(&["get", "pvc", "data", "-o", "name"], "");
        assert!(out.contains("persistentvolumeclaim/data"), "{out}");

        let index: serde_json::Value =
            serde_json::from_str(&kubectl.ok(&["get", "--raw", "/openapi/v3"], "")).unwrap();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .to_string();
        let apps: serde_json::Value =
            serde_json::from_str(&kubectl.ok(&["get", "--raw", &url], "")).unwrap();
        let schema = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(schema["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
    })
    .await;
}
