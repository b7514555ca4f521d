//! The OpenAPI documents a real API server publishes, for the kinds the double serves: schemas of
//! the built-in kinds from k8s-openapi, plus each established CRD's `openAPIV3Schema`, every
//! top-level schema tagged with `x-kubernetes-group-version-kind` (how kubectl and Helm find
//! the schema of a manifest). v2 as JSON or as the protobuf kubectl asks for; v3 per group
//! version.

use std::sync::OnceLock;

use k8s_openapi::api::{apps, batch, core, networking, policy, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use k8s_openapi::schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::kinds::Kind;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Registers `T` as the schema of `kind` and returns its definition's name.
fn register<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    let _: Schema = generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// The built-in kinds' definitions (and everything they refer to), computed once.
pub fn builtin() -> &'static Map<String, Value> {
    static DEFINITIONS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        let mut generator = SchemaSettings::draft07()
            .with(|s| s.meta_schema = None)
            .into_generator();
        let g = &mut generator;
        let roots = [
            (("", "Namespace"), register::<core::v1::Namespace>(g)),
            (("", "ConfigMap"), register::<core::v1::ConfigMap>(g)),
            (("", "Secret"), register::<core::v1::Secret>(g)),
            (("", "Service"), register::<core::v1::Service>(g)),
            (
                ("", "ServiceAccount"),
                register::<core::v1::ServiceAccount>(g),
            ),
            (("", "Pod"), register::<core::v1::Pod>(g)),
            (("", "Event"), register::<core::v1::Event>(g)),
            (
                ("", "PersistentVolumeClaim"),
                register::<core::v1::PersistentVolumeClaim>(g),
            ),
            (("apps", "Deployment"), register::<apps::v1::Deployment>(g)),
            (
                ("apps", "StatefulSet"),
                register::<apps::v1::StatefulSet>(g),
            ),
            (("apps", "DaemonSet"), register::<apps::v1::DaemonSet>(g)),
            (("apps", "ReplicaSet"), register::<apps::v1::ReplicaSet>(g)),
            (("batch", "Job"), register::<batch::v1::Job>(g)),
            (("batch", "CronJob"), register::<batch::v1::CronJob>(g)),
            (
                ("networking.k8s.io", "Ingress"),
                register::<networking::v1::Ingress>(g),
            ),
            (
                ("networking.k8s.io", "NetworkPolicy"),
                register::<networking::v1::NetworkPolicy>(g),
            ),
            (
                ("policy", "PodDisruptionBudget"),
                register::<policy::v1::PodDisruptionBudget>(g),
            ),
            (
                ("rbac.authorization.k8s.io", "Role"),
                register::<rbac::v1::Role>(g),
            ),
            (
                ("rbac.authorization.k8s.io", "RoleBinding"),
                register::<rbac::v1::RoleBinding>(g),
            ),
            (
                ("rbac.authorization.k8s.io", "ClusterRole"),
                register::<rbac::v1::ClusterRole>(g),
            ),
            (
                ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
                register::<rbac::v1::ClusterRoleBinding>(g),
            ),
            (
                ("apiextensions.k8s.io", "CustomResourceDefinition"),
                register::<CustomResourceDefinition>(g),
            ),
        ];
        let mut definitions = generator.take_definitions(true);
        for schema in definitions.values_mut() {
            plain_references(schema);
        }
        for ((group, kind), name) in roots {
            if let Some(Value::Object(schema)) = definitions.get_mut(&name) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{ "group": group, "version": "v1", "kind": kind }]),
                );
            }
        }
        crate::patch_strategy::annotate(&mut definitions);
        definitions
    })
}

/// `{"allOf": [{"$ref": …}], "description": …}` (how schemars keeps a description beside a
/// reference) becomes `{"$ref": …, "description": …}`, as Kubernetes publishes it: kubectl
/// follows only a plain `$ref`.
fn plain_references(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let single = match map.get("allOf") {
                Some(Value::Array(all)) if all.len() == 1 => all[0].get("$ref").cloned(),
                _ => None,
            };
            if let Some(reference) = single {
                map.remove("allOf");
                map.insert("$ref".into(), reference);
            }
            map.values_mut().for_each(plain_references);
        }
        Value::Array(items) => items.iter_mut().for_each(plain_references),
        _ => {}
    }
}

/// The schema of a built-in kind; `None` for custom kinds.
pub fn builtin_root(kind: &Kind) -> Option<&'static Value> {
    builtin().values().find(|schema| {
        schema["x-kubernetes-group-version-kind"]
            .as_array()
            .is_some_and(|gvks| {
                gvks.iter().any(|gvk| {
                    gvk["group"] == kind.group.as_str()
                        && gvk["version"] == kind.version.as_str()
                        && gvk["kind"] == kind.kind.as_str()
                })
            })
    })
}

/// The definition name of a custom kind: its group reversed, its version, its kind.
fn custom_name(kind: &Kind) -> String {
    let mut group: Vec<&str> = kind.group.split('.').collect();
    group.reverse();
    format!("{}.{}.{}", group.join("."), kind.version, kind.kind)
}

/// Every definition: the built-in ones and one per served custom kind with a schema.
pub fn definitions(kinds: &[Kind], crd_schemas: &[(Kind, Value)]) -> Map<String, Value> {
    let mut all = builtin().clone();
    for (kind, schema) in crd_schemas {
        if !kinds.contains(kind) {
            continue;
        }
        let mut schema = schema.clone();
        if let Value::Object(map) = &mut schema {
            let properties = map.entry("properties").or_insert_with(|| json!({}));
            properties["apiVersion"] = json!({ "type": "string" });
            properties["kind"] = json!({ "type": "string" });
            properties["metadata"] = json!({ "$ref": format!("#/definitions/{OBJECT_META}") });
            map.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{ "group": kind.group, "version": kind.version, "kind": kind.kind }]),
            );
        }
        all.insert(custom_name(kind), schema);
    }
    all
}

/// The OpenAPI v2 document.
pub fn v2(definitions: Map<String, Value>) -> Value {
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": "v1.32.0-brokkr-double" },
        "paths": {},
        "definitions": definitions,
    })
}

/// `/openapi/v3`: where each group version's document is.
pub fn v3_index(kinds: &[Kind]) -> Value {
    let mut paths = Map::new();
    for kind in kinds {
        let path = v3_path(&kind.group, &kind.version);
        let url = format!("/openapi/v3/{path}");
        paths.insert(path, json!({ "serverRelativeURL": url }));
    }
    json!({ "paths": paths })
}

fn v3_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// One group version's OpenAPI v3 document, or `None` when the double serves no such group.
pub fn v3(kinds: &[Kind], definitions: &Map<String, Value>, path: &str) -> Option<Value> {
    if !kinds.iter().any(|k| v3_path(&k.group, &k.version) == path) {
        return None;
    }
    let text = Value::Object(definitions.clone())
        .to_string()
        .replace("#/definitions/", "#/components/schemas/");
    let schemas: Value = serde_json::from_str(&text).ok()?;
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.32.0-brokkr-double" },
        "paths": {},
        "components": { "schemas": schemas },
    }))
}
