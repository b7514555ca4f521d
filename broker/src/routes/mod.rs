//! The HTTP API: one file per resource, and here the one router that lists every route,
//! generates the OpenAPI document from the handlers and adds the cross-cutting layers.

pub mod admin;
pub mod agents;
pub mod deployment_objects;
pub mod enrollment;
pub mod events;
pub mod generators;
pub mod health;
pub mod metadata;
pub mod metrics;
pub mod plugins;
pub mod rollouts;
pub mod stacks;
pub mod staged;
pub mod target_state;
pub mod targeting;
pub mod targets;
pub mod templates;
pub mod webhooks;
pub mod whoami;
pub mod work_orders;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::Retargeted;
use crate::http::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Brokkr broker API", description = "Distributes Kubernetes objects to many clusters."),
    modifiers(&PakSecurity),
    security(("pak" = []))
)]
struct ApiDoc;

/// Declares the PAK bearer scheme used by every authenticated route.
struct PakSecurity;

impl utoipa::Modify for PakSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "pak",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("PAK")
                    .build(),
            ),
        );
    }
}

/// Every route of the API, with its OpenAPI description. Plugin uploads get their own,
/// larger body limit (`upload_limit`).
fn api(upload_limit: usize) -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(plugins::upload, plugins::list))
        .layer(DefaultBodyLimit::max(upload_limit));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(uploads)
        .routes(routes!(plugins::get, plugins::update, plugins::delete))
        .routes(routes!(plugins::bind))
        .routes(routes!(plugins::update_binding, plugins::unbind))
        .routes(routes!(plugins::verdicts))
        .routes(routes!(plugins::dry_run))
        .routes(routes!(plugins::module))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(whoami::whoami))
        .routes(routes!(generators::create, generators::list))
        .routes(routes!(
            generators::get,
            generators::update,
            generators::delete
        ))
        .routes(routes!(generators::rotate_pak))
        .routes(routes!(stacks::create, stacks::list))
        .routes(routes!(stacks::get, stacks::update, stacks::delete))
        .routes(routes!(metadata::add_stack_label))
        .routes(routes!(metadata::remove_stack_label))
        .routes(routes!(metadata::set_stack_annotation))
        .routes(routes!(metadata::remove_stack_annotation))
        .routes(routes!(
            deployment_objects::create,
            deployment_objects::list
        ))
        .routes(routes!(deployment_objects::get))
        .routes(routes!(events::list_for_stack))
        .routes(routes!(agents::create, agents::list))
        .routes(routes!(agents::get, agents::update, agents::delete))
        .routes(routes!(agents::rotate_pak))
        .routes(routes!(agents::heartbeat))
        .routes(routes!(metadata::add_agent_label))
        .routes(routes!(metadata::remove_agent_label))
        .routes(routes!(metadata::set_agent_annotation))
        .routes(routes!(metadata::remove_agent_annotation))
        .routes(routes!(targets::list, targets::add))
        .routes(routes!(targets::remove))
        .routes(routes!(targets::add_many))
        .routes(routes!(events::create, events::list_for_agent))
        .routes(routes!(target_state::get))
        .routes(routes!(targeting::explain_agent))
        .routes(routes!(targeting::explain_stack))
        .routes(routes!(admin::reload))
        .routes(routes!(admin::audit_logs))
        .routes(routes!(metrics::metrics))
        .routes(routes!(enrollment::create, enrollment::list))
        .routes(routes!(enrollment::revoke))
        .routes(routes!(enrollment::enroll))
        .routes(routes!(templates::create, templates::list))
        .routes(routes!(
            templates::get,
            templates::add_version,
            templates::delete
        ))
        .routes(routes!(templates::versions))
        .routes(routes!(templates::render))
        .routes(routes!(templates::from_template))
        .routes(routes!(webhooks::event_types))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(rollouts::report_health))
        .routes(routes!(rollouts::deployment_health))
        .routes(routes!(rollouts::object_rollout))
        .routes(routes!(rollouts::stack_rollout))
        .routes(routes!(staged::pause))
        .routes(routes!(staged::resume))
        .routes(routes!(staged::promote))
        .routes(routes!(staged::abort))
        .routes(routes!(rollouts::fleet))
        .routes(routes!(work_orders::create, work_orders::list))
        .routes(routes!(work_orders::get, work_orders::cancel))
        .routes(routes!(work_orders::claim))
        .routes(routes!(work_orders::renew))
        .routes(routes!(work_orders::complete))
        .routes(routes!(work_orders::diagnostics))
}

/// The OpenAPI document generated from the handlers, as served.
pub fn openapi() -> serde_json::Value {
    served_document(api(0).into_openapi())
}

/// The generated document with every problem response declared as `application/problem+json`
/// (as it is sent) and a `5XX` problem on every operation (overload, timeouts, failures).
fn served_document(document: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut value = serde_json::to_value(document).unwrap_or_default();
    let problem_ref = serde_json::json!({ "$ref": "#/components/schemas/Problem" });
    let problem = serde_json::json!({ "application/problem+json": { "schema": problem_ref } });
    let paths = value.get_mut("paths").and_then(|p| p.as_object_mut());
    for item in paths.into_iter().flat_map(|p| p.values_mut()) {
        let operations = item
            .as_object_mut()
            .into_iter()
            .flat_map(|i| i.values_mut());
        for operation in operations {
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(|r| r.as_object_mut())
            else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut())
                else {
                    continue;
                };
                let json = content
                    .get("application/json")
                    .map(|c| c["schema"] == problem_ref);
                if json == Some(true) {
                    content.remove("application/json");
                    content.insert(
                        "application/problem+json".into(),
                        problem["application/problem+json"].clone(),
                    );
                }
            }
            responses.entry("5XX").or_insert_with(|| {
                serde_json::json!({ "description": "the broker is overloaded, timed out or failed", "content": problem })
            });
        }
    }
    value
}

/// The complete application: routes, OpenAPI document, fallbacks and layers.
pub fn router(state: AppState) -> Router {
    let settings = &state.app.settings;
    let body_limit = usize::try_from(settings.broker.max_body_bytes).unwrap_or(usize::MAX);
    let upload_limit = usize::try_from(settings.plugins.max_upload_bytes).unwrap_or(usize::MAX);
    let (routes, document) = api(upload_limit).split_for_parts();
    let document = Arc::new(served_document(document));
    let routes = match settings.ui.enabled {
        true => routes.merge(crate::ui::router()),
        false => routes,
    };
    routes
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(document.as_ref().clone()) }),
        )
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(
                "handler panicked".into(),
            ))
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http::envelope::envelope,
        ))
        .with_state(state)
}

/// The answer to a change that can retarget: the preview of a dry run (200), or the changed
/// resource with `status`.
pub(crate) fn retargeted<T: Serialize>(outcome: Retargeted<T>, status: StatusCode) -> Response {
    match outcome {
        Retargeted::Preview(preview) => Json(preview).into_response(),
        Retargeted::Applied(value) => (status, Json(value)).into_response(),
    }
}
