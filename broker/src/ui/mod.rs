//! The web console at `/ui`: server-rendered pages over the application layer, signed in with a
//! PAK exchanged for a session, every write carrying the session's CSRF token, a strict
//! Content-Security-Policy, and its two assets (a stylesheet and a small script that keeps live
//! parts up to date) embedded in the binary.

mod agents;
mod audit;
mod diff;
mod enrollment;
mod fleet;
mod plugins;
mod render;
mod retarget;
mod session;
mod sign_in;
mod stacks;
mod webhooks;
mod work_orders;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::domain::page::Window;
use crate::http::ApiError;
use crate::state::AppState;
pub use session::Session;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every console route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/fleet") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/fleet") }))
        .route("/ui/login", get(sign_in::form).post(sign_in::sign_in))
        .route("/ui/logout", post(sign_in::sign_out))
        .route("/ui/fleet", get(fleet::page))
        .route("/ui/fleet/rows", get(fleet::rows))
        .route("/ui/agents/{id}", get(agents::page))
        .route("/ui/audit", get(audit::page))
        .route(
            "/ui/enrollment",
            get(enrollment::page).post(enrollment::create),
        )
        .route("/ui/enrollment/{id}/revoke", post(enrollment::revoke))
        .route("/ui/work-orders", get(work_orders::list))
        .route("/ui/work-orders/{id}", get(work_orders::page))
        .route("/ui/plugins", get(plugins::list))
        .route("/ui/plugins/{id}", get(plugins::page))
        .route("/ui/plugins/{id}/bindings", post(plugins::bind_shadow))
        .route("/ui/plugins/{id}/dry-run", post(plugins::dry_run))
        .route("/ui/webhooks", get(webhooks::list))
        .route("/ui/webhooks/{id}", get(webhooks::page))
        .route(
            "/ui/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/ui/stacks", get(stacks::list))
        .route("/ui/stacks/{id}", get(stacks::page))
        .route("/ui/stacks/{id}/rollout", get(stacks::rollout_part))
        .route("/ui/stacks/{id}/diff", get(diff::page))
        .route("/ui/stacks/{id}/retarget", post(retarget::retarget))
        .route("/ui/stacks/{id}/rollout/{action}", post(stacks::steer))
        .route("/ui/static/{file}", get(asset))
        .layer(middleware::from_fn(same_origin_writes))
        .layer(middleware::map_response(console_headers))
}

/// The console's assets, from the binary.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (
            include_str!("assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return render::html(StatusCode::NOT_FOUND, "not found".into()),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every console answer; pages are never cached.
async fn console_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Refuses a write sent from another site (a browser names it in `Origin` or
/// `Sec-Fetch-Site`), on top of `SameSite=Strict` and the CSRF token.
async fn same_origin_writes(request: Request, next: Next) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return next.run(request).await;
    }
    let headers = request.headers();
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let cross_site = site.is_some_and(|s| s != "same-origin" && s != "none");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let foreign_origin = origin.is_some_and(|o| {
        let authority = o.split_once("://").map_or(o, |(_, rest)| rest);
        host != Some(authority)
    });
    if cross_site || foreign_origin {
        return refused("This form was sent from another site.");
    }
    next.run(request).await
}

/// `limit` rows from `offset` (the console's page sizes are within the API's bounds).
fn window(limit: u32, offset: Option<u64>) -> Window {
    Window {
        limit,
        offset: offset.unwrap_or(0),
    }
}

/// A 403 page for a write that cannot be trusted.
fn refused(detail: &str) -> Response {
    render::page_with_status(
        StatusCode::FORBIDDEN,
        "problem.html",
        None,
        minijinja::context! { title => "Refused", detail },
    )
}

/// An application error as a page.
fn problem(session: &Session, error: impl Into<ApiError>) -> Response {
    let error = error.into();
    let problem = error.to_problem();
    render::page_with_status(
        StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "problem.html",
        Some(session),
        minijinja::context! { title => problem.title, detail => problem.detail },
    )
}
