//! A Kubernetes API test double that `kube::Client` and `kubectl` talk to over real HTTP:
//! discovery, namespaced and cluster-scoped resources, CRDs that add kinds at run time (and
//! become Established after a delay), server-side apply with field managers and conflicts,
//! label selectors, resourceVersion, deletion, the status subresource and injectable faults.
//!
//! Serve it in-process ([`KubeDouble::client`]) for fast tests or on a 127.0.0.1 socket
//! ([`KubeDouble::serve`]) for processes that read a kubeconfig.

mod http;
pub mod kinds;
pub mod openapi;
pub mod openapi_proto;
pub mod patch_strategy;
pub mod paths;
pub mod selector;
pub mod smp;
pub mod ssa;
pub mod status;
pub mod store;
pub mod validate;
pub mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::Method;
use serde_json::Value;

use store::Store;

/// A fault to inject: requests matching `method` and `path_contains` are delayed by `delay`
/// and, when `status` is set, answered with that error status, `times` times (or forever).
#[derive(Debug, Clone, Default)]
pub struct Fault {
    pub method: Option<Method>,
    pub path_contains: Option<String>,
    pub status: Option<u16>,
    pub message: String,
    pub delay: Duration,
    pub times: Option<u32>,
}

impl Fault {
    /// Fails matching requests with `status` `times` times.
    pub fn error(status: u16, path_contains: &str, times: u32) -> Self {
        Self {
            path_contains: Some(path_contains.into()),
            status: Some(status),
            message: format!("injected fault: HTTP {status}"),
            times: Some(times),
            ..Self::default()
        }
    }

    /// Restricts the fault to one HTTP method.
    pub fn on(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_ref()
                .is_none_or(|p| path.contains(p.as_str()))
    }
}

/// State shared by the HTTP handlers and the test's handle.
#[derive(Debug, Default)]
pub struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Vec<Fault>>,
    /// Ticks after every write, waking watches.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Wakes the watches (something may have changed).
    fn notify(&self) {
        self.changes
            .send_modify(|tick| *tick = tick.wrapping_add(1));
    }

    fn take_fault(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().ok()?;
        let index = faults.iter().position(|f| f.matches(method, path))?;
        let fault = faults[index].clone();
        if let Some(times) = &mut faults[index].times {
            *times -= 1;
            if *times == 0 {
                faults.remove(index);
            }
        }
        Some(fault)
    }
}

/// The Pod annotation whose text the double serves as the pod's log.
pub const POD_LOG_ANNOTATION: &str = "kube-double.brokkr.io/log";

/// A handle on one test double (cheap to clone; clones share state).
#[derive(Debug, Clone, Default)]
pub struct KubeDouble {
    shared: Arc<Shared>,
}

/// A double listening on a socket; dropping it stops the server.
#[derive(Debug)]
pub struct Served {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl KubeDouble {
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a new CRD waits before it is Established (default 300 ms).
    pub fn set_crd_delay(&self, delay: Duration) {
        if let Ok(mut store) = self.shared.store.lock() {
            store.crd_delay = delay;
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .fallback(http::handle)
            .with_state(self.shared.clone())
    }

    /// A kube client talking to the double in-process (no socket).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Serves the double on 127.0.0.1 on a free port.
    pub async fn serve(&self) -> std::io::Result<Served> {
        self.serve_on(0).await
    }

    /// Serves the double on 127.0.0.1:`port` (0: a free one).
    pub async fn serve_on(&self, port: u16) -> std::io::Result<Served> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Served { addr, _stop: stop })
    }

    /// A kubeconfig pointing at a served double.
    pub fn kubeconfig(addr: SocketAddr) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: http://{addr}\n\
             contexts:\n- name: double\n  context:\n    cluster: double\n    user: double\n    namespace: default\n\
             current-context: double\nusers:\n- name: double\n  user: {{}}\n"
        )
    }

    pub fn inject(&self, fault: Fault) {
        if let Ok(mut faults) = self.shared.faults.lock() {
            faults.push(fault);
        }
    }

    pub fn clear_faults(&self) {
        if let Ok(mut faults) = self.shared.faults.lock() {
            faults.clear();
        }
    }

    /// Reads an object directly from the store (`group` is "" for the core group).
    pub fn object(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.shared.store.lock().ok()?;
        let kind = store
            .kinds()
            .iter()
            .find(|k| k.group == group && k.plural == plural)?
            .clone();
        store.get(&kind, namespace, name).ok()
    }

    /// Sets an object's status, as a controller would.
    pub fn set_status(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> bool {
        let Ok(mut store) = self.shared.store.lock() else {
            return false;
        };
        let Some(kind) = store
            .kinds()
            .iter()
            .find(|k| k.group == group && k.plural == plural)
            .cloned()
        else {
            return false;
        };
        let written = store
            .write_status(&kind, namespace, name, status, false)
            .is_ok();
        drop(store);
        self.shared.notify();
        written
    }
}
