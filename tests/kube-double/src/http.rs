//! The HTTP face of the double: discovery documents, resource CRUD, patches of every content
//! type kubectl and kube-rs send, the status subresource, and fault injection.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Shared;
use crate::kinds::Kind;
use crate::paths::{self, Route, Target};
use crate::selector::{FieldSelector, Selector};
use crate::status::{ApiErr, ApiResult};
use crate::store::Write;
use crate::watch::Filter;

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn failure(err: ApiErr) -> Response {
    reply(
        StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        err.body(),
    )
}

/// Every request lands here.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return failure(ApiErr::bad_request("unreadable body"));
    };
    if let Some(fault) = shared.take_fault(&parts.method, parts.uri.path()) {
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        if let Some(code) = fault.status {
            return failure(ApiErr::new(code, "InternalError", fault.message));
        }
    }
    let query = parts.uri.query().unwrap_or_default().to_string();
    let path = parts.uri.path();
    if path.starts_with("/openapi/") {
        return openapi(&shared, path, &parts.headers);
    }
    if parts.method == Method::GET
        && matches!(param(&query, "watch").as_deref(), Some("true" | "1"))
    {
        return match watch_request(&shared, path, &query) {
            Ok(request) => crate::watch::serve(shared.clone(), request),
            Err(err) => failure(err),
        };
    }
    if parts.method == Method::GET
        && let Some(Route::Resource(target)) = paths::parse(path)
        && target.plural == "pods"
        && target.subresource.as_deref() == Some("log")
    {
        return pod_log(&shared, &target, &query);
    }
    let result = route(
        &shared,
        &parts.method,
        parts.uri.path(),
        &query,
        &parts.headers,
        &body,
    );
    if parts.method != Method::GET {
        shared.notify();
        establish_when_due(&shared);
    }
    match result {
        Ok((status, value)) => reply(status, value),
        Err(err) => failure(err),
    }
}

/// Establishes waiting CRDs when their delay passes, as the apiextensions controller would, and
/// wakes the watches (a `kubectl wait` may be watching; no further request need arrive).
fn establish_when_due(shared: &Arc<Shared>) {
    let due = shared
        .store
        .lock()
        .ok()
        .and_then(|store| store.next_crd_due());
    let Some(due) = due else {
        return;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(due.into()).await;
        if let Ok(mut store) = shared.store.lock() {
            store.promote_due_crds(Instant::now());
        }
        shared.notify();
    });
}

/// A pod's log: the text of its `kube-double.brokkr.io/log` annotation (a test writes it; no
/// container runs here), cut to `tailLines` and `limitBytes` as the kubelet would.
fn pod_log(shared: &Shared, target: &Target, query: &str) -> Response {
    let found = shared.store.lock().ok().and_then(|store| {
        let kind = store.kinds().iter().find(|k| k.plural == "pods")?.clone();
        store
            .get(&kind, target.namespace.as_deref(), target.name.as_deref()?)
            .ok()
    });
    let Some(pod) = found else {
        return failure(ApiErr::not_found(
            "pods",
            target.name.as_deref().unwrap_or_default(),
        ));
    };
    let text = pod["metadata"]["annotations"][crate::POD_LOG_ANNOTATION]
        .as_str()
        .unwrap_or_default();
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(tail) = param(query, "tailLines").and_then(|t| t.parse::<usize>().ok()) {
        lines = lines.split_off(lines.len().saturating_sub(tail));
    }
    let mut log: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if let Some(limit) = param(query, "limitBytes").and_then(|t| t.parse::<usize>().ok()) {
        while log.len() > limit {
            log.pop();
        }
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], log).into_response()
}

/// The OpenAPI documents: v2 as protobuf when asked for, else JSON; v3 per group version.
fn openapi(shared: &Shared, path: &str, headers: &HeaderMap) -> Response {
    let Ok(store) = shared.store.lock() else {
        return failure(ApiErr::new(500, "InternalError", "store poisoned"));
    };
    let definitions = crate::openapi::definitions(store.kinds(), &store.crd_schemas());
    let not_found = || {
        failure(ApiErr::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ))
    };
    match path.trim_end_matches('/') {
        "/openapi/v2" => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if accept.contains("protobuf") {
                let bytes = crate::openapi_proto::encode(&definitions);
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, crate::openapi_proto::CONTENT_TYPE)],
                    bytes,
                )
                    .into_response();
            }
            reply(StatusCode::OK, crate::openapi::v2(definitions))
        }
        "/openapi/v3" => reply(StatusCode::OK, crate::openapi::v3_index(store.kinds())),
        other => match other.strip_prefix("/openapi/v3/") {
            Some(gv) => crate::openapi::v3(store.kinds(), &definitions, gv)
                .map_or_else(not_found, |doc| reply(StatusCode::OK, doc)),
            None => not_found(),
        },
    }
}

