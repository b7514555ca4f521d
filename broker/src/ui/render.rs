//! Pages: the console's templates (embedded in the binary, HTML-escaped by default), each page's
//! part rendered and then placed in the layout (`base.html`), with the few filters they need
//! (times shown relative and absolute).

use std::sync::LazyLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{Environment, Value};

use super::session::Session;

static TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("fleet.html", include_str!("templates/fleet.html")),
    ("fleet_rows.html", include_str!("templates/fleet_rows.html")),
    ("agent.html", include_str!("templates/agent.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("webhook.html", include_str!("templates/webhook.html")),
    ("enrollment.html", include_str!("templates/enrollment.html")),
    ("plugins.html", include_str!("templates/plugins.html")),
    ("plugin.html", include_str!("templates/plugin.html")),
    (
        "plugin_dry_run.html",
        include_str!("templates/plugin_dry_run.html"),
    ),
    (
        "work_orders.html",
        include_str!("templates/work_orders.html"),
    ),
    ("work_order.html", include_str!("templates/work_order.html")),
    ("stacks.html", include_str!("templates/stacks.html")),
    ("stack.html", include_str!("templates/stack.html")),
    ("diff.html", include_str!("templates/diff.html")),
    ("retarget.html", include_str!("templates/retarget.html")),
    ("rollout.html", include_str!("templates/rollout.html")),
    ("problem.html", include_str!("templates/problem.html")),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(error = %e, template = name, "a console template does not parse");
        }
    }
    env.add_filter("ago", ago);
    env.add_filter("when", when);
    env.add_filter("brief", brief);
    env
});

/// Any serialisable value, for a template.
pub fn value<T: serde::Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// "3 min ago" for an RFC 3339 time ("-" when there is none).
fn ago(value: Option<String>) -> String {
    let Some(at) = value.as_deref().and_then(parse) else {
        return "-".into();
    };
    let seconds = (Utc::now() - at).num_seconds();
    let (amount, unit) = match seconds.abs() {
        s if s < 60 => (s, "s"),
        s if s < 3600 => (s / 60, "min"),
        s if s < 86_400 => (s / 3600, "h"),
        s => (s / 86_400, "d"),
    };
    match seconds < 0 {
        true => format!("in {amount} {unit}"),
        false => format!("{amount} {unit} ago"),
    }
}

/// Longest text [`brief`] keeps.
const BRIEF_CHARS: usize = 200;

/// The text cut to [`BRIEF_CHARS`] characters, with `…` when cut.
fn brief(text: String) -> String {
    match text.char_indices().nth(BRIEF_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// "2026-12-07 11:09:37 UTC" for an RFC 3339 time.
fn when(value: Option<String>) -> String {
    value
        .as_deref()
        .and_then(parse)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Renders `template` with `context`, plus who is signed in and their form token.
pub fn page(template: &str, session: Option<&Session>, context: Value) -> Response {
    page_with_status(StatusCode::OK, template, session, context)
}

pub fn page_with_status(
    status: StatusCode,
    template: &str,
    session: Option<&Session>,
    context: Value,
) -> Response {
    let who = session.map(|s| s.name.clone());
    let csrf = session.map(|s| s.csrf.clone());
    let admin = session.is_some_and(Session::is_admin);
    let context = minijinja::context! { who, csrf, admin, ..context };
    // The page's own part first, then the layout around it (no template includes another:
    // minijinja's multi-template support stays off, as stack templates need).
    let content = Value::from_safe_string(fragment(template, context.clone()));
    html(
        status,
        fragment("base.html", minijinja::context! { content, ..context }),
    )
}

/// A part rendered ahead, to be placed in a page as it is.
pub fn part(template: &str, context: Value) -> Value {
    Value::from_safe_string(fragment(template, context))
}

/// Renders a template on its own (a part of a page the script replaces).
pub fn fragment(template: &str, context: Value) -> String {
    ENV.get_template(template)
        .and_then(|t| t.render(context))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, template, "a console page failed to render");
            "<!doctype html><title>Brokkr</title><p>This page failed to render.</p>".into()
        })
}

pub fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}
