//! Stacks: the list, and a stack's page (its facts, its versions, and the newest release's
//! rollout with waves and gates, kept live by the page's script); people pause, resume,
//! promote or abort a staged rollout from it.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use brokkr_types::rollouts::Rollout;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::render::{fragment, html, page as render_page, part, value};
use super::session::Session;
use super::sign_in::TokenForm;
use crate::app::AppError;
use crate::app::rollouts::RolloutOf;
use crate::app::staged::Steer;
use crate::http::extract::long_poll;
use crate::state::AppState;

const PAGE: u32 = 100;
const VERSIONS: u32 = 20;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    offset: Option<u64>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    let window = super::window(PAGE, query.offset);
    match state
        .app
        .list_stacks(session.requester(), None, window)
        .await
    {
        Ok(found) => render_page(
            "stacks.html",
            Some(&session),
            context! { section => "stacks", title => "Stacks", stacks => value(&found.items), offset => window.offset,
            limit => PAGE, next_offset => found.next_offset },
        ),
        Err(e) => super::problem(&session, e),
    }
}

/// What a steering form did, shown once on the page it returns to.
#[derive(Debug, Deserialize)]
pub struct PageQueryDone {
    done: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQueryDone>,
) -> Response {
    let by = session.requester();
    let stack = match state.app.stack(by, id).await {
        Ok(stack) => stack,
        Err(e) => return super::problem(&session, e),
    };
    let versions = state
        .app
        .list_deployment_objects(by, id, super::window(VERSIONS, None))
        .await;
    let versions = match versions {
        Ok(found) => found.items,
        Err(e) => return super::problem(&session, e),
    };
    let reached = state
        .app
        .explain_stack(by, id, super::window(PAGE, None))
        .await;
    let reached = match reached {
        Ok(found) => found.items,
        Err(e) => return super::problem(&session, e),
    };
    let (rollout, etag) = match newest_rollout(&state, &session, id, None, 0).await {
        Ok(found) => found,
        Err(e) => return super::problem(&session, e),
    };
    let notice = query.done.as_deref().and_then(done_notice);
    render_page(
        "stack.html",
        Some(&session),
        context! { section => "stacks", title => stack.name.clone(), stack => value(&stack),
        versions => value(&versions), reached => value(&reached), etag, notice,
        rollout_part => part("rollout.html", rollout_context(rollout.as_ref(), &session)) },
    )
}

/// What the rollout part shows: the rollout, its convergence chart and the form token.
fn rollout_context(rollout: Option<&Rollout>, session: &Session) -> minijinja::Value {
    let chart = rollout.and_then(chart_of);
    context! { rollout => value(&rollout), chart, csrf => session.csrf.clone() }
}

/// The chart's drawing area, in SVG user units.
const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 160.0;

/// The convergence curve as an SVG step line: share of targeted agents applied (up) over time
/// since the release (right). `None` before any agent applied it.
fn chart_of(rollout: &Rollout) -> Option<minijinja::Value> {
    let last = rollout.convergence.last()?;
    let span = last.after_ms.max(1) as f64;
    let targeted = rollout.targeted.max(last.applied).max(1) as f64;
    let y = |applied: u64| CHART_HEIGHT - applied as f64 / targeted * CHART_HEIGHT;
    let mut points = vec![format!("0,{CHART_HEIGHT}")];
    let mut before = 0;
    for point in &rollout.convergence {
        let x = point.after_ms as f64 / span * CHART_WIDTH;
        points.push(format!("{x:.1},{:.1}", y(before)));
        points.push(format!("{x:.1},{:.1}", y(point.applied)));
        before = point.applied;
    }
    Some(
        context! { points => points.join(" "), span_ms => last.after_ms,
        width => CHART_WIDTH, height => CHART_HEIGHT },
    )
}

fn done_notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "pause" => "The rollout is paused.",
        "resume" => "The rollout resumed: the current wave is gated again.",
        "promote" => "The current wave passed; the next one receives the release.",
        "abort" => "The rollout was aborted and rolled back.",
        "retarget" => "The stack was retargeted.",
        _ => return None,
    })
}

/// The stack's newest rollout (none before a first version) and its ETag, after waiting up to
/// `wait` seconds for it to differ from `seen`.
async fn newest_rollout(
    state: &AppState,
    session: &Session,
    stack: Uuid,
    seen: Option<&str>,
    wait: u64,
) -> Result<(Option<Rollout>, String), AppError> {
    let wait = std::time::Duration::from_secs(wait);
    let by = session.requester();
    match state
        .app
        .watch_rollout(by, RolloutOf::Stack(stack), seen, wait)
        .await
    {
        Ok((rollout, tag)) => Ok((Some(rollout), tag)),
        Err(AppError::NotFound("deployment object")) => {
            if seen == Some(NOTHING) {
                tokio::time::sleep(wait).await;
            }
            Ok((None, NOTHING.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// The ETag of a stack with nothing published.
const NOTHING: &str = "\"none\"";

#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    wait: Option<u64>,
}

/// The rollout part of a stack's page, as a long poll: 200 with the part when it differs from
/// the `If-None-Match` the script sent, 304 when the wait ends first.
pub async fn rollout_part(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<Uuid>,
    Query(query): Query<WaitQuery>,
    headers: HeaderMap,
) -> Response {
    let (wait, seen) = match long_poll(&state, query.wait, &headers) {
        Ok(found) => found,
        Err(e) => return super::problem(&session, e),
    };
    let found = newest_rollout(&state, &session, id, seen.as_deref(), wait.as_secs()).await;
    let (rollout, etag) = match found {
        Ok(found) => found,
        Err(e) => return super::problem(&session, e),
    };
    let tag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    if seen.as_deref() == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    let body = fragment("rollout.html", rollout_context(rollout.as_ref(), &session));
    let mut response = html(StatusCode::OK, body);
    response.headers_mut().insert(header::ETAG, tag);
    response
}

pub async fn steer(
    State(state): State<AppState>,
    session: Session,
    Path((id, action)): Path<(Uuid, String)>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    if !form.is_ok_and(|Form(f)| session.csrf_matches(&f.csrf)) {
        return super::refused("The form's token is missing or stale; reload the page.");
    }
    let steer = match action.as_str() {
        "pause" => Steer::Pause,
        "resume" => Steer::Resume,
        "promote" => Steer::Promote,
        "abort" => Steer::Abort,
        _ => return super::problem(&session, AppError::NotFound("action")),
    };
    match state
        .app
        .steer_rollout(session.requester(), id, steer)
        .await
    {
        Ok(_) => Redirect::to(&format!("/ui/stacks/{id}?done={action}")).into_response(),
        Err(e) => super::problem(&session, e),
    }
}