/// What a list or watch request selects.
fn filter(kind: &Kind, target: &Target, query: &str) -> ApiResult<Filter> {
    let labels = Selector::parse(&param(query, "labelSelector").unwrap_or_default())
        .ok_or_else(|| ApiErr::bad_request("unable to parse the label selector"))?;
    let mut fields = param(query, "fieldSelector").unwrap_or_default();
    if let Some(name) = &target.name {
        fields = format!("{fields},metadata.name={name}");
    }
    let fields = FieldSelector::parse(&fields).ok_or_else(|| {
        ApiErr::bad_request("field selectors may name metadata.name and metadata.namespace only")
    })?;
    Ok(Filter {
        kind: kind.clone(),
        namespace: target.namespace.clone(),
        labels,
        fields,
    })
}

fn watch_request(shared: &Shared, path: &str, query: &str) -> ApiResult<crate::watch::Request> {
    let not_found = || {
        ApiErr::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let Some(Route::Resource(target)) = paths::parse(path) else {
        return Err(not_found());
    };
    let store = shared
        .store
        .lock()
        .map_err(|_| ApiErr::new(500, "InternalError", "store poisoned"))?;
    let kind = store
        .kind(&target.group, &target.version, &target.plural)
        .cloned()
        .ok_or_else(not_found)?;
    let since = param(query, "resourceVersion")
        .filter(|v| !v.is_empty() && v != "0")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiErr::bad_request("resourceVersion must be a number"))
        })
        .transpose()?;
    let seconds = param(query, "timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1800);
    Ok(crate::watch::Request {
        filter: filter(&kind, &target, query)?,
        since,
        bookmarks: param(query, "allowWatchBookmarks").as_deref() == Some("true"),
        timeout: std::time::Duration::from_secs(seconds),
    })
}

fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<(StatusCode, Value)> {
    let mut store = shared
        .store
        .lock()
        .map_err(|_| ApiErr::new(500, "InternalError", "store poisoned"))?;
    store.promote_due_crds(Instant::now());
    let ok = |v| Ok((StatusCode::OK, v));
    match paths::parse(path).ok_or_else(|| {
        ApiErr::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    })? {
        Route::Version => ok(
            json!({ "major": "1", "minor": "32", "gitVersion": "v1.32.0-brokkr-double", "platform": "linux/amd64" }),
        ),
        Route::CoreVersions => ok(json!({ "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }] })),
        Route::Groups => ok(groups(store.kinds())),
        Route::Resources { group, version } => resources(store.kinds(), &group, &version),
        Route::OpenApi => Err(ApiErr::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
        Route::Resource(target) => {
            let kind = store
                .kind(&target.group, &target.version, &target.plural)
                .cloned()
                .ok_or_else(|| {
                    ApiErr::new(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    )
                })?;
            let call = Call {
                kind: &kind,
                target: &target,
                query,
                headers,
                body,
            };
            call.dispatch(&mut store, method)
        }
    }
}

fn groups(kinds: &[Kind]) -> Value {
    let mut names: Vec<(String, String)> = kinds
        .iter()
        .filter(|k| !k.group.is_empty())
        .map(|k| (k.group.clone(), k.version.clone()))
        .collect();
    names.sort();
    names.dedup();
    let groups: Vec<Value> = names
        .iter()
        .map(|(g, v)| {
            let gv = json!({ "groupVersion": format!("{g}/{v}"), "version": v });
            json!({ "name": g, "versions": [gv.clone()], "preferredVersion": gv })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

fn resources(kinds: &[Kind], group: &str, version: &str) -> ApiResult<(StatusCode, Value)> {
    let entries: Vec<Value> = kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .flat_map(resource_entries)
        .collect();
    if entries.is_empty() {
        return Err(ApiErr::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok((
        StatusCode::OK,
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries }),
    ))
}

fn resource_entries(kind: &Kind) -> Vec<Value> {
    let mut entries = vec![kind.discovery_entry()];
    if kind.has_status {
        entries.push(json!({ "name": format!("{}/status", kind.plural), "namespaced": kind.namespaced, "kind": kind.kind, "verbs": ["get", "patch", "update"] }));
    }
    entries
}

fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One resource request being served.
struct Call<'a> {
    kind: &'a Kind,
    target: &'a Target,
    query: &'a str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

impl Call<'_> {
    fn ns(&self) -> Option<&str> {
        self.target.namespace.as_deref()
    }

    fn manager(&self) -> String {
        param(self.query, "fieldManager").unwrap_or_else(|| "unknown".into())
    }

    fn parsed_body(&self) -> ApiResult<Value> {
        serde_yaml_ng::from_slice::<Value>(self.body)
            .map_err(|e| ApiErr::bad_request(format!("cannot decode the body: {e}")))
    }

    fn content_type(&self) -> String {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn dispatch(
        &self,
        store: &mut crate::store::Store,
        method: &Method,
    ) -> ApiResult<(StatusCode, Value)> {
        if self.kind.namespaced && self.target.namespace.is_none() && self.target.name.is_some() {
            return Err(ApiErr::new(
                404,
                "NotFound",
                "namespaced resources need a namespace in the path",
            ));
        }
        let dry_run = param(self.query, "dryRun").is_some();
        match (
            method,
            self.target.name.as_deref(),
            self.target.subresource.as_deref(),
        ) {
            (&Method::GET, None, _) => {
                let filter = filter(self.kind, self.target, self.query)?;
                Ok((StatusCode::OK, store.list(&filter)))
            }
            (&Method::GET, Some(name), _) => {
                Ok((StatusCode::OK, store.get(self.kind, self.ns(), name)?))
            }
            (&Method::POST, None, None) => self.create(store, dry_run),
            (&Method::PUT, Some(name), None) => {
                self.write(store, name, Write::Replace(self.parsed_body()?), dry_run)
            }
            (&Method::PATCH, Some(name), None) => self.patch(store, name, dry_run),
            (&Method::DELETE, Some(name), None) => self.delete(store, name, dry_run),
            (&Method::PUT | &Method::PATCH, Some(name), Some("status")) => {
                let body = self.parsed_body()?;
                let status = body.get("status").cloned().unwrap_or(Value::Null);
                let merge = method == Method::PATCH;
                Ok((
                    StatusCode::OK,
                    store.write_status(self.kind, self.ns(), name, status, merge)?,
                ))
            }
            _ => Err(ApiErr::new(
                405,
                "MethodNotAllowed",
                format!("{method} is not supported here"),
            )),
        }
    }

    fn create(
        &self,
        store: &mut crate::store::Store,
        dry_run: bool,
    ) -> ApiResult<(StatusCode, Value)> {
        let body = self.parsed_body()?;
        crate::validate::type_meta(self.kind, &body, false)?;
        let name = body["metadata"]["name"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                ApiErr::invalid(
                    &self.kind.kind,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                )
            })?;
        self.write(store, &name, Write::Create(body), dry_run)
    }

    fn patch(
        &self,
        store: &mut crate::store::Store,
        name: &str,
        dry_run: bool,
    ) -> ApiResult<(StatusCode, Value)> {
        let body = self.parsed_body()?;
        let write = match self.content_type().as_str() {
            "application/apply-patch+yaml" => {
                if param(self.query, "fieldManager").is_none() {
                    return Err(ApiErr::bad_request(
                        "fieldManager is required for apply requests",
                    ));
                }
                crate::validate::type_meta(self.kind, &body, true)?;
                if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
                    return Err(ApiErr::bad_request(
                        "the name in the body does not match the URL",
                    ));
                }
                let force = param(self.query, "force").as_deref() == Some("true");
                Write::Apply {
                    config: body,
                    force,
                }
            }
            "application/merge-patch+json" => Write::MergePatch(body),
            "application/strategic-merge-patch+json" => {
                if crate::openapi::builtin_root(self.kind).is_none() {
                    return Err(ApiErr::new(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                    ));
                }
                Write::StrategicPatch(body)
            }
            other => {
                return Err(ApiErr::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the double does not support {other} patches"),
                ));
            }
        };
        self.write(store, name, write, dry_run)
    }

    fn write(
        &self,
        store: &mut crate::store::Store,
        name: &str,
        write: Write,
        dry_run: bool,
    ) -> ApiResult<(StatusCode, Value)> {
        let (value, created) = if dry_run {
            store
                .clone()
                .write(self.kind, self.ns(), name, write, &self.manager())?
        } else {
            store.write(self.kind, self.ns(), name, write, &self.manager())?
        };
        Ok((
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            value,
        ))
    }

    fn delete(
        &self,
        store: &mut crate::store::Store,
        name: &str,
        dry_run: bool,
    ) -> ApiResult<(StatusCode, Value)> {
        if dry_run {
            return Ok((StatusCode::OK, store.get(self.kind, self.ns(), name)?));
        }
        Ok((StatusCode::OK, store.delete(self.kind, self.ns(), name)?))
    }
}
